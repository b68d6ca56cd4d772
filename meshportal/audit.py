"""The audit log: who changed what, when, through which door, field by field.

Doors set the context once (middleware for page/API/admin, `audit_context` for tasks and
commands); services call `record()` and never think about where the call came from.
"""

import contextvars
import functools
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from meshportal import bulk
from meshportal.models import AuditEntry
from meshportal.statements import Statement

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "audit_context", default=None
)


@contextmanager
def audit_context(*, actor=None, door: str, request_id: str = "") -> Iterator[None]:
    token = _context.set(
        {"actor": actor, "door": door, "request_id": request_id or str(uuid.uuid4())}
    )
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return _context.get() or {"actor": None, "door": AuditEntry.Door.COMMAND, "request_id": ""}


def _plain(value: Any) -> Any:
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple | set):
        return sorted(_plain(v) for v in value)
    return value


def snapshot(obj: models.Model, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Field values of obj as plain JSON, for diffing before and after a change."""
    data = {}
    derived = getattr(obj, "DERIVED", ())  # search columns (DataProduct.DERIVED)
    for field in obj._meta.concrete_fields:
        if field.name in ("created_at", "updated_at", "id") or field.name in derived:
            continue
        data[field.name] = _plain(getattr(obj, field.attname))
    data.update({k: _plain(v) for k, v in (extra or {}).items()})
    return data


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    if not before:  # a creation (bulk paths write thousands): only what it has, in key order
        return {k: [None, after[k]] for k in sorted(after) if after[k] is not None}
    keys = set(before) | set(after)
    return {k: [before.get(k), after.get(k)] for k in sorted(keys) if before.get(k) != after.get(k)}


# Values never written to the log, whoever records them: an entry says only that one changed.
SECRET_KEYS = frozenset({"secret", "password", "password_env", "secret_file", "key_hash"})
MASKED = "(secret)"


def _without_secrets(changes: dict[str, Any]) -> dict[str, Any]:
    def mask(value: Any) -> Any:
        return MASKED if value not in (None, "") else value

    return {
        k: ([mask(x) for x in v] if isinstance(v, list) else mask(v)) if k in SECRET_KEYS else v
        for k, v in changes.items()
    }


def record(
    *,
    action: str,
    obj: models.Model,
    changes: dict[str, Any] | None = None,
    scope: models.Model | None = None,
    actor=None,
) -> AuditEntry | None:
    """Write one entry. An update with no change writes nothing."""
    if action == AuditEntry.Action.UPDATE and not changes:
        return None
    ctx = current_context()
    who = actor if actor is not None else ctx["actor"]
    if hasattr(who, "resolve"):
        who = who.resolve()
    if who is not None and not getattr(who, "is_authenticated", False):
        who = None
    scope = scope or obj
    return AuditEntry.objects.create(
        actor=who,
        actor_name=who.get_username() if who else ctx["door"],
        door=ctx["door"],
        action=action,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:300],
        changes=_without_secrets(changes or {}),
        scope_type=ContentType.objects.get_for_model(scope),
        scope_id=str(scope.pk),
        request_id=ctx["request_id"],
    )


ROW = [
    "timestamp",
    "actor_id",
    "actor_name",
    "door",
    "action",
    "content_type_id",
    "object_id",
    "object_repr",
    "changes",
    "scope_type_id",
    "scope_id",
    "request_id",
]


def record_many(
    entries: Iterable[tuple[str, models.Model, dict[str, Any], models.Model | None]],
    *,
    actor=None,
) -> None:
    """Many entries (action, obj, changes, scope) in one statement, for bulk paths (the quality
    sweep opening incidents): what `record` writes for each, without an entry for an update
    with no change."""
    ctx = current_context()
    who = actor if actor is not None else ctx["actor"]
    if hasattr(who, "resolve"):
        who = who.resolve()
    if who is not None and not getattr(who, "is_authenticated", False):
        who = None
    door, request_id = ctx["door"], ctx["request_id"]
    name = who.get_username() if who else door
    now = timezone.now()
    type_of = ContentType.objects.get_for_model
    rows = [
        (
            now,
            who.pk if who else None,
            name,
            door,
            action,
            type_of(obj, for_concrete_model=False).pk,
            str(obj.pk),
            str(obj)[:300],
            _without_secrets(changes or {}),
            type_of(scope or obj).pk,
            str((scope or obj).pk),
            request_id,
        )
        for action, obj, changes, scope in entries
        if not (action == AuditEntry.Action.UPDATE and not changes)
    ]
    if rows:
        bulk.insert_values(AuditEntry, ROW, rows)


def entries_for(obj: models.Model, *, user, limit: int = 100) -> list:
    """The newest `limit` entries of obj's Activity tab (the object itself and everything scoped
    to it), less those `user` may not read (`readable`)."""
    entries = _entries_statement(limit)(
        scope_type=ContentType.objects.get_for_model(obj).pk, scope_id=str(obj.pk)
    )
    return readable(user, entries)


@functools.cache
def _entries_statement(limit: int) -> Statement:
    # Compiled once per process and limit (meshportal.statements): every page with an
    # Activity list reads it.
    return Statement(
        lambda scope_type, scope_id: AuditEntry.objects.filter(
            scope_type_id=scope_type, scope_id=scope_id
        ).select_related("actor", "content_type")[:limit]  # the list names each entry's model
    )


def readable(user, entries: Iterable[AuditEntry]) -> list:
    """The entries user may read. An entry tells what its object held, so it is for those who
    may see that object (`permissions.can(user, VIEW, obj)`): another person's access request
    on a product page, another team's webhook on a team page and a deleted draft on its domain's
    page are left out. An object deleted since is judged by the values its entry recorded.
    Entries about the page's own object (which the page has already checked) are kept."""
    from meshportal import permissions

    entries = list(entries)
    if permissions.is_platform(user):
        return entries
    wanted: dict[type[models.Model], set[str]] = {}
    for e in entries:
        model = ContentType.objects.get_for_id(e.content_type_id).model_class()
        own = e.content_type_id == e.scope_type_id and e.object_id == e.scope_id
        if model is not None and not own and permissions.has_rule(model):
            wanted.setdefault(model, set()).add(e.object_id)
    found: dict[tuple[type[models.Model], str], models.Model] = {}
    for model, ids in wanted.items():
        # Parents and grandparents (a field's port's product), so that asking the rule costs
        # no query per entry.
        rows = model._default_manager.select_related(*_parents(model, depth=2))
        for pk, obj in rows.in_bulk(ids).items():
            found[model, str(pk)] = obj
    may: dict[tuple[type[models.Model], str], bool] = {}
    kept = []
    for e in entries:
        model = ContentType.objects.get_for_id(e.content_type_id).model_class()
        if model not in wanted or e.object_id not in wanted[model]:
            kept.append(e)
            continue
        key = (model, e.object_id)
        if key not in may:
            recorded = found.get(key) or _as_recorded(model, e)
            may[key] = recorded is not None and permissions.can(user, permissions.VIEW, recorded)
        if may[key]:
            kept.append(e)
    return kept


