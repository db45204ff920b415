"""Code tuned for this machine's CPU (`allready -mcpu=native`, `$ALLVM_CPU=native`): keyed by
the CPU's concrete name and features, never reused for another CPU, off by default."""

import os
import re
import subprocess

import pytest
from conftest import build_allexe, native_probe, run_tool

from allvm.allexe import Allexe
from allvm.cache import object_key, seal, static_binary_key, unseal
from allvm.elf import Elf
from allvm.errors import AllvmError
from allvm.native.settings import OPTIMIZED, CodegenSettings, host_cpu, static_settings
from allvm.native.tuning import retargeted_text

POPCOUNT_C = ("#include <stdio.h>\n#include <stdlib.h>\n"
              "int count(unsigned long long x) { return __builtin_popcountll(x); }\n"
              "int main(int argc, char **argv) {\n"
              '  printf("%d\\n", count(strtoull(argc > 1 ? argv[1] : "255", 0, 0)));\n'
              "  return 0;\n}\n")
# popcnt r64, r/m64: F3, a REX.W prefix, 0F B8
POPCNT = re.compile(rb"\xf3[\x48-\x4f]\x0f\xb8")


def test_native_names_the_concrete_cpu_and_its_features(monkeypatch):
    from llvmlite import binding

    tuned = static_settings("native")
    assert (tuned.cpu, tuned.features) == (
        binding.get_host_cpu_name(), binding.get_host_cpu_features().flatten())
    assert tuned.cpu not in ("native", "x86-64") and "+sse2" in tuned.features
    assert "native" not in tuned.codegen_id
    assert f"cpu {tuned.cpu} {tuned.features}; O2" in tuned.codegen_id
    assert tuned.codegen_id != OPTIMIZED.codegen_id
    monkeypatch.setenv("ALLVM_CPU", "native")
    assert static_settings().codegen_id == tuned.codegen_id
    monkeypatch.setenv("ALLVM_CPU", "x86-64")
    assert static_settings() is OPTIMIZED
    monkeypatch.delenv("ALLVM_CPU")
    assert static_settings() is OPTIMIZED  # off by default
    with pytest.raises(AllvmError, match="unknown CPU 'skylake' .* x86-64 or native"):
        static_settings("skylake")


def test_tuned_keys_differ_from_the_baseline_and_follow_the_setting(tmp_path, monkeypatch,
                                                                    hello_c):
    allexe = Allexe.open(str(build_allexe(tmp_path, "hello", hello_c)))
    tuned = static_settings("native")
    baseline_key = static_binary_key(allexe, OPTIMIZED.codegen_id)
    assert static_binary_key(allexe) == baseline_key
    assert static_binary_key(allexe, tuned.codegen_id) != baseline_key
    monkeypatch.setenv("ALLVM_CPU", "native")
    assert static_binary_key(allexe) == static_binary_key(allexe, tuned.codegen_id)
    assert (object_key(allexe, allexe.main, tuned.codegen_id)
            != object_key(allexe, allexe.main, OPTIMIZED.codegen_id))
    # another CPU (or the same CPU with other features) is another key
    other = tuned.replace(features=tuned.features.replace("+sse2", "-sse2"))
    assert static_binary_key(allexe, other.codegen_id) != static_binary_key(allexe)


def test_functions_are_retargeted_keeping_what_they_asked_for():
    text = (b'@s = constant [40 x i8] c"\\22target-cpu\\22=\\22x86-64\\22 stays as it is...."\n'
            b'attributes #0 = { nounwind "target-cpu"="x86-64" '
            b'"target-features"="+sse2,-avx2,-avx512f" "tune-cpu"="generic" }\n'
            b'attributes #1 = { "target-cpu"="x86-64" "target-features"="+sse2,-avx2,+avx512f" }\n'
            b"attributes #2 = { nounwind }\n")
    settings = CodegenSettings(cpu="somecpu", features="+avx2,+sse2,-avx512f", opt_level=2,
                               tier="optimized")
    lines = retargeted_text(text, settings).decode().splitlines()
    assert lines[0] == text.decode().splitlines()[0]
    assert lines[1] == ('attributes #0 = { nounwind "target-cpu"="somecpu" '
                        '"target-features"="+avx2,-avx512f,+sse2" "tune-cpu"="somecpu" }')
    assert lines[2] == ('attributes #1 = { "target-cpu"="somecpu" '
                        '"target-features"="+avx2,+avx512f,+sse2" }')
    assert lines[3] == "attributes #2 = { nounwind }"


def binary_text(binary) -> bytes:
    payload, _ = unseal(binary.read_bytes())
    return Elf(payload, str(binary)).section(".text")


def test_allready_mcpu_native_builds_tuned_code_that_alley_runs_when_asked(tmp_path,
                                                                         isolated_cache):
    assert "+popcnt" in host_cpu()[1]  # every x86-64 since 2008
    path = build_allexe(tmp_path, "popcount", POPCOUNT_C)
    allexe = Allexe.open(str(path))
    binaries = isolated_cache / "static_binaries"
    tuned = binaries / static_binary_key(allexe, static_settings("native").codegen_id)
    baseline = binaries / static_binary_key(allexe, OPTIMIZED.codegen_id)
    proc = run_tool("allready", "-mcpu=native", path)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in binaries.iterdir()] == [tuned.name]  # not under the baseline key
    assert run_tool("allready", path).returncode == 0
    assert sorted(p.name for p in binaries.iterdir()) == sorted([tuned.name, baseline.name])
    # the function's own "target-cpu"="x86-64" (clang's) no longer decides: popcnt is used
    assert POPCNT.search(binary_text(tuned)) and not POPCNT.search(binary_text(baseline))
    for binary in (tuned, baseline):
        ran = subprocess.run([str(binary), "0xff00ff"], capture_output=True, text=True)
        assert (ran.returncode, ran.stdout) == (0, "16\n")
    # Each setting runs its own binary: made distinguishable, the baseline's entry replaced by
    # another program (the platform probe, sealed as the cache keeps it).
    baseline.write_bytes(seal(native_probe(tmp_path).read_bytes()))
    native = {**os.environ, "ALLVM_CPU": "native"}
    for _ in range(2):  # the launcher's record of the allexe does not change the answer
        ran = run_tool("alley", path, "7", env=native)
        assert (ran.returncode, ran.stdout) == (0, "3\n")
        assert run_tool("alley", path, "7").stdout.startswith("ctor 101\n")
    assert not any((isolated_cache / "objects").iterdir())  # hits only: nothing compiled


def test_bad_cpu_and_a_cluster_are_refused_in_one_line(tmp_path, hello_c, isolated_cache):
    path = build_allexe(tmp_path, "hello", hello_c)
    proc = run_tool("allready", "-mcpu", "pentium", path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1, "", "allready: unknown CPU 'pentium' ($ALLVM_CPU, -mcpu): x86-64 or native\n")
    proc = run_tool("allready", "-mcpu=native", "-scheduler", "tcp://127.0.0.1:1", path)
    assert (proc.returncode, proc.stderr) == (
        1, "allready: ALLVM_CPU=native: built here only, not on a cluster (its workers' CPUs "
           "are not this machine's)\n")
    assert not (isolated_cache / "static_binaries").exists() or not any(
        (isolated_cache / "static_binaries").iterdir())
