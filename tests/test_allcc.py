"""allcc / allc++: objects as usual plus bitcode recorded in `.llvm_bc`, through every mode a
build system uses (configure's conftests, -c/-o, -E, -M*, -S, several sources, .S, -shared)."""

import os
import subprocess
from pathlib import Path

import pytest
from conftest import run_tool

from allvm.elf import Elf
from allvm.ir import is_bitcode
from allvm.packaging.wllvm import SECTION

LIB_C = "int twice(int x) { return 2 * x; }\n"
MAIN_C = """#include <stdio.h>
#include "twice.h"
int main(int argc, char **argv) { printf("twice=%d\\n", twice(argc)); return 0; }
"""
SQUARE_S = ".globl square\nsquare:\n  mov %edi, %eax\n  imul %edi, %eax\n  ret\n"
USES_SQUARE_C = """#include <stdio.h>
int square(int);
int main(int argc, char **argv) { printf("square=%d\\n", square(argc + 1)); return 0; }
"""


def write_sources(directory):
    (directory / "twice.h").write_text("int twice(int);\n")
    (directory / "lib.c").write_text(LIB_C)
    (directory / "main.c").write_text(MAIN_C)
    return directory


def allcc(cwd, *args, name="allcc", **kwargs):
    return run_tool(name, *args, cwd=cwd, **kwargs)


def section_of(path) -> list[str]:
    contents = Elf(path.read_bytes(), str(path)).section(SECTION)
    return contents.decode().splitlines() if contents is not None else None


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    """`allcc -c` with two sources in one call."""
    d = write_sources(tmp_path_factory.mktemp("objects"))
    proc = allcc(d, "-O2", "-c", "lib.c", "main.c")
    assert proc.returncode == 0, proc.stderr
    return d


def test_compile_gives_object_and_recorded_bitcode(objects):
    for name in ("lib", "main"):
        bitcode = objects / f".{name}.o.bc"
        assert is_bitcode(bitcode.read_bytes())
        assert section_of(objects / f"{name}.o") == [str(bitcode)]


def test_objects_link_into_a_working_program(objects):
    proc = allcc(objects, "lib.o", "main.o", "-o", "prog")
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([objects / "prog", "x"], capture_output=True, text=True).stdout \
        == "twice=4\n"
    assert section_of(objects / "prog") == [str(objects / ".lib.o.bc"),
                                            str(objects / ".main.o.bc")]


def test_compile_and_link_in_one_call_keeps_bitcode_beside_output(tmp_path):
    write_sources(tmp_path)
    (tmp_path / "out").mkdir()
    proc = allcc(tmp_path, "-O1", "lib.c", "main.c", "-o", "out/prog", "-lm")
    assert proc.returncode == 0, proc.stderr
    assert section_of(tmp_path / "out/prog") == [str(tmp_path / "out/.prog.lib.o.bc"),
                                                 str(tmp_path / "out/.prog.main.o.bc")]
    assert subprocess.run([tmp_path / "out/prog"], capture_output=True, text=True).stdout \
        == "twice=2\n"


def test_default_target_is_static_musl_and_gnu_by_variable(tmp_path):
    write_sources(tmp_path)
    assert allcc(tmp_path, "lib.c", "main.c", "-o", "musl").returncode == 0
    gnu = allcc(tmp_path, "lib.c", "main.c", "-o", "gnu",
                env={**os.environ, "ALLVM_CC_TARGET": "x86_64-linux-gnu"})
    assert gnu.returncode == 0, gnu.stderr
    assert not Elf((tmp_path / "musl").read_bytes(), "musl").dynamic_entries()
    assert ("libc.so.6" in
            [v for _, v in Elf((tmp_path / "gnu").read_bytes(), "gnu").dynamic_entries()])
    assert b"-gnu" in (tmp_path / ".gnu.main.o.bc").read_bytes()
    assert subprocess.run([tmp_path / "gnu"], capture_output=True, text=True).stdout \
        == "twice=2\n"
    for name in ("musl", "gnu"):  # either way the extracted allexe runs under alley
        assert run_tool("wllvm-extract", tmp_path / name).returncode == 0
        run = run_tool("alley", tmp_path / f"{name}.allexe", "x")
        assert (run.returncode, run.stdout) == (0, "twice=4\n"), run.stderr


def test_gnu_links_libraries_where_gcc_finds_them(tmp_path):
    """A Debian library outside the multiarch directory (libax25-dev installs /usr/lib/
    libax25.so): the gnu target finds it as gcc does, and the program runs."""
    library = Path("/usr/lib/libzz-allvm-test.so")
    write_sources(tmp_path)
    gnu = {**os.environ, "ALLVM_CC_TARGET": "x86_64-linux-gnu"}
    try:
        made = allcc(tmp_path, "-shared", "-fPIC", "lib.c", "-o", str(library), env=gnu)
        assert made.returncode == 0, made.stderr
        linked = allcc(tmp_path, "main.c", "-lzz-allvm-test", "-o", "prog", env=gnu)
        assert linked.returncode == 0, linked.stderr
        assert subprocess.run([tmp_path / "prog"], capture_output=True, text=True).stdout \
            == "twice=2\n"
    finally:
        library.unlink(missing_ok=True)


