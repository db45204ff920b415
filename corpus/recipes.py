"""The corpus's recipes: corpus/packages.toml read into Package entries, and the generic
machinery every entry uses: build steps, finding the programs, and the kinds of package tests
(automake's `make check`, a test driver's "N of M tests passed", command cases).

A test runs against one set of programs at a time (a Mode): the native build, or the
extracted allexes under alley (JIT path or static path). Each test is one Check: a name, a
result and, if it failed, why.
"""

import contextlib
import os
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from allvm.packaging.package_tests import Check, automake_results, programs_replaced

CORPUS_DIR = Path(__file__).resolve().parent
RECIPES = CORPUS_DIR / "packages.toml"
TEST_TIMEOUT = 600
MAKE_CHECK_TIMEOUT = 3 * 3600
MAKE_JOBS = f"-j{os.cpu_count() or 1}"


class BuildError(Exception):
    pass


@dataclass
class Mode:
    """One way of running the programs: `bindir/<program>` is the program to run."""

    name: str
    bindir: Path
    env: dict[str, str]
    work: Path  # scratch directory for this mode's test outputs

    def run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("timeout", TEST_TIMEOUT)
        kwargs.setdefault("cwd", self.work)
        return subprocess.run(args, env=self.env, **kwargs)


@dataclass
class Package:
    """One entry of packages.toml (its header explains every field)."""

    name: str
    language: str
    build: list[str]
    test: dict
    programs: list[str] = field(default_factory=list)
    programs_glob: str = ""
    library: bool = False
    needs: list[str] = field(default_factory=list)
    notes: str = ""
    reasons: dict[str, str] = field(default_factory=dict)  # why a test fails, by its name


def load_packages(path: Path = RECIPES) -> dict[str, Package]:
    """Every entry of the recipes file, in its order; a malformed entry names itself."""
    entries = tomllib.loads(path.read_text())
    packages = {}
    for name, entry in entries.items():
        try:
            packages[name] = Package(name=name, **{"test": {}, **entry})
        except TypeError as e:
            raise ValueError(f"{path.name}: [{name}]: {e}") from None
    for package in packages.values():
        unknown = [n for n in package.needs if n not in packages or not packages[n].library]
        if unknown:
            raise ValueError(f"{path.name}: [{package.name}] needs {unknown}: not corpus libraries")
    return packages


PACKAGES = load_packages()


# --- building ----------------------------------------------------------------------------

def install_prefix(work_root: Path, name: str) -> Path:
    """Where a corpus library is installed for the packages that need it."""
    return work_root / name / "install"


def build_variables(package: Package, tree: Path, work_root: Path, *, cc: str = "allcc",
                    cxx: str = "allc++", extra: str = "") -> dict[str, str]:
    """What a build line may name: {cc} {cxx} {extra} {jobs} {tree} {prefix} {prefix_<need>}."""
    variables = {"cc": cc, "cxx": cxx, "extra": extra, "jobs": MAKE_JOBS, "tree": str(tree),
                 "prefix": str(install_prefix(work_root, package.name))}
    variables.update((f"prefix_{n}", str(install_prefix(work_root, n))) for n in package.needs)
    return variables


