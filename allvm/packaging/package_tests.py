"""A package's own test suite, run against its native programs or against their allexes.

Used by `allvm-debian` (allvm.packaging.debian_package), for any package and for the corpus's
list (corpus/packages.toml):

- **stubs**: a program is replaced by alley's stub (allvm.launcher.install_stub): a copy of
  the launcher named like the program, beside `NAME.allexe`, starts that allexe under the
  caller's argv[0]. The build tree's program becomes a symbolic link to it while a mode runs
  (`programs_replaced`), and the native file is put back afterwards, also on Ctrl-C.
- **results**: automake's `PASS:/FAIL:` lines, CTest's and Meson's summaries, else one result
  by the suite's exit status (`parse_results`).
- **command cases**: a command line and the output it must print (`run_case`), for a package
  whose own suite exercises its programs too little or not at all.
"""

import contextlib
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from allvm.launcher import install_stub

NATIVE_SUFFIX = ".native"  # where a replaced program waits while a mode runs


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class Outcome:
    """What one run of a suite amounts to."""

    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    skipped_names: list[str] = field(default_factory=list)  # automake's SKIP: not counted

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.checks)

    @property
    def failed_names(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]

    def as_dict(self) -> dict:
        return {"passed": self.passed, "failed": len(self.failed_names),
                "failed_names": self.failed_names, "skipped_names": self.skipped_names,
                "seconds": round(self.seconds, 1)}


def fresh_stub(work: Path) -> Path:
    """alley's stub, made now: newer than the build, so that a package's `make check` never
    remakes a program over the symlink that puts the stub in the build tree (make would test
    the native program instead)."""
    stub = work / "stub"
    stub.unlink(missing_ok=True)
    install_stub(str(stub))
    return stub


def install(bindir: Path, name: str, target: Path, stub: Path | None) -> None:
    """`bindir/name`: a symlink to the native program, or a hard link to the stub beside a
    symlink `name.allexe` to the allexe: it starts the allexe under the caller's argv[0], as
    binfmt_misc's preserve-argv0 would, with no system configuration."""
    program = bindir / name
    for old in (program, bindir / f"{name}.allexe"):
        if old.is_symlink() or old.exists():
            old.unlink()
    if stub is None:
        program.symlink_to(target)
    else:
        os.link(stub, program)
        (bindir / f"{name}.allexe").symlink_to(target)


@contextlib.contextmanager
def programs_replaced(replacements: dict[Path, Path]):
    """Each file of the build tree (key) becomes a symbolic link to its replacement (value)
    while the block runs; the native files are put back afterwards."""
    moved = []
    try:
        for path, replacement in replacements.items():
            os.rename(path, f"{path}{NATIVE_SUFFIX}")
            moved.append(path)
            os.symlink(replacement, path)
        yield
    finally:
        for path in moved:
            os.unlink(path)
            os.rename(f"{path}{NATIVE_SUFFIX}", path)


_AUTOMAKE = re.compile(r"^(PASS|FAIL|XFAIL|XPASS|ERROR|SKIP): (\S+)", re.M)
_CTEST_FAILED = re.compile(r"^\s*\d+ - (\S+) \((?:Failed|Timeout|SEGFAULT|Subprocess aborted"
                           r"|Not Run|Exception)[^)]*\)", re.M)
_CTEST_SUMMARY = re.compile(r"tests passed, (\d+) tests? failed out of (\d+)")
_MESON_SUMMARY = re.compile(r"^Ok:\s+(\d+)\s*\n(?:.*\n)*?^Fail:\s+(\d+)", re.M)
_MESON_FAILED = re.compile(r"^\s*\d+/\d+\s+(?:\S+:)?\s*(\S+)\s+FAIL\s", re.M)


def automake_results(output: str) -> list[Check]:
    """One check per automake test (`PASS: name`...), skipped ones left out; automake may
    print a failing test's line twice: one result per name."""
    results = dict((name, kind) for kind, name in _AUTOMAKE.findall(output))
    return [Check(name, kind in ("PASS", "XFAIL"), kind) for name, kind in results.items()
            if kind != "SKIP"]


def automake_skipped(output: str) -> list[str]:
    """The automake tests that skipped themselves (a test that runs natively and skips on an
    alley path did not run there)."""
    results = dict((name, kind) for kind, name in _AUTOMAKE.findall(output))
    return [name for name, kind in results.items() if kind == "SKIP"]


def parse_results(output: str, status: int, command: str) -> list[Check]:
    """A suite's results from its output: automake's lines, CTest's or Meson's summary with
    the failing tests' names, else one check by the exit status."""
    checks = automake_results(output)
    if checks:
        return checks
    summary = _CTEST_SUMMARY.search(output)
    if summary:
        failed = _CTEST_FAILED.findall(output)
        total = int(summary[2])
        return ([Check(name, False, "ctest") for name in failed]
                + [Check(f"ctest #{i}", True) for i in range(total - len(failed))])
    summary = _MESON_SUMMARY.search(output)
    if summary:
        failed = _MESON_FAILED.findall(output)
        return ([Check(name, False, "meson") for name in failed]
                + [Check(f"meson #{i}", True) for i in range(int(summary[1]))])
    return [Check(command, status == 0, f"exit {status}: {output[-300:]}")]


CASE_TIMEOUT = 600


def run_case(case: dict, variables: dict[str, str], env: dict[str, str], work: Path) -> Check:
    """One command case: bash with pipefail in `work`, in `env` (the mode's programs first on
    PATH); it passes with exit status 0 and stdout as the case says (`stdout_file`,
    `stdout`, `stdout_contains`). `variables` fill the case's {names}."""
    command = case["run"].format(**variables)
    try:
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, cwd=work,
                              capture_output=True, timeout=CASE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return Check(case["name"], False, f"timed out after {CASE_TIMEOUT} s")
    stdout, stderr = proc.stdout, proc.stderr.decode(errors="replace")
    if "stdout_file" in case:
        expected = Path(case["stdout_file"].format(**variables)).read_bytes()
    elif "stdout" in case:
        expected = case["stdout"].encode()
    else:
        expected = None
    contains = case.get("stdout_contains", "").encode()
    passed = (proc.returncode == 0 and (expected is None or stdout == expected)
              and contains in stdout)
    detail = "" if passed else f"exit {proc.returncode}; " + _difference(expected, stdout, stderr)
    return Check(case["name"], passed, detail)


def _difference(expected: bytes | None, got: bytes, stderr: str) -> str:
    """Where the output first differs from the expected one, and the end of stderr."""
    if expected is None or expected == got:
        return stderr[-300:]
    for n, (a, b) in enumerate(zip(expected.splitlines(), got.splitlines(), strict=False)):
        if a != b:
            return f"line {n + 1}: expected {a[:80]!r}, got {b[:80]!r}; {stderr[-200:]}"
    return f"output length differs ({len(got)} bytes, expected {len(expected)}); {stderr[-200:]}"
