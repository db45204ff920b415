"""alley and the platform (README, "The platform"): what a program sees, JIT path and cached."""

import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import PROBE, compile_c, native_probe, probe_allexe, run_tool, tool_path

CTORS = "ctor 101\nctor 102\nctor default\n"
DTORS = "atexit\ndtor\n"


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    return probe_allexe(tmp_path_factory.mktemp("probe"))


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> Path:
    return native_probe(tmp_path_factory.mktemp("native"))


def alley(*args, **kwargs) -> subprocess.CompletedProcess:
    return run_tool("alley", *args, **kwargs)


@pytest.mark.parametrize("mode", ["args", "layout", "dl", "nullptr", "dso", "signals"])
def test_behaves_like_a_static_musl_binary(probe, native, mode):
    native_run = subprocess.run([str(native), mode], capture_output=True, text=True)
    jit = alley(probe, mode)
    cached = alley(probe, mode)  # objects now cached
    assert run_tool("allready", probe).returncode == 0
    static = alley(probe, mode)
    for proc in (jit, cached, static):
        assert (proc.returncode, proc.stderr) == (0, "")
        # argv[0] differs (the allexe path vs the binary); everything else is the same.
        assert proc.stdout.replace(str(probe), "ARGV0") == native_run.stdout.replace(
            str(native), "ARGV0")


def test_musl_platform_facts(probe):
    out = alley(probe, "dl").stdout
    assert "dlopen: Dynamic loading not supported\n" in out
    assert "dlsym: Symbol not found" in out  # musl adds ": <name>"
    assert f"{CTORS}0\n{DTORS}" == alley(probe, "nullptr").stdout
    assert "__dso_handle: defined" in alley(probe, "dso").stdout


def test_argv_envp_layout_and_signals(probe):
    out = alley(probe, "layout").stdout
    assert "envp==&argv[argc+1]: 1\nenvp==environ: 1\nargv[argc]==NULL: 1\n" in out
    # Python's own ignored SIGPIPE never reaches the program; the caller's SIGINT does, as
    # through any exec: default from a shell prompt, ignored in a background job.
    for caller, default in ((signal.SIG_DFL, 1), (signal.SIG_IGN, 0)):
        out = alley(probe, "signals",
                    preexec_fn=lambda h=caller: signal.signal(signal.SIGINT, h)).stdout
        assert f"SIGPIPE default: 1\nSIGINT default: {default}\n" in out


def test_argv0_is_the_allexe_path_as_given(probe, tmp_path):
    link = tmp_path / "which"
    link.symlink_to(probe)
    for path in (probe, link):
        proc = alley(path, "args", "-noexec", "--x")  # options after ALLEXE are the program's
        assert proc.stdout == f"{CTORS}argv[0]={path}\nargv[1]=args\nargv[2]=-noexec\n" \
                              f"argv[3]=--x\n{DTORS}"


@pytest.mark.parametrize("cached", ["nothing", "objects", "static binary"])
def test_argv0_option_names_the_program(probe, isolated_cache, cached):
    """`-argv0 NAME`, as `exec -a NAME` would: on the JIT path and both cache-hit paths."""
    if cached == "objects":
        assert alley("-noexec", probe).returncode == 0
    elif cached == "static binary":
        assert run_tool("allready", probe).returncode == 0
    proc = alley("-argv0", "basename", probe, "args")
    assert proc.stdout == f"{CTORS}argv[0]=basename\nargv[1]=args\n{DTORS}", proc.stderr


def test_run_directly_through_the_shebang(probe):
    proc = subprocess.run([str(probe), "args", "hi"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout == f"{CTORS}argv[0]={probe}\nargv[1]=args\nargv[2]=hi\n{DTORS}"


@pytest.mark.parametrize("cached", [False, True])
def test_environment_is_exactly_what_alley_was_given(probe, isolated_cache, cached):
    if cached:
        assert run_tool("allready", probe).returncode == 0
    env_i = ["env", "-i", f"ALLVM_CACHE_DIR={isolated_cache}", "FOO=bar baz", "EMPTY="]
    for cmd in ([*env_i, tool_path("alley"), str(probe), "env"], [*env_i, str(probe), "env"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        env_lines = proc.stdout.removeprefix(CTORS).removesuffix(DTORS).splitlines()
        assert env_lines == [f"ALLVM_CACHE_DIR={isolated_cache}", "FOO=bar baz", "EMPTY="]


@pytest.mark.parametrize("how", ["exit", "return"])
def test_exit_status_and_exit_handlers(probe, how):
    proc = alley(probe, how, "42")
    assert proc.returncode == 42
    assert proc.stdout == CTORS + DTORS  # flushed into the pipe, handlers ran


def test_old_musl_bitcode_from_clang14_runs(tmp_path):
    if not os.path.exists("/usr/bin/clang-14"):
        pytest.skip("Debian clang-14 is installed by make test")
    bc = tmp_path / "old.bc"
    subprocess.run(["clang-14", "-target", "x86_64-unknown-linux-musl", "-O2", "-g", "-c",
                    "-emit-llvm", PROBE, "-o", bc], check=True, capture_output=True)
    assert run_tool("bc2allvm", bc).returncode == 0
    allexe = tmp_path / "old.allexe"
    proc = alley(allexe, "nullptr")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"{CTORS}0\n{DTORS}", "")
    assert run_tool("allready", allexe).returncode == 0
    assert alley(allexe, "nullptr").stdout == f"{CTORS}0\n{DTORS}"


def test_gnu_allexe_links_against_host_glibc(tmp_path):
    bc = compile_c(PROBE, tmp_path / "gnu.bc", target="x86_64-linux-gnu")
    assert run_tool("bc2allvm", bc).returncode == 0
    proc = alley(tmp_path / "gnu.allexe", "nullptr")
    assert (proc.returncode, proc.stdout) == (0, f"{CTORS}(nil)\n{DTORS}")  # glibc's %p


def test_missing_allexe_argument():
    proc = alley()
    assert proc.returncode != 0
    assert "Not enough positional command line arguments specified" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_invalid_allexe(tmp_path):
    bad = tmp_path / "bad.allexe"
    bad.write_text("hello")
    proc = alley(bad)
    assert (proc.returncode, proc.stderr) == (
        1, f"alley: Could not open '{bad}': empty or invalid allexe\n")


UNDEFINED_C = r"""
#include <stdio.h>
void not_on_this_platform(void);
__attribute__((constructor)) static void ctor(void) { puts("constructor ran"); }
int main(int argc, char **argv) { if (argc > 5) not_on_this_platform(); return 0; }
"""


@pytest.mark.parametrize("flags", [[], ["-noexec"], ["-force-static"]])
def test_unresolved_function_is_an_error_before_anything_runs(tmp_path, flags):
    bc = compile_c(UNDEFINED_C, tmp_path / "undef.bc")
    assert run_tool("bc2allvm", bc).returncode == 0
    proc = alley(*flags, tmp_path / "undef.allexe")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == ("alley: Program used external function 'not_on_this_platform' "
                           "which could not be resolved!\n")


def test_noexec_runs_nothing(probe, isolated_cache):
    proc = alley("-noexec", probe, "args")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "'noexec' option set\n", "")
    assert len(list((isolated_cache / "objects").iterdir())) == 1  # the work was done
