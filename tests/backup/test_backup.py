"""export_mesh / import_mesh: a git-friendly backup and its lossless, all-or-nothing restore."""

import json
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from domains.models import Domain, Team
from governance.models import DataSource, GlossaryTerm, Policy, QualityCheck
from meshportal.models import AuditEntry
from meshportal.permissions import EDIT, can
from products.models import AccessRequest, DataProduct, InputPort, OutputPort, Watch

pytestmark = pytest.mark.django_db


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def wipe() -> None:
    """An empty portal, as a freshly migrated database is (flush would wait for the demo
    warehouse's connections on PostgreSQL)."""
    Policy.objects.all().delete()
    DataProduct.objects.all().delete()
    GlossaryTerm.objects.all().delete()
    while Domain.objects.exists():  # children first: a parent is protected
        Domain.objects.filter(children__isnull=True).delete()
    groups = list(Team.objects.values_list("group", flat=True))
    Team.objects.all().delete()
    Group.objects.filter(pk__in=groups).delete()
    DataSource.objects.all().delete()
    get_user_model().objects.all().delete()


@pytest.fixture(scope="module")
def exported_demo(module_demo, django_db_blocker, tmp_path_factory) -> Path:
    """The module's demo mesh (tests/conftest.py), exported once."""
    folder = tmp_path_factory.mktemp("exported")
    with django_db_blocker.unblock():
        call_command("export_mesh", str(folder), verbosity=0)
    return folder


@pytest.fixture
def exported(demo, exported_demo, tmp_path) -> Path:
    """The demo's backup, this test's copy to change."""
    shutil.copytree(exported_demo, tmp_path / "a")
    return tmp_path / "a"


def test_export_layout_and_determinism(exported, tmp_path):
    out = files(exported)
    for name in ("mesh.yaml", "users.yaml", "teams.yaml", "domains.yaml", "policies.yaml"):
        assert name in out
    assert "products/orders/orders.yaml" in out
    contracts_files = [n for n in out if n.startswith("products/") and ".odps." not in n]
    odps_files = [n for n in out if n.startswith("products/") and n.endswith(".odps.yaml")]
    assert len(contracts_files) == len(odps_files) == DataProduct.objects.count()
    # The product file is the API's contract export, byte for byte.
    from products.contracts import services as contracts

    orders = DataProduct.objects.get(domain__slug="orders", slug="orders")
    assert out["products/orders/orders.yaml"].decode() == contracts.export_yaml(orders)
    assert b"role: owner" in out["teams.yaml"] and b"user: olivia" in out["teams.yaml"]
    assert b"password" not in out["users.yaml"]
    # Unchanged mesh: byte-identical files, and a product that disappears loses its file.
    call_command("export_mesh", str(exported), verbosity=0)
    assert files(exported) == out
    DataProduct.objects.filter(domain__slug="inventory", slug="stock-levels").delete()
    call_command("export_mesh", str(exported), verbosity=0)
    assert "products/inventory/stock-levels.yaml" not in files(exported)
    assert "products/inventory/stock-levels.odps.yaml" not in files(exported)


def test_export_writes_each_product_as_odps_as_the_api_exports_it(exported):
    """products/<domain>/<product>.odps.yaml is the owners' ODPS export, valid against the
    official ODPS 1.1.0 schema."""
    from products.contracts import odps

    orders = DataProduct.objects.get(domain__slug="orders", slug="orders")
    text = (exported / "products" / "orders" / "orders.odps.yaml").read_text()
    olivia = get_user_model().objects.get(username="olivia")
    assert text == odps.export_yaml(orders, user=olivia)
    odps.validate(odps.parse(text))


def test_restore_takes_back_creation_times_from_odps(exported, tmp_path):
    created = dict(DataProduct.objects.values_list("slug", "created_at"))
    wipe()
    call_command("import_mesh", str(exported), verbosity=0)
    assert dict(DataProduct.objects.values_list("slug", "created_at")) == created


def test_bad_odps_document_names_file_and_line(exported):
    path = exported / "products" / "orders" / "orders.odps.yaml"
    path.write_text(path.read_text().replace("kind: DataProduct", "kind: DataContract"))
    wipe()
    with pytest.raises(CommandError) as e:
        call_command("import_mesh", str(exported), verbosity=0)
    assert "products/orders/orders.odps.yaml:2: " in str(e.value)
    assert "nothing was imported" in str(e.value)
    assert not DataProduct.objects.exists()


