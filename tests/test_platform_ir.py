"""alltogether -platform-ir: the program and the libc it uses as one optimized IR module, linked
with the native runtime only. Each test program prints exactly what its native static musl
build (`zig cc -O2 -static`) prints. The platform IR is the set-up's build (make setup)."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import compile_c, run_tool, tool_path

from allvm.toolchain import GNU_TARGET, MUSL_TARGET, zig_command, zig_env

DATA = Path(__file__).parent / "data" / "platform_ir"
PROGRAMS = ("stdio_heap", "threads_signals", "fenv_math")
STDIN = "a line\nand another, with aaa\n"
# What the static link itself defines (musl refers to them weakly).
LINKER_DEFINED = {"_DYNAMIC", "__init_array_start", "__init_array_end", "__fini_array_start",
                  "__fini_array_end"}


def native_build(source: Path, out: Path) -> Path:
    subprocess.run(zig_command("cc", "-target", MUSL_TARGET, "-O2", "-static", str(source),
                               "-o", str(out)),
                   env=zig_env(), check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """{program: (its -platform-ir allexe, its native static build)}, built once."""
    work = tmp_path_factory.mktemp("platform_ir")
    built = {}
    for name in PROGRAMS:
        source = DATA / f"{name}.c"
        allexe = work / f"{name}.allexe"
        proc = run_tool("bc2allvm", compile_c(source, work / f"{name}.bc"), "-o", allexe)
        assert proc.returncode == 0, proc.stderr
        whole = work / f"{name}.whole.allexe"
        proc = run_tool("alltogether", "-platform-ir", "-q", allexe, "-o", whole)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == ""
        built[name] = (whole, native_build(source, work / name))
    return built


def run_both(built, name: str, *runner: str) -> tuple[subprocess.CompletedProcess, ...]:
    whole, native = built[name]
    ir = subprocess.run([*runner, str(whole)], input=STDIN, capture_output=True, text=True,
                        timeout=120)
    reference = subprocess.run([str(native)], input=STDIN, capture_output=True, text=True,
                               timeout=120)
    return ir, reference


@pytest.mark.parametrize("name", PROGRAMS)
def test_output_is_the_native_builds(built, name):
    """stdio, heap, qsort, errno, locale, atexit/destructors, threads+TLS, setjmp, signals,
    fenv and long double: the same output and exit status as the native static build."""
    ir, reference = run_both(built, name, tool_path("alley"))
    assert ir.stderr == reference.stderr
    assert ir.stdout == reference.stdout
    assert ir.returncode == reference.returncode


def test_force_static_and_allready_link_the_native_runtime_only(built):
    """The cached static binary of a platform-IR allexe is the program and its libc; allready
    builds the same one alley -force-static runs."""
    whole, _ = built["threads_signals"]
    proc = run_tool("allready", whole)
    assert proc.returncode == 0, proc.stderr
    ir, reference = run_both(built, "threads_signals",
                             tool_path("alley"), "-force-static")
    assert (ir.stdout, ir.returncode) == (reference.stdout, reference.returncode) == (
        reference.stdout, 5)


def test_imports_are_the_native_runtimes(built):
    """all-info -imports: no libc function is imported any more, only the native runtime's
    entry points (assembly: thread set-up, clone, setjmp; compiler_rt: memset, strlen)."""
    whole, _ = built["stdio_heap"]
    proc = run_tool("all-info", "-imports", "-json", whole)
    assert proc.returncode == 0, proc.stderr
    imports = {item["name"] for item in json.loads(proc.stdout)["imports"]}
    for libc_function in ("printf", "qsort", "malloc", "getc", "setlocale", "strerror"):
        assert libc_function not in imports
    from allvm.platform.libc_ir import load

    platform = load()
    native = set().union(*(defines for defines, _ in platform.natives.values()))
    assert imports - native == LINKER_DEFINED

    assert "__set_thread_area" in imports


def attributes_of(ir: str, function: str) -> str:
    """The attribute group of a function defined in textual IR."""
    group = re.search(rf"^define .*@{function}\(.*\) .*#(\d+) .*\{{$", ir, re.MULTILINE)[1]
    return re.search(rf"^attributes #{group} = (.*)$", ir, re.MULTILINE)[1]


def test_libc_inlines_into_the_program(built):
    """The attribute policy: getc, putc (stdio without floating point) lose musl's
    no-builtins/strictfp and inline into main's loop; printf's formatting of floating-point
    numbers keeps strictfp (it honours the rounding mode), so it is not inlined into main."""
    whole, _ = built["stdio_heap"]
    proc = run_tool("allopt", "-analyze", "-i", whole, "-dis")
    assert proc.returncode == 0, proc.stderr
    main = re.search(r"^define [^@]*@main\(.*?^}", proc.stdout, re.MULTILINE | re.DOTALL)[0]
    assert "@getc(" not in main and "@putc(" not in main
    assert "@locking_getc(" in main  # what getc calls: getc itself was inlined
    assert "strictfp" not in attributes_of(proc.stdout, "main")
    assert "strictfp" in attributes_of(proc.stdout, "printf_core")


def test_deny_policy_sees_system_inside_the_program(tmp_path):
    """A program that calls system() defines it itself after -platform-ir: the policy still
    refuses it (it checks what the program reaches, not only what it imports). Such an allexe
    is whole: alltogether refuses to merge it again."""
    bc = compile_c('#include <stdlib.h>\nint main(void) { return system("true"); }\n',
                   tmp_path / "sys.bc")
    allexe = tmp_path / "sys.allexe"
    assert run_tool("bc2allvm", bc, "-o", allexe).returncode == 0
    whole = tmp_path / "sys.whole.allexe"
    proc = run_tool("alltogether", "-platform-ir", "-q", allexe, "-o", whole)
    assert proc.returncode == 0, proc.stderr
    imports = json.loads(run_tool("all-info", "-imports", "-json", whole).stdout)["imports"]
    assert "system" not in {item["name"] for item in imports}
    proc = run_tool("alley", "-deny=system", whole)
    assert proc.returncode != 0
    assert "references denied function 'system'" in proc.stderr
    assert "'main.bc (libc in IR)'" in proc.stderr
    assert proc.stdout == ""
    assert "denied group 'exec'" in run_tool("alley", "-deny=exec", whole).stderr
    assert run_tool("alley", "-deny=net", whole).returncode == 0
    for again in ([], ["-platform-ir"]):  # it is whole: merging it again is refused
        proc = run_tool("alltogether", *again, whole, "-o", tmp_path / "again.allexe")
        assert proc.returncode == 1
        assert "already carries its libc in IR" in proc.stderr
        assert not (tmp_path / "again.allexe").exists()


def test_glibc_programs_are_refused(tmp_path, hello_c):
    """The platform IR is musl's: a glibc allexe gets one line, and no output is written."""
    bc = compile_c(hello_c, tmp_path / "hello.bc", target=GNU_TARGET)
    allexe = tmp_path / "hello.allexe"
    assert run_tool("bc2allvm", bc, "-o", allexe).returncode == 0
    proc = run_tool("alltogether", "-platform-ir", "-q", allexe, "-o", tmp_path / "out.allexe")
    assert proc.returncode == 1
    assert proc.stderr.startswith("alltogether: -platform-ir: the platform IR is static musl's")
    assert len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "out.allexe").exists()


