"""Statements the ORM compiles once per process.

Django compiles a queryset to SQL every time it runs one. A few statements run on nearly every
page with the same text and new values (a product by its slugs, its ports, the user's team
roles); on a product page compiling nine statements was 3.7 of 18 ms. `Statement(build)` keeps
`build`'s queryset as the one definition (its filters, joins, ordering, the rows it makes) and
compiles it once per database: with a marker in place of each argument, whose positions among
the compiled parameters are then filled with the real values on every run.

`build` must give the same SQL text for every value of its arguments: equality filters on
strings and integers, no `__in` lists (their length is in the text), no `None` (`IS NULL`). A
marker that the compiled parameters do not carry verbatim (a `LIKE` pattern built around it,
a value folded into the text) is refused when the statement is first compiled, loudly.
`build` may also return SQL text and its parameters that it assembled around querysets (the
facet pass): `Statement.sql()` then gives them, with the same markers filled in.

On PostgreSQL a compiled statement also runs prepared: its parameters bound on the server and
its plan kept by the connection, since its text never changes. Planning was most of what the
database spent on a page (a product page: 1.1 ms planning its statements against 0.25 ms
running them); prepared, the product page's database time per request went 4.3 → 2.2 ms of
CPU. `DB_PREPARED_STATEMENTS=false` turns it off (a transaction-mode pooler that cannot keep
prepared statements: docs/deployment.md).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from functools import cache

from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.db import connections
from django.db.models import QuerySet

# In the 32-bit range (Django turns an integer lookup outside its field's range into an empty
# result, which compiles to no SQL at all); no id, count or position is this negative.
_INT_MARK = -2_000_000_000
_STR_MARK = "\u2063mark:{}\u2063"  # invisible separators: no slug, name or key holds them


# Every statement, so that a change of the constants compiled into them (permission ids after
# a flush or migration) can forget them all at once: forget_all().
_every: weakref.WeakSet[Statement] = weakref.WeakSet()


def forget_all() -> None:
    """Compile every statement again on its next run."""
    for statement in list(_every):
        statement.forget()


def _settings_changed(**kwargs) -> None:
    # A statement holds what its settings made of it when it was compiled (the extensions'
    # columns and facets, the search's weights): a changed setting (tests, override_settings)
    # compiles every statement again rather than keep one built under the other value.
    forget_all()


setting_changed.connect(_settings_changed, dispatch_uid="statements-forget-on-settings")


class Statement:
    def __init__(self, build: Callable[..., QuerySet | tuple[str, list]]):
        self.build = build
        _every.add(self)
        # alias -> (queryset, compiler, sql, slots, the arguments' types)
        self._compiled: dict[str, tuple] = {}

    def __call__(self, *, using: str = "default", **values) -> list:
        """The rows of build(**values), as the queryset would give them (a list)."""
        compiled = self._ready(using, values)
        if compiled is None:  # a value of another type than the markers, or none can mark it
            built = self.build(**values)
            if not isinstance(built, QuerySet):
                raise TypeError("a statement built as SQL text has no rows of its own: .sql()")
            return list(built.using(using))
        queryset, compiler, sql, slots, _ = compiled
        if queryset is None:
            raise TypeError("a statement built as SQL text has no rows of its own: .sql()")
        params = _fill(slots, values)
        run = queryset._chain()
        ready = _Compiled(compiler, _preparing(connections[using]), sql, params)
        run.query.get_compiler = ready.get_compiler  # this run only: `run` is not handed out
        return list(run)

    def sql(self, *, using: str = "default", **values) -> tuple[str, list]:
        """build(**values)'s SQL and parameters, to embed in another statement (RawSQL)."""
        compiled = self._ready(using, values)
        if compiled is None:
            built = self.build(**values)
            sql, params = built if isinstance(built, tuple) else built.query.sql_with_params()
            return sql, list(params)
        sql, slots = compiled[2], compiled[3]
        return sql, _fill(slots, values)

    def forget(self) -> None:
        """Compile again on the next run (the constants it holds may have changed: a test's
        flushed database renumbers the permissions)."""
        self._compiled.clear()

    def _ready(self, using: str, values: dict):
        """The compiled statement, if these values fit its markers (a string or an integer
        each, where it was compiled with one); else None."""
        kinds = {name: type(value) for name, value in values.items()}
        if any(kind not in (str, int) for kind in kinds.values()):
            return None
        compiled = self._compiled.get(using)
        if compiled is None:
            return self._compile(using, values)
        return compiled if compiled[4] == kinds else None

    def _build_marked(self, marks: dict):
        """build(**marks), or None when a field refuses a marker of that type (an id passed as
        text, which the ORM would convert: the plain queryset runs instead, and the statement
        is compiled by the next call whose values' types fit)."""
        try:
            return self.build(**marks)
        except (TypeError, ValueError, ValidationError):
            return None

    def _compile(self, using: str, values: dict):
        marks: dict[str, str | int] = {}
        for i, (name, value) in enumerate(sorted(values.items())):
            marks[name] = _STR_MARK.format(i) if type(value) is str else _INT_MARK - i
        built = self._build_marked(marks)
        if built is None:
            return None
        if isinstance(built, tuple):  # SQL and parameters built by hand: for .sql() alone
            queryset = compiler = None
            sql, params = built
        else:
            queryset = built.using(using)
            compiler = queryset.query.get_compiler(using=using)
            sql, params = compiler.as_sql()
        by_mark = {mark: name for name, mark in marks.items()}
        slots = [by_mark.get(p, (p,)) if type(p) in (str, int) else (p,) for p in params]
        missing = set(marks) - {s for s in slots if isinstance(s, str)}
        if missing or any(isinstance(m, str) and m in sql for m in marks.values()):
            raise ValueError(
                f"{self.build.__qualname__}: {sorted(missing)} do not reach the SQL as plain "
                "parameters; it cannot be compiled once"
            )
        kinds = {name: type(value) for name, value in values.items()}
        self._compiled[using] = compiled = (queryset, compiler, sql, slots, kinds)
        return compiled