def _parents(model: type[models.Model], *, depth: int) -> list[str]:
    """The non-null foreign keys of model and, to `depth`, of their models (for select_related)."""
    paths = []
    for f in model._meta.concrete_fields:
        if f.many_to_one and not f.null:
            paths.append(f.name)
            if depth > 1 and f.related_model is not None:
                paths += [f"{f.name}__{p}" for p in _parents(f.related_model, depth=depth - 1)]
    return paths


def _as_recorded(model: type[models.Model], entry: AuditEntry) -> models.Model | None:
    """An unsaved instance of a deleted object with the values its entry recorded before the
    deletion (None when the entry does not hold them)."""
    values = {}
    for field in model._meta.concrete_fields:
        recorded = (entry.changes or {}).get(field.name)
        if isinstance(recorded, list) and len(recorded) == 2 and recorded[0] is not None:
            values[field.attname] = recorded[0]
    if not values:
        return None
    try:
        # the entry keeps the id as text: as the model's own type, as a row read would have it
        return model(pk=model._meta.pk.to_python(entry.object_id), **values)
    except (TypeError, ValueError, ValidationError):
        return None


def with_names(entries) -> list:
    """Entries whose diffs name the objects they reference: `product: 38` reads
    `product: Orders published`. One query per referenced model for the whole page, never one
    per row; an id whose object is gone reads `#38 (deleted)`. Run after any redaction: only
    whole-number values of foreign-key fields are replaced, so a HIDDEN value stays hidden.
    Changes only the entries in memory, never the log."""
    entries = list(entries)
    wanted: dict[type[models.Model], set[Any]] = {}
    plan = []
    for e in entries:
        model = ContentType.objects.get_for_id(e.content_type_id).model_class()
        for key, values in (e.changes or {}).items():
            field = _foreign_key(model, key)
            if field is None or not isinstance(values, list):
                continue
            target = field.related_model
            ids = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
            if ids:
                wanted.setdefault(target, set()).update(ids)
                plan.append((e, key, target))
    names = {}
    for target, pks in wanted.items():
        # A name often reads its parent (a port is "product / port"): fetched in the same query.
        parents = [f.name for f in target._meta.concrete_fields if f.many_to_one]
        rows = target._default_manager.all()
        if parents:
            rows = rows.select_related(*parents)
        found = rows.in_bulk(pks)
        names[target] = {pk: str(obj) for pk, obj in found.items()}
    for e, key, target in plan:
        e.changes = {
            **e.changes,
            key: [
                names[target].get(v, f"#{v} (deleted)")
                if isinstance(v, int) and not isinstance(v, bool)
                else v
                for v in e.changes[key]
            ],
        }
    return entries


def _foreign_key(model, name: str):
    if model is None:
        return None
    try:
        field = model._meta.get_field(name)
    except Exception:  # noqa: BLE001 - a key that is no field (an extra in the diff)
        return None
    return field if getattr(field, "many_to_one", False) and field.concrete else None
