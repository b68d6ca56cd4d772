"""Every subscription kind reaches watchers in the notification centre, and by e-mail unless
they switched that kind off (issue 8, Subscriptions)."""

import pytest
from django.core import mail
from django.utils import timezone

from meshportal.models import Notification
from meshportal.notifications import SUBSCRIPTION_KINDS, preferences_set
from products import services
from products.lineage import services as lineage_services
from products.models import SchemaField, Watch
from tests.lineage.conftest import make_product

pytestmark = pytest.mark.django_db


def _publish(mesh):
    services.product_publish(product=mesh.products[("orders", "draft")])
    return "publication", "Orders draft was published"


def _major_version(mesh):
    product = mesh.products[("orders", "published")]
    services.product_update(product=product, version="2.0.0", description="Now with returns.")
    return "major_version", "Orders published: new major contract version 2.0.0"


def _breaking_change(mesh):
    product = mesh.products[("orders", "published")]
    services.field_delete(field=SchemaField.objects.get(port__product=product))
    return "contract_breaking", "Breaking change to Orders published (v1.0.0)"


def _deprecation(mesh):
    services.product_deprecate(product=mesh.products[("orders", "published")])
    return "deprecation", "Orders published is deprecated"


def _retirement(mesh):
    services.product_retire(
        product=mesh.products[("orders", "deprecated")], by=mesh.staff, force=True
    )
    return "retirement", "Orders deprecated was retired"


def _quality_change(mesh):
    from governance.models import QualityCheck, QualityRun
    from governance.quality import services as quality_services

    port = mesh.products[("orders", "published")].ports.get()
    check = QualityCheck.objects.create(port=port, name="Ids present", kind="missing")
    run = QualityRun.objects.create(
        quality_check=check, status="failed", message="3 missing", deadline=timezone.now()
    )
    quality_services.alert_state_change(check=check, run=run, previous="passed")
    return "quality.failed", "Orders published: check “Ids present” fails"


TRIGGERS = {
    "publication": _publish,
    "major_version": _major_version,
    "breaking_change": _breaking_change,
    "deprecation": _deprecation,
    "retirement": _retirement,
    "quality_change": _quality_change,
}


def test_every_subscription_kind_has_a_trigger_here():
    assert set(TRIGGERS) == set(SUBSCRIPTION_KINDS)


@pytest.mark.parametrize("kind", sorted(TRIGGERS))
def test_watchers_are_told_in_app_and_by_email_per_their_preference(mesh, eager_tasks, kind):
    """consumer and member watch the Orders domain; consumer turned this kind's e-mail off."""
    for user in (mesh.consumer, mesh.member):
        Watch.objects.create(user=user, domain=mesh.orders)
    preferences_set(user=mesh.consumer, email_kinds=set(SUBSCRIPTION_KINDS) - {kind})
    Notification.objects.all().delete()
    mail.outbox.clear()
    with eager_tasks(execute=True):
        stored_kind, title = TRIGGERS[kind](mesh)
    for user in (mesh.consumer, mesh.member):
        assert list(
            Notification.objects.filter(user=user, kind=stored_kind).values_list("title", flat=True)
        ) == [title], user
    mailed = [to for m in mail.outbox if title in m.subject for to in m.to]
    assert "member@example.com" in mailed
    assert "consumer@example.com" not in mailed


def test_a_major_version_reaches_consumers_and_downstream_owners_once(mesh, eager_tasks):
    source = mesh.products[("orders", "published")]  # `approved` holds a grant on it
    downstream = make_product(mesh.users, "reports", team=mesh.users_team)
    lineage_services.input_port_create(
        product=downstream, by=mesh.other_owner, source_port=source.ports.get()
    )
    Watch.objects.create(user=mesh.approved, product=source)  # a consumer who also watches
    Notification.objects.all().delete()
    with eager_tasks(execute=True):
        services.product_update(product=source, version="1.1.0")  # minor: nobody is told
    assert not Notification.objects.exists()
    with eager_tasks(execute=True):
        services.product_update(product=source, version="2.0.0")
    told = Notification.objects.filter(kind="major_version")
    assert sorted(told.values_list("user__username", flat=True)) == ["approved", "other_owner"]
    note = told.first()
    assert note.url == "/products/orders/published-product/?tab=contract"
    assert "2.0.0" in note.body


def test_a_breaking_change_with_its_major_version_is_announced_once(mesh, eager_tasks):
    product = mesh.products[("orders", "published")]
    Watch.objects.create(user=mesh.consumer, product=product)
    Notification.objects.all().delete()
    with eager_tasks(execute=True):
        services.product_update(product=product, version="2.0.0", freshness_slo_hours=None)
        services.field_delete(field=SchemaField.objects.get(port__product=product))
    kinds = list(Notification.objects.filter(user=mesh.consumer).values_list("kind", flat=True))
    assert sorted(kinds) == ["contract_breaking", "major_version"]  # two changes, two notes
    Notification.objects.all().delete()
    with eager_tasks(execute=True):  # one write that breaks and bumps: only the breaking note
        from products.contracts import services as contracts

        with contracts.batch():
            services.product_update(product=product, version="3.0.0")
            services.port_update(port=product.ports.get(), kind="view")
    kinds = list(Notification.objects.filter(user=mesh.consumer).values_list("kind", flat=True))
    assert kinds == ["contract_breaking"]


def test_drafts_changes_are_not_announced(mesh, eager_tasks):
    draft = mesh.products[("orders", "draft")]
    Watch.objects.create(user=mesh.member, product=draft)
    with eager_tasks(execute=True):
        services.product_update(product=draft, version="5.0.0")
    assert not Notification.objects.filter(user=mesh.member).exists()


@pytest.mark.redis
def test_major_version_notifications_through_a_real_worker(transactional_db, celery_worker):
    from tests.conftest import wait_for
    from tests.factories import build_mesh

    mesh = build_mesh()
    source = mesh.products[("orders", "published")]
    Watch.objects.create(user=mesh.consumer, product=source)
    services.product_update(product=source, version="2.0.0")  # commits: the task goes to Redis
    wait_for(lambda: Notification.objects.filter(kind="major_version").count() >= 2, timeout=60)
    assert sorted(
        Notification.objects.filter(kind="major_version").values_list("user__username", flat=True)
    ) == ["approved", "consumer"]
