"""The corpus: Debian source packages, how each is built with allcc, and its own tests.

Each recipe names its programs (paths in the build tree) and runs the package's tests against
one set of those programs at a time: the native build, or the extracted allexes under alley
(JIT path or static path). A test is one check with a name, a result and, if it failed, why.
"""

import contextlib
import filecmp
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from allvm.packaging.debian import fetch_source

CORPUS_DIR = Path(__file__).resolve().parent
TEST_TIMEOUT = 600
MAKE_CHECK_TIMEOUT = 3 * 3600
MAKE_JOBS = f"-j{os.cpu_count() or 1}"


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class Mode:
    """One way of running the programs: `bindir/<program>` is the program to run."""

    name: str
    bindir: Path
    env: dict[str, str]
    work: Path  # scratch directory for this mode's test outputs

    def prog(self, name: str) -> str:
        return str(self.bindir / name)

    def run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        if "stdout" in kwargs:
            kwargs.setdefault("stderr", subprocess.PIPE)
        else:
            kwargs.setdefault("capture_output", True)
        kwargs.setdefault("timeout", TEST_TIMEOUT)
        kwargs.setdefault("cwd", self.work)
        return subprocess.run(args, env=self.env, **kwargs)


def run_step(args: list[str], cwd: Path, env: dict[str, str], log: Path, what: str) -> None:
    """A build step; its output goes to the package's log; failure names the step."""
    with open(log, "a") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise BuildError(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail))


class BuildError(Exception):
    pass


@contextlib.contextmanager
def programs_in_tree(tree: Path, programs: list[str], mode: Mode):
    """Put the mode's programs where the package's own test suite expects them (the build
    tree), and the native ones back afterwards."""
    if mode.name == "native":
        yield
        return
    moved = []
    try:
        for program in programs:
            path = tree / program
            os.rename(path, f"{path}.native")
            moved.append(path)
            os.symlink(mode.prog(os.path.basename(program)), path)
        yield
    finally:
        for path in moved:
            os.unlink(path)
            os.rename(f"{path}.native", path)


@dataclass
class Package:
    name: str  # the Debian source package
    programs: list[str]  # executables, as paths in the build tree
    notes: str = ""
    build_env: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # why a test fails, by its name

    def build(self, tree: Path, env: dict[str, str], log: Path) -> None:
        raise NotImplementedError

    def find_programs(self, tree: Path) -> list[str]:
        """The programs, as paths in the built tree (most packages list them up front)."""
        return self.programs

    def tests(self, tree: Path, mode: Mode) -> list[Check]:
        raise NotImplementedError


