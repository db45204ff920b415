"""Figure 7: a real test suite's wall time under alley against the native programs.

coreutils' tests (corpus/coreutils_tests.txt, run by `make check` against each mode's
programs, as `make corpus` runs them) with the native programs, and with the allexes started
by alley on a cache hit (static binaries cached: the native launcher execs them). Rounds
alternate native and alley. The corpus's own code builds the allexes and the modes.

Run alone: .venv/bin/python bench/bench_corpus_tests.py [--runs N]
"""

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from common import Command, Result, print_table, ratio_record  # noqa: E402

from corpus import run as corpus_run  # noqa: E402
from corpus.recipes import PACKAGES, run_tests  # noqa: E402

PACKAGE = "coreutils"
TIMED_MODES = {"native": "native programs", "static": "alley (cached static binaries)"}


def figure(s) -> list[dict]:
    result = corpus_run.new_result(PACKAGE)
    tree, programs, allexes = corpus_run.package_allexes(PACKAGE, corpus_run.WORK, result)
    modes = {m.name: m for m in corpus_run.prepare_modes(programs, tree,
                                                          corpus_run.WORK / PACKAGE, allexes,
                                                          result)}
    command = f"make check TESTS=<{len(corpus_tests())} tests of corpus/coreutils_tests.txt>"
    results = {name: Result(Command(label, [command])) for name, label in TIMED_MODES.items()}
    passed = {}
    for _ in range(max(1, s.runs // 3)):
        for name in TIMED_MODES:
            start = time.perf_counter()
            checks = run_tests(PACKAGES[PACKAGE], tree, modes[name])
            results[name].times.append(time.perf_counter() - start)
            passed[name] = f"{sum(c.passed for c in checks)}/{len(checks)}"
    native, alley = results["native"], results["static"]
    print_table(f"fig 7: coreutils' tests, alley vs native (passed: {passed})",
                [native, alley], baseline=native.command.label)
    return [ratio_record("7 coreutils tests", alley, native, goal="≤ 1.3×", goal_max=1.3,
                         note=f"tests passed: native {passed['native']}, "
                              f"alley {passed['static']}")]


def corpus_tests() -> list[str]:
    text = (corpus_run.CORPUS_DIR / "coreutils_tests.txt").read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


if __name__ == "__main__":
    import argparse

    from figures import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="alternating rounds x3")
    for r in figure(Settings(quick=False, runs=parser.parse_args().runs)):
        print(f"{r['figure']}: {r['ratio']:.2f}x ({'met' if r['met'] else 'NOT met'}) "
              f"{r['note']}")
