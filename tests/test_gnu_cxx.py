"""C++ on the gnu target is Debian's: allc++ compiles against libstdc++'s headers and links
Debian's libstdc++.so.6, and alley's paths link the same runtime (and only it) into the
allexe's program. The test program (tests/data/gnu_cxx) passes std::strings to Debian's
Boost.Program_options, catches the exceptions Boost throws, throws through Boost's code from
a callback, throws across its own translation units, and prints the file its C++ runtime
lives in (libstdc++.so.6; a runtime linked into the program would name the program).
Natively, on alley's JIT path, its in-process choice, its static path, and with each
translation unit a module of its own (bc2allvm), it prints the same and exits the same."""

import os
import subprocess
from pathlib import Path

import pytest
from conftest import run_tool, tool_path

from allvm import platform
from allvm.codegen import compile_module
from allvm.elf import DT_NEEDED, Elf
from allvm.platform import Needs, cxx, program_needs
from allvm.toolchain import GNU_TARGET

DATA = Path(__file__).parent / "data" / "gnu_cxx"
SOURCES = [DATA / "main.cpp", DATA / "greeting.cpp"]
GNU = {**os.environ, "ALLVM_CC_TARGET": GNU_TARGET}
BOOST = "/usr/lib/x86_64-linux-gnu/libboost_program_options.so"  # libboost-program-options-dev
# (arguments, what the program must print, its exit status)
RUNS = [
    ((), "hello world\nC++ runtime: libstdc++.so.6\n", 0),
    (("--name", "allvm", "--count", "2"), "hello allvm, hello allvm\nC++ runtime: "
     "libstdc++.so.6\n", 0),
    (("--colour",), "options: unrecognised option '--colour'\n", 2),  # Boost's exception
    (("--count", "0"), "out of range: count 0 < 1\n", 3),  # thrown through Boost's code
    (("--name", "nobody"), "refused: refused to greet nobody\n", 4),  # across modules
]


def allcxx(*args, cwd: Path) -> None:
    proc = run_tool("allc++", *args, cwd=cwd, env=GNU)
    assert proc.returncode == 0, proc.stderr


def needed(binary: Path) -> list[str]:
    return [v for tag, v in Elf(binary.read_bytes(), str(binary)).dynamic_entries()
            if tag == DT_NEEDED]