def same_file(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and filecmp.cmp(a, b, shallow=False)


# --- bzip2 -------------------------------------------------------------------------------


class Bzip2(Package):
    def build(self, tree, env, log):
        # Debian's Makefile links bzip2 against libbz2.so; the platform is static musl, so
        # bzip2 itself is linked with LDFLAGS=-static (against libbz2.a).
        run_step(["make", "CC=allcc", "libbz2.a", "libbz2.so", "bzip2recover"], tree, env, log,
                 "make")
        run_step(["make", "CC=allcc", "LDFLAGS=-static", "bzip2"], tree, env, log, "make bzip2")

    def tests(self, tree, mode):
        """The Makefile's `test` target: compress each sample, decompress each .bz2, compare.

        (bzip2recover has no test of its own, and cannot pass one on musl: at EOF it checks
        `errno != 0` (bzip2recover.c:209), which musl's stdio leaves set — natively too.)"""
        checks = []
        # (flags, input, expected output): Debian's own sample files, both directions
        cases = [("-1", "sample1.ref", "sample1.bz2"), ("-2", "sample2.ref", "sample2.bz2"),
                 ("-3", "sample3.ref", "sample3.bz2"), ("-d", "sample1.bz2", "sample1.ref"),
                 ("-d", "sample2.bz2", "sample2.ref"), ("-ds", "sample3.bz2", "sample3.ref")]
        for flags, given, expected in cases:
            out = mode.work / f"{given}{flags}.out"
            with open(tree / given, "rb") as src, open(out, "wb") as dst:
                proc = mode.run([mode.prog("bzip2"), flags], stdin=src, stdout=dst)
            checks.append(Check(f"bzip2 {flags} {given}",
                                proc.returncode == 0 and same_file(out, tree / expected),
                                proc.stderr.decode(errors="replace")[-200:]))
        return checks


# --- zlib --------------------------------------------------------------------------------


class Zlib(Package):
    def build(self, tree, env, log):
        run_step(["./configure", "--static"], tree, {**env, "CC": "allcc"}, log, "configure")
        run_step(["make", "example", "minigzip"], tree, env, log, "make")

    def tests(self, tree, mode):
        """zlib's `make test` (example; hello world through minigzip and back), plus
        minigzip on real files both ways, checked against the system's gzip."""
        checks = []
        proc = mode.run([mode.prog("example"), str(mode.work / "foo.gz")])
        checks.append(Check("example", proc.returncode == 0 and b"zlib version" in proc.stdout,
                            (proc.stdout + proc.stderr).decode(errors="replace")[-300:]))
        gz = mode.run([mode.prog("minigzip")], input=b"hello world\n").stdout
        back = mode.run([mode.prog("minigzip"), "-d"], input=gz)
        checks.append(Check("minigzip hello world", back.stdout == b"hello world\n"))
        for name in ("ChangeLog", "zlib.h"):
            data = (tree / name).read_bytes()
            packed = mode.run([mode.prog("minigzip"), "-9"], input=data).stdout
            system = subprocess.run(["gzip", "-dc"], input=packed, capture_output=True)
            checks.append(Check(f"minigzip -9 {name} | gzip -d", system.stdout == data))
            unpacked = mode.run([mode.prog("minigzip"), "-d"],
                                input=subprocess.run(["gzip", "-c"], input=data,
                                                     capture_output=True).stdout)
            checks.append(Check(f"gzip {name} | minigzip -d", unpacked.stdout == data))
        return checks


# --- lua5.4 ------------------------------------------------------------------------------


class Lua(Package):
    """Built the way debian/rules does: a libtool generated in debian/libtool, then the
    Makefile's `linux-noreadline` (there is no readline on the static musl platform)."""

    def build(self, tree, env, log):
        libtool_dir = tree / "debian" / "libtool"
        libtool_dir.mkdir(exist_ok=True)
        shutil.copy(tree / "debian" / "configure.ac", libtool_dir)
        run_step(["autoreconf", "-f", "-i"], libtool_dir, {**env, "LIBTOOLIZE": "libtoolize -i"},
                 log, "autoreconf (debian/libtool)")
        # Static libraries only: the platform is static musl.
        run_step(["./configure", "--disable-shared", "CC=allcc", "CXX=allc++"], libtool_dir,
                 env, log,
                 "configure (debian/libtool)")
        (tree / "src" / "lua5.4-deb-multiarch.h").write_text(  # as debian/rules writes it
            "#ifndef _LUA_DEB_MULTIARCH_\n#define _LUA_DEB_MULTIARCH_\n"
            '#define DEB_HOST_MULTIARCH "x86_64-linux-musl"\n#endif\n')
        run_step(["make", "linux-noreadline", "MYLIBS=", f"LIBTOOL={libtool_dir}/libtool",
                  "CC=allcc -std=gnu99", "CXX=allc++"], tree / "src", env, log,
                 "make linux-noreadline")

    def tests(self, tree, mode):
        """A Lua script of ours (corpus/lua_smoke.lua, output in lua_smoke.expected): run
        directly, and precompiled with luac."""
        script = CORPUS_DIR / "lua_smoke.lua"
        expected = (CORPUS_DIR / "lua_smoke.expected").read_text()
        checks = []
        proc = mode.run([mode.prog("lua"), str(script)], text=True)
        checks.append(Check("lua lua_smoke.lua",
                            proc.returncode == 0 and proc.stdout == expected,
                            _diff(expected, proc.stdout, proc.stderr)))
        chunk = mode.work / "smoke.luac"
        compiled = mode.run([mode.prog("luac"), "-o", str(chunk), str(script)], text=True)
        proc = mode.run([mode.prog("lua"), str(chunk)], text=True)
        checks.append(Check("luac + lua smoke.luac",
                            compiled.returncode == 0 and proc.stdout == expected,
                            compiled.stderr + _diff(expected, proc.stdout, proc.stderr)))
        listing = mode.run([mode.prog("luac"), "-l", "-p", str(script)], text=True)
        checks.append(Check("luac -l -p", listing.returncode == 0 and "main <" in listing.stdout,
                            listing.stderr))
        return checks


def _diff(expected: str, got: str, stderr: str) -> str:
    if expected == got:
        return stderr[-300:]
    for n, (a, b) in enumerate(zip(expected.splitlines(), got.splitlines(), strict=False)):
        if a != b:
            return f"line {n + 1}: expected {a!r}, got {b!r}; {stderr[-200:]}"
    return f"output length differs; {stderr[-300:]}"


# --- make check packages (gzip, coreutils) -----------------------------------------------


def parse_automake_summary(text: str) -> dict[str, int]:
    """The counts of an automake test-suite summary (`# PASS: 20`)."""
    return {k: int(v) for k, v in re.findall(r"^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR): +"
                                             r"(\d+)", text, re.M)}


def make_check(tree: Path, mode: Mode, programs: list[str], args: list[str]) -> list[Check]:
    """Run the package's `make check` against the mode's programs; one check per test."""
    with programs_in_tree(tree, programs, mode):
        # The automake harness runs tests in parallel under -j; each test has its own dir.
        # VERBOSE= : coreutils sets VERBOSE=yes, which traces every test (set -x) and dumps
        # the failed logs after the summary, where their own "FAIL: x" lines read as results.
        proc = mode.run(["make", MAKE_JOBS, "VERBOSE=", *args], cwd=tree, text=True,
                        timeout=MAKE_CHECK_TIMEOUT)
    # automake may print a failing test's line twice: one result per test name.
    results = dict((name, kind) for kind, name in
                   re.findall(r"^(PASS|FAIL|XFAIL|XPASS|ERROR|SKIP): (\S+)", proc.stdout, re.M))
    checks = [Check(name, kind in ("PASS", "XFAIL"), kind) for name, kind in results.items()
              if kind != "SKIP"]
    if not checks:
        checks.append(Check("make check", False, (proc.stdout + proc.stderr)[-400:]))
    return checks


class Gzip(Package):
    def build(self, tree, env, log):
        run_step(["./configure", "CC=allcc"], tree, env, log, "configure")
        run_step(["make", *self.MAKE_ARGS], tree, env, log, "make")

    # The patched sources look newer than the shipped manual: no makeinfo needed for a build.
    MAKE_ARGS = ["MAKEINFO=true"]

    def tests(self, tree, mode):
        return make_check(tree, mode, self.programs, ["check", *self.MAKE_ARGS])


# --- sqlite3 -----------------------------------------------------------------------------


class Sqlite(Package):
    def build(self, tree, env, log):
        run_step(["./configure", "CC=allcc", "--disable-shared", "--disable-tcl",
                  "--disable-readline", "--disable-editline", "--disable-load-extension"],
                 tree, env, log, "configure")
        run_step(["make", "sqlite3"], tree, env, log, "make sqlite3")

    def tests(self, tree, mode):
        """An SQL workload of ours (corpus/sqlite_workload.sql, output in
        sqlite_workload.expected), in memory and on a database file reopened afterwards."""
        script = (CORPUS_DIR / "sqlite_workload.sql").read_text()
        expected = (CORPUS_DIR / "sqlite_workload.expected").read_text()
        checks = []
        proc = mode.run([mode.prog("sqlite3"), ":memory:"], input=script, text=True)
        checks.append(Check("workload :memory:", proc.stdout == expected,
                            _diff(expected, proc.stdout, proc.stderr)))
        db = mode.work / "workload.db"
        if db.exists():
            db.unlink()
        proc = mode.run([mode.prog("sqlite3"), str(db)], input=script, text=True)
        checks.append(Check("workload on a file", proc.stdout == expected,
                            _diff(expected, proc.stdout, proc.stderr)))
        again = mode.run([mode.prog("sqlite3"), str(db), "PRAGMA integrity_check;",
                          "SELECT count(*) FROM orders;"], text=True)
        checks.append(Check("reopen + integrity_check", again.stdout.split() == ["ok", "400"],
                            again.stdout + again.stderr))
        return checks


# --- jq ----------------------------------------------------------------------------------


class Jq(Package):
    """jq's regular expressions come from oniguruma (Debian's libonig): built with allcc
    too, as a static library, so its code is IR in jq's allexe as well."""

    def build(self, tree, env, log):
        onig = Path(fetch_source("libonig", str(tree.parent)))
        prefix = tree.parent / "libonig-install"
        run_step(["autoreconf", "-f", "-i"], onig, env, log, "autoreconf (libonig)")
        run_step(["./configure", "CC=allcc", "--disable-shared", f"--prefix={prefix}"], onig,
                 env, log, "configure (libonig)")
        run_step(["make", "install"], onig, env, log, "make install (libonig)")
        run_step(["autoreconf", "-f", "-i"], tree, env, log, "autoreconf")
        run_step(["./configure", "CC=allcc", "--disable-shared", "--disable-docs",
                  "--disable-maintainer-mode", f"--with-oniguruma={prefix}"], tree, env, log,
                 "configure")
        run_step(["make"], tree, env, log, "make")

    def tests(self, tree, mode):
        """jq's own test files, one check per test case (`jq --run-tests`)."""
        checks = []
        for test_file in sorted((tree / "tests").glob("*.test")):
            with open(test_file) as f:
                proc = mode.run([mode.prog("jq"), "--run-tests"], stdin=f, text=True,
                                cwd=tree / "tests")
            match = re.search(r"(\d+) of (\d+) tests passed", proc.stdout)
            if not match:
                checks.append(Check(test_file.name, False, (proc.stdout + proc.stderr)[-300:]))
                continue
            failed = {int(n): f"line {line}: {prog}" for n, prog, line in re.findall(
                r"^\*\*\* .*?Test #(\d+): '(.*)' at line number (\d+)", proc.stdout, re.M)}
            for i in range(1, int(match[2]) + 1):
                checks.append(Check(f"{test_file.name} #{i}", i not in failed, failed.get(i, "")))
        return checks


# --- coreutils -------------------------------------------------------------------------

class Coreutils(Package):
    """All of src/'s programs. `make check` is long (hundreds of shell tests, each running
    programs many times); the corpus runs the tests listed in corpus/coreutils_tests.txt."""

    CONFIGURE_FLAGS = ["--enable-install-program=arch", "--disable-nls", "--without-selinux",
                       "--without-openssl", "--without-gmp"]

    def build(self, tree, env, log, cc="allcc", extra_flags=()):
        """configure and make with CC (another CC and flags: the benchmark's other builds)."""
        run_step(["./configure", f"CC={cc}", *self.CONFIGURE_FLAGS, *extra_flags], tree,
                 {**env, "FORCE_UNSAFE_CONFIGURE": "1"}, log, "configure")  # we are root
        run_step(["make", MAKE_JOBS, *Gzip.MAKE_ARGS], tree, env, log, "make")

    def find_programs(self, tree):
        """Every executable ELF file that `make` built in src/: not the build helper, not
        stdbuf's preload library, not a native program set aside while a mode runs."""
        return sorted(f"src/{p.name}" for p in (tree / "src").iterdir()
                      if p.is_file() and os.access(p, os.X_OK) and p.name != "make-prime-list"
                      and not p.name.endswith((".so", ".native"))
                      and p.read_bytes()[:4] == b"\x7fELF")

    def tests(self, tree, mode):
        tests = " ".join(line for line in (CORPUS_DIR / "coreutils_tests.txt").read_text()
                         .splitlines() if line and not line.startswith("#"))
        return make_check(tree, mode, self.find_programs(tree),
                          ["check", *Gzip.MAKE_ARGS, f"TESTS={tests}", "SUBDIRS=."])


_MUSL = "fails natively too: the static musl platform"
_SIGPIPE = ("skipped under alley: a caller's ignored SIGPIPE does not reach the program (Python "
            "ignores SIGPIPE itself at start-up, so alley cannot tell and restores the default)")
COREUTILS_REASONS = {
    "tests/misc/help-version.sh": f"{_MUSL} (`users` finds no utmp)",
    "tests/misc/xstrtol.pl": _MUSL,
    "tests/misc/sort.pl": _MUSL,
    "tests/misc/sort-debug-keys.sh": _MUSL,
    "tests/misc/sort-debug-warn.sh": _MUSL,
    "tests/misc/chroot-credentials.sh": _MUSL,
    "tests/misc/csplit-heap.sh": "skipped on the JIT path: the test's `ulimit -v` probe fails, "
                                 "as linking the cached objects (lld) needs more address space",
    "tests/misc/sort-merge-fdlimit.sh": "JIT path: under `ulimit -n 6` the link's subprocess "
                                        "needs more descriptors (Too many open files)",
    "tests/misc/env-signal-handler.sh": _SIGPIPE,
    "tests/misc/seq-epipe.sh": _SIGPIPE,
    "tests/misc/stdbuf.sh": "stdbuf looks for libstdbuf.so beside its own executable "
                            "(/proc/self/exe), which under alley is the cached binary",
    "tests/misc/truncate-owned-by-other.sh": "skipped under alley: the test runs the program "
                                             "as user nobody, who may not execute this "
                                             "install's Python (under /root)",
}

PACKAGES = {
    p.name: p for p in [
        Bzip2("bzip2", ["bzip2", "bzip2recover"],
              notes="bzip2recover: no package test (fails natively on musl: errno at EOF)"),
        Zlib("zlib", ["example", "minigzip"]),
        Lua("lua5.4", ["src/lua", "src/luac"],
            notes="Debian's build also compiles liblua as C++ (allc++); lua/luac use the C one"),
        Gzip("gzip", ["gzip"]),
        Sqlite("sqlite3", ["sqlite3"]),
        Jq("jq", ["jq"],
           notes="oniguruma (Debian's libonig) built with allcc too: it is IR in jq's allexe"),
        Coreutils("coreutils", [], reasons=COREUTILS_REASONS),
    ]
}
