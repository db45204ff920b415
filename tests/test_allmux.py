"""allmux: dispatch on argv[0], per-program constructors and destructors, shared libraries once,
and the multiplexed allexe through every way of running it."""

import os
import re
import subprocess

import pytest
from conftest import compile_c, run_tool, tool_path

from allvm.allexe import Allexe
from allvm.ir import parse_module
from allvm.toolchain import GNU_TARGET, MUSL_TARGET

# A library both programs use: its constructor must run for whichever program is selected.
SHARED_LIB = r"""
#include <stdio.h>
__attribute__((constructor)) static void init(void) { puts("ctor shared"); }
__attribute__((destructor)) static void fini(void) { puts("dtor shared"); }
int shared_value(void) { return 42; }
"""

# A library only program b uses.
B_LIB = r"""
#include <stdio.h>
__attribute__((constructor)) static void init(void) { puts("ctor b-lib"); }
__attribute__((destructor)) static void fini(void) { puts("dtor b-lib"); }
"""

# Both programs define the same non-static names (`init`, `helper`) with different bodies.
PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int shared_value(void);
__attribute__((constructor)) void init(void) { puts("ctor NAME"); }
__attribute__((destructor)) static void fini(void) { puts("dtor NAME"); }
EXTRA
int helper(void) { return HELPER; }
int main(int argc, char **argv) {
    printf("main NAME %d %d argv0=%s argc=%d\n", shared_value(), helper(), argv[0], argc);
    if (argc > 1 && strcmp(argv[1], "exit") == 0) exit(3);
    return 0;
}
"""

# Program a also has a prioritized constructor: it runs before every default-priority one.
PROGRAM_A = PROGRAM.replace("NAME", "a").replace("HELPER", "1").replace(
    "EXTRA", '__attribute__((constructor(101))) static void early(void) { puts("ctor a early"); }')
PROGRAM_B = PROGRAM.replace("NAME", "b").replace("HELPER", "2").replace("EXTRA", "")

EXPECTED_CTORS = {"a": ["ctor a early", "ctor shared", "ctor a"],
                  "b": ["ctor b-lib", "ctor shared", "ctor b"]}
EXPECTED_DTORS = {"a": ["dtor a", "dtor shared"], "b": ["dtor b", "dtor shared", "dtor b-lib"]}


def expected(name: str, argv0: str, argc: int) -> list[str]:
    """What program `name` prints: its constructors, main, its destructors (nothing else's)."""
    helper = {"a": 1, "b": 2}[name]
    return [*EXPECTED_CTORS[name], f"main {name} 42 {helper} argv0={argv0} argc={argc}",
            *EXPECTED_DTORS[name]]


# Old typed-pointer IR: the constructor returns i32, so the table reaches it through a bitcast.
BITCAST_CTOR_IR = r"""
target triple = "x86_64-unknown-linux-musl"
@llvm.global_ctors = appending global [1 x { i32, void ()*, i8* }]
  [{ i32, void ()*, i8* } { i32 65535, void ()* bitcast (i32 ()* @init to void ()*), i8* null }]
@msg = private unnamed_addr constant [12 x i8] c"ctor old-ir\00"
@main.msg = private unnamed_addr constant [12 x i8] c"main old-ir\00"
declare i32 @puts(i8*)
define internal i32 @init() {
  %r = call i32 @puts(i8* getelementptr ([12 x i8], [12 x i8]* @msg, i64 0, i64 0))
  ret i32 0
}
define i32 @main() {
  %r = call i32 @puts(i8* getelementptr ([12 x i8], [12 x i8]* @main.msg, i64 0, i64 0))
  ret i32 0
}
"""

HIDDEN_MAIN = r"""
#include <stdio.h>
__attribute__((visibility("hidden"))) int main(void) { puts("main hidden"); return 5; }
"""


def bc2allvm(out, main, *libs):
    proc = run_tool("bc2allvm", main, *libs, "-o", out)
    assert proc.returncode == 0, proc.stderr
    return out


def mux(out, *allexes, flags=()):
    proc = run_tool("allmux", *allexes, "-o", out, *flags)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    return out


def symlink(target, name):
    """A symlink `name` beside `target`, as a user would install a multicall program."""
    link = target.parent / name
    if not link.is_symlink():
        link.symlink_to(target.name)
    return link


def run_path(path, *args) -> subprocess.CompletedProcess:
    """Run a file directly: an allexe (or a symlink to one) runs through its shebang line."""
    return subprocess.run([str(path), *args], capture_output=True, text=True, timeout=300)


def module_names(allexe) -> list[str]:
    return [m.name for m in Allexe.open(str(allexe)).modules]


def read_module(allexe, name: str):
    opened = Allexe.open(str(allexe))
    entry = next(m for m in opened.modules if m.name == name)
    return parse_module(opened.read_module(entry), name)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The allexes a, b, old and hidden, and the mux of a and b (built once)."""
    d = tmp_path_factory.mktemp("allmux")
    shared = compile_c(SHARED_LIB, d / "libshared.bc")  # one bitcode file in both allexes
    blib = compile_c(B_LIB, d / "libb.bc")
    (d / "old.ll").write_text(BITCAST_CTOR_IR)
    allexes = {
        "a": bc2allvm(d / "a.allexe", compile_c(PROGRAM_A, d / "a.bc"), shared),
        "b": bc2allvm(d / "b.allexe", compile_c(PROGRAM_B, d / "b.bc"), blib, shared),
        "old": bc2allvm(d / "old.allexe", d / "old.ll"),
        "hidden": bc2allvm(d / "hidden.allexe", compile_c(HIDDEN_MAIN, d / "hidden.bc")),
    }
    os.mkdir(d / "mux")
    allexes["ab"] = mux(d / "mux" / "ab.allexe", allexes["a"], allexes["b"])
    return allexes


def check_selected_programs(mux_allexe, runner=()):
    """Each program, selected through a symlink, runs only its own constructors, in order,
    then main, then its destructors: on return from main and after exit()."""
    for name in EXPECTED_CTORS:
        link = symlink(mux_allexe, name)
        argv = [*runner, link] if runner else [link]
        proc = run_path(*argv)
        assert (proc.returncode, proc.stderr) == (0, "")
        assert proc.stdout.splitlines() == expected(name, str(link), 1)
        proc = run_path(*argv, "exit")
        assert (proc.returncode, proc.stderr) == (3, "")
        assert proc.stdout.splitlines() == expected(name, str(link), 2)


def test_shared_library_module_kept_once(inputs):
    assert module_names(inputs["ab"]) == ["main.bc", "libshared.bc", "main_a.bc", "libb.bc",
                                          "main_b.bc"]


def test_programs_selected_through_symlinks(inputs):
    check_selected_programs(inputs["ab"])  # alley's JIT path (nothing cached)


def test_program_selected_by_the_argv0_option(inputs):
    proc = run_tool("alley", "-argv0", "b", inputs["ab"])
    assert proc.stdout.splitlines() == expected("b", "b", 1), proc.stderr


def test_busybox_style_invocation(inputs):
    proc = run_tool("alley", inputs["ab"], "b", "exit")
    assert (proc.returncode, proc.stderr) == (3, "")
    assert proc.stdout.splitlines() == expected("b", "b", 2)


def test_unknown_name_lists_programs(inputs):
    proc = run_path(symlink(inputs["ab"], "zzz"), "nothing-either")
    assert proc.returncode == 127
    assert proc.stderr == "zzz: unknown program name; available programs: a b\n"
    assert proc.stdout == ""  # no program's constructors ran


def test_single_program_with_constructor_through_bitcast(inputs, tmp_path):
    single = mux(tmp_path / "single.allexe", inputs["old"])
    assert module_names(single) == ["main.bc", "main_old.bc"]
    for argv in ([symlink(single, "old")], [single, "old"]):
        proc = run_path(*argv)
        assert (proc.returncode, proc.stderr) == (0, "")
        assert proc.stdout.splitlines() == ["ctor old-ir", "main old-ir"]


def test_hidden_main(inputs, tmp_path):
    both = mux(tmp_path / "both.allexe", inputs["hidden"], inputs["old"])
    proc = run_path(symlink(both, "hidden"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (5, "main hidden\n", "")


def exported_functions(module) -> set[str]:
    return {f.name for f in module.functions
            if not f.is_declaration and f.linkage.name == "external"}


def test_program_symbols_internalized_unless_asked(inputs, tmp_path):
    # a and b both define `helper` and `init`: local to each in the mux (each runs its own,
    # above). Only main_a and the constructors the dispatcher calls stay visible.
    exported = exported_functions(read_module(inputs["ab"], "main_a.bc"))
    assert "main_a" in exported
    assert {name for name in exported if not name.startswith("allmux.")} == {"main_a"}
    kept = mux(tmp_path / "kept.allexe", inputs["a"], flags=["-no-internalize"])
    assert {"main_a", "helper", "init"} <= exported_functions(read_module(kept, "main_a.bc"))


def test_same_library_name_different_content(tmp_path):
    (tmp_path / "p_dir").mkdir()
    (tmp_path / "q_dir").mkdir()
    p_lib = compile_c("int lib_p(void) { return 1; }", tmp_path / "p_dir" / "libx.bc")
    q_lib = compile_c("int lib_q(void) { return 2; }", tmp_path / "q_dir" / "libx.bc")
    p = bc2allvm(tmp_path / "p.allexe",
                 compile_c("int lib_p(void); int main(void) { return lib_p(); }",
                           tmp_path / "p.bc"), p_lib)
    q = bc2allvm(tmp_path / "q.allexe",
                 compile_c("int lib_q(void); int main(void) { return lib_q(); }",
                           tmp_path / "q.bc"), q_lib)
    names = module_names(mux(tmp_path / "pq.allexe", p, q))
    assert names[:3] == ["main.bc", "libx.bc", "main_p.bc"]
    assert names[3].endswith("/libx.bc") and names[4] == "main_q.bc"
    assert run_path(symlink(tmp_path / "pq.allexe", "q")).returncode == 2


def test_after_alltogether_and_allready_with_force_static(inputs, tmp_path):
    merged = tmp_path / "merged.allexe"
    proc = run_tool("alltogether", inputs["ab"], "-o", merged, "-q")
    assert proc.returncode == 0, proc.stderr
    assert module_names(merged) == ["main.bc"]
    proc = run_tool("allready", merged)
    assert proc.returncode == 0, proc.stderr
    check_selected_programs(merged, runner=[tool_path("alley"), "-force-static"])


def test_force_static_builds_the_mux(inputs):
    check_selected_programs(inputs["ab"], runner=[tool_path("alley"), "-force-static"])


def test_duplicate_basenames(inputs, tmp_path):
    (tmp_path / "other").mkdir()
    other = tmp_path / "other" / "a.allexe"
    other.write_bytes(inputs["b"].read_bytes())
    out = tmp_path / "out.allexe"
    proc = run_tool("allmux", inputs["a"], other, "-o", out)
    assert proc.returncode != 0
    assert proc.stderr == "allmux: error: Duplicate basename 'a' encountered\n"
    assert not out.exists()


def test_output_and_input_errors(inputs, tmp_path):
    out = tmp_path / "out.allexe"
    out.write_bytes(b"")
    proc = run_tool("allmux", inputs["a"], "-o", out)
    assert proc.returncode == 1
    assert proc.stderr == "allmux: Output file exists. Use -f flag to force overwrite.\n"
    proc = run_tool("allmux", inputs["a"])
    assert (proc.returncode, proc.stderr) == (1, "allmux: no output file given: use -o OUT\n")
    bad = tmp_path / "bad.allexe"
    bad.write_bytes(b"not a zip")
    proc = run_tool("allmux", inputs["a"], bad, "-o", tmp_path / "new.allexe")
    assert proc.returncode == 1
    assert proc.stderr == f"allmux: Could not open '{bad}': empty or invalid allexe\n"
    assert not (tmp_path / "new.allexe").exists()
    assert out.read_bytes() == b""


def test_glibc_programs_in_process_jit(tmp_path):
    """`*-linux-gnu` allexes: alley runs the mux in its own process (the in-process JIT)."""
    shared = compile_c(SHARED_LIB, tmp_path / "libshared.bc", target=GNU_TARGET)
    blib = compile_c(B_LIB, tmp_path / "libb.bc", target=GNU_TARGET)
    a = bc2allvm(tmp_path / "a.allexe",
                 compile_c(PROGRAM_A, tmp_path / "a.bc", target=GNU_TARGET), shared)
    b = bc2allvm(tmp_path / "b.allexe",
                 compile_c(PROGRAM_B, tmp_path / "b.bc", target=GNU_TARGET), blib, shared)
    (tmp_path / "mux").mkdir()
    check_selected_programs(mux(tmp_path / "mux" / "ab.allexe", a, b))


# Sharing identical definitions across programs. Both programs have the same helper and the
# same mutable global (each program changes it its own way), and a same-named global with
# different initializers.
SHARING_COMMON = r"""
#include <stdio.h>
int counter = 5;
int differ = DIFFER;
__attribute__((noinline)) unsigned checksum(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 16777619u; }
    return h % 1000;
}
"""
SHARING_P = SHARING_COMMON.replace("DIFFER", "1") + r"""
int twin_a(void); int twin_b(void);
int main(int argc, char **argv) {
    counter += argc;
    int a = twin_a();
    a = twin_a();
    printf("p %u %d %d %d %d\n", checksum("allmux"), counter, differ, a, twin_b());
    return 0;
}
"""
SHARING_Q = SHARING_COMMON.replace("DIFFER", "2") + r"""
int twin_a(void);
int main(int argc, char **argv) {
    counter *= argc;
    printf("q %u %d %d %d\n", checksum("allmux"), counter, differ, twin_a());
    return 0;
}
"""
# Linked into p's main module together, these give it two globals alike in all but name,
# `calls` and `calls.1`: they must stay two. (q has one `calls` just like them.)
TWIN_A = "static int calls; int twin_a(void) { return ++calls; }"
TWIN_B = "static int calls; int twin_b(void) { return 10 * ++calls; }"


def fnv1a_mod_1000(text: str) -> int:
    h = 2166136261
    for byte in text.encode():
        h = ((h ^ byte) * 16777619) % 2**32
    return h % 1000


def expected_sharing_output(name: str, argc: int) -> str:
    checksum = fnv1a_mod_1000("allmux")
    if name == "p":  # twin_a counted twice, twin_b once: with their own counters, 2 and 10
        return f"p {checksum} {5 + argc} 1 2 10\n"
    return f"q {checksum} {5 * argc} 2 1\n"


def main_module_of(directory, name: str, target: str, *sources: str):
    """One main module linked from several C sources, as a build's link step makes it."""
    modules = [parse_module(compile_c(source, directory / f"{name}{i}.bc",
                                      target=target).read_bytes(), f"{name}{i}")
               for i, source in enumerate(sources)]
    for module in modules[1:]:
        modules[0].link_in(module)
    out = directory / f"{name}.bc"
    out.write_bytes(modules[0].as_bitcode())
    return out