def test_round_trip_is_lossless(exported, tmp_path):
    before = {
        "products": set(DataProduct.objects.values_list("domain__slug", "slug", "status")),
        "checks": QualityCheck.objects.count(),
        "inputs": InputPort.objects.count(),
        "watches": Watch.objects.count(),
        "requests": set(AccessRequest.objects.values_list("product__slug", "status")),
        "policies": set(Policy.objects.values_list("key", "status")),
    }
    wipe()
    assert not DataProduct.objects.exists() and not get_user_model().objects.exists()

    call_command("import_mesh", str(exported), verbosity=0)
    call_command("export_mesh", str(tmp_path / "b"), verbosity=0)
    assert files(tmp_path / "b") == files(exported)

    assert (
        set(DataProduct.objects.values_list("domain__slug", "slug", "status"))
        == (before["products"])
    )
    assert QualityCheck.objects.count() == before["checks"]
    assert InputPort.objects.count() == before["inputs"]
    assert Watch.objects.count() == before["watches"]
    assert set(AccessRequest.objects.values_list("product__slug", "status")) == before["requests"]
    assert set(Policy.objects.values_list("key", "status")) == before["policies"]
    # Ownership works again: olivia edits Orders, carl (no team) does not.
    User = get_user_model()
    orders = DataProduct.objects.get(domain__slug="orders", slug="orders")
    assert can(User.objects.get(username="olivia"), EDIT, orders)
    assert not can(User.objects.get(username="carl"), EDIT, orders)
    # Passwords are not in the backup: restored people cannot sign in with the old one.
    assert not User.objects.get(username="olivia").has_usable_password()


def test_worker_processes_restore_exactly_what_one_process_does(exported, monkeypatch):
    """The contract and ODPS files are read, and the versions' documents written, by forked
    workers (meshportal.parallel) while the restore goes on: the same versions as without."""
    from meshportal import parallel
    from products.models import ContractVersion

    def versions() -> dict:
        rows = ContractVersion.objects.values_list(
            "product__domain__slug", "product__slug", "number", "snapshot", "document"
        )
        return {(d, p, n): (snap, doc) for d, p, n, snap, doc in rows}

    def from_odps() -> tuple[dict, dict]:  # what the ODPS files give back (read by the worker)
        products = DataProduct.objects.values_list(
            "domain__slug", "slug", "created_at", "odps_kept"
        )
        ports = OutputPort.objects.values_list(
            "product__domain__slug", "product__slug", "slug", "odps_kept"
        )
        return {(d, p): (when, kept) for d, p, when, kept in products}, {
            (d, p, port): kept for d, p, port, kept in ports
        }

    forks = []
    workers = parallel.workers

    def counted(count=None):
        forks.append(1)
        return workers(1)  # one worker even on a one-core machine

    wipe()
    monkeypatch.setattr(parallel, "workers", counted)
    call_command("import_mesh", str(exported), verbosity=0)
    assert forks
    in_workers, odps_in_workers = versions(), from_odps()
    wipe()
    monkeypatch.setattr(parallel, "workers", lambda count=None: workers(0))
    call_command("import_mesh", str(exported), verbosity=0)
    alone = versions()
    assert in_workers == alone
    assert odps_in_workers == from_odps()
    assert {number for _, _, number in alone} == {1}  # a restored product starts at version 1
    assert len(alone) == DataProduct.objects.count() > 20


def test_refuses_a_non_empty_portal(exported):
    teams = Team.objects.count()
    with pytest.raises(CommandError, match="not empty"):
        call_command("import_mesh", str(exported), verbosity=0)
    with pytest.raises(CommandError, match=r"datasources.yaml:1: .*already exists"):
        call_command("import_mesh", str(exported), "--force", verbosity=0)
    assert Team.objects.count() == teams


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def assert_nothing_imported():
    assert not get_user_model().objects.exists()
    assert not Team.objects.exists() and not Domain.objects.exists()
    assert not DataProduct.objects.exists() and not GlossaryTerm.objects.exists()


def test_unknown_reference_names_file_and_line(exported):
    wipe()
    teams = exported / "teams.yaml"
    edit(teams, "user: olivia", "user: nobody")
    # The error points at the member's mapping.
    line = line_of(teams, "user: nobody")
    with pytest.raises(CommandError) as e:
        call_command("import_mesh", str(exported), verbosity=0)
    assert f"teams.yaml:{line}: unknown user “nobody”" in str(e.value)
    assert "nothing was imported" in str(e.value)
    assert_nothing_imported()


