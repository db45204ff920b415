"""allvm-debian's package list (`-list FILE`, allvm.packaging.debian_list): its format and its
checks, the suite a listed package runs instead of Debian's, command cases, and what the build
learned for the corpus: `dpkg-buildpackage -B`, build directories under debian/, skipped tests
kept apart, a known failure's reason in report.md."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_tool

from allvm.errors import AllvmError
from allvm.packaging import debian_build as db
from allvm.packaging import debian_package as dp
from allvm.packaging.debian_list import load_list
from allvm.packaging.package_tests import automake_skipped, parse_results, run_case


@pytest.mark.parametrize("text, error", [
    ('[p]\nprogramz = ["x"]\n', r"\[p\]: unknown field 'programz'"),
    ('[p.test]\ncommand = "make check"\n', r"\[p\]\.test: no `why`"),
    ('[p.tree]\nprograms = ["x"]\n', r"\[p\]\.tree: no `why`"),
    ('[p.tree]\nprograms = ["x"]\nwhy = "w"\nbuild = "make"\n', r"\.tree: unknown field build"),
    ('[p.test]\nwhy = "w"\ntests_file = "t.txt"\n', r"tests_file without command"),
    ('[p.test]\nwhy = "w"\ncommand = "make"\ntests_file = "none.txt"\n',
     r"no file none.txt beside the list"),
    ('[p.test]\nwhy = "w"\n[[p.test.cases]]\nname = "n"\nrun = "r"\nstdot = "x"\n',
     r"a case has `name` and `run`.*got name, run, stdot"),
    ('[p\n', r"not a package list"),
    ('p = 1\n', r"`p` is not a package table"),
])
def test_a_malformed_list_is_refused_naming_the_entry(tmp_path, text, error):
    path = tmp_path / "list.toml"
    path.write_text(text)
    with pytest.raises(AllvmError, match=error):
        load_list(path)


def test_allvm_debian_refuses_a_bad_list_in_one_line(tmp_path):
    (tmp_path / "list.toml").write_text('[p.test]\ncommand = "make check"\n')
    for args in (["-list", tmp_path / "list.toml"], ["-list", tmp_path / "none.toml", "hello"]):
        proc = run_tool("allvm-debian", "build", "-o", tmp_path / "out", *args)
        assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith("allvm-debian: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_list_named_by_a_relative_path_gives_its_cases_an_absolute_one(tmp_path,
                                                                         monkeypatch):
    """Cases run in a scratch directory: {list} is the list's directory, made absolute."""
    (tmp_path / "list.toml").write_text("[p]\n")
    monkeypatch.chdir(tmp_path)
    assert load_list(Path("list.toml"))["p"].directory == tmp_path


def test_tests_file_becomes_one_tests_variable(tmp_path):
    (tmp_path / "t.txt").write_text("# a comment\na.sh\n\nb.sh\n")
    (tmp_path / "list.toml").write_text(
        '[p.test]\nwhy = "w"\ncommand = "make check"\ntests_file = "t.txt"\n')
    assert load_list(tmp_path / "list.toml")["p"].test_command == "make check TESTS='a.sh b.sh'"


# --- the suite, the cases ----------------------------------------------------------------------

def _tree(tmp_path: Path, rules: str) -> Path:
    (tmp_path / "debian").mkdir(parents=True)
    (tmp_path / "debian" / "rules").write_text(rules)
    return tmp_path


def test_the_suite_is_debians_unless_the_list_names_one(tmp_path):
    tree = _tree(tmp_path, "%:\n\tdh $@\noverride_dh_auto_test-arch:\n\tmake check\n")
    assert dp.suite_command(tree, None) == ["debian/rules", "override_dh_auto_test-arch"]
    (tmp_path / "list.toml").write_text(
        '[a.test]\nwhy = "w"\ncommand = "make -C b check"\n[b.test]\nwhy = "w"\ncommand = ""\n'
        '[c]\n')
    entries = load_list(tmp_path / "list.toml")
    assert dp.suite_command(tree, entries["a"]) == ["bash", "-c", "make -C b check"]
    assert dp.suite_command(tree, entries["b"]) is None  # cases only
    assert dp.suite_command(tree, entries["c"]) == ["debian/rules", "override_dh_auto_test-arch"]


