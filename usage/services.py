"""Writes of the usage app: ingest (one path for the API, `import_usage` and the
pg_stat_statements poll), consumer mappings, asking unmanaged consumers to request access, the
raw events' retention, and what portal analytics record (product page views, searches)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from domains.models import Membership
from governance.models import DataSource
from meshportal.notifications import notify
from meshportal.permissions import OWN, require
from products.models import DataProduct, OutputPort
from usage import parser
from usage.formats import Record
from usage.models import (
    IngestRun,
    ObservedEdge,
    PgStatCursor,
    ProductUsage,
    ProductView,
    QueryEvent,
    SearchDay,
    UsageConsumerNudge,
)

BATCH_SIZE = 5_000  # rows per INSERT where COPY is not available
CHUNK = 50_000  # records parsed and written at a time


# -- which port a table is -----------------------------------------------------------------------


@dataclass
class PortIndex:
    """Table names (`schema.table` and bare `table`) -> (port id, product id), for the ports of
    one data source. A bare name matching ports in two schemas matches neither."""

    by_name: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def for_source(cls, source: DataSource) -> PortIndex:
        index = cls()
        bare: dict[str, set[tuple[int, int]]] = defaultdict(set)
        ports = OutputPort.objects.filter(data_source=source).exclude(location="")
        for pk, product_id, location in ports.values_list("pk", "product_id", "location"):
            name = location.strip().lower().replace('"', "")
            index.by_name[name] = (pk, product_id)
            table = name.rsplit(".", 1)[-1]
            schema = name.rsplit(".", 1)[0] if "." in name else ""
            if not schema or schema == (source.default_schema or "").lower():
                index.by_name.setdefault(table, (pk, product_id))
            else:
                bare[table].add((pk, product_id))
        for table, found in bare.items():
            if table not in index.by_name and len(found) == 1:
                index.by_name[table] = next(iter(found))
        return index

    def ports(self, tables: Iterable[str]) -> list[tuple[int, int]]:
        return [self.by_name[t] for t in tables if t in self.by_name]


# -- ingest ----------------------------------------------------------------------------------------


@dataclass
class _Totals:
    usage: dict[tuple[int, int, str, date, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )
    edges: dict[tuple[int, int, int, int], list] = field(default_factory=dict)
    events: int = 0
    unparsed: int = 0
    matched: int = 0


def _account(totals: _Totals, index: PortIndex, record: Record, kind: str) -> bool:
    """Add one record to the totals; returns whether it was parsed."""
    reads: Iterable[str]
    writes: Iterable[str]
    if record.reads is not None or record.writes is not None:
        reads, writes, ok = record.reads or (), record.writes or (), True
    else:
        parsed = parser.parse(record.statement, kind)
        reads, writes, ok = parsed.reads, parsed.writes, parsed.ok
    totals.events += record.count
    if not ok:
        totals.unparsed += record.count
        return False
    read_ports = index.ports(reads)
    write_ports = index.ports(writes)
    if not read_ports and not write_ports:
        return True
    totals.matched += record.count
    day = record.occurred_at.astimezone(UTC).date()
    rows = record.rows or 0
    for (port, product), what in [(p, "read") for p in read_ports] + [
        (p, "write") for p in write_ports
    ]:
        cell = totals.usage[(port, product, record.principal, day, what)]
        cell[0] += record.count
        cell[1] += rows
    for target, target_product in write_ports:
        for source, source_product in read_ports:
            if source_product == target_product:
                continue
            key = (source, source_product, target, target_product)
            edge = totals.edges.get(key)
            if edge is None:
                totals.edges[key] = [record.count, day, day]
            else:
                edge[0] += record.count
                edge[1] = min(edge[1], day)
                edge[2] = max(edge[2], day)
    return True


_COLUMNS = (
    "ingest_id",
    "data_source_id",
    "principal",
    "occurred_at",
    "statement",
    "count",
    "rows",
    "parsed",
)


def _copy(model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows: COPY on PostgreSQL (an order of magnitude faster than INSERTs for a large
    log), bulk_create in batches elsewhere."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        return
    model.objects.bulk_create(
        [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=BATCH_SIZE
    )


def _write_events(run: IngestRun, rows: list[tuple]) -> None:
    _copy(QueryEvent, _COLUMNS, rows)


_USAGE_COLUMNS = ("product_id", "port_id", "principal", "day", "kind", "queries", "rows")


def _save_usage(totals: _Totals) -> None:
    if not totals.usage:
        return
    ports = {k[0] for k in totals.usage}
    days = {k[3] for k in totals.usage}
    existing = {
        (u.port_id, u.principal, u.day, u.kind): u
        for u in ProductUsage.objects.select_for_update().filter(port_id__in=ports, day__in=days)
    }
    new, changed = [], []
    for (port, product, principal, day, kind), (queries, rows) in totals.usage.items():
        row = existing.get((port, principal, day, kind))
        if row is None:
            new.append((product, port, principal, day, kind, queries, rows))
        else:
            row.queries += queries
            row.rows += rows
            changed.append(row)
    _copy(ProductUsage, _USAGE_COLUMNS, new)
    ProductUsage.objects.bulk_update(changed, ["queries", "rows"], batch_size=BATCH_SIZE)


def _save_edges(totals: _Totals) -> None:
    if not totals.edges:
        return
    existing = {
        (e.source_port_id, e.target_port_id): e
        for e in ObservedEdge.objects.select_for_update().filter(
            target_port_id__in={k[2] for k in totals.edges}
        )
    }
    new, changed = [], []
    for (source, source_product, target, target_product), (n, first, last) in totals.edges.items():
        edge = existing.get((source, target))
        if edge is None:
            new.append(
                ObservedEdge(
                    source_port_id=source, source_product_id=source_product,
                    target_port_id=target, target_product_id=target_product,
                    queries=n, first_seen=first, last_seen=last,
                )
            )  # fmt: skip
        else:
            edge.queries += n
            edge.first_seen = min(edge.first_seen, first)
            edge.last_seen = max(edge.last_seen, last)
            changed.append(edge)
    ObservedEdge.objects.bulk_create(new)
    ObservedEdge.objects.bulk_update(changed, ["queries", "first_seen", "last_seen"])


def usage_ingest(
    *, source: DataSource, records: Iterable[Record], door: str, by=None, dialect: str = ""
) -> IngestRun:
    """Store query records of one data source: raw events, daily usage per port and principal,
    observed lineage edges. All or nothing (one transaction); ingests of one source are taken
    one at a time (its row is locked), so the daily totals never lose a count. `dialect`: a
    data source kind whose SQL the log holds, when not the source's own (a BigQuery export)."""
    kind = dialect or source.kind
    with transaction.atomic():
        DataSource.objects.select_for_update().filter(pk=source.pk).first()
        index = PortIndex.for_source(source)
        run = IngestRun.objects.create(data_source=source, door=door, by=by)
        totals = _Totals()
        rows: list[tuple] = []
        for record in records:
            ok = _account(totals, index, record, kind)
            rows.append(
                (run.pk, source.pk, record.principal, record.occurred_at, record.statement,
                 record.count, record.rows, ok)
            )  # fmt: skip
            if len(rows) >= CHUNK:
                _write_events(run, rows)
                rows = []
        _write_events(run, rows)
        _save_usage(totals)
        _save_edges(totals)
        run.events, run.unparsed, run.matched = totals.events, totals.unparsed, totals.matched
        run.save(update_fields=["events", "unparsed", "matched"])
    return run


