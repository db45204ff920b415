"""Tiers: a first run from fast-tier code, and promotion to the optimized static binary in the
background (allvm/native/settings.py, allvm/native/promote.py).

These tests leave ALLVM_TIER to its default (fast) unless they test turning it off; every
background promoter they cause is waited for or killed before they end.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import build_allexe, compile_c, run_tool, tool_path

import allvm
from allvm import codegen
from allvm.allexe import Allexe
from allvm.cache import INTERIM_TAG, object_key, static_binary_key, unseal
from allvm.elf import Elf
from allvm.native.build import link_objects
from allvm.native.settings import FAST, OPTIMIZED

# A program that also shows it has no child it did not make (the promoter is not alley's).
PROGRAM_C = r"""
#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
int main(int argc, char **argv) {
    int r = wait(NULL);
    printf("ran %s, wait %d %s\n", argc > 1 ? argv[1] : "-", r, errno == ECHILD ? "ECHILD" : "?");
    return 0;
}
"""
EXPECTED = "ran {}, wait -1 ECHILD\n"


def big_library(functions: int) -> str:
    """A module that takes the optimizer a few seconds: a killed promotion has time to die."""
    return "\n".join(
        f"int f{i}(int x) {{ int s = 0; for (int j = 0; j < x; j++) s += (j * {i}) ^ (s >> 3);"
        f" return s; }}" for i in range(functions))


@pytest.fixture
def fast_tier(monkeypatch):
    monkeypatch.delenv("ALLVM_TIER", raising=False)
    yield
    for pid in promoters():  # none may outlive the test
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    return build_allexe(tmp_path_factory.mktemp("tiers"), "prog", PROGRAM_C)


@pytest.fixture(scope="module")
def slow_program(tmp_path_factory) -> Path:
    return build_allexe(tmp_path_factory.mktemp("tiers-slow"), "slow", PROGRAM_C,
                        big_library(1500))


def promoters(allexe: Path | None = None) -> list[int]:
    """The pids of running promoters (of `allexe`, if given)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"allvm.native.promote" in argv and (allexe is None or
                                               str(allexe).encode() in argv):
            found.append(int(entry.name))
    return found


def wait_for(condition, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def static_binary(cache: Path, allexe: Path) -> Path:
    return cache / "static_binaries" / static_binary_key(Allexe.open(str(allexe)))


def binary_tag(cache: Path, allexe: Path) -> bytes | None:
    """The static binary's tag: INTERIM_TAG for the fast tier's stand-in, b"" once promoted."""
    try:
        entry = unseal(static_binary(cache, allexe).read_bytes())
    except FileNotFoundError:
        return None
    return entry[1] if entry else None


def promoted(cache: Path, allexe: Path) -> bool:
    return binary_tag(cache, allexe) == b"" and not promoters()


def without_python(*argv) -> list:
    """`argv` in a mount namespace where alley's Python package is hidden: only the native
    launcher can answer (a cache hit), the Python alley cannot start."""
    package = Path(allvm.__file__).parent
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'mount -t tmpfs none {package} && exec "$@"', "sh", *map(str, argv)]


def fast_objects(cache: Path, allexe: Path) -> set[str]:
    opened = Allexe.open(str(allexe))
    return {object_key(opened, e, FAST.codegen_id) for e in opened.modules}


def test_a_first_run_is_fast_then_promoted(fast_tier, program, isolated_cache):
    proc = run_tool("alley", program, "one")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, EXPECTED.format("one"), "")
    objects = {p.name for p in (isolated_cache / "objects").iterdir()}
    assert objects == fast_objects(isolated_cache, program)  # the fast tier's own key
    assert FAST.codegen_id != OPTIMIZED.codegen_id
    # At once, the second start is a cache hit: the fast program stands in, then the
    # optimized one replaces it.
    assert binary_tag(isolated_cache, program) in (INTERIM_TAG, b"")
    proc = subprocess.run(without_python(tool_path("alley"), program, "two"),
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout == EXPECTED.format("two"), proc.stderr
    wait_for(lambda: promoted(isolated_cache, program))
    assert not (isolated_cache / "tmp").exists()
    proc = run_tool("alley", program, "three")
    assert proc.stdout == EXPECTED.format("three")
    assert promoters() == []


@pytest.mark.parametrize("how", ["variable", "option"])
def test_promotion_off(fast_tier, program, isolated_cache, monkeypatch, how):
    if how == "variable":
        monkeypatch.setenv("ALLVM_TIER", "optimized")
        args = [program, "x"]
    else:
        args = ["-tier", "optimized", program, "x"]
    proc = run_tool("alley", *args)
    assert proc.stdout == EXPECTED.format("x"), proc.stderr
    time.sleep(2)
    assert promoters() == []
    assert list((isolated_cache / "static_binaries").iterdir()) == []
    opened = Allexe.open(str(program))
    assert {p.name for p in (isolated_cache / "objects").iterdir()} == {
        object_key(opened, e, OPTIMIZED.codegen_id) for e in opened.modules}


def test_concurrent_first_starts(fast_tier, program, isolated_cache):
    """Six starts at once of a program never run: all run, and one static binary results."""
    procs = [subprocess.Popen([tool_path("alley"), program, str(i)],
                              stdout=subprocess.PIPE, text=True) for i in range(6)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert outputs == [EXPECTED.format(i) for i in range(6)]
    wait_for(lambda: promoted(isolated_cache, program))
    assert len(list((isolated_cache / "static_binaries").iterdir())) == 1
    assert not (isolated_cache / "tmp").exists()


@pytest.mark.parametrize("start", ["launcher", "python"])
def test_a_killed_promotion_is_started_again(fast_tier, slow_program, isolated_cache, start):
    """The stand-in runs on; the next start (the launcher's cache hit, or the Python alley's)
    starts the optimized build again."""
    proc = run_tool("alley", slow_program, "a")
    assert proc.stdout == EXPECTED.format("a")
    wait_for(lambda: promoters(slow_program), seconds=30)
    for pid in promoters(slow_program):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not promoters(slow_program), seconds=30)
    assert binary_tag(isolated_cache, slow_program) == INTERIM_TAG
    again = [tool_path("alley"), slow_program, "b"] if start == "launcher" else \
        [sys.executable, "-I", "-m", "allvm.tools.alley", slow_program, "b"]
    proc = subprocess.run(again, capture_output=True, text=True, timeout=60)
    assert proc.stdout == EXPECTED.format("b"), proc.stderr
    wait_for(lambda: promoted(isolated_cache, slow_program))
    assert not (isolated_cache / "tmp").exists()  # the killed one's scratch was swept
    assert run_tool("alley", slow_program, "c").stdout == EXPECTED.format("c")


def test_force_static_builds_the_optimized_binary_over_a_stand_in(fast_tier, slow_program,
                                                                  isolated_cache):
    assert run_tool("alley", slow_program, "a").stdout == EXPECTED.format("a")
    wait_for(lambda: promoters(slow_program), seconds=30)
    for pid in promoters(slow_program):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not promoters(slow_program), seconds=30)
    assert binary_tag(isolated_cache, slow_program) == INTERIM_TAG
    proc = run_tool("alley", "-force-static", slow_program, "b")
    assert proc.stdout == EXPECTED.format("b"), proc.stderr
    assert binary_tag(isolated_cache, slow_program) == b""


