import uuid

from django.contrib.auth.middleware import LoginRequiredMiddleware

from .audit import audit_context


class PortalLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Every page needs a signed-in user. The API answers for itself (401/403 JSON, tokens)."""

    open_prefixes = ("/api/", "/healthz", "/readyz", "/static/")

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(self.open_prefixes):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


def door_for(path: str) -> str:
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "page"


class AuditContextMiddleware:
    """Tells the audit log who acts and through which door for the length of a request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request.headers.get("X-Request-ID") or str(uuid.uuid4())
        # The user is resolved lazily: DRF token authentication happens inside the view.
        with audit_context(actor=_LazyActor(request), door=door_for(request.path),
                           request_id=request.request_id):
            return self.get_response(request)


class _LazyActor:
    def __init__(self, request):
        self._request = request

    def resolve(self):
        user = getattr(self._request, "user", None)
        return user if user is not None and user.is_authenticated else None


class BenchHeadersMiddleware:
    """Opt-in (MESH_BENCH_HEADERS=1): report server time and SQL queries per response.

    `Server-Timing: app;dur=12.3, cpu;dur=6.1, sql;dur=4.5;desc="7 queries"` and
    `X-SQL-Queries: 7`, read by
    `python -m bench`. Queries are counted with an execute wrapper, so DEBUG can stay off.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from time import perf_counter, thread_time

        from django.db import connection

        stats = {"n": 0, "t": 0.0}

        def count(execute, sql, params, many, context):
            t0 = perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                stats["n"] += 1
                stats["t"] += perf_counter() - t0

        start, cpu_start = perf_counter(), thread_time()
        with connection.execute_wrapper(count):
            response = self.get_response(request)
        total = (perf_counter() - start) * 1000
        cpu = (thread_time() - cpu_start) * 1000  # this process's own CPU: robust to a busy host
        response["Server-Timing"] = (
            f'app;dur={total:.2f}, cpu;dur={cpu:.2f}, '
            f'sql;dur={stats["t"] * 1000:.2f};desc="{stats["n"]} queries"'
        )
        response["X-SQL-Queries"] = str(stats["n"])
        return response
