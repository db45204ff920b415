"""The cache's size limit, its statistics and its cleaning (`allvm-cache`).

Why a limit: every allexe run on the JIT path leaves an object per module and every allready
a static binary; nothing else ever removes them, so without a limit the cache grows forever.

The limit (default DEFAULT_LIMIT, 5 GiB) counts the bytes (apparent size) of the entries in
`objects/` and `static_binaries/`; launch records (symbolic links) and the scratch directory do
not count. It is kept as a symbolic link `<root>/limit` whose target is the decimal byte count
(as FreeBSD keeps /etc/malloc.conf): one readlink to read, atomic to replace, and not a regular
file, so a cache's regular files are still exactly its entries.

Eviction runs in the process that has just added an entry (`Cache.put`): no daemon, no lock
file. When the total is over the limit, entries go least recently used first. Last use is
max(st_atime, st_mtime): entries are never modified after they appear, so mtime is when one was
added, and atime is when one was last read or exec'd -- but only as precisely as the mount
allows: under Linux's default `relatime` the atime moves on the first read after a write and
then at most once a day, and under `noatime` never (then the order is by age). Entries used in
the last RECENT_SECONDS are never removed, whatever the limit: a process that has just added
one may be about to exec or link it by its path. So a burst of new entries may hold the cache
over its limit for that long; the next addition after it brings it back under.

Removal is unlink(2): a program already exec'd from an entry, or a reader that has it open,
keeps its inode, so nothing is ever torn, and a later start simply misses and rebuilds.
Evictors serialize on an flock of the cache's root directory and rescan under it, so
concurrent ones do not remove more than needed; an entry that vanished meanwhile is skipped.

Hits and misses are not recorded: counting them would add a write to alley's cache-hit path,
whose whole point is to do as little as possible.

This module must not import allvm.cache (allvm.cache imports it, lazily, from `Cache.put`:
tests/test_layout.py forbids the cycle), so the few names of the cache's layout it needs are
repeated below; tests/test_allvm_cache.py holds them equal.
"""

import errno
import os
import time
from typing import Protocol

from allvm.errors import AllvmError

DEFAULT_LIMIT = 5 << 30
LIMIT_LINK = "limit"
# Longer than a build's gap between adding an entry and using it by path (exec, link).
RECENT_SECONDS = 300
# The cache's layout (allvm.cache's OBJECTS, STATIC_BINARIES, LAUNCH_RECORDS, SCRATCH).
OBJECTS, STATIC_BINARIES, LAUNCH_RECORDS, SCRATCH = "objects", "static_binaries", "launch", "tmp"
_MAX_DIGITS = 20
_UNITS = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
HITS_AND_MISSES = "not recorded"


class CacheLike(Protocol):
    """What this module needs of an allvm.cache.Cache (not imported: see the docstring)."""

    root: str
    objects: str
    static_binaries: str
    system: bool
    problem: str | None

    def trusted(self) -> bool: ...


class _Entry:
    """One entry file as scanned: its path, size and last use."""

    __slots__ = ("path", "size", "last_use")

    def __init__(self, path: str, size: int, last_use: float):
        self.path, self.size, self.last_use = path, size, last_use


# --- the limit ---------------------------------------------------------------------------


def parse_size(text: str) -> int:
    """Bytes from `5G`, `512MiB`, `1.5 GB`, `100` (K/M/G/T are powers of 1024)."""
    import re
    from fractions import Fraction

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:i?B)?|B)?\s*", text, re.IGNORECASE)
    if not match:
        raise AllvmError(f"invalid size '{text}' (expected a number of bytes, optionally with "
                         "K, M, G or T: '5G', '512MiB', '100000')")
    size = int(Fraction(match[1]) * (1 << _UNITS[(match[2] or "").upper()]))
    if len(str(size)) > _MAX_DIGITS:
        raise AllvmError(f"size '{text}' is too large")
    return size


