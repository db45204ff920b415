"""`make corpus`: build Debian packages with allcc, extract an allexe per program, and run each
package's own tests against the native build, alley's JIT path and alley's static path.

    python -m corpus.run [PACKAGE...] [--work DIR] [--results DIR] [--modes native,...]

The modes: the native build, alley's JIT path, alley's static path (the default three), and
`platform-ir`: each allexe through `alltogether -platform-ir` (its libc as IR, optimized with
it), then allready; run with `--modes native,platform-ir` (make corpus MODES=...).

Results are merged into RESULTS/results.json (one entry per package, so packages can be run
one at a time) and RESULTS/results.md is written from it. Progress goes to stdout.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from allvm.errors import AllvmError
from allvm.packaging.debian import fetch_source
from allvm.packaging.package_tests import fresh_stub, install
from allvm.packaging.wllvm import Extraction
from corpus.recipes import (
    CORPUS_DIR,
    PACKAGES,
    BuildError,
    Mode,
    build_variables,
    find_programs,
    run_build,
    run_tests,
)

BIN = Path(sys.executable).parent
MODES = ("native", "jit", "static")
MODE_TITLES = {"native": "native", "jit": "alley (JIT path)", "static": "alley (static path)",
               "platform-ir": "alltogether -platform-ir + allready"}
BUILT_STAMP = ".allvm-corpus-built"
WORK = CORPUS_DIR.parent / "build" / "corpus"  # sources, builds, allexes, caches


def say(package: str, message: str) -> None:
    print(f"[{package}] {message}", flush=True)


def tool_env(**extra: str) -> dict[str, str]:
    """The environment builds and tests run in: this install's tools first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env.update(extra)
    return env


def build_identity(package) -> str:
    """What a build depends on beyond its source: its recipe's build lines, and the platform
    its executables are linked with (the libc fixes' object, whose name hashes their source
    and the zig binary)."""
    from allvm.platform.libc import fix_object

    return json.dumps([os.path.basename(fix_object()), package.build])


def build(package, tree: Path, log: Path, work_root: Path) -> None:
    """Build the package with allcc (once: a stamp identifies a finished build), after
    the corpus libraries it needs. A build made otherwise (another recipe, another platform) is
    unpacked and built again: its executables would show the old behaviour."""
    stamp = tree / BUILT_STAMP
    if stamp.exists():
        if stamp.read_text() == build_identity(package):
            return
        say(package.name, "built with another recipe or platform: unpacking and building again")
        shutil.rmtree(tree)
        fetch_source(package.name, str(tree.parent))
    for need in package.needs:
        say(package.name, f"building the corpus library {need}")
        library_tree = Path(fetch_source(need, str(work_root / "src")))
        (work_root / need).mkdir(parents=True, exist_ok=True)
        build(PACKAGES[need], library_tree, work_root / need / "build.log", work_root)
    log.write_text("")
    run_build(package, tree, tool_env(), log, build_variables(package, tree, work_root))
    missing = [p for p in find_programs(package, tree) if not (tree / p).is_file()]
    if missing:
        raise BuildError(f"the build made no {', '.join(missing)} (see {log})")
    stamp.write_text(build_identity(package))


def extract(programs: list[str], tree: Path, allexes: Path, result: dict) -> dict[str, Path]:
    """An allexe per program, made by the wllvm-extract command; failures are recorded."""
    allexes.mkdir(exist_ok=True)
    made, tus, ir_tus = {}, 0, 0
    for program in programs:
        name = os.path.basename(program)
        out = allexes / f"{name}.allexe"
        proc = subprocess.run([str(BIN / "wllvm-extract"), str(tree / program), "-o", str(out),
                               "-f"], capture_output=True, text=True)
        if proc.returncode != 0:
            result["failures"].append(f"wllvm-extract {name}: {proc.stderr.strip()[-300:]}")
            continue
        made[name] = out
        extraction = Extraction(str(tree / program))
        total = len(extraction.all_paths())
        tus += total
        ir_tus += total - len(extraction.native_only)
    result["allexes"] = len(made)
    result["translation_units"] = tus
    result["ir_share"] = round(ir_tus / tus, 4) if tus else 0.0
    return made


