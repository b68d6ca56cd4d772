"""Semantic search: products found by meaning, fused with the keyword search.

- `embedding_text(product)`: what a product means, in one text (name, summary, description,
  tags, ports, fields with their descriptions, linked glossary terms).
- `embed(products)`: computes and stores the vectors (`ProductEmbedding`) of the products whose
  text changed since; the `embed_products` task, `manage.py reindex` and the seeders call it.
- `schedule(product_id)`: after a product's text changed, one debounced `embed_products` task
  (the first change of a burst queues it, after commit, with a countdown).
- `nearest(q)`: product ids closest to a query, with their cosine similarity. Where PostgreSQL
  has the pgvector extension (products.discovery.pgvector), the database answers from its
  HNSW index. Elsewhere (SQLite, PostgreSQL without it) the vectors of the whole mesh are kept
  in memory per process (10,000 products: 15 MB) and reloaded when a vector was written since,
  which the search's look at the near products tells (`stamp_column()`, `refresh()`).
  products.discovery.search fuses them with the keyword ranking in the page's own query.

On when `MESH_SEMANTIC_SEARCH` is true and the `semantic` extra (numpy, tokenizers, threadpoolctl
and the model's weights) is installed; otherwise search is keyword-only and nothing is queued.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet, Subquery

from meshportal.statements import Statement
from products import extensions
from products.discovery import embedding, pgvector

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

MODEL = embedding.MODEL_NAME
TASK = "products.tasks.embed_products"
SCHEDULED_KEY = "products:embed-scheduled:{}"
# A query's neighbours: at most this many, at least this close (cosine; below ~0.25
# all-MiniLM-L6-v2's neighbours are mostly unrelated), and at least RELATIVE of the best one's
# similarity ("revenue": Daily Revenue at 0.45 keeps Campaign Attribution at 0.30 out).
NEAREST = 20
MIN_SIMILARITY = 0.25
RELATIVE = 0.75
RRF_K = 60  # reciprocal rank fusion: a result at rank r of a ranking scores 1 / (RRF_K + r)
TEXT_CHARS = 2000  # the model reads MAX_TOKENS tokens anyway


def enabled() -> bool:
    return bool(getattr(settings, "MESH_SEMANTIC_SEARCH", True)) and embedding.available()


# -- the text ----------------------------------------------------------------------------------


def embedding_text(product) -> str:
    """The product's meaning as text. Needs ports__fields__glossary_term and tags prefetched
    (or costs a few queries)."""
    parts = [product.name, product.summary, product.description]
    tags = [t.name for t in product.tags.all()]
    if tags:
        parts.append("Tags: " + ", ".join(tags))
    for port in product.ports.all():
        fields = [
            f.name.replace("_", " ") + (f" ({f.description})" if f.description else "")
            for f in port.fields.all()
        ]
        parts.append(f"{port.name}: " + ", ".join(fields))
    # e.g. the glossary terms linked to its fields
    parts.extend(text for _, text in extensions.document_parts(product))
    return ". ".join(p.strip() for p in parts if p and p.strip())[:TEXT_CHARS]


def _hash(text: str) -> str:
    return hashlib.sha256(f"{MODEL}\n{text}".encode()).hexdigest()


# -- computing ---------------------------------------------------------------------------------


def embed(products: QuerySet, *, batch_size: int = 256, force: bool = False) -> int:
    """Compute and store the vectors of `products` whose text changed (all with `force`).
    Returns how many were computed. Does nothing (0) when semantic search is off."""
    if not enabled():
        return 0
    from products.models import DataProduct, ProductEmbedding

    ids = list(products.order_by("pk").values_list("pk", flat=True))
    done = 0
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        batch = DataProduct.objects.filter(pk__in=chunk).prefetch_related(
            "tags", "ports__fields__glossary_term"
        )
        known = dict(
            ProductEmbedding.objects.filter(product_id__in=chunk, model=MODEL).values_list(
                "product_id", "text_hash"
            )
        )
        todo = []
        for product in batch:
            text = embedding_text(product)
            digest = _hash(text)
            if force or known.get(product.pk) != digest:
                todo.append((product.pk, text, digest))
        if not todo:
            continue
        vectors = embedding.encode([text for _, text, _ in todo])
        save([(pk, digest, vectors[i]) for i, (pk, _, digest) in enumerate(todo)])
        done += len(todo)
    return done


def save(rows: list[tuple[int, str, np.ndarray]]) -> None:
    """Store (product id, text hash, unit vector) rows, new or replacing: the bytes every
    database keeps and, where pgvector is in use, its column (both or neither: a vector whose
    hash is stored is not computed again)."""
    from products.models import ProductEmbedding

    with transaction.atomic():
        ProductEmbedding.objects.bulk_create(
            [
                ProductEmbedding(product_id=pk, model=MODEL, text_hash=digest, vector=v.tobytes())
                for pk, digest, v in rows
            ],
            update_conflicts=True,
            unique_fields=["product"],
            update_fields=["model", "text_hash", "vector", "updated_at"],
        )
        if pgvector.in_use():
            pgvector.store([(pk, v) for pk, _, v in rows])


def schedule(product_id: int | None) -> None:
    """A product's text changed: queue one embed_products task for the burst of changes (after
    commit, in MESH_EMBED_DEBOUNCE_SECONDS). The task skips products whose text is unchanged."""
    if product_id is None or not enabled():
        return
    from meshportal import queue

    delay = settings.MESH_EMBED_DEBOUNCE_SECONDS
    if cache.add(SCHEDULED_KEY.format(product_id), 1, timeout=max(delay, 1)):
        queue.enqueue_on_commit(TASK, [product_id], options={"countdown": delay})


def schedule_many(product_ids, *, batch_size: int = 500) -> None:
    """schedule() for many products (bulk work): one task per batch of them, not one each."""
    if not enabled():
        return
    from meshportal import queue

    delay = settings.MESH_EMBED_DEBOUNCE_SECONDS
    ids = sorted({pk for pk in product_ids if pk is not None})
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        cache.set_many({SCHEDULED_KEY.format(pk): 1 for pk in chunk}, timeout=max(delay, 1))
        queue.enqueue_on_commit(TASK, chunk, options={"countdown": delay})


# -- searching ---------------------------------------------------------------------------------


class _Vectors:
    """The stored vectors of the mesh in memory: one float32 matrix of unit rows (10,000
    products: 15 MB), so a query is one matrix-vector product (about 1 ms).

    Its stamp is when the last vector was written (`updated_at`, auto_now: a new or recomputed
    vector always moves it; read from the end of its index). A search does not ask for it on
    its own: `stamp_column()` rides on the search's query of which near products are visible,
    and `refresh(stamp)` reloads (the search then ranks again) only when it moved. A deleted
    vector does not move it and may stay in memory until the next reload: harmless, since the
    search keeps only the products of its queryset (a deleted product is in none) and ids are
    never reused."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stamp: Any = None
        self.ids: np.ndarray | None = None
        self.matrix: np.ndarray | None = None

    def loaded(self) -> tuple[np.ndarray, np.ndarray]:
        """The matrix, read from the database on first use in this process."""
        with self.lock:
            if self.matrix is None:
                self._load()
        assert self.ids is not None and self.matrix is not None  # noqa: S101  # nosec B101
        return self.ids, self.matrix

    def refresh(self, stamp: Any) -> bool:
        """Reload when `stamp` (the table's, just read; None: the table is empty) is not the
        loaded one; True if it was reloaded."""
        with self.lock:
            if self.matrix is not None and stamp == self.stamp:
                return False
            self._load()
            return True

    def _load(self) -> None:
        import numpy as np

        from products.models import ProductEmbedding

        rows = list(
            ProductEmbedding.objects.values_list("product_id", "vector", "model", "updated_at")
        )
        pairs = [(pk, vector) for pk, vector, model, _ in rows if model == MODEL]
        self.ids = np.array([pk for pk, _ in pairs], dtype=np.int64)
        self.matrix = np.frombuffer(b"".join(bytes(v) for _, v in pairs), dtype=np.float32).reshape(
            len(pairs), embedding.DIMENSIONS
        )
        # The stamp of what was read, from the rows themselves: a write between the
        # stamp's read and this one is not mistaken for news at the next search.
        self.stamp = max((r[3] for r in rows), default=None)