def sharing_mux(directory, target: str):
    p = bc2allvm(directory / "p.allexe",
                 main_module_of(directory, "p", target, SHARING_P, TWIN_A, TWIN_B))
    q = bc2allvm(directory / "q.allexe", main_module_of(directory, "q", target, SHARING_Q, TWIN_A))
    (directory / "mux").mkdir()
    return mux(directory / "mux" / "pq.allexe", p, q)


@pytest.fixture(scope="module")
def sharing(tmp_path_factory):
    return sharing_mux(tmp_path_factory.mktemp("sharing"), MUSL_TARGET)


def check_sharing_programs(mux_allexe, runner=()):
    for name, args in (("p", []), ("q", ["x", "y"])):
        link = symlink(mux_allexe, name)
        proc = run_path(*runner, link, *args)
        assert (proc.returncode, proc.stderr) == (0, "")
        assert proc.stdout == expected_sharing_output(name, 1 + len(args))


def shared_definitions(module) -> dict[str, str]:
    """{base name: linkage} of the module's `allmux.shared.<key>.<base>` definitions."""
    return {value.name.split(".", 3)[3]: value.linkage.name
            for value in [*module.functions, *module.global_variables]
            if value.name.startswith("allmux.shared.") and not value.is_declaration}


def test_identical_definitions_are_shared(sharing):
    p, q = (read_module(sharing, f"main_{name}.bc") for name in "pq")
    names = {v.name for v in [*p.functions, *p.global_variables]}
    for module in (p, q):
        shared = shared_definitions(module)
        assert shared["checksum"] == shared["counter"] == "linkonce_odr"
        assert not {"differ", "calls", "twin_a"} & shared.keys()
    # One name per key: the same in both programs.
    assert ({n for n in names if n.startswith("allmux.shared.")}
            == {v.name for v in [*q.functions, *q.global_variables]
                if v.name.startswith("allmux.shared.")})
    assert "differ" in names  # still p's own, and both its `calls`
    assert len([n for n in names if re.fullmatch(r"calls(\.\d+)?", n)]) == 2


