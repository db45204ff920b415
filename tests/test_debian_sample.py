"""`allvm-debian sample`: the seeded rule that picks source packages nobody chose
(allvm/packaging/debian_sample.py), on the Sources index apt already has (the mirror is asked
only whether a chosen source is served; no package builds), its bad input's one line, and the
sample run's report pieces: a source the mirror does not serve is redrawn, and in a build
`unavailable`, not a build failure."""

import functools
import json
import subprocess

import pytest
from conftest import run_tool

from allvm.errors import AllvmError
from allvm.packaging import debian
from allvm.packaging import debian_build as db
from allvm.packaging import debian_sample as ds
from allvm.packaging.debian import sources_index
from allvm.packaging.debian_report import MODES, write_report_md


@pytest.fixture(scope="module")
def index():
    """The real index: deb-src is set up first where it is not (Debian's registry is
    reachable here and in CI)."""
    return ds.read_index(sources_index())


@pytest.fixture(scope="module")
def by_name(index):
    return {s["Package"]: s for s in ds.stanzas(index)}


def sample_cli(*args):
    """The names printed, checked against the note of the skipped ones on stderr."""
    proc = run_tool("allvm-debian", "sample", *args)
    assert proc.returncode == 0, proc.stderr
    skipped = proc.stderr.removeprefix("allvm-debian: skipped ").split(" ", 1)
    assert proc.stderr == "" or skipped[1].startswith("the mirror does not serve: "), proc.stderr
    return proc.stdout.splitlines()


def served_all(name):
    return True


served_here = functools.cache(debian.source_served)  # the real mirror, each name asked once


def test_deterministic_for_a_seed_and_n_names(index):
    first = sample_cli("-n", "4", "-seed", "7")
    chosen, unserved = ds.sample(4, 7, index, served_here)
    assert first == chosen and len(first) == len(set(first)) == 4
    assert ds.sample(4, 8, index, served_here)[0] != first
    assert ds.sample(2, 7, index, served_here)[0] == first[:2]  # a prefix of the larger draw
    # the seeded order, with what the mirror does not serve left out
    drawn = ds.sample(len(chosen) + len(unserved), 7, index, served_all)[0]
    assert [name for name in drawn if name not in unserved] == first


def test_sources_the_mirror_does_not_serve_are_redrawn_and_named(index):
    order = ds.sample(8, 5, index, served_all)[0]
    missing = {order[1], order[4]}
    chosen, unserved = ds.sample(6, 5, index, lambda name: name not in missing)
    assert chosen == [name for name in order if name not in missing]
    assert unserved == [order[1], order[4]]
    with pytest.raises(ds.SampleError, match="-n: only 0 of the .* served by the mirror"):
        ds.sample(1, 5, "Package: p\n" + STANZA_TEXT, lambda name: False)


def test_the_mirror_is_asked_file_by_file(monkeypatch):
    assert debian.source_served("rs")  # a small source the mirror serves
    listing = ("'http://deb.debian.org/debian/pool/main/r/rs/rs_20200313-1.dsc' x.dsc 1 SHA256:0\n"
               "'http://deb.debian.org/debian/pool/main/z/zz-allvm-none/none.orig.tar.xz' "
               "none.orig.tar.xz 1 SHA256:0\n")
    real_run = subprocess.run

    def print_uris(command, **kwargs):
        if command[:3] == ["apt-get", "source", "--print-uris"]:
            return subprocess.CompletedProcess(command, 0, listing, "")
        return real_run(command, **kwargs)

    monkeypatch.setattr(debian.subprocess, "run", print_uris)
    assert not debian.source_served("rs")  # the second file: a real 404 of the real mirror


def test_every_chosen_package_meets_each_criterion(index, by_name):
    chosen = ds.sample(40, 3, index, served_all)[0]
    for name in chosen:
        stanza = by_name[name]
        assert ds.rejection(stanza) is None, name
        assert set(stanza["Architecture"].split()) & ds.ARCHITECTURES, name
        clauses = ds.build_depends(stanza)
        names = {n for alternatives, _ in clauses for n in alternatives}
        assert not names & ds.OTHER_LANGUAGE, name
        assert names & {"debhelper", "debhelper-compat"}, name
        assert len(clauses) <= ds.MAX_BUILD_DEPENDS, name
        assert 0 < ds.source_bytes(stanza) <= ds.MAX_SOURCE_BYTES, name
        assert ds.ships_a_program(stanza), name
    pool = ds.candidates(index)
    assert set(chosen) <= set(pool) and pool == sorted(pool) and len(pool) >= 50


def test_known_packages_are_judged_by_the_rule(by_name):
    assert ds.rejection(by_name["debconf"]) == "no architecture-dependent code"
    assert ds.rejection(by_name["hello"]) is None  # its `make check` needs no build-dep
    assert ds.rejection(by_name["rust-ripgrep"]) == "another language's build"  # cargo


