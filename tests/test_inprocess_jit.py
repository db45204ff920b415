"""The in-process JIT (`alley -jit=inprocess`, for gnu allexes): the program runs in
alley's process on the host glibc and must behave exactly like the same program linked and
exec'd (`-jit=exec`) and like a native gnu binary."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build_allexe, native_probe, probe_allexe, run_tool, tool_path

from allvm.allexe import Allexe
from allvm.cache import object_key
from allvm.native.settings import INPROCESS
from allvm.toolchain import GNU_TARGET

CTORS = "ctor 101\nctor 102\nctor default\n"
DTORS = "atexit\ndtor\n"

# What the platform probe does not look at: state Python changes in its own process.
PROCESS_STATE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (!strcmp(argv[1], "locale")) printf("%s\n", setlocale(LC_ALL, NULL));
    if (!strcmp(argv[1], "progname")) printf("%s\n", program_invocation_short_name);
    if (!strcmp(argv[1], "unflushed")) { printf("no newline"); return 5; }
    if (!strcmp(argv[1], "buffered")) { printf("printf "); write(1, "write ", 6); }
    if (!strcmp(argv[1], "sigpipe")) { for (;;) puts("y"); }
    if (!strcmp(argv[1], "kill")) kill(getpid(), SIGTERM);
    return 0;
}
"""

LIB_C = r"""
#include <stdio.h>
int lib_counter = 40;
__attribute__((constructor(101))) static void init(void) { puts("lib ctor 101"); lib_counter++; }
__attribute__((destructor)) static void fini(void) { puts("lib dtor"); }
int lib_value(void) { return lib_counter + 1; }
"""
MAIN_WITH_LIB_C = r"""
#include <stdio.h>
extern int lib_counter;
int lib_value(void);
__attribute__((constructor(101))) static void init(void) { puts("main ctor 101"); }
__attribute__((constructor(200))) static void late(void) { puts("main ctor 200"); }
__attribute__((destructor)) static void fini(void) { puts("main dtor"); }
int main(void) { printf("value %d counter %d\n", lib_value(), lib_counter); return 0; }
"""

UNRESOLVED_C = r"""
#include <stdio.h>
int no_such_function_anywhere(void);
__attribute__((constructor)) static void init(void) { puts("constructor ran"); }
int main(void) { return no_such_function_anywhere(); }
"""


def alley(*args, **kwargs) -> subprocess.CompletedProcess:
    return run_tool("alley", *args, **kwargs)


@pytest.fixture(scope="module")
def gnu_probe(tmp_path_factory) -> Path:
    return probe_allexe(tmp_path_factory.mktemp("gnu-probe"), GNU_TARGET)


@pytest.fixture(scope="module")
def native_gnu_probe(tmp_path_factory) -> Path:
    return native_probe(tmp_path_factory.mktemp("native-gnu"), GNU_TARGET)


@pytest.fixture(scope="module")
def state_probe(tmp_path_factory) -> Path:
    return build_allexe(tmp_path_factory.mktemp("state"), "state", PROCESS_STATE_C,
                        target=GNU_TARGET)


@pytest.fixture(scope="module")
def with_library(tmp_path_factory) -> Path:
    return build_allexe(tmp_path_factory.mktemp("lib"), "withlib", MAIN_WITH_LIB_C, LIB_C,
                        target=GNU_TARGET)


def objects(cache: Path) -> list[str]:
    return sorted(os.listdir(cache / "objects"))


def inprocess_objects(allexe: Path) -> list[str]:
    """The names of the allexe's objects for the in-process JIT (the INPROCESS settings')."""
    opened = Allexe.open(str(allexe))
    return [object_key(opened, entry, INPROCESS.codegen_id) for entry in opened.modules]


