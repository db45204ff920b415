"""The bad-input set: broken and hostile allexes (and other files), generated, never committed.

`generate(directory, bitcode)` writes every case and returns {case name: path}. `bitcode` holds
real modules compiled by the tests: `main` (a hello world), `lib` (no `main`), `main_global`
(`main` is a global variable), `aarch64` and `aarch64_lib` (`main` and `lib` for another
architecture).

The zips are written by `raw_zip`, not `zipfile`, so that the cases `zipfile` refuses to write
(duplicate names, lying sizes, encryption flags) can be made.
"""

import os
import random
import struct
import zlib
from pathlib import Path

from allvm.allexe import DEFAULT_SIZE_LIMIT, MAX_MODULES

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
ENCRYPTED = 0x1

# Cases for tools that read allexes (all but bc2allvm).
ALLEXE_CASES = [
    "empty", "random", "text", "truncated_head", "truncated_middle", "truncated_tail",
    "main_missing", "main_not_first", "main_not_bitcode", "main_truncated", "main_empty",
    "no_main", "main_global", "aarch64", "aarch64_library", "bomb", "lying_bomb", "duplicate_names",
    "many_entries", "encrypted", "directory", "missing", "unreadable", "symlink_loop",
    "fifo",
]
# Cases for bc2allvm, whose inputs are IR files.
IR_CASES = [
    "empty", "random", "text", "ir_truncated", "ir_no_main", "ir_main_global", "ir_allexe",
    "directory", "missing", "unreadable", "symlink_loop", "fifo",
]


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def raw_zip(entries: list[tuple], *, prefix: bytes = b"") -> bytes:
    """A zip of (name, data[, flags[, declared size[, deflated stream]]]) entries, deflated.

    `declared size` lets an entry lie about how large it inflates; `deflated stream` supplies
    the compressed bytes directly (a bomb made without holding it inflated).
    """
    out, central = bytearray(prefix), bytearray()
    for name, data, *rest in entries:
        flags = rest[0] if rest else 0
        size = rest[1] if len(rest) > 1 else len(data)
        stored = rest[2] if len(rest) > 2 else deflate(data)
        crc = zlib.crc32(data)
        raw_name = name.encode()
        offset = len(out)
        out += _LOCAL.pack(0x04034B50, 20, flags, 8, 0, 0x21, crc, len(stored), size,
                           len(raw_name), 0) + raw_name + stored
        central += _CENTRAL.pack(0x02014B50, 20, 20, flags, 8, 0, 0x21, crc, len(stored), size,
                                 len(raw_name), 0, 0, 0, 0, 0, offset) + raw_name
    count = len(entries)
    eocd = _EOCD.pack(0x06054B50, 0, 0, count, count, len(central), len(out) - len(prefix), 0)
    return bytes(out + central + eocd)


def zero_bomb(size: int) -> bytes:
    """A deflate stream of `size` zero bytes, built chunk by chunk (never held inflated)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    parts = [c.compress(chunk) for _ in range(size >> 20)]
    return b"".join(parts) + c.flush()


def generate(directory: Path, bitcode: dict[str, bytes]) -> dict[str, Path]:
    """Write every bad input into `directory`; {case: path}."""
    directory.mkdir(parents=True, exist_ok=True)
    main, lib = bitcode["main"], bitcode["lib"]
    good = raw_zip([("main.bc", main), ("lib.bc", lib)])
    rng = random.Random(7)
    bomb_size = DEFAULT_SIZE_LIMIT + (64 << 20)
    bomb = zero_bomb(bomb_size)
    files = {
        "empty": b"",
        "random": rng.randbytes(4096),
        "text": b"#!/bin/sh\necho this is not an allexe\n",
        "truncated_head": good[:30],
        "truncated_middle": good[: len(good) // 2],
        "truncated_tail": good[:-5],
        "main_missing": raw_zip([("lib.bc", lib)]),
        "main_not_first": raw_zip([("lib.bc", lib), ("main.bc", main)]),
        "main_not_bitcode": raw_zip([("main.bc", b"BC\xc0\xde" + rng.randbytes(300))]),
        "main_truncated": raw_zip([("main.bc", main[: len(main) // 2])]),
        "main_empty": raw_zip([("main.bc", b"")]),
        "no_main": raw_zip([("main.bc", lib)]),
        "main_global": raw_zip([("main.bc", bitcode["main_global"])]),
        "aarch64": raw_zip([("main.bc", bitcode["aarch64"])]),
        "aarch64_library": raw_zip([("main.bc", main), ("lib.bc", bitcode["aarch64_lib"])]),
        # Honest sizes, inflating past the default limit.
        "bomb": raw_zip([("main.bc", b"", 0, bomb_size, bomb)]),
        # Claims to be small; the same stream would inflate to far more.
        "lying_bomb": raw_zip([("main.bc", main, 0, len(main), bomb)]),
        "duplicate_names": raw_zip([("main.bc", main), ("lib.bc", lib), ("lib.bc", lib)]),
        "many_entries": raw_zip([("main.bc", main)]
                                + [(f"m{i}.bc", b"") for i in range(max(10_000, MAX_MODULES))]),
        "encrypted": raw_zip([("main.bc", main, ENCRYPTED)]),
        "ir_truncated": main[: len(main) // 2],
        "ir_no_main": lib,
        "ir_main_global": bitcode["main_global"],
        "ir_allexe": good,
    }
    paths = {}
    for case, data in files.items():
        path = directory / f"{case}.allexe"
        path.write_bytes(data)
        paths[case] = path
    paths["directory"] = directory / "a_directory.allexe"
    paths["directory"].mkdir(exist_ok=True)
    paths["missing"] = directory / "missing.allexe"
    paths["unreadable"] = directory / "unreadable.allexe"
    paths["unreadable"].write_bytes(good)
    paths["unreadable"].chmod(0)
    paths["symlink_loop"] = directory / "loop_a.allexe"
    if not os.path.lexists(paths["symlink_loop"]):
        os.symlink("loop_b.allexe", paths["symlink_loop"])
        os.symlink("loop_a.allexe", directory / "loop_b.allexe")
    paths["fifo"] = directory / "fifo.allexe"
    if not os.path.exists(paths["fifo"]):
        os.mkfifo(paths["fifo"])
    return paths


def odd_names(bitcode: dict[str, bytes]) -> bytes:
    """A valid allexe whose library names look like paths (`..`, absolute): names, not paths."""
    return raw_zip([("main.bc", bitcode["main"]),
                    ("../../../../tmp/allvm-escape.bc", bitcode["lib"]),
                    ("/tmp/allvm-absolute.bc", bitcode["lib2"])])