def test_traditional_preprocessing_pastes_across_comments(tmp_path):
    """imake's templates (Imake.tmpl): `gcc -E -traditional` pastes `<`, `X11` and `.rules>`
    into one name (clang's traditional mode: `' X11 .rules' file not found`)."""
    (tmp_path / "X11.rules").write_text("pasted\n")
    (tmp_path / "t.c").write_text("#define Concat3(a,b,c)a/**/b/**/c\n"
                                  "#define RULES Concat3(<,X11,.rules>)\n#include RULES\n")
    run = allcc(tmp_path, "-E", "-traditional", "-I.", "t.c")
    assert run.returncode == 0, run.stderr
    assert "pasted" in run.stdout


def test_configure_style_probes(tmp_path):
    """What autoconf does: compile+link+run a conftest, a failing compile, preprocess, -M."""
    (tmp_path / "conftest.c").write_text("#include <stdio.h>\nint main(void){return 3;}\n")
    assert allcc(tmp_path, "-g", "-O2", "conftest.c", "-o", "conftest").returncode == 0
    assert subprocess.run([tmp_path / "conftest"]).returncode == 3
    (tmp_path / "bad.c").write_text("int main(void) { return undeclared; }\n")
    bad = allcc(tmp_path, "-c", "bad.c")
    assert bad.returncode != 0 and "undeclared" in bad.stderr
    assert bad.stderr.count("error:") == 1  # reported once, not again by the bitcode compile
    assert not (tmp_path / "bad.o").exists()
    pre = allcc(tmp_path, "-E", "-DVALUE=42", "-", input="int x = VALUE;\n")
    assert pre.returncode == 0 and "int x = 42;" in pre.stdout
    to_null = allcc(tmp_path, "-c", "conftest.c", "-o", "/dev/null")
    assert to_null.returncode == 0, to_null.stderr
    to_null = allcc(tmp_path, "conftest.c", "-o", "/dev/null")
    assert to_null.returncode == 0, to_null.stderr
    assert not [f for f in os.listdir("/dev") if f.endswith(".bc")]
    deps = allcc(tmp_path, "-MM", "conftest.c")
    assert deps.stdout.startswith("conftest.o: conftest.c")
    version = allcc(tmp_path, "--version")
    assert version.returncode == 0 and "clang version" in version.stdout


def test_dependency_files_name_the_object_not_the_bitcode(tmp_path):
    write_sources(tmp_path)
    proc = allcc(tmp_path, "-MD", "-MP", "-MF", "main.d", "-c", "main.c", "-o", "main.o")
    assert proc.returncode == 0, proc.stderr
    deps = (tmp_path / "main.d").read_text()
    assert deps.startswith("main.o:") and "twice.h" in deps and ".bc" not in deps
    proc = allcc(tmp_path, "-Wp,-MD,lib.d", "-c", "lib.c")  # the Linux kernel's spelling
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "lib.d").read_text().startswith("lib.o:")


def test_assembly_output_and_sources(tmp_path):
    write_sources(tmp_path)
    assert allcc(tmp_path, "-S", "lib.c").returncode == 0
    assert "twice:" in (tmp_path / "lib.s").read_text()
    (tmp_path / "square.S").write_text(SQUARE_S)
    (tmp_path / "use.c").write_text(USES_SQUARE_C)
    proc = allcc(tmp_path, "use.c", "square.S", "-o", "sq")
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([tmp_path / "sq"], capture_output=True, text=True).stdout \
        == "square=4\n"
    # The assembled object records its source: extraction reports that code as missing.
    assert section_of(tmp_path / "sq") == [str(tmp_path / ".sq.use.o.bc"),
                                           str(tmp_path / "square.S")]


def test_shared_library_and_archive_carry_their_members(tmp_path):
    write_sources(tmp_path)
    assert allcc(tmp_path, "-fPIC", "-shared", "lib.c", "-o", "libtwice.so").returncode == 0
    assert section_of(tmp_path / "libtwice.so") == [str(tmp_path / ".libtwice.so.lib.o.bc")]
    assert allcc(tmp_path, "-c", "lib.c").returncode == 0
    (tmp_path / "static").mkdir()
    subprocess.run(["ar", "rcs", "static/libtwice.a", "lib.o"], cwd=tmp_path, check=True)
    proc = allcc(tmp_path, "main.c", "-Lstatic", "-ltwice", "-o", "prog")
    assert proc.returncode == 0, proc.stderr
    assert section_of(tmp_path / "prog") == [str(tmp_path / ".prog.main.o.bc"),
                                             str(tmp_path / ".lib.o.bc")]


def test_no_sanitizer_runtime_without_optimization(tmp_path):
    """zig enables UBSan at -O0; a drop-in cc must not (its runtime is no platform part)."""
    write_sources(tmp_path)
    assert allcc(tmp_path, "-c", "main.c").returncode == 0
    assert b"__ubsan" not in (tmp_path / ".main.o.bc").read_bytes()


def test_cxx_wrapper(tmp_path):
    (tmp_path / "shape.cc").write_text(
        "struct Shape { virtual int area() const = 0; };\n"
        "struct Square : Shape { int s; Square(int s) : s(s) {} "
        "int area() const override { return s * s; } };\n"
        "template <class T> int area_of(const T &t) { return t.area(); }\n"
        "int main(int argc, char **) { Square q(argc + 2); return area_of(q); }\n")
    proc = allcc(tmp_path, "-O2", "shape.cc", "-o", "shape", name="allc++")
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([tmp_path / "shape"]).returncode == 9
    assert section_of(tmp_path / "shape") == [str(tmp_path / ".shape.shape.o.bc")]