@pytest.mark.parametrize("mode", ["args", "layout", "nullptr", "dso", "signals"])
def test_inprocess_behaves_like_native_gnu_binary(gnu_probe, native_gnu_probe, mode):
    native = subprocess.run([str(native_gnu_probe), mode, "x y"], capture_output=True, text=True)
    for jit in ("-jit=inprocess", "-jit=exec"):
        proc = alley(jit, gnu_probe, mode, "x y")
        assert (proc.returncode, proc.stderr) == (0, "")
        assert proc.stdout.replace(str(gnu_probe), "ARGV0") == native.stdout.replace(
            str(native_gnu_probe), "ARGV0")
    assert proc.stdout.startswith(CTORS) and proc.stdout.endswith(DTORS)


def test_argv_envp_environ_layout(gnu_probe):
    proc = alley("-jit=inprocess", gnu_probe, "layout")
    assert proc.stdout == (f"{CTORS}envp==&argv[argc+1]: 1\nenvp==environ: 1\n"
                           f"argv[argc]==NULL: 1\n{DTORS}")
    proc = alley("-jit=inprocess", gnu_probe, "args", "", "two words")
    assert f"argv[0]={gnu_probe}\nargv[1]=args\nargv[2]=\nargv[3]=two words\n" in proc.stdout


