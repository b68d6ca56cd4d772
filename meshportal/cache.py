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
POPULAR = "discovery:popular-public"  # published products with the most approved consumers
LIST_FACETS = "discovery:list-facets"  # the unfiltered product list's facet counts and total
PUBLIC_KEYS = (MESH_MAP, HOME, DOMAIN_SHARES, POPULAR, LIST_FACETS)
# Parts cached per user (user_get), each under a generation that forget_users() replaces.
NAV_COUNTS = "nav:counts"  # the navigation bar's badges: pending requests, unread notifications
USER_KEYS = (NAV_COUNTS,)


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
    """Forget the cached values once the current transaction commits (a reader between the
    change and the commit would otherwise cache the old data again). Without names: every
    public part and every per-user part (bulk writes: a restore, seeding)."""
    from django.core.cache import cache
    from django.db import transaction

    if not shared():
        return
    names = names or (*PUBLIC_KEYS, *(_generation(n) for n in USER_KEYS))

    def forget():
        try:
            cache.delete_many([public_key(n) for n in names])
        except Exception:  # it expires anyway
            log.warning("could not forget %s", ", ".join(names), exc_info=True)

    transaction.on_commit(forget)


# -- what one user sees, until anything it depends on changes ---------------------------------
#
# A per-user value is stored with the generation of its name current when it was computed; any
# change that may alter it for anyone forgets the generation (forget_users, after the commit),
# so every user's value is recomputed on their next read. The changes are few next to the reads
# (a badge is read on every page).


def _generation(name: str) -> str:
    return f"{name}:generation"


def user_get(name: str, user_id: int, compute, seconds: int = PUBLIC_SECONDS):
    """compute() for one user, cached until forget_users(name) (one Redis round trip a hit)."""
    from uuid import uuid4

    from django.core.cache import cache

    if not shared():
        return compute()
    gen_key, key = public_key(_generation(name)), public_key(f"{name}:{user_id}")
    try:
        got = cache.get_many([gen_key, key])
        generation = got.get(gen_key)
        if generation is None:  # forgotten: start a new one (the first of concurrent readers wins)
            cache.add(gen_key, uuid4().hex, seconds)
            generation = cache.get(gen_key)
    except Exception:  # the cache fails open; any other problem must not fail the page
        log.warning("cache unavailable for %s", name, exc_info=True)
        return compute()
    hit = got.get(key)
    if hit is not None and generation is not None and hit[0] == generation:
        return hit[1]
    value = compute()
    if generation is not None:
        try:
            cache.set(key, (generation, value), seconds)
        except Exception:
            log.warning("could not cache %s", name, exc_info=True)
    return value


def forget_users(name: str, **signal_kwargs) -> None:
    """Every user's cached `name` is stale once the current transaction commits. Also a signal
    receiver (functools.partial(forget_users, NAV_COUNTS))."""
    forget_public(_generation(name))


def forget_users_on(name: str, *models) -> None:
    """Forget every user's `name` after any save or delete of these models (an m2m table's
    changes: m2m_changed). Each app names its own models in its ready(); bulk writes, which
    send no signals, call forget_users themselves."""
    import functools

    from django.db.models.signals import m2m_changed, post_delete, post_save

    forget = functools.partial(forget_users, name)
    for model in models:
        signals = (m2m_changed,) if model._meta.auto_created else (post_save, post_delete)
        for signal in signals:
            signal.connect(
                forget, sender=model, weak=False, dispatch_uid=f"{name}-{model._meta.label}"
            )
