"""Pure CPU work of a bulk job in spare processes: `with workers(): … ordered_map(fn, items)`.

A backup restore spends a quarter of its time parsing YAML and writing it again, work that needs
no database and leaves the machine's other cores idle. Inside `workers()` (opened by the bulk
job, never by a request), `ordered_map` hands that work to forked processes while this one goes
on with the database; outside it, or on one core, it is plain `map`. The results come back in
the order of `items`, so the caller's work, its errors and their order stay as they were.

`fn` must be a module-level function of picklable arguments that touches no database: the
children are forked copies of this process (the same settings and code) and never use the
connections they inherit."""

import contextlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextvars import ContextVar
from itertools import islice
from typing import Any

MAX_WORKERS = 4
CHUNK = 8  # items per task: a task's round trip costs about as much as parsing a small file
# Chunks queued per worker: enough for the workers to read a restore's next batch of files while
# this process writes the last one (250 products), few enough to keep the documents' memory small.
IN_FLIGHT = 32

_pool: ContextVar[tuple[Executor, int] | None] = ContextVar("parallel_pool", default=None)


def spare_cores() -> int:
    """Cores this process may use besides its own (0 on one core)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(0, min(cores - 1, MAX_WORKERS))


@contextlib.contextmanager
def workers(count: int | None = None) -> Iterator[int]:
    """Worker processes for `ordered_map` inside the block; yields how many (0: none, the work
    stays in this process). Nested blocks use the outermost one's."""
    active = _pool.get()
    if active is not None:
        yield active[1]
        return
    count = spare_cores() if count is None else count
    if count < 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield 0
        return
    pool = ProcessPoolExecutor(
        count, mp_context=multiprocessing.get_context("fork"), initializer=_without_database
    )
    token = _pool.set((pool, count))
    try:
        yield count
    finally:
        _pool.reset(token)
        pool.shutdown(wait=True, cancel_futures=True)


def _without_database() -> None:
    """In a worker: any use of a database connection raises. The connections it inherited are
    the parent's sockets, inside the parent's transaction; they are left as they are (closing
    one here would end the parent's session) and the worker leaves by os._exit."""
    from django.db import connections

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("meshportal.parallel: a worker process has no database connection")

    for conn in connections.all():
        conn.ensure_connection = refuse  # type: ignore[method-assign]  # every cursor asks it first


def _apply(fn: Callable, chunk: list) -> list[tuple[bool, Any]]:
    out = []
    for item in chunk:
        try:
            out.append((True, fn(item)))
        except Exception:  # noqa: BLE001 - raised again by the caller, in its own process
            out.append((False, None))
    return out


def ordered_map(fn: Callable[[Any], Any], items: Iterable, *, ahead: int = 0) -> Iterator:
    """`map(fn, items)`, in the workers of an open `workers()` block when there is one. The
    first items are read and handed to the workers at once (a few chunks per worker), the rest
    as results are taken, so this process can go on (prepare the next items, or other work)
    while the workers run `fn`. An item whose `fn` raised in a worker is run again here, so its
    exception (the same, as `fn` is pure) is raised in this process at that item's turn, after
    the results before it. `ahead`: hand out that many items at once instead (all of them, to
    have the workers read while this process does something else first)."""
    active = _pool.get()
    if active is None:
        return map(fn, items)
    pool, count = active
    source = iter(items)
    pending: deque[tuple[list, Future]] = deque()

    def submit() -> bool:
        chunk = list(islice(source, CHUNK))
        if chunk:
            pending.append((chunk, pool.submit(_apply, fn, chunk)))
        return bool(chunk)

    while len(pending) < max(count * IN_FLIGHT, -(-ahead // CHUNK)) and submit():
        pass

    def results() -> Iterator:
        try:
            while pending:
                chunk, future = pending.popleft()
                done = future.result()
                submit()
                for item, (ok, value) in zip(chunk, done, strict=True):
                    yield value if ok else fn(item)
        finally:
            for _, future in pending:  # the caller stopped early (an error): drop the rest
                future.cancel()

    return results()