def test_environment_exactly_as_given_under_env_i(gnu_probe, isolated_cache):
    # No HOME, no PATH: alley finds its cache and zig without them and adds nothing.
    proc = subprocess.run(["env", "-i", f"ALLVM_CACHE_DIR={isolated_cache}", "ONE=1",
                           "EMPTY=", tool_path("alley"),
                           "-jit=inprocess", str(gnu_probe), "env"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{CTORS}ALLVM_CACHE_DIR={isolated_cache}\nONE=1\nEMPTY=\n{DTORS}"


@pytest.mark.parametrize("how", ["exit", "return"])
def test_exit_status_runs_handlers_and_flushes(gnu_probe, how):
    proc = alley("-jit=inprocess", gnu_probe, how, "42")
    assert proc.returncode == 42
    assert proc.stdout == CTORS + DTORS  # atexit before destructors, both after main


def test_buffered_output_into_a_pipe_is_flushed(state_probe):
    proc = alley("-jit=inprocess", state_probe, "unflushed")
    assert (proc.returncode, proc.stdout) == (5, "no newline")


def test_stdout_buffered_even_under_pythonunbuffered(state_probe):
    # Python unbuffers C stdio under PYTHONUNBUFFERED; a program's stdout into a pipe is
    # fully buffered, so write(2) output overtakes printf's. (The launcher starts Python
    # isolated, where PYTHONUNBUFFERED does nothing: this is the Python alley pip installs.)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "allvm.tools.alley", "-jit=inprocess",
                           str(state_probe), "buffered"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.stdout == "write printf "


def test_process_state_of_a_fresh_program(state_probe):
    # Python sets LC_CTYPE from the environment; a C program starts in the "C" locale.
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    assert alley("-jit=inprocess", state_probe, "locale", env=env).stdout == "C\n"
    assert alley("-jit=inprocess", state_probe, "progname").stdout == f"{state_probe.name}\n"


def test_signals_at_their_defaults(state_probe):
    # SIGPIPE kills a writer whose reader went away (Python would ignore it: EPIPE forever).
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    writer = alley("-jit=inprocess", state_probe, "sigpipe", stdout=reader.stdin,
                   capture_output=False, timeout=60)
    reader.stdin.close()
    reader.wait()
    assert writer.returncode == -signal.SIGPIPE
    assert alley("-jit=inprocess", state_probe, "kill").returncode == -signal.SIGTERM


def test_library_module_constructors_and_symbols(with_library):
    inprocess = alley("-jit=inprocess", with_library)
    linked = alley("-jit=exec", with_library)
    assert (inprocess.returncode, inprocess.stderr) == (0, "")
    # Equal priorities run in module order, as the linker orders .init_array.N; destructors
    # in reverse.
    assert inprocess.stdout == ("main ctor 101\nlib ctor 101\nmain ctor 200\n"
                                "value 42 counter 41\nlib dtor\nmain dtor\n")
    assert linked.stdout == inprocess.stdout


def test_unresolved_function_reported_before_anything_runs(tmp_path):
    allexe = build_allexe(tmp_path, "unresolved", UNRESOLVED_C, target=GNU_TARGET)
    for extra in ((), ("-noexec",)):
        proc = alley("-jit=inprocess", *extra, allexe)
        assert proc.returncode != 0
        assert proc.stdout == ""
        assert proc.stderr == ("alley: Program used external function "
                               "'no_such_function_anywhere' which could not be resolved!\n")


def test_noexec_compiles_but_runs_nothing(gnu_probe, isolated_cache):
    proc = alley("-jit=inprocess", "-noexec", gnu_probe, "args")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "'noexec' option set\n", "")
    assert len(objects(isolated_cache)) == 1


def test_inprocess_objects_are_cached_and_reused(gnu_probe, isolated_cache):
    assert alley("-jit=inprocess", gnu_probe, "nullptr").stdout == f"{CTORS}(nil)\n{DTORS}"
    cached = objects(isolated_cache)
    assert cached == inprocess_objects(gnu_probe)
    assert alley("-jit=inprocess", gnu_probe, "nullptr").returncode == 0
    assert objects(isolated_cache) == cached  # a second run compiles nothing new
    # A truncated entry is detected and rebuilt.
    entry = isolated_cache / "objects" / cached[0]
    entry.write_bytes(entry.read_bytes()[:100])
    assert alley("-jit=inprocess", gnu_probe, "nullptr").stdout == f"{CTORS}(nil)\n{DTORS}"
    assert entry.stat().st_size > 100


def test_gnu_default_is_the_exec_path(gnu_probe, isolated_cache):
    # The faster one when objects are cached (bench/bench_alley.py, README).
    assert alley(gnu_probe, "nullptr").stdout == f"{CTORS}(nil)\n{DTORS}"
    (cached,) = objects(isolated_cache)
    assert cached not in inprocess_objects(gnu_probe)
    assert alley("-jit=exec", gnu_probe, "nullptr").returncode == 0
    assert objects(isolated_cache) == [cached]


def test_musl_allexes_always_take_the_exec_path(tmp_path, isolated_cache, hello_c):
    allexe = build_allexe(tmp_path, "hello", hello_c)
    proc = alley("-jit=inprocess", allexe)
    assert (proc.returncode, proc.stdout) == (0, "hello, allvm\n")
    assert not set(inprocess_objects(allexe)) & set(objects(isolated_cache))


def test_uncached_when_the_cache_is_unusable(gnu_probe):
    proc = alley("-jit=inprocess", gnu_probe, "return", "3",
                 env={**os.environ, "ALLVM_CACHE_DIR": "/dev/null"})
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, CTORS + DTORS, "")


def test_an_object_whose_facts_overflow_a_cache_tag_is_used_uncached(with_library,
                                                                      isolated_cache,
                                                                      monkeypatch):
    """The cache's tag holds at most MAX_TAG bytes: a module with more link facts (symbols)
    than that is compiled and loaded from the build's own directory, never stored."""
    from allvm import jit
    from allvm.cache import Cache
    from allvm.native import build

    monkeypatch.setattr(build, "MAX_TAG", 64)  # the probe's facts compress to more than this
    codes = jit.load_modules(Allexe.open(str(with_library)), Cache())
    assert "main" in codes[0].defined and {"lib_counter", "lib_value"} <= codes[1].defined
    assert codes[0].obj.startswith(b"\x7fELF") and codes[1].ctors
    assert objects(isolated_cache) == []
    monkeypatch.setattr(build, "MAX_TAG", 0xFFFF)
    cached = jit.load_modules(Allexe.open(str(with_library)), Cache())  # now stored, and read
    assert objects(isolated_cache) == sorted(inprocess_objects(with_library))
    assert [(c.obj, c.ctors) for c in jit.load_modules(Allexe.open(str(with_library)), Cache())
            ] == [(c.obj, c.ctors) for c in cached]
