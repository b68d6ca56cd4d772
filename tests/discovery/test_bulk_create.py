"""Many new products at once (`products_create_many`, a backup restore's path): the same rows,
rights, audit entries, contract version and policy mark as `product_create` writes for each, with
statements that do not grow with the products; the same validation; nothing written on an error."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError

from governance.models import DirtyProduct
from meshportal import bulk
from meshportal.audit import AuditEntry, audit_context
from meshportal.permissions import EDIT, VIEW, can
from products import services
from products.contracts import services as contracts
from products.models import ContractVersion, DataProduct, OutputPort, SchemaField


def spec(slug: str) -> dict:
    return {
        "slug": slug,
        "name": "Shipments",
        "summary": "Every parcel",
        "tags": ["Logistics", "logistics", "EU"],  # the same slug twice: one tag
        "ports": [
            {
                "slug": "parcels",
                "name": "Parcels",
                "kind": "table",
                "location": "ship.parcels",
                "fields": [
                    {"name": "parcel_id", "logical_type": "integer", "primary_key": True},
                    {"name": "recipient", "pii": True, "description": "Who gets it"},
                ],
            },
            {"name": "Daily View", "kind": "view", "fields": []},  # slug from the name
        ],
    }


def entries(product: DataProduct) -> list[tuple]:
    """The product's audit entries, without what differs between two products (ids, slug)."""
    out = []
    for e in AuditEntry.objects.filter(scope_id=str(product.pk), scope_type__model="dataproduct"):
        changes = {k: v for k, v in e.changes.items() if k not in ("slug", "product", "port")}
        out.append((e.content_type.model, e.action, e.actor_name, e.door, repr(changes)))
    return sorted(out)


def test_many_at_once_write_what_product_create_writes(mesh, django_capture_on_commit_callbacks):
    with audit_context(door="command"), django_capture_on_commit_callbacks(execute=True):
        one = services.product_create(domain=mesh.orders, **spec("one-by-one"))
        built = services.product_build(domain=mesh.orders, **spec("all-at-once"))
        (many,) = services.products_create_many([built])
    one, many = (DataProduct.objects.get(pk=p.pk) for p in (one, many))

    assert (
        entries(many) == entries(one) and len(entries(many)) == 1 + 2 + 2
    )  # product, ports, fields
    assert sorted(t.slug for t in many.tags.all()) == ["eu", "logistics"]
    assert [(p.slug, [f.name for f in p.fields.all()]) for p in many.ports.all()] == [
        (p.slug, [f.name for f in p.fields.all()]) for p in one.ports.all()
    ]
    # The team's rights, and nobody else's.
    assert can(mesh.member, EDIT, many) and not can(mesh.consumer, VIEW, many)
    # Version 1 of its contract, as the one-by-one product's with the other name.
    v_one, v_many = (ContractVersion.objects.get(product=p) for p in (one, many))
    assert v_many.number == 1 and v_many.snapshot == v_one.snapshot
    assert v_many.document == v_one.document.replace("one-by-one", "all-at-once")
    assert contracts.export_yaml(many) == v_many.document
    # Marked for the next policy evaluation, as a product's save marks it.
    assert set(DirtyProduct.objects.values_list("product_id", flat=True)) >= {one.pk, many.pk}


def test_statements_do_not_grow_with_the_products(mesh, django_assert_max_num_queries):
    def create(n: int, prefix: str) -> None:
        built = [
            services.product_build(domain=mesh.orders, **spec(f"{prefix}-{i}")) for i in range(n)
        ]
        with audit_context(door="command"):
            services.products_create_many(built)

    create(1, "warm")  # content types, permission ids
    with django_assert_max_num_queries(30):
        create(40, "bulk")
    assert DataProduct.objects.filter(slug__startswith="bulk-").count() == 40
    assert SchemaField.objects.filter(port__product__slug__startswith="bulk-").count() == 80


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": ""}, "name", "cannot be blank"),
        ({"classification": "secret"}, "classification", "not a valid choice"),
        ({"tags": ["x" * 300]}, "tags", "Tag “"),
        ({"ports": [{"name": "P", "kind": "lake"}]}, "kind", "not a valid choice"),
        ({"ports": [{"name": "P", "kind": "table"}] * 2}, "__all__", "already exists"),
        (
            {"ports": [{"name": "P", "kind": "table", "fields": [{"name": "a"}, {"name": "a"}]}]},
            "__all__",
            "already exists",
        ),
        (
            {
                "ports": [
                    {
                        "name": "P",
                        "kind": "table",
                        "fields": [{"name": "a", "logical_type": "bigint"}],
                    }
                ]
            },
            "logical_type",
            "not a valid choice",
        ),
    ],
)
def test_build_refuses_what_product_create_refuses(mesh, change, field, message):
    for create in (services.product_create, services.product_build):
        with pytest.raises(ValidationError) as e:
            create(domain=mesh.orders, **{**spec("bad"), **change})
        assert message in " ".join(e.value.message_dict[field])
    assert not DataProduct.objects.filter(slug="bad").exists()