_vectors = _Vectors()


def _latest() -> QuerySet:
    from products.models import ProductEmbedding

    return ProductEmbedding.objects.order_by("-updated_at").values("updated_at")[:1]


def stamp_column() -> Subquery:
    """The vectors' stamp as a column of another query (one index entry)."""
    return Subquery(_latest())


# Read by every search that finds no near product (no vectors yet): compiled once per process.
_stamp = Statement(_latest)


def stamp_statement() -> tuple[str, list]:
    """The stamp's statement as SQL and parameters, to read it in another (a search's probe)."""
    return _stamp.sql()


def current_stamp() -> Any:
    """The stamp in a query of its own (when no near product is visible)."""
    rows = _stamp()
    return rows[0]["updated_at"] if rows else None


def in_memory() -> bool:
    """The vectors are searched in this process (NumPy), not by the database (pgvector)."""
    return not pgvector.in_use()


def refresh(stamp: Any) -> bool:
    """The table's stamp as a search read it: reload the vectors if they changed (True)."""
    return _vectors.refresh(stamp)


def may_fuse() -> bool:
    """Whether a search may be fused with the products closest in meaning: semantic search on,
    with vectors to search (pgvector's, or any loaded in this process). Without, a search is
    its words' match alone, which a caller may start counting before it is ranked."""
    if not enabled():
        return False
    return not in_memory() or bool(len(_vectors.loaded()[0]))


