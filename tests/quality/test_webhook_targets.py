"""Webhooks cannot be aimed at the portal's own network (SSRF): refused when saved (team page,
admin) and again at delivery, where the checked address is the one connected to."""

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from governance.models import Webhook, WebhookDelivery
from governance.quality import services, webhook_targets

pytestmark = pytest.mark.django_db

PAGE = "/teams/orders-team/webhooks/"
CANARY = "INTERNAL-SERVICE-ANSWER-7f3a"
PUBLIC = "93.184.216.34"  # a globally routable address (never connected to in these tests)


class _Listener(BaseHTTPRequestHandler):
    """A local service: answers every POST with a body a prober would love to read."""

    received: list = []
    status = 200
    location = ""

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Host"], body))
        self.send_response(type(self).status)
        if type(self).location:
            self.send_header("Location", type(self).location)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(CANARY.encode())

    def log_message(self, *a):
        pass


def _serve():
    handler = type("Listener", (_Listener,), {"received": [], "status": 200, "location": ""})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture
def listener(settings):
    settings.MESH_WEBHOOK_ALLOW_HTTP = True  # the listener speaks plain http
    server, handler = _serve()
    yield server.server_port, handler
    server.shutdown()


@pytest.fixture
def dns(monkeypatch):
    """A DNS server the test controls: name -> a list of answers, one used per lookup (the last
    one repeats). IP literals resolve to themselves; other names do not resolve."""
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []

    def resolve(host, port):
        lookups.append(host)
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        queue = answers[host]
        current = queue.pop(0) if len(queue) > 1 else queue[0]
        return [ipaddress.ip_address(a) for a in current]

    monkeypatch.setattr(webhook_targets, "_resolve", resolve)
    return answers, lookups


REFUSED_URLS = [
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://127.1.2.3:6379/",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://10.0.0.5/hook",
    "https://172.16.3.4/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[fe80::1]/hook",
    "https://[fd00::1]/hook",
    "https://100.64.0.1/hook",
    "https://224.0.0.1/hook",
    "https://240.0.0.1/hook",
    "https://0.0.0.0/hook",
    "https://[::ffff:7f00:1]/hook",  # 127.0.0.1, IPv4-mapped, written in hex
    "https://[fec0::1]/hook",  # site-local (deprecated, still routed inside some networks)
    "https://[::]/hook",
    "https://decimal.example.test/hook",  # an A record of 2130706433 is 127.0.0.1
    "https://internal.example.test/hook",  # resolves to a private address (fake DNS)
    "https://mixed.example.test/hook",  # one public and one loopback address
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_saving_a_webhook_to_an_internal_address_is_refused_next_to_the_field(
    client, mesh, dns, url
):
    answers, _ = dns
    answers["localhost"] = [["127.0.0.1"]]
    answers["internal.example.test"] = [["10.1.2.3"]]
    answers["mixed.example.test"] = [[PUBLIC, "127.0.0.1"]]
    answers["decimal.example.test"] = [[str(ipaddress.ip_address(2130706433))]]
    client.force_login(mesh.owner)
    r = client.post(PAGE, {"url": url, "active": "on"})
    assert r.status_code == 400
    assert "webhooks may not be sent there" in r.text
    assert not Webhook.objects.exists()


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://hooks.example.test/x", "https only"),
        ("ftp://hooks.example.test/x", "Give an https URL"),
        ("https://user:pw@hooks.example.test/x", "no user name or password"),
    ],
)
def test_only_https_without_credentials(client, mesh, dns, url, reason):
    dns[0]["hooks.example.test"] = [[PUBLIC]]
    client.force_login(mesh.owner)
    r = client.post(PAGE, {"url": url, "active": "on"})
    assert r.status_code == 400 and reason in r.text
    assert not Webhook.objects.exists()


def test_http_is_allowed_when_the_setting_says_so(mesh, dns, settings):
    dns[0]["hooks.example.test"] = [[PUBLIC]]
    settings.MESH_WEBHOOK_ALLOW_HTTP = True
    hook, _ = services.webhook_create(team=mesh.orders_team, url="http://hooks.example.test/x")
    assert hook.url == "http://hooks.example.test/x"


def test_the_portals_own_services_are_refused_even_on_public_addresses(mesh, dns, settings):
    from django.core.exceptions import ValidationError

    dns[0]["broker.corp.example"] = [[PUBLIC]]
    dns[0]["hooks.example.test"] = [[PUBLIC]]
    settings.CELERY_BROKER_URL = "redis://broker.corp.example:6379/0"
    with pytest.raises(ValidationError) as e:
        services.webhook_create(team=mesh.orders_team, url="https://hooks.example.test/x")
    assert "the portal's own services" in e.value.message_dict["url"][0]


