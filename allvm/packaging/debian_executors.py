"""Where `allvm-debian build` builds its packages. Every executor is a context manager whose
`build(names, out_root, test=, keep=)` yields each package's report once its results are in
OUT/PKG, in the order they finish; a package's failure is its report's `error`, never the
others'. Both run the one per-package function, allvm.packaging.debian_package.build_package.

- `LocalBuilds`: on this machine (`-j N`): N packages at once, each with its share of the
  cores for make.
- `allvm.packaging.debian_cluster.PackageCluster`: on a Dask cluster (`-scheduler ADDRESS`),
  one task per package; it imports `distributed`, so it lives in its own module.
"""

import os
from collections.abc import Iterator
from pathlib import Path

from allvm.packaging.debian_list import Entry
from allvm.packaging.debian_package import build_package


class LocalBuilds:
    """`jobs` packages at once, in forked processes when more than one, each with what the
    package list knows of it (`entries`, allvm.packaging.debian_list)."""

    def __init__(self, jobs: int, entries: dict[str, Entry]):
        self.jobs, self.entries = jobs, entries

    def __enter__(self) -> "LocalBuilds":
        return self

    def __exit__(self, *exc) -> None:
        pass  # each build() call's pool is shut down when the call ends

    def build(self, names: list[str], out_root: Path, *, test: bool,
              keep: bool) -> Iterator[dict]:
        at_once = min(self.jobs, len(names))
        options = {"jobs": max(1, (os.cpu_count() or 1) // at_once), "test": test, "keep": keep}
        if at_once == 1:
            for name in names:
                yield build_package(name, out_root, entry=self.entries.get(name), **options)
            return
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(at_once) as pool:
            futures = [pool.submit(build_package, name, out_root, entry=self.entries.get(name),
                                   **options) for name in names]
            try:
                for future in as_completed(futures):
                    yield future.result()
            except KeyboardInterrupt:  # the builds have the signal too: let them stop
                pool.shutdown(wait=True, cancel_futures=True)
                raise