def test_shared_programs_run_through_symlinks(sharing):
    check_sharing_programs(sharing)


def test_shared_programs_linked_statically(sharing, isolated_cache):
    check_sharing_programs(sharing, runner=[tool_path("alley"), "-force-static"])
    # The linker kept one checksum: FNV-1a's prime, its multiply's operand, is there once.
    (binary,) = (isolated_cache / "static_binaries").iterdir()
    assert binary.read_bytes().count((16777619).to_bytes(4, "little")) == 1


def test_alltogether_keeps_one_copy_of_each_shared_definition(sharing, tmp_path):
    merged = tmp_path / "merged.allexe"
    proc = run_tool("alltogether", sharing, "-o", merged, "-q", "-disable-opt")
    assert proc.returncode == 0, proc.stderr
    module = read_module(merged, "main.bc")
    checksums = [f.name for f in module.functions
                 if f.name.endswith(".checksum") and not f.is_declaration]
    assert len(checksums) == 1 and checksums[0].startswith("allmux.shared.")
    check_sharing_programs(merged)


def test_shared_programs_in_process_jit(tmp_path):
    """MCJIT loads every program's object, each with its copy of the shared definitions."""
    check_sharing_programs(sharing_mux(tmp_path, GNU_TARGET))


# Mutually recursive functions (a cycle of references) and a global; STATE varies by program.
RECURSION_IR = r"""
@state = internal global i32 STATE
define internal i32 @even(i32 %n) {
  %zero = icmp eq i32 %n, 0
  br i1 %zero, label %yes, label %no
yes:
  ret i32 1
no:
  %m = sub i32 %n, 1
  %r = call i32 @odd(i32 %m)
  ret i32 %r
}
define internal i32 @odd(i32 %n) {
  %zero = icmp eq i32 %n, 0
  br i1 %zero, label %yes, label %no
yes:
  ret i32 0
no:
  %m = sub i32 %n, 1
  %r = call i32 @even(i32 %m)
  ret i32 %r
}
define internal i32 @get() {
  %v = load i32, ptr @state
  %e = call i32 @even(i32 %v)
  ret i32 %e
}
define i32 @main() {
  %v = call i32 @get()
  ret i32 %v
}
"""

