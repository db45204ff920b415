"""C++ programs as allexes: the platform links the C++ runtime `zig c++` links
(libc++, libc++abi, libunwind) into programs whose IR needs it. The test program
(tests/data/cxx: two translation units) checks exceptions and RTTI across translation units
and modules, static constructors/destructors in order (also on exit()), thread_local,
std::thread, iostreams and a replaced operator new; every path must print what the native
`allc++` build prints and exit with its status."""

import os
import subprocess
from pathlib import Path

import pytest
from conftest import build_allexe, run_tool, tool_path

from allvm import platform
from allvm.codegen import compile_module
from allvm.platform import Needs
from allvm.toolchain import GNU_TARGET, MUSL_TARGET, zig_command, zig_env

DATA = Path(__file__).parent / "data" / "cxx"
SOURCES = [DATA / "main.cpp", DATA / "shapes.cpp"]
C_PROGRAM = '#include <stdio.h>\nint main(void) { puts("a C program"); return 7; }\n'


def run(command, *args) -> tuple[str, int]:
    proc = subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    assert not proc.stderr, proc.stderr
    return proc.stdout, proc.returncode


def alley(*args) -> tuple[str, int]:
    return run([tool_path("alley")], *args)


def bitcode(source: Path, out: Path, target: str) -> Path:
    subprocess.run(zig_command("c++", "-target", target, "-O2", "-c", "-emit-llvm", str(source),
                               "-I", str(DATA), "-o", str(out)),
                   env=zig_env(), check=True, capture_output=True, timeout=300)
    return out


def built(directory: Path, target: str) -> dict[str, Path]:
    """The program built natively with allc++, its allexe by wllvm-extract (both translation
    units in main.bc), and a second allexe with each translation unit a module of its own."""
    native = directory / "shapes"
    proc = run_tool("allc++", "-O2", *SOURCES, "-o", native, cwd=directory,
                    env={**os.environ, "ALLVM_CC_TARGET": target})
    assert proc.returncode == 0, proc.stderr
    extracted = directory / "shapes.allexe"
    proc = run_tool("wllvm-extract", native, "-o", extracted)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    modules = directory / "modules.allexe"
    proc = run_tool("bc2allvm", *(bitcode(s, directory / f"{s.stem}.bc", target)
                                  for s in SOURCES), "-o", modules)
    assert proc.returncode == 0, proc.stderr
    return {"native": native, "extracted": extracted, "modules": modules}


@pytest.fixture(scope="module")
def musl(tmp_path_factory):
    return built(tmp_path_factory.mktemp("cxx-musl"), MUSL_TARGET)


@pytest.fixture(scope="module")
def expected(musl):
    """What the native build prints, and its status: returning from main, and exit(3)."""
    return {args: run([str(musl["native"])], *args) for args in ((), ("exit",))}


@pytest.mark.parametrize("args", [(), ("exit",)])
@pytest.mark.parametrize("allexe", ["extracted", "modules"])
def test_jit_path(musl, expected, allexe, args):
    assert alley(musl[allexe], *args) == expected[args]


@pytest.mark.parametrize("allexe", ["extracted", "modules"])
def test_static_paths(musl, expected, allexe):
    assert alley("-force-static", musl[allexe], "exit") == expected[("exit",)]
    assert run_tool("allready", musl[allexe]).returncode == 0
    assert alley(musl[allexe]) == expected[()]  # the cached static binary


def test_alltogether(musl, expected, tmp_path):
    merged = tmp_path / "merged.allexe"
    proc = run_tool("alltogether", musl["modules"], "-o", merged, "-q")
    assert proc.returncode == 0, proc.stderr
    assert alley(merged, "exit") == expected[("exit",)]


def muxed(expected: tuple[str, int]) -> tuple[str, int]:
    """What a muxed program prints: its replaced operator new serves its own code only (two
    programs of a mux may each replace it), not the C++ runtime's allocations."""
    output, status = expected
    runtime = "replaced operator new used: 1, by the C++ runtime: "
    assert runtime + "1\n" in output
    return output.replace(runtime + "1\n", runtime + "0\n"), status


