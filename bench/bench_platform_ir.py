"""Figure 9: the platform in IR. `alltogether -platform-ir` + allready (the program and the libc
it uses optimized as one) against `zig cc -O2 -static` and `zig cc -O2 -flto -static` (libc
native, where whole-program optimization stops).

Programs: a qsort with its comparator in another file, a getc/putc filter (bench/platform_ir/),
and figure 3's bzip2, Lua and sqlite3 from Debian source (passed in by figures.py). Goals:
≤ 0.70× zig cc -flto on the qsort program, ≤ 0.95× median over the five, none
slower than 1.02×. Also reported: static binary sizes, the time alltogether -platform-ir takes,
and the time the platform IR took to build (zig's musl as bitcode, once per zig).
"""

import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from bench_alltogether import run, static_binary, tool  # noqa: E402
from common import Command, measure, print_table, ratio_record  # noqa: E402

from allvm.toolchain import MUSL_TARGET, zig_command, zig_env  # noqa: E402

SOURCES = HERE / "platform_ir"
BASELINE, LTO, CONTENDER = "zig cc -O2 static", "zig cc -O2 -flto static", "-platform-ir+allready"
# name: (C files, main first)
SMALL = {"qsort": ["sort_main.c", "sort_compare.c"], "getc/putc": ["getc_loop.c"]}


def lto_command(argv: list[str]) -> list[str]:
    """A `zig cc -O2 ... -o X` command as its -flto variant, writing X.lto."""
    out = argv.index("-o") + 1
    lto = [*argv[:out], argv[out] + ".lto", *argv[out + 1:]]
    return [*lto[:lto.index("-O2") + 1], "-flto", *lto[lto.index("-O2") + 1:]]


def small_program(name: str, work: Path) -> tuple[str, list[str]]:
    """(allexe, zig cc -O2 -static command) of a bench/platform_ir program."""
    sources = [str(SOURCES / f) for f in SMALL[name]]
    stem = name.replace("/", "-")
    bitcode = []
    for source in sources:
        bc = str(work / f"{stem}-{Path(source).stem}.bc")
        run(zig_command("cc", "-target", MUSL_TARGET, "-O2", "-c", "-emit-llvm", source, "-o",
                        bc), env=zig_env())
        bitcode.append(bc)
    allexe = str(work / f"{stem}.allexe")
    run([tool("bc2allvm"), *bitcode, "-o", allexe, "-f"])
    native = zig_command("cc", "-target", MUSL_TARGET, "-O2", "-static", "-s", *sources, "-o",
                         str(work / f"{stem}.zig"))
    return allexe, native


def small_workload(name: str, work: Path, quick: bool) -> tuple[list[str], bytes | None]:
    if name == "qsort":
        return ["1000000" if quick else "2000000"], None
    text = work / "getc-input.txt"
    if not text.exists():
        line = "the getc loop reads this line, byte by byte, and writes it upper-cased\n"
        text.write_text(line * (200_000 if quick else 1_000_000))
    return [], text.read_bytes()


def platform_ir_binary(allexe: str, work: Path, cache: str) -> tuple[str, float]:
    """The static binary of `alltogether -platform-ir allexe`, and that command's seconds."""
    whole = str(work / (Path(allexe).stem + ".platform-ir.allexe"))
    started = time.monotonic()
    run([tool("alltogether"), "-platform-ir", "-q", allexe, "-o", whole, "-f"])
    seconds = time.monotonic() - started
    return static_binary(whole, cache), seconds


def compare(name: str, allexe: str, native: list[str], args: list[str], stdin: bytes | None,
            runs: int, work: Path, cache: str) -> list[dict]:
    """Build the three binaries of one program, time them alternating, return its records."""
    from figures import size_record

    binaries = {}
    for label, argv in ((BASELINE, native), (LTO, lto_command(native))):
        binary = argv[argv.index("-o") + 1]
        if not os.path.exists(binary):
            run(argv, env=zig_env())
        binaries[label] = binary
    binaries[CONTENDER], seconds = platform_ir_binary(allexe, work, cache)
    results = {r.command.label: r for r in measure(
        [Command(label, [path, *args], stdin=stdin) for label, path in binaries.items()],
        runs=runs)}
    print_table(f"fig 7: {name}: the platform in IR", list(results.values()), baseline=LTO)
    goal = ("≤ 0.70×", 0.70) if name == "qsort" else ("≤ 1.02×", 1.02)
    note = (f"alltogether -platform-ir {Path(allexe).name} took {seconds:.0f} s; "
            f"baseline built by: {' '.join(native)} (with -flto for the LTO one)")
    records = [ratio_record(f"9 {name}", results[CONTENDER], results[LTO], goal=goal[0],
                            goal_max=goal[1], note=note),
               ratio_record(f"9 {name}", results[CONTENDER], results[BASELINE])]
    for label in (LTO, BASELINE):
        records.append(size_record(f"9 {name}", CONTENDER, os.path.getsize(binaries[CONTENDER]),
                                   label, os.path.getsize(binaries[label])))
    return records


def summary(records: list[dict]) -> list[dict]:
    """The median over the programs of their time ratios to zig cc -flto (goal ≤ 0.95×), and
    the build time of the platform IR."""
    from allvm.platform import libc_ir

    ratios = [r["ratio"] for r in records if r["metric"] == "time" and r["baseline"] == LTO]
    median = statistics.median(ratios)
    build = libc_ir.load().build_seconds
    built = f"took {build:.0f} s to build" if build else "was built before build times were kept"
    return [{"figure": "9 all", "metric": "time", "contender": CONTENDER, "baseline": LTO,
             "ratio": median, "min": min(ratios), "max": max(ratios), "runs": len(ratios),
             "contender_command": "median over the programs above",
             "baseline_command": "", "goal": "≤ 0.95× (median)", "met": median <= 0.95,
             "note": f"the platform IR (musl as bitcode, once per zig; make setup) {built}"}]
