import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from meshportal.permissions import VIEW_CONNECTION, can
from products import services
from products.models import AccessRequest

pytestmark = pytest.mark.django_db


def _request(mesh, product=None, user=None, **kw):
    return services.access_request_create(
        product=product or mesh.products[("orders", "published")],
        requester=user or mesh.consumer,
        purpose="quarterly report",
        **kw,
    )


def test_request_reaches_owners_inbox_and_mail(client, mesh, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    client.force_login(mesh.consumer)
    product = mesh.products[("orders", "published")]
    with django_capture_on_commit_callbacks(execute=True):  # e-mails leave on commit
        r = client.post(
            reverse("products:request_access", args=["orders", product.slug]),
            {"purpose": "churn analysis", "duration_days": 30},
        )
    assert r.status_code == 302
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    client.force_login(mesh.owner)
    inbox = client.get(reverse("products:inbox"))
    assert "churn analysis" in inbox.text
    assert 'aria-label="1 pending"' in inbox.text  # the count in the navigation
    client.force_login(mesh.member)  # members see the inbox empty: owners decide
    assert "churn analysis" not in client.get(reverse("products:inbox")).text


def test_request_form_errors_next_to_field(client, mesh):
    client.force_login(mesh.consumer)
    product = mesh.products[("orders", "published")]
    r = client.post(
        reverse("products:request_access", args=["orders", product.slug]),
        {"purpose": "", "duration_days": 0},
    )
    assert r.status_code == 200
    assert 'id="id_purpose-error"' in r.text and 'id="id_duration_days-error"' in r.text
    assert not AccessRequest.objects.filter(requester=mesh.consumer).exists()


def test_approval_grants_connection_details_until_revoked(client, mesh):
    product = mesh.products[("orders", "published")]
    req = _request(mesh)
    assert not can(mesh.consumer, VIEW_CONNECTION, product)
    services.access_request_approve(request=req, by=mesh.owner, comment="ok")
    client.force_login(mesh.consumer)
    assert "sales.secret_table" in client.get(product.get_absolute_url() + "?tab=ports").text
    # Consumers are listed on the product's Access tab.
    assert "consumer" in client.get(product.get_absolute_url() + "?tab=access").text
    client.force_login(mesh.owner)
    client.post(reverse("products:revoke", args=[req.pk]))
    req.refresh_from_db()
    assert req.status == "revoked"
    client.force_login(mesh.consumer)
    assert "sales.secret_table" not in client.get(product.get_absolute_url() + "?tab=ports").text


def test_team_grant_covers_every_member(mesh):
    from domains import services as domain_services
    from tests.factories import user

    product = mesh.products[("users", "published")]
    colleague = user("colleague")
    domain_services.membership_set(team=mesh.orders_team, user=colleague, role="member")
    # The member of orders requests for their whole team.
    req = services.access_request_create(
        product=product, requester=mesh.member, purpose="join", team=mesh.orders_team
    )
    services.access_request_approve(request=req, by=mesh.other_owner)
    from django.contrib.auth import get_user_model

    fresh = get_user_model().objects.get(pk=colleague.pk)
    assert can(fresh, VIEW_CONNECTION, product)


@pytest.mark.parametrize("move", ["approve_twice", "own_request", "non_owner", "already_has"])
def test_wrong_moves_are_refused_and_change_nothing(mesh, move):
    if move == "already_has":
        with pytest.raises(ValidationError, match="already have access"):
            _request(mesh, user=mesh.approved)
        return
    if move == "own_request":
        # An owner of another team requests; then tries to decide it themselves as staff would.
        req = _request(mesh, user=mesh.other_owner)
        with pytest.raises(PermissionDenied, match="own request"):
            services.access_request_approve(request=req, by=mesh.other_owner)
    elif move == "non_owner":
        req = _request(mesh)
        with pytest.raises(Http404):  # a member who is not an owner may not even see it
            services.access_request_approve(request=req, by=mesh.member)
    else:
        req = _request(mesh)
        services.access_request_approve(request=req, by=mesh.owner)
        with pytest.raises(ValidationError, match="already approved"):
            services.access_request_approve(request=req, by=mesh.owner)
    req.refresh_from_db()
    assert req.status == ("approved" if move == "approve_twice" else "pending")


def test_cannot_request_twice_while_pending(mesh):
    _request(mesh)
    with pytest.raises(ValidationError, match="pending or approved"):
        _request(mesh)
    assert AccessRequest.objects.filter(requester=mesh.consumer).count() == 1


def test_deny_needs_a_reason(mesh):
    req = _request(mesh)
    with pytest.raises(ValidationError):
        services.access_request_deny(request=req, by=mesh.owner, comment="")
    services.access_request_deny(request=req, by=mesh.owner, comment="not for marketing")
    req.refresh_from_db()
    assert req.status == "denied"


def test_expiry_revokes_the_grant(mesh):
    product = mesh.products[("orders", "published")]
    req = _request(mesh)
    services.access_request_approve(request=req, by=mesh.owner)
    AccessRequest.objects.filter(pk=req.pk).update(expires_at=timezone.now())
    assert services.access_grants_expire() == 1
    req.refresh_from_db()
    assert req.status == "expired"
    from django.contrib.auth import get_user_model

    assert not can(get_user_model().objects.get(pk=mesh.consumer.pk), VIEW_CONNECTION, product)
    assert services.access_grants_expire() == 0  # idempotent


def test_my_requests_lists_only_mine(client, mesh):
    _request(mesh)
    _request(mesh, product=mesh.products[("users", "published")], user=mesh.owner)
    client.force_login(mesh.consumer)
    r = client.get(reverse("products:my_requests"))
    assert "Orders published" in r.text and "Users published" not in r.text