def nearest(q: str, *, limit: int = NEAREST) -> list[tuple[int, float]]:
    """(product id, cosine similarity) of the products closest in meaning to `q`, best first,
    among every stored vector: the caller keeps those the user may see, then `closest()`.
    In memory, no query once this process has loaded the vectors (the caller checks they are
    current, `in_memory()`); with pgvector, one query on its index."""
    import numpy as np

    if not q.strip():
        return []
    if pgvector.in_use():
        return [
            p
            for p in pgvector.nearest(query_vector(q), model=MODEL, limit=limit)
            if p[1] >= MIN_SIMILARITY
        ]
    ids, matrix = _vectors.loaded()
    if not len(ids):
        return []
    query = query_vector(q)
    scores = matrix @ query
    top = np.argpartition(-scores, min(limit, len(scores) - 1))[:limit]
    ranked = sorted(((int(ids[i]), float(scores[i])) for i in top), key=lambda p: -p[1])
    return [(pk, s) for pk, s in ranked if s >= MIN_SIMILARITY]


def closest(near: list[tuple[int, float]]) -> list[int]:
    """The ids of `near` (visible ones, best first) within RELATIVE of the best one's
    similarity."""
    if not near:
        return []
    floor = RELATIVE * near[0][1]
    return [pk for pk, score in near if score >= floor]


QUERY_KEY = "products:query-vector:{}"
QUERY_TTL = 7 * 24 * 3600  # a query's vector only changes with the model, which is in its key


def normalise(q: str) -> str:
    """The query as the model reads it: its tokenizer lowercases and splits on spaces anyway."""
    return " ".join(q.lower().split())


def query_vector(q: str) -> np.ndarray:
    """A query's vector, remembered in this process and, for every process, in the cache
    (Redis), keyed by the model and the normalised words: the page, its next pages, facet
    clicks, the htmx request, the API and the MCP tool ask for the same words again, in any
    worker, and encoding one costs 5-30 ms of CPU where reading it back costs well under one."""
    return _query_vector(normalise(q))


@lru_cache(maxsize=1024)
def _query_vector(q: str) -> np.ndarray:
    import numpy as np

    key = QUERY_KEY.format(_hash(q))
    raw = cache.get(key)  # fail-open: None when Redis is away
    if isinstance(raw, bytes) and len(raw) == 4 * embedding.DIMENSIONS:
        vector = np.frombuffer(raw, dtype=np.float32)
    else:
        # Not embedding.encode(): its cache of products' texts is no place for queries.
        vector = embedding.encode_query(q)
        cache.set(key, vector.tobytes(), QUERY_TTL)
    vector.flags.writeable = False
    return vector


def forget_queries(queries: Iterable[str]) -> None:
    """Drop the remembered vectors of `queries` (both caches): the next search encodes them as
    if asked for the first time (the bench's cold queries)."""
    _query_vector.cache_clear()
    cache.delete_many([QUERY_KEY.format(_hash(normalise(q))) for q in queries])