def array_text(ids: Iterable[int]) -> str:
    """Integer ids as a PostgreSQL array's text (`{1,2,3}`): one parameter whatever their
    number, so a statement's text does not depend on it (`= ANY(%s::bigint[])`)."""
    return "{" + ",".join(str(int(pk)) for pk in ids) + "}"


def scalar(sql: str, params, using: str = "default", *, prepared: bool = False):
    """The one value a statement answers (a count): for reads handed to another thread
    (meshportal.beside), which take SQL text built beforehand on the request's. `prepared`:
    see fetch()."""
    return fetch(sql, params, using, prepared=prepared)[0][0]


def fetch(sql: str, params, using: str = "default", *, prepared: bool = False) -> list[tuple]:
    """The rows of SQL text a caller assembled. `prepared`: the text is the same on every run,
    every value a parameter, and its plan does not depend on them (no words of a search, whose
    plan depends on how many products they match): on PostgreSQL it runs prepared, as a
    compiled statement does."""
    connection = connections[using]
    with (_preparing(connection) if prepared else connection).cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _preparing(connection):
    """The connection a compiled statement runs on: on PostgreSQL with prepared statements on
    (settings.DB_PREPARED_STATEMENTS, psycopg's prepare_threshold), one whose cursors prepare
    it; else the connection itself."""
    if connection.vendor != "postgresql":
        return connection
    if connection.settings_dict.get("OPTIONS", {}).get("prepare_threshold") is None:
        return connection
    if connection.settings_dict.get("CONN_MAX_AGE") == 0:
        # closed after every request: a statement prepared would be planned as often, and
        # preparing costs a round trip of its own
        return connection
    return _Preparing(connection)


class _Preparing:
    """The connection, its cursor() binding parameters on the server and preparing the
    statement (psycopg keeps it per connection, by text and parameter types: the least used
    dropped past its prepared_max). Django's own cursors bind on the client and never
    prepare: only the texts compiled once here are kept."""

    def __init__(self, connection):
        self._connection = connection

    def __getattr__(self, name):
        return getattr(self._connection, name)

    def cursor(self):
        conn = self._connection
        conn.close_if_health_check_failed()
        conn.ensure_connection()
        with conn.wrap_database_errors:
            return conn._prepare_cursor(_prepared_cursor_class()(conn.connection))


@cache
def _prepared_cursor_class():
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparedCursor(ServerBindingCursor):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparedCursor


def _fill(slots: list, values: dict) -> list:
    """The parameters: each argument's value where its marker was, the constants as compiled."""
    return [values[slot] if isinstance(slot, str) else slot[0] for slot in slots]


class _Compiled:
    """The template's compiler (its select list and how rows become objects, filled in when it
    compiled), bound to this thread's connection, answering with the kept SQL."""

    def __init__(self, compiler, connection, sql, params):
        self.compiler, self.connection, self.sql, self.params = compiler, connection, sql, params

    def get_compiler(self, using=None, connection=None, elide_empty=True):
        compiler = self.compiler.__class__.__new__(self.compiler.__class__)
        compiler.__dict__.update(self.compiler.__dict__)
        compiler.connection = self.connection
        compiler.as_sql = self.as_sql
        return compiler

    def as_sql(self, with_limits=True, with_col_aliases=False):
        return self.sql, self.params