STANZA_TEXT = ("Architecture: any\nBuild-Depends: debhelper-compat (= 13)\n"
               "Files:\n 0123 1000 p_1.dsc\nPackage-List:\n p deb utils optional arch=any\n")
STANZA = {"Package": "p", "Architecture": "any",
          "Build-Depends": "debhelper-compat (= 13), check <!nocheck>, libz-dev | libz1-dev",
          "Files": "\n0123 1000 p_1.dsc\n4567 200000 p_1.orig.tar.gz",
          "Package-List": "\np deb utils optional arch=any\nlibp1 deb libs optional arch=any"}


@pytest.mark.parametrize("change, reason", [
    ({}, None),
    ({"Extra-Source-Only": "yes"}, "extra-source-only"),
    ({"Architecture": "all"}, "no architecture-dependent code"),
    ({"Build-Depends": "debhelper-compat (= 13), check, cargo"}, "another language's build"),
    ({"Build-Depends": "cdbs, check"}, "not built by debhelper"),
    ({"Build-Depends": "debhelper-compat (= 13), libx-dev <!nocheck>, "
                       + ", ".join(f"d{i}" for i in range(7))},
     "more than 8 build-dependencies"),
    ({"Files": "\n0123 5000001 p_1.orig.tar.gz"}, "more than 5 MB of source"),
    ({"Package-List": "\nlibp1 deb libs optional arch=any\np-dev deb libdevel optional arch=any"
                      "\np-doc deb doc optional arch=all"}, "no program package"),
])
def test_each_criterion(change, reason):
    assert ds.rejection({**STANZA, **change}) == reason


def test_alternatives_count_once_and_the_index_parses():
    clauses = ds.build_depends(STANZA)
    assert [names for names, _ in clauses] == [["debhelper-compat"], ["check"],
                                               ["libz-dev", "libz1-dev"]]
    text = "Package: a\nArchitecture: any\nBuild-Depends: x,\n y\n\nPackage: b\n"
    assert [(s["Package"], s.get("Build-Depends")) for s in ds.stanzas(text)] == [
        ("a", "x,\ny"), ("b", None)]


@pytest.mark.parametrize("args, message", [
    (("-n", "0"), "-n: expected a number of packages of at least 1, not 0"),
    (("-n", "-3"), "-n: expected a number of packages of at least 1, not -3"),
    (("-n", "many"), "-n: expected an integer, not 'many'"),
    (("-seed", "x"), "-seed: expected an integer, not 'x'"),
    (("-seed", "1.5"), "-seed: expected an integer, not '1.5'"),
])
def test_bad_input_is_one_line(args, message):
    proc = run_tool("allvm-debian", "sample", *args)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"allvm-debian: {message}"]


def test_more_than_the_candidates_is_one_line(index):
    n = len(ds.candidates(index)) + 1
    proc = run_tool("allvm-debian", "sample", "-n", n)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"allvm-debian: -n: only {n - 1} source packages meet the rule, not {n}"]


def test_a_source_the_mirror_lacks_is_unavailable(tmp_path, monkeypatch):
    def not_served(package, dest):
        raise AllvmError(f"apt-get source --download-only -q {package} failed: E: Failed to "
                         "fetch http://deb.debian.org/debian/pool/main/x/x_1.dsc  404  Not Found")

    monkeypatch.setattr(db, "fetch_source", not_served)
    with pytest.raises(db.SourceUnavailable) as unavailable:
        db.fetch("x", tmp_path)
    assert str(unavailable.value) == ("x: source unavailable from the mirror (404 Not Found: "
                                      "http://deb.debian.org/debian/pool/main/x/x_1.dsc)")

    def broken(package, dest):
        raise AllvmError("dpkg-source --no-check -x x_1.dsc failed: bad tarball")

    monkeypatch.setattr(db, "fetch_source", broken)
    with pytest.raises(AllvmError) as failed:
        db.fetch("x", tmp_path)
    assert not isinstance(failed.value, db.SourceUnavailable)


def test_report_tells_unavailable_from_failed(tmp_path):
    base = {"version": "1", "languages": [], "target": db.TARGET, "built": False,
            "executables": 0, "allexes": 0, "programs": [], "tests": {}, "seconds": 1}
    for name, error, unavailable in (("gone", "gone: source unavailable from the mirror (404)",
                                      True), ("broken", "the build failed (exit 2)", False)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(
            {**base, "package": name, "error": error, "unavailable": unavailable}))
    text = write_report_md(tmp_path).read_text()
    assert "| gone | 1 | — | x86_64-linux-gnu | unavailable |" in text
    assert "| broken | 1 | — | x86_64-linux-gnu | no |" in text
    assert "2 package(s): 1 unavailable (the mirror did not serve the source; not build " \
           "failures), 0 built," in text
    assert "Of the 1 available: 0% with an allexe for every executable (goal: 80%)" in text


