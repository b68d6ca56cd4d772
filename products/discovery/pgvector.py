"""The meaning vectors in PostgreSQL itself, when the server has the pgvector extension.

ProductEmbedding keeps every vector as float32 bytes on every database (the portable copy that
SQLite and a PostgreSQL without pgvector search with NumPy in memory). Where the extension
exists, `install()` (migration products 0014, and `manage.py reindex` for a server that gained
it later) adds a `vector(384)` column beside them with an HNSW index on cosine distance, and
products.discovery.semantic then writes both and asks PostgreSQL for a query's nearest products
(`nearest`), so no process holds the mesh's vectors in memory and a new vector is found by the
very next search.

`in_use()` asks once per process and database whether the column is there.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.db import DatabaseError, connection, transaction

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

TABLE = "products_productembedding"
COLUMN = "embedding"
INDEX = "products_productembedding_hnsw"
_known: dict[str, bool] = {}


def _key() -> str:
    return f"{connection.alias}:{connection.settings_dict['NAME']}"


def available() -> bool:
    """The server can load the extension (installed or not yet in this database)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
        return cursor.fetchone() is not None


def in_use() -> bool:
    """The vectors have their pgvector column in this database (asked once per process)."""
    key = _key()
    if key not in _known:
        _known[key] = connection.vendor == "postgresql" and _has_column()
    return _known[key]


def _has_column() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
            [TABLE, COLUMN],
        )
        return cursor.fetchone() is not None


def install(dimensions: int) -> bool:
    """Create the extension, the column and its index if the server can; fill the column from
    the stored bytes. True when the vectors are searched in the database from now on. Without
    the right to create the extension (it needs a superuser, or a database owner where it is
    trusted), logs why and leaves search in memory."""
    _known.pop(_key(), None)
    if not available():
        return False
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
            cursor.execute(
                f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {COLUMN} vector({dimensions})"
            )
            # Cosine distance, as the NumPy search ranks; HNSW needs no training on the data
            # (IVFFlat would), so it is right from the first vector on.
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} "
                f"USING hnsw ({COLUMN} vector_cosine_ops)"
            )
    except DatabaseError as exc:
        log.warning("pgvector is available but could not be installed: %s", exc)
        return False
    _known[_key()] = True
    backfill()
    return True


def uninstall() -> None:
    """Drop the column and its index (the extension stays: other tables may use it)."""
    _known.pop(_key(), None)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {TABLE} DROP COLUMN IF EXISTS {COLUMN}")


def backfill(batch_size: int = 1000) -> int:
    """Fill the column of the vectors that have only their bytes (written before the column
    existed, or by a restore). Returns how many."""
    done = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT product_id, vector FROM {TABLE} "  # noqa: S608  # nosec B608
                f"WHERE {COLUMN} IS NULL LIMIT %s",
                [batch_size],
            )
            rows = cursor.fetchall()
        if not rows:
            return done
        import numpy as np  # only when there are vectors, which need the `semantic` extra

        store([(pk, np.frombuffer(bytes(raw), dtype=np.float32)) for pk, raw in rows])
        done += len(rows)


def literal(vector: np.ndarray) -> str:
    """pgvector's text form of a vector: '[0.1,0.2,…]'."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def store(pairs: list[tuple[int, np.ndarray]]) -> None:
    """Write the pgvector column of these products' stored vectors: one statement."""
    if not pairs:
        return
    values = ", ".join(["(%s, %s)"] * len(pairs))
    params = [x for pk, vector in pairs for x in (pk, literal(vector))]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} AS e SET {COLUMN} = v.vec::vector "  # noqa: S608  # nosec B608
            f"FROM (VALUES {values}) AS v(id, vec) WHERE e.product_id = v.id",
            params,
        )


def nearest(query: np.ndarray, *, model: str, limit: int) -> list[tuple[int, float]]:
    """(product id, cosine similarity) of the `limit` vectors closest to `query`, best first:
    one query that walks the HNSW index."""
    vec = literal(query)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT product_id, 1 - ({COLUMN} <=> %s::vector) FROM {TABLE} "  # noqa: S608  # nosec B608
            f"WHERE model = %s AND {COLUMN} IS NOT NULL "
            f"ORDER BY {COLUMN} <=> %s::vector LIMIT %s",
            [vec, model, vec, limit],
        )
        return [(pk, float(similarity)) for pk, similarity in cursor.fetchall()]
