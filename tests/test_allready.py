"""allready: several allexes, in parallel, one failure reported without stopping the rest."""

from conftest import build_allexe, run_tool


def test_builds_each_and_reports_failures(tmp_path, hello_c, isolated_cache):
    good = [build_allexe(tmp_path, f"p{i}", hello_c.replace("allvm", f"p{i}")) for i in range(3)]
    bad = tmp_path / "bad.allexe"
    bad.write_bytes(b"not an allexe")
    proc = run_tool("allready", good[0], bad, good[1], good[2], "-j", "2")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == f"allready: Could not open '{bad}': empty or invalid allexe\n"
    assert sorted(proc.stdout.splitlines()) == sorted(
        f"Successfully cached static binary for '{p}'." for p in good)
    assert len(list((isolated_cache / "static_binaries").iterdir())) == 3
    for i, allexe in enumerate(good):
        assert run_tool("alley", allexe).stdout == f"hello, p{i}\n"


def test_one_at_a_time_and_bad_job_count(tmp_path, hello_c):
    allexe = build_allexe(tmp_path, "one", hello_c)
    assert run_tool("allready", "-j", "1", allexe).returncode == 0
    proc = run_tool("allready", "-j", "0", allexe)
    assert (proc.returncode, proc.stderr) == (1, "allready: -j must be at least 1\n")


def test_unresolved_symbol_fails_that_allexe(tmp_path):
    allexe = build_allexe(tmp_path, "undef", "void missing(void);\n"
                          "int main(void) { missing(); return 0; }\n")
    proc = run_tool("allready", allexe)
    assert proc.returncode == 1
    assert proc.stderr == ("allready: Program used external function 'missing' which could not "
                           "be resolved!\n")


def test_largest_allexe_is_built_first(tmp_path, hello_c):
    """A big program started last would finish alone, long after the rest: start it first."""
    small = build_allexe(tmp_path, "small", hello_c)
    body = "".join(f"int f{i}(int x) {{ return x * {i} + {i * 7}; }}\n" for i in range(400))
    big = build_allexe(tmp_path, "big", body + "int main(void) { return f1(0) - 7; }\n")
    assert big.stat().st_size > small.stat().st_size
    proc = run_tool("allready", "-j", "1", small, big)
    assert proc.stdout.splitlines() == [f"Successfully cached static binary for '{p}'."
                                        for p in (big, small)]
