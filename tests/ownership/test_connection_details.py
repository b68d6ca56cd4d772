"""Connection details (a port's location, sampled failing values) reach only those who may
read the data — the owning team, approved consumers, the platform team — at every door that
carries them: the Activity tab, the Contract tab and export, stored contract versions and their
diffs, quality results (page and API), the admin and the e-mails sent to watchers."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from governance.models import QualityCheck, QualityRun
from meshportal.audit import audit_context
from products import services
from products.models import Watch

SECRET = "vault.canary_table_9f2"
SAMPLE = "canary-sample-4711"
PAGE = "/products/orders/published-product/"
API = "/api/v1/products/orders/published-product"


@pytest.fixture
def moved(mesh):
    """The published orders product's port moved to a new table (a breaking contract change
    that is audited, versioned and announced to watchers), and a failed quality run."""
    product = mesh.products[("orders", "published")]
    Watch.objects.create(user=mesh.consumer, product=product)
    port = product.ports.get()
    with audit_context(actor=mesh.owner, door="web"):
        services.port_update(port=port, location=SECRET)
    check = QualityCheck.objects.create(port=port, name="ids", kind="missing", columns=["order_id"])
    QualityRun.objects.create(
        quality_check=check,
        status="failed",
        message=f"3 nulls in {SECRET}.order_id",
        sample=[SAMPLE],
        deadline=timezone.now() + timedelta(minutes=5),
        finished_at=timezone.now(),
    )
    return product


def _pages(client, user, check_id):
    client.force_login(user)
    bodies = [client.get(f"{PAGE}?tab={tab}").text for tab in ("activity", "contract", "quality")]
    bodies.append(client.get(f"/quality/checks/{check_id}/").text)
    bodies.append(client.get(f"{PAGE}contract/diff/?from=1").text)
    # The other tabs, search (page and its JSON autocomplete) and the lineage JSON endpoints.
    bodies += [client.get(f"{PAGE}?tab={tab}").text for tab in ("overview", "schema", "ports")]
    bodies += [client.get("/search/", {"q": q}).text for q in ("orders", "canary_table_9f2")]
    bodies += [client.get(f"{PAGE}lineage/{end}").text for end in ("graph.json", "impact.json")]
    bodies.append(client.get("/lineage/mesh.json").text)
    return "\n".join(bodies)


def _api(user):
    c = APIClient()
    c.force_authenticate(user)
    bodies = [
        c.get(f"{API}/contract").content.decode(),
        c.get(f"{API}/contract/versions/").content.decode(),
        c.get(f"{API}/contract/diff/?from=1").content.decode(),
        c.get("/api/v1/quality-runs/").content.decode(),
        c.get(f"{API}/").content.decode(),
        c.get("/api/v1/ports/").content.decode(),
        c.get("/api/v1/products/", {"search": "canary_table_9f2"}).content.decode(),
    ]
    versions = c.get(f"{API}/contract/versions/").json()["results"]
    bodies += [c.get(f"{API}/contract/versions/{v['number']}/").content.decode() for v in versions]
    return "\n".join(bodies)


@pytest.mark.parametrize("role", ["consumer", "other_owner", "council"])
def test_people_without_access_see_no_connection_detail(client, mesh, moved, role):
    user = getattr(mesh, role)
    check_id = QualityCheck.objects.get().pk
    seen = _pages(client, user, check_id) + _api(user)
    assert SECRET not in seen
    assert SAMPLE not in seen
    assert "(hidden)" in seen  # the change is still shown, without its value


@pytest.mark.parametrize("role", ["owner", "member", "approved", "staff"])
def test_people_with_access_see_them(client, mesh, moved, role):
    user = getattr(mesh, role)
    check_id = QualityCheck.objects.get().pk
    seen = _pages(client, user, check_id) + _api(user)
    assert SECRET in seen
    assert SAMPLE in seen


def test_exported_contract_stays_valid_without_locations(mesh, moved):
    import yaml

    c = APIClient()
    c.force_authenticate(mesh.consumer)
    doc = yaml.safe_load(c.get(f"{API}/contract").content)
    assert doc["schema"][0]["name"] == "main"
    assert "physicalName" not in doc["schema"][0]
    c.force_authenticate(mesh.approved)
    doc = yaml.safe_load(c.get(f"{API}/contract").content)
    assert doc["schema"][0]["physicalName"] == SECRET


def test_watchers_are_told_of_the_change_without_its_value(mesh, moved, mailoutbox):
    from django.db import connection as db

    from meshportal.models import Notification

    # Announcements go out after commit, and their e-mails after theirs.
    done = 0
    while done < len(db.run_on_commit):
        db.run_on_commit[done][1]()
        done += 1
    notes = Notification.objects.filter(user=mesh.consumer)
    assert notes.exists()
    assert all(SECRET not in n.title + n.body for n in notes)
    assert all(SECRET not in m.body + m.subject for m in mailoutbox)


def test_admin_port_list_hides_locations_from_staff_without_access(client, mesh, moved):
    from tests.factories import user

    staff = user("plainstaff", staff=True)
    client.force_login(staff)
    r = client.get("/admin/products/outputport/")
    assert SECRET not in r.text
    port = moved.ports.get()
    assert SECRET not in client.get(f"/admin/products/outputport/{port.pk}/change/").text
    assert SECRET not in client.get(f"/admin/products/dataproduct/{moved.pk}/change/").text
    client.force_login(mesh.staff)
    assert SECRET in client.get("/admin/products/outputport/").text


def test_custom_sql_names_the_table_as_object_for_people_without_access(mesh, moved):
    """Custom SQL may name the port's table (qualified, bare or quoted): who may not see where
    the data lives reads `${object}` there — API, export, stored versions — and the SQL still
    says what it checks; who may reads it as written."""
    import yaml

    from governance.models import DataSource
    from governance.quality import services as quality

    sql = 'SELECT COUNT(*) FROM "vault"."canary_table_9f2" t WHERE t.order_id IS NULL'
    port = moved.ports.get()
    port.data_source = DataSource.objects.create(slug="wh", name="Warehouse", kind="postgresql")
    port.save(update_fields=["data_source"])
    with audit_context(actor=mesh.owner, door="web"):
        check = quality.check_create(
            port=port,
            name="nulls by sql",
            kind="custom_sql",
            params={"sql": sql, "max": 0},
            by=mesh.owner,
            verify_columns=False,
        )
        # The next stored version's document carries the rule too.
        services.product_update(product=moved, summary="Now with a rule")
    c = APIClient()
    c.force_authenticate(mesh.consumer)
    shown = c.get(f"/api/v1/quality-checks/{check.pk}/").json()["params"]["sql"]
    assert shown == "SELECT COUNT(*) FROM ${object} t WHERE t.order_id IS NULL"
    rules = yaml.safe_load(c.get(f"{API}/contract").content)["schema"][0]["quality"]
    assert "SELECT COUNT(*) FROM ${object} t WHERE t.order_id IS NULL" in [
        r.get("query") for r in rules
    ]
    versions = c.get(f"{API}/contract/versions/").json()["results"]
    latest = c.get(f"{API}/contract/versions/{versions[0]['number']}/").content.decode()
    assert "canary_table_9f2" not in latest and "${object}" in latest
    c.force_authenticate(mesh.approved)
    assert c.get(f"/api/v1/quality-checks/{check.pk}/").json()["params"]["sql"] == sql


@pytest.mark.parametrize(
    "sql",
    [
        "select 1 from canary_table_9f2",
        "select 1 from vault.canary_table_9f2",
        "select 1 from VAULT.Canary_Table_9f2",
        'select 1 from "vault"."canary_table_9f2"',
        "select 1 from `vault`.`canary_table_9f2`",
        "select 1 from [vault].[canary_table_9f2]",
        "select 1 from warehouse.vault.canary_table_9f2",
    ],
)
def test_every_spelling_of_the_table_is_hidden(sql):
    from products.connection import hide_in_sql

    assert hide_in_sql(sql, [SECRET]) == "select 1 from ${object}"
    # A longer name that only starts like the table is another table, left as written.
    assert hide_in_sql("select 1 from canary_table_9f2_old", [SECRET]).endswith("_9f2_old")
