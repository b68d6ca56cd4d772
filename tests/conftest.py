"""Shared fixtures: people in every role, the demo mesh, and real services when present."""

import contextlib
import functools
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests import factories

ROOT = Path(__file__).resolve().parent.parent
FAIL_ON_SKIP = os.environ.get("MESH_FAIL_ON_SERVICE_SKIP") == "1"
REDIS_DB_BASE = int(os.environ.get("MESH_TEST_REDIS_DB_BASE", "10"))


def pytest_configure(config):
    """Under pytest-xdist each worker gets a Redis database of its own, so a Celery worker
    started by one test process never takes another's tasks (each uses its own test DB).
    MESH_TEST_REDIS_DB_BASE (default 10) moves the range when several checkouts test at once."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and settings.CELERY_BROKER_URL.startswith("redis"):
        index = int(worker.removeprefix("gw"))
        settings.CELERY_BROKER_URL = (
            re.sub(r"/\d*$", "", settings.CELERY_BROKER_URL) + f"/{REDIS_DB_BASE + index}"
        )
        os.environ["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL  # Celery reads it first
    if settings.CELERY_BROKER_URL.startswith("redis"):
        # Broker keys of this test process only, so `celery_worker` can empty them without
        # touching another checkout's run or a developer's portal on the same Redis database.
        prefix = f"mesh-test-{os.getpid()}:"
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "global_keyprefix": prefix,
        }
        os.environ["CELERY_BROKER_KEY_PREFIX"] = prefix


def _empty_broker() -> None:
    """Delete this test process's broker keys (see pytest_configure)."""
    if settings.CELERY_BROKER_URL.startswith("redis"):
        import redis

        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2)
        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"]
        for key in broker.scan_iter(match=f"{prefix}*", count=500):
            broker.delete(key)


def pytest_unconfigure(config):
    with contextlib.suppress(Exception):  # Redis down (the fault tests) leaves nothing to do
        _empty_broker()


MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


@functools.cache
def mariadb_up() -> bool:
    """MariaDB (or MySQL) at 127.0.0.1:3306 as root without a password, as `.ci/run` starts it."""
    try:
        import pymysql
    except ImportError:
        return False
    try:
        pymysql.connect(**MARIADB, connect_timeout=3).close()
    except pymysql.Error:
        return False
    return True


def _service_missing(item) -> str | None:
    if item.get_closest_marker("mariadb") and not mariadb_up():
        return "needs MariaDB at 127.0.0.1:3306 (root, no password) and PyMySQL"
    if item.get_closest_marker("postgres") and not settings.IS_POSTGRES:
        return "needs PostgreSQL: set DATABASE_URL=postgres://…"
    if item.get_closest_marker("redis") and not settings.CELERY_BROKER_URL.startswith("redis"):
        return "needs Redis: set CELERY_BROKER_URL=redis://…"
    if item.get_closest_marker("browser") and not Path("/usr/bin/chromium").exists():
        return "needs Chromium: apt-get install chromium"
    return None


def pytest_runtest_setup(item):
    reason = _service_missing(item)
    if reason:
        if FAIL_ON_SKIP:
            pytest.fail(f"CI must not skip: {reason}")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    """Fast password hashing, and a demo warehouse file of the test's own (SQLite runs).
    After the test, the connection of the helper that runs reads beside a request (a test that
    commits for real: meshportal.beside) is closed, so that the test database can be dropped."""
    from meshportal import beside

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MESH_DEMO_WAREHOUSE_PATH = str(tmp_path / "warehouse.sqlite3")
    settings.MESH_DEMO_LAKE_DIR = str(tmp_path / "lake")
    yield
    beside.close()


