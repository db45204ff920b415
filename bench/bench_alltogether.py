"""Whole-program optimization pays? alltogether + allready against separate compilation.

For each example built by `make demo` (build/demo/*.allexe), four static musl binaries:
  zig cc -O2     the C sources compiled and linked natively (the baseline; stripped, as allready's)
  separate       allready of the allexe as it is (each module compiled on its own)
  merged O2/O3   alltogether -disable-opt | allopt -passes='default<On>,globaldce' | allready,
                 i.e. alltogether with that level as its whole-program pipeline
Times are of the static binaries themselves (no alley start-up), medians of alternating runs;
sizes are the binaries' bytes. Ratios are against zig cc -O2.

    .venv/bin/python bench/bench_alltogether.py [--runs N] [PROGRAM...]
"""

import argparse
import os
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "examples")]

from common import Command, measure, print_table  # noqa: E402
from demo import BUILD, PROGRAMS  # noqa: E402

from allvm.allexe import Allexe  # noqa: E402
from allvm.cache import Cache, static_binary_key  # noqa: E402
from allvm.link import WHOLE_PROGRAM_PIPELINE  # noqa: E402
from allvm.toolchain import MUSL_TARGET, zig_command, zig_env  # noqa: E402

BIN = os.path.dirname(sys.executable)
BASELINE = "zig cc -O2"


def run(cmd: list[str], **kwargs) -> None:
    """Print the command, run it, stop on failure."""
    print("$ " + shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kwargs)


def tool(name: str) -> str:
    return os.path.join(BIN, name)


def static_binary(allexe: str, cache_dir: str) -> str:
    """allready the allexe into `cache_dir`; the path of its static binary there."""
    run([tool("allready"), allexe], env={**os.environ, "ALLVM_CACHE_DIR": cache_dir})
    return static_binary_path(allexe, cache_dir)


def static_binary_path(allexe: str, cache_dir: str) -> str:
    """Where allready puts the allexe's static binary in `cache_dir`."""
    return Cache(cache_dir).static_binary_path(static_binary_key(Allexe.open(allexe)))


def merged(allexe: str, level: str, work: str) -> str:
    """The allexe alltogether'd with `default<level>,globaldce` as its pipeline."""
    out = os.path.join(work, f"{os.path.basename(allexe)}.{level}.allexe")
    linked = os.path.join(work, f"{os.path.basename(allexe)}.linked.allexe")
    run([tool("alltogether"), "-q", "-disable-opt", allexe, "-o", linked, "-f"])
    run([tool("allopt"), "-i", linked, "-o", out, "-f",
         f"-passes=default<{level}>,globaldce"])
    return out


def native(name: str, work: str) -> str:
    main_source, libs = PROGRAMS[name]
    sources = [os.path.join(ROOT, "examples", s) for s in (main_source, *libs)]
    out = os.path.join(work, f"{name}.native")
    run(zig_command("cc", "-target", MUSL_TARGET, "-O2", "-static", "-s", *sources, "-o", out),
        env=zig_env())
    return out


def workload(name: str, work: str) -> tuple[list[str], bytes | None]:
    """Arguments and stdin that keep each example busy for a fraction of a second."""
    text = os.path.join(work, "input.txt")
    if not os.path.exists(text):
        with open(text, "w") as f:
            for i in range(400_000):
                f.write(f"line {i} of the benchmark input, with some words\tand a tab\n")
    if name == "nbody":
        return ["2000000"], None
    if name == "stats":
        return [], "".join(f"{(i * 7919) % 100003 / 7.0}\n" for i in range(300_000)).encode()
    return [text], None


def bench(name: str, runs: int, work: str, cache_dir: str) -> list[tuple[str, int]]:
    allexe = os.path.join(BUILD, f"{name}.allexe")
    if not os.path.exists(allexe):
        sys.exit(f"bench_alltogether: {allexe} is missing: run `make demo` first")
    binaries = {
        BASELINE: native(name, work),
        "separate": static_binary(allexe, cache_dir),
        "merged O2": static_binary(merged(allexe, "O2", work), cache_dir),
        "merged O3": static_binary(merged(allexe, "O3", work), cache_dir),
    }
    args, stdin = workload(name, work)
    results = measure([Command(label, [path, *args], stdin=stdin)
                       for label, path in binaries.items()], runs=runs)
    print_table(f"{name}: run time", results, baseline=BASELINE)
    same = [label for label, path in binaries.items()
            if list(binaries.values()).count(path) > 1]
    if same:  # the spread between them is the machine's noise, not the optimizer's doing
        print(f"  ({' and '.join(same)} are the same binary: any difference is noise)")
    return [(label, os.path.getsize(path)) for label, path in binaries.items()]


def print_sizes(sizes: dict[str, list[tuple[str, int]]]) -> None:
    print("\n== static binary size (bytes; ratio to zig cc -O2)")
    labels = [label for label, _ in next(iter(sizes.values()))]
    print(f"  {'':8}" + "".join(f"{label:>20}" for label in labels))
    for name, row in sizes.items():
        base = dict(row)[BASELINE]
        print(f"  {name:8}" + "".join(f"{size:>11} ({size / base:4.2f}x)" for _, size in row))
    print("  (sizes of cache entries include allvm's 34-byte integrity trailer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("programs", nargs="*", default=list(PROGRAMS))
    args = parser.parse_args()
    print(f"alltogether's whole-program pipeline: {WHOLE_PROGRAM_PIPELINE}")
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="allvm-bench-") as work:
        cache_dir = os.path.join(work, "cache")
        for name in args.programs:
            sizes[name] = bench(name, args.runs, work, cache_dir)
    print_sizes(sizes)


if __name__ == "__main__":
    main()
