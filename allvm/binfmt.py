"""Allexes and bitcode as executable formats of the kernel (Linux binfmt_misc).

Three registrations, all run by alley's native launcher under the name `alley-binfmt`:
an allexe without a `#!` line (a zip whose first entry is `main.bc`), raw LLVM bitcode, and
bitcode in LLVM's wrapper. Their flags: `P` keeps the caller's argv[0] (the launcher gets
`FILE ARGV0 ARGS...`), `F` opens the launcher when it is registered, so every user can run
programs even where the install's directory is closed to them.
"""

import ctypes
import errno
import os

from allvm import bitcode
from allvm.errors import AllvmError

BINFMT_DIR = "/proc/sys/fs/binfmt_misc"
DEFAULT_PREFIX = "allvm"
FLAGS = "PF"

# A zip's first local header: signature, 22 bytes of version/flags/method/time/CRC/sizes,
# name length 7, any extra length, then the name.
_ZIP_MAGIC = b"PK\x03\x04" + bytes(22) + b"\x07\x00" + bytes(2) + b"main.bc"
_ZIP_MASK = b"\xff" * 4 + bytes(22) + b"\xff\xff" + bytes(2) + b"\xff" * 7
# (name suffix, magic, mask or None)
FORMATS = [
    ("allexe", _ZIP_MAGIC, _ZIP_MASK),
    ("bitcode", bitcode.MAGIC, None),
    ("bitcode-wrapper", bitcode.WRAPPER_MAGIC, None),
]


def names(prefix: str = DEFAULT_PREFIX) -> list[str]:
    return [f"{prefix}-{suffix}" for suffix, _, _ in FORMATS]


def _escaped(data: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in data)


def registration(name: str, magic: bytes, mask: bytes | None, interpreter: str) -> str:
    """The line written to binfmt_misc's `register` file."""
    return (f":{name}:M:0:{_escaped(magic)}:{_escaped(mask) if mask else ''}:"
            f"{interpreter}:{FLAGS}")


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise AllvmError(f"{what} needs root (binfmt_misc is system-wide)")


def _mounted() -> None:
    """Mount binfmt_misc where it is not (it lives in /proc/sys/fs/binfmt_misc)."""
    if os.path.exists(os.path.join(BINFMT_DIR, "register")):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"binfmt_misc", BINFMT_DIR.encode(), b"binfmt_misc", 0, None) != 0:
        error = ctypes.get_errno()
        raise AllvmError(f"cannot mount binfmt_misc on {BINFMT_DIR}: {os.strerror(error)}")


def _remove(name: str) -> bool:
    """Unregister `name`; whether it was registered."""
    path = os.path.join(BINFMT_DIR, name)
    if not os.path.exists(path):  # (opening it to write would try to create it: EACCES)
        return False
    with open(path, "w") as f:
        f.write("-1")
    return True


def register(interpreter: str, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Register every format (again, if it was: `F` opened the launcher of that time)."""
    _require_root("registering")
    _mounted()
    for (_, magic, mask), name in zip(FORMATS, names(prefix), strict=True):
        _remove(name)
        try:
            with open(os.path.join(BINFMT_DIR, "register"), "w") as f:
                f.write(registration(name, magic, mask, interpreter))
        except OSError as e:
            reason = "a name or format rejected" if e.errno == errno.EINVAL else e.strerror
            raise AllvmError(f"cannot register '{name}' with binfmt_misc: {reason}") from None
    return names(prefix)


def unregister(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Remove exactly what `register` added; the names that were registered."""
    _require_root("unregistering")
    if not os.path.exists(os.path.join(BINFMT_DIR, "register")):
        return []
    return [name for name in names(prefix) if _remove(name)]


def status(prefix: str = DEFAULT_PREFIX) -> dict[str, dict[str, str] | None]:
    """Each format's registration as binfmt_misc reports it (None: not registered)."""
    result = {}
    for name in names(prefix):
        try:
            with open(os.path.join(BINFMT_DIR, name)) as f:
                lines = f.read().splitlines()
        except OSError:
            result[name] = None
            continue
        fields = {"state": lines[0] if lines else "?"}
        for line in lines[1:]:
            key, _, value = line.partition(" ")
            fields[key.rstrip(":")] = value
        result[name] = fields
    return result
