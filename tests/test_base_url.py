"""`make run` on another port (MESH_PORT): its banner and the links in every e-mail follow the
port, or PORTAL_BASE_URL when that is set (issue 20, item 6)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MESH_PORT", "PORTAL_BASE_URL")}
    return {**env, **extra}


def _base_url(**extra) -> str:
    # The settings module alone (as every process reads it), without setting up the apps.
    code = "from django.conf import settings; print(settings.PORTAL_BASE_URL)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(DJANGO_SETTINGS_MODULE="meshportal.settings", **extra),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _banner(**extra) -> str:
    result = subprocess.run(
        ["make", "-s", "banner"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=_env(**extra),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_make_run_banner_names_the_configured_port():
    assert "http://127.0.0.1:8000/" in _banner()
    banner = _banner(MESH_PORT="8123", MESH_MCP_PORT="8124")
    assert "http://127.0.0.1:8123/" in banner and "http://127.0.0.1:8124/mcp" in banner
    assert ":8000" not in banner and ":8001" not in banner
    assert "e-mails link to https://mesh.example.com" in _banner(
        MESH_PORT="8123", PORTAL_BASE_URL="https://mesh.example.com"
    )


def test_links_in_e_mails_follow_the_port_unless_a_base_url_is_set():
    assert _base_url() == "http://127.0.0.1:8000"
    assert _base_url(MESH_PORT="8123") == "http://127.0.0.1:8123"
    assert (
        _base_url(MESH_PORT="8123", PORTAL_BASE_URL="https://mesh.example.com/")
        == "https://mesh.example.com"
    )


@pytest.mark.django_db
def test_the_owner_s_e_mail_links_to_the_configured_portal(
    client, mesh, settings, django_capture_on_commit_callbacks
):
    """A consumer asks for access; the owner's e-mail leads to the inbox on the configured
    portal (a base URL given with a trailing slash makes no double slash)."""
    settings.PORTAL_BASE_URL = "https://mesh.example.com/"
    product = mesh.products[("orders", "published")]
    client.force_login(mesh.consumer)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(
            f"/products/{product.domain.slug}/{product.slug}/request-access/",
            {"purpose": "Monthly revenue report", "duration_days": 30},
        )
    assert r.status_code == 302
    (message,) = [m for m in mail.outbox if mesh.owner.email in m.to]
    links = [w for w in message.body.split() if w.startswith("http")]
    assert links and all(link.startswith("https://mesh.example.com/") for link in links)
    assert not any("//" in link.removeprefix("https://") for link in links)
    assert "127.0.0.1" not in message.body
