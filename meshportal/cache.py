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