def test_calls_the_optimizer_creates_are_linked_in(tmp_path, monkeypatch):
    """printf("hello\\n") becomes puts only once the program is one module (the format string
    comes from another module): without the usual preselection, the link is redone with puts
    kept, and the program runs."""
    from allvm import libc_link
    from allvm.allexe import MAIN_MODULE, Allexe, write_allexe
    from allvm.link import merge_allexe
    from allvm.platform import libc_ir

    monkeypatch.setattr(libc_link, "DERIVED_CALLS", {})
    main_bc = compile_c('void greet(const char *format);\n'
                        'int main(void) { greet("hello, allvm\\n"); return 0; }\n',
                        tmp_path / "main.bc")
    lib_bc = compile_c('#include <stdio.h>\nvoid greet(const char *format) { printf(format); }\n',
                       tmp_path / "lib.bc")
    allexe = tmp_path / "greet.allexe"
    assert run_tool("bc2allvm", main_bc, lib_bc, "-o", allexe).returncode == 0
    said = []
    module = libc_link.link_with_libc(merge_allexe(Allexe.open(str(allexe))), libc_ir.load(),
                                      progress=said.append)
    assert any("puts" in line and "linking again" in line for line in said), said
    whole = tmp_path / "greet.whole.allexe"
    write_allexe(str(whole), [(MAIN_MODULE, module.as_bitcode())], force=False)
    proc = run_tool("alley", whole)
    assert (proc.stdout, proc.returncode) == ("hello, allvm\n", 0), proc.stderr


def test_each_zig_gets_its_own_platform_ir(tmp_path, monkeypatch):
    """The platform IR lives in zig's cache, keyed by the zig binary: another zig (another
    musl, other flags) builds its own instead of reusing a stale one."""
    from allvm.platform import libc_ir

    here = libc_ir.platform_dir()
    assert here.startswith(libc_ir.zig_cache_dir() + os.sep)
    other_zig = tmp_path / "zig"
    other_zig.write_bytes(b"another zig")
    monkeypatch.setattr(libc_ir, "zig_binary", lambda: str(other_zig))
    assert libc_ir.platform_dir() != here


def test_new_libc_fixes_get_their_own_platform_ir(monkeypatch):
    """The fixes are the platform IR's first member: changed fixes build a new platform IR."""
    from allvm.platform import libc, libc_ir

    here = libc_ir.platform_dir()
    monkeypatch.setattr(libc, "SOURCE", libc.SOURCE + "/* changed */\n")
    assert libc_ir.platform_dir() != here


@pytest.mark.parametrize(("module", "name"), [("strings", "SOURCE"), ("malloc", "GLUE"),
                                              ("malloc", "TARBALL_SHA256")])
def test_a_new_allocator_or_string_functions_get_their_own_platform_ir(monkeypatch, module,
                                                                      name):
    """The allocator and the string functions are members too: changing either (or the pinned
    mimalloc source) builds a new platform IR."""
    import importlib

    from allvm.platform import libc_ir

    here = libc_ir.platform_dir()
    source = importlib.import_module(f"allvm.platform.{module}")
    monkeypatch.setattr(source, name, getattr(source, name) + "/* changed */")
    assert libc_ir.platform_dir() != here


def test_the_platforms_own_members_provide_their_symbols():
    """Whatever a program pulls in first, the fixes, the allocator and the string functions
    provide what they define: no libc member (zig's lib/c.zig defines strchr and qsort alike)
    claims one of their symbols in the index, so the archive-style selection never takes a
    member pulled in for another symbol as their provider."""
    from allvm.platform import libc_ir

    platform = libc_ir.load()
    own = (libc_ir.FIXES_MEMBER, libc_ir.ALLOCATOR_MEMBER, libc_ir.STRINGS_MEMBER)
    assert list(platform.members)[:3] == list(own)
    provided = set().union(*(platform.members[m][0] for m in own))
    assert {"malloc", "free", "posix_memalign", "strchr", "strcmp", "tolower"} <= provided
    for name, (defines, _) in platform.members.items():
        if name not in own:
            assert not defines & provided, name