def run(command: list, *args) -> tuple[str, int]:
    proc = subprocess.run([*map(str, command), *args], capture_output=True, text=True,
                          timeout=300)
    assert not proc.stderr, proc.stderr
    return proc.stdout, proc.returncode


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The program built with allc++ for the gnu target, its allexe (wllvm-extract: Boost and
    libstdc++ recorded as dependent libraries), and an allexe of its translation units'
    bitcode as two modules (`allc++ -c -emit-llvm`, bc2allvm) with Boost named by a flag."""
    d = tmp_path_factory.mktemp("gnu-cxx")
    allcxx("-O2", "-Wall", "-Wextra", "-Werror", *SOURCES, "-o", d / "greet",
           "-lboost_program_options", cwd=d)
    proc = run_tool("wllvm-extract", d / "greet", "-o", d / "greet.allexe")
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    boost = f"--dependent-lib={BOOST}"
    for source in SOURCES:
        extra = ["-Xclang", boost] if source.stem == "main" else []
        allcxx("-O2", "-c", "-emit-llvm", *extra, source, "-o", d / f"{source.stem}.bc", cwd=d)
    proc = run_tool("bc2allvm", d / "main.bc", d / "greeting.bc", "-o", d / "modules.allexe")
    assert proc.returncode == 0, proc.stderr
    return {"native": d / "greet", "extracted": d / "greet.allexe",
            "modules": d / "modules.allexe"}


def test_native_build_links_debians_libstdcxx(built):
    libraries = needed(built["native"])
    assert "libstdc++.so.6" in libraries and "libgcc_s.so.1" in libraries
    assert any(name.startswith("libboost_program_options.so") for name in libraries)
    for args, output, status in RUNS:
        assert run([built["native"]], *args) == (output, status)


@pytest.mark.parametrize("allexe", ["extracted", "modules"])
@pytest.mark.parametrize("path", [[], ["-jit=inprocess"], ["-force-static"]])
def test_alley_paths_run_it_with_libstdcxx(built, allexe, path):
    """The JIT path, -jit=inprocess (a C++ program takes the exec path) and the static path."""
    for args, output, status in RUNS:
        assert run([tool_path("alley"), *path, built[allexe]], *args) == (output, status)


def test_cached_static_binary(built, tmp_path):
    allexe = tmp_path / "greet.allexe"
    allexe.write_bytes(built["extracted"].read_bytes())
    env = {**os.environ, "ALLVM_CACHE_DIR": str(tmp_path / "cache")}
    assert run_tool("allready", allexe, env=env).returncode == 0
    binaries = list((tmp_path / "cache").rglob("static_binaries/*"))
    assert [b for b in binaries if b.is_file() and "libstdc++.so.6" in needed(b)]
    for args, output, status in RUNS:
        proc = run_tool("alley", allexe, *args, env=env)
        assert (proc.stdout, proc.returncode) == (output, status), proc.stderr


def test_a_module_compiled_by_allcxx_names_libstdcxx(built, monkeypatch):
    """Each gnu C++ module says it needs libstdc++ (its dependent library, kept in its object
    and the object's tag); a program with such a module links libstdc++ and libgcc_s after
    its objects with `zig cc`, never zig's libc++ (`zig c++`), whatever its other modules
    need."""
    module = built["native"].parent / "greeting.bc"
    obj, needs = compile_module(module.read_bytes(), "greeting.bc")
    assert needs.cxx == cxx.LIBSTDCXX
    assert cxx.libstdcxx_path() in cxx.object_dependent_libraries(obj)
    assert Needs.from_tag(needs.tag()) == needs and needs.tag().endswith(b" libstdc++")
    program = program_needs([Needs(needs.triple, cxx.LIBCXX), needs])
    assert program.cxx == cxx.LIBSTDCXX
    linked = []
    monkeypatch.setattr(platform, "zig_link",
                        lambda flags, inputs, output, driver: linked.append((inputs, driver)))
    platform.link_executable(["a.o"], program, "prog")
    assert linked == [(["a.o", *cxx.libstdcxx_libraries()], "cc")]


SMALL = """#include <stdexcept>
#include <string>
std::string twice(const std::string &s) { if (s.empty()) throw std::invalid_argument("empty");
  return s + s; }
int main(int argc, char **argv) {
  try { return twice(argc > 1 ? argv[1] : "").size() == 4 ? 0 : 1; }
  catch (const std::invalid_argument &) { return 5; } }
"""


def test_every_kind_of_build_step_uses_libstdcxx(tmp_path):
    """As with g++: a compile, then a link by the C compiler with `-lstdc++` (zig alone would
    link its libc++); a compile-and-link to /dev/null (configure's probes); preprocessing;
    a shared library."""
    (tmp_path / "t.cpp").write_text(SMALL)
    allcxx("-c", "t.cpp", "-o", "t.o", cwd=tmp_path)
    proc = run_tool("allcc", "t.o", "-o", "t", "-lstdc++", cwd=tmp_path, env=GNU)
    assert proc.returncode == 0, proc.stderr
    assert "libstdc++.so.6" in needed(tmp_path / "t")
    assert [subprocess.run([tmp_path / "t", *a]).returncode for a in (["ab"], [])] == [0, 5]
    allcxx("t.cpp", "-o", "/dev/null", cwd=tmp_path)
    proc = run_tool("allc++", "-E", "t.cpp", cwd=tmp_path, env=GNU)
    headers = cxx.libstdcxx_include_dirs()[0]
    assert proc.returncode == 0 and f"{headers}/string" in proc.stdout, proc.stderr
    allcxx("-shared", "-fPIC", "t.cpp", "-o", "libt.so", cwd=tmp_path)
    assert "libstdc++.so.6" in needed(tmp_path / "libt.so")
