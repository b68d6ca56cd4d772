"""meshportal.parallel: a bulk job's pure work in forked processes, its results in order."""

import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from meshportal import parallel


def _pid_and_square(n: int) -> tuple[int, int]:
    return os.getpid(), n * n


def _refuse_seven(n: int) -> int:
    if n == 7:
        raise ValueError(f"{n} is refused")
    return n


def test_outside_a_workers_block_the_work_stays_in_this_process():
    assert list(parallel.ordered_map(_pid_and_square, range(5))) == [
        (os.getpid(), n * n) for n in range(5)
    ]


def test_inside_it_other_processes_do_the_work_and_the_results_keep_their_order():
    with parallel.workers(2) as count:
        assert count == 2
        results = list(parallel.ordered_map(_pid_and_square, range(200)))
    assert [square for _, square in results] == [n * n for n in range(200)]
    assert os.getpid() not in {pid for pid, _ in results}


def _recorded(count: int, read: list):
    """0 … count-1, each noted in `read` as it is taken."""
    for n in range(count):
        read.append(n)
        yield n


def test_items_are_read_lazily_a_few_chunks_ahead():
    read: list = []
    with parallel.workers(1):
        first = next(parallel.ordered_map(_refuse_seven, _recorded(1000, read)))
        assert first == 0
        # one worker, IN_FLIGHT chunks queued and one more after the first result
        assert len(read) <= (parallel.IN_FLIGHT + 1) * parallel.CHUNK


def test_an_item_that_fails_raises_here_at_its_turn_after_the_results_before_it():
    got = []
    with parallel.workers(1), pytest.raises(ValueError, match="7 is refused"):
        for n in parallel.ordered_map(_refuse_seven, range(20)):
            got.append(n)
    assert got == list(range(7))


def test_a_nested_block_uses_the_outer_one_and_no_workers_means_this_process():
    with parallel.workers(1) as outer, parallel.workers(3) as inner:
        assert outer == inner == 1
    with parallel.workers(0) as none:
        assert none == 0
        assert {pid for pid, _ in parallel.ordered_map(_pid_and_square, range(40))} == {os.getpid()}


def _count_products(_) -> int:
    from products.models import DataProduct

    return DataProduct.objects.count()


@pytest.mark.django_db
def test_a_worker_cannot_use_the_database_it_inherited(django_user_model):
    """The worker's connections are this process's sockets: a query there would interleave with
    this process's session. It raises (here, where the item runs again, it succeeds)."""
    from django.db import connection

    connection.ensure_connection()
    with parallel.workers(1):
        pool, _ = parallel._pool.get()
        assert isinstance(pool, ProcessPoolExecutor)
        with pytest.raises(RuntimeError, match="no database connection"):
            pool.submit(_count_products, None).result()
        assert list(parallel.ordered_map(_count_products, [None])) == [0]
    assert django_user_model.objects.count() == 0  # this process's session still answers


def test_ahead_hands_out_that_many_items_before_any_result_is_taken():
    read: list = []
    with parallel.workers(1):
        results = parallel.ordered_map(_pid_and_square, _recorded(500, read), ahead=300)
        assert len(read) >= 300  # handed out at the call, before the first result is asked for
        assert [square for _, square in results] == [n * n for n in range(500)]
