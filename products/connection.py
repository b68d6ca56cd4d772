"""Connection details: which values they are, and how every door hides them.

Where a product's data lives (a port's table location and data source, the ODCS `servers` and
`physicalName`) and the failing values a quality run sampled are for the people who may read
the data: `can(user, VIEW_CONNECTION, product)` (the owning team, approved consumers, the
platform team). Every door that carries them — pages and their tabs, the activity log, the
API, the contract and ODPS exports, stored contract versions and their changelogs, quality results —
asks `sees_connection()` and, for everyone else, shows the value as HIDDEN through the
functions below. Adding a private field means adding its name here, nowhere else.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from meshportal.permissions import VIEW_CONNECTION, can

HIDDEN = "(hidden)"

# Names under which a connection detail travels: model fields (audit diffs, snapshots), ODCS
# keys (contract documents) and quality results.
CONNECTION_KEYS = frozenset(
    {
        "location",
        "data_source",
        "data_source_id",
        "physicalName",
        "servers",
        "server",
        "sample",
        "connection",
        "host",
        "database",
        "password_env",
        "secret_file",
        "options",
        "account",
        "project",
        "dataset",
        "catalog",
        "path",
        "default_schema",
        "sslmode",
        "dataSource",
    }
)

# Keys removed outright from ODCS documents (rather than shown as HIDDEN) so an export stays a
# valid document for those who may not see where the data lives.
DOCUMENT_KEYS = frozenset({"physicalName", "servers", "server"})
# Keys whose value is SQL a person wrote (a custom check's `sql`, an ODCS rule's `query`): it
# may name the port's table, which reads `${object}` for everyone else.
SQL_KEYS = frozenset({"sql", "query"})
OBJECT = "${object}"


def sees_connection(user, product) -> bool:
    return can(user, VIEW_CONNECTION, product)


@cache
def _lower(keys: frozenset[str]) -> frozenset[str]:
    return frozenset(k.lower() for k in keys)


def redact(value: Any, keys: frozenset[str] = CONNECTION_KEYS) -> Any:
    """A copy of value (dicts and lists, any depth) with the value of every private key HIDDEN,
    and of every custom property (`{property, value}`) with a private name."""
    if isinstance(value, dict):
        name = value.get("property")
        if isinstance(name, str) and name.lower() in _lower(keys) and "value" in value:
            return {**value, "value": HIDDEN}
        return {
            k: (HIDDEN if k in keys and v not in (None, "", []) else redact(v, keys))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, keys) for v in value]
    return value


def strip_document(doc: Any) -> Any:
    """An ODCS document without where its data lives (physicalName, servers) and without the
    custom properties (`{property, value}`, at any level) named as a connection detail."""
    if isinstance(doc, dict):
        return {k: strip_document(v) for k, v in doc.items() if k not in DOCUMENT_KEYS}
    if isinstance(doc, list):
        return [strip_document(v) for v in doc if not _private_property(v)]
    return copy.copy(doc)


def _private(name: Any) -> bool:
    return isinstance(name, str) and name.lower() in _lower(CONNECTION_KEYS)


def _private_property(item: Any) -> bool:
    return isinstance(item, dict) and _private(item.get("property"))


def strip_kept(value: Any) -> Any:
    """Content kept from an imported document as it came (products.contracts.odps), without
    anything that may say where data lives: every private key (any spelling of its case), at
    any depth, and every custom property (`{property, value}`) with a private name."""
    if isinstance(value, dict):
        return {k: strip_kept(v) for k, v in value.items() if not _private(k)}
    if isinstance(value, list):
        return [strip_kept(v) for v in value if not _private_property(v)]
    return value


def strip_yaml(text: str, locations: list[str]) -> str:
    """A stored contract document (YAML) as contract_yaml_for() would export it to someone
    who may not see where its data lives."""
    import yaml

    from products.contracts import services as contracts

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return ""
    if not isinstance(doc, dict):
        return ""
    return contracts.dump(hide_sql_in(strip_document(doc), locations))


def redact_change(change: dict) -> dict:
    """A contract changelog entry whose subject is a connection detail keeps its path and
    kind; its message no longer quotes the values."""
    last = str(change.get("path", "")).rsplit(".", 1)[-1]
    if last not in CONNECTION_KEYS:
        return change
    subject = str(change.get("path", "")).split(".")
    where = f"Port {subject[1]}: " if len(subject) > 2 and subject[0] == "ports" else ""
    return {**change, "message": f"{where}{last} changed (hidden)."}


def table_names(locations: Iterable[str | None]) -> list[str]:
    """Every way the ports' tables are named: each location and its bare table name, longest
    first (so `sales.orders` goes before `orders`)."""
    names = set()
    for loc in locations:
        if loc:
            names.add(loc)
            names.add(re.split(r"[./\\]", loc.rstrip("/"))[-1])
    return sorted((n for n in names if len(n) >= 3), key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str | None]) -> str:
    """Free text (a run message) with each port location and its bare table name HIDDEN."""
    for secret in table_names(secrets):
        text = re.sub(rf"(?<![\w$]){re.escape(secret)}(?!\w)", HIDDEN, text)
    return text


def _sql_name(name: str) -> str:
    """A pattern for a table name in SQL: each part bare or quoted, any qualifier before it."""
    parts = [re.escape(p) for p in name.split(".")]
    part = r"(?:\"{0}\"|`{0}`|\[{0}\]|{0})"
    qualifier = r"(?:(?:\"[^\"]*\"|`[^`]*`|\[[^\]]*\]|\w+)\.)*"
    return qualifier + r"\.".join(part.format(p) for p in parts)


def hide_in_sql(sql: str, locations: Iterable[str | None]) -> str:
    """SQL that names the ports' tables, with each name (qualified or bare, quoted or not)
    written `${object}`, as the check form invites people to write it."""
    for name in table_names(locations):
        sql = re.sub(rf"(?<![\w$\"`\]]){_sql_name(name)}(?![\w\"`])", OBJECT, sql, flags=re.I)
    return sql


def hide_sql_in(value: Any, locations: list[str]) -> Any:
    """A copy of value (dicts and lists, any depth) with SQL under SQL_KEYS through hide_in_sql."""
    if isinstance(value, dict):
        return {
            k: (
                hide_in_sql(v, locations)
                if k in SQL_KEYS and isinstance(v, str)
                else hide_sql_in(v, locations)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [hide_sql_in(v, locations) for v in value]
    return value


def locations_of(product) -> list[str]:
    return [p.location for p in product.ports.all() if p.location]


def hide_in_entries(user, product, entries) -> list:
    """Audit entries of product as user may read them (values of private fields HIDDEN)."""
    entries = list(entries)
    if sees_connection(user, product):
        return entries
    locations = locations_of(product)
    for e in entries:
        e.changes = hide_sql_in(redact(e.changes), locations)
    return entries


def hide_in_versions(user, product, versions) -> list:
    """Stored contract versions of product as user may read them: changelog messages that
    quote a private value and the stored document's physicalName/servers go."""
    versions = list(versions)
    if sees_connection(user, product):
        return versions
    locations = locations_of(product)
    for v in versions:
        v.changelog = [hide_sql_in(redact_change(c), locations) for c in v.changelog or []]
        if v.document:
            v.document = strip_yaml(v.document, locations)
    return versions


def hide_in_changes(user, product, changes: list) -> list:
    """Computed contract changes (objects with path/message) as user may read them."""
    if sees_connection(user, product):
        return changes
    locations = locations_of(product)
    return [type(c)(**hide_sql_in(redact_change(dict(c.__dict__)), locations)) for c in changes]


def hide_in_runs(user, product, runs) -> list:
    """Quality runs of product's checks as user may read them: no sampled values, and the
    port's location kept out of messages."""
    runs = list(runs)
    if sees_connection(user, product):
        return runs
    secrets = locations_of(product)
    for r in runs:
        if r is None:
            continue
        r.sample = []
        if r.message:
            r.message = redact_text(r.message, secrets)
    return runs


def contract_yaml_for(user, product) -> str:
    """The product's ODCS export as user may read it."""
    from products.contracts import services as contracts

    doc = contracts.export_document(product)
    if sees_connection(user, product):
        return contracts.dump(doc)
    return contracts.dump(hide_sql_in(strip_document(doc), locations_of(product)))
