"""allopt: external pipelines (PATH, empty environment, stdin/stdout) and built-in passes."""

import os
import pty
import shlex
import subprocess

import pytest
from conftest import build_allexe, run_tool, tool_path

from allvm.allexe import Allexe

MAIN_C = r"""
#include <stdio.h>
int lib_twice(int);
int main(int argc, char **argv) { printf("twice: %d\n", lib_twice(argc + 20)); return 0; }
"""
LIB_C = "int lib_twice(int x) { return 2 * x; }\n"
EXPECTED = "twice: 42\n"

# Textual IR with an internal function nothing calls: globaldce deletes it.
DEAD_LL = """\
target triple = "x86_64-unknown-linux-musl"
define internal i32 @dead() {
  ret i32 7
}
define i32 @main() {
  ret i32 0
}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("allopt")
    dead_ll = d / "dead.ll"
    dead_ll.write_text(DEAD_LL)
    assert run_tool("bc2allvm", dead_ll, "-o", d / "dead.allexe").returncode == 0
    # A pipeline that prints its arguments, one per line.
    bin_dir = d / "bin"
    bin_dir.mkdir()
    printargs = bin_dir / "printargs"
    printargs.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
    printargs.chmod(0o755)
    return {"prog": build_allexe(d, "prog", MAIN_C, LIB_C), "dead": d / "dead.allexe",
            "bin": bin_dir}


def module_names(path) -> list[str]:
    return [m.name for m in Allexe.open(str(path)).modules]


def test_cat_pipeline_over_each_module(built, tmp_path):
    out = tmp_path / "out.allexe"
    proc = run_tool("allopt", "-i", built["prog"], "-o", out, "cat")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert module_names(out) == ["main.bc", "prog_lib0.bc"]  # a multi-module allexe stays so
    assert os.access(out, os.X_OK)
    assert run_tool("alley", out).stdout == EXPECTED


def test_three_allopts_chain_through_pipes(built, tmp_path):
    out = tmp_path / "chained.allexe"
    allopt = shlex.quote(tool_path("allopt"))
    line = (f"{allopt} -i {shlex.quote(str(built['prog']))} cat"
            f" | {allopt} -passes='default<O1>' | {allopt} -o {shlex.quote(str(out))} cat")
    proc = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert module_names(out) == ["main.bc", "prog_lib0.bc"]
    assert run_tool("alley", out).stdout == EXPECTED


def test_arguments_after_the_pipeline_are_the_pipelines(built, tmp_path):
    env = {**os.environ, "PATH": f"{built['bin']}:{os.environ['PATH']}"}
    proc = run_tool("allopt", "-analyze", "-i", built["dead"], "printargs", "-o", "y.ll", "-f",
                    env=env, cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (0, "-o\ny.ll\n-f\n"), proc.stderr
    assert not (tmp_path / "y.ll").exists()


def test_pipeline_runs_with_an_empty_environment(built):
    proc = run_tool("allopt", "-analyze", "-i", built["dead"], "env",
                    env={**os.environ, "ALLOPT_TEST_VARIABLE": "1"})
    assert (proc.returncode, proc.stdout) == (0, "")


def test_analyze_output_is_written_as_is_per_module(built, tmp_path):
    out = tmp_path / "sizes.txt"
    proc = run_tool("allopt", "-analyze", "-i", built["prog"], "-o", out, "wc", "-c")
    assert proc.returncode == 0, proc.stderr
    sizes = [m.size for m in Allexe.open(str(built["prog"])).modules]
    assert out.read_text().split() == [str(s) for s in sizes]


@pytest.mark.parametrize("pipeline, message", [
    (["false"], "pipeline 'false' failed on 'main.bc' (exit status 1)"),
    (["echo", "not bitcode"], "pipeline 'echo' did not produce bitcode for 'main.bc'"),
    (["no-such-pipeline-x"], "pipeline 'no-such-pipeline-x' not found on PATH"),
])
def test_failing_pipeline_is_named_and_nothing_written(built, tmp_path, pipeline, message):
    out = tmp_path / "out.allexe"
    proc = run_tool("allopt", "-i", built["prog"], "-o", out, *pipeline)
    assert (proc.returncode, proc.stderr) == (1, f"allopt: {message}\n")
    assert os.listdir(tmp_path) == []  # no output, no temporary file


def test_builtin_passes_and_dis(built):
    plain = run_tool("allopt", "-i", built["dead"], "-analyze", "-dis")
    assert plain.returncode == 0 and "define internal i32 @dead()" in plain.stdout
    optimized = run_tool("allopt", "-i", built["dead"], "-passes=globaldce", "-dis")
    assert optimized.returncode == 0 and "@dead" not in optimized.stdout
    assert "define i32 @main()" in optimized.stdout
    unknown = run_tool("allopt", "-i", built["dead"], "-passes=sroa,nope", "-dis")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("allopt: unknown pass 'nope' in pipeline 'sroa,nope'; "
                                     "known: default<O0>, default<O1>")
    assert "globaldce" in unknown.stderr and "instcombine" in unknown.stderr


def test_builtin_pipeline_over_a_multi_module_allexe(built, tmp_path):
    out = tmp_path / "o2.allexe"
    proc = run_tool("allopt", "-i", built["prog"], "-o", out, "-passes=default<O2>")
    assert proc.returncode == 0, proc.stderr
    assert module_names(out) == ["main.bc", "prog_lib0.bc"]
    assert run_tool("alley", out).stdout == EXPECTED


def test_refuses_an_allexe_to_a_terminal_without_f(built):
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run([tool_path("allopt"), "-i", str(built["dead"]), "cat"],
                              stdout=terminal, stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 1
    assert proc.stderr.decode() == ("allopt: Refusing to write an allexe to a terminal "
                                    "(use -o, a pipe, or -f)\n")


@pytest.mark.parametrize("analyze", [False, True])
def test_existing_output_is_refused_without_f(built, tmp_path, analyze):
    out = tmp_path / "exists"
    out.write_bytes(b"")
    flags = ["-analyze", "-dis"] if analyze else ["cat"]
    proc = run_tool("allopt", "-i", built["dead"], "-o", out, *flags)
    assert proc.returncode == 1
    assert proc.stderr == "allopt: Output file exists. Use -f flag to force overwrite.\n"
    assert out.read_bytes() == b""
    assert run_tool("allopt", "-i", built["dead"], "-o", out, "-f", *flags).returncode == 0
    assert out.read_bytes() != b""
