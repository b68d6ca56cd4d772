"""`reverse()` remembered: a list page links every row's product, domain and tags, and Django's
reverse (resolver walk, script prefix, quoting) costs about 50 µs a call, a fifth of a row.

The answer depends only on the URLconf, the script prefix and the arguments, which are all in
the key; a changed URLconf (tests override ROOT_URLCONF) or prefix simply misses.
"""

from functools import lru_cache

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse


@lru_cache(maxsize=65_536)
def _reverse(urlconf: str, prefix: str, viewname: str, kwargs: tuple) -> str:
    return reverse(viewname, urlconf=urlconf, kwargs=dict(kwargs))


def cached_reverse(viewname: str, **kwargs) -> str:
    """`reverse(viewname, kwargs=kwargs)`, each distinct answer computed once per process."""
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    return _reverse(urlconf, get_script_prefix(), viewname, tuple(sorted(kwargs.items())))