# An unnamed struct type prints as `%0`, as an unnamed value does; TYPE varies by program.
NUMBERED_TYPE_IR = r"""
%0 = type TYPE
define internal i64 @size(i32 %0) {
  %2 = alloca %0
  %3 = ptrtoint ptr %2 to i64
  ret i64 %3
}
define i32 @main() {
  %1 = call i64 @size(i32 0)
  ret i32 0
}
"""


def sharing_of(*texts: str) -> list[dict[str, str]]:
    """For each module (IR text), {local name: shared name} of what allmux would share."""
    from allvm.sharing import module_definitions, shared_definitions

    printed = [str(parse_module(text.encode(), f"program{i}")) for i, text in enumerate(texts)]
    found = shared_definitions([module_definitions(text) for text in printed])
    return [{definition.name: name for definition, name in shared} for shared in found]


def test_sharing_follows_references_through_cycles():
    x, y, z = sharing_of(*(RECURSION_IR.replace("STATE", state) for state in "001"))
    assert x == y and set(x) == {"state", "get", "even", "odd"}
    # z's state differs, so does z's get (it reads state); the cycle is the same in all three.
    assert z == {name: x[name] for name in ("even", "odd")}


def test_numbered_types_shared_only_with_the_same_types():
    same, also_same, other = sharing_of(*(NUMBERED_TYPE_IR.replace("TYPE", t) for t in
                                          ("{ i32, i32 }", "{ i32, i32 }", "{ i64, i64, i64 }")))
    assert set(same) == {"size"} and same == also_same
    assert other == {}


