"""Figure 7: a real test suite's wall time under alley against the native programs.

coreutils' tests (the corpus list's selection, corpus/coreutils_tests.txt, run by `make check`
in Debian's build tree as `make corpus` runs them) with the native programs, and with the
allexes started by alley on a cache hit (static binaries cached: the native launcher execs
them). Rounds alternate native and alley. allvm-debian's own code builds coreutils (kept, in
build/bench/corpus-tests), makes the allexes and runs the tests.

Run alone: .venv/bin/python bench/bench_corpus_tests.py [--runs N]
"""

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from common import Command, Result, print_table, ratio_record  # noqa: E402

from allvm.packaging import debian_build as db  # noqa: E402
from allvm.packaging import debian_package as dp  # noqa: E402
from allvm.packaging.debian_list import load_list  # noqa: E402
from allvm.packaging.package_tests import fresh_stub  # noqa: E402
from corpus.results import LIST  # noqa: E402

PACKAGE = "coreutils"
OUT = HERE.parent / "build" / "bench" / "corpus-tests"
TIMED_MODES = {"native": "native programs", "static": "alley (cached static binaries)"}


def kept_build(entry) -> tuple[Path, dict]:
    """coreutils built by allvm-debian with its build tree kept (once): (tree, report)."""
    path = OUT / PACKAGE / "report.json"
    report = json.loads(path.read_text()) if path.exists() else None
    tree = OUT / PACKAGE / "src" / PACKAGE
    if not report or report["error"] or not tree.is_dir():
        report = dp.build_package(PACKAGE, OUT, jobs=os.cpu_count() or 1, test=False,
                                  keep=True, entry=entry)
        if report["error"]:
            raise RuntimeError(f"{PACKAGE}: {report['error']}")
    return tree, report


def figure(s) -> list[dict]:
    entry = load_list(LIST)[PACKAGE]
    tree, report = kept_build(entry)
    out = OUT / PACKAGE
    root = out / "root"
    programs = {p["name"]: (root / p["path"].lstrip("/"), Path(p["allexe"]))
                for p in report["programs"]}
    in_tree = dp.tree_programs(tree, programs)
    env = db.build_env(db.make_compilers(out / "compilers"), os.cpu_count() or 1, check=True)
    stub = fresh_stub(out)
    modes = {m: dp.prepare_mode(m, out, env, programs, stub, report) for m in TIMED_MODES}
    command = f"make check TESTS=<{len(corpus_tests())} tests of corpus/coreutils_tests.txt>"
    results = {name: Result(Command(label, [command])) for name, label in TIMED_MODES.items()}
    passed = {}
    for _ in range(max(1, s.runs // 3)):
        for name in TIMED_MODES:
            bindir, mode_env = modes[name]
            start = time.perf_counter()
            outcome = dp.run_tests(name, tree, out, bindir, mode_env, in_tree, entry)
            results[name].times.append(time.perf_counter() - start)
            passed[name] = f"{outcome.passed}/{len(outcome.checks)}"
    native, alley = results["native"], results["static"]
    print_table(f"fig 7: coreutils' tests, alley vs native (passed: {passed})",
                [native, alley], baseline=native.command.label)
    return [ratio_record("7 coreutils tests", alley, native, goal="≤ 1.3×", goal_max=1.3,
                         note=f"tests passed: native {passed['native']}, "
                              f"alley {passed['static']}")]


def corpus_tests() -> list[str]:
    text = (LIST.parent / "coreutils_tests.txt").read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


if __name__ == "__main__":
    import argparse

    from figures import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="alternating rounds x3")
    for r in figure(Settings(quick=False, runs=parser.parse_args().runs)):
        print(f"{r['figure']}: {r['ratio']:.2f}x ({'met' if r['met'] else 'NOT met'}) "
              f"{r['note']}")
