"""How the corpus counts a program as passing: no test of it regresses under alley."""

from corpus.run import exercised, programs_failing

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
