"""allmux: dispatch on argv[0], per-program constructors and destructors, shared libraries once,
and the multiplexed allexe through every way of running it."""

import os
import subprocess

import pytest
from conftest import compile_c, run_tool, tool_path

from allvm.allexe import Allexe
from allvm.ir import parse_module
from allvm.toolchain import GNU_TARGET

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