def test_the_admin_refuses_too(client, mesh, dns):
    dns[0]["hooks.example.test"] = [[PUBLIC]]
    hook, _ = services.webhook_create(team=mesh.orders_team, url="https://hooks.example.test/x")
    client.force_login(mesh.staff)
    r = client.post(
        f"/admin/governance/webhook/{hook.pk}/change/",
        {"team": mesh.orders_team.pk, "url": "https://169.254.169.254/", "active": "on"},
    )
    assert r.status_code == 200 and "webhooks may not be sent there" in r.text
    hook.refresh_from_db()
    assert hook.url == "https://hooks.example.test/x"


def test_a_name_that_does_not_resolve_yet_is_saved_and_checked_at_delivery(mesh, dns):
    hook, _ = services.webhook_create(team=mesh.orders_team, url="https://later.example.test/x")
    delivery, _ = services.webhook_send_test(hook=hook)
    assert services.webhook_deliver(delivery_id=delivery.pk, final=True) == "failed"
    delivery.refresh_from_db()
    assert "could not be resolved" in delivery.error


def _delivery_to(team, url: str) -> WebhookDelivery:
    # Saved straight into the table, as if the rule had changed since, or DNS had.
    hook = Webhook.objects.create(team=team, url=url, secret="s")
    return WebhookDelivery.objects.create(webhook=hook, event="webhook.test", body="{}")


def test_delivery_to_a_local_listener_is_refused_without_connecting(client, mesh, listener):
    port, handler = listener
    delivery = _delivery_to(mesh.orders_team, f"http://127.0.0.1:{port}/hook")
    # Refused at once, for good: no retry, the same rule would refuse it again.
    assert services.webhook_deliver(delivery_id=delivery.pk) == "failed"
    assert handler.received == []
    delivery.refresh_from_db()
    assert delivery.error.startswith("Refused:") and "loopback" in delivery.error
    assert delivery.response_code is None
    client.force_login(mesh.owner)
    log = client.get(PAGE).text
    assert "Refused" in log and CANARY not in log


def test_the_allowlist_lets_delivery_through_and_the_answer_is_never_shown(
    client, mesh, listener, settings
):
    port, handler = listener
    settings.MESH_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    handler.status = 500
    delivery = _delivery_to(mesh.orders_team, f"http://127.0.0.1:{port}/hook")
    assert services.webhook_deliver(delivery_id=delivery.pk, final=True) == "failed"
    handler.status = 200
    assert services.webhook_deliver(delivery_id=delivery.pk) == "delivered"
    assert len(handler.received) == 2
    client.force_login(mesh.owner)
    log = client.get(PAGE).text
    assert "Delivered" in log and CANARY not in log
    delivery.refresh_from_db()
    assert CANARY not in delivery.error


def test_dns_rebinding_checked_address_is_the_one_connected_to(mesh, listener, dns, settings):
    """A name that resolved to a public address when saved answers loopback at delivery:
    refused. And when it is allowed, the connection goes to the address checked, without
    asking DNS again (whose next answer would be elsewhere)."""
    port, handler = listener
    answers, lookups = dns
    answers["rebind.example.test"] = [[PUBLIC], ["127.0.0.1"]]
    hook, _ = services.webhook_create(
        team=mesh.orders_team, url=f"http://rebind.example.test:{port}/hook"
    )
    delivery, _ = services.webhook_send_test(hook=hook)
    assert services.webhook_deliver(delivery_id=delivery.pk) == "failed"
    assert handler.received == [] and "loopback" in WebhookDelivery.objects.get().error

    settings.MESH_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.0/8"]
    answers["pinned.example.test"] = [["127.0.0.1"], ["10.255.255.1"]]
    hook.url = f"http://pinned.example.test:{port}/hook"
    hook.save()
    delivery, _ = services.webhook_send_test(hook=hook)
    lookups.clear()
    assert services.webhook_deliver(delivery_id=delivery.pk) == "delivered"
    assert lookups.count("pinned.example.test") == 1
    assert handler.received[-1][0] == f"pinned.example.test:{port}"  # the Host header


def test_redirects_are_not_followed(mesh, listener, settings):
    port, handler = listener
    settings.MESH_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    inner, inner_handler = _serve()
    try:
        handler.status, handler.location = 307, f"http://127.0.0.1:{inner.server_port}/x"
        delivery = _delivery_to(mesh.orders_team, f"http://127.0.0.1:{port}/hook")
        assert services.webhook_deliver(delivery_id=delivery.pk, final=True) == "failed"
        assert inner_handler.received == []
        delivery.refresh_from_db()
        assert (delivery.response_code, delivery.error) == (307, "HTTP 307")
    finally:
        inner.shutdown()
