"""The corpus runner: how it starts allexes in place of native programs, how it counts a
program as passing (no test of it regresses under alley), and the recipes' format."""

import subprocess
from pathlib import Path

import pytest
from conftest import probe_allexe

import corpus.run
from corpus.recipes import Mode, Package, load_packages, run_case
from corpus.run import (
    BUILT_STAMP,
    build,
    exercised,
    explained,
    fresh_stub,
    install,
    programs_failing,
    results_name,
    write_results,
)

PROGRAMS = ["sort", "sha1sum", "sha1sum-vec", "test", "seq"]


def test_a_test_is_the_program_its_file_name_starts_with():
    assert exercised("tests/misc/sort-float.sh", PROGRAMS) == ["sort"]
    assert exercised("tests/misc/sha1sum-vec.pl", PROGRAMS) == ["sha1sum-vec"]
    assert exercised("tests/misc/test.pl", PROGRAMS) == ["test"]
    assert exercised("tests/misc/tests-x.sh", PROGRAMS) == PROGRAMS  # "tests" is no program
    assert exercised("tests/misc/help-version.sh", PROGRAMS) == PROGRAMS


def test_only_regressions_from_native_count():
    outcomes = {
        "native": {"sort.pl": True, "seq.pl": True, "help-version.sh": False},
        "jit": {"sort.pl": True, "seq.pl": False, "help-version.sh": False},
        "static": {"sort.pl": False, "seq.pl": True, "help-version.sh": False},
    }
    assert programs_failing(PROGRAMS, outcomes) == {
        "seq": "jit: seq.pl fails (passes natively)",
        "sort": "static: sort.pl fails (passes natively)"}


def test_a_mode_that_never_ran_fails_every_program():
    outcomes = {"native": {"seq.pl": True}, "jit": {"seq.pl": True}}
    assert set(programs_failing(PROGRAMS, outcomes)) == set(PROGRAMS)


def test_the_platform_ir_mode_counts_and_reports_on_its_own(tmp_path):
    """`--modes native,platform-ir`: only that mode's regressions count, and its report is
    corpus/results-platform-ir.md (the default modes' report is left alone)."""
    outcomes = {"native": {"seq.pl": True, "sort.pl": True},
                "platform-ir": {"seq.pl": True, "sort.pl": False}}
    modes = ("native", "platform-ir")
    assert programs_failing(PROGRAMS, outcomes, modes) == {
        "sort": "platform-ir: sort.pl fails (passes natively)"}
    assert results_name(modes) == "results-platform-ir"
    result = {"package": "coreutils", "programs": 5, "allexes": 5, "ir_share": 1.0,
              "modes": {"native": {"passed": 2, "total": 2},
                        "platform-ir": {"passed": 1, "total": 2}},
              "failures": [], "programs_passing": 4}
    write_results({"coreutils": result}, tmp_path, modes)
    report = (tmp_path / "results-platform-ir.md").read_text()
    assert "| coreutils | C | 5 | 5 | 100% | 2/2 | 1/2 | 4 |" in report
    assert "tests: alltogether -platform-ir + allready" in report
    assert not (tmp_path / "results.md").exists()