def format_size(size: int) -> str:
    """`1.5 MiB`: bytes for people (powers of 1024, as parse_size reads them)."""
    for unit in ("T", "G", "M", "K"):
        if size >= 1 << _UNITS[unit]:
            value = size / (1 << _UNITS[unit])
            return f"{value:.1f} {unit}iB" if value < 100 else f"{value:.0f} {unit}iB"
    return f"{size} B"


def get_limit(cache: CacheLike) -> int:
    """The cache's limit in bytes: `<root>/limit`'s target when it is a plain decimal number,
    else DEFAULT_LIMIT (also for a cache that is not safe to read)."""
    if not cache.trusted():
        return DEFAULT_LIMIT
    try:
        text = os.readlink(os.path.join(cache.root, LIMIT_LINK))
    except OSError:  # none (ENOENT), or not a link (EINVAL): the default
        return DEFAULT_LIMIT
    if text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS:
        return int(text)
    return DEFAULT_LIMIT


def set_limit(cache: CacheLike, size: int) -> None:
    """Persist `size` as the cache's limit, atomically (a reader sees the old or new link).

    The root must exist (allvm-cache makes it with the cache's mode first)."""
    require_trusted(cache)
    if size < 0 or len(str(size)) > _MAX_DIGITS:
        raise AllvmError(f"invalid limit {size}")
    link = os.path.join(cache.root, LIMIT_LINK)
    tmp = os.path.join(cache.root, f".{LIMIT_LINK}.{os.getpid()}")
    try:
        _unlink(tmp)  # left by a killed process that had our pid
        os.symlink(str(size), tmp)
        os.replace(tmp, link)
    except OSError as e:
        _unlink(tmp)
        raise AllvmError(f"could not set the limit of '{cache.root}': {e.strerror}") from None


# --- eviction ----------------------------------------------------------------------------


def enforce_limit(cache: CacheLike) -> None:
    """Bring the cache within its limit after an addition (Cache.put); never raises: an
    eviction that cannot run leaves the cache as it was, still usable. Under the limit it
    costs one scan of the two entry directories."""
    try:
        trim(cache)
    except (AllvmError, OSError):
        pass


def trim(cache: CacheLike) -> dict:
    """Remove least recently used entries until the cache is within its limit.

    Returns what was removed (`entries`, `bytes`) and the bytes left (`total`), which may
    stay over the limit: entries used in the last RECENT_SECONDS are kept.
    """
    if not cache.trusted():
        return {"entries": 0, "bytes": 0, "total": 0}
    limit = get_limit(cache)
    entries = _scan_entries(cache.objects, cache.static_binaries)
    total = sum(e.size for e in entries)
    if total <= limit:
        return {"entries": 0, "bytes": 0, "total": total}
    try:
        with _EvictionLock(cache.root):
            # Again, under the lock: another evictor may have been before us.
            entries = _scan_entries(cache.objects, cache.static_binaries)
            return _evict(entries, limit, time.time() - RECENT_SECONDS)
    except OSError as e:
        raise AllvmError(f"could not trim '{cache.root}': {e.strerror}") from None


def _evict(entries: list[_Entry], limit: int, recent: float) -> dict:
    """Unlink the oldest `entries` until their total is within `limit`; none used after
    `recent`. An entry another process removed meanwhile counts as gone."""
    total = sum(e.size for e in entries)
    count = size = 0
    for entry in sorted(entries, key=lambda e: e.last_use):
        if total <= limit or entry.last_use > recent:
            break
        _unlink(entry.path)
        total -= entry.size
        count, size = count + 1, size + entry.size
    return {"entries": count, "bytes": size, "total": total}


class _EvictionLock:
    """An exclusive flock on the root directory: evictors take turns, nothing is created."""

    def __init__(self, root: str):
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def __enter__(self) -> "_EvictionLock":
        import fcntl

        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)  # releases the lock


def _scan_entries(*directories: str) -> list[_Entry]:
    """Every regular file in `directories` (entries), with its size and last use."""
    found = []
    for directory in directories:
        for item in _scandir(directory):
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed meanwhile
                continue
            if item.is_file(follow_symlinks=False):
                found.append(_Entry(item.path, st.st_size, max(st.st_atime, st.st_mtime)))
    return found


