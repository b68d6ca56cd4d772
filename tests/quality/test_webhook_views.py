"""A team's owners manage its outgoing webhooks in the browser: add (secret shown once), edit,
delete, send a test, see the delivery log; everyone else is refused."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from governance.models import Webhook, WebhookDelivery
from governance.quality import services
from meshportal.models import AuditEntry

pytestmark = pytest.mark.django_db

URL = "/teams/orders-team/webhooks/"


class _Receiver(BaseHTTPRequestHandler):
    received: list = []
    status = 204

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def receiver(settings):
    # A local listener is loopback: allowed here by the platform allowlist, over http.
    settings.MESH_WEBHOOK_ALLOW_HTTP = True
    settings.MESH_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver
    server.shutdown()


def test_owner_adds_a_webhook_and_sees_the_secret_once(client, mesh):
    client.force_login(mesh.owner)
    assert "Outgoing webhooks" in client.get("/teams/orders-team/").text
    r = client.post(URL, {"url": "https://example.test/hook", "active": "on"})
    assert r.status_code == 201
    assert "no-store" in r.headers["Cache-Control"]
    hook = Webhook.objects.get(team=mesh.orders_team)
    assert hook.active and hook.url == "https://example.test/hook"
    assert len(hook.secret) >= 32 and hook.secret in r.text  # shown on this response only
    # Never again: not on the list, the edit page, the admin list, nor in the audit log.
    assert hook.secret not in client.get(URL).text
    assert hook.secret not in client.get(f"/webhooks/{hook.pk}/edit/").text
    entry = AuditEntry.objects.filter(object_id=str(hook.pk), action="create").latest("pk")
    assert entry.changes["url"] == [None, "https://example.test/hook"]
    assert hook.secret not in json.dumps(entry.changes) and "secret" not in entry.changes
    # Added switched off, it stays off.
    client.post(URL, {"url": "https://off.test/hook"})
    assert not Webhook.objects.get(url="https://off.test/hook").active
    client.force_login(mesh.staff)
    assert hook.secret not in client.get(f"/admin/governance/webhook/{hook.pk}/change/").text


def test_owner_edits_and_deletes(client, mesh):
    hook, _ = services.webhook_create(team=mesh.orders_team, url="https://a.test/x")
    client.force_login(mesh.owner)
    r = client.post(f"/webhooks/{hook.pk}/edit/", {"url": "ftp://nope"})
    assert r.status_code == 200 and "URL" in r.text
    r = client.post(f"/webhooks/{hook.pk}/edit/", {"url": "https://b.test/y"})
    assert r.status_code == 302
    hook.refresh_from_db()
    assert (hook.url, hook.active) == ("https://b.test/y", False)
    assert client.post(f"/webhooks/{hook.pk}/delete/").status_code == 302
    assert not Webhook.objects.filter(pk=hook.pk).exists()


def test_send_test_delivers_a_signed_post_and_the_log_shows_the_status_code(
    client, mesh, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    url, handler = receiver
    hook, secret = services.webhook_create(team=mesh.orders_team, url=url)
    sent = []
    # The worker's part, run in-line: the task is what the queue would deliver.
    monkeypatch.setattr(
        "meshportal.queue._publish",
        lambda name, args, kwargs, options: sent.append((name, args, options)),
    )
    client.force_login(mesh.owner)
    with django_capture_on_commit_callbacks(execute=True):  # queued once the row commits
        r = client.post(f"/webhooks/{hook.pk}/test/", follow=True)
    assert "Test delivery sent" in r.text
    (name, args, options) = sent[0]
    assert name.endswith("deliver_webhook") and options == {"queue": "notifications"}
    handler.status = 500
    assert services.webhook_deliver(delivery_id=args[0], final=True) == "failed"
    handler.status = 204
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/webhooks/{hook.pk}/test/")
    assert services.webhook_deliver(delivery_id=sent[1][1][0]) == "delivered"
    headers, body = handler.received[-1]
    assert headers["X-Mesh-Event"] == "webhook.test"
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Mesh-Signature"] == expected
    page = client.get(URL).text
    log = page[page.index('id="deliveries"') :]
    assert log.count("webhook.test") == 2 and "500" in log and "204" in log
    assert "Delivered" in log and "Failed" in log


def test_list_page_has_a_fixed_number_of_queries(client, mesh, django_assert_max_num_queries):
    client.force_login(mesh.owner)
    for i in range(3):
        h, _ = services.webhook_create(team=mesh.orders_team, url=f"https://a.test/{i}")
        WebhookDelivery.objects.create(webhook=h, event="x", body="{}", response_code=200)
    with django_assert_max_num_queries(12) as few:
        client.get(URL)
    for i in range(10):
        h, _ = services.webhook_create(team=mesh.orders_team, url=f"https://b.test/{i}")
        WebhookDelivery.objects.create(webhook=h, event="x", body="{}", response_code=200)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(URL)


def test_non_owners_are_refused(client, mesh):
    hook, _ = services.webhook_create(team=mesh.orders_team, url="https://a.test/x")
    other, _ = services.webhook_create(team=mesh.users_team, url="https://u.test/x")
    # A member (not owner) of the team: the team is visible, managing it is not -> 403.
    client.force_login(mesh.member)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"url": "https://evil.test/"}).status_code == 403
    # Its webhooks are not visible to them at all -> 404, and nothing is sent or changed.
    assert client.post(f"/webhooks/{hook.pk}/test/").status_code == 404
    assert client.post(f"/webhooks/{hook.pk}/delete/").status_code == 404
    assert client.post(f"/webhooks/{hook.pk}/edit/", {"url": "https://e.test/"}).status_code == 404
    # Another team's owner: same, for this team's webhooks.
    client.force_login(mesh.other_owner)
    assert client.get(URL).status_code == 403
    assert client.post(f"/webhooks/{hook.pk}/test/").status_code == 404
    assert client.get(f"/webhooks/{other.pk}/edit/").status_code == 200
    assert not WebhookDelivery.objects.filter(webhook=hook).exists()
    assert Webhook.objects.count() == 2
    hook.refresh_from_db()
    assert hook.url == "https://a.test/x"
    client.logout()
    assert client.get(URL).status_code in (302, 403)