@pytest.fixture(scope="session", autouse=True)
def _one_request_at_a_time_on_sqlite():
    """On SQLite the live server's request threads share the test's one in-memory connection
    (Django's connections_override), and a page whose scripts fetch two things at once (the
    Lineage tab: its graph and its impact table) used the connection from two threads at once:
    InterfaceError and IndexError inside the driver, a blank graph, a flaky browser test. One
    request at a time there, as a single-process server would. PostgreSQL gives each thread its
    own connection and keeps concurrent requests."""
    import threading

    from django.core.handlers.wsgi import WSGIHandler

    if connection.vendor != "sqlite":
        yield
        return
    lock = threading.Lock()
    real = WSGIHandler.__call__

    def serial(self, environ, start_response):
        with lock:
            return real(self, environ, start_response)

    WSGIHandler.__call__ = serial  # type: ignore[method-assign]
    try:
        yield
    finally:
        WSGIHandler.__call__ = real  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _fresh_local_cache():
    """Each test starts with an empty in-process cache: ids repeat from test to test, so a
    throttle budget or cached count left by one test would otherwise land on the next."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    for alias in settings.CACHES:
        if isinstance(caches[alias], LocMemCache):
            caches[alias].clear()


@pytest.fixture
def shared_cache(settings):
    """The portal's shared Redis cache (as with CACHE_URL), on this test worker's own Redis
    database, with no public or per-user part left by an earlier (rolled back) test."""
    from django.core.cache import cache

    from meshportal import cache as portal_cache

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs Redis: set CELERY_BROKER_URL=redis://…")
    settings.CACHES = {
        "default": {
            "BACKEND": "meshportal.cache.FailOpenRedisCache",
            "LOCATION": settings.CELERY_BROKER_URL,
            "KEY_PREFIX": "mesh-test",
        }
    }
    generations = [portal_cache._generation(k) for k in portal_cache.USER_KEYS]
    cache.delete_many(
        [portal_cache.public_key(k) for k in (*portal_cache.PUBLIC_KEYS, *generations)]
    )
    return cache


def _commits_for_real(item) -> bool:
    marker = item.get_closest_marker("django_db")
    return bool(
        {"transactional_db", "live_server", "django_db_serialized_rollback"}
        & set(item.fixturenames)
        or (
            marker
            and (marker.kwargs.get("transaction") or marker.kwargs.get("serialized_rollback"))
        )
    )


def _uses_database(item) -> bool:
    return bool({"db", "transactional_db"} & set(item.fixturenames)) or bool(
        item.get_closest_marker("django_db")
    )


# Per-test fixture → the module-scoped one that builds the same data once per module.
SHARED_PER_MODULE = {"mesh": "module_mesh", "demo": "module_demo"}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Share one mesh (or demo mesh) per module where that changes nothing a test can see:
    every test of the module that touches the database asks for `mesh` (or `demo`), and none
    commits for real. Those tests get `module_mesh` (`module_demo`) first, built once in a
    transaction of the module, then run in a savepoint of it as before; building the mesh per
    test was a third of the suite's time, and seeding the demo takes seconds."""
    by_module: dict = {}
    for item in items:
        by_module.setdefault(getattr(item, "module", None), []).append(item)
    for module, module_items in by_module.items():
        if module is None or getattr(module, "MESH_PER_TEST", False):
            continue
        database = [i for i in module_items if _uses_database(i)]
        if not database or any(_commits_for_real(i) for i in database):
            continue
        for per_test, shared in SHARED_PER_MODULE.items():
            if all(per_test in i.fixturenames for i in database):
                for item in database:
                    if shared not in item.fixturenames:
                        item.fixturenames.insert(0, shared)
                break


