"""`reverse()` remembered: a list page links every row's product, domain and tags, and Django's
reverse (resolver walk, script prefix, quoting) costs about 50 µs a call, a fifth of a row.

The answer depends only on the URLconf, the script prefix and the arguments, which are all in
the key; a changed URLconf (tests override ROOT_URLCONF) or prefix simply misses.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse


@lru_cache(maxsize=65_536)
def _reverse(
    urlconf: str,
    prefix: str,
    viewname: str,
    kwargs: tuple,
    args: tuple = (),
    current_app: str | None = None,
) -> str:
    return reverse(
        viewname, urlconf=urlconf, args=args, kwargs=dict(kwargs), current_app=current_app
    )


class _Bound(threading.local):
    key: tuple[str, str] | None = None


_bound = _Bound()


@contextmanager
def reversing() -> Iterator[None]:
    """Within it, `cached_reverse` reads the URLconf and the script prefix once, not per call:
    those two context-local reads were most of a call's ~2 µs, and a list of 50 product rows
    reverses ~300 links. For code that does not return to the event loop meanwhile (a tag
    rendering its rows), which is all that could change them."""
    outer = _bound.key
    _bound.key = (get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    try:
        yield
    finally:
        _bound.key = outer


def cached_reverse(viewname: str, **kwargs) -> str:
    """`reverse(viewname, kwargs=kwargs)`, each distinct answer computed once per process."""
    urlconf, prefix = _bound.key or (get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    return _reverse(urlconf, prefix, viewname, tuple(sorted(kwargs.items())))


def reverse_once(
    viewname: str, args: tuple = (), kwargs: dict | None = None, current_app: str | None = None
) -> str:
    """`reverse()` with `args` too (strings and numbers), each distinct answer computed once per
    process: the `{% url %}` of every template (meshportal.templatetags.links)."""
    urlconf, prefix = _bound.key or (get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    return _reverse(
        urlconf, prefix, viewname, tuple(sorted((kwargs or {}).items())), args, current_app
    )
