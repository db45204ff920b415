"""Old IR through every tool: LLVM reports invalid debug info while reading it (the verifier's
complaints, metadata dumps), strips it and goes on. None of that reaches the user."""

import subprocess
import zipfile

import pytest
from conftest import run_tool, tool_path

# LLVM 4-era debug info: the compile unit lists a DIGlobalVariable where LLVM 22 wants a
# DIGlobalVariableExpression ("invalid global variable ref"). Typed pointers, as LLVM 14 reads.
OLD_DEBUG_INFO_IR = r"""
target triple = "x86_64-unknown-linux-musl"
@counter = global i32 7, align 4, !dbg !5
@fmt = private constant [4 x i8] c"%d\0A\00"
declare i32 @printf(i8*, ...)
define i32 @main() !dbg !10 {
  %v = load i32, i32* @counter
  %p = getelementptr [4 x i8], [4 x i8]* @fmt, i64 0, i64 0
  %r = call i32 (i8*, ...) @printf(i8* %p, i32 %v), !dbg !12
  ret i32 0
}
!llvm.dbg.cu = !{!0}
!llvm.module.flags = !{!8, !9}
!0 = distinct !DICompileUnit(language: DW_LANG_C99, file: !1, producer: "clang 4.0",
                             isOptimized: false, runtimeVersion: 0, emissionKind: FullDebug,
                             globals: !2)
!1 = !DIFile(filename: "old.c", directory: "/tmp")
!2 = !{!3}
!3 = distinct !DIGlobalVariable(name: "counter", scope: !0, file: !1, line: 1, type: !4,
                                isLocal: false, isDefinition: true)
!4 = !DIBasicType(name: "int", size: 32, encoding: DW_ATE_signed)
!5 = !DIGlobalVariableExpression(var: !3, expr: !DIExpression())
!8 = !{i32 2, !"Debug Info Version", i32 3}
!9 = !{i32 2, !"Dwarf Version", i32 4}
!10 = distinct !DISubprogram(name: "main", scope: !1, file: !1, line: 2, type: !11, unit: !0)
!11 = !DISubroutineType(types: !{!4})
!12 = !DILocation(line: 3, scope: !10)
"""

# Each tool and mode that reads the old allexe's IR, and what it prints on stdout.
COMMANDS = {
    "alley": (["alley", "{old}"], "7\n"),
    "alley-force-static": (["alley", "-force-static", "{old}"], "7\n"),
    "alley-deny": (["alley", "-deny", "exec", "{old}"], "7\n"),  # the policy reads the IR
    "allready": (["allready", "{old}"], "Successfully cached static binary for '{old}'.\n"),
    "allopt": (["allopt", "-i", "{old}", "-o", "{out}", "cat"], ""),
    "allopt-dis": (["allopt", "-analyze", "-i", "{old}", "-dis"], None),
    "all-info-imports": (["all-info", "-imports", "{old}"], None),
    "alltogether": (["alltogether", "{old}", "-o", "{out}", "-q"], ""),
    "allmux": (["allmux", "{old}", "-o", "{out}"], ""),
}


@pytest.fixture(scope="module")
def old_allexe(tmp_path_factory):
    """An allexe as the original toolchain wrote them: no shebang, bitcode with old debug info
    (written by Debian's LLVM 14 without its verifier, which would strip it)."""
    d = tmp_path_factory.mktemp("old")
    (d / "old.ll").write_text(OLD_DEBUG_INFO_IR)
    subprocess.run(["llvm-as-14", "-disable-verify", d / "old.ll", "-o", d / "old.bc"],
                   check=True, capture_output=True)
    with zipfile.ZipFile(d / "old.allexe", "w", zipfile.ZIP_DEFLATED) as z:
        z.write(d / "old.bc", "main.bc")
    return d / "old.allexe"


def test_textual_ir_with_old_debug_info_packages_quietly(tmp_path):
    ll = tmp_path / "old.ll"
    ll.write_text(OLD_DEBUG_INFO_IR)
    proc = run_tool("bc2allvm", ll)
    assert (proc.returncode, proc.stderr) == (0, "")
    proc = run_tool("alley", tmp_path / "old.allexe")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "7\n", "")


@pytest.mark.parametrize("command", COMMANDS)
def test_old_bitcode_through_each_tool_is_quiet(command, old_allexe, tmp_path):
    argv, stdout = COMMANDS[command]
    fill = {"old": old_allexe, "out": tmp_path / "out.allexe"}
    proc = run_tool(*[arg.format(**fill) for arg in argv])
    assert (proc.returncode, proc.stderr) == (0, "")
    if stdout is not None:
        assert proc.stdout == stdout.format(**fill)


def test_old_bitcode_runs_with_stderr_closed(old_allexe, tmp_path):
    """While LLVM reads, its fd 2 is a sink: with the user's stderr closed, as well."""
    proc = subprocess.run(["sh", "-c", 'exec "$0" "$1" 2>&-', tool_path("alley"), old_allexe],
                          capture_output=True, text=True, timeout=300)
    assert (proc.returncode, proc.stdout) == (0, "7\n")