def test_a_taken_name_writes_nothing(mesh):
    products, ports, entries_before = (
        DataProduct.objects.count(),
        OutputPort.objects.count(),
        AuditEntry.objects.count(),
    )
    built = [
        services.product_build(domain=mesh.orders, **spec("fresh")),
        services.product_build(domain=mesh.orders, **spec("draft-product")),  # the mesh's
    ]
    with pytest.raises(ValidationError, match="already exists"):
        services.products_create_many(built)
    twice = [services.product_build(domain=mesh.orders, **spec("twin")) for _ in range(2)]
    with pytest.raises(ValidationError, match="already exists"):
        services.products_create_many(twice)
    assert DataProduct.objects.count() == products and OutputPort.objects.count() == ports
    assert AuditEntry.objects.count() == entries_before


def test_a_port_reads_only_a_source_open_to_the_products_team(mesh):
    from governance.models import DataSource

    source = DataSource.objects.create(slug="hr", name="HR", kind="sqlite", database="hr.sqlite3")
    source.teams.set([mesh.users_team])
    port = {"name": "P", "kind": "table", "location": "t", "data_source": source}
    with pytest.raises(ValidationError, match="not open to Orders Team"):
        services.product_build(domain=mesh.orders, **{**spec("hr"), "ports": [port]})
    assert services.product_build(domain=mesh.users, **{**spec("hr"), "ports": [port]})


def test_bulk_insert_gives_each_row_its_id(mesh):
    rows = [
        AuditEntry(
            action="create", object_id=str(i), object_repr=f"row {i}", changes={"n": [None, i]}
        )
        for i in range(3)
    ]
    for row in rows:
        row.content_type = row.scope_type = ContentType.objects.get_for_model(mesh.orders)
        row.scope_id = str(mesh.orders.pk)
    bulk.insert(rows, ids=True)
    assert all(r.pk for r in rows)
    stored = {e.pk: e.changes for e in AuditEntry.objects.filter(pk__in=[r.pk for r in rows])}
    assert stored == {r.pk: {"n": [None, i]} for i, r in enumerate(rows)}


def test_members_add_writes_what_membership_set_writes(mesh):
    from domains import services as domain_services
    from domains.models import Membership

    team = mesh.users_team
    product = mesh.products[("users", "draft")]
    with audit_context(door="command"):
        with pytest.raises(ValidationError, match="Unknown role"):
            domain_services.members_add(
                team=team, members=[(mesh.consumer, "member"), (mesh.approved, "boss")]
            )
        with pytest.raises(ValidationError, match="named twice"):
            domain_services.members_add(
                team=team, members=[(mesh.consumer, "member"), (mesh.other_owner, "member")]
            )
        assert not Membership.objects.filter(team=team, user=mesh.consumer).exists()
        assert not can(mesh.consumer, VIEW, product)
        domain_services.members_add(
            team=team, members=[(mesh.consumer, "member"), (mesh.approved, "owner")]
        )
    assert dict(team.memberships.values_list("user__username", "role")) == {
        "other_owner": "owner",
        "consumer": "member",
        "approved": "owner",
    }
    assert can(mesh.consumer, EDIT, product)  # the team's group: its rights
    entry = AuditEntry.objects.filter(scope_id=str(team.pk), object_repr__contains="consumer")
    assert entry.get().changes == {"user": [None, "consumer"], "role": [None, "member"]}


def test_bulk_work_queues_one_embedding_task_per_batch(
    mesh, monkeypatch, django_capture_on_commit_callbacks
):
    from meshportal import queue
    from products.discovery import semantic
    from products.discovery.search import deferred_indexing

    if not semantic.enabled():
        pytest.skip("no embedding model here")
    sent = []
    monkeypatch.setattr(queue, "enqueue", lambda task, *args, **kw: sent.append((task, args)))
    with (
        audit_context(door="command"),
        django_capture_on_commit_callbacks(execute=True),
        deferred_indexing(),
    ):
        built = [services.product_build(domain=mesh.orders, **spec(f"e-{i}")) for i in range(3)]
        created = services.products_create_many(built)
        services.field_create(port=created[0].ports.first(), name="late_field")
    embeds = [args for task, args in sent if task == semantic.TASK]
    assert embeds == [(sorted(p.pk for p in created),)]
