"""Where static binaries are built. Every executor is a context manager whose
`build(paths, cache)` yields `(path, None)` once that allexe's static binary is in `cache`, or
`(path, the error)`, in the order they finish; one allexe's failure is its own.

- `LocalPool`: forked processes on this machine (`allready -j N`). Each builds whole allexes
  with allvm.native.build; a worker's own module compiles keep to its share of the pool
  (allvm.parallel), so N workers never run more than N compiling processes.
- `allvm.cluster.Cluster`: a Dask cluster (`allready -scheduler ADDRESS`), one task per module's
  code generation and per link; it imports `distributed`, so it lives in its own module.
"""

from collections.abc import Iterable, Iterator

from allvm.cache import Cache


class LocalPool:
    """`jobs` forked worker processes, each building one allexe at a time."""

    def __init__(self, jobs: int):
        self.jobs = jobs

    def __enter__(self) -> "LocalPool":
        return self

    def __exit__(self, *exc) -> None:
        pass  # each build() call's pool is shut down when the call ends

    def build(self, paths: Iterable[str], cache: Cache) -> Iterator[tuple[str, Exception | None]]:
        from concurrent.futures import as_completed

        from allvm.parallel import process_pool

        paths = list(paths)
        with process_pool(len(paths), self.jobs) as pool:
            futures = {pool.submit(_build_one, path, cache.root, cache.system): path
                       for path in paths}
            for future in as_completed(futures):
                yield futures[future], future.exception()


def _build_one(path: str, root: str, system: bool) -> None:
    """In a worker: the allexe's static binary into the cache at `root`."""
    from allvm.allexe import Allexe
    from allvm.native.build import build_static_binary

    build_static_binary(Allexe.open(path), Cache(root, system=system))