def test_allmux_cxx_with_cxx_and_c(musl, expected, tmp_path):
    """Two C++ programs (the same template instantiations in both, each kept internal) and a
    C program in one mux, on the JIT path, its static binary and its alltogether form."""
    other = tmp_path / "other.allexe"
    other.write_bytes(musl["extracted"].read_bytes())
    c_program = build_allexe(tmp_path, "cprog", C_PROGRAM)
    mux = tmp_path / "mux.allexe"
    proc = run_tool("allmux", musl["extracted"], other, c_program, "-o", mux)
    assert proc.returncode == 0, proc.stderr
    merged = tmp_path / "mux.merged.allexe"
    assert run_tool("alltogether", mux, "-o", merged, "-q").returncode == 0
    for name in ("shapes", "other"):
        assert alley(mux, name, "exit") == muxed(expected[("exit",)])
    assert alley("-force-static", mux, "other") == muxed(expected[()])
    assert alley(merged, "shapes", "exit") == muxed(expected[("exit",)])
    assert alley(mux, "cprog") == alley(merged, "cprog") == ("a C program\n", 7)


def test_gnu_exec_and_inprocess_paths(tmp_path):
    """A gnu C++ allexe on the exec path, and with -jit=inprocess (which runs it on the exec
    path: zig's C++ runtime is built for static links only and cannot be loaded in-process)."""
    gnu = built(tmp_path, GNU_TARGET)
    native = run([str(gnu["native"])], "exit")
    assert native[1] == 3
    assert alley(gnu["modules"], "exit") == native
    assert alley("-jit=inprocess", gnu["extracted"], "exit") == native


def test_only_programs_that_need_it_get_the_cxx_runtime(tmp_path, monkeypatch):
    """A C module needs no C++ runtime, and its link is `zig cc`'s; a C++ module's is
    `zig c++`'s. What a module needs is kept with its cached object."""
    c_module = build_allexe(tmp_path, "c", C_PROGRAM).with_suffix(".bc")
    c_object, c_needs = compile_module(c_module.read_bytes(), "main.bc")
    cxx_module = bitcode(DATA / "shapes.cpp", tmp_path / "shapes.bc", MUSL_TARGET)
    cxx_needs = compile_module(cxx_module.read_bytes(), "shapes.bc")[1]
    assert not c_needs.cxx and cxx_needs.cxx
    assert Needs.from_tag(cxx_needs.tag()) == cxx_needs
    assert Needs.from_tag(c_needs.tag()) == c_needs and b"c++" not in c_needs.tag()
    drivers = []
    monkeypatch.setattr(platform, "zig_link", lambda *a, driver: drivers.append(driver))
    platform.link_executable(["c.o"], c_needs, "c")
    platform.link_executable(["c.o", "shapes.o"], platform.program_needs([c_needs, cxx_needs]),
                             "cxx")
    assert drivers == ["cc", "c++"]


def test_imports_show_the_cxx_runtime(musl):
    proc = run_tool("all-info", "-imports", musl["modules"])
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "\t__cxa_throw (main.bc, shapes.bc) [C++ runtime]" in lines
    assert "\t__dynamic_cast (main.bc) [C++ runtime]" in lines
    assert "\tmalloc (main.bc)" in lines  # the libc's
    assert not any(line.startswith("\t_Znwm") for line in lines)  # the program's own


UNRESOLVED_CPP = """
void missing(int);
namespace ns { struct T { T(); void go(const char *) const; }; }
extern "C" void c_missing(void);
int main() { missing(1); ns::T t; t.go("x"); c_missing(); missing(2); return 0; }
"""


@pytest.mark.parametrize("path", [[], ["-force-static"]])
def test_unresolved_cxx_symbols_named_whole_and_counted(tmp_path, path):
    source = tmp_path / "unresolved.cpp"
    source.write_text(UNRESOLVED_CPP)
    allexe = tmp_path / "unresolved.allexe"
    bc = bitcode(source, tmp_path / "unresolved.bc", MUSL_TARGET)
    assert run_tool("bc2allvm", bc, "-o", allexe).returncode == 0
    proc = run_tool("alley", *path, allexe)
    assert proc.returncode == 1
    # missing(int), ns::T::T(), ns::T::go(char const*) const, c_missing: four distinct.
    assert proc.stderr == ("alley: Program used external function 'missing(int)' which could "
                           "not be resolved! (and 3 more)\n")
