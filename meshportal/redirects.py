"""Where a request may send its user next. Every ``next`` (or other redirect target) that comes
from a request goes through :func:`safe_next`: the Watch buttons, the request basket's Add button,
the login and logout pages, and any htmx or form view that returns the user to where they came
from. One rule, one place."""

from urllib.parse import urlsplit

from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request, candidate: str | None, default: str) -> str:
    """``candidate`` when it is a relative path on this site, else ``default``.

    Refused: other hosts (``https://evil``), scheme-relative and slash tricks (``//evil``,
    ``///evil``, ``/\\evil``, ``\\\\evil`` — browsers read backslashes as slashes), schemes
    (``javascript:``) and control characters (a header split, or a browser that drops them).
    Absolute URLs to this very host are refused too: a path is all a page ever needs to pass.
    """
    url = candidate or ""
    if not url or any(ord(c) < 32 or ord(c) == 127 for c in url):
        return default
    parts = urlsplit(url.replace("\\", "/"))
    if parts.scheme or parts.netloc or not url.startswith("/"):
        return default
    if not url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return default
    return url


class SafeNextMixin:
    """For Django's auth views (login, logout): their ``next`` goes through :func:`safe_next`."""

    redirect_field_name = "next"

    def get_redirect_url(self, request=None):
        request = request or self.request
        name = self.redirect_field_name
        return safe_next(request, request.POST.get(name, request.GET.get(name)), "")