def test_sample_report_header():
    from corpus.distro_sample import header

    state = {"n": 8, "seed": 1, "names": ["a", "b"], "unserved": ["c"],
             "runs": [{"started": "2026-12-04T16:20:00+00:00", "seconds": 700.0},
                      {"started": "2026-12-05T09:00:00+00:00", "seconds": 54.2}]}
    lines = header(state, 2, done=8)
    assert lines[0] == "# allvm-debian on 8 packages nobody chose (a pilot)"
    text = "\n".join(lines)
    for part in ("`allvm-debian sample -n 8 -seed 1`", "packages, in the sample's order: a, b",
                 "`make distro-sample N=8 SEED=1`", "not served by this machine's mirror (404): c",
                 "started 2026-12-04 16:20 UTC", "- machine: ", "cores",
                 "wall time: 12 min 34 s for the 8 packages, 2 at once (in 2 runs"):
        assert part in text, part
    assert header({**state, "n": 50}, 2, done=3)[0] == (
        "# allvm-debian on 50 packages nobody chose — 3 of 50 done so far: "
        "`make distro-sample N=50 SEED=1` resumes")


def test_a_stopped_sample_resumes_where_it_stopped(tmp_path, monkeypatch):
    """The second run builds only the packages without a report, and adds its time."""
    from corpus import distro_sample

    built = []
    monkeypatch.setattr(distro_sample, "sample", lambda n, seed: (["a", "b", "c"], ["x"]))

    def build(command, **kwargs):  # allvm-debian build -o OUT -j J PKG...: a report per package
        built.append(command[6:])
        for name in command[6:]:
            (tmp_path / name).mkdir(exist_ok=True)
            (tmp_path / name / "report.json").write_text(json.dumps(
                {"package": name, "version": "1", "languages": ["C"], "target": db.TARGET,
                 "built": True, "error": None, "executables": 0, "allexes": 0,
                 "programs": [], "tests": {}, "seconds": 1}))

    monkeypatch.setattr(distro_sample.subprocess, "run", build)
    report = tmp_path / "sample.md"
    args = ["3", "9", "--out", str(tmp_path), "--report", str(report)]
    assert distro_sample.main(args) == 0
    assert built == [["a", "b", "c"]]
    (tmp_path / "c" / "report.json").unlink()  # as if stopped while c was building
    assert distro_sample.main(args) == 0
    assert built[1] == ["c"]
    state = json.loads((tmp_path / "sample.json").read_text())
    assert state["names"] == ["a", "b", "c"] and len(state["runs"]) == 2
    assert "(in 2 runs" in report.read_text()
    assert distro_sample.main(["3", "10", "--out", str(tmp_path), "--report", str(report)]) == 0
    assert built[2] == ["a", "b", "c"]  # another seed: afresh


def test_a_failed_build_reports_its_first_error_lines():
    log = "\n".join([
        "checking for foo... no",
        "conftest.c:1:10: fatal error: 'foo.h' file not found",  # configure's probe: expected
        "CMake Error at cmake/os.cmake:22 (message):",
        "  Could not find support for 64 bit atomic operations",
        "tcpserver.c:143:29: error: call to undeclared function 'getpid'",
        "make[2]: *** [Makefile:759: tcpserver.o] Error 1",
        "dh_auto_build: error: make -j2 returned exit code 2",
        "ld.lld: error: undefined symbol: boost::program_options::to_internal",
        "dpkg-buildpackage: error: debian/rules build subprocess returned exit status 2"])
    assert db.first_errors(log) == [
        "CMake Error at cmake/os.cmake:22 (message): Could not find support for 64 bit atomic "
        "operations",
        "tcpserver.c:143:29: error: call to undeclared function 'getpid'",
        "ld.lld: error: undefined symbol: boost::program_options::to_internal"]


def test_report_counts_the_packages_whose_tests_ran(tmp_path):
    def result(passed):
        return {"passed": passed, "failed": 0, "failed_names": [], "seconds": 1}

    base = {"version": "1", "languages": ["C"], "target": db.TARGET, "built": True,
            "error": None, "executables": 1, "allexes": 1, "programs": [], "seconds": 1}
    for name, passed in (("suite", 3), ("none", 0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(json.dumps(
            {**base, "package": name, "tests": {m: result(passed) for m in MODES}}))
    text = write_report_md(tmp_path).read_text()
    assert ("2 with an allexe for every executable, 2 of those passing on both alley paths "
            "every test that passes natively (1 of them ran a build-time test suite; the "
            "others ran no test). Of the 2 available: 100%") in text
