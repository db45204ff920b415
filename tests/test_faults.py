"""Faults: a full or read-only cache, read-only output directories, allready killed midway,
concurrent builds of one allexe.

File systems are small tmpfs mounts (the tests run as root, who ignores permission bits, so a
read-only *mount* is what really refuses writes); without mount rights these tests skip.
"""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import build_allexe, compile_c, run_tool, tool_path

from allvm.cache import Cache

PROGRAM = '#include <stdio.h>\nint helper(void);\nint main(void) { printf("%d\\n", helper()); }\n'
HELPER = "int helper(void) { return 42; }\n"


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    return build_allexe(tmp_path_factory.mktemp("faults"), "prog", PROGRAM, HELPER)


def mount_tmpfs(path: Path, *options: str) -> None:
    path.mkdir(exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")


@pytest.fixture
def mounts():
    mounted = []

    def mount(path: Path, *options: str) -> Path:
        mount_tmpfs(path, *options)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", str(path)], check=True)


def fill(directory: Path) -> None:
    """Write until the file system says it is full."""
    with open(directory / "filler", "wb") as f:
        try:
            while True:
                f.write(bytes(1 << 20))
                f.flush()
        except OSError:
            pass


def env_with(cache: Path, tmpdir: Path) -> dict:
    return dict(os.environ, ALLVM_CACHE_DIR=str(cache), TMPDIR=str(tmpdir))


def assert_runs_uncached_with_one_warning(proc, cache: Path) -> None:
    assert (proc.returncode, proc.stdout) == (0, "42\n"), proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"alley: warning: cache '{cache}' not used")


def test_full_cache_runs_uncached_with_one_warning(program, tmp_path, mounts):
    fs = mounts(tmp_path / "fs", "size=32m")
    cache = fs / "cache"
    cache.mkdir()
    fill(fs)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    for flags in ([], ["-force-static"], ["-noexec"]):
        proc = run_tool("alley", *flags, program, env=env_with(cache, tmpdir))
        if flags == ["-noexec"]:
            assert proc.stdout == "'noexec' option set\n" and proc.returncode == 0
        else:
            assert_runs_uncached_with_one_warning(proc, cache)
    assert sorted(p.name for p in fs.iterdir()) == ["cache", "filler"]
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    assert list(tmpdir.iterdir()) == []


def test_read_only_cache_mount(program, tmp_path, mounts):
    cache = mounts(tmp_path / "ro", "ro", "size=1m", "mode=0700")  # a safe cache, read-only
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = run_tool("alley", program, env=env_with(cache, tmpdir))
    assert_runs_uncached_with_one_warning(proc, cache)
    assert "Read-only file system" in proc.stderr
    proc = run_tool("allready", program, env=env_with(cache, tmpdir))
    assert proc.returncode == 1 and "is not usable" in proc.stderr
    assert list(tmpdir.iterdir()) == []


def test_read_only_cache_directory_without_root_privileges(program, tmp_path):
    """A read-only directory (mode 555), for a process without root's override."""
    cache = tmp_path / "cache"
    (cache / "objects").mkdir(parents=True)
    (cache / "static_binaries").mkdir()
    for d in (cache, cache / "objects", cache / "static_binaries"):
        d.chmod(0o555)
    env = dict(os.environ, ALLVM_CACHE_DIR=str(cache))
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    proc = subprocess.run([*prefix, tool_path("alley"), str(program)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert_runs_uncached_with_one_warning(proc, cache)


def test_output_in_read_only_directory(program, tmp_path, mounts):
    ro = mounts(tmp_path / "ro", "ro", "size=1m")
    bc = tmp_path / "x.bc"
    compile_c(HELPER.replace("helper", "main"), bc)
    commands = [["bc2allvm", bc, "-o", ro / "out.allexe"]]
    for tool, cmd in (("alltogether", [program, "-o", ro / "out.allexe"]),
                      ("allmux", [program, "-o", ro / "out.allexe"]),
                      ("allopt", ["-i", program, "-o", ro / "out.allexe", "-passes=default<O1>"])):
        if os.access(tool_path(tool), os.X_OK):
            commands.append([tool, *cmd])
    for tool, *args in commands:
        proc = run_tool(tool, *args)
        assert proc.returncode != 0, (tool, proc.stdout)
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{tool}: "), proc.stderr
        assert "Read-only file system" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert list(ro.iterdir()) == []


def cache_state(cache: Path) -> tuple[list[Path], list[Path]]:
    entries = sorted((cache / "static_binaries").glob("*")) if cache.exists() else []
    scratch = sorted((cache / "tmp").glob("*")) if (cache / "tmp").exists() else []
    return entries, scratch


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.6, 0.9, 1.2])
def test_allready_killed_leaves_no_partial_entry(program, isolated_cache, delay):
    proc = subprocess.Popen([tool_path("allready"), str(program)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(delay)  # a point in the build; the parametrization spreads them out
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Its compile workers (forked) outlive it, blocked on their queue: the test ends them.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    entries, _ = cache_state(isolated_cache)
    cache = Cache(str(isolated_cache))
    assert all(cache.entry_tag(str(e)) is not None for e in entries)  # whole, or absent
    # The next build succeeds, and sweeps what the killed one left in the scratch area.
    assert run_tool("allready", program).returncode == 0
    entries, scratch = cache_state(isolated_cache)
    assert len(entries) == 1 and scratch == []
    assert run_tool("alley", program).stdout == "42\n"


def test_concurrent_builds_of_one_allexe(program, isolated_cache):
    commands = [[tool_path("allready"), str(program)]] * 4
    commands += [[tool_path("alley"), "-force-static", str(program)]] * 4
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for (status, out, err), cmd in zip(results, commands, strict=True):
        assert status == 0, (cmd, err)
        assert err == ""
        assert out == ("42\n" if "alley" in cmd[0] else
                       f"Successfully cached static binary for '{program}'.\n")
    entries, scratch = cache_state(isolated_cache)
    assert len(entries) == 1 and scratch == []
    assert sorted(p.name for p in isolated_cache.iterdir()) == ["objects", "static_binaries"]


def run_limited(vmem_kib: int, *argv) -> subprocess.CompletedProcess:
    """A command under `ulimit -v`, as coreutils' tests run programs."""
    return subprocess.run(["bash", "-c", f'ulimit -v {vmem_kib} && exec "$@"', "limited",
                           *map(str, argv)], capture_output=True, text=True, timeout=300)


def test_cache_hit_under_small_address_space_limit(program, isolated_cache):
    """Reading the allexe allocates its size, not the size limit (512 MiB)."""
    assert run_tool("allready", program).returncode == 0
    proc = run_limited(60_000, tool_path("alley"), program)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "42\n", "")


def test_no_memory_for_the_compiler_is_one_line(program, isolated_cache):
    proc = run_limited(60_000, tool_path("alley"), program)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("alley: ") and proc.stderr.count("\n") == 1, proc.stderr