def test_bad_contract_names_file_and_line(exported):
    wipe()
    contract = exported / "products" / "orders" / "orders.yaml"
    edit(contract, "logicalType: integer", "logicalType: bigint")
    line = line_of(contract, "logicalType: bigint")
    with pytest.raises(CommandError) as e:
        call_command("import_mesh", str(exported), verbosity=0)
    assert f"products/orders/orders.yaml:{line}: " in str(e.value)
    assert "bigint" in str(e.value)
    assert_nothing_imported()


def test_a_failure_in_the_last_file_undoes_every_product_before_it(exported):
    # policies.yaml is read after every product, its state, checks and audit entries.
    wipe()
    audit_before = AuditEntry.objects.count()
    policies = exported / "policies.yaml"
    policies.write_text(
        policies.read_text() + "- key: broken\n  title: Broken\n  rule_type: nope\n"
    )
    with pytest.raises(CommandError, match="policies.yaml"):
        call_command("import_mesh", str(exported), verbosity=0)
    assert_nothing_imported()
    assert not QualityCheck.objects.exists() and not Policy.objects.exists()
    assert AuditEntry.objects.count() == audit_before


def test_yaml_syntax_error_names_file_and_line(exported):
    wipe()
    state = exported / "product_state.yaml"
    state.write_text(state.read_text() + "broken: [unclosed\n")
    with pytest.raises(CommandError, match=r"product_state.yaml:\d+: YAML syntax error"):
        call_command("import_mesh", str(exported), verbosity=0)
    assert_nothing_imported()


def test_not_a_backup(tmp_path, demo):
    # On a portal in use too: the folder is refused for what it is, before the portal is
    # found not empty.
    with pytest.raises(CommandError, match="mesh.yaml: missing from the backup"):
        call_command("import_mesh", str(tmp_path), verbosity=0)


def test_restore_as_the_new_installations_admin(exported):
    wipe()
    get_user_model().objects.create_superuser("restorer", "r@example.com", None)
    with pytest.raises(CommandError, match="unknown user “nobody” \\(--user\\)"):
        call_command("import_mesh", str(exported), "--user", "nobody", verbosity=0)
    call_command("import_mesh", str(exported), "--user", "restorer", verbosity=0)
    assert DataProduct.objects.filter(domain__slug="orders", slug="orders").exists()


def test_round_trip_keeps_quality_rule_metadata_and_documentation_rules(demo, tmp_path):
    """A contract's quality rules survive the backup as they came: a text rule the portal does
    not run, and a rule's description, dimension and severity (issue 16, lossless)."""
    from products.contracts import services as contracts

    User = get_user_model()
    orders = DataProduct.objects.get(domain__slug="orders", slug="orders")
    doc = contracts.export_document(orders)
    obj = next(o for o in doc["schema"] if o.get("quality"))
    rule = obj["quality"][0]
    rule |= {"description": "Never empty.", "dimension": "completeness", "severity": "error"}
    obj["quality"].append({"type": "text", "description": "Reviewed every quarter."})
    contracts.contract_import(
        text=contracts.dump(doc), user=User.objects.get(username="olivia"), product=orders
    )
    checks = QualityCheck.objects.count()
    call_command("export_mesh", str(tmp_path / "a"), verbosity=0)
    wipe()
    call_command("import_mesh", str(tmp_path / "a"), verbosity=0)
    call_command("export_mesh", str(tmp_path / "b"), verbosity=0)
    assert files(tmp_path / "b") == files(tmp_path / "a")
    assert QualityCheck.objects.count() == checks
    restored = contracts.export_document(
        DataProduct.objects.get(domain__slug="orders", slug="orders")
    )
    kept = next(o for o in restored["schema"] if o["name"] == obj["name"])["quality"]
    assert kept[0]["description"] == "Never empty." and kept[0]["severity"] == "error"
    assert {"type": "text", "description": "Reviewed every quarter."} in kept


def test_who_may_use_a_data_source_survives_a_round_trip(demo, tmp_path):
    team = Team.objects.order_by("slug").first()
    spare = DataSource.objects.create(slug="spare", name="Spare", kind="sqlite", database="/s")
    spare.teams.add(team)
    call_command("export_mesh", str(tmp_path / "a"), verbosity=0)
    assert f"teams:\n  - {team.slug}" in (tmp_path / "a" / "datasources.yaml").read_text()
    wipe()
    call_command("import_mesh", str(tmp_path / "a"), verbosity=0)
    restored = DataSource.objects.get(slug="spare")
    assert list(restored.teams.values_list("slug", flat=True)) == [team.slug]
    assert not DataSource.objects.exclude(slug="spare").filter(teams__isnull=False).exists()