def _scandir(directory: str) -> list[os.DirEntry]:
    """The directory's items; none when it does not exist (yet)."""
    try:
        with os.scandir(directory) as items:
            return list(items)
    except (FileNotFoundError, NotADirectoryError):
        return []


# --- statistics and cleaning -------------------------------------------------------------


def stats(cache: CacheLike) -> dict:
    """What the cache holds: entries and bytes per kind, the limit, the total.

    `launch_records` are the launcher's symbolic links (no bytes counted: their text is in the
    link). Hits and misses are not recorded (see the module's docstring) and say so.
    """
    require_trusted(cache)
    result: dict = {"location": cache.root, "system": cache.system, "limit": get_limit(cache)}
    total = {"entries": 0, "bytes": 0}
    for kind, directory in ((OBJECTS, cache.objects), (STATIC_BINARIES, cache.static_binaries)):
        entries = _scan_entries(directory)
        result[kind] = {"entries": len(entries), "bytes": sum(e.size for e in entries)}
        total = {key: total[key] + result[kind][key] for key in total}
    records = [i for i in _scandir(_launch_dir(cache)) if i.is_symlink()]
    result["launch_records"] = {"entries": len(records), "bytes": 0}
    result["total"] = total
    result["hits_and_misses"] = HITS_AND_MISSES
    return result


def clean(cache: CacheLike) -> dict:
    """Empty the cache: every entry, every launch record, and what dead processes left in the
    scratch directory (a live one's build is not disturbed). The directories and the limit
    stay. A program already running from an entry is not affected (unlink(2)).

    Returns, per kind (`objects`, `static_binaries`, `launch_records`, `scratch`), what was
    removed: `entries` and `bytes`.
    """
    require_trusted(cache)
    return {"objects": _empty(cache.objects), "static_binaries": _empty(cache.static_binaries),
            "launch_records": _empty(_launch_dir(cache)),
            "scratch": _sweep_scratch(os.path.join(cache.root, SCRATCH))}


def _empty(directory: str) -> dict:
    """Unlink every file and link in `directory` (not subdirectories: not ours)."""
    count = size = 0
    for item in _scandir(directory):
        try:
            st = item.stat(follow_symlinks=False)
            if item.is_dir(follow_symlinks=False):
                continue
            os.unlink(item.path)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise AllvmError(f"could not remove '{item.path}': {e.strerror}") from None
        count += 1
        size += st.st_size if item.is_file(follow_symlinks=False) else 0
    return {"entries": count, "bytes": size}


def _sweep_scratch(scratch: str) -> dict:
    """Remove what a dead process left in `tmp/` (named `<pid>-...`, as allvm.cache names
    scratch files), then `tmp/` itself once empty."""
    import shutil

    count = size = 0
    for item in _scandir(scratch):
        pid = item.name.split("-", 1)[0]
        if not pid.isdigit() or _process_alive(int(pid)):
            continue
        size += _tree_size(item.path)
        if item.is_dir(follow_symlinks=False):
            shutil.rmtree(item.path, ignore_errors=True)
        else:
            _unlink(item.path)
        count += 1
    try:
        os.rmdir(scratch)
    except OSError:
        pass  # not empty (a live build), or not there
    return {"entries": count, "bytes": size}


def _tree_size(path: str) -> int:
    """Bytes of the regular files at or under `path`."""
    if not os.path.isdir(path) or os.path.islink(path):
        try:
            return os.lstat(path).st_size
        except OSError:
            return 0
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


def _process_alive(pid: int) -> bool:
    """allvm.cache.process_alive (repeated: see the module's docstring)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _launch_dir(cache: CacheLike) -> str:
    return os.path.join(cache.root, LAUNCH_RECORDS)


def require_trusted(cache: CacheLike) -> None:
    """Refuse (AllvmError) to read or change a cache someone else could have changed; the
    cache has warned why."""
    if not cache.trusted():
        raise AllvmError(f"cache '{cache.root}' is not safe to use; nothing was done")


def _unlink(path: str) -> None:
    """unlink(2), a file already gone being no error (another evictor was first)."""
    try:
        os.unlink(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
