"""allvm-cache and the cache's size limit: stats, clean, limit, eviction (also concurrent)."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import build_allexe, run_tool, tool_path

from allvm import cache as cache_module
from allvm import cache_admin
from allvm.allexe import Allexe
from allvm.cache import static_binary_key, unseal
from allvm.errors import AllvmError

OLD = 1000  # seconds: well outside cache_module.RECENT_SECONDS


def cache_tool(*args, **kwargs) -> subprocess.CompletedProcess:
    return run_tool("allvm-cache", *args, **kwargs)


def stats_json() -> dict:
    proc = cache_tool("stats", "-json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1  # one object, one line
    return json.loads(proc.stdout)


def regular_files(cache: Path) -> int:
    """What the original toolchain's tests count: `find $ALLVM_CACHE_DIR -type f`."""
    if not cache.exists():
        return 0
    proc = subprocess.run(["find", str(cache), "-type", "f"], capture_output=True, text=True,
                          check=True)
    return len(proc.stdout.split())


def binaries(cache: Path) -> set[str]:
    directory = cache / "static_binaries"
    return {p.name for p in directory.iterdir()} if directory.exists() else set()


def hello(tmp_path: Path, hello_c: str, name: str) -> Path:
    """An allexe printing `hello, NAME`."""
    return build_allexe(tmp_path, name, hello_c.replace("allvm", name))


def allready(allexe: Path, cache: Path) -> str:
    """Compile `allexe` ahead of time; the name of the static binary it added."""
    before = binaries(cache)
    proc = run_tool("allready", allexe)
    assert proc.returncode == 0, proc.stderr
    added = binaries(cache) - before
    assert len(added) == 1
    return added.pop()


def age(path: Path, *, used: float, added: float | None = None) -> None:
    """Make an entry look added `added` and last read `used` seconds ago."""
    now = time.time()
    os.utime(path, (now - used, now - (used if added is None else added)))


def test_put_trims_and_keeps_what_it_added(isolated_cache, monkeypatch):
    """Cache.put applies the limit itself: the oldest entries go, the one just added stays; a
    trim that cannot run does not fail the put."""
    cache = cache_module.Cache()
    assert cache.ensure_dirs()
    for name, used in (("a", OLD + 10), ("b", OLD)):
        assert cache.put(cache.object_path(name), b"x" * 1000)
        age(Path(cache.object_path(name)), used=used)
    cache_admin.set_limit(cache, 1500)  # room for one entry (1000 bytes and the seal)
    assert cache.put(cache.object_path("c"), b"y" * 1000)
    assert os.listdir(cache.objects) == ["c"]
    kept = os.path.getsize(cache.object_path("c"))
    assert cache.trim() == {"entries": 0, "bytes": 0, "total": kept}

    def cannot(*_):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache, "trim", cannot)
    assert cache.put(cache.object_path("d"), b"z") and cache.problem is None
    assert cache.read_entry(cache.object_path("d")) == (b"z", b"")


def test_stats_of_an_empty_and_a_filled_cache(tmp_path, hello_c, isolated_cache):
    proc = cache_tool("stats")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.splitlines() == [
        f"location:        {isolated_cache}",
        "limit:           5.0 GiB (5368709120 bytes)",
        "objects:         0 entries, 0 B",
        "static binaries: 0 entries, 0 B",
        "launch records:  0 entries",
        "total:           0 entries, 0 B (0% of the limit)",
        "hits/misses:     not recorded",
    ]
    assert not isolated_cache.exists()  # looking made nothing
    empty = {"entries": 0, "bytes": 0}
    assert stats_json() == {
        "location": str(isolated_cache), "system": False, "limit": 5 << 30,
        "objects": empty, "static_binaries": empty, "launch_records": empty, "total": empty,
        "hits_and_misses": "not recorded"}

    jit = hello(tmp_path, hello_c, "jit")
    assert run_tool("alley", jit).stdout == "hello, jit\n"  # the JIT path: one object
    ready = hello(tmp_path, hello_c, "ready")
    allready(ready, isolated_cache)
    time.sleep(cache_module.RECORD_SETTLE_SECONDS + 0.5)  # the launcher records settled files
    assert subprocess.run([ready], capture_output=True, text=True).stdout == "hello, ready\n"

    size = {kind: sum(p.stat().st_size for p in (isolated_cache / kind).iterdir())
            for kind in ("objects", "static_binaries")}
    stats = stats_json()
    assert stats["objects"] == {"entries": 1, "bytes": size["objects"]}
    assert stats["static_binaries"] == {"entries": 1, "bytes": size["static_binaries"]}
    assert stats["launch_records"] == {"entries": 1, "bytes": 0}
    assert stats["total"] == {"entries": 2, "bytes": sum(size.values())}
    text = cache_tool("stats").stdout
    assert "objects:         1 entry, " in text and "launch records:  1 entry" in text
    assert f"({sum(size.values())} bytes)" in text or f"{sum(size.values())} B" in text


