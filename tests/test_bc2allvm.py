"""bc2allvm: inputs, outputs, every error line of the spec, inline-asm rewriting."""

import subprocess

import pytest
from conftest import compile_c, have, run_tool

from allvm.allexe import Allexe
from allvm.ir import parse_module

TYPED_POINTER_IR = """
target triple = "x86_64-unknown-linux-musl"
@.str = private unnamed_addr constant [4 x i8] c"hi\\0A\\00", align 1
declare i32 @printf(i8*, ...)
define i32 @main(i32 %argc, i8** %argv) {
  %p = getelementptr inbounds [4 x i8], [4 x i8]* @.str, i64 0, i64 0
  %r = call i32 (i8*, ...) @printf(i8* %p)
  ret i32 0
}
"""

ASM_IR = """
target triple = "x86_64-unknown-linux-musl"
define i32 @swap32(i32 %x) {
  %a = call i32 asm "bswap $0", "=r,0,~{dirflag},~{fpsr},~{flags}"(i32 %x)
  %b = tail call i32 asm "bswapl $0", "=r,0"(i32 %a)
  ret i32 %b
}
define i64 @swap64(i64 %x) {
  %a = call i64 asm "bswapq $0", "=r,0,~{dirflag},~{fpsr},~{flags}"(i64 %x)
  ret i64 %a
}
define void @barrier() {
  call void asm sideeffect "", "~{memory},~{dirflag},~{fpsr},~{flags}"()
  ret void
}
define i32 @opaque(i32 %x) {
  %a = call i32 asm "rorl $$8, $0", "=r,0"(i32 %x)
  ret i32 %a
}
define i32 @main() {
  ret i32 0
}
"""


def main_text(allexe) -> str:
    opened = Allexe.open(str(allexe))
    return str(parse_module(opened.read_module(opened.main), "main.bc"))


def test_bitcode_input_default_output_name(tmp_path, hello_c):
    bc = compile_c(hello_c, tmp_path / "hello.bc")
    proc = run_tool("bc2allvm", bc)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "hello.allexe"
    assert [m.name for m in Allexe.open(str(out)).modules] == ["main.bc"]
    assert "@main" in main_text(out)


def test_textual_ir_with_typed_pointers(tmp_path):
    ll = tmp_path / "typed.ll"
    ll.write_text(TYPED_POINTER_IR)
    proc = run_tool("bc2allvm", ll)
    assert proc.returncode == 0, proc.stderr
    assert "call i32 (ptr, ...) @printf" in main_text(tmp_path / "typed.allexe")


def test_multiple_modules(tmp_path, hello_c):
    main_bc = compile_c(hello_c, tmp_path / "main.bc")
    lib1 = tmp_path / "libone.ll"
    lib1.write_text("define i32 @one() {\n  ret i32 1\n}\n")
    lib2 = compile_c("int two(void) { return 2; }", tmp_path / "libtwo.bc")
    proc = run_tool("bc2allvm", main_bc, lib1, lib2, "-o", tmp_path / "out.allexe")
    assert proc.returncode == 0, proc.stderr
    names = [m.name for m in Allexe.open(str(tmp_path / "out.allexe")).modules]
    assert names == ["main.bc", "libone.bc", "libtwo.bc"]


def test_missing_input(tmp_path):
    proc = run_tool("bc2allvm", tmp_path / "missing.bc")
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"bc2allvm: Could not open {tmp_path}/missing.bc")
    assert len(proc.stderr.splitlines()) == 1


def test_no_main(tmp_path):
    ll = tmp_path / "nomain.ll"
    ll.write_text("define i32 @foo() {\n  ret i32 0\n}\n")
    proc = run_tool("bc2allvm", ll)
    assert (proc.returncode, proc.stderr) == (
        1, f"bc2allvm: Failed to find 'main' function in {ll}!\n")
    assert not (tmp_path / "nomain.allexe").exists()


def test_main_only_declared(tmp_path):
    ll = tmp_path / "decl.ll"
    ll.write_text("declare i32 @main()\n")
    proc = run_tool("bc2allvm", ll)
    assert (proc.returncode, proc.stderr) == (
        1, "bc2allvm: 'main' must not be a declaration in first module\n")


def test_output_is_directory(tmp_path, hello_c):
    bc = compile_c(hello_c, tmp_path / "hello.bc")
    proc = run_tool("bc2allvm", bc, "-o", tmp_path)
    assert (proc.returncode, proc.stderr) == (1, "bc2allvm: Output path is a directory!\n")


@pytest.mark.parametrize("existing", [b"", b"precious data"])
def test_existing_output_needs_force(tmp_path, hello_c, existing):
    bc = compile_c(hello_c, tmp_path / "hello.bc")
    out = tmp_path / "hello.allexe"
    out.write_bytes(existing)
    proc = run_tool("bc2allvm", bc)
    assert (proc.returncode, proc.stderr) == (
        1, "bc2allvm: Output file exists. Use -f flag to force overwrite.\n")
    assert out.read_bytes() == existing
    assert run_tool("bc2allvm", bc, "-f").returncode == 0
    assert Allexe.open(str(out)).main.name == "main.bc"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".allvm-")] == []


