"""From a query's text to the tables it reads and writes, parsed by sqlglot in the data source's
dialect (the dialect names of governance.quality.sql). Nothing here knows Django.

A statement that cannot be parsed is counted by the caller, never fatal. Query logs repeat the
same statements many times, so results are cached by (text, dialect).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from governance.quality.sql import dialect_for

MAX_LENGTH = 100_000  # longer statements are counted as unparsed, not parsed
CACHE_SIZE = 20_000

# sqlglot warns on the root logger about syntax it only half supports: not our log's business.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Parsed:
    reads: frozenset[str]
    writes: frozenset[str]
    ok: bool = True


UNPARSED = Parsed(frozenset(), frozenset(), ok=False)


def table_name(table: exp.Table) -> str:
    """`schema.table` (or `table`) in lower case, without quotes or catalog."""
    name = (table.name or "").lower()
    schema = (table.db or "").lower()
    return f"{schema}.{name}" if schema else name


def _target(node: exp.Expr | None) -> exp.Table | None:
    if isinstance(node, exp.Schema):  # CREATE TABLE t (cols) / INSERT INTO t (cols)
        node = node.this
    return node if isinstance(node, exp.Table) else None


_WRITES = (exp.Insert, exp.Create, exp.Update, exp.Delete, exp.Merge)


def _statement_tables(statement: exp.Expr, reads: set[str], writes: set[str]) -> None:
    # One walk of the tree (several find_all passes cost more than the parse itself).
    ctes: set[str] = set()
    tables: list[exp.Table] = []
    written: set[int] = set()
    for node in statement.walk():
        if isinstance(node, exp.Table):
            tables.append(node)
        elif isinstance(node, exp.CTE):
            ctes.add(node.alias_or_name.lower())
        elif isinstance(node, _WRITES):
            if isinstance(node, exp.Create) and str(node.args.get("kind", "")).upper() not in (
                "TABLE",
                "VIEW",
            ):
                continue
            target = _target(node.this)
            if target is not None and target.name:
                written.add(id(target))
                writes.add(table_name(target))
    for table in tables:
        if id(table) in written or not table.name:
            continue
        name = table_name(table)
        if not table.db and name in ctes:
            continue
        reads.add(name)


_STATEMENTS = (exp.Query, exp.DML, exp.DDL, exp.Set, exp.Transaction, exp.Commit, exp.Rollback)


# Literals say nothing about tables: `WHERE id = 41` and `WHERE id = 42` parse once.
_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w.$])\d+(?:\.\d+)?(?![\w.])")


def normalise(text: str) -> str:
    return _NUMBER.sub("0", _STRING.sub("''", text))


@lru_cache(maxsize=CACHE_SIZE)
def parse(text: str, kind: str = "postgresql") -> Parsed:
    """Tables read and written by `text` (one statement or several), in the dialect of data
    source kind `kind`. UNPARSED when sqlglot cannot read it. Cached by the text as logged,
    then by the text without its literals."""
    if not text or len(text) > MAX_LENGTH or "\x00" in text:
        return UNPARSED
    return _parse(normalise(text), kind)


@lru_cache(maxsize=CACHE_SIZE)
def _parse(text: str, kind: str) -> Parsed:
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect_for(kind)) if s is not None]
    except (SqlglotError, RecursionError, ValueError):
        return UNPARSED
    # A statement sqlglot read as a bare expression (`SELEC * FRM` is a multiplication) or a
    # command it does not model is no query: the text counts as unparsed.
    if not statements or not all(isinstance(s, _STATEMENTS) for s in statements):
        return UNPARSED
    reads: set[str] = set()
    writes: set[str] = set()
    for statement in statements:
        _statement_tables(statement, reads, writes)
    return Parsed(frozenset(reads - writes), frozenset(writes))
