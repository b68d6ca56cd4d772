"""Watching, who is told about lifecycle events, and e-mail preferences."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from meshportal.models import Notification
from products import services
from products.lineage import services as lineage_services
from products.models import Watch
from tests.lineage.conftest import make_product

pytestmark = pytest.mark.django_db


def _titles(user):
    return sorted(Notification.objects.filter(user=user).values_list("title", flat=True))


def test_watch_and_unwatch_a_product_and_a_domain(client, mesh):
    client.force_login(mesh.consumer)
    r = client.post("/products/orders/published-product/lineage/watch/", {"on": "1"}, follow=True)
    assert "Watching Orders published" in r.text
    assert "Unwatch" in client.get("/products/orders/published-product/?tab=lineage").text
    client.post("/domains/users/watch/", {"on": "1"})
    assert "Unwatch domain" in client.get("/domains/users/").text
    assert {(w.product_id, w.domain_id) for w in Watch.objects.filter(user=mesh.consumer)} == {
        (mesh.products[("orders", "published")].pk, None),
        (None, mesh.users.pk),
    }
    prefs = client.get("/notifications/preferences/").text
    assert "Orders published" in prefs and "Users" in prefs
    client.post("/products/orders/published-product/lineage/watch/", {"on": "0"})
    assert not Watch.objects.filter(user=mesh.consumer, product__isnull=False).exists()


def test_watchers_of_includes_domain_watchers_who_may_see_it(mesh):
    draft = mesh.products[("orders", "draft")]
    for u in (mesh.consumer, mesh.member):
        Watch.objects.create(user=u, domain=mesh.orders)
    Watch.objects.create(user=mesh.approved, product=mesh.products[("orders", "published")])
    assert lineage_services.watchers_of(mesh.products[("orders", "published")]) == [
        mesh.approved,
        mesh.consumer,
        mesh.member,
    ]
    # A draft's watchers are only those who may see it (its team).
    assert lineage_services.watchers_of(draft) == [mesh.member]


def test_publication_tells_domain_watchers(mesh, eager_tasks):
    Watch.objects.create(user=mesh.consumer, domain=mesh.orders)
    mail.outbox.clear()
    with eager_tasks(execute=True):
        services.product_publish(product=mesh.products[("orders", "draft")])
    assert _titles(mesh.consumer) == ["Orders draft was published"]
    assert [m.to for m in mail.outbox] == [["consumer@example.com"]]


def test_deprecation_tells_watchers_downstream_owners_and_consumers(mesh, eager_tasks):
    source = mesh.products[("orders", "published")]  # `approved` holds a grant on it
    downstream = make_product(mesh.users, "reports", team=mesh.users_team)
    further = make_product(mesh.users, "exec-dash", team=mesh.users_team)
    lineage_services.input_port_create(
        product=downstream, by=mesh.other_owner, source_port=source.ports.get()
    )
    lineage_services.input_port_create(
        product=further, by=mesh.other_owner, source_port=downstream.ports.get()
    )
    Watch.objects.create(user=mesh.council, product=source)
    Notification.objects.all().delete()
    replacement = make_product(mesh.orders, "orders-v2")
    with eager_tasks(execute=True):
        services.product_deprecate(
            product=source,
            replacement=replacement,
            sunset_date=timezone.localdate() + timedelta(days=90),
        )
    for user in (mesh.council, mesh.other_owner, mesh.approved):
        assert _titles(user) == ["Orders published is deprecated"], user
    n = Notification.objects.get(user=mesh.other_owner)
    assert n.kind == "deprecation" and "Move to Orders V2" in n.body
    assert n.url == "/products/orders/published-product/"
    assert _titles(mesh.consumer) == []


def test_email_preference_off_keeps_in_app_only(client, mesh, eager_tasks):
    client.force_login(mesh.consumer)
    page = client.get("/notifications/preferences/").text
    assert 'name="deprecation"' in page and "checked" in page
    r = client.post(
        "/notifications/preferences/", {k: "on" for k in ("publication", "retirement")}, follow=True
    )
    assert "Saved your notification preferences" in r.text
    Watch.objects.create(user=mesh.consumer, domain=mesh.orders)
    mail.outbox.clear()
    with eager_tasks(execute=True):
        services.product_deprecate(product=mesh.products[("orders", "published")])
    assert _titles(mesh.consumer) == ["Orders published is deprecated"]
    assert "consumer@example.com" not in [to for m in mail.outbox for to in m.to]
    assert "approved@example.com" in [to for m in mail.outbox for to in m.to]


def test_preferences_and_mesh_need_sign_in(client):
    for url in ("/notifications/preferences/", "/lineage/mesh/", "/lineage/mesh.json"):
        r = client.get(url)
        assert r.status_code == 302 and "/login/" in r["Location"], url


@pytest.mark.redis
def test_deprecation_notifications_through_a_real_worker(transactional_db, celery_worker):
    from tests.conftest import wait_for
    from tests.factories import build_mesh

    mesh = build_mesh()
    source = mesh.products[("orders", "published")]
    downstream = make_product(mesh.users, "reports", team=mesh.users_team)
    lineage_services.input_port_create(
        product=downstream, by=mesh.other_owner, source_port=source.ports.get()
    )
    Watch.objects.create(user=mesh.consumer, product=source)
    services.product_deprecate(product=source)  # commits: the task goes to the broker
    wait_for(lambda: Notification.objects.filter(kind="deprecation").count() >= 3, timeout=60)
    assert sorted(
        Notification.objects.filter(kind="deprecation").values_list("user__username", flat=True)
    ) == ["approved", "consumer", "other_owner"]


def test_watchers_hear_quality_alerts_and_can_mute_their_email(mesh):
    from governance.quality.services import alert_recipients_many
    from meshportal.notifications import email_wanted, preferences_set

    product = mesh.products[("orders", "published")]
    Watch.objects.create(user=mesh.consumer, product=product)
    assert mesh.consumer in alert_recipients_many([product])[product.pk]
    assert email_wanted(mesh.consumer, "quality.failed")
    preferences_set(user=mesh.consumer, email_kinds={"deprecation"})
    assert not email_wanted(mesh.consumer, "quality.failed")
    assert email_wanted(mesh.consumer, "deprecation")


def test_graph_nodes_carry_the_trust_badge(client, mesh):
    from governance.models import ProductQuality

    product = mesh.products[("orders", "published")]
    ProductQuality.objects.create(product=product, trust_score=91)
    client.force_login(mesh.owner)
    data = client.get("/products/orders/published-product/lineage/graph.json").json()
    assert data["nodes"][0]["badge"] == {"label": "trust 91", "level": "success"}
