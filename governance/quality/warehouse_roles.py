"""A least-privilege login role for reading a PostgreSQL warehouse schema: what the demo
warehouse, the tests and the benchmark connect as (never the portal's own role, never a
superuser). It may log in, use the given schemas and SELECT their tables; nothing else, so the
portal's own tables in the same database answer "permission denied".

Django-free: takes any DB-API cursor with the `%s` paramstyle, in autocommit mode (a failed
CREATE ROLE must not abort a surrounding transaction). Roles are cluster-wide and several
databases (test workers) may ask for the same one at once, so creation tolerates a race.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Attributes a reader must not have; ALTER ROLE is issued only if one is set (concurrent
# ALTERs of one role fail with "tuple concurrently updated").
_WRONG = "rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls"


def _ident(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise ValueError(f"Not a plain role or schema name: {name!r}")
    return f'"{name}"'


def _literal(text: str) -> str:
    # standard_conforming_strings is on (the default since PostgreSQL 9.1).
    return "'" + text.replace("'", "''") + "'"


def ensure_reader_role(cur, role: str, schemas: list[str], password: str | None = None) -> None:
    """Create `role` if missing (LOGIN, nothing else), strip extra attributes, and grant it
    USAGE on `schemas` and SELECT on their current tables."""
    r = _ident(role)
    cur.execute(
        "DO $$ BEGIN "
        f"CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )
    wrong = f"SELECT 1 FROM pg_roles WHERE rolname = %s AND ({_WRONG})"  # noqa: S608  # nosec B608
    cur.execute(wrong, [role])
    if cur.fetchone():
        cur.execute(f"ALTER ROLE {r} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")
    if password:
        # A utility statement takes no bound parameters; the literal is quoted above.
        cur.execute(f"ALTER ROLE {r} PASSWORD {_literal(password)}")  # nosec B608
    for schema in schemas:
        s = _ident(schema)
        cur.execute(f"GRANT USAGE ON SCHEMA {s} TO {r}")
        cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}")
