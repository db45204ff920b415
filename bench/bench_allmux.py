"""Software multiplexing pays? The examples muxed into one static binary, against the same
programs as individual static binaries and as dynamically linked ones.

For the examples built by `make demo` (build/demo/*.allexe):
  dynamic     zig cc -target x86_64-linux-gnu -O2 -s, linked against the host glibc (baseline)
  static      allready of each allexe: one static musl binary per program
  mux static  allready of `allmux` of all of them: one static binary, run through a symlink
              named after the program (argv[0] picks it)
  alley mux   the same through alley: a symlink to the muxed allexe (cached static binary)
Sizes: the muxed binary, the sum of the static binaries, and the sum of the dynamic binaries
plus every shared library they load, each counted once. Start-up: each program doing almost
nothing (empty input), medians of alternating runs, ratios against dynamic.
The paper's anchors: the mux is smaller than static in total and starts faster than dynamic.

    .venv/bin/python bench/bench_allmux.py [--runs N]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "examples")]

from bench_alltogether import run, static_binary, tool  # noqa: E402
from common import Command, measure, print_table  # noqa: E402
from demo import BUILD, PROGRAMS  # noqa: E402

from allvm.toolchain import GNU_TARGET, zig_command, zig_env  # noqa: E402

BASELINE = "dynamic"
# Arguments that make each example start, do next to nothing, and exit 0 (stdin is empty).
STARTUP_ARGS = {"wc": [], "cksum": [], "nbody": ["1"], "stats": ["--version"]}
_LDD_PATH = re.compile(r"(/\S+) \(0x")


def allexes() -> dict[str, str]:
    paths = {name: os.path.join(BUILD, f"{name}.allexe") for name in PROGRAMS}
    missing = [p for p in paths.values() if not os.path.exists(p)]
    if missing:
        sys.exit(f"bench_allmux: {missing[0]} is missing: run `make demo` first")
    return paths


def dynamic(name: str, work: str) -> str:
    """The program compiled and linked natively against glibc, dynamically."""
    main_source, libs = PROGRAMS[name]
    sources = [os.path.join(ROOT, "examples", s) for s in (main_source, *libs)]
    out = os.path.join(work, f"{name}.dynamic")
    run(zig_command("cc", "-target", GNU_TARGET, "-O2", "-s", *sources, "-lm", "-o", out),
        env=zig_env())
    return out


def shared_libraries(binaries: list[str]) -> set[str]:
    """Every shared library (and the dynamic loader) the binaries load, by real path."""
    found = set()
    for binary in binaries:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
        found |= {os.path.realpath(path) for path in _LDD_PATH.findall(out)}
    return found


def symlink(target: str, directory: str, name: str) -> str:
    os.makedirs(directory, exist_ok=True)
    link = os.path.join(directory, name)
    if not os.path.lexists(link):
        os.symlink(target, link)
    return link


def print_sizes(mux: str, statics: list[str], dynamics: list[str]) -> None:
    libraries = shared_libraries(dynamics)
    rows = [
        ("mux static (one binary)", os.path.getsize(mux)),
        (f"static ({len(statics)} binaries)", sum(map(os.path.getsize, statics))),
        (f"dynamic ({len(dynamics)} binaries)", sum(map(os.path.getsize, dynamics))),
        (f"dynamic + {len(libraries)} shared libraries once",
         sum(map(os.path.getsize, dynamics)) + sum(map(os.path.getsize, libraries))),
    ]
    static_total = rows[1][1]
    print(f"\n== size of {', '.join(PROGRAMS)} (bytes; ratio to the static binaries' sum)")
    for label, size in rows:
        print(f"  {label:40} {size:>10}  {size / static_total:6.2f}x")
    print(f"  (shared libraries: {', '.join(sorted(os.path.basename(p) for p in libraries))};"
          " cache entries include allvm's 34-byte integrity trailer)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    inputs = allexes()
    with tempfile.TemporaryDirectory(prefix="allvm-bench-") as work:
        cache_dir = os.path.join(work, "cache")
        muxed = os.path.join(work, "examples.allexe")
        run([tool("allmux"), *inputs.values(), "-o", muxed])
        mux_binary = static_binary(muxed, cache_dir)
        statics = {name: static_binary(path, cache_dir) for name, path in inputs.items()}
        dynamics = {name: dynamic(name, work) for name in inputs}
        print_sizes(mux_binary, list(statics.values()), list(dynamics.values()))
        env = {**os.environ, "ALLVM_CACHE_DIR": cache_dir}
        for name, startup_args in STARTUP_ARGS.items():
            commands = [
                Command(BASELINE, [dynamics[name], *startup_args], stdin=b""),
                Command("static", [statics[name], *startup_args], stdin=b""),
                Command("mux static",
                        [symlink(mux_binary, os.path.join(work, "mux-bin"), name),
                         *startup_args], stdin=b""),
                Command("alley mux", [symlink(muxed, os.path.join(work, "mux-allexe"), name),
                                      *startup_args], env=env, stdin=b""),
            ]
            print_table(f"{name}: start-up", measure(commands, runs=args.runs),
                        baseline=BASELINE)


if __name__ == "__main__":
    main()
