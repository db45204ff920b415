"""Figure 1: what a cache hit costs over exec'ing the cached static binary itself.

Three ways to start an allexe whose static binary is cached, each timed against running that
binary directly, in alternating rounds: `./prog.allexe` (its `#!` line names alley's native
launcher), a binfmt_misc start of the same allexe without its `#!` line (`allvm-binfmt`, under
names of the benchmark's own, removed afterwards), and `alley prog.allexe`. Programs: a
one-module hello, the corpus's largest allexe (sqlite3) and the coreutils mux (`true`).
The figure needs root (binfmt_misc) and the corpus's allexes (`make corpus`'s, or built by
allvm-debian with the corpus list where it has not).

Run alone: .venv/bin/python bench/bench_launch.py [--runs N]
"""

import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import bench_alley  # noqa: E402
import bench_allmux  # noqa: E402
from bench_alltogether import run, static_binary, tool  # noqa: E402
from common import Command, measure, median_difference, ms, print_table, ratio_record  # noqa: E402

from allvm import binfmt  # noqa: E402
from allvm.cache import RECORD_SETTLE_SECONDS  # noqa: E402
from allvm.launcher import BINFMT_NAME, launcher_path  # noqa: E402

WORK = HERE.parent / "build" / "bench" / "launch"
CACHE = WORK / "cache"
BINFMT_PREFIX = f"allvmbench{os.getpid()}"


def without_shebang(allexe: Path, out: Path) -> Path:
    """The allexe as the original toolchain wrote them: a zip alone (offsets from its start),
    executable, its static binary cached too."""
    with zipfile.ZipFile(allexe) as source, zipfile.ZipFile(out, "w") as bare:
        for info in source.infolist():
            bare.writestr(info, source.read(info), compress_type=info.compress_type)
    out.chmod(0o755)
    static_binary(str(out), str(CACHE))
    return out


def named(target: Path, directory: Path, name: str) -> str:
    """`directory/name` -> target: how a mux's program is chosen (argv[0])."""
    return bench_allmux.symlink(str(target), str(directory), name)


def programs(corpus_allexes) -> list[tuple[str, Path, str, list[str], str, float]]:
    """(label, allexe, program name for argv[0], arguments, goal text, goal in seconds);
    `corpus_allexes(package)` gives a corpus package's allexes by program name."""
    bench_alley.WORK.mkdir(parents=True, exist_ok=True)
    hello = bench_alley.build_hello("x86_64-linux-musl")
    sqlite = corpus_allexes("sqlite3")
    coreutils = corpus_allexes("coreutils")
    mux = WORK / "coreutils.allexe"
    run([tool("allmux"), *map(str, coreutils.values()), "-o", str(mux), "-f"])
    return [("hello (1 module)", hello, "hello", [], "≤ 0.5 ms", 0.0005),
            ("sqlite3", sqlite["sqlite3"], "sqlite3", ["-version"], "≤ 1 ms", 0.001),
            (f"coreutils mux ({len(coreutils)})", mux, "true", [], "≤ 1 ms", 0.001)]


def commands(label: str, allexe: Path, name: str, args: list[str]) -> list[Command]:
    """The cached binary itself, then the three starts through alley's launcher."""
    env = {**os.environ, "ALLVM_CACHE_DIR": str(CACHE)}
    binary = Path(static_binary(str(allexe), str(CACHE)))
    bare = without_shebang(allexe, WORK / f"{name}.bare")
    directory = WORK / name
    return [
        Command("static binary", [named(binary, directory / "binary", name), *args]),
        Command("./prog.allexe (#!)", [named(allexe, directory / "shebang", name), *args],
                env=env),
        Command("binfmt_misc", [named(bare, directory / "binfmt", name), *args], env=env),
        Command("alley prog.allexe", [tool("alley"), named(allexe, directory / "alley", name),
                                      *args], env=env),
    ]


def figure(s, corpus_allexes) -> list[dict]:
    """Cache-hit overhead of each start over the binary, per program (median of per-round
    differences), and the ratio."""
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    interpreter = os.path.join(os.path.dirname(launcher_path()), BINFMT_NAME)
    binfmt.register(interpreter, BINFMT_PREFIX)
    records = []
    try:
        chosen = [(p, commands(*p[:4])) for p in programs(corpus_allexes)]
        # so that the launcher remembers the files (launch records)
        time.sleep(RECORD_SETTLE_SECONDS + 0.1)
        for (label, _, _, _, goal, goal_s), cmds in chosen:
            results = measure(cmds, runs=s.runs * 30, warmup=2)
            print_table(f"fig 1: cache-hit start, {label}", results, baseline="static binary")
            base = results[0]
            for result in results[1:]:
                overhead = median_difference(result, base)
                record = ratio_record(f"1 launch {label}", result, base, goal=f"overhead {goal}",
                                      note=f"overhead {ms(overhead)} ms (median of per-round "
                                           "differences)")
                record["met"] = overhead <= goal_s
                record["overhead_ms"] = overhead * 1000
                records.append(record)
    finally:
        binfmt.unregister(BINFMT_PREFIX)
    return records


if __name__ == "__main__":
    import argparse

    from figures import Settings, corpus_allexes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="x30 alternating rounds")
    for r in figure(Settings(quick=False, runs=parser.parse_args().runs), corpus_allexes):
        print(f"{r['figure']}: {r['contender']} {r['overhead_ms']:.3f} ms, "
              f"{r['ratio']:.2f}x ({'met' if r['met'] else 'NOT met'}: {r['goal']})")
