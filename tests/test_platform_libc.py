"""The platform's libc (allvm.platform): on every path that links it -- a native allcc build,
alley's JIT path and its static binary, and the program with its libc in IR (alltogether
-platform-ir) on both paths -- a program gets musl's answers and the platform's allocator.

- The libc fixes (allvm.platform.libc): where zig 0.17.1's libc differs from musl
  (realloc(NULL, 0) and reallocarray(NULL, 0, n) return NULL, musl's return malloc(0);
  aligned_alloc's alignment, tolower(EOF), memccpy, posix_fadvise's result, rand's sequence,
  strtol's end pointer on overflow and errno without digits).
- The allocator (allvm.platform.malloc, mimalloc): realloc keeps contents, alignment,
  malloc(0), ENOMEM, calloc's zeroes, frees of what libc allocated, many threads; it is
  mimalloc that answers (MIMALLOC_VERBOSE=1 makes it say so), and a program's own malloc still
  wins.
- The string functions (allvm.platform.strings): musl's answers at every alignment and length,
  and no fault on an input that ends right before an unmapped page."""

import os
import subprocess
from pathlib import Path

import pytest
from conftest import run_tool, tool_path

from allvm.toolchain import MUSL_TARGET, zig_command, zig_env

DATA = Path(__file__).parent / "data"
SOURCE = DATA / "libc_musl.c"
ALLOC_SOURCE = DATA / "libc_alloc.c"
STRINGS_SOURCE = DATA / "libc_strings.c"
STRING_FUNCTIONS = ("strlen", "strnlen", "memchr", "memrchr", "strchr", "strchrnul", "strcmp",
                    "memcmp", "bcmp")
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


ALLOC_ANSWERS = ("realloc keeps contents: 1\n"
                 "aligned at every power of two: 1; posix_memalign(24) Invalid argument, (2) "
                 "Invalid argument, errno 0\n"
                 "valloc page-aligned: 1\n"
                 "malloc(0): non-NULL, distinct 1\n"
                 "calloc overflow: NULL, Out of memory\n"
                 "malloc(SIZE_MAX - 4096): NULL, Out of memory\n"
                 "calloc zeroed after reuse: 1\n"
                 "malloc_usable_size covers the request: 1\n"
                 "from libc: platform alloc 9 (16 bytes)\n"
                 "8 threads allocated, freed across threads: 1\n")
# Every way a program meets the platform: (runner, program built by the `built` fixture).
ALLEY, STATIC = [tool_path("alley")], [tool_path("alley"), "-force-static"]
PATHS = {"native allcc": ([], "prog"), "JIT path": (ALLEY, "prog.allexe"),
         "static path": (STATIC, "prog.allexe"), "libc IR, JIT path": (ALLEY, "ir.allexe"),
         "libc IR, static path": (STATIC, "ir.allexe")}