# A block address and an alias reach into their definition's own code, which the linker could
# discard in a shared copy.
LABEL_BOUND_IR = r"""
@table = internal constant [1 x ptr] [ptr blockaddress(@jump, %target)]
@entry = internal alias i32 (), ptr @aliased
define internal i32 @aliased() {
  ret i32 7
}
define internal i32 @plain() {
  ret i32 8
}
define internal i32 @jump() {
  %a = load ptr, ptr @table
  indirectbr ptr %a, [label %target]
target:
  ret i32 9
}
define i32 @main() {
  %x = call i32 @entry()
  %y = call i32 @jump()
  %z = call i32 @plain()
  ret i32 %z
}
"""


def test_definitions_reached_by_label_not_shared():
    first, second = sharing_of(LABEL_BOUND_IR, LABEL_BOUND_IR)
    assert set(first) == set(second) == {"plain"}


# Libraries of different programs defining the same external symbols (`init`, `level`), each
# with its own constructor; a library both programs have (same bytes) that calls `init`, and
# one that does not.
OWN_LIB = r"""
#include <stdio.h>
__attribute__((constructor)) static void announce(void) { puts("ctor libNAME"); }
int level = LEVEL;
int init(void) { return INIT; }
"""
CALLER_LIB = "int init(void); int call_init(void) { return 100 * init(); }\n"
SHARED_LIB_NO_INIT = r"""
#include <stdio.h>
__attribute__((constructor)) static void announce(void) { puts("ctor shared"); }
int shared_value(void) { return 42; }
"""
OWN_PROGRAM = r"""
#include <stdio.h>
int init(void); int call_init(void); int shared_value(void);
extern int level;
int main(void) {
    printf("NAME %d %d %d %d\n", init(), level, call_init(), shared_value());
    return 0;
}
"""
EXPECTED_OWN = {"a": ["ctor libA", "ctor shared", "a 1 10 100 42"],
                "b": ["ctor libB", "ctor shared", "b 2 20 200 42"]}