def with_platform_ir(allexes: dict[str, Path], work: Path, result: dict) -> dict[str, Path]:
    """Each allexe with its libc linked in as IR (alltogether -platform-ir); failures are
    recorded and leave the program out of the mode."""
    out = work / "allexes-platform-ir"
    out.mkdir(exist_ok=True)
    made = {}
    for name, allexe in allexes.items():
        whole = out / allexe.name
        proc = subprocess.run([str(BIN / "alltogether"), "-platform-ir", "-q", "-f",
                               str(allexe), "-o", str(whole)], capture_output=True, text=True)
        if proc.returncode != 0:
            result["failures"].append(f"alltogether -platform-ir {name}: "
                                      f"{proc.stderr.strip()[-300:]}")
            continue
        made[name] = whole
    return made


def prepare_modes(programs: list[str], tree: Path, work: Path, allexes: dict[str, Path],
                  result: dict, modes_run: tuple[str, ...] = MODES) -> list[Mode]:
    """The native programs, and the allexes for alley's paths, started by alley's stubs under
    the caller's argv[0] (each path with its own cache, so the JIT path never finds a static
    binary)."""
    stub = fresh_stub(work)
    modes = []
    for name in modes_run:
        bindir = work / "bin" / name
        bindir.mkdir(parents=True, exist_ok=True)
        env = tool_env()
        env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"  # a test's commands find the mode's
        mode_allexes = (with_platform_ir(allexes, work, result) if name == "platform-ir"
                        else allexes)
        for program in programs:
            base = os.path.basename(program)
            target = tree / program if name == "native" else mode_allexes.get(base)
            if target is not None:
                install(bindir, base, target, None if name == "native" else stub)
        if name != "native":
            env["ALLVM_CACHE_DIR"] = str(work / f"cache-{name}")
        if name == "jit":  # compile every module once, as allready does for the static path
            env["ALLVM_TIER"] = "optimized"  # and stay the JIT path: no promotion
            for allexe in mode_allexes.values():
                proc = subprocess.run([str(BIN / "alley"), "-noexec", str(allexe)], env=env,
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    result["failures"].append(f"alley -noexec {allexe.name}: "
                                              f"{proc.stderr.strip()[-300:]}")
        if name in ("static", "platform-ir"):
            proc = subprocess.run([str(BIN / "allready"), *map(str, mode_allexes.values())],
                                  env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                result["failures"].append(f"allready: {proc.stderr.strip()[-300:]}")
        scratch = work / "scratch" / name
        scratch.mkdir(parents=True, exist_ok=True)
        modes.append(Mode(name, bindir, env, scratch))
    return modes


def package_allexes(name: str, work_root: Path,
                    result: dict) -> tuple[Path, list[str], dict[str, Path]]:
    """Fetch the package, build it with allcc (once) and extract an allexe per program:
    (build tree, programs, allexe by program name). Counts and failures go into `result`."""
    package = PACKAGES[name]
    work = work_root / name
    work.mkdir(parents=True, exist_ok=True)
    say(name, "fetching the Debian source")
    tree = Path(fetch_source(name, str(work_root / "src")))
    say(name, f"building with allcc (log: {work / 'build.log'})")
    build(package, tree, work / "build.log", work_root)
    programs = find_programs(package, tree)
    result["programs"] = len(programs)
    say(name, f"extracting {len(programs)} program(s)")
    return tree, programs, extract(programs, tree, work / "allexes", result)


def new_result(name: str) -> dict:
    package = PACKAGES[name]
    return {"package": name, "language": package.language, "programs": len(package.programs),
            "allexes": 0, "ir_share": 0.0, "modes": {}, "failures": [], "notes": package.notes}


def run_package(name: str, work_root: Path, modes_run: tuple[str, ...] = MODES) -> dict:
    package = PACKAGES[name]
    work = work_root / name
    result = new_result(name)
    started = time.monotonic()
    outcomes = {}  # mode -> {check name: passed}
    try:
        tree, programs, allexes = package_allexes(name, work_root, result)
        say(name, f"{len(allexes)} allexe(s); static binaries for alley's static path")
        for mode in prepare_modes(programs, tree, work, allexes, result, modes_run):
            say(name, f"testing: {MODE_TITLES[mode.name]}")
            mode_start = time.monotonic()
            checks = run_tests(package, tree, mode)
            outcomes[mode.name] = {c.name: c.passed for c in checks}
            passed = sum(c.passed for c in checks)
            result["modes"][mode.name] = {"passed": passed, "total": len(checks),
                                          "seconds": round(time.monotonic() - mode_start, 1)}
            failed = [c for c in checks if not c.passed]
            result["failures"] += [f"{mode.name}: {c.name}: {c.detail.strip()[-200:]}"
                                   for c in failed[:10]]
            say(name, f"  {passed}/{len(checks)} passed")
        failing = programs_failing(list(allexes), outcomes, modes_run)
        result["programs_passing"] = len(allexes) - len(failing)
        result["failures"] += [f"{p}: {why}" for p, why in sorted(failing.items())]
    except (BuildError, AllvmError, subprocess.SubprocessError, OSError) as e:
        result["failures"].append(f"{type(e).__name__}: {str(e)[-600:]}")
        say(name, f"FAILED: {str(e)[-300:]}")
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def exercised(check: str, programs: list[str]) -> list[str]:
    """The programs a test exercises, by name: the one whose name starts the test's file name
    (tests/misc/sort-float.sh: sort; sha1sum-vec.pl: sha1sum); a test naming none (e.g.
    help-version.sh) counts for every program."""
    base = os.path.basename(check)
    named = [p for p in programs if base.startswith(p)
             and (len(base) == len(p) or not base[len(p)].isalnum())]
    return [max(named, key=len)] if named else programs


def programs_failing(programs: list[str], outcomes: dict[str, dict[str, bool]],
                     modes_run: tuple[str, ...] = MODES) -> dict:
    """{program: why} for each program with a test that passes natively but fails in one of
    the other modes run (or could not run there). A test that fails natively too is about
    the platform, not alley, and counts against no program."""
    native = outcomes.get("native", {})
    failing = {}
    for mode in modes_run[1:]:
        results = outcomes.get(mode)
        if results is None:
            failing.update((p, f"{mode}: not run") for p in programs if p not in failing)
            continue
        for check, passed in native.items():
            if passed and not results.get(check, False):
                for program in exercised(check, programs):
                    failing.setdefault(program, f"{mode}: {check} fails (passes natively)")
    return failing


def mode_cell(result: dict, mode: str) -> str:
    counts = result["modes"].get(mode)
    return f"{counts['passed']}/{counts['total']}" if counts else "—"


def explained(failure: str, reasons: dict[str, str]) -> str:
    """A failure line with the known reason for the test it names, if any."""
    reason = next((why for test, why in reasons.items() if f"{test} " in f"{failure} "
                   or f"{test}:" in failure), None)
    return f"{failure} — {reason}" if reason else failure


def results_name(modes_run: tuple[str, ...]) -> str:
    """`results` for the default modes; another set of modes gets its own report
    (`results-platform-ir`), so neither overwrites the other's."""
    return "results" if modes_run == MODES else "-".join(["results", *modes_run[1:]])


def programs_row(label: str, results: list[dict], modes_run: tuple[str, ...]) -> str:
    """A totals row: programs, allexes and programs passing (with their share)."""
    programs = sum(r["programs"] for r in results)
    passing = sum(r.get("programs_passing", 0) for r in results)
    return (f"| **{label}** | | {programs} | {sum(r['allexes'] for r in results)} | |"
            + " |" * len(modes_run) + f" **{passing} ({passing / max(programs, 1):.0%})** |")


def results_table(results: dict[str, dict], order: list[str],
                  modes_run: tuple[str, ...]) -> list[str]:
    """The results table, grouped by language, with totals per language and over all."""
    lines = ["| package | language | programs | allexes | IR share | "
             + " | ".join(f"tests: {MODE_TITLES[m]}" for m in modes_run)
             + " | programs passing in every mode |",
             "| --- " * (len(modes_run) + 6) + "|"]
    languages = sorted({results[n].get("language", "C") for n in order})
    for language in languages:
        names = [n for n in order if results[n].get("language", "C") == language]
        for n in names:
            r = results[n]
            lines.append(f"| {n} | {language} | {r['programs']} | {r['allexes']} | "
                         f"{r['ir_share']:.0%} | "
                         + " | ".join(mode_cell(r, m) for m in modes_run)
                         + f" | {r.get('programs_passing', 0)} |")
        if len(languages) > 1:
            lines.append(programs_row(f"all {language}", [results[n] for n in names], modes_run))
    lines.append(programs_row("all", [results[n] for n in order], modes_run))
    return lines


def write_results(results: dict[str, dict], directory: Path,
                  modes_run: tuple[str, ...] = MODES) -> None:
    order = [n for n in PACKAGES if n in results] + [n for n in results if n not in PACKAGES]
    name = results_name(modes_run)
    (directory / f"{name}.json").write_text(
        json.dumps([results[n] for n in order], indent=2) + "\n")
    others = [MODE_TITLES[m] for m in modes_run[1:]]
    lines = [
        "# Corpus results" + ("" if modes_run == MODES else f": {', '.join(others)}"),
        "",
        "Built with `allcc`/`allc++` (target x86_64-linux-musl), one allexe per program by "
        "`wllvm-extract`, each package's tests run against the native build and the allexes "
        f"({', '.join(others)}). Rebuild with `make corpus"
        + ("`" if modes_run == MODES else f" MODES=\"{' '.join(modes_run)}\"`")
        + "; the recipes are corpus/packages.toml.",
        "",
        *results_table(results, order, modes_run),
    ]
    lines += ["", "IR share: the fraction of linked translation units whose code is in the "
              "allexe as IR (the rest was assembled natively). A program passes when it became "
              "an allexe and every test of it that passes natively also passes in every other "
              "mode (a test that fails natively too is the platform's, not alley's; "
              "a test is the program's whose name starts its file name, a test naming no "
              "program is every program's).", ""]
    noted = [n for n in order if results[n].get("notes")]
    if noted:
        lines += ["## Notes", ""] + [f"- **{n}**: {results[n]['notes']}" for n in noted] + [""]
    failing = [n for n in order if results[n]["failures"]]
    if failing:
        lines += ["## What failed, and why", ""]
        for n in failing:
            lines.append(f"- **{n}**")
            reasons = PACKAGES[n].reasons if n in PACKAGES else {}
            lines += [f"  - {explained(f, reasons)}".replace("\n", " ")
                      for f in results[n]["failures"]]
        lines.append("")
    (directory / f"{name}.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="corpus", description=__doc__.split("\n\n")[0])
    programs = [n for n, p in PACKAGES.items() if p.programs or p.programs_glob]
    parser.add_argument("packages", nargs="*", help=f"default: all ({', '.join(programs)})")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--results", type=Path, default=CORPUS_DIR)
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated, native first (default: {','.join(MODES)}; "
                             f"also: platform-ir)")
    args = parser.parse_args(argv)
    modes_run = tuple(args.modes.replace(",", " ").split())
    if modes_run[:1] != ("native",) or not set(modes_run) <= set(MODE_TITLES):
        parser.error(f"--modes: 'native' first, then some of {', '.join(MODE_TITLES)}")
    # A terminated run still puts the native programs back into the build trees.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    unknown = [p for p in args.packages if p not in programs]
    if unknown:
        parser.error(f"unknown package(s): {', '.join(unknown)} (corpus libraries are built "
                     "for the packages that need them)")
    results_file = args.results / f"{results_name(modes_run)}.json"
    results = ({r["package"]: r for r in json.loads(results_file.read_text())}
               if results_file.exists() else {})
    names = args.packages or programs
    for i, name in enumerate(names, 1):
        print(f"== {i}/{len(names)}: {name}", flush=True)
        results[name] = run_package(name, args.work.resolve(), modes_run)
        args.results.mkdir(parents=True, exist_ok=True)
        write_results(results, args.results, modes_run)
    ok = all(not results[n]["failures"] for n in names)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
