"""Static binaries carry their IR (allvm/native/carry.py): allready's binary holds its allexe in
the ELF section `.allvm.allexe`; `all-info BINARY` lists its modules, `bc2allvm -from-binary`
recovers the allexe byte for byte; `ALLVM_CARRY_IR=0` leaves it out under its own key."""

import os
import shutil
import subprocess

from conftest import build_allexe, native_probe, run_tool

from allvm.allexe import Allexe
from allvm.cache import seal, static_binary_key, unseal
from allvm.elf import Elf
from allvm.native.carry import SECTION
from allvm.native.settings import OPTIMIZED

LIB_C = "int helper(int x) { return x * 6; }\n"
MAIN_C = ('#include <stdio.h>\nint helper(int);\n'
          'int main(int argc, char **argv) { printf("%d %s\\n", helper(7), argv[0]); '
          'return 3; }\n')


def built_binary(tmp_path, cache, *, carry: str | None = None):
    """An allexe of two modules (built once per test), its static binary built by allready
    (with ALLVM_CARRY_IR set to `carry` if given), and the binary's path in the cache."""
    allexe = tmp_path / "prog.allexe"
    if not allexe.exists():
        build_allexe(tmp_path, "prog", MAIN_C, LIB_C)
    env = {**os.environ, **({"ALLVM_CARRY_IR": carry} if carry is not None else {})}
    proc = run_tool("allready", allexe, env=env)
    assert proc.returncode == 0, proc.stderr
    codegen_id = OPTIMIZED.replace(carry_ir=carry != "0").codegen_id
    binary = cache / "static_binaries" / static_binary_key(Allexe.open(str(allexe)), codegen_id)
    assert binary.exists()
    return allexe, binary


