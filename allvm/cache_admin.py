"""Administering the native-code cache (`allvm-cache`): its statistics, its cleaning, setting
its size limit.

The limit's format and the trimming that keeps the cache under it are the cache's own: see
Size in allvm/cache.py, which `Cache.put` applies. This module adds what only the tool needs.
"""

import os

from allvm.cache import (
    LAUNCH_RECORDS,
    LIMIT_DIGITS,
    LIMIT_LINK,
    OBJECTS,
    STATIC_BINARIES,
    Cache,
    scan_directory,
    scan_entries,
)
from allvm.errors import AllvmError

_UNITS = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
HITS_AND_MISSES = "not recorded"


def parse_size(text: str) -> int:
    """Bytes from `5G`, `512MiB`, `1.5 GB`, `100` (K/M/G/T are powers of 1024)."""
    import re
    from fractions import Fraction

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:i?B)?|B)?\s*", text, re.IGNORECASE)
    if not match:
        raise AllvmError(f"invalid size '{text}' (expected a number of bytes, optionally with "
                         "K, M, G or T: '5G', '512MiB', '100000')")
    size = int(Fraction(match[1]) * (1 << _UNITS[(match[2] or "").upper()]))
    if len(str(size)) > LIMIT_DIGITS:
        raise AllvmError(f"size '{text}' is too large")
    return size


def format_size(size: int) -> str:
    """`1.5 MiB`: bytes for people (powers of 1024, as parse_size reads them)."""
    for unit in ("T", "G", "M", "K"):
        if size >= 1 << _UNITS[unit]:
            value = size / (1 << _UNITS[unit])
            return f"{value:.1f} {unit}iB" if value < 100 else f"{value:.0f} {unit}iB"
    return f"{size} B"


def set_limit(cache: Cache, size: int) -> None:
    """Persist `size` as the cache's limit, atomically (a reader sees the old or new link).

    The root must exist (allvm-cache makes it with the cache's mode first)."""
    require_trusted(cache)
    if size < 0 or len(str(size)) > LIMIT_DIGITS:
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


def trim(cache: Cache) -> dict:
    """`Cache.trim`, its failure an AllvmError."""
    try:
        return cache.trim()
    except OSError as e:
        raise AllvmError(f"could not trim '{cache.root}': {e.strerror}") from None


def stats(cache: Cache) -> dict:
    """What the cache holds: entries and bytes per kind, the limit, the total.

    `launch_records` are the launcher's symbolic links (no bytes counted: their text is in the
    link). Hits and misses are not recorded (Size in allvm/cache.py) and say so.
    """
    require_trusted(cache)
    result: dict = {"location": cache.root, "system": cache.system, "limit": cache.limit()}
    total = {"entries": 0, "bytes": 0}
    for kind, directory in ((OBJECTS, cache.objects), (STATIC_BINARIES, cache.static_binaries)):
        entries = scan_entries(directory)
        result[kind] = {"entries": len(entries), "bytes": sum(size for _, size, _ in entries)}
        total = {key: total[key] + result[kind][key] for key in total}
    records = [item for item in scan_directory(_launch_dir(cache)) if item.is_symlink()]
    result["launch_records"] = {"entries": len(records), "bytes": 0}
    result["total"] = total
    result["hits_and_misses"] = HITS_AND_MISSES
    return result


def clean(cache: Cache) -> dict:
    """Empty the cache: every entry, every launch record, and what dead processes left in the
    scratch directory (a live one's build is not disturbed). The directories and the limit
    stay. A program already running from an entry is not affected (unlink(2)).

    Returns, per kind (`objects`, `static_binaries`, `launch_records`, `scratch`), what was
    removed: `entries` and `bytes`.
    """
    require_trusted(cache)
    removed = {"objects": _empty(cache.objects), "static_binaries": _empty(cache.static_binaries),
               "launch_records": _empty(_launch_dir(cache)), "scratch": cache.sweep_scratch()}
    cache.drop_scratch()
    return removed


def _empty(directory: str) -> dict:
    """Unlink every file and link in `directory` (not subdirectories: not ours)."""
    count = size = 0
    for item in scan_directory(directory):
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


def _launch_dir(cache: Cache) -> str:
    return os.path.join(cache.root, LAUNCH_RECORDS)


def require_trusted(cache: Cache) -> None:
    """Refuse (AllvmError) to read or change a cache someone else could have changed; the
    cache has warned why."""
    if not cache.trusted():
        raise AllvmError(f"cache '{cache.root}' is not safe to use; nothing was done")


def _unlink(path: str) -> None:
    """unlink(2), a file already gone being no error."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