def output(*command, env=None) -> str:
    proc = subprocess.run([*map(str, command)], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return proc.stdout


def build_program(directory: Path, source: Path) -> Path:
    """`source` built with allcc in `directory`/<stem>/ (linked in one step, and from an
    object), its allexe, and the allexe with its libc in IR (names as in PATHS)."""
    directory = directory / source.stem
    directory.mkdir()
    for args in (["-O2", source, "-o", "prog"], ["-O2", "-c", source, "-o", "prog.o"],
                 ["prog.o", "-o", "from_object"]):
        proc = run_tool("allcc", *args, cwd=directory)
        assert proc.returncode == 0, proc.stderr
    proc = run_tool("wllvm-extract", directory / "prog", "-o", directory / "prog.allexe")
    assert proc.returncode == 0, proc.stderr
    proc = run_tool("alltogether", "-q", "-platform-ir", directory / "prog.allexe", "-o",
                    directory / "ir.allexe")
    assert proc.returncode == 0, proc.stderr
    return directory


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """{program: its directory}, each program built as build_program builds it."""
    directory = tmp_path_factory.mktemp("libc")
    return {source.stem: build_program(directory, source)
            for source in (SOURCE, ALLOC_SOURCE, STRINGS_SOURCE)}


def run_on(built, program: str, path: str, env=None) -> str:
    runner, name = PATHS[path]
    return output(*runner, built[program] / name, env=env)


def zig_alone(source: Path, out: Path) -> str:
    """What `source` prints built by the bare toolchain (zig's libc and allocator)."""
    subprocess.run(zig_command("cc", "-target", MUSL_TARGET, "-O2", str(source), "-o", str(out)),
                   env=zig_env(), check=True, capture_output=True, timeout=300)
    return output(out)


def test_zig_alone_differs(tmp_path):
    """Why the fixes exist: the bare toolchain's answers (when zig fixes one, it can go). (Its
    realloc(NULL, n) is rewritten to malloc(n) by clang at -O2: reallocarray's is not.)"""
    printed = zig_alone(SOURCE, tmp_path / "plain")
    assert "reallocarray(NULL, 0, 8): NULL\n" in printed
    assert "tolower(EOF) 255 toupper(EOF) 255 tolower(300) 44" in printed
    assert "memccpy found 2, not found non-NULL\n" in printed
    assert "posix_fadvise -1 posix_fallocate -1 errno 9\n" in printed
    assert "aligned_alloc(24): non-NULL, No error information;" in printed
    assert "strtol '99999999999999999999999x' 9223372036854775807 end 19 errno 34\n" in printed
    assert "strtol '-' 0 end 0 errno 0\n" in printed


def test_from_object(built):
    """allcc's link of an object (no compile in the same command) gets the platform too."""
    for program in ("libc_musl", "libc_alloc"):
        assert output(built[program] / "from_object") == output(built[program] / "prog")


@pytest.mark.parametrize("path", PATHS)
def test_musl_answers(built, path):
    assert run_on(built, "libc_musl", path) == MUSL_ANSWERS


@pytest.mark.parametrize("path", PATHS)
def test_allocator_semantics(built, path):
    assert run_on(built, "libc_alloc", path) == ALLOC_ANSWERS


@pytest.mark.parametrize("path", PATHS)
def test_string_functions(built, path):
    """Every string function answers as a byte loop does, at every alignment and length, also
    for inputs ending right before a page that is not mapped (a read past it would fault)."""
    assert run_on(built, "libc_strings", path) == "".join(
        f"{name}: ok\n" for name in STRING_FUNCTIONS)


def test_platform_ir_link_is_the_same_whatever_the_hash_seed(built, tmp_path):
    """alltogether -platform-ir links the platform's own definitions whichever symbol its
    selection meets first (Python's set order changes with the hash seed): the same allexe."""
    made = set()
    for seed in ("1", "2", "3", "4"):
        out = tmp_path / f"ir-{seed}.allexe"
        proc = run_tool("alltogether", "-q", "-platform-ir", built["libc_strings"] / "prog.allexe",
                        "-o", out, env={**os.environ, "PYTHONHASHSEED": seed})
        assert proc.returncode == 0, proc.stderr
        made.add(out.read_bytes())
    assert len(made) == 1


def test_zig_strings_alone_differ(tmp_path):
    """zig's own strcmp answers -1/0/1 (musl: the difference of the bytes), and its strchr
    does not cut the character to a byte."""
    printed = zig_alone(STRINGS_SOURCE, tmp_path / "plain")
    assert "strcmp: differs" in printed and "strchr: differs" in printed


def test_zig_allocator_alone_differs(tmp_path):
    """zig's own allocator takes an alignment below a pointer's size that is no power of two
    (musl: EINVAL), and does not know MIMALLOC_VERBOSE."""
    plain = tmp_path / "plain"
    assert "posix_memalign(24) No error information" in zig_alone(ALLOC_SOURCE, plain)
    proc = subprocess.run([plain], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MIMALLOC_VERBOSE": "1"})
    assert proc.returncode == 0 and proc.stderr == ""


@pytest.mark.parametrize("path", PATHS)
def test_the_allocator_is_mimalloc(built, path):
    """mimalloc answers on every path: asked to be verbose, it lists its options."""
    runner, name = PATHS[path]
    proc = subprocess.run([*runner, built["libc_alloc"] / name], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "MIMALLOC_VERBOSE": "1"})
    assert proc.returncode == 0 and proc.stdout == ALLOC_ANSWERS
    assert "mimalloc: option 'verbose': 1" in proc.stderr


OWN_MALLOC = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* A program's own allocator: a bump allocator. */
static char arena[1 << 20];
static size_t used;
void *malloc(size_t n) { void *p = arena + used; used += (n + 15) & ~15UL; return p; }
void free(void *p) { (void)p; }
void *calloc(size_t m, size_t n) { void *p = malloc(m * n); memset(p, 0, m * n); return p; }
void *realloc(void *p, size_t n) { void *q = malloc(n); if (p) memcpy(q, p, n); return q; }
int main(int argc, char **argv) {
    char *s = strdup(argv[argc - 1]);  /* libc's strdup calls the program's malloc */
    printf("own malloc called: %d\n", s >= arena && s < arena + sizeof arena);
    return 0;
}
"""


@pytest.mark.parametrize("path", PATHS)
def test_program_malloc_wins(tmp_path, path):
    """The platform's allocator is weak, as zig's was: a program's own malloc (also the one
    libc's strdup calls) is the one linked."""
    source = tmp_path / "own_malloc.c"
    source.write_text(OWN_MALLOC)
    directory = build_program(tmp_path, source)
    assert run_on({"own": directory}, "own", path) == "own malloc called: 1\n"


def test_a_program_that_never_allocates_links_no_allocator(tmp_path):
    """mimalloc starts at the first allocation, not in a constructor: a program that never
    allocates links none of it (it starts as fast as without it)."""
    source = tmp_path / "hello.c"
    source.write_text('#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n')
    proc = run_tool("allcc", "-O2", source, "-o", tmp_path / "hello")
    assert proc.returncode == 0, proc.stderr
    assert output(tmp_path / "hello") == "hello\n"
    assert b"mimalloc" not in (tmp_path / "hello").read_bytes()


def test_platform_identity_names_every_platform_source():
    """The codegen id names the platform by its sources' content (a new allocator or new fixes
    give new static binaries): the sources of everything a link adds are among them."""
    from allvm.native import settings
    from allvm.platform import libc, malloc, strings

    platform = Path(libc.__file__).parent
    named = "".join((platform / name).read_text() for name in settings.PLATFORM_SOURCES)
    for text in (libc.SOURCE, strings.SOURCE, malloc.GLUE, malloc.TARBALL_SHA256,
                 *malloc.FLAGS):
        assert text in named
    assert f"platform {settings.PLATFORM_ID}" in settings.OPTIMIZED.codegen_id


def test_shared_library_links_get_no_platform_objects(tmp_path):
    """Only executables get the fixes and the allocator: a shared library leaves malloc to
    its program."""
    library = tmp_path / "liblib.so"
    (tmp_path / "lib.c").write_text("#include <stdlib.h>\nvoid *grow(void *p) "
                                    "{ return realloc(p, 0); }\n")
    proc = run_tool("allcc", "-shared", "-fPIC", "lib.c", "-o", library, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert b"__wrap_realloc" not in library.read_bytes()
    assert b"mimalloc" not in library.read_bytes()
