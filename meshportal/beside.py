"""Reads that run beside the request's own, on a second database connection: `beside(fn)`.

A search's facet pass (7-10 ms of the database's time at 10,000 products, the largest statement
of the page) needs nothing from the page's ids and rows, nor they from it: run one after the
other, the request waited for both. `beside(fn)` hands `fn` (a read: it must write nothing) to
this process's helper thread, which has its own connection, and returns at once a `Pending`
whose `result()` waits for it; meanwhile the request reads its page on its own connection.

`fn` runs here and now instead, the `Pending` already finished, wherever a second connection
could see other data than this one or is not worth it: inside a transaction (an atomic block's
uncommitted writes, a test's rolled-back data), off PostgreSQL, without persistent connections
(CONN_MAX_AGE 0: the helper would connect anew for each read), or with
settings.MESH_READS_BESIDE off. A failure of the helper's connection (the database restarted, a
connection dropped) is not the request's: `result()` runs `fn` again on the request's own.

Each web worker process then holds up to two connections (the helper's is kept as
CONN_MAX_AGE says, like the request's). `observe(wrapper)` lets a request see the helper's
statements it caused (the bench's Server-Timing counts them as its own).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from time import thread_time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections

_helper: ThreadPoolExecutor | None = None
SWITCH_INTERVAL = 0.0005  # seconds: sys.setswitchinterval once a process has a helper
_busy = 0  # reads handed to the helper and not yet done
_lock = threading.RLock()
# The request's observers: an execute wrapper for the helper's connection and a list that gets
# the helper's CPU seconds per job (BenchHeadersMiddleware).
_observers: contextvars.ContextVar[tuple[Callable, list[float]] | None] = contextvars.ContextVar(
    "beside_observers", default=None
)


_UNSET = object()


class Pending:
    """A read's answer, ready or on its way (`future`), or computed when first asked (neither a
    future nor a value): `result()` gives it, waiting if need be."""

    def __init__(
        self,
        fn: Callable[[], Any],
        future: Future | None = None,
        value: Any = _UNSET,
        beside: bool | None = None,
        using: str = "default",
    ):
        self._fn, self._future, self._value = fn, future, value
        # Whether it runs (or ran) on the helper's connection.
        self.beside = future is not None if beside is None else beside
        self._using = using

    def result(self) -> Any:
        if self._future is not None:
            try:
                self._value = self._future.result()
            except DatabaseError:  # the helper's connection, not the read: once more, here
                self._value = self._fn()
            self._future = None
        elif self._value is _UNSET:
            self._value = self._fn()
        return self._value

    @classmethod
    def ready(cls, value: Any) -> Pending:
        """An answer already there."""
        return cls(lambda: value, value=value)

    @classmethod
    def now(cls, fn: Callable[[], Any]) -> Pending:
        """`fn()`, run here and now: what beside() does where it does not apply."""
        return cls.ready(fn())

    def then(self, fn: Callable[[Any], Any]) -> Pending:
        """`fn` of this answer, computed here when first asked."""
        return Pending(lambda: fn(self.result()), beside=self.beside)

    def then_beside(self, fn: Callable[[Any], Any]) -> Pending:
        """`fn(this answer)`, a read too, on the helper's connection as soon as this answer is
        there, when this read runs there: the helper takes its reads in order, so the second
        follows the first without the caller waiting for either (a search's probe, then the
        facet pass sized by it). Else `fn` runs here when first asked, or not at all: a caller
        may find it has no use for it. A failure of the helper's connection is read again
        here, the first read too if need be."""
        global _busy
        here = Pending(lambda: fn(self.result()), beside=False)
        if self._future is None:
            if not self.beside:  # in turn: so is what follows
                return here
            value = self.result()  # ran beside and is back: the next read goes there alone
            return beside(lambda: fn(value), using=self._using)
        first = self._future
        with _lock:
            _busy += 1  # held from now: no other thread's read queues between the two
        context = contextvars.copy_context()
        try:
            future = _executor().submit(context.run, _run, lambda: fn(first.result()), self._using)
        except BaseException:
            _done()
            raise
        return Pending(here._fn, future=future, using=self._using)


def enabled(using: str = "default") -> bool:
    """Whether a read handed to beside() now would run on the helper's connection."""
    connection = connections[using]
    return (
        getattr(settings, "MESH_READS_BESIDE", False)
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        # persistent connections only: else the helper would connect anew for every read
        and connection.settings_dict.get("CONN_MAX_AGE", 0) != 0
    )


def beside(fn: Callable[[], Any], *, using: str = "default") -> Pending:
    """`fn()` on the helper's connection while the caller goes on, where that is safe (see the
    module's docstring) and the helper is free; else `fn()` now. A busy helper (another request
    thread's read: gunicorn threads, the MCP server's tool calls) would make this read wait in
    its queue, where on the request's own connection it runs at once."""
    global _busy
    if not enabled(using):
        return Pending.ready(fn())
    with _lock:
        free = _busy == 0
        if free:
            _busy += 1
    if not free:
        return Pending.ready(fn())
    context = contextvars.copy_context()
    try:
        future = _executor().submit(context.run, _run, fn, using)
    except BaseException:
        _done()
        raise
    return Pending(fn, future=future, using=using)


def _done() -> None:
    global _busy
    with _lock:
        _busy -= 1


@contextlib.contextmanager
def observe(wrapper: Callable, cpu: list[float]) -> Iterator[None]:
    """Inside the block, the helper's statements for this request pass through `wrapper` (an
    execute wrapper, as `connection.execute_wrapper` takes) and its CPU seconds are appended
    to `cpu`."""
    token = _observers.set((wrapper, cpu))
    try:
        yield
    finally:
        _observers.reset(token)


def close() -> None:
    """Close the helper's connections (a test run, before its database is dropped)."""
    if _helper is not None:
        _helper.submit(connections.close_all).result()


def _forget_in_child() -> None:
    """A forked child has no helper thread (only its parent's): it makes its own if need be."""
    global _helper, _busy, _lock
    _helper, _busy, _lock = None, 0, threading.RLock()


os.register_at_fork(after_in_child=_forget_in_child)


def _executor() -> ThreadPoolExecutor:
    global _helper
    with _lock:  # made on first use: in each forked web worker, after the fork
        if _helper is None:
            _helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mesh-beside")
            # The helper runs little Python between waits on its database; with the default
            # 5 ms switch interval, it waited that long for the interpreter whenever the
            # request's thread was busy building the page, so a read handed over before that
            # work began only started after it.
            sys.setswitchinterval(SWITCH_INTERVAL)
        return _helper


def _run(fn: Callable[[], Any], using: str) -> Any:
    connection = connections[using]
    observers = _observers.get()
    cpu_start = thread_time()
    try:
        # No request starts or ends in this thread to close an old or broken connection: here.
        # Without its health check (a round trip before every read): a broken connection fails
        # the read, which is closed below and read again on the request's connection.
        connection.close_if_unusable_or_obsolete()
        connection.health_check_done = True  # type: ignore[attr-defined]
        if observers is None:
            return fn()
        with connection.execute_wrapper(observers[0]):
            return fn()
    except DatabaseError:
        connection.close()  # opened afresh for the next read
        raise
    finally:
        if observers is not None:
            observers[1].append(thread_time() - cpu_start)
        _done()  # before the answer is handed back: free for the caller's next read
