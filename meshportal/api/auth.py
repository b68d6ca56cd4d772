"""API tokens (create, revoke, authenticate) and the API's throttles."""

import hashlib
import secrets
from datetime import timedelta
from types import SimpleNamespace

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling

from meshportal import audit
from meshportal.fields import check_value
from meshportal.models import ApiToken

TOKEN_PREFIX = "mesh_"  # a label, not a secret  # noqa: S105  # nosec B105


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def token_create(*, user, name: str, created_by=None) -> tuple[ApiToken, str]:
    """Create a token; returns it with its secret, which is never stored nor shown again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name (what will use it?)."})
    check_value(ApiToken, "name", name)  # the model's max_length, one line
    if ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True).exists():
        raise ValidationError({"name": f"You already have an active token named “{name}”."})
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[: len(TOKEN_PREFIX) + 6],
        key_hash=_hash(key),
        created_by=created_by or user,
    )
    audit.record(action="create", obj=token, changes={"name": [None, name]})
    return token, key


@transaction.atomic
def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(
            action="update", obj=token, changes={"revoked_at": [None, str(token.revoked_at)]}
        )
    return token


class TokenRefused(Exception):
    """The Authorization header names a token that is not one (its message says why)."""


KEYWORDS = ("bearer", "token")


def token_from_header(header: str) -> ApiToken | None:
    """The active token an `Authorization: Bearer mesh_…` (or `Token mesh_…`) header names, with
    its user; None when the header is absent or another scheme's. Raises TokenRefused for a
    malformed header, an unknown or revoked token, or an inactive user. The one token check of
    every door that takes tokens (the API, the MCP server)."""
    parts = (header or "").split()
    if not parts or parts[0].lower() not in KEYWORDS:
        return None
    if len(parts) != 2:
        raise TokenRefused("Authorization header: give one token.")
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_hash(parts[1]), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        raise TokenRefused("Invalid or revoked token.")
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer mesh_…` (or `Token mesh_…`)."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        try:
            token = token_from_header(header)
        except TokenRefused as e:
            raise exceptions.AuthenticationFailed(str(e)) from None
        return None if token is None else (token.user, token)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class _Rates:
    """Read rates when asked (not at import) so settings overrides in tests apply."""

    def get_rate(self):
        return settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].get(self.scope)


class AnonThrottle(_Rates, throttling.AnonRateThrottle):
    pass


class UserThrottle(_Rates, throttling.UserRateThrottle):
    """Signed-in users through the browser session."""

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            return None
        return super().get_cache_key(request, view)


class TokenThrottle(_Rates, throttling.SimpleRateThrottle):
    """Each token has its own budget."""

    scope = "token"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}


def token_throttle_wait(token: ApiToken) -> float | None:
    """Spend one call of the token's budget (`API_THROTTLE_TOKEN`, shared by every door that
    takes tokens): None when allowed, else the seconds to wait."""
    throttle = TokenThrottle()
    caller = SimpleNamespace(auth=token)  # all the throttle reads of a request
    if throttle.allow_request(caller, None):  # type: ignore[arg-type]
        return None
    return throttle.wait() or 1.0


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "meshportal.api.auth.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from your profile page: `Bearer mesh_…`.",
        }
