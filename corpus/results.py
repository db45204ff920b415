"""corpus/results.md: the corpus's packages as `allvm-debian build -list corpus/packages.toml`
left them (OUT/PKG/report.json), counted by program.

    python -m corpus.results [OUT]      (OUT: build/corpus, where `make corpus` builds)

A program passes when it became an allexe and no test of it that passes natively fails or is
skipped on alley's JIT or static path; a test is the program's whose name its file name starts with
(tests/misc/sort-float.sh: sort), a test naming no program is every program's. A program
whose package's tests never ran on alley's paths does not pass (untested is not passing).
"""

import json
import os
import sys
from pathlib import Path

from allvm.packaging.debian_list import Entry, load_list

CORPUS_DIR = Path(__file__).resolve().parent
LIST = CORPUS_DIR / "packages.toml"
OUT = CORPUS_DIR.parent / "build" / "corpus"
MODES = ("native", "jit", "static")
MODE_TITLES = {"native": "native", "jit": "alley (JIT path)", "static": "alley (static path)"}


def exercised(check: str, programs: list[str]) -> list[str]:
    """The programs a test exercises, by name: the one whose name starts the test's file name
    (tests/misc/sort-float.sh: sort; sha1sum-vec.pl: sha1sum-vec); a test naming none (e.g.
    help-version.sh) counts for every program."""
    base = os.path.basename(check)
    named = [p for p in programs if base.startswith(p)
             and (len(base) == len(p) or not base[len(p)].isalnum())]
    return [max(named, key=len)] if named else programs


def programs_failing(programs: list[str], tests: dict[str, dict]) -> dict[str, str]:
    """{program: why} for each program with a test that fails on an alley path and not
    natively, or whose tests did not run on a path. A test that fails natively too is about
    the package or the machine, not alley, and counts against no program."""
    native = tests.get("native", {})
    not_passed = {*native.get("failed_names", []), *native.get("skipped_names", [])}
    failing: dict[str, str] = {}
    for mode in MODES[1:]:
        result = tests.get(mode)
        if result is None:
            failing.update((p, f"{mode}: not tested") for p in programs if p not in failing)
            continue
        for check, what in [*((c, "fails") for c in result["failed_names"]),
                            *((c, "skipped") for c in result.get("skipped_names", []))]:
            if check not in not_passed:
                for program in exercised(check, programs):
                    failing.setdefault(program, f"{mode}: {check} {what} (passes natively)")
    return failing


def package_row(report: dict) -> dict:
    """What the table says of one package's report."""
    programs = [p["name"] for p in report.get("programs", [])]
    failing = programs_failing(programs, report.get("tests", {})) if report["built"] else {}
    shares = [p["ir_share"] for p in report.get("programs", [])]
    return {"package": report["package"], "languages": ", ".join(report["languages"]) or "—",
            "executables": report["executables"], "allexes": report["allexes"],
            "ir_share": sum(shares) / len(shares) if shares else 0.0,
            "tests": {m: report.get("tests", {}).get(m) for m in MODES},
            "passing": len(programs) - len(failing), "failing": failing,
            "error": report.get("error"), "known": report.get("known_failures", {})}


def _tests(result: dict | None) -> str:
    return f"{result['passed']}/{result['passed'] + result['failed']}" if result else "—"


def _explained(name: str, entry: Entry | None, known: dict[str, str]) -> str:
    reason = known.get(name) or (entry.reasons.get(name) if entry else None)
    return f"{name} — {reason}" if reason else name


def write_results(out: Path, entries: dict[str, Entry], results: Path) -> list[dict]:
    """corpus/results.md (and .json: the rows) from OUT's reports, in the list's order."""
    rows = []
    for name in entries:
        path = out / name / "report.json"
        if path.exists():
            rows.append(package_row(json.loads(path.read_text())))
    executables = sum(r["executables"] for r in rows)
    passing = sum(r["passing"] for r in rows)
    lines = [
        "# Corpus results", "",
        "`make corpus`: `allvm-debian build -list corpus/packages.toml` -- Debian's own build "
        "of each package with allvm-py's compiler wrappers (x86_64-linux-gnu, against Debian's "
        "libraries), an allexe per executable of the .debs (and per build-tree program the "
        "list names), the package's tests natively and with the allexes "
        f"({', '.join(MODE_TITLES[m] for m in MODES[1:])}). The list holds only what the "
        "generic build cannot know, each override with its reason.", "",
        "| package | languages | executables | allexes | IR share | "
        + " | ".join(f"tests: {MODE_TITLES[m]}" for m in MODES)
        + " | programs passing in every mode |",
        "| --- " * 9 + "|"]
    for r in rows:
        lines.append(f"| {r['package']} | {r['languages']} | {r['executables']} | "
                     f"{r['allexes']} | {r['ir_share']:.0%} | "
                     + " | ".join(_tests(r["tests"][m]) for m in MODES)
                     + f" | {r['passing']} |")
    lines += [f"| **all** | | {executables} | {sum(r['allexes'] for r in rows)} | |"
              + " |" * len(MODES)
              + f" **{passing} ({passing / max(executables, 1):.0%})** |", "",
              __doc__.split("\n\n")[2].replace("\n", " "), ""]
    noted = [(n, e.notes) for n, e in entries.items() if e.notes]
    if noted:
        lines += ["## Notes", ""] + [f"- **{n}**: {notes}" for n, notes in noted] + [""]
    failures = []
    for r in rows:
        entry = entries.get(r["package"])
        native = set((r["tests"]["native"] or {}).get("failed_names", []))
        reasons = ([r["error"]] if r["error"] else []) + [
            f"{mode}: {_explained(n, entry, r['known'])}" for mode in MODES
            for n in (r["tests"][mode] or {}).get("failed_names", [])
            if mode == "native" or n not in native]
        reasons += [f"{p}: {why}" for p, why in sorted(r["failing"].items())]
        if reasons:
            failures += [f"- **{r['package']}**", *(f"  - {x}" for x in reasons[:12])]
    if failures:
        lines += ["## What failed, and why", "", *failures, ""]
    results.mkdir(parents=True, exist_ok=True)
    (results / "results.md").write_text("\n".join(lines))
    (results / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    rows = write_results(out, load_list(LIST), CORPUS_DIR)
    passing = sum(r["passing"] for r in rows)
    print(f"corpus: {len(rows)} package(s), {passing} of "
          f"{sum(r['executables'] for r in rows)} programs passing in every mode; "
          f"{CORPUS_DIR / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
