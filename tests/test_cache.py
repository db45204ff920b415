"""The cache (README, "The cache"), as alley and allready fill and use it."""

import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import build_allexe, run_tool

from allvm.cache import RECORD_SETTLE_SECONDS

MAIN_C = r"""
#include <stdio.h>
int twice(int);
int main(int argc, char **argv) {
    printf("%d %s\n", twice(21), argc > 1 ? argv[1] : "-");
    return 0;
}
"""
LIB_C = "int twice(int x) { return 2 * x; }\n"


@pytest.fixture(scope="module")
def two_modules(tmp_path_factory):
    """A main module and a library module in one allexe."""
    return build_allexe(tmp_path_factory.mktemp("cache"), "prog", MAIN_C, LIB_C)


def entries(cache, kind: str) -> list[str]:
    directory = cache / kind
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def everything(cache) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*"))


def alley(*args, **kwargs):
    return run_tool("alley", *args, **kwargs)


def test_jit_run_caches_one_object_per_module(two_modules, isolated_cache):
    assert alley(two_modules, "x").stdout == "42 x\n"
    objects = entries(isolated_cache, "objects")
    assert len(objects) == 2 and objects[0].endswith(".o")
    assert {o.split("-")[1] for o in objects} == {"main", "prog_lib0"}  # readable names
    assert entries(isolated_cache, "static_binaries") == []
    assert everything(isolated_cache) == sorted(
        ["objects", "static_binaries"] + [f"objects/{o}" for o in objects])
    before = everything(isolated_cache)
    assert alley(two_modules, "y").stdout == "42 y\n"  # second run: nothing new
    assert everything(isolated_cache) == before


def test_allready_caches_one_static_binary_and_no_object(two_modules, isolated_cache):
    proc = run_tool("allready", two_modules)
    assert proc.stdout == f"Successfully cached static binary for '{two_modules}'.\n"
    assert entries(isolated_cache, "objects") == []
    assert len(entries(isolated_cache, "static_binaries")) == 1
    before = everything(isolated_cache)
    assert alley(two_modules, "z").stdout == "42 z\n"
    assert run_tool("allready", two_modules).returncode == 0
    assert everything(isolated_cache) == before


def test_force_static_builds_the_static_binary(two_modules, isolated_cache):
    assert alley("-force-static", two_modules, "s").stdout == "42 s\n"
    assert len(entries(isolated_cache, "static_binaries")) == 1
    assert entries(isolated_cache, "objects") == []
    before = everything(isolated_cache)
    assert alley("-force-static", two_modules).stdout == "42 -\n"
    assert everything(isolated_cache) == before