def own_libraries_mux(directory, target: str = MUSL_TARGET):
    """Programs a and b, each with its own library defining `init` and `level`, muxed."""
    caller = compile_c(CALLER_LIB, directory / "libcaller.bc", target=target)
    shared = compile_c(SHARED_LIB_NO_INIT, directory / "libshared.bc", target=target)
    allexes = []
    for name, init in (("a", 1), ("b", 2)):
        own = OWN_LIB.replace("NAME", name.upper()).replace("LEVEL", str(10 * init))
        lib = compile_c(own.replace("INIT", str(init)), directory / f"lib{name.upper()}.so.bc",
                        target=target)
        main = compile_c(OWN_PROGRAM.replace("NAME", name), directory / f"{name}.bc",
                         target=target)
        allexes.append(bc2allvm(directory / f"{name}.allexe", main, lib, caller, shared))
    (directory / "mux").mkdir()
    return mux(directory / "mux" / "ab.allexe", *allexes)


def check_own_libraries(mux_allexe, runner=()):
    for name, lines in EXPECTED_OWN.items():
        proc = run_path(*runner, symlink(mux_allexe, name))
        assert (proc.returncode, proc.stderr) == (0, "")
        assert proc.stdout.splitlines() == lines


@pytest.fixture(scope="module")
def own_libraries(tmp_path_factory):
    return own_libraries_mux(tmp_path_factory.mktemp("own"))