def test_limit_persists_as_a_link_not_a_file(tmp_path, hello_c, isolated_cache):
    allready(hello(tmp_path, hello_c, "p"), isolated_cache)
    files = regular_files(isolated_cache)
    proc = cache_tool("limit", "1M")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Cache limit of '{isolated_cache}': 1.0 MiB (1048576 bytes)\n")
    # Another process sees it; the cache has no new regular file.
    assert cache_tool("limit").stdout == (
        f"Cache limit of '{isolated_cache}': 1.0 MiB (1048576 bytes)\n")
    assert stats_json()["limit"] == 1 << 20
    assert os.readlink(isolated_cache / "limit") == "1048576"
    assert regular_files(isolated_cache) == files
    limit = json.loads(cache_tool("limit", "2GiB", "-json").stdout)
    assert limit["limit"] == 2 << 30 and limit["removed"]["entries"] == 0


def test_limit_is_made_with_the_cache_if_there_is_none(isolated_cache):
    assert cache_tool("limit", "512K").returncode == 0
    assert (isolated_cache.stat().st_mode & 0o777) == 0o700
    assert regular_files(isolated_cache) == 0


@pytest.mark.parametrize("size", ["12Q", "G", "1.5.5G", "-1", "", "5 GiBs", "1" * 30])
def test_bad_size_is_one_line(size, isolated_cache):
    proc = cache_tool("limit", size)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("allvm-cache: ")
    assert "Traceback" not in proc.stderr
    assert not (isolated_cache / "limit").exists()


def test_parse_size():
    assert cache_admin.parse_size("100") == 100
    assert cache_admin.parse_size("7B") == 7
    assert cache_admin.parse_size("5G") == 5 << 30
    assert cache_admin.parse_size("512MiB") == 512 << 20
    assert cache_admin.parse_size("1.5k") == 1536
    assert cache_admin.parse_size("2 TB") == 2 << 40
    with pytest.raises(AllvmError, match="invalid size 'lots'"):
        cache_admin.parse_size("lots")


def test_a_bad_limit_link_means_the_default(isolated_cache):
    isolated_cache.mkdir(mode=0o700)
    for target in ("-5", "12abc", "1" * 21, "٣"):  # (an Arabic-Indic digit: not ASCII)
        (isolated_cache / "limit").unlink(missing_ok=True)
        (isolated_cache / "limit").symlink_to(target)
        assert stats_json()["limit"] == 5 << 30


def test_usage_errors_and_help():
    for args, message in ((("clean", "1G"), "'clean' takes no SIZE"),
                          (("frob",), "invalid choice: 'frob'"),
                          ((), "Not enough positional command line arguments")):
        proc = cache_tool(*args)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("allvm-cache: ") and message in proc.stderr
    proc = cache_tool("--help")
    assert proc.returncode == 0
    for text in ("stats", "clean", "limit [SIZE]", "-json", "-system", "allvm-cache limit 2G",
                 "5 GiB", "least\nrecently used"):
        assert text in proc.stdout
    assert cache_tool("-version").stdout.startswith("ALLVM Tools (allvm-py) version")


def test_an_unsafe_cache_is_refused(isolated_cache):
    isolated_cache.mkdir(mode=0o700)
    isolated_cache.chmod(0o777)
    proc = cache_tool("clean")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        f"allvm-cache: cache '{isolated_cache}' is not safe to use; nothing was done")


