"""The corpus as a package list (corpus/packages.toml) for `allvm-debian build -list`: what
its entries say, how the allexes are started in the build tree, and corpus/results.md's count
of programs passing (no test of theirs regresses on alley's paths)."""

import json
import subprocess

from conftest import probe_allexe

from allvm.packaging.debian_list import load_list
from allvm.packaging.package_tests import fresh_stub, install
from corpus.results import LIST, exercised, programs_failing, write_results

PROGRAMS = ["sort", "sha1sum", "sha1sum-vec", "test", "seq"]


def test_the_corpus_list_says_only_what_a_generic_build_cannot_know():
    entries = load_list(LIST)
    assert len(entries) == 22 and "bzip2" in entries and "coreutils" in entries
    assert not entries["bzip2"].test and not entries["bzip2"].tree  # the generic build alone
    for entry in entries.values():  # every override carries its reason
        assert not entry.test or entry.test["why"], entry.name
        assert not entry.tree or entry.tree["why"], entry.name
    coreutils = entries["coreutils"].test_command
    assert coreutils.startswith("make -j$(nproc) check VERBOSE= SUBDIRS=. MAKEINFO=true TESTS=")
    assert "tests/misc/seq.pl" in coreutils and "# " not in coreutils  # comments left out
    assert entries["sqlite3"].test_command == "" and len(entries["sqlite3"].cases) == 3
    assert entries["tinyxml2"].tree_programs == ["build/xmltest"]


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


def test_a_test_is_the_program_its_file_name_starts_with():
    assert exercised("tests/misc/sort-float.sh", PROGRAMS) == ["sort"]
    assert exercised("tests/misc/sha1sum-vec.pl", PROGRAMS) == ["sha1sum-vec"]
    assert exercised("tests/misc/test.pl", PROGRAMS) == ["test"]
    assert exercised("tests/misc/tests-x.sh", PROGRAMS) == PROGRAMS  # "tests" is no program
    assert exercised("tests/misc/help-version.sh", PROGRAMS) == PROGRAMS


def _mode(failed=(), skipped=(), passed=2) -> dict:
    return {"passed": passed, "failed": len(failed), "failed_names": list(failed),
            "skipped_names": list(skipped), "seconds": 1.0}


def test_only_regressions_from_native_count():
    tests = {"native": _mode(["help-version.sh"], ["csplit.sh"]),
             "jit": _mode(["help-version.sh", "seq.pl"], ["csplit.sh", "sort.pl"]),
             "static": _mode(["help-version.sh"])}
    assert programs_failing(PROGRAMS, tests) == {
        "seq": "jit: seq.pl fails (passes natively)",
        "sort": "jit: sort.pl skipped (passes natively)"}


def test_a_mode_that_never_ran_fails_every_program():
    assert set(programs_failing(PROGRAMS, {"native": _mode(), "jit": _mode()})) == set(PROGRAMS)


def test_results_md_counts_programs_and_gives_reasons(tmp_path):
    (tmp_path / "list.toml").write_text(
        '[seqs]\nnotes = "a note"\n[seqs.reasons]\n"seq.pl" = "a known reason"\n[missing]\n')
    entries = load_list(tmp_path / "list.toml")
    report = {"package": "seqs", "languages": ["C"], "built": True, "error": None,
              "executables": 2, "allexes": 2,
              "programs": [{"name": "seq", "ir_share": 1.0}, {"name": "sort", "ir_share": 0.5}],
              "tests": {"native": _mode(), "jit": _mode(["seq.pl"], passed=1),
                        "static": _mode()}}
    (tmp_path / "out" / "seqs").mkdir(parents=True)
    (tmp_path / "out" / "seqs" / "report.json").write_text(json.dumps(report))
    [row] = write_results(tmp_path / "out", entries, tmp_path / "results")
    assert (row["passing"], row["failing"]) == (1, {"seq": "jit: seq.pl fails (passes "
                                                           "natively)"})
    table = (tmp_path / "results" / "results.md").read_text()
    assert "| seqs | C | 2 | 2 | 75% | 2/2 | 1/2 | 2/2 | 1 |" in table
    assert "**1 (50%)**" in table and "- **seqs**: a note" in table
    assert "  - jit: seq.pl — a known reason" in table
    assert json.loads((tmp_path / "results" / "results.json").read_text()) == [row]
