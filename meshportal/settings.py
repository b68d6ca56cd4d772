"""Settings for Mesh Portal. Every knob comes from the environment; the README lists them all."""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from whitenoise.compress import Compressor

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("MESH_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"
DEBUG = env.bool("DEBUG", default=not PRODUCTION)

if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production.")


def _required(name: str) -> str:
    """Production refuses to start on a default for these: a clear message beats a bad guess."""
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(
            f"{name} must be set when DJANGO_ENV=production (see the README's Configuration)."
        )
    return value


_DEV_SECRET = "django-insecure-mesh-portal-development-key-do-not-use-in-production"  # noqa: S105 # nosec B105
SECRET_KEY = env.str("SECRET_KEY", default="")
if PRODUCTION:
    SECRET_KEY = _required("SECRET_KEY")
    _required("ALLOWED_HOSTS")
    _required("DATABASE_URL")
    _required("EMAIL_HOST")  # notifications are e-mailed; the console backend is for development
elif not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = _DEV_SECRET
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "guardian",
    "django_htmx",
    "axes",
    "meshportal",
    "domains",
    "products",
    "governance",
    # Usage from the warehouses' query logs (docs/usage.md).
    "usage",
    # The MCP server for AI assistants (`manage.py mcp`, its own process): no models.
    "agents",
    # Management commands only: seed_demo/seed_scale and export_mesh/import_mesh. Web and
    # worker processes never import their modules (import-linter keeps it so).
    "demo",
    "backup",
]

# What other apps add to products: the publish gate, quality rules in contracts, trust in search
# and lineage, observed lineage. Products calls them through `products/extensions.py`.
PRODUCT_EXTENSIONS = [
    "governance.extension.GovernanceExtension",
    "usage.extension.UsageExtension",
]

MIDDLEWARE = [
    "meshportal.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "meshportal.middleware.RejectNulBytesMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "meshportal.middleware.PortalLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "meshportal.middleware.FriendlyNotFoundMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "meshportal.middleware.AuditContextMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]
# Benchmarks only (`make bench`): Server-Timing and X-SQL-Queries headers on every response.
MESH_BENCH_HEADERS = env.bool("MESH_BENCH_HEADERS", default=False)
if MESH_BENCH_HEADERS:
    MIDDLEWARE.insert(0, "meshportal.middleware.BenchHeadersMiddleware")

ROOT_URLCONF = "meshportal.urls"
WSGI_APPLICATION = "meshportal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "meshportal.context_processors.navigation",
                "meshportal.context_processors.service_banner",
                "django.template.context_processors.csp",
            ],
            # {% url %} with each distinct link reversed once per process
            "builtins": ["meshportal.templatetags.links"],
        },
    },
]

