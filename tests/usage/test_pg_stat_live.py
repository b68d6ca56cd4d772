"""The pg_stat_statements poll against a real, throw-away PostgreSQL 15 cluster started with
`shared_preload_libraries=pg_stat_statements` (the test database's server usually lacks it):
a consumer role runs real SELECTs, the poll task reads them back over the source's read-only
connection, and the product's usage shows them under that role, flagged unmanaged.

Runs in the PostgreSQL CI run (`postgres` marker). The cluster needs PostgreSQL 15's server
binaries; as root (initdb refuses root) it runs as the `postgres` user through `runuser`."""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.conftest import FAIL_ON_SKIP
from usage import selectors
from usage.models import IngestRun, ProductUsage

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
READER, CONSUMER = "mesh_usage_reader", "svc_analytics"


def _runuser() -> str | None:
    """runuser lives in /usr/sbin, which a plain user's PATH (or `env -i`) may not name."""
    return shutil.which(
        "runuser", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    )


def _unavailable() -> str | None:
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        return f"needs PostgreSQL 15's server binaries in {PG_BIN}"
    if os.geteuid() == 0:
        if not _runuser():
            return "runs as root without runuser: initdb refuses root"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "runs as root without a postgres user to run initdb as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_stat_cluster():
    """A fresh cluster on a free port of 127.0.0.1 with pg_stat_statements loaded: its
    connection keywords for the superuser `postgres` (trust authentication). Stopped
    (immediate) and deleted when the module ends."""
    reason = _unavailable()
    if reason:
        if FAIL_ON_SKIP:
            pytest.fail(f"CI must not skip: {reason}")
        pytest.skip(reason)
    as_postgres: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="mesh-pgstat-"))
    if os.geteuid() == 0:
        as_postgres = [str(_runuser()), "-u", "postgres", "--"]
        user = pwd.getpwnam("postgres")
        os.chown(data, user.pw_uid, user.pw_gid)
    port = _free_port()
    pg_ctl = [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(
            [*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust",
             "-U", "postgres", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -k {data} "
            "-c shared_preload_libraries=pg_stat_statements -c fsync=off"
        )
        started = subprocess.run(
            [*pg_ctl, "-o", options, "-l", str(data / "server.log"), "-w", "-t", "60", "start"],
            capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        if started.returncode:
            log = data / "server.log"
            pytest.fail(
                "the throw-away cluster did not start:\n"
                + started.stderr
                + (log.read_text() if log.exists() else "")
            )
        yield {"host": "127.0.0.1", "port": port, "dbname": "postgres", "user": "postgres"}
    finally:
        with contextlib.suppress(Exception):
            subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def warehouse(pg_stat_cluster):
    """sales.orders in the cluster, the read-only role the portal polls as (with
    pg_read_all_stats, to see other roles' statements, as docs/usage.md asks), and a consumer
    login role that may SELECT it. pg_stat_statements starts empty."""
    from governance.quality.warehouse_roles import ensure_reader_role

    with psycopg.connect(**pg_stat_cluster, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION pg_stat_statements")
        cur.execute("CREATE SCHEMA sales")
        cur.execute("CREATE TABLE sales.orders (id int PRIMARY KEY, amount numeric)")
        cur.execute("INSERT INTO sales.orders SELECT g, g * 1.5 FROM generate_series(1, 20) g")
        ensure_reader_role(cur, READER, ["sales"])
        cur.execute(f"GRANT pg_read_all_stats TO {READER}")
        cur.execute(f"CREATE ROLE {CONSUMER} LOGIN")
        cur.execute(f"GRANT USAGE ON SCHEMA sales TO {CONSUMER}")
        cur.execute(f"GRANT SELECT ON sales.orders TO {CONSUMER}")
        cur.execute("SELECT pg_stat_statements_reset()")  # not the set-up's own statements
    return pg_stat_cluster


def consumer_reads(cluster: dict, ids: list[int]) -> None:
    """Run `SELECT … WHERE id = $1` once per id as the consumer role (server-side parameters:
    one normalised statement in pg_stat_statements, its calls counting up)."""
    with psycopg.connect(**{**cluster, "user": CONSUMER}, autocommit=True) as conn:
        for i in ids:
            rows = conn.execute("SELECT id, amount FROM sales.orders WHERE id = %s", [i])
            assert len(rows.fetchall()) == 1


def test_poll_reads_real_pg_stat_statements_and_attributes_them(usage_mesh, warehouse):
    from usage.tasks import poll_pg_stat_statements

    source = usage_mesh.source
    source.host, source.port = warehouse["host"], warehouse["port"]
    source.database, source.user, source.password_env = "postgres", READER, "UNUSED_PASSWORD_ENV"
    source.save()
    orders = usage_mesh.orders_product

    consumer_reads(warehouse, [1, 2, 3])
    result = poll_pg_stat_statements()
    assert result["wh"].endswith("queries"), result
    run = IngestRun.objects.get(data_source=source, door="pg_stat")
    assert run.matched >= 1

    usage = ProductUsage.objects.filter(product=orders, kind="read")
    assert dict(usage.values_list("principal", "queries")) == {CONSUMER: 3}
    assert usage.get().rows == 3
    # svc_analytics has no mapping and no grant: an unmanaged consumer of orders.
    unmanaged = selectors.unmanaged_consumers(product=orders)
    assert [(c.principal, c.queries, c.mapping) for c in unmanaged] == [(CONSUMER, 3, None)]

    # The view's counters are cumulative: the next poll adds only what ran since.
    consumer_reads(warehouse, [4, 5])
    poll_pg_stat_statements()
    assert usage.get().queries == 5
    poll_pg_stat_statements()  # nothing new
    assert usage.get().queries == 5
    assert not ProductUsage.objects.filter(product=orders, kind="write").exists()