def test_restore_keeps_the_odps_content_the_portal_has_no_field_for(demo, tmp_path):
    """ODPS content kept as it came (tenant, management ports, a port's sbom, an input's tags)
    is in the backup's ODPS documents and comes back with the restore."""
    from products.contracts import odps

    admin = get_user_model().objects.get(username="admin")
    orders = DataProduct.objects.filter(input_ports__isnull=False).order_by("pk").first()
    assert orders is not None
    doc = odps.export_document(orders, user=admin)
    doc["tenant"] = "acme"
    doc["managementPorts"] = [{"name": "changes", "content": "discoverability"}]
    doc["outputPorts"][0]["sbom"] = [{"type": "external", "url": "https://sbom.example.com"}]
    doc["inputPorts"][0]["tags"] = ["upstream"]
    result = odps.odps_import(text=odps.contracts.dump(doc), user=admin, product=orders)
    assert result.changed and result.applied
    before = odps.export_yaml(DataProduct.objects.get(pk=orders.pk))
    call_command("export_mesh", str(tmp_path / "a"), verbosity=0)
    wipe()
    call_command("import_mesh", str(tmp_path / "a"), verbosity=0)
    restored = DataProduct.objects.get(domain__slug=orders.domain.slug, slug=orders.slug)
    assert odps.export_yaml(restored) == before
    assert "upstream" in before and "sbom.example.com" in before and "tenant: acme" in before


def test_two_checks_of_one_name_name_the_line(exported):
    import yaml

    from backup.mesh import _LineLoader
    from products.contracts.services import dump

    wipe()
    path = exported / "product_state.yaml"
    state = yaml.load(path.read_text(), Loader=_LineLoader)  # noqa: S506  # nosec B506 - safe
    key = next(k for k, st in state.items() if st.get("checks"))
    state[key]["checks"].append(dict(state[key]["checks"][0]))
    path.write_text(dump(json.loads(json.dumps(state))))
    reread = yaml.load(path.read_text(), Loader=_LineLoader)  # noqa: S506  # nosec B506 - safe
    line = reread[key]["checks"][-1].line
    with pytest.raises(CommandError) as e:
        call_command("import_mesh", str(exported), verbosity=0)
    assert f"product_state.yaml:{line}: " in str(e.value) and "two checks named" in str(e.value)
    assert_nothing_imported()


def test_a_port_the_state_gives_no_data_source_has_none(exported):
    """The contract's servers name the product's data source; the state says which of its
    ports read it."""
    import yaml

    from products.contracts.services import dump

    path = exported / "product_state.yaml"
    state = yaml.safe_load(path.read_text())
    key, slug = next(
        (k, slug)
        for k, st in state.items()
        for slug, port in (st.get("ports") or {}).items()
        if port.get("data_source")
    )
    del state[key]["ports"][slug]["data_source"]
    path.write_text(dump(state))
    wipe()
    call_command("import_mesh", str(exported), verbosity=0)
    domain, product = key.split("/")
    port = OutputPort.objects.get(product__domain__slug=domain, product__slug=product, slug=slug)
    assert port.data_source is None
    assert OutputPort.objects.exclude(data_source=None).exists()  # the others kept theirs


def test_restore_statements_do_not_grow_with_the_products(exported, django_assert_max_num_queries):
    wipe()
    products = sum(1 for p in (exported / "products").rglob("*.yaml") if ".odps." not in p.name)
    fixed = 60 * (len(list((exported).glob("*.yaml"))))  # users, teams, domains, policies ...
    with django_assert_max_num_queries(fixed + 10 * products):  # 180 a product before
        call_command("import_mesh", str(exported), verbosity=0)
    assert DataProduct.objects.count() == products


def test_an_unknown_role_names_the_members_line(exported):
    wipe()
    teams = exported / "teams.yaml"
    edit(teams, "role: member", "role: boss")
    line = line_of(teams, "role: boss") - 1  # the member's mapping starts on its user line
    with pytest.raises(CommandError) as e:
        call_command("import_mesh", str(exported), verbosity=0)
    assert f"teams.yaml:{line}: role: Unknown role “boss”" in str(e.value)
    assert_nothing_imported()