def run_build(package: Package, tree: Path, env: dict[str, str], log: Path,
              variables: dict[str, str]) -> None:
    """The package's build lines, in order, in its tree; their output goes to the log, a
    failure names the line and shows the log's end."""
    for line in package.build:
        command = line.format(**variables)
        with open(log, "a") as out:
            out.write(f"$ {command}\n")
            out.flush()
            proc = subprocess.run(["bash", "-c", command], cwd=tree, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise BuildError(f"`{command}` failed (exit {proc.returncode}): " + " | ".join(tail))


def find_programs(package: Package, tree: Path) -> list[str]:
    """The programs, as paths in the built tree: listed, or every executable ELF file in the
    glob's directory (not a shared library, not a native program set aside while a mode runs,
    not a build helper that `make` ran)."""
    if not package.programs_glob:
        return package.programs
    found = []
    for path in sorted(tree.glob(package.programs_glob)):
        if (path.is_file() and os.access(path, os.X_OK) and not path.name.endswith(
                (".so", ".native")) and path.name not in _BUILD_HELPERS
                and path.read_bytes()[:4] == b"\x7fELF"):
            found.append(str(path.relative_to(tree)))
    return found


_BUILD_HELPERS = {"make-prime-list"}  # coreutils: generates a header during the build


# --- testing -----------------------------------------------------------------------------

def run_tests(package: Package, tree: Path, mode: Mode) -> list[Check]:
    """The package's own tests against the mode's programs, by the kind its entry names."""
    test = package.test
    if "make_check" in test:
        return make_check(package, tree, mode)
    if "run_tests" in test:
        return counted_tests(test["run_tests"], sorted(tree.glob(test["files"])), mode)
    if "command" in test:
        return [suite_command(package, tree, mode)]
    if "cases" in test:
        return [run_case(case, tree, mode) for case in test["cases"]]
    raise ValueError(f"packages.toml: [{package.name}.test] names no kind of test")


@contextlib.contextmanager
def programs_in_tree(tree: Path, programs: list[str], mode: Mode):
    """Put the mode's programs where the package's own test suite expects them (the build
    tree), and the native ones back afterwards."""
    if mode.name == "native":
        yield
        return
    with programs_replaced({tree / program: mode.bindir / os.path.basename(program)
                            for program in programs}):
        yield


def make_check(package: Package, tree: Path, mode: Mode) -> list[Check]:
    """`make check` against the mode's programs; one check per automake test."""
    args = shlex.split(package.test["make_check"])
    if "tests_file" in package.test:
        listed = (CORPUS_DIR / package.test["tests_file"]).read_text().splitlines()
        args.append("TESTS=" + " ".join(t for t in listed if t and not t.startswith("#")))
    with programs_in_tree(tree, find_programs(package, tree), mode):
        # The automake harness runs tests in parallel under -j; each test has its own dir.
        # VERBOSE= : coreutils sets VERBOSE=yes, which traces every test (set -x) and dumps
        # the failed logs after the summary, where their own "FAIL: x" lines read as results.
        proc = mode.run(["make", MAKE_JOBS, "VERBOSE=", *args], cwd=tree, text=True,
                        timeout=MAKE_CHECK_TIMEOUT)
    checks = automake_results(proc.stdout)
    return checks or [Check("make check", False, (proc.stdout + proc.stderr)[-400:])]


def suite_command(package: Package, tree: Path, mode: Mode) -> Check:
    """A test suite that reports by its exit status only (`make check` of a hand-written
    Makefile), run in the tree with the mode's programs in it: one check."""
    command = package.test["command"]
    with programs_in_tree(tree, find_programs(package, tree), mode):
        proc = mode.run(["bash", "-c", command], cwd=tree, text=True, timeout=MAKE_CHECK_TIMEOUT)
    return Check(command, proc.returncode == 0,
                 f"exit {proc.returncode}: {(proc.stdout + proc.stderr)[-300:]}")


def counted_tests(command: str, files: list[Path], mode: Mode) -> list[Check]:
    """A test driver run on each file (on its stdin) that prints `N of M tests passed` and
    `Test #K: 'what' at line number L` per failure (jq's --run-tests); one check per case."""
    checks = []
    for test_file in files:
        with open(test_file) as f:
            proc = mode.run(["bash", "-c", command], stdin=f, text=True, cwd=test_file.parent)
        match = re.search(r"(\d+) of (\d+) tests passed", proc.stdout)
        if not match:
            checks.append(Check(test_file.name, False, (proc.stdout + proc.stderr)[-300:]))
            continue
        failed = {int(n): f"line {line}: {what}" for n, what, line in re.findall(
            r"^\*\*\* .*?Test #(\d+): '(.*)' at line number (\d+)", proc.stdout, re.M)}
        checks += [Check(f"{test_file.name} #{i}", i not in failed, failed.get(i, ""))
                   for i in range(1, int(match[2]) + 1)]
    return checks


def run_case(case: dict, tree: Path, mode: Mode) -> Check:
    """One command case: bash with pipefail, the mode's programs first on PATH; exit status 0
    and stdout as the case says."""
    variables = {"tree": str(tree), "corpus": str(CORPUS_DIR), "work": str(mode.work)}
    command = case["run"].format(**variables)
    proc = mode.run(["bash", "-o", "pipefail", "-c", command])
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