# Database: a SQLite file under var/ unless DATABASE_URL says otherwise.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'mesh.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process and the worker write side by side; IMMEDIATE transactions plus
    # a busy timeout make a writer wait instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A database that does not answer (a dropped route, a paused VM) must not hold a request
    # until gunicorn kills the worker: give up connecting after a few seconds, answer 503.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=5)
    )
    # JIT compilation costs 100-300 ms on the portal's short list queries (their estimated cost
    # passes jit_above_cost at 10,000 products) and never pays off for OLTP: off (make bench).
    # The trigram word-similarity operator's threshold is search's typo tolerance, so the typo
    # fallback can use the trigram index (products.discovery.search.TYPO_THRESHOLD).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "options", "-c jit=off -c pg_trgm.word_similarity_threshold=0.3"
    )
    # The statements compiled once per process (meshportal.statements) run prepared: planned
    # once per connection. Django's own statements never are (its cursors bind on the client),
    # so the threshold only has to be a number; off for a pooler that drops them.
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 2**31 - 1)
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# SQLite builds covering indexes (Index(include=...), PostgreSQL's index-only scans) without
# their extra columns, which is all it needs; the warning would only say so.
SILENCED_SYSTEM_CHECKS = [] if IS_POSTGRES else ["models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # django-axes must come first: it refuses locked-out sign-ins before any other backend.
    "meshportal.auth.ThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Django's database sessions, read with a statement compiled once per process.
SESSION_ENGINE = "meshportal.sessions"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 12)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=False)

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed sign-ins for one user name from
# one address, that pair is locked out for AXES_COOLOFF_MINUTES.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_SENSITIVE_PARAMETERS = ["password"]
# Successful sign-ins are not logged by axes (the failures are): no extra write per sign-in.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# Behind a proxy, take the client address from X-Forwarded-For (the proxy count comes from env).
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# Optional single sign-on with OpenID Connect: on only when OIDC_RP_CLIENT_ID is set.
OIDC_ENABLED = bool(env.str("OIDC_RP_CLIENT_ID", default=""))
if OIDC_ENABLED:
    INSTALLED_APPS.append("mozilla_django_oidc")
    AUTHENTICATION_BACKENDS.insert(1, "meshportal.oidc.TeamMappingOIDCBackend")
    OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID")
    OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
    OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
    OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
    OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
    OIDC_USERNAME_ALGO = "meshportal.oidc.username_from_claims"
    OIDC_CREATE_USER = env.bool("OIDC_CREATE_USER", default=True)
    LOGIN_REDIRECT_URL_FAILURE = "login"
# The claim holding the identity provider's groups, and the prefix of groups naming teams.
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_TEAM_GROUP_PREFIX = env.str("OIDC_TEAM_GROUP_PREFIX", default="team:")

# guardian: no anonymous user object; we never grant anything to anonymous visitors.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# In development whitenoise serves straight from static/; production serves collected files.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Production serves hashed, compressed files through whitenoise (run collectstatic first).
# Only the hashed copies are kept and compressed: every page names them through {% static %},
# and collectstatic compresses half as many files (brotli is most of its time).
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
# Source maps (6.5 MB of the vendored API docs' and Bootstrap's) are fetched only by a browser's
# developer tools: served uncompressed, they no longer cost brotli a third of collectstatic.
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "meshportal.storage.StaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Security headers. The CSP is enforced everywhere so that development shows what production
# blocks: no inline scripts, no style attributes, nothing from other origins.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (only trust it if the proxy does).
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # The header only allows submission to the browsers' preload list; nothing is submitted.
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# E-mail (Django 6.1's MAILERS): printed to the console unless EMAIL_HOST names an SMTP server.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
if EMAIL_HOST:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": EMAIL_HOST,
                "port": env.int("EMAIL_PORT", default=587),
                "username": env.str("EMAIL_HOST_USER", default=""),
                "password": env.str("EMAIL_HOST_PASSWORD", default=""),
                "use_tls": env.bool("EMAIL_USE_TLS", default=True),
                "timeout": 10,
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
del EMAIL_HOST
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="mesh-portal@localhost")
# Where people reach the portal, for the absolute links in e-mails. By default the development
# server's own address, on the port `make run` serves (MESH_PORT, as in the Procfile).
MESH_PORT = env.int("MESH_PORT", default=8000)
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default=f"http://127.0.0.1:{MESH_PORT}").rstrip("/")

# A cache shared by every process (Redis) when CACHE_URL is set; otherwise each process keeps
# its own, and caches that need invalidating across processes (the mesh map) stay off.
# The Redis cache fails open (meshportal.cache): with Redis down, pages and the API run uncached.
CACHE_URL = env.str("CACHE_URL", default="")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "meshportal.cache.FailOpenRedisCache",
            "LOCATION": CACHE_URL,
            # CACHE_KEY_PREFIX: for several portals sharing one Redis database (the bench's meshes).
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="mesh"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }

# Celery: Redis in production; with no CELERY_BROKER_URL, kombu's filesystem transport under
# var/ so that `make run` needs no server at all.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
BROKER_IS_REDIS = CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    # kombu keeps broadcast (control) exchanges in ./control unless told otherwise.
    _control_dir = VAR_DIR / "celery" / "control"
    for _dir in (_queue_dir, _processed_dir, _control_dir):
        _dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
        "control_folder": str(_control_dir),
    }