@pytest.fixture
def mesh(request, db):
    """A small mesh with people in every role (see tests/factories.py): the module's shared one
    (a fresh copy of its Python objects; the database is rolled back after each test) where
    `pytest_collection_modifyitems` allows it, else built for this test."""
    if "module_mesh" in request.fixturenames:
        import copy

        return copy.deepcopy(request.getfixturevalue("module_mesh"))
    return factories.build_mesh()


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory, worker_id):
    """`collectstatic` with the production profile, once per test run: the production and
    database-fault tests share it. Under xdist the workers share one copy (the first one makes
    it under a file lock); pytest 9 ignores xdist's groups, so they may run on any worker."""
    from filelock import FileLock

    from tests.prod_env import manage, production_env

    def collect(root):
        result = manage(
            "collectstatic", "--noinput", env=production_env(STATIC_ROOT=str(root)), timeout=300
        )
        assert result.returncode == 0, result.stderr
        (root / ".complete").touch()
        return root

    if worker_id == "master":
        return collect(tmp_path_factory.mktemp("static"))
    run_dir = tmp_path_factory.getbasetemp().parent  # this run's, shared by its workers
    root = run_dir / "static"
    with FileLock(str(run_dir / "static.lock")):
        if not (root / ".complete").exists():
            root.mkdir(exist_ok=True)
            collect(root)
    return root


@pytest.fixture(scope="module")
def module_mesh(django_db_setup, django_db_blocker):
    """The same mesh, built once for a whole module (the permission matrix asks hundreds of
    cells of it). It lives in a transaction rolled back when the module ends; each test runs in
    a savepoint of it (pytest-django's `db`), so what one test changes is gone for the next.
    Use it through a module's own `mesh` fixture: `return copy.deepcopy(module_mesh)` after
    `db`, so changes to the Python objects do not carry over either."""
    from django.db import transaction
    from django.test import override_settings

    # Built before the tests' own settings apply: hash its passwords as the tests do.
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]),
        transaction.atomic(),
    ):
        yield factories.build_mesh()
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def module_demo(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo mesh (`seed_demo`), seeded once for a whole module as `module_mesh` is built:
    in a transaction rolled back when the module ends, each test in a savepoint of it. Its
    warehouse and lake files (SQLite runs) are the module's: yields their folder."""
    from django.core.management import call_command
    from django.db import transaction
    from django.test import override_settings

    files = tmp_path_factory.mktemp("demo")
    with (
        django_db_blocker.unblock(),
        override_settings(
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            MESH_DEMO_WAREHOUSE_PATH=str(files / "warehouse.sqlite3"),
            MESH_DEMO_LAKE_DIR=str(files / "lake"),
        ),
        transaction.atomic(),
    ):
        call_command("seed_demo", verbosity=0)
        yield files
        transaction.set_rollback(True)


@pytest.fixture
def demo(request, db, settings):
    """The demo mesh: the module's shared one where `pytest_collection_modifyitems` allows it
    (with its warehouse and lake files), else seeded for this test."""
    from django.core.management import call_command

    if "module_demo" in request.fixturenames:
        files = request.getfixturevalue("module_demo")
        settings.MESH_DEMO_WAREHOUSE_PATH = str(files / "warehouse.sqlite3")
        settings.MESH_DEMO_LAKE_DIR = str(files / "lake")
        return
    call_command("seed_demo", verbosity=0)


def database_url_for_subprocess() -> str:
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        host, port = s.get("HOST") or "127.0.0.1", s.get("PORT") or 5432
        return f"postgres://{s.get('USER') or 'postgres'}@{host}:{port}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """A real Celery worker process on the real broker, using the test database.

    This test process's broker keys are emptied first: earlier tests leave tasks there (a
    debounced evaluation with its countdown, a notification), and a stale one run by this
    worker in the middle of a test would split a burst or change what the test asserts on."""
    _empty_broker()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "MESH_DEMO_WAREHOUSE_PATH": settings.MESH_DEMO_WAREHOUSE_PATH,
        "MESH_DEMO_LAKE_DIR": settings.MESH_DEMO_LAKE_DIR,
    }
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "meshportal",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-Q",
            "default,quality,notifications",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "ready" in (tmp_path / "worker.log").read_text():
            break
        if proc.poll() is not None:
            pytest.fail("worker exited:\n" + (tmp_path / "worker.log").read_text())
        time.sleep(0.2)
    yield proc
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` with the longest files first (see tests/schedule.py)."""
    if config.getvalue("dist") == "loadfile":
        from tests.schedule import LongestFirst

        return LongestFirst(config, log)
    return None