def source_for(slug: str) -> DataSource:
    source = DataSource.objects.filter(slug=slug).first() if slug else None
    if source is None:
        raise ValidationError({"source": f"No data source with the slug {slug!r}."})
    return source


# -- retention -----------------------------------------------------------------------------------


def raw_events_purge(*, now: datetime | None = None) -> int:
    """Delete raw query events older than MESH_USAGE_RAW_RETENTION_DAYS (the daily totals and
    observed edges stay). Returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.MESH_USAGE_RAW_RETENTION_DAYS)
    deleted, _ = QueryEvent.objects.filter(occurred_at__lt=cutoff).delete()
    IngestRun.objects.filter(created_at__lt=cutoff, query_events__isnull=True).delete()
    return deleted


# -- unmanaged consumers -----------------------------------------------------------------------

NUDGE_INTERVAL = timedelta(days=7)


@transaction.atomic
def consumer_ask_to_request(*, product: DataProduct, principal: str, by) -> int:
    """Tell the people behind an unmanaged principal (its mapped user, or its team's owners)
    that they read `product` without an access grant and should request it. The product's
    owners (or platform staff) only; once a week per principal. Returns how many were told."""
    from usage import selectors

    require(by, OWN, product)
    consumer = next(
        (c for c in selectors.unmanaged_consumers(product=product) if c.principal == principal),
        None,
    )
    if consumer is None:
        raise ValidationError(
            {"principal": f"{principal} is not an unmanaged consumer of {product}."}
        )
    if consumer.mapping is None:
        raise ValidationError(
            {"principal": f"Nobody is mapped to {principal} yet: ask the platform team to map it."}
        )
    recent = UsageConsumerNudge.objects.filter(
        product=product, principal=principal, created_at__gte=timezone.now() - NUDGE_INTERVAL
    )
    if recent.exists():
        raise ValidationError({"principal": f"{principal} was asked less than a week ago."})
    mapping = consumer.mapping
    if mapping.user is not None:
        people = [mapping.user]
    else:
        assert mapping.team is not None  # a mapping names a team or a user (constraint)  # nosec B101
        people = [
            m.user
            for m in Membership.objects.filter(team=mapping.team, role="owner").select_related(
                "user"
            )
        ]
    told = notify(
        people,
        kind="usage_unmanaged",
        title=f"You read {product.name} without access: please request it",
        url=reverse("products:request_access", args=[product.domain.slug, product.slug]),
        body=(
            f"The warehouse logs show {principal} querying {product.name}, but there is no "
            f"approved access request for it. {by.get_full_name() or by.username} asks you to "
            "request access, so the owners know you depend on it."
        ),
        about=product,
    )
    UsageConsumerNudge.objects.create(product=product, principal=principal, by=by, notified=told)
    return told


# -- pg_stat_statements ----------------------------------------------------------------------------

PG_STAT_EXTENSION = "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
PG_STAT_QUERY = (
    "SELECT r.rolname, s.queryid, s.query, s.calls, s.rows FROM pg_stat_statements s "
    "JOIN pg_roles r ON r.oid = s.userid WHERE s.queryid IS NOT NULL"
)


@dataclass
class PollResult:
    skipped: str = ""
    run: IngestRun | None = None


def pg_stat_rows_ingest(*, source: DataSource, rows: list[tuple], now: datetime) -> IngestRun:
    """Ingest one pg_stat_statements snapshot `(role, queryid, query, calls, rows)`: what each
    statement and role ran since the previous snapshot (a reset counter starts again from 0)."""
    with transaction.atomic():
        cursors = {
            (c.queryid, c.principal): c
            for c in PgStatCursor.objects.select_for_update().filter(data_source=source)
        }
        records, new, changed = [], [], []
        for role, queryid, query, calls, n_rows in rows:
            cursor = cursors.get((queryid, role))
            if cursor is None:
                cursor = PgStatCursor(data_source=source, queryid=queryid, principal=role)
                new.append(cursor)
            else:
                changed.append(cursor)
            reset = calls < cursor.calls
            delta_calls = calls if reset else calls - cursor.calls
            delta_rows = n_rows if reset else n_rows - cursor.rows
            cursor.calls, cursor.rows = calls, n_rows
            if delta_calls > 0:
                records.append(
                    Record(
                        principal=str(role)[:200], occurred_at=now, statement=query or "",
                        count=delta_calls, rows=max(delta_rows, 0),
                    )
                )  # fmt: skip
        PgStatCursor.objects.bulk_create(new, batch_size=BATCH_SIZE)
        PgStatCursor.objects.bulk_update(changed, ["calls", "rows"], batch_size=BATCH_SIZE)
        return usage_ingest(source=source, records=records, door=IngestRun.Door.PG_STAT)


def pg_stat_statements_poll(*, source: DataSource) -> PollResult:
    """Read pg_stat_statements over the source's read-only connection and ingest what ran since
    the last poll. Skipped (with the reason) when the source is not PostgreSQL, the extension
    is not installed, or it is not loaded (shared_preload_libraries)."""
    from governance.quality import engine

    if source.kind != "postgresql":
        return PollResult(skipped="not a PostgreSQL data source")
    try:
        with engine.connect(source, timeout=60) as conn:
            if not conn.execute(PG_STAT_EXTENSION):
                return PollResult(skipped="the pg_stat_statements extension is not installed")
            rows = conn.execute(PG_STAT_QUERY)
    except engine.EngineError as e:
        return PollResult(skipped=f"pg_stat_statements could not be read: {e}")
    return PollResult(run=pg_stat_rows_ingest(source=source, rows=rows, now=timezone.now()))


def pg_stat_statements_poll_all() -> dict[str, str]:
    """Poll every PostgreSQL data source; {slug: what happened}."""
    out = {}
    for source in DataSource.objects.filter(kind="postgresql"):
        result = pg_stat_statements_poll(source=source)
        out[source.slug] = result.skipped or f"{result.run.events if result.run else 0} queries"
    return out


# -- portal analytics: product page views and searches ---------------------------------------------
# One statement each (an upsert that adds to the day's row), so recording costs a page one
# query whatever it shows.

_VIEW_UPSERT = """
INSERT INTO usage_productview (product_id, user_id, day, views) VALUES (%s, %s, %s, 1)
ON CONFLICT (product_id, user_id, day) DO UPDATE SET views = usage_productview.views + 1
"""
# On PostgreSQL the count commits without waiting for its WAL to reach the disk (a crash may
# lose the last fraction of a second of page views, never anything else): the wait was 0.2 of
# the 0.5 ms the count costs every product page. set_config(..., true) holds for this
# transaction only, which outside a caller's (the request's autocommit) is the upsert's own.
_VIEW_UPSERT_ASYNC = """
WITH _async AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO usage_productview (product_id, user_id, day, views) SELECT %s, %s, %s, 1 FROM _async
ON CONFLICT (product_id, user_id, day) DO UPDATE SET views = usage_productview.views + 1
"""
_SEARCH_UPSERT = """
INSERT INTO usage_searchday (day, query, searches, empty) VALUES (%s, %s, 1, %s)
ON CONFLICT (day, query) DO UPDATE SET searches = usage_searchday.searches + 1,
    empty = usage_searchday.empty + excluded.empty
"""
SEARCH_QUERY_MAX = SearchDay._meta.get_field("query").max_length
# A search typed on within this many seconds of the last one, and extending or shortening it,
# replaces it (search as you type asks at every pause: "ord", then "orders").
SEARCH_REFINE_SECONDS = 60


def product_view_record(*, product: DataProduct, user, now: datetime | None = None) -> None:
    """Count one load of the product's page by user today."""
    if not getattr(user, "is_authenticated", False):
        return
    day = (now or timezone.now()).date()
    # Inside a caller's transaction the setting would hold for all of it: the plain upsert.
    alone = connection.vendor == "postgresql" and not connection.in_atomic_block
    upsert = _VIEW_UPSERT_ASYNC if alone else _VIEW_UPSERT
    with connection.cursor() as cursor:
        cursor.execute(upsert, [product.pk, user.pk, day])


def search_query_normal(text: str) -> str:
    """The form a search is counted under: lower case, spaces collapsed, at most 200 characters."""
    return " ".join(text.lower().split())[:SEARCH_QUERY_MAX]


def search_record(
    *, query: str, found: bool, last: dict | None = None, now: datetime | None = None
) -> dict | None:
    """Count one search in today's totals (and whether it found nothing).

    `last` is what the same person's previous call returned: the same query again (another
    facet, sort or page of it) is not counted twice, and a query typed on from the last one
    within SEARCH_REFINE_SECONDS replaces it. Returns what to pass as `last` next time (None
    when nothing was counted)."""
    text = search_query_normal(query)
    if not text:
        return None
    now = now or timezone.now()
    day = now.date()
    if last and last.get("day") == day.isoformat():
        if last.get("query") == text:
            return None
        recent = now.timestamp() - float(last.get("at", 0)) <= SEARCH_REFINE_SECONDS
        before = str(last.get("query", ""))
        if recent and (text.startswith(before) or before.startswith(text)):
            SearchDay.objects.filter(day=day, query=before, searches__gt=0).update(
                searches=F("searches") - 1,
                empty=F("empty") - (1 if last.get("empty") else 0),
            )
    with connection.cursor() as cursor:
        cursor.execute(_SEARCH_UPSERT, [day, text, 0 if found else 1])
    return {"query": text, "day": day.isoformat(), "at": now.timestamp(), "empty": not found}


def analytics_purge(*, now: datetime | None = None) -> int:
    """Delete product page views and search totals older than MESH_ANALYTICS_RETENTION_DAYS, and
    searches replaced down to nothing. Returns how many rows went."""
    cutoff = (now or timezone.now()).date() - timedelta(days=settings.MESH_ANALYTICS_RETENTION_DAYS)
    views, _ = ProductView.objects.filter(day__lt=cutoff).delete()
    searches, _ = SearchDay.objects.filter(Q(day__lt=cutoff) | Q(searches=0)).delete()
    return views + searches
