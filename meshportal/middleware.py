import logging
import threading
import uuid

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from meshportal.audit import audit_context

log = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30


def database_unavailable_response(request, exc: BaseException) -> HttpResponse:
    """503 for a request that failed because the database is unreachable.

    Rendered without the request's context: the context processors would query the database.
    """
    log.error("Database unavailable: %s %s: %s", request.method, request.path, type(exc).__name__)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {
                "detail": "The database is unavailable. Try again in a moment.",
                "code": "database_unavailable",
            },
            status=503,
        )
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """Database down: a friendly 503 page (JSON under /api/) instead of a traceback.

    Errors raised by views come here through process_exception; errors raised in other
    middleware (loading the session, say) reach meshportal.views.server_error, which answers
    the same way. Django opens a fresh connection on the next request, so the portal recovers
    by itself when the database comes back.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            return database_unavailable_response(request, exception)
        return None


class PortalLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Every page needs a signed-in user. The API answers for itself (401/403 JSON, tokens)."""

    # /oidc/ exists only when single sign-on is configured (its callback signs people in).
    open_prefixes = ("/api/", "/healthz", "/readyz", "/static/", "/oidc/")

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(self.open_prefixes):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class RejectNulBytesMiddleware:
    """A NUL byte in the URL or query string is never valid input, and PostgreSQL refuses it in
    text: answer 400 at the door instead of a 500 from deep inside a query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any(
            "\x00" in v for values in request.GET.lists() for v in [values[0], *values[1]]
        ):
            from django.http import HttpResponseBadRequest, JsonResponse

            if request.path.startswith("/api/"):
                return JsonResponse(
                    {
                        "detail": "The request contains a NUL byte.",
                        "errors": [{"field": None, "reason": "NUL byte"}],
                    },
                    status=400,
                )
            return HttpResponseBadRequest("The request contains a NUL byte.")
        return self.get_response(request)


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
        with audit_context(
            actor=_LazyActor(request), door=door_for(request.path), request_id=request.request_id
        ):
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
    `python -m bench`. Queries are counted with an execute wrapper, so DEBUG can stay off; the
    reads a request ran beside its own (meshportal.beside) count too, their CPU and statements.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from time import perf_counter, thread_time

        from django.db import connection

        stats = {"n": 0, "t": 0.0}
        lock = threading.Lock()  # the helper thread's reads count here too

        def count(execute, sql, params, many, context):
            t0 = perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                with lock:
                    stats["n"] += 1
                    stats["t"] += perf_counter() - t0

        from meshportal import beside

        beside_cpu: list[float] = []  # the helper thread's work for this request (beside.py)
        start, cpu_start = perf_counter(), thread_time()
        with connection.execute_wrapper(count), beside.observe(count, beside_cpu):
            response = self.get_response(request)
        total = (perf_counter() - start) * 1000
        # this process's own CPU: robust to a busy host
        cpu = (thread_time() - cpu_start + sum(beside_cpu)) * 1000
        response["Server-Timing"] = (
            f"app;dur={total:.2f}, cpu;dur={cpu:.2f}, "
            f'sql;dur={stats["t"] * 1000:.2f};desc="{stats["n"]} queries"'
        )
        response["X-SQL-Queries"] = str(stats["n"])
        return response


class FriendlyNotFoundMiddleware:
    """The portal's own 404 page in every environment, DEBUG included.

    With DEBUG on, Django answers a missing object or an unknown address with its yellow
    technical page; a person following a link to something deleted (a notification, say)
    should get the portal's page instead, which says why and where to go. The API answers
    for itself (JSON).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 404
            and getattr(request, "resolver_match", None) is None
            and not request.path.startswith(("/api/", "/static/"))
        ):
            # No view ran: the address matched no URL (Django's technical page under DEBUG).
            from django.conf import settings

            if settings.DEBUG:
                return self._not_found(request, None)
        return response

    def process_exception(self, request, exception):
        from django.http import Http404

        if isinstance(exception, Http404) and not request.path.startswith("/api/"):
            return self._not_found(request, exception)
        return None

    @staticmethod
    def _not_found(request, exception):
        from django.views import defaults

        return defaults.page_not_found(request, exception or Exception())