def test_run_tests_runs_the_listed_command_then_the_cases(tmp_path):
    """The list's command in the build tree (its automake lines are the results), then each
    case in a scratch directory with the mode's programs first on PATH."""
    tree = _tree(tmp_path / "tree", "%:\n\tdh $@\n")
    (tree / "suite.sh").write_text("echo 'PASS: one'; echo 'SKIP: two'; echo 'FAIL: three'\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "greet").write_text("#!/bin/sh\necho hello \"$@\"\n")
    (bindir / "greet").chmod(0o755)
    (tmp_path / "list.toml").write_text(
        '[p.test]\nwhy = "w"\ncommand = "sh suite.sh"\n'
        '[[p.test.cases]]\nname = "greet"\nrun = "greet world"\nstdout = "hello world\\n"\n'
        '[[p.test.cases]]\nname = "where"\nrun = "test $PWD = {work} && echo ok"\n'
        'stdout = "ok\\n"\n')
    entry = load_list(tmp_path / "list.toml")["p"]
    out = tmp_path / "out"
    out.mkdir()
    outcome = dp.run_tests("native", tree, out, bindir, {"PATH": "/usr/bin:/bin"}, {}, entry)
    assert [(c.name, c.passed) for c in outcome.checks] == [
        ("one", True), ("three", False), ("greet", True), ("where", True)], outcome.checks
    assert outcome.skipped_names == ["two"]
    assert "=== tests: native ===" in (out / "build.log").read_text()


def test_command_cases(tmp_path):
    """A case runs with the mode's programs first on PATH; stdout and exit status decide."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "greet").write_text("#!/bin/sh\necho hello \"$@\"\n")
    (bindir / "greet").chmod(0o755)
    (tmp_path / "expected").write_text("hello file\n")
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    cases = [{"name": "text", "run": "greet world", "stdout": "hello world\n"},
             {"name": "file", "run": "greet file", "stdout_file": "{work}/expected"},
             {"name": "contains", "run": "greet x | tr a-z A-Z", "stdout_contains": "HELLO"},
             {"name": "status", "run": "greet x; false"},
             {"name": "pipefail", "run": "false | greet x"},
             {"name": "wrong", "run": "greet you", "stdout": "hello world\n"}]
    checks = [run_case(case, {"work": str(tmp_path)}, env, tmp_path) for case in cases]
    assert [c.passed for c in checks] == [True, True, True, False, False, False]
    assert "expected b'hello world', got b'hello you'" in checks[-1].detail


def test_skipped_tests_are_kept_apart():
    output = "PASS: a\nSKIP: b\nFAIL: c\n"
    assert [c.name for c in parse_results(output, 1, "make check")] == ["a", "c"]
    assert automake_skipped(output) == ["b"]


# --- the build: what dpkg-buildpackage builds, where the tree's programs are -------------------

def test_architecture_all_packages_are_not_built_when_others_are(tmp_path):
    control = tmp_path / "debian" / "control"
    control.parent.mkdir()
    control.write_text("Source: gzip\n\nPackage: gzip\nArchitecture: any\n\n"
                       "Package: gzip-win32\nArchitecture: all\n")
    assert db.binary_option(tmp_path) == "-B"
    assert db.binary_packages(tmp_path) == ["gzip", "gzip-win32"]
    control.write_text("Source: doc\n\nPackage: doc\nArchitecture: all\n")
    assert db.binary_option(tmp_path) == "-b"
    control.write_text("Source: s\n\nPackage: s\nArchitecture: linux-any hurd-i386\n")
    assert db.binary_option(tmp_path) == "-B"


def test_build_directories_under_debian_are_the_trees_staging_ones_are_not(tmp_path):
    """xz-utils builds in debian/normal-build: its programs there are replaced for the tests;
    debian/tmp and debian/PACKAGE (what dh_install copies into the .deb) are not."""
    tree = tmp_path / "tree"
    (tree / "debian").mkdir(parents=True)
    (tree / "debian" / "control").write_text("Source: x\n\nPackage: x-utils\n")
    (tree / "x.c").write_text("int main(void) { return 0; }\n")
    places = ["debian/normal-build/src/x", "debian/tmp/usr/bin/x", "debian/x-utils/usr/bin/x"]
    for place in places:
        (tree / place).parent.mkdir(parents=True, exist_ok=True)
    proc = run_tool("allcc", "x.c", "-o", places[0], cwd=tree,
                    env={**os.environ, "ALLVM_CC_TARGET": db.TARGET})
    assert proc.returncode == 0, proc.stderr
    for place in places[1:]:  # installed copies: the same translation units
        shutil.copy2(tree / places[0], tree / place)
    programs = {"x": (tree / places[2], tmp_path / "x.allexe")}
    assert dp.tree_programs(tree, programs) == {tree / places[0]: "x"}


def test_report_md_gives_the_lists_reason_of_a_known_failure(tmp_path):
    from allvm.packaging.debian_report import write_report_md

    report = {**dp.new_report("sed"), "built": True, "languages": ["C"],
              "tests": {m: _mode(["panic-tests.sh"]) for m in dp.MODES},
              "known_failures": {"panic-tests.sh": "run as root"}}
    (tmp_path / "sed").mkdir()
    (tmp_path / "sed" / "report.json").write_text(json.dumps(report))
    assert "  - known: panic-tests.sh — run as root" in write_report_md(tmp_path).read_text()



def _mode(failed=(), skipped=(), passed=2) -> dict:
    return {"passed": passed, "failed": len(failed), "failed_names": list(failed),
            "skipped_names": list(skipped), "seconds": 1.0}


def test_debians_symbols_files_never_fail_the_build(tmp_path):
    """A C++ library built against zig's libc++ exports operator new and delete, which
    Debian's symbols file (its libstdc++ build's ABI) lacks: tinyxml2's `dh_makeshlibs -- -c4`
    would fail the build. The variable overrides -c: it reports, never fails."""
    assert db.build_env(tmp_path, 1, check=False)["DPKG_GENSYMBOLS_CHECK_LEVEL"] == "0"
    symbols = tmp_path / "libx.symbols"
    symbols.write_text("libx.so.1 libx1 #MINVER#\n f@Base 1.0\n")
    (tmp_path / "x.c").write_text("void f(void) {}\nvoid g(void) {}\n")
    proc = run_tool("allcc", "-shared", "-fPIC", "-Wl,-soname,libx.so.1", "x.c", "-o",
                    "libx.so.1", cwd=tmp_path, env={**os.environ, "ALLVM_CC_TARGET": db.TARGET})
    assert proc.returncode == 0, proc.stderr
    args = ["dpkg-gensymbols", "-c4", "-plibx1", "-v1.0", f"-e{tmp_path / 'libx.so.1'}",
            f"-I{symbols}", f"-O{tmp_path / 'out.symbols'}"]
    strict = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "DPKG_GENSYMBOLS_CHECK_LEVEL": "4"})
    assert strict.returncode != 0 and "new symbols" in strict.stderr  # g is new
    ours = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path,
                          env=db.build_env(tmp_path, 1, check=False))
    assert ours.returncode == 0, ours.stderr


def test_a_version_script_may_name_a_symbol_the_library_lacks(tmp_path):
    """As with GNU ld, for the gnu target: zlib's configure probes shared libraries with its
    whole zlib.map, lua5.4's version script names _IO_stdin_used; lld alone refuses both."""
    (tmp_path / "v.c").write_text("int f(void) { return 1; }\n")
    (tmp_path / "v.map").write_text("V { global: f; _IO_stdin_used; local: *; };\n")
    link = ["-shared", "-fPIC", "v.c", "-Wl,--version-script=v.map", "-o", "libv.so"]
    proc = run_tool("allcc", *link, cwd=tmp_path, env={**os.environ, "ALLVM_CC_TARGET": db.TARGET})
    assert proc.returncode == 0, proc.stderr
    proc = run_tool("allcc", "v.c", "-c", "-fPIC", "-o", "v.o", cwd=tmp_path,  # a link of objects
                    env={**os.environ, "ALLVM_CC_TARGET": db.TARGET})
    assert proc.returncode == 0, proc.stderr
    proc = run_tool("allcc", "-shared", "v.o", "-Wl,--version-script=v.map", "-o", "libv2.so",
                    cwd=tmp_path, env={**os.environ, "ALLVM_CC_TARGET": db.TARGET})
    assert proc.returncode == 0, proc.stderr


def test_configure_may_run_as_root(tmp_path):
    """gnulib's configure (coreutils) refuses root unless FORCE_UNSAFE_CONFIGURE is set."""
    assert db.build_env(tmp_path, 1, check=False)["FORCE_UNSAFE_CONFIGURE"] == "1"


def test_no_multilib_packages_are_built(tmp_path):
    """zlib's lib32z1 (`gcc -m32`) is left out by Debian's own profile for it, nobiarch."""
    (tmp_path / "debian").mkdir()
    (tmp_path / "debian" / "control").write_text(
        "Source: zz\nBuild-Depends: debhelper-compat (= 13)\n\nPackage: z1\n"
        "Architecture: any\nDescription: d\n d\n\nPackage: lib32z1\nArchitecture: any\n"
        "Build-Profiles: <!nobiarch>\nDescription: d\n d\n")
    env = db.build_env(tmp_path, 1, check=False)
    listed = subprocess.run(["dh_listpackages"], cwd=tmp_path, env=env, capture_output=True,
                            text=True)
    assert listed.stdout.split() == ["z1"], listed.stderr
    assert "lib32z1" in subprocess.run(["dh_listpackages"], cwd=tmp_path, capture_output=True,
                                       text=True).stdout  # without the profile