def test_binary_carries_its_allexe_and_still_runs(tmp_path, isolated_cache):
    allexe, binary = built_binary(tmp_path, isolated_cache)
    payload, _ = unseal(binary.read_bytes())  # the cache's seal holds the section too
    assert Elf(payload, str(binary)).section(SECTION) == allexe.read_bytes()
    copy = tmp_path / "copied-elsewhere"
    shutil.copy(binary, copy)
    proc = subprocess.run([str(copy)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (3, f"42 {copy}\n")
    # alley's cache hit runs it as before
    assert run_tool("alley", allexe).stdout == f"42 {allexe}\n"


def test_all_info_lists_the_modules_a_binary_carries(tmp_path, isolated_cache):
    allexe, binary = built_binary(tmp_path, isolated_cache)
    of_allexe = run_tool("all-info", allexe)
    of_binary = run_tool("all-info", binary)
    assert of_binary.returncode == 0, of_binary.stderr
    assert of_binary.stdout == of_allexe.stdout
    assert of_binary.stdout.startswith("Modules:\n\tmain.bc (")
    assert "\tprog_lib0.bc (" in of_binary.stdout
    as_json = run_tool("all-info", "-json", binary)
    assert as_json.stdout == run_tool("all-info", "-json", allexe).stdout


def test_bc2allvm_recovers_the_allexe_byte_for_byte(tmp_path, isolated_cache):
    allexe, binary = built_binary(tmp_path, isolated_cache)
    shutil.copy(binary, tmp_path / "prog-binary")
    out = tmp_path / "recovered.allexe"
    proc = run_tool("bc2allvm", "-from-binary", tmp_path / "prog-binary", "-o", out)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert out.read_bytes() == allexe.read_bytes()
    assert os.access(out, os.X_OK)
    shutil.rmtree(isolated_cache)  # rebuilt from the recovered IR, as on another machine
    ran = run_tool("alley", out)
    assert (ran.returncode, ran.stdout) == (3, f"42 {out}\n")
    # the default output name, and -f
    default = tmp_path / "prog-binary.allexe"
    assert run_tool("bc2allvm", "-from-binary", tmp_path / "prog-binary").returncode == 0
    assert default.read_bytes() == allexe.read_bytes()
    default.write_bytes(b"keep")
    again = run_tool("bc2allvm", "-from-binary", tmp_path / "prog-binary")
    assert (again.returncode, again.stderr) == (
        1, "bc2allvm: Output file exists. Use -f flag to force overwrite.\n")
    assert default.read_bytes() == b"keep"
    forced = run_tool("bc2allvm", "-from-binary", tmp_path / "prog-binary", "-f")
    assert forced.returncode == 0 and default.read_bytes() == allexe.read_bytes()


def test_opting_out_leaves_the_section_out_under_its_own_key(tmp_path, isolated_cache):
    allexe, binary = built_binary(tmp_path, isolated_cache, carry="0")
    carrying_key = static_binary_key(Allexe.open(str(allexe)), OPTIMIZED.codegen_id)
    assert binary.name != carrying_key
    assert not (isolated_cache / "static_binaries" / carrying_key).exists()
    payload, _ = unseal(binary.read_bytes())
    assert Elf(payload, str(binary)).section(SECTION) is None
    proc = subprocess.run([str(binary)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (3, f"42 {binary}\n")
    info = run_tool("all-info", binary)
    assert (info.returncode, info.stdout) == (1, "")
    assert info.stderr == (f"all-info: '{binary}' carries no allexe (no .allvm.allexe section: "
                           "not a static binary of allready's, or built with ALLVM_CARRY_IR=0)\n")
    out = tmp_path / "none.allexe"
    recovered = run_tool("bc2allvm", "-from-binary", binary, "-o", out)
    assert recovered.returncode == 1 and "carries no allexe" in recovered.stderr
    assert not out.exists()
    # alley under the same setting finds that binary (a hit, nothing compiled), and under the
    # default its own (here another program, the platform probe, sealed as the cache keeps it)
    other = isolated_cache / "static_binaries" / carrying_key
    other.write_bytes(seal(native_probe(tmp_path).read_bytes()))
    other.chmod(0o755)
    for _ in range(2):  # the launcher's record of the allexe does not change the answer
        ran = run_tool("alley", allexe, env={**os.environ, "ALLVM_CARRY_IR": "0"})
        assert (ran.returncode, ran.stdout) == (3, f"42 {allexe}\n")
        assert run_tool("alley", allexe).stdout.startswith("ctor 101\n")
    assert not any((isolated_cache / "objects").iterdir())


def test_the_section_costs_the_allexe_size_and_nothing_else(tmp_path, isolated_cache):
    allexe, carrying = built_binary(tmp_path, isolated_cache)
    _, bare = built_binary(tmp_path, isolated_cache, carry="0")
    carried, plain = unseal(carrying.read_bytes())[0], unseal(bare.read_bytes())[0]
    # nothing in the binary moved: past the ELF header (where the section headers are), the
    # same bytes, then the section's
    assert carried[64 : len(plain)] == plain[64:]
    # then the allexe, and a new section-name table and section header table (allvm.elf
    # appends them: the old ones stay where they were)
    elf = Elf(plain, str(bare))
    names = elf.raw_sections[elf.shstrndx][5] + len(SECTION) + 1
    tables = (names + -(len(plain) + allexe.stat().st_size + names) % 8
              + (len(elf.sections) + 1) * 64)
    assert len(carried) - len(plain) == allexe.stat().st_size + tables


def test_bad_inputs_one_line_each(tmp_path, isolated_cache):
    elf_without = native_probe(tmp_path)
    info = run_tool("all-info", elf_without)
    assert (info.returncode, info.stderr) == (
        1, f"all-info: '{elf_without}' carries no allexe (no .allvm.allexe section: not a "
           "static binary of allready's, or built with ALLVM_CARRY_IR=0)\n")
    text = tmp_path / "notes.txt"
    text.write_text("not a binary\n")
    proc = run_tool("bc2allvm", "-from-binary", text, "-o", tmp_path / "x.allexe")
    assert (proc.returncode, proc.stderr) == (1, f"bc2allvm: '{text}' is not an ELF executable\n")
    missing = run_tool("bc2allvm", "-from-binary", tmp_path / "nope")
    assert (missing.returncode, missing.stderr) == (
        1, f"bc2allvm: Could not open '{tmp_path}/nope': No such file or directory\n")
    truncated = tmp_path / "truncated"
    truncated.write_bytes(elf_without.read_bytes()[:100])
    proc = run_tool("all-info", truncated)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    both = run_tool("bc2allvm", "-from-binary", elf_without, "main.bc")
    assert (both.returncode, both.stderr) == (
        1, "bc2allvm: -from-binary takes no MAIN or LIB modules\n")
    assert not list(tmp_path.glob("*.allexe"))


def test_bad_carry_setting_is_one_line(tmp_path):
    allexe = build_allexe(tmp_path, "prog", MAIN_C, LIB_C)
    proc = run_tool("allready", allexe, env={**os.environ, "ALLVM_CARRY_IR": "yes"})
    assert (proc.returncode, proc.stderr) == (
        1, "allready: $ALLVM_CARRY_IR must be 0 or 1, not 'yes'\n")
