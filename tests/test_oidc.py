"""Optional OpenID Connect sign-on: off by default; when configured, the identity provider's
group claim decides team memberships (through the domain services, so rules and audit hold)."""

import json

from django.conf import settings as django_settings

from domains.models import Membership
from meshportal.models import AuditEntry
from meshportal.oidc import TeamMappingOIDCBackend, parse_team_groups, sync_teams
from tests import factories
from tests.prod_env import manage

OIDC_ENV = {
    "OIDC_RP_CLIENT_ID": "mesh-portal",
    "OIDC_RP_CLIENT_SECRET": "s3cret-value",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://idp.example.com/authorize",
    "OIDC_OP_TOKEN_ENDPOINT": "https://idp.example.com/token",
    "OIDC_OP_USER_ENDPOINT": "https://idp.example.com/userinfo",
    "OIDC_OP_JWKS_ENDPOINT": "https://idp.example.com/jwks",
}


def test_oidc_is_off_by_default(client):
    assert django_settings.OIDC_ENABLED is False
    assert "mozilla_django_oidc" not in django_settings.INSTALLED_APPS
    assert not [b for b in django_settings.AUTHENTICATION_BACKENDS if "oidc" in b.lower()]
    assert client.get("/oidc/authenticate/").status_code == 404
    assert "single sign-on" not in client.get("/login/").text


def test_oidc_configured_by_environment_sends_people_to_the_identity_provider(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(OIDC_ENV)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'oidc.sqlite3'}"
    code = (
        "from django.conf import settings; from django.test import Client; import json;"
        # No database in this subprocess: keep the sign-on state in a signed cookie.
        "settings.SESSION_ENGINE = 'django.contrib.sessions.backends.signed_cookies';"
        "c = Client(); r = c.get('/oidc/authenticate/'); login = c.get('/login/');"
        "print(json.dumps({'backends': settings.AUTHENTICATION_BACKENDS,"
        " 'status': r.status_code, 'location': r.get('Location', ''),"
        " 'button': 'Sign in with single sign-on' in login.content.decode()}))"
    )
    result = manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["backends"][:2] == [
        "meshportal.auth.ThrottleBackend",
        "meshportal.oidc.TeamMappingOIDCBackend",
    ]
    assert out["status"] == 302
    assert out["location"].startswith("https://idp.example.com/authorize?")
    assert "client_id=mesh-portal" in out["location"]
    assert out["button"] is True
    assert "s3cret-value" not in result.stdout + result.stderr


def test_parse_team_groups():
    groups = [
        "team:orders-team:owner",
        "team:users-team",
        "team:ops:member",
        "everyone",
        "team:bad:admin",
        "team:",
        "team:users-team:owner",
        "team:orders-team",
        42,
    ]
    assert parse_team_groups(groups, prefix="team:") == {
        "orders-team": "owner",
        "users-team": "owner",
        "ops": "member",
    }
    assert parse_team_groups("team:ops", prefix="team:") == {"ops": "member"}
    assert parse_team_groups(None, prefix="team:") == {}
    assert parse_team_groups(["idp-team:ops:owner"], prefix="idp-team:") == {"ops": "owner"}


def _roles(user) -> dict[str, str]:
    return dict(Membership.objects.filter(user=user).values_list("team__slug", "role"))


def test_sync_adds_changes_and_removes_memberships(mesh):
    user = factories.user("sso-person")
    outcome = sync_teams(
        user, {"groups": ["team:orders-team:owner", "team:users-team", "team:nope"]}
    )
    assert outcome == {"orders-team": "owner", "users-team": "member", "nope": "unknown team"}
    assert _roles(user) == {"orders-team": "owner", "users-team": "member"}
    assert user.groups.filter(name="team:orders-team").exists()  # object permissions follow
    assert (
        AuditEntry.objects.filter(
            action="create", content_type__model="membership", changes__user=[None, "sso-person"]
        ).count()
        == 2
    )

    sync_teams(user, {"groups": ["team:orders-team"]})
    assert _roles(user) == {"orders-team": "member"}
    assert not user.groups.filter(name="team:users-team").exists()


def test_sync_never_removes_a_teams_last_owner(mesh):
    outcome = sync_teams(mesh.owner, {"groups": []})
    assert outcome == {"orders-team": "kept"}
    assert _roles(mesh.owner) == {"orders-team": "owner"}


def test_sync_uses_the_configured_claim(mesh, settings):
    settings.OIDC_GROUPS_CLAIM = "roles"
    user = factories.user("sso-roles")
    sync_teams(user, {"roles": ["team:users-team"], "groups": ["team:orders-team:owner"]})
    assert _roles(user) == {"users-team": "member"}


def test_backend_creates_the_user_from_claims_with_teams(mesh, settings):
    for key, value in OIDC_ENV.items():
        setattr(settings, key, value)
    settings.OIDC_USERNAME_ALGO = "meshportal.oidc.username_from_claims"
    backend = TeamMappingOIDCBackend()
    claims = {
        "email": "nora@example.com",
        "preferred_username": "nora",
        "given_name": "Nora",
        "family_name": "North",
        "groups": ["team:orders-team"],
    }
    user = backend.create_user(claims)
    assert (user.username, user.email, user.first_name, user.last_name) == (
        "nora",
        "nora@example.com",
        "Nora",
        "North",
    )
    assert _roles(user) == {"orders-team": "member"}
    backend.update_user(user, {**claims, "groups": ["team:users-team:owner"]})
    assert _roles(user) == {"users-team": "owner"}