def cached_run(allexe) -> str:
    """What execute.run_cached does with `allexe`, in a fresh interpreter where inflating
    bitcode fails and exec only reports: the program's kind of path, which heavy modules were
    loaded by then, and argv."""
    script = textwrap.dedent(f"""
        import os, sys, zlib
        def refuse(*a, **k):
            raise AssertionError("decompressed on a cache-hit path")
        zlib.decompressobj = zlib.decompress = refuse
        from allvm import execute
        def fake_execve(path, argv, env):
            loaded = [m for m in ("llvmlite", "argparse", "allvm.codegen") if m in sys.modules]
            # a cached binary is exec'd by the descriptor that was checked, not by its path
            kind = "file" if isinstance(path, int) else "memory"
            print("exec", kind, loaded, argv)
            sys.exit(0)
        os.execve = fake_execve
        execute.run_cached({str(allexe)!r}, [{str(allexe)!r}, "a"])
        print("no cache hit")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return proc.stdout + proc.stderr


def test_cache_hit_path_needs_no_compiler_and_no_inflating(two_modules, isolated_cache):
    assert run_tool("allready", two_modules).returncode == 0
    assert cached_run(two_modules) == f"exec file [] ['{two_modules}', 'a']\n"


def test_cached_objects_are_linked_before_the_compiler_loads(two_modules, isolated_cache):
    """The JIT path with every object cached: no compiler, no inflating, no option parser."""
    assert alley("-noexec", two_modules).returncode == 0
    assert cached_run(two_modules) == f"exec memory [] ['{two_modules}', 'a']\n"
    assert entries(isolated_cache, "static_binaries") == []


def test_unusable_cache_still_runs(two_modules, monkeypatch, tmp_path):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("ALLVM_CACHE_DIR", "/dev/null")
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    for flags in ([], ["-force-static"], ["-noexec"]):
        proc = alley(*flags, two_modules, "u")
        assert proc.returncode == 0, proc.stderr
    assert alley(two_modules, "u").stdout == "42 u\n"
    assert list(tmpdir.iterdir()) == []


def test_nothing_left_in_tmpdir(two_modules, monkeypatch, tmp_path):
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    assert alley(two_modules).returncode == 0
    assert run_tool("allready", two_modules).returncode == 0
    assert list(tmpdir.iterdir()) == []


def test_truncated_object_is_rebuilt(two_modules, isolated_cache):
    assert alley(two_modules).returncode == 0
    obj = isolated_cache / "objects" / entries(isolated_cache, "objects")[0]
    good = obj.read_bytes()
    obj.write_bytes(good[: len(good) // 2])
    assert alley(two_modules, "t").stdout == "42 t\n"
    assert obj.read_bytes() == good


def test_corrupt_static_binary_is_never_run_and_is_rebuilt(two_modules, isolated_cache):
    assert run_tool("allready", two_modules).returncode == 0
    binary = isolated_cache / "static_binaries" / entries(isolated_cache, "static_binaries")[0]
    good = binary.read_bytes()
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF
    binary.write_bytes(bytes(damaged))
    assert alley(two_modules, "c").stdout == "42 c\n"  # JIT path instead of the bad binary
    assert alley("-force-static", two_modules, "c").stdout == "42 c\n"
    assert binary.read_bytes() == good
    binary.write_bytes(good[:1000])  # truncated
    assert run_tool("allready", two_modules).returncode == 0
    assert binary.read_bytes() == good


def test_concurrent_cold_runs(two_modules, isolated_cache):
    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(lambda i: alley(two_modules, str(i)), range(4)))
    assert [p.stdout for p in procs] == [f"42 {i}\n" for i in range(4)]
    assert len(entries(isolated_cache, "objects")) == 2
    assert everything(isolated_cache) == sorted(
        ["objects", "static_binaries"]
        + [f"objects/{o}" for o in entries(isolated_cache, "objects")])
    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(lambda i: run_tool("allready", two_modules), range(4)))
    assert all(p.returncode == 0 for p in procs)
    assert len(entries(isolated_cache, "static_binaries")) == 1


def _put_many(root: str, worker: int) -> int:
    from allvm.cache import Cache

    cache = Cache(root)
    cache.ensure_dirs()
    stored = 0
    for i in range(150):
        stored += cache.put(cache.object_path(f"k{worker}-{i}"), b"x" * 100)
        cache.remove_workdir(cache.make_workdir())  # empties, then removes, the scratch dir
    return stored


def test_concurrent_puts_survive_the_scratch_directory_coming_and_going(isolated_cache):
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(4) as pool:
        stored = pool.starmap(_put_many, [(str(isolated_cache), w) for w in range(4)])
    assert stored == [150] * 4
    assert sorted(p.name for p in isolated_cache.iterdir()) == ["objects", "static_binaries"]


def regular_files(cache) -> list[str]:
    """What the original toolchain's cache tests count: `find $ALLVM_CACHE_DIR -type f`."""
    proc = subprocess.run(["find", str(cache), "-type", "f"], capture_output=True, text=True)
    return sorted(proc.stdout.split())


def test_launch_records_are_not_counted_as_entries(tmp_path, isolated_cache):
    """One object after the first JIT-path run of a one-module allexe, still one after the
    second, two after -force-static (one in objects/, one in static_binaries/); the launch
    records the launcher wrote meanwhile are not regular files."""
    allexe = build_allexe(tmp_path, "one", "int main(void) { return 0; }\n")
    time.sleep(RECORD_SETTLE_SECONDS + 0.2)  # old enough for the launcher to record it
    for run in range(2):
        assert alley(allexe).returncode == 0
        assert [Path(p).parent.name for p in regular_files(isolated_cache)] == ["objects"], run
    assert any(p.is_symlink() for p in (isolated_cache / "launch").iterdir())
    for run in range(2):
        assert alley("-force-static", allexe).returncode == 0
        kinds = sorted(Path(p).parent.name for p in regular_files(isolated_cache))
        assert kinds == ["objects", "static_binaries"], run


def test_one_parse_per_process_and_each_module_hashed_once(two_modules, monkeypatch):
    """alley's cache-hit check, policy check and build each open the allexe and key it: the
    file is parsed once and each module's stored bytes hashed once."""
    from allvm import allexe as allexe_module
    from allvm.cache import object_key, static_binary_key
    from allvm.native.settings import FAST

    parses, hashed = [], []
    read_directory = allexe_module._read_directory
    stored_bytes = allexe_module.Allexe.stored_bytes
    monkeypatch.setattr(allexe_module, "_read_directory",
                        lambda data: parses.append(1) or read_directory(data))
    monkeypatch.setattr(allexe_module.Allexe, "stored_bytes",
                        lambda self, entry: hashed.append(entry.name) or stored_bytes(self, entry))
    monkeypatch.setattr(allexe_module, "_OPENED", {})
    opened = [allexe_module.Allexe.open(str(two_modules)) for _ in range(3)]
    for allexe in opened:
        static_binary_key(allexe)
        for entry in allexe.modules:
            object_key(allexe, entry)
            object_key(allexe, entry, FAST.codegen_id)
    assert opened[0] is opened[1] is opened[2] and len(parses) == 1
    assert sorted(hashed) == sorted(e.name for e in opened[0].modules)
    two_modules.touch()  # a changed file is read again
    assert allexe_module.Allexe.open(str(two_modules)) is not opened[0] and len(parses) == 2


def test_a_put_that_must_not_replace_keeps_the_entry_there(isolated_cache):
    """What the fast tier's stand-in is stored with: an optimized binary that a promoter
    stored meanwhile stays."""
    from allvm.cache import Cache

    cache = Cache(str(isolated_cache))
    assert cache.ensure_dirs()
    path = cache.static_binary_path("00000000-" + "0" * 40)
    assert cache.put(path, b"optimized", executable=True)
    assert cache.put(path, b"stand-in", tag=b"tier fast", executable=True, replace=False)
    assert cache.read_entry(path) == (b"optimized", b"")
    assert cache.put(path, b"rebuilt", executable=True)  # a plain put replaces
    assert cache.read_entry(path) == (b"rebuilt", b"")
    assert not (isolated_cache / "tmp").exists()


def test_an_entry_that_cannot_be_run_is_one_line(two_modules, isolated_cache):
    """Its owner made the cached binary not executable: the Python alley runs the program
    from the JIT path instead; -force-static, which must run that binary, says why it cannot
    in one line (no traceback)."""
    assert alley("-force-static", two_modules, "s").returncode == 0
    [binary] = entries(isolated_cache, "static_binaries")
    os.chmod(isolated_cache / "static_binaries" / binary, 0o644)

    def python_alley(*options):
        return subprocess.run([sys.executable, "-m", "allvm.tools.alley", *options,
                               two_modules], capture_output=True, text=True)

    assert python_alley().stdout == "42 -\n"
    run = python_alley("-force-static")
    assert (run.returncode, run.stdout) == (1, ""), run.stderr
    assert run.stderr.splitlines() == [
        "alley: cannot run the cached static binary: Permission denied"], run.stderr