def test_non_ir_input_is_refused(tmp_path, hello_c):
    bc = compile_c(hello_c, tmp_path / "hello.bc")
    assert run_tool("bc2allvm", bc).returncode == 0
    proc = run_tool("bc2allvm", tmp_path / "hello.allexe", "-o", tmp_path / "again.allexe")
    assert proc.returncode == 1
    assert proc.stderr == (f"bc2allvm: Could not open {tmp_path}/hello.allexe: "
                           "not LLVM bitcode or textual IR\n")
    assert not (tmp_path / "again.allexe").exists()


def test_invalid_ir_names_the_file(tmp_path):
    ll = tmp_path / "broken.ll"
    ll.write_text("define i32 @main( {\n")
    proc = run_tool("bc2allvm", ll)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"bc2allvm: {ll}: invalid module:")
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_inline_asm_idioms_become_ir(tmp_path):
    ll = tmp_path / "asm.ll"
    ll.write_text(ASM_IR)
    proc = run_tool("bc2allvm", ll)
    assert proc.returncode == 0, proc.stderr
    text = main_text(tmp_path / "asm.allexe")
    assert "call i32 @llvm.bswap.i32(i32 %x)" in text
    assert "call i32 @llvm.bswap.i32(i32 %a)" in text
    assert "call i64 @llvm.bswap.i64(i64 %x)" in text
    assert 'fence syncscope("singlethread") acq_rel' in text
    assert "bswap $0" not in text and 'asm sideeffect ""' not in text
    # The asm with no known meaning stays, and the user is told where.
    assert "rorl" in text
    assert proc.stderr == f"bc2allvm: warning: {ll}: inline asm kept in function 'opaque'\n"


def test_preserve_asm_keeps_it(tmp_path):
    ll = tmp_path / "asm.ll"
    ll.write_text(ASM_IR)
    proc = run_tool("bc2allvm", ll, "-preserve-asm")
    assert proc.returncode == 0, proc.stderr
    text = main_text(tmp_path / "asm.allexe")
    assert 'asm "bswap $0"' in text and 'asm "bswapq $0"' in text
    assert 'asm sideeffect ""' in text and "llvm.bswap" not in text


def test_real_c_barrier_and_bswap(tmp_path):
    src = r"""
    #include <stdio.h>
    static unsigned swap(unsigned x) { __asm__("bswap %0" : "+r"(x)); return x; }
    int main(void) {
        __asm__ __volatile__("" ::: "memory");
        printf("%x\n", swap(0x11223344u));
        return 0;
    }"""
    bc = compile_c(src, tmp_path / "real.bc")
    proc = run_tool("bc2allvm", bc)
    assert proc.returncode == 0 and proc.stderr == ""
    text = main_text(tmp_path / "real.allexe")
    assert "asm" not in text.split("attributes #")[0]
    assert "fence syncscope" in text


@pytest.mark.skipif(not have("clang-14"), reason="Debian clang-14 is installed by make test")
def test_clang14_bitcode_with_debug_info_loads_quietly(tmp_path, hello_c):
    src = tmp_path / "old.c"
    src.write_text(hello_c)
    bc = tmp_path / "old.bc"
    subprocess.run(["clang-14", "-target", "x86_64-unknown-linux-musl", "-g", "-O1", "-c",
                    "-emit-llvm", src, "-o", bc], check=True)
    proc = run_tool("bc2allvm", bc)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "x86_64-unknown-linux-musl" in main_text(tmp_path / "old.allexe")


# Each constraint form clang emits for `bswap`: the operand tied to the result, or in a register
# of its own (left as asm, that form swaps whatever the output register held), 32 and 64 bits.
BSWAP_FORMS_IR = r"""
target triple = "x86_64-unknown-linux-musl"
@fmt = private unnamed_addr constant [22 x i8] c"%x %x %llx %llx %llx\0A\00"
declare i32 @printf(ptr, ...)
define i32 @main() {
  %tied32 = call i32 asm "bswap $0", "=r,0,~{dirflag},~{fpsr},~{flags}"(i32 305419896)
  %own32 = call i32 asm "bswapl $0", "=r,r,~{dirflag},~{fpsr},~{flags}"(i32 305419896)
  %tied64 = call i64 asm "bswapq $0", "=r,0,~{dirflag},~{fpsr},~{flags}"(i64 -6066930339413731720)
  %own64 = call i64 asm "bswapq $0", "=r,r,~{dirflag},~{fpsr},~{flags}"(i64 -6066930339413731720)
  %plain64 = call i64 asm "bswap $0", "=r,r,~{dirflag},~{fpsr},~{flags}"(i64 -6066930339413731720)
  call i32 (ptr, ...) @printf(ptr @fmt, i32 %tied32, i32 %own32, i64 %tied64, i64 %own64,
                              i64 %plain64)
  ret i32 0
}
"""


def test_bswap_in_either_constraint_form_runs(tmp_path):
    ll = tmp_path / "bswap.ll"
    ll.write_text(BSWAP_FORMS_IR)
    proc = run_tool("bc2allvm", ll)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert " asm " not in main_text(tmp_path / "bswap.allexe")
    proc = run_tool("alley", tmp_path / "bswap.allexe")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == "78563412 78563412" + " 7856341200efcdab" * 3 + "\n"
