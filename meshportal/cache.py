"""A Redis cache that fails open: with Redis down, the portal runs uncached instead of failing.

Everything the portal keeps in its cache can be recomputed (the mesh map, the queue banner's
status, API throttle counters), so an unreachable Redis must never turn a request into a 500:
reads miss, writes are dropped, and one warning per call is logged. The broker outage itself is
handled by meshportal.queue, which stores the task for later.
"""

import functools
import logging

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def _fail_open(fallback):
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except UNREACHABLE as exc:
                log.warning(
                    "Cache unreachable, %s skipped: %s", method.__name__, type(exc).__name__
                )
                return fallback(*args, **kwargs) if callable(fallback) else fallback

        return wrapper

    return decorate


def _default(key, default=None):
    return default


def _not_counted(key, delta=1):
    # incr on a missing key raises ValueError in every Django backend; callers handle that.
    raise ValueError(f"Key {key!r} not found (cache unreachable).")


class FailOpenRedisCacheClient(RedisCacheClient):
    add = _fail_open(False)(RedisCacheClient.add)
    get = _fail_open(_default)(RedisCacheClient.get)
    set = _fail_open(None)(RedisCacheClient.set)
    touch = _fail_open(False)(RedisCacheClient.touch)
    delete = _fail_open(False)(RedisCacheClient.delete)
    get_many = _fail_open(lambda keys: {})(RedisCacheClient.get_many)
    has_key = _fail_open(False)(RedisCacheClient.has_key)
    incr = _fail_open(_not_counted)(RedisCacheClient.incr)
    set_many = _fail_open(None)(RedisCacheClient.set_many)
    delete_many = _fail_open(None)(RedisCacheClient.delete_many)
    clear = _fail_open(False)(RedisCacheClient.clear)


class FailOpenRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = FailOpenRedisCacheClient


# -- what every signed-in user sees alike ----------------------------------------------------------
#
# A few pages aggregate over every product that is not a draft (PUBLIC_PRODUCTS): the mesh map's
# counts and edges, the home page's tiles and lists. That part is the same for everyone, so it is
# computed once and kept in the shared cache (one key per database: several portals and the
# benchmark's meshes may share one Redis); each user's own drafts are added on top per request.
# A change that can alter it forgets the key once the change commits. Only a cache every process
# shares can be invalidated from the process that writes, so without Redis these stay uncached.

PUBLIC_SECONDS = 3600  # a safety net: the writes that change the data forget the keys
# Every public part, in one place so that any process can forget them all, whatever it imported.
MESH_MAP = "lineage:mesh-public"  # products per domain, edges between domains
HOME = "discovery:home-public"  # recently published, most trusted
DOMAIN_SHARES = "quality:domain-shares"  # per domain: checked products, failing ones
PUBLIC_KEYS = (MESH_MAP, HOME, DOMAIN_SHARES)


def shared() -> bool:
    from django.conf import settings

    return settings.CACHES["default"]["BACKEND"].endswith("RedisCache")


def public_key(name: str) -> str:
    from django.db import connection

    return f"{name}:{connection.settings_dict['NAME']}"


def public_get(name: str, compute, seconds: int = PUBLIC_SECONDS):
    """compute() once for everyone, cached under `name` until forgotten (see above)."""
    from django.core.cache import cache

    if not shared():
        return compute()
    try:
        hit = cache.get(public_key(name))
    except Exception:  # the cache fails open; any other problem must not fail the page
        log.warning("cache unavailable for %s", name, exc_info=True)
        return compute()
    if hit is not None:
        return hit
    value = compute()
    try:
        cache.set(public_key(name), value, seconds)
    except Exception:
        log.warning("could not cache %s", name, exc_info=True)
    return value


def forget_public(*names: str) -> None:
    """Forget the cached values (all of them by default) once the current transaction commits
    (a reader between the change and the commit would otherwise cache the old data again)."""
    from django.core.cache import cache
    from django.db import transaction

    if not shared():
        return
    names = names or PUBLIC_KEYS

    def forget():
        try:
            cache.delete_many([public_key(n) for n in names])
        except Exception:  # it expires anyway
            log.warning("could not forget %s", ", ".join(names), exc_info=True)

    transaction.on_commit(forget)
