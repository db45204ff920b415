"""Running jobs in parallel: forked worker processes, one per core at most.

Not threads: llvmlite serializes every call into LLVM with one global lock.
"""

import os
from collections.abc import Callable


def in_parallel(function: Callable, jobs: list[tuple]) -> list:
    """`function(*job)` for every job, in worker processes when there are several.

    Not threads: llvmlite serializes every call into LLVM with one global lock. The workers
    are forked, so they start at once with allvm imported (no second import of llvmlite).
    """
    if len(jobs) == 1:
        return [function(*jobs[0])]
    with process_pool(len(jobs)) as pool:
        return list(pool.map(function, *zip(*jobs, strict=True)))


def process_pool(jobs: int, workers: int | None = None):
    """A ProcessPoolExecutor of forked workers, at most one per core (or `workers`) and one per
    job. (Imported here: multiprocessing costs alley's warm JIT path several ms to import.)"""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    limit = workers or os.cpu_count() or 1
    return ProcessPoolExecutor(max_workers=min(jobs, limit),
                               mp_context=multiprocessing.get_context("fork"))