def test_libraries_defining_one_symbol_stay_each_programs_own(own_libraries):
    names = module_names(own_libraries)
    # The library calling `init` is one copy per program's `init`; the other stays one copy.
    assert names[:5] == ["main.bc", "libA.so.bc", "libcaller.bc", "libshared.bc", "main_a.bc"]
    assert names[5] == "libB.so.bc" and names[6].endswith("/libcaller.bc")
    assert names[7:] == ["main_b.bc"]
    check_own_libraries(own_libraries)  # alley's JIT path


def test_own_libraries_linked_statically(own_libraries):
    proc = run_tool("allready", own_libraries)
    assert proc.returncode == 0, proc.stderr
    check_own_libraries(own_libraries)  # the cached static binary
    check_own_libraries(own_libraries, runner=[tool_path("alley"), "-force-static"])


def test_own_libraries_after_alltogether(own_libraries, tmp_path):
    merged = tmp_path / "merged.allexe"
    proc = run_tool("alltogether", own_libraries, "-o", merged, "-q")
    assert proc.returncode == 0, proc.stderr
    check_own_libraries(merged)


def test_own_libraries_in_process_jit(tmp_path):
    check_own_libraries(own_libraries_mux(tmp_path, GNU_TARGET),
                        runner=[tool_path("alley"), "-jit", "inprocess"])


def placements(*programs):
    """allvm.resolution's placements for programs given as [(module, {name: strength},
    {referenced}), ...], main module first: [[(instance, renames), ...], ...]."""
    from allvm.resolution import ModuleSymbols, place_modules

    found = place_modules([[(module, module, ModuleSymbols(defined, set(referenced)))
                            for module, defined, referenced in program] for program in programs])
    return [[(p.instance, p.renames) for p in program] for program in found]


def test_binding_rules():
    # `f` strong in each program's own library: renamed after the definition each binds to; the
    # shared library `s` calling it splits in two; `g` (weak in s, strong in x) binds to x in
    # the program that has x, to s's own where not.
    a, b = placements([("main_a", {}, {"f", "g"}), ("x", {"f": "strong", "g": "strong"}, ()),
                       ("s", {"g": "weak"}, {"f"})],
                      [("main_b", {}, {"f", "g"}), ("y", {"f": "strong"}, ()),
                       ("s", {"g": "weak"}, {"f"})])
    assert a == [("main_a", {"f": "f.allmux.x", "g": "g.allmux.x"}), ("x", {"f": "f.allmux.x",
                  "g": "g.allmux.x"}), ("s.0", {"f": "f.allmux.x", "g": "g.allmux.x"})]
    assert b == [("main_b", {"f": "f.allmux.y", "g": "g.allmux.s.1"}), ("y", {"f": "f.allmux.y"}),
                 ("s.1", {"f": "f.allmux.y", "g": "g.allmux.s.1"})]


def test_what_is_not_renamed():
    # The one-definition rule's linkonce_odr copies, a symbol one shared library defines, and
    # a symbol one instance defines that another program leaves to libc (`strlen`): renamed,
    # a library replacing a libc function (malloc) would no longer replace it for libc.
    a, b = placements([("main_a", {}, {"inline", "shared", "strlen"}), ("x", {"inline": "odr"}, ()),
                       ("s", {"shared": "strong"}, ())],
                      [("main_b", {}, {"inline"}), ("y", {"inline": "odr", "strlen": "strong"},
                                                   ()), ("s", {"shared": "strong"}, ())])
    assert a == [("main_a", {}), ("x", {}), ("s", {})]
    assert b == [("main_b", {}), ("y", {}), ("s", {})]


def test_hidden_definitions_bind_their_own_module():
    (a,) = placements([("main_a", {}, {"h"}), ("x", {"h": "hidden"}, {"h"}),
                       ("y", {"h": "hidden"}, {"h"})])
    assert a == [("main_a", {}), ("x", {"h": "h.allmux.x"}), ("y", {"h": "h.allmux.y"})]
