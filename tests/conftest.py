"""Shared helpers: run the installed tools as a user would, compile small C programs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from allvm.toolchain import MUSL_TARGET, zig_command, zig_env

BIN = Path(sys.executable).parent
# A C program that reports what the platform gives it, one check per argv[1].
PROBE = Path(__file__).parent / "data" / "platform_probe.c"


def tool_path(name: str) -> str:
    return str(BIN / name)


def run_tool(name: str, *args, **kwargs) -> subprocess.CompletedProcess:
    """Run an installed console script; text output captured."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 300)
    return subprocess.run([tool_path(name), *map(str, args)], **kwargs)


def compile_c(source: str | Path, out: Path, *, target: str = MUSL_TARGET,
              flags: tuple[str, ...] = ("-O2",), emit: str = "-emit-llvm") -> Path:
    """Compile C (a file, or source text) to bitcode with the bundled clang."""
    if isinstance(source, str):
        src = out.with_suffix(".c")
        src.write_text(source)
        source = src
    cmd = zig_command("cc", "-target", target, *flags, "-c", emit, str(source), "-o", str(out))
    subprocess.run(cmd, env=zig_env(), check=True, capture_output=True, timeout=300)
    return out


def build_allexe(tmp_path: Path, name: str, main_c: str, *libs_c: str,
                 target: str = MUSL_TARGET) -> Path:
    """C sources → bitcode → allexe via bc2allvm; returns the allexe's path."""
    main_bc = compile_c(main_c, tmp_path / f"{name}.bc", target=target)
    lib_bcs = [compile_c(src, tmp_path / f"{name}_lib{i}.bc", target=target)
               for i, src in enumerate(libs_c)]
    out = tmp_path / f"{name}.allexe"
    proc = run_tool("bc2allvm", main_bc, *lib_bcs, "-o", out)
    assert proc.returncode == 0, proc.stderr
    return out


def probe_allexe(directory: Path, target: str = MUSL_TARGET) -> Path:
    """The platform probe as an allexe for `target`."""
    out = directory / "probe.allexe"
    proc = run_tool("bc2allvm", compile_c(PROBE, directory / "probe.bc", target=target), "-o", out)
    assert proc.returncode == 0, proc.stderr
    return out


def native_probe(directory: Path, target: str = MUSL_TARGET) -> Path:
    """The probe as a plain native program: static for musl, dynamic for glibc, as the
    platform links it. The behaviour alley must match."""
    out = directory / "probe"
    static = [] if "gnu" in target else ["-static"]
    subprocess.run(zig_command("cc", "-target", target, *static, "-O2", str(PROBE), "-o", str(out)),
                   env=zig_env(), check=True, capture_output=True)
    return out


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """Each test gets its own ALLVM cache, so cache-counting tests see only their own work.

    The JIT path compiles optimized objects and builds nothing in the background (ALLVM_TIER,
    allvm/native/settings.py), as the original toolchain's cache tests expect; the tests of
    the fast tier and its promotion (tests/test_tiers.py) ask for it themselves."""
    cache = tmp_path / "allvm-cache"
    monkeypatch.setenv("ALLVM_CACHE_DIR", str(cache))
    monkeypatch.setenv("ALLVM_TIER", "optimized")
    return cache


@pytest.fixture
def hello_c() -> str:
    return '#include <stdio.h>\nint main(void) { printf("hello, allvm\\n"); return 0; }\n'


def have(command: str) -> bool:
    return any(os.access(os.path.join(d, command), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep))