def test_clean_empties_the_cache_and_programs_still_run(tmp_path, hello_c, isolated_cache):
    jit = hello(tmp_path, hello_c, "jit")
    assert run_tool("alley", jit).stdout == "hello, jit\n"
    ready = hello(tmp_path, hello_c, "ready")
    allready(ready, isolated_cache)
    scratch = isolated_cache / "tmp"
    scratch.mkdir(mode=0o700)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (scratch / f"{dead.pid}-left").write_bytes(b"x" * 10)  # a killed writer's leftover
    (scratch / f"{os.getpid()}-busy").write_bytes(b"y")  # a live build's: kept

    proc = cache_tool("clean")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Removed from '{isolated_cache}': 1 objects (")
    assert "1 static binaries (" in proc.stdout
    assert "1 leftovers of dead processes (10 B)" in proc.stdout
    assert sorted(p.name for p in isolated_cache.rglob("*")) == [
        f"{os.getpid()}-busy", "objects", "static_binaries", "tmp"]
    assert stats_json()["total"] == {"entries": 0, "bytes": 0}
    assert run_tool("alley", ready).stdout == "hello, ready\n"
    assert run_tool("alley", "-force-static", jit).stdout == "hello, jit\n"


def test_least_recently_used_entries_go_first(tmp_path, hello_c, isolated_cache):
    programs = {name: hello(tmp_path, hello_c, name) for name in ("a", "b", "c", "d")}
    binary = {"a": allready(programs["a"], isolated_cache)}
    size = (isolated_cache / "static_binaries" / binary["a"]).stat().st_size
    assert cache_tool("limit", str(size * 5 // 2)).returncode == 0  # room for two and a half
    age(isolated_cache / "static_binaries" / binary["a"], used=OLD)
    binary["b"] = allready(programs["b"], isolated_cache)
    age(isolated_cache / "static_binaries" / binary["b"], used=OLD - 100)
    binary["c"] = allready(programs["c"], isolated_cache)  # over the limit: a, the oldest, goes
    assert binaries(isolated_cache) == {binary["b"], binary["c"]}
    # b was added before c but read since (atime): c is now the least recently used.
    age(isolated_cache / "static_binaries" / binary["b"], used=OLD - 600, added=OLD - 100)
    age(isolated_cache / "static_binaries" / binary["c"], used=OLD - 200)
    binary["d"] = allready(programs["d"], isolated_cache)
    assert binaries(isolated_cache) == {binary["b"], binary["d"]}
    for name in ("a", "c"):  # evicted: they run all the same, through the JIT path
        assert run_tool("alley", programs[name]).stdout == f"hello, {name}\n"


def test_recent_entries_are_kept_and_limit_trims_at_once(tmp_path, hello_c, isolated_cache):
    names = [allready(hello(tmp_path, hello_c, f"p{i}"), isolated_cache) for i in range(3)]
    proc = cache_tool("limit", "1")
    assert proc.returncode == 0, proc.stderr
    assert "Still over the limit: entries used in the last 5 minutes are kept" in proc.stdout
    assert binaries(isolated_cache) == set(names)  # all just made: a program may run from them
    for name in names[:2]:
        age(isolated_cache / "static_binaries" / name, used=OLD)
    proc = cache_tool("limit", "1", "-json")
    removed = json.loads(proc.stdout)["removed"]
    assert removed["entries"] == 2 and binaries(isolated_cache) == {names[2]}


def test_eviction_under_concurrent_starts(tmp_path, hello_c, isolated_cache):
    """Several programs compiled at once, each start evicting: nothing is torn, every program
    prints what it should, the old entries go and the newest stays."""
    old = [allready(hello(tmp_path, hello_c, f"old{i}"), isolated_cache) for i in range(3)]
    size = max((isolated_cache / "static_binaries" / n).stat().st_size for n in old)
    assert cache_tool("limit", str(size * 2 + size // 2)).returncode == 0  # room for two
    assert binaries(isolated_cache) == set(old)  # all recent: kept
    for name in old:
        age(isolated_cache / "static_binaries" / name, used=OLD)

    names = [f"new{i}" for i in range(6)]
    programs = {name: hello(tmp_path, hello_c, name) for name in names}
    running = {name: subprocess.Popen(
        [tool_path("alley"), "-force-static", programs[name]] if i % 2 else
        [tool_path("allready"), programs[name]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i, name in enumerate(names)}
    for i, (name, process) in enumerate(running.items()):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert out == (f"hello, {name}\n" if i % 2 else
                       f"Successfully cached static binary for '{programs[name]}'.\n")

    directory = isolated_cache / "static_binaries"
    remaining = list(directory.iterdir())
    for entry in remaining:  # complete: sealed, nothing torn
        assert unseal(entry.read_bytes()) is not None, entry
    # Over the limit: the old ones went; every new one stays while recent, the newest too.
    assert {p.name for p in remaining} == {
        static_binary_key(Allexe.open(str(programs[name]))) for name in names}
    for name in names:
        assert run_tool("alley", programs[name]).stdout == f"hello, {name}\n"