def test_a_promoted_program_starts_no_more_builds(fast_tier, program, isolated_cache,
                                                  tmp_path, monkeypatch):
    """A deny policy sends every start through the Python alley's JIT path: once the optimized
    binary is there, those starts leave it alone."""
    assert run_tool("alley", program, "a").stdout == EXPECTED.format("a")
    wait_for(lambda: promoted(isolated_cache, program))
    policy = tmp_path / "policy"
    policy.write_text("dlopen\n")
    monkeypatch.setenv("ALLVM_POLICY", str(policy))
    for i in range(3):
        assert run_tool("alley", program, str(i)).stdout == EXPECTED.format(i)
        assert promoters() == []
    assert binary_tag(isolated_cache, program) == b""


# Compiled with -g: what is left of the debug information in the code generator's output.
DEBUG_C = r"""
#include <math.h>
#include <stdio.h>
static int counter = 3;
__attribute__((constructor)) static void init(void) { counter *= 7; }
struct point { double x, y; };
static double norm(struct point p) { return sqrt(p.x * p.x + p.y * p.y); }
int main(int argc, char **argv) {
    struct point p = { argc * 3.0, 4.0 };
    printf("%s %d %.3f\n", argv[argc - 1], counter, norm(p));
    return counter % 5;
}
"""


@pytest.fixture(scope="module")
def debug_bitcode(tmp_path_factory) -> Path:
    return compile_c(DEBUG_C, tmp_path_factory.mktemp("debug") / "debug.bc", flags=("-O2", "-g"))


def debug_sections(obj: bytes) -> list[str]:
    return [s.name for s in Elf(obj, "object").sections if s.name.startswith(".debug")]


@pytest.mark.parametrize("settings", [FAST, OPTIMIZED], ids=["fast", "optimized"])
def test_objects_leave_debug_information_out_and_link_to_the_same_program(
        debug_bitcode, tmp_path, monkeypatch, settings):
    """Generating DWARF is most of the code generator's time on a -g module, and every link
    strips it: objects leave it out, and link to the very program that objects with it (cached
    before) link to, so the codegen id need not change."""
    obj, tag = codegen.compile_object(debug_bitcode.read_bytes(), "main.bc", settings)
    assert debug_sections(obj) == []
    monkeypatch.setattr(codegen, "emit_object", lambda machine, module:
                        machine.emit_object(module))  # as objects were made before
    with_debug, same_tag = codegen.compile_object(debug_bitcode.read_bytes(), "main.bc", settings)
    assert ".debug_info" in debug_sections(with_debug) and same_tag == tag
    programs = []
    for name, data in (("stripped", obj), ("with-debug", with_debug)):
        path = tmp_path / f"{name}.o"
        path.write_bytes(data)
        link_objects([str(path)], [tag], str(tmp_path / name))
        programs.append((tmp_path / name).read_bytes())
    assert programs[0] == programs[1]
    proc = subprocess.run([tmp_path / "stripped", "x"], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (1, "x 21 7.211\n")


def test_a_program_compiled_with_debug_information_runs_alike_from_both_tiers(
        debug_bitcode, tmp_path, isolated_cache, monkeypatch):
    allexe = tmp_path / "debug.allexe"
    assert run_tool("bc2allvm", debug_bitcode, "-o", allexe).returncode == 0
    runs = []
    for tier in ("fast", "optimized"):
        monkeypatch.setenv("ALLVM_TIER", tier)
        monkeypatch.setenv("ALLVM_CACHE_DIR", str(tmp_path / f"cache-{tier}"))
        proc = run_tool("alley", "-noexec", allexe)  # compiles, starts no promotion
        assert proc.returncode == 0, proc.stderr
        proc = run_tool("alley", allexe, "a", "b")
        runs.append((proc.returncode, proc.stdout, proc.stderr))
    assert runs[0] == runs[1] == (1, "b 21 9.849\n", "")
