"""Where a webhook may be sent: one rule, asked when a webhook is saved (page, admin) and again
at every delivery, where the checked address is the one connected to (no second DNS lookup for
an attacker's resolver to answer differently: DNS rebinding).

Refused unless the platform allowlist (settings.MESH_WEBHOOK_ALLOWED_HOSTS) names the host or
the address: schemes other than https (http only with settings.MESH_WEBHOOK_ALLOW_HTTP), and
any address that is not globally routable — loopback, private, link-local, site-local,
shared (CGNAT), multicast, reserved, unspecified — or that belongs to the portal's own services (its database,
broker, cache). Every address a name resolves to must pass, not just the first."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """A webhook target the rule refuses; the message says why, for its owners."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (tests replace this to play a DNS server)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(
        dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
    )


def _allowlist() -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    names, networks = set(), []
    for entry in settings.MESH_WEBHOOK_ALLOWED_HOSTS:
        entry = entry.strip().lower()
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            if entry:
                names.add(entry.rstrip("."))
    return names, networks


def _service_hosts() -> set[str]:
    """Host names of the portal's own services, from its settings."""
    urls = [settings.CELERY_BROKER_URL, getattr(settings, "CELERY_RESULT_BACKEND", "") or ""]
    for cache in settings.CACHES.values():
        location = cache.get("LOCATION") or ""
        urls.extend([location] if isinstance(location, str) else location)
    hosts = {db.get("HOST") or "" for db in settings.DATABASES.values()}
    hosts.update(urlsplit(u).hostname or "" for u in urls if "://" in u)
    return {h.lower() for h in hosts if h and not h.startswith("/")}


def _service_addresses() -> set[IPAddress]:
    found: set[IPAddress] = set()
    for host in _service_hosts():
        try:
            found.update(_resolve(host, 0))
        except (OSError, ValueError):
            continue  # a service host that does not resolve here cannot be reached from here
    return found


def _plain(address: IPAddress) -> IPAddress:
    # ::ffff:127.0.0.1 is 127.0.0.1 to the kernel.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _why_not(address: IPAddress, services: set[IPAddress]) -> str | None:
    address = _plain(address)
    own = ", one of the portal's own services" if address in services else ""
    for what, flag in (
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("a site-local address", getattr(address, "is_site_local", False)),
        ("a multicast address", address.is_multicast),
        ("an unspecified address", address.is_unspecified),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
        ("an address that is not publicly routable", not address.is_global),
    ):
        if flag:
            return what + own
    return "an address of the portal's own services" if own else None


def parse(url: str) -> Target:
    """The parts of an acceptable URL; raises TargetRefused for a scheme or form not allowed."""
    url = (url or "").strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise TargetRefused("Give an https URL.") from None
    parts = urlsplit(url)
    if parts.scheme == "http" and not settings.MESH_WEBHOOK_ALLOW_HTTP:
        raise TargetRefused("Webhooks are sent over https only.")
    if parts.username or parts.password:
        raise TargetRefused("Put no user name or password in the URL; check the signature.")
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("The port is not a number between 1 and 65535.") from None
    path = parts.path or "/"
    return Target(parts.scheme, host, port, path + (f"?{parts.query}" if parts.query else ""))


def addresses(target: Target) -> list[IPAddress]:
    """The addresses to connect to, every one checked; raises TargetRefused (with no address
    in the message: it would turn the refusal into an internal DNS lookup service)."""
    names, networks = _allowlist()
    try:
        found = _resolve(target.host, target.port)
    except (OSError, UnicodeError, ValueError):
        raise TargetRefused(f"The host {target.host} could not be resolved.") from None
    if not found:
        raise TargetRefused(f"The host {target.host} could not be resolved.")
    if target.host.lower() in names:
        return found
    services = _service_addresses()
    for address in found:
        if any(_plain(address) in net or address in net for net in networks):
            continue
        reason = _why_not(address, services)
        if reason:
            raise TargetRefused(
                f"The host {target.host} resolves to {reason}; webhooks may not be sent there. "
                "The platform team can allow it (MESH_WEBHOOK_ALLOWED_HOSTS)."
            )
    return found


def validate(url: str) -> str:
    """For saving a webhook (page, admin): the cleaned URL, or ValidationError on ``url``.

    A name that does not resolve yet is accepted (DNS may not be set up yet, or not visible
    from here); it is resolved and checked again at every delivery."""
    try:
        target = parse(url)
        try:
            addresses(target)
        except TargetRefused as e:
            if "could not be resolved" not in str(e):
                raise
    except TargetRefused as e:
        raise ValidationError({"url": str(e)}) from None
    return url.strip()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; the Host header still names the host."""

    def __init__(self, target: Target, address: IPAddress, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = str(address)

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As above over TLS: the certificate is verified for the host name (SNI), not the IP."""

    def __init__(self, target: Target, address: IPAddress, timeout: float):
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self._address = str(address)

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float = 10) -> int:
    """POST to a checked, pinned address; -> the HTTP status. Redirects are not followed (a
    redirect could lead anywhere); the answer's body is never read. Raises TargetRefused, or
    OSError when no address could be reached."""
    target = parse(url)
    last_error: OSError | None = None
    for address in addresses(target):
        cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        conn = cls(target, address, timeout)
        try:
            conn.request("POST", target.path, body=body, headers=headers)
            return conn.getresponse().status
        except OSError as e:  # includes ssl errors and timeouts; try the next address
            last_error = e
        except http.client.HTTPException as e:
            last_error = OSError(f"bad HTTP answer: {type(e).__name__}")
        finally:
            conn.close()
    raise last_error or OSError("no address to connect to")
