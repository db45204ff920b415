"""wllvm-dump and wllvm-extract on binaries built by allcc: programs, archives, shared
libraries, natively assembled code, and every error line."""

import subprocess

import pytest
from conftest import run_tool

from allvm.allexe import Allexe
from allvm.elf import Elf
from allvm.ir import parse_module

LIB_C = "int twice(int x) { return 2 * x; }\n"
MAIN_C = """#include <stdio.h>
int twice(int);
int main(int argc, char **argv) { printf("twice=%d\\n", twice(argc)); return 0; }
"""
SQUARE_S = ".globl square\nsquare:\n  mov %edi, %eax\n  imul %edi, %eax\n  ret\n"
USES_SQUARE_C = "int square(int);\nint main(int argc, char **argv) { return square(argc); }\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A static program (its library from an archive), a program using a shared library
    (found through its runpath), and one with an assembly part."""
    d = tmp_path_factory.mktemp("wllvm")
    (d / "lib.c").write_text(LIB_C)
    (d / "main.c").write_text(MAIN_C)
    (d / "square.S").write_text(SQUARE_S)
    (d / "use.c").write_text(USES_SQUARE_C)
    (d / "shared").mkdir()
    steps = [
        ("allcc", "-O2", "-c", "lib.c", "main.c"),
        ("ar", "rcs", "libtwice.a", "lib.o"),
        ("allcc", "main.o", "-L.", "-ltwice", "-o", "static-prog"),
        ("allcc", "-O2", "-fPIC", "-shared", "lib.c", "-o", "shared/libtwice.so"),
        ("allcc", "main.o", "-Lshared", "-ltwice", "-Wl,-rpath,$ORIGIN/shared", "-o",
         "shared-prog"),
        ("allcc", "use.c", "square.S", "-o", "asm-prog"),
    ]
    for tool, *args in steps:
        proc = (run_tool(tool, *args, cwd=d) if tool == "allcc"
                else subprocess.run([tool, *args], cwd=d, capture_output=True, text=True))
        assert proc.returncode == 0, proc.stderr
    return d


def test_dump_lists_bitcode_of_program_and_archive(built):
    proc = run_tool("wllvm-dump", built / "static-prog")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [str(built / ".main.o.bc"), str(built / ".lib.o.bc")]
    members = run_tool("wllvm-dump", built / "libtwice.a")
    assert members.stdout.splitlines() == [str(built / ".lib.o.bc")]


def test_extract_links_program_and_archive_into_main(built, tmp_path):
    out = tmp_path / "prog.allexe"
    proc = run_tool("wllvm-extract", built / "static-prog", "-o", out)
    assert proc.returncode == 0, proc.stderr
    allexe = Allexe.open(str(out))
    assert [m.name for m in allexe.modules] == ["main.bc"]
    main = parse_module(allexe.read_module(allexe.main), "main.bc")
    assert not main.get_function("twice").is_declaration
    run = run_tool("alley", out, "a", "b")
    assert (run.returncode, run.stdout) == (0, "twice=6\n")
    assert subprocess.run([out, "a"], capture_output=True, text=True).stdout == "twice=4\n"


def test_default_output_and_no_overwrite(built):
    default = built / "static-prog.allexe"
    assert run_tool("wllvm-extract", built / "static-prog").returncode == 0
    assert default.exists()
    again = run_tool("wllvm-extract", built / "static-prog")
    assert again.returncode == 1
    assert again.stderr == "wllvm-extract: Output file exists. Use -f flag to force overwrite.\n"
    assert run_tool("wllvm-extract", built / "static-prog", "-f").returncode == 0


def test_shared_library_becomes_a_library_module(built, tmp_path):
    out = tmp_path / "shared.allexe"
    proc = run_tool("wllvm-extract", built / "shared-prog", "-o", out)
    assert proc.returncode == 0, proc.stderr
    names = [m.name for m in Allexe.open(str(out)).modules]
    assert names == ["main.bc", str(built / "shared" / "libtwice.so") + ".bc"]
    run = run_tool("alley", out, "x")
    assert (run.returncode, run.stdout) == (0, "twice=4\n")


def test_natively_assembled_code_is_reported(built, tmp_path):
    out = tmp_path / "asm.allexe"
    proc = run_tool("wllvm-extract", built / "asm-prog", "-o", out)
    assert proc.returncode == 0
    assert proc.stderr == (f"wllvm-extract: warning: no bitcode for '{built / 'square.S'}' "
                           "(assembled natively): its code is not in the IR\n")
    run = run_tool("alley", out)
    assert run.returncode != 0
    assert "Program used external function 'square' which could not be resolved!" in run.stderr


def test_binary_without_section(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(Elf.__module__.encode())  # not even ELF
    for binary in (plain, "/bin/sh"):
        dump = run_tool("wllvm-dump", binary)
        assert (dump.returncode, dump.stderr) == (1, "wllvm-dump: unable to find WLLVM section\n")
        extract = run_tool("wllvm-extract", binary, "-o", tmp_path / "x.allexe")
        assert extract.returncode == 1
        assert extract.stderr == (f"Error reading file: {binary}\n"
                                  "wllvm-extract: unable to find WLLVM section\n")
    assert not (tmp_path / "x.allexe").exists()


def test_missing_input_and_deleted_bitcode(built, tmp_path):
    missing = run_tool("wllvm-dump", tmp_path / "nope")
    assert missing.returncode == 1 and missing.stderr.startswith("wllvm-dump: Could not open")
    copy = tmp_path / "prog"
    copy.write_bytes((built / "asm-prog").read_bytes())
    (built / ".asm-prog.use.o.bc").rename(tmp_path / "moved.bc")
    try:
        proc = run_tool("wllvm-extract", copy)
    finally:
        (tmp_path / "moved.bc").rename(built / ".asm-prog.use.o.bc")
    assert proc.returncode == 1
    assert proc.stderr == (f"wllvm-extract: Could not open bitcode file "
                           f"'{built / '.asm-prog.use.o.bc'}' (was the build cleaned?)\n")
