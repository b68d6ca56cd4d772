"""PostgreSQL's plan for a statement a piece of code runs (tests of index use)."""

from collections.abc import Callable

from django.db import connection
from django.test.utils import CaptureQueriesContext


def plan_of(run: Callable[[], object], marker: str) -> str:
    """EXPLAIN of the first statement `run()` sends whose SQL holds `marker`."""
    with CaptureQueriesContext(connection) as queries:
        run()
    sql = next(q["sql"] for q in queries.captured_queries if marker in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())
