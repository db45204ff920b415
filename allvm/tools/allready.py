"""allready: ahead-of-time compile allexes to static binaries in the cache."""

import os
import sys
from collections.abc import Iterable

from allvm.cli import Tool
from allvm.errors import AllvmError

tool = Tool(
    "allready",
    "Compile each ALLEXE to a static binary in the cache (static_binaries/), so alley runs\n"
    "it directly. Several allexes are built in parallel; one failure does not stop the rest.",
    "examples:\n  allready wc.allexe cksum.allexe -j 2\n"
    "  allready -system /usr/local/bin/*.allexe   # as root: native starts for every user\n"
    "  allready -mcpu=native lua.allexe && ALLVM_CPU=native alley lua.allexe script.lua\n"
    "  allready -profile-run 'lua bench.lua' lua.allexe   # optimized with a profile of a run\n\n"
    "Each binary carries its allexe (.allvm.allexe section: all-info BINARY lists it,\n"
    "bc2allvm -from-binary recovers it); ALLVM_CARRY_IR=0 leaves it out.",
)
tool.positional("allexes", metavar="ALLEXE", nargs="+")
tool.option("j", dest="jobs", type=int, default=os.cpu_count() or 1, metavar="N",
            help="build N allexes at once (default: the number of cores)")
tool.option("scheduler", metavar="ADDRESS",
            help="compile on the Dask cluster of this scheduler (tcp://host:8786) instead of "
                 "here (default: $ALLVM_SCHEDULER, if set)")
tool.option("mcpu", dest="cpu", metavar="CPU",
            help="the CPU the binaries are built for: x86-64 (the default: any x86-64) or native "
                 "(this machine's CPU, keyed by its name and features; for binaries that stay "
                 "here). Sets $ALLVM_CPU for the build; alley runs them when $ALLVM_CPU=native "
                 "is set for it too")
tool.option("system", action="store_true",
            help="into the system cache ($ALLVM_SYSTEM_CACHE, else /var/cache/allvm; root "
                 "only): at install time, so that every user's start is a cache hit")
tool.option("profile-run", dest="profile_runs", action="append", metavar="CMD",
            help="optimize with a profile of real runs (one ALLEXE; repeatable): CMD is a shell "
                 "command whose first word is the program's name, e.g. -profile-run 'lua "
                 "bench.lua'. An instrumented build of ALLEXE is first on PATH under that name; "
                 "the counts of every process CMD runs (its output discarded; it must exit 0) "
                 "optimize the static binary (branch weights, entry counts, hot and cold code), "
                 "which alley then runs")


class Progress:
    """`[done/total] name` on one refreshed terminal line; silent when stderr is not a tty."""

    def __init__(self, total: int):
        self.total, self.done = total, 0
        self.live = sys.stderr.isatty()

    def step(self, path: str) -> None:
        self.done += 1
        if self.live:
            sys.stderr.write(f"\r\033[K[{self.done}/{self.total}] {path}")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.live:
            sys.stderr.write("\r\033[K")


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # reported by its build


def run(args) -> int:
    if args.jobs < 1:
        raise AllvmError("-j must be at least 1")
    # Largest first: one big program started last would finish alone, long after the rest.
    paths = sorted(args.allexes, key=_size, reverse=True)
    if args.system and os.geteuid() != 0:
        raise AllvmError("-system: only root fills the system cache (every user runs from it)")
    from allvm.cache import Cache

    if args.profile_runs:
        return profile(args, Cache(system=args.system))
    scheduler = args.scheduler or os.environ.get("ALLVM_SCHEDULER")
    choose_static_settings(args.cpu, scheduler)
    if scheduler:
        from allvm.cluster import Cluster

        executor = Cluster(scheduler, warn=tool.warning)
    else:
        from allvm.native.executors import LocalPool

        executor = LocalPool(args.jobs)
    with executor:
        return report(executor.build(paths, Cache(system=args.system)), len(paths))


def choose_static_settings(cpu: str | None, scheduler: str | None) -> None:
    """Check the static settings once, before any build (one error, not one per allexe); the
    build's workers, forked from here, read the CPU chosen from the environment."""
    from allvm.native.settings import BASELINE_CPU, CPU_VARIABLE, static_settings

    if cpu:
        os.environ[CPU_VARIABLE] = cpu
    settings = static_settings()
    if scheduler and settings.cpu != BASELINE_CPU:  # "native" would be each worker's CPU
        raise AllvmError(f"{CPU_VARIABLE}={os.environ[CPU_VARIABLE]}: built here only, not on "
                         "a cluster (its workers' CPUs are not this machine's)")


def profile(args, cache) -> int:
    """-profile-run: one allexe, built here (its profile runs run here)."""
    from allvm.allexe import Allexe
    from allvm.native.profile import build_profiled

    if len(args.allexes) != 1:
        raise AllvmError("-profile-run: one ALLEXE at a time (the runs profile one program)")
    if args.scheduler:
        raise AllvmError("-profile-run: built here, not on a cluster (the runs happen here)")
    path = args.allexes[0]
    build_profiled(Allexe.open(path), args.profile_runs, cache)
    print(f"Successfully cached profiled static binary for '{path}'.", flush=True)
    return 0


def report(results: Iterable[tuple[str, BaseException | None]], total: int) -> int:
    """Say how each allexe went, as it finishes; 1 if any failed."""
    progress = Progress(total)
    failures = 0
    for path, error in results:
        progress.step(path)
        progress.clear()
        if error is None:
            print(f"Successfully cached static binary for '{path}'.", flush=True)
            continue
        failures += 1  # one allexe's failure (even a crashed worker) is its own
        tool.error(str(error) if isinstance(error, AllvmError)
                   else f"{path}: internal error: {type(error).__name__}: {error}")
    return 1 if failures else 0


def main() -> int:
    return tool.run(run)