def test_an_allexe_starts_under_the_callers_argv0(tmp_path, isolated_cache):
    """As binfmt_misc's preserve-argv0 would: the program sees the name it was called by, also
    through a symlink elsewhere (a build tree's `src/seq`), not the kernel's script path."""
    allexe = probe_allexe(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    install(bindir, "seq", allexe, fresh_stub(tmp_path))
    tree_link = tmp_path / "seq-in-tree"
    tree_link.symlink_to(bindir / "seq")
    for path in (bindir / "seq", tree_link):
        proc = subprocess.run(["seq", "args", "x"], executable=path, capture_output=True,
                              text=True)
        assert "argv[0]=seq\nargv[1]=args\nargv[2]=x\n" in proc.stdout, proc.stderr


def test_make_never_remakes_a_program_over_the_stub(tmp_path):
    """A mode's program in the build tree is a symlink to the stub, which is newer than the
    build: the package's `make check` keeps it (a remade native program would be tested)."""
    (tmp_path / "program.o").write_text("")
    (tmp_path / "Makefile").write_text("program: program.o\n\tcp program.o program\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    install(bindir, "program", tmp_path / "program.allexe", fresh_stub(tmp_path))
    (tmp_path / "program").symlink_to(bindir / "program")
    proc = subprocess.run(["make", "-q", "program"], cwd=tmp_path)
    assert proc.returncode == 0  # up to date


def test_failures_carry_their_known_reason():
    reasons = {"tests/misc/seq.pl": "why"}
    assert explained("jit: tests/misc/seq.pl: FAIL", reasons) == \
        "jit: tests/misc/seq.pl: FAIL — why"
    assert explained("seq: jit: tests/misc/seq.pl fails", reasons).endswith(" — why")
    assert explained("jit: tests/misc/seq.pl2: FAIL", reasons) == "jit: tests/misc/seq.pl2: FAIL"


def test_recipes_are_data(tmp_path):
    """packages.toml entries become Packages; a field the format lacks, or a `needs` that is
    not a corpus library, is refused naming the entry."""
    recipes = tmp_path / "packages.toml"
    recipes.write_text('[lib]\nlanguage = "C"\nlibrary = true\nbuild = ["make"]\n'
                       '[prog]\nlanguage = "C++"\nprograms = ["p"]\nneeds = ["lib"]\n'
                       'build = ["make"]\ntest.make_check = "check"\n')
    packages = load_packages(recipes)
    assert packages["prog"].needs == ["lib"] and packages["lib"].library
    recipes.write_text('[prog]\nlanguage = "C"\nbuild = []\nprogramz = ["p"]\n')
    with pytest.raises(ValueError, match=r"\[prog\].*programz"):
        load_packages(recipes)
    recipes.write_text('[prog]\nlanguage = "C"\nbuild = []\nneeds = ["zlib"]\n')
    with pytest.raises(ValueError, match=r"\[prog\] needs \['zlib'\]"):
        load_packages(recipes)


def test_a_build_made_otherwise_is_made_again(tmp_path, monkeypatch):
    """The stamp of a finished build names its recipe and platform: the same keep the build; a
    build whose executables were linked with other libc fixes, or made by other build lines, is
    unpacked and built again."""
    def fetch(name: str, dest: str) -> str:  # a fresh unpacking: the source only
        (tmp_path / "src" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name / "source.c").write_text("int main;\n")
        return str(tmp_path / "src" / name)

    monkeypatch.setattr(corpus.run, "fetch_source", fetch)
    package = Package(name="p", language="C", build=["echo built >> builds; cp source.c p"],
                      test={}, programs=["p"])
    tree = Path(fetch("p", ""))
    log = tmp_path / "build.log"
    build(package, tree, log, tmp_path)
    build(package, tree, log, tmp_path)
    assert (tree / "builds").read_text() == "built\n"
    (tree / BUILT_STAMP).write_text("allvm-libc-fixes-of-another-platform.o")
    build(package, tree, log, tmp_path)
    assert (tree / "builds").read_text() == "built\n"  # one build, in a new unpacking
    assert (tree / BUILT_STAMP).read_text() == corpus.run.build_identity(package)
    package.build.append("echo again >> builds")
    build(package, tree, log, tmp_path)
    assert (tree / "builds").read_text() == "built\nagain\n"


def test_command_cases(tmp_path):
    """A case runs with the mode's programs first on PATH; stdout and exit status decide."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "greet").write_text("#!/bin/sh\necho hello \"$@\"\n")
    (bindir / "greet").chmod(0o755)
    (tmp_path / "expected").write_text("hello file\n")
    mode = Mode("native", bindir, {"PATH": f"{bindir}:/usr/bin:/bin"}, tmp_path)
    cases = [{"name": "text", "run": "greet world", "stdout": "hello world\n"},
             {"name": "file", "run": "greet file", "stdout_file": "{work}/expected"},
             {"name": "contains", "run": "greet x | tr a-z A-Z", "stdout_contains": "HELLO"},
             {"name": "status", "run": "greet x; false"},
             {"name": "wrong", "run": "greet you", "stdout": "hello world\n"}]
    checks = [run_case(case, tmp_path, mode) for case in cases]
    assert [c.passed for c in checks] == [True, True, True, False, False]
    assert "expected b'hello world', got b'hello you'" in checks[-1].detail
