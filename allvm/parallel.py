"""Running jobs in parallel: forked worker processes, one per core at most (or as many as asked).

Not threads: llvmlite serializes every call into LLVM with one global lock.

Pools nest without oversubscribing the cores: a pool's workers split its limit among them, and
a worker's own `in_parallel`/`process_pool` keeps to its share (`_share`). `allready -j N` runs
N workers, each building an allexe whose modules `Build._compile` compiles `in_parallel`: with
as many allexes as N, each worker compiles its modules one at a time, so N processes compile in
all, not N × cores; one allexe alone gets all N.

Workers die with their parent (`_die_with`): a SIGKILLed allready leaves none running on, their
work thrown away.
"""

import os
from collections.abc import Callable
from concurrent.futures import Executor, Future

# How many processes this process may keep compiling at once: None outside any pool (then the
# cores, or what the caller asks); in a pool's worker, its share of the pool's limit, set as the
# worker starts (`_start_worker`) and inherited by the pools it makes.
_share: int | None = None

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def in_parallel(function: Callable, jobs: list[tuple]) -> list:
    """`function(*job)` for every job, in worker processes when there are several and this
    process may use several (not in a worker whose share is one process: then one by one, here).

    The workers are forked, so they start at once with allvm imported (no second import of
    llvmlite).
    """
    if min(len(jobs), _limit(None)) <= 1:
        return [function(*job) for job in jobs]
    with process_pool(len(jobs)) as pool:
        return list(pool.map(function, *zip(*jobs, strict=True)))


def process_pool(jobs: int, workers: int | None = None) -> Executor:
    """A ProcessPoolExecutor of forked workers, at most one per core (or `workers`) and one per
    job; in a pool's worker, at most its share of that pool, and when the share is one process,
    an executor that runs each job at once in this process. (Imported here: multiprocessing costs
    alley's warm JIT path several ms to import.)"""
    limit = _limit(workers)
    if _share is not None and limit <= 1:
        return SerialExecutor()
    return _forked_pool(max(1, min(jobs, limit)), limit)


def _limit(workers: int | None) -> int:
    """How many processes a pool made here may have: `workers`, else the cores; within a worker's
    share."""
    limit = workers or os.cpu_count() or 1
    return limit if _share is None else min(limit, _share)


def _forked_pool(size: int, limit: int) -> Executor:
    """`size` workers forked now, from this thread, each given `limit // size` as its share."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=size, mp_context=multiprocessing.get_context("fork"),
                               initializer=_start_worker, initargs=(os.getpid(), limit // size))
    # A worker's PDEATHSIG fires when the *thread* that forked it exits, so fork them all from
    # this one, which the caller uses the pool from, rather than whichever thread submits first.
    # With fork, CPython forks every worker in the first submit (gh-90622: never later, from its
    # manager thread), so submitting a no-op forks them all here and now.
    try:
        pool.submit(int)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return pool


def _start_worker(parent: int, share: int) -> None:
    """A pool worker's initializer: keep to `share` processes, and die with `parent`."""
    global _share
    _share = share
    _die_with(parent)


def _die_with(parent: int) -> None:
    """Be SIGKILLed when the parent (its forking thread) exits; exit now if it already has, before
    prctl could arm that (then this process has been reparented)."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


class SerialExecutor(Executor):
    """A pool of no workers: each job runs as it is submitted, in this process."""

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as e:  # as a worker's would, it is the future's
            future.set_exception(e)
        return future