else:
    # A broker that is down must fail fast: the web process records the task and moves on.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 3}
    # A prefix on every broker key lets several portals (or test runs) share one Redis database.
    if _prefix := env.str("CELERY_BROKER_KEY_PREFIX", default=""):
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = _prefix
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
# Fixed periodic tasks live here; per-check quality schedules live on the checks themselves
# (editable in the admin) and are dispatched by a periodic task.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "expire-access-grants": {
        "task": "products.tasks.expire_access_grants",
        "schedule": 300.0,
    },
    "evaluate-policies": {
        "task": "governance.tasks.evaluate_policies",
        "schedule": float(env.int("MESH_POLICY_EVALUATION_SECONDS", default=3600)),
    },
    "quality-dispatch-due-checks": {
        "task": "governance.tasks.quality.dispatch_due_checks",
        "schedule": 60.0,
    },
    "usage-purge-raw-events": {
        "task": "usage.tasks.purge_raw_events",
        "schedule": 3600.0,
    },
    "usage-purge-analytics": {
        "task": "usage.tasks.purge_analytics",
        "schedule": 86400.0,
    },
    "usage-poll-pg-stat-statements": {
        "task": "usage.tasks.poll_pg_stat_statements",
        "schedule": float(env.int("MESH_USAGE_PG_STAT_SECONDS", default=900)),
    },
    "send-pending-tasks": {
        "task": "meshportal.tasks.send_pending_tasks",
        "schedule": 60.0,
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "meshportal.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["meshportal.api.common.PortalPermission"],
    # JSON only (DRF's parser with a depth limit): one body type per operation in the OpenAPI
    # schema, so generated clients can send nested objects. Contract uploads take YAML/JSON text.
    "DEFAULT_PARSER_CLASSES": ["meshportal.api.common.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_FILTER_BACKENDS": [
        "meshportal.api.common.FilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "meshportal.api.common.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "meshportal.api.schema.PortalAutoSchema",
    "EXCEPTION_HANDLER": "meshportal.api.common.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "meshportal.api.auth.AnonThrottle",
        "meshportal.api.auth.UserThrottle",
        "meshportal.api.auth.TokenThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
        "user": env.str("API_THROTTLE_USER", default="1200/min"),
        "token": env.str("API_THROTTLE_TOKEN", default="1200/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Mesh Portal API",
    "DESCRIPTION": (
        "Data products, ports, fields, access requests, ODCS v3 data contracts, governance "
        "policies, evaluations and waivers, and quality checks and their runs."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "ProductStatusEnum": "products.models.DataProduct.Status",
        "AccessRequestStatusEnum": "products.models.AccessRequest.Status",
        "PolicyStatusEnum": "governance.models.Policy.Status",
        "WaiverStatusEnum": "governance.models.Waiver.Status",
        "QualityRunStatusEnum": "governance.models.QualityRun.Status",
        "IncidentStatusEnum": "governance.models.Incident.Status",
        "IncidentKindEnum": "governance.models.Incident.Kind",
        "IncidentEventKindEnum": "governance.models.IncidentEvent.Kind",
    },
}

# Logs go to stderr: plain lines in development, one JSON object per line in production
# (LOG_FORMAT overrides). The JSON formatter never prints request bodies, headers or settings.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "meshportal.logging.JsonFormatter"},
    },
    "filters": {
        "database_outage": {"()": "meshportal.logging.DatabaseOutageFilter"},
        "client_errors": {"()": "meshportal.logging.ClientErrorFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["database_outage", "client_errors"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's own default handlers for "django" (a console one when DEBUG is on) would
        # print every django.* line a second time next to the root's: the root writes them.
        "django": {"handlers": [], "propagate": True},
    },
}

# Mesh Portal's own knobs.
# The demo warehouse seed_demo fills: a schema in the portal's PostgreSQL database, or this
# SQLite file when the portal runs on SQLite.
MESH_DEMO_WAREHOUSE_PATH = env.str(
    "MESH_DEMO_WAREHOUSE_PATH", default=str(VAR_DIR / "warehouse.sqlite3")
)
MESH_DEMO_WAREHOUSE_SCHEMA = "demo_warehouse"
# The demo lake: Parquet files read through a DuckDB data source (demo/lake.py).
MESH_DEMO_LAKE_DIR = env.str("MESH_DEMO_LAKE_DIR", default=str(VAR_DIR / "lake"))
# On PostgreSQL the demo data source connects as this login role, which can only SELECT the
# demo schema (seed_demo creates it; its password, if any, from DEMO_WAREHOUSE_PASSWORD).
MESH_DEMO_WAREHOUSE_ROLE = env.str("MESH_DEMO_WAREHOUSE_ROLE", default="mesh_demo_reader")

# Governance: approvals a global policy needs from the council; seconds a burst of product edits
# waits before the changed products are evaluated.
MESH_POLICY_QUORUM = env.int("MESH_POLICY_QUORUM", default=3)
MESH_POLICY_DEBOUNCE_SECONDS = env.int("MESH_POLICY_DEBOUNCE_SECONDS", default=30)

# Semantic search (docs/search.md): hybrid keyword + meaning ranking, on when the `semantic`
# extra is installed (numpy, tokenizers and the all-MiniLM-L6-v2 weights) unless switched off
# here; seconds a burst of product edits waits before the products' vectors are recomputed.
MESH_SEMANTIC_SEARCH = env.bool("MESH_SEMANTIC_SEARCH", default=True)
MESH_EMBED_DEBOUNCE_SECONDS = env.int("MESH_EMBED_DEBOUNCE_SECONDS", default=10)
# Facet counts and the result count are exact while a search or list holds about this many
# products; beyond, PostgreSQL counts a hash-chosen sample of about this size and the page says
# "about N" (products.discovery.facets): the cost follows this number, not the matches.
MESH_EXACT_COUNTS = env.int("MESH_EXACT_COUNTS", default=1000)
# A search's facet counts read on a second connection while the page reads its results
# (meshportal.beside, PostgreSQL only): each web worker may hold two connections.
MESH_READS_BESIDE = env.bool("MESH_READS_BESIDE", default=True)

# Webhooks (docs/security.md "Webhooks"): https only unless MESH_WEBHOOK_ALLOW_HTTP (development);
# never to loopback, private, link-local, multicast, reserved or the portal's own service hosts,
# except the hosts, addresses or networks (CIDR) the platform team lists here.
MESH_WEBHOOK_ALLOW_HTTP = env.bool("MESH_WEBHOOK_ALLOW_HTTP", default=False)
MESH_WEBHOOK_ALLOWED_HOSTS = env.list("MESH_WEBHOOK_ALLOWED_HOSTS", default=[])

# Input limits (docs/security.md "Input limits"): the largest contract document (ODCS YAML or
# JSON) accepted by the API, the upload page and import_contract, checked before it is read.
# Usage (docs/usage.md): raw query events are kept this many days (daily totals stay), and one
# ingest request takes at most this many events.
MESH_USAGE_RAW_RETENTION_DAYS = env.int("MESH_USAGE_RAW_RETENTION_DAYS", default=30)
MESH_USAGE_MAX_BATCH_EVENTS = env.int("MESH_USAGE_MAX_BATCH_EVENTS", default=10_000)
# Portal analytics (docs/usage.md "Portal analytics"): product page views and search totals are
# kept this many days.
MESH_ANALYTICS_RETENTION_DAYS = env.int("MESH_ANALYTICS_RETENTION_DAYS", default=365)
MESH_CONTRACT_MAX_BYTES = env.int("MESH_CONTRACT_MAX_BYTES", default=512 * 1024)
