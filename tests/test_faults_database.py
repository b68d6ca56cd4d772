"""Database unreachable: a friendly 503 page, a 503 JSON from the API, no traceback, and
recovery without a restart. The portal runs under gunicorn with the production profile."""

import json
import socket

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from tests.conftest import database_url_for_subprocess
from tests.prod_env import Gunicorn, closed_port, production_env
from tests.tcp_proxy import TcpProxy

# Any request carrying a session cookie makes Django read the session from the database.
SESSION = {"Cookie": "sessionid=doesnotexist0000000000000000000000"}


@pytest.fixture
def static_root(collected_static):
    return collected_static


def portal(database_url: str, static_root, tmp_path, **extra: str) -> Gunicorn:
    env = production_env(
        DATABASE_URL=database_url,
        STATIC_ROOT=str(static_root),
        SECURE_PROXY_SSL_HEADER="true",
        DJANGO_SETTINGS_MODULE="tests.fault_settings",
        DB_CONN_MAX_AGE="60",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0",
        **extra,
    )
    return Gunicorn(env, tmp_path / "gunicorn.log")


def assert_outage_answers(server: Gunicorn):
    status, headers, body = server.get("/", SESSION)
    assert status == 503
    assert headers["Retry-After"] == "30"
    assert "Mesh Portal is temporarily unavailable" in body
    assert "Traceback" not in body and "OperationalError" not in body

    status, headers, body = server.get("/api/_probe", SESSION)
    assert status == 503
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["code"] == "database_unavailable"

    # Liveness stays green (no restart loop); readiness says why the process is not ready.
    assert server.get("/healthz")[0] == 200
    status, _, body = server.get("/readyz")
    assert status == 503
    checks = json.loads(body)["checks"]
    assert checks["database"]["ok"] is False
    assert checks["broker"]["ok"] is False


def test_database_on_a_closed_port_gives_503_page_and_json(static_root, tmp_path):
    server = portal(f"postgres://postgres@127.0.0.1:{closed_port()}/mesh", static_root, tmp_path)
    try:
        assert_outage_answers(server)
        assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()
    finally:
        server.stop()


def test_a_silent_database_gives_503_not_a_hung_worker(static_root, tmp_path):
    """A database that accepts the connection and never answers (a dropped route, a paused
    VM): the connect timeout turns it into the outage answers instead of a request that hangs
    until gunicorn kills the worker (the client below gives up after 30 s)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes the handshake; nothing ever reads or answers
        port = silent.getsockname()[1]
        server = portal(
            f"postgres://postgres@127.0.0.1:{port}/mesh",
            static_root,
            tmp_path,
            DB_CONNECT_TIMEOUT="2",
        )
        try:
            pid = server.proc.pid
            assert_outage_answers(server)
            assert server.proc.pid == pid and server.proc.poll() is None
            assert "WORKER TIMEOUT" not in (tmp_path / "gunicorn.log").read_text()
        finally:
            server.stop()


@pytest.mark.postgres
def test_portal_recovers_when_the_database_returns(transactional_db, static_root, tmp_path):
    get_user_model().objects.create_user("someone")
    s = connection.settings_dict
    proxy = TcpProxy(s.get("HOST") or "127.0.0.1", int(s.get("PORT") or 5432)).start()
    url = database_url_for_subprocess().replace(f":{s.get('PORT') or 5432}/", f":{proxy.port}/")
    assert str(proxy.port) in url
    server = portal(url, static_root, tmp_path)
    try:
        status, _, body = server.get("/api/_probe", SESSION)
        assert (status, json.loads(body)) == (200, {"users": 1})
        assert server.get("/", SESSION)[0] == 302  # unknown session: off to the sign-in page
        pid = server.proc.pid

        proxy.stop()
        assert_outage_answers(server)

        proxy.start()
        status, _, body = server.get("/api/_probe", SESSION)
        assert (status, json.loads(body)) == (200, {"users": 1})
        assert server.get("/", SESSION)[0] == 302
        status, _, body = server.get("/readyz")
        assert json.loads(body)["checks"]["database"]["ok"] is True
        assert server.proc.pid == pid and server.proc.poll() is None
    finally:
        server.stop()
        proxy.stop()
