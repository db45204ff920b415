"""The platform's libc fixes (allvm.platform.libc): where zig 0.17.1's libc differs from musl
(realloc(NULL, 0) and reallocarray(NULL, 0, n) return NULL, musl's return malloc(0);
aligned_alloc's alignment, tolower(EOF), memccpy, posix_fadvise's result, rand's sequence,
strtol's end pointer on overflow and errno without digits), every path that links the
platform gives musl's answer: a native allcc build, alley's JIT path and its static binary, and
the program with its libc in IR (alltogether -platform-ir) on both paths."""

import subprocess
from pathlib import Path

import pytest
from conftest import run_tool, tool_path

from allvm.toolchain import MUSL_TARGET, zig_command, zig_env

SOURCE = Path(__file__).parent / "data" / "libc_musl.c"
MUSL_ANSWERS = ("realloc(NULL, 0): non-NULL\nreallocarray(NULL, 0, 8): non-NULL\n"
                "realloc(p, 0): non-NULL\ndistinct: 1\n"
                "reallocarray overflow: NULL\nrealloc(p, 100): non-NULL\n"
                "malloc(huge): NULL, Out of memory; calloc: NULL, Out of memory; "
                "realloc: NULL, Out of memory\n"
                "aligned_alloc(24): NULL, Invalid argument; memalign(64): non-NULL, "
                "No error information; aligned_alloc(64, huge): NULL, Out of memory\n"
                "tolower(EOF) -1 toupper(EOF) -1 tolower(300) 300 tolower('A') a toupper('z') Z\n"
                "memccpy found 3, not found NULL\n"
                "posix_fadvise 9 posix_fallocate 9 errno 0\n"
                "rand 0 740882966 311430560 rand_r 363364348 1164617358\n"
                "strtol '99999999999999999999999x' 9223372036854775807 end 23 errno 34\n"
                "strtol ' -0x' 0 end 3 errno 0\n"
                "strtol '-' 0 end 0 errno 22\n"
                "strtol '0x1g' 1 end 3 errno 0\n"
                "strtol '08' 0 end 1 errno 0\n"
                "strtoumax 18446744073709551615 end 23 errno 34 strtoul('-1') "
                "18446744073709551615 errno 0 strtoll -9223372036854775808 errno 34\n")


def output(*command) -> str:
    proc = subprocess.run([*map(str, command)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The program built with allcc (linked in one step, and from an object), its allexe, and
    the allexe with its libc in IR."""
    directory = tmp_path_factory.mktemp("libc")
    for args in (["-O2", SOURCE, "-o", "prog"], ["-O2", "-c", SOURCE, "-o", "prog.o"],
                 ["prog.o", "-o", "from_object"]):
        proc = run_tool("allcc", *args, cwd=directory)
        assert proc.returncode == 0, proc.stderr
    proc = run_tool("wllvm-extract", directory / "prog", "-o", directory / "prog.allexe")
    assert proc.returncode == 0, proc.stderr
    proc = run_tool("alltogether", "-q", "-platform-ir", directory / "prog.allexe", "-o",
                    directory / "prog-libc-ir.allexe")
    assert proc.returncode == 0, proc.stderr
    return directory


def test_zig_alone_differs(tmp_path):
    """Why the fixes exist: the bare toolchain's answers (when zig fixes one, it can go). (Its
    realloc(NULL, n) is rewritten to malloc(n) by clang at -O2: reallocarray's is not.)"""
    plain = tmp_path / "plain"
    subprocess.run(zig_command("cc", "-target", MUSL_TARGET, "-O2", str(SOURCE), "-o", str(plain)),
                   env=zig_env(), check=True, capture_output=True, timeout=300)
    printed = output(plain)
    assert "reallocarray(NULL, 0, 8): NULL\n" in printed
    assert "tolower(EOF) 255 toupper(EOF) 255 tolower(300) 44" in printed
    assert "memccpy found 2, not found non-NULL\n" in printed
    assert "posix_fadvise -1 posix_fallocate -1 errno 9\n" in printed
    assert "aligned_alloc(24): non-NULL, No error information;" in printed
    assert "strtol '99999999999999999999999x' 9223372036854775807 end 19 errno 34\n" in printed
    assert "strtol '-' 0 end 0 errno 0\n" in printed


@pytest.mark.parametrize("program", ["prog", "from_object"])
def test_native_allcc_build(built, program):
    assert output(built / program) == MUSL_ANSWERS


@pytest.mark.parametrize("allexe", ["prog.allexe", "prog-libc-ir.allexe"])
@pytest.mark.parametrize("path", [[], ["-force-static"]])
def test_alley_paths(built, path, allexe):
    assert output(tool_path("alley"), *path, built / allexe) == MUSL_ANSWERS


def test_shared_library_links_get_no_platform_objects(tmp_path):
    """Only executables get the fixes: a shared library leaves malloc to its program."""
    library = tmp_path / "liblib.so"
    (tmp_path / "lib.c").write_text("#include <stdlib.h>\nvoid *grow(void *p) "
                                    "{ return realloc(p, 0); }\n")
    proc = run_tool("allcc", "-shared", "-fPIC", "lib.c", "-o", library, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert b"__wrap_realloc" not in library.read_bytes()
