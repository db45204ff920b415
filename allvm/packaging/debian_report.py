"""`OUT/report.md`: one table row per package of an `allvm-debian build` output directory
(every `OUT/*/report.json`), a summary, and for each failure the first lines of its reason."""

import json
from pathlib import Path

MODES = ("native", "jit", "static")


def load_reports(out: Path) -> list[dict]:
    reports = []
    for path in sorted(out.glob("*/report.json")):
        try:
            reports.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return reports


def _tests(report: dict, mode: str) -> str:
    result = report.get("tests", {}).get(mode)
    if not result:
        return "—"
    return f"{result['passed']}/{result['passed'] + result['failed']}"


def _share(report: dict) -> str:
    programs = report.get("programs", [])
    if not programs:
        return "—"
    return f"{sum(p['ir_share'] for p in programs) / len(programs):.0%}"


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def _built(report: dict) -> str:
    if report.get("unavailable"):
        return "unavailable"
    return "yes" if report["built"] else "no"


def passes_everywhere(report: dict) -> bool:
    """Every test that passes natively also passes on alley's JIT and static paths."""
    tests = report.get("tests", {})
    if not all(m in tests for m in MODES):
        return False
    native_failed = set(tests["native"]["failed_names"])
    return all(set(tests[m]["failed_names"]) <= native_failed
               and tests[m]["passed"] >= tests["native"]["passed"] for m in MODES[1:])


def ran_tests(report: dict) -> bool:
    """Whether the package's build-time tests ran natively (a test passed or failed)."""
    native = report.get("tests", {}).get("native")
    return bool(native and native["passed"] + native["failed"])


def write_report_md(out: Path) -> Path:
    reports = load_reports(out)
    lines = ["# allvm-debian build", "",
             "| package | version | languages | target | built | executables | allexes | "
             "IR share | tests: native | tests: alley JIT | tests: alley static | seconds |",
             "| --- " * 12 + "|"]
    for r in reports:
        lines.append(
            f"| {r['package']} | {r.get('version') or '—'} | {', '.join(r['languages']) or '—'}"
            f" | {r['target']} | {_built(r)} | {r['executables']} | "
            f"{r['allexes']} | {_share(r)} | "
            + " | ".join(_tests(r, m) for m in MODES) + f" | {r.get('seconds', 0):.0f} |")
    complete = [r for r in reports if r["built"] and r["executables"]
                and r["allexes"] == r["executables"]]
    passing = [r for r in complete if passes_everywhere(r)]
    tested = [r for r in passing if ran_tests(r)]
    unavailable = sum(bool(r.get("unavailable")) for r in reports)
    available = len(reports) - unavailable
    lines += ["", f"{len(reports)} package(s): "
              + (f"{unavailable} unavailable (the mirror did not serve the source; not build "
                 "failures), " if unavailable else "")
              + f"{sum(r['built'] for r in reports)} built, "
              f"{len(complete)} with an allexe for every executable, {len(passing)} of those "
              "passing on both alley paths every test that passes natively "
              f"({len(tested)} of them ran a build-time test suite; the others ran no test)."
              + (f" Of the {available} available: "
                 f"{_percent(len(complete), available)} with an allexe for "
                 f"every executable (goal: 80%), {_percent(len(passing), len(complete))} of "
                 "those passing on both paths (goal: 90%)." if available else ""), "",
              "IR share: the mean over a package's programs of the fraction of each program's "
              "translation units (its own and its shared libraries') whose code is IR in its "
              "allexe.", ""]
    failures = []
    for r in reports:
        reasons = (([r["error"]] if r.get("error") else [])
                   + [f"log: {line}" for line in r.get("build_errors", [])]
                   + r.get("warnings", []))
        for mode in MODES[1:]:
            names = r.get("tests", {}).get(mode, {}).get("failed_names", [])
            native = set(r.get("tests", {}).get("native", {}).get("failed_names", []))
            reasons += [f"{mode}: {n} fails (passes natively)" for n in names if n not in native]
        reasons += [f"known: {n} — {why}" for n, why in r.get("known_failures", {}).items()]
        if reasons:
            failures.append(f"- **{r['package']}**")
            failures += [f"  - {' '.join(reason.split())[:300]}" for reason in reasons[:10]]
    if failures:
        lines += ["## What failed, and why", "", *failures, ""]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
