"""Figure 12: the platform's libc where programs meet it, against glibc on the same C.

The workloads (bench/libc/): `strings.c` calls one string function on short inputs (0–63
bytes, every length, shifting alignments); `malloc.c` replaces random live blocks (small:
8–256 bytes; medium: 1–64 KiB; threads: small in 2 threads). Each is built four ways:

- glibc: `zig cc -O2 -target x86_64-linux-gnu` (dynamic, the host's glibc), the baseline;
- platform, static path: allcc → wllvm-extract → allready (the static binary alley runs);
- platform IR: the same allexe through `alltogether -platform-ir` → allready (libc as IR);
- zig's libc: `zig cc -O2 -target x86_64-linux-musl -static`, what the platform linked before
  its own allocator and string functions (zig's allocator, its byte-at-a-time strings).

CPU time (user + system), medians of alternating runs. Goals against glibc: short-string
functions ≤ 1.2×, malloc/free of 1–64 KiB and small allocations ≤ 1.0×.

    .venv/bin/python bench/bench_libc.py [--quick]
"""

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from bench_alltogether import run, static_binary, tool  # noqa: E402
from common import Command, measure, print_table, ratio_record  # noqa: E402

from allvm.toolchain import GNU_TARGET, MUSL_TARGET, zig_command, zig_env  # noqa: E402

SOURCES = HERE / "libc"
WORK = HERE.parent / "build" / "bench" / "libc"
GLIBC, STATIC, IR, ZIG = ("glibc (zig cc -O2 gnu)", "platform, static path", "platform IR",
                          "zig's libc (before)")
STRING_FUNCTIONS = ("strlen", "strnlen", "memchr", "memrchr", "strchr", "strcmp", "memcmp",
                    "memset", "memcpy")
# (workload, program, argument, rounds in --quick mode, rounds otherwise, goal)
WORKLOADS = [(f, "strings", f, 300_000, 1_000_000, 1.2) for f in STRING_FUNCTIONS] + [
    ("malloc small", "malloc", "small", 3_000_000, 10_000_000, 1.0),
    ("malloc 1-64 KiB", "malloc", "medium", 150_000, 500_000, 1.0),
    ("malloc 2 threads", "malloc", "threads", 2_000_000, 5_000_000, 1.0)]


def builds(program: str, work: Path, cache: str) -> dict[str, str]:
    """{label: executable} of bench/libc/<program>.c built the four ways."""
    source = str(SOURCES / f"{program}.c")
    out = work / program
    zig = {GLIBC: ["-target", GNU_TARGET, "-lpthread"], ZIG: ["-target", MUSL_TARGET, "-static"]}
    binaries = {}
    for label, flags in zig.items():
        binaries[label] = f"{out}.{'glibc' if label == GLIBC else 'zig'}"
        run(zig_command("cc", "-O2", *flags, source, "-o", binaries[label]), env=zig_env())
    run([tool("allcc"), "-O2", source, "-o", f"{out}.allcc"])
    allexe, whole = f"{out}.allexe", f"{out}.platform-ir.allexe"
    run([tool("wllvm-extract"), f"{out}.allcc", "-o", allexe, "-f"])
    run([tool("alltogether"), "-platform-ir", "-q", allexe, "-o", whole, "-f"])
    binaries[STATIC] = static_binary(allexe, cache)
    binaries[IR] = static_binary(whole, cache)
    return binaries


def figure(s) -> list[dict]:
    """Every workload timed on the four builds (`s`: figures.Settings); records of each build
    against glibc."""
    WORK.mkdir(parents=True, exist_ok=True)
    binaries = {program: builds(program, WORK, str(WORK / "cache"))
                for program in ("strings", "malloc")}
    records = []
    for name, program, argument, quick_rounds, rounds, goal in WORKLOADS:
        args = [argument, str(quick_rounds if s.quick else rounds)]
        commands = [Command(label, [path, *args], cpu_time=True)
                    for label, path in binaries[program].items()]
        results = {r.command.label: r for r in measure(commands, runs=s.runs)}
        print_table(f"fig 12: {name} (CPU time)", list(results.values()), baseline=GLIBC)
        figure_name = f"12 {name}"
        records.append(ratio_record(figure_name, results[STATIC], results[GLIBC],
                                    goal=f"≤ {goal}×", goal_max=goal,
                                    note="CPU time (user + system)"))
        records += [ratio_record(figure_name, results[label], results[GLIBC])
                    for label in (IR, ZIG)]
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and runs")
    args = parser.parse_args()
    settings = SimpleNamespace(quick=args.quick, runs=3 if args.quick else 7)
    for record in figure(settings):
        print(f"{record['figure']}: {record['contender']} {record['ratio']:.2f}x "
              f"{record['baseline']} {record['goal']}")


if __name__ == "__main__":
    main()
