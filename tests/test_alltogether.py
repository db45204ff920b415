"""alltogether: merge an allexe's modules into one, internalize, optimize the whole program."""

import re
import shutil

import pytest
from conftest import build_allexe, run_tool

from allvm.allexe import Allexe
from allvm.ir import parse_module

MAIN_C = r"""
#include <stdio.h>
int lib_square(int);
const char *lib_name(void);
int main(int argc, char **argv) { printf("%s: %d\n", lib_name(), lib_square(argc + 6)); return 3; }
"""

LIB_C = r"""
#include <stdio.h>
__attribute__((constructor)) static void hello(void) { puts("ctor"); }
__attribute__((destructor)) static void bye(void) { puts("dtor"); }
__attribute__((visibility("hidden"), noinline)) int lib_hidden(int x) { return x - 1; }
int lib_square(int x) { return lib_hidden(x * x + 1); }
__attribute__((weak)) const char *lib_name(void) { return "lib"; }  /* weak: internalized too */
int lib_unused(int x) { return x * 3 + 1; }
"""
EXPECTED = "ctor\nlib: 49\ndtor\n"  # argc is 1

HIDDEN_MAIN_C = MAIN_C.replace("int main(", '__attribute__((visibility("hidden"))) int main(')

# Two libraries, each with its own hidden `helper`: private to each, so no conflict.
HIDDEN_A_C = ('__attribute__((visibility("hidden"))) int helper(void) { return 1; }\n'
              "int a(void) { return helper(); }\n")
HIDDEN_B_C = ('__attribute__((visibility("hidden"))) int helper(void) { return 2; }\n'
              "int b(void) { return helper(); }\n")
HIDDEN_MAIN_AB_C = ('#include <stdio.h>\nint a(void); int b(void);\n'
                    'int main(void) { printf("%d\\n", a() + 10 * b()); return 0; }\n')

CONFLICT_MAIN_C = MAIN_C + "int lib_square(int x) { return -x; }\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every allexe these tests merge, compiled once."""
    d = tmp_path_factory.mktemp("alltogether")
    return {
        "prog": build_allexe(d, "prog", MAIN_C, LIB_C),
        "hidden_main": build_allexe(d, "hidden_main", HIDDEN_MAIN_C, LIB_C),
        "hidden_ab": build_allexe(d, "hidden_ab", HIDDEN_MAIN_AB_C, HIDDEN_A_C, HIDDEN_B_C),
        "conflict": build_allexe(d, "conflict", CONFLICT_MAIN_C, LIB_C),
    }


@pytest.fixture
def prog(built, tmp_path):
    """A private copy of the main + library allexe (outputs land beside it)."""
    return shutil.copy(built["prog"], tmp_path / "prog.allexe")


def merged_ir(path) -> str:
    allexe = Allexe.open(str(path))
    assert [m.name for m in allexe.modules] == ["main.bc"]
    return str(parse_module(allexe.read_module(allexe.main), "main.bc"))


def test_merged_program_runs_like_the_original(prog, tmp_path):
    proc = run_tool("alltogether", prog)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "prog.merged.allexe"  # the default output name
    assert proc.stdout.splitlines()[-1] == f"Successfully wrote to '{out}'"
    assert "main.bc" in proc.stdout and "prog_lib0.bc" in proc.stdout  # progress per module
    original = run_tool("alley", prog)
    merged = run_tool("alley", out)
    assert (original.stdout, original.returncode) == (EXPECTED, 3)
    assert (merged.stdout, merged.returncode) == (EXPECTED, 3), merged.stderr
    # The library's code now sits in main: cross-module inlining left no call to it.
    ir = merged_ir(out)
    assert "@lib_square" not in ir and "@llvm.global_ctors" in ir and "@llvm.global_dtors" in ir


def test_everything_but_main_is_internalized(prog, tmp_path):
    out = tmp_path / "linked.allexe"
    proc = run_tool("alltogether", prog, "-o", out, "-disable-opt", "-q")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    ir = merged_ir(out)
    for name in ("lib_square", "lib_name", "lib_hidden"):
        assert re.search(rf"^define internal [^@]*@{name}\(", ir, re.M), name
    main_line = next(line for line in ir.splitlines() if "@main(" in line)
    assert main_line.startswith("define ") and "internal" not in main_line
    # -disable-opt: the unused library function is still there; optimizing deletes it.
    assert "@lib_unused(" in ir
    assert run_tool("alltogether", prog, "-o", tmp_path / "opt.allexe", "-q").returncode == 0
    assert "@lib_unused(" not in merged_ir(tmp_path / "opt.allexe")
    run = run_tool("alley", out)
    assert (run.stdout, run.returncode) == (EXPECTED, 3)


def test_hidden_main_stays_the_entry_point(built, tmp_path):
    out = tmp_path / "h.allexe"
    proc = run_tool("alltogether", built["hidden_main"], "-o", out)
    assert proc.returncode == 0, proc.stderr
    run = run_tool("alley", out)
    assert (run.stdout, run.returncode) == (EXPECTED, 3), run.stderr


def test_hidden_definitions_are_private_to_their_module(built, tmp_path):
    out = tmp_path / "ab.allexe"
    proc = run_tool("alltogether", built["hidden_ab"], "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    assert run_tool("alley", out).stdout == "21\n"
    # Kept visible, the two helpers are one symbol defined twice.
    proc = run_tool("alltogether", built["hidden_ab"], "-o", tmp_path / "no.allexe",
                    "-no-internalize-hidden")
    assert proc.returncode == 1
    assert proc.stderr == ("alltogether: symbol 'helper' is defined in both "
                           "'hidden_ab_lib0.bc' and 'hidden_ab_lib1.bc'\n")


def test_conflicting_definitions_name_symbol_and_modules(built, tmp_path):
    out = tmp_path / "c.allexe"
    proc = run_tool("alltogether", built["conflict"], "-o", out)
    assert proc.returncode == 1
    assert proc.stderr == ("alltogether: symbol 'lib_square' is defined in both 'main.bc' "
                           "and 'conflict_lib0.bc'\n")
    assert not out.exists()


@pytest.mark.parametrize("existing", [None, b"not an allexe", b""],
                         ids=["valid allexe", "other file", "empty file"])
def test_existing_output_is_refused_without_f(prog, tmp_path, existing):
    out = tmp_path / "out.allexe"
    if existing is None:
        shutil.copy(prog, out)
        existing = out.read_bytes()
    else:
        out.write_bytes(existing)
    proc = run_tool("alltogether", prog, "-o", out)
    assert proc.returncode == 1
    assert proc.stderr == "alltogether: Output file exists. Use -f flag to force overwrite.\n"
    assert proc.stdout == ""  # refused before any work
    assert out.read_bytes() == existing
    assert run_tool("alltogether", prog, "-o", out, "-f", "-q").returncode == 0
    assert [m.name for m in Allexe.open(str(out)).modules] == ["main.bc"]


def test_bad_input_is_one_line(tmp_path):
    bad = tmp_path / "bad.allexe"
    bad.write_bytes(b"junk")
    proc = run_tool("alltogether", bad)
    assert proc.returncode == 1
    assert proc.stderr == f"alltogether: Could not open '{bad}': empty or invalid allexe\n"
    assert not (tmp_path / "bad.merged.allexe").exists()
