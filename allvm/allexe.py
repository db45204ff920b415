"""The allexe container: a zip of bitcode modules, `main.bc` first, maybe behind a shebang line.

Reading is done here with `struct` and `zlib` only, not `zipfile`: alley's cache-hit path reads
the zip directory of every allexe it runs, and importing `zipfile` alone costs more time than
that whole path is allowed. Writing (not on any hot path) uses `zipfile`.
"""

import errno
import os
import stat
import struct
import zlib

from allvm.bitcode import is_bitcode
from allvm.errors import AllvmError

MAIN_MODULE = "main.bc"

_EOCD = struct.Struct("<IHHHHIIH")  # end of central directory record
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory file header
_LOCAL = struct.Struct("<IHHHHHIIIHH")  # local file header
_EOCD_SIG, _CENTRAL_SIG, _LOCAL_SIG = 0x06054B50, 0x02014B50, 0x04034B50
_STORED, _DEFLATED = 0, 8
_FLAG_ENCRYPTED = 0x1

# Limits against hostile allexes. A module (inflated) and the allexe file itself may be at most
# `size_limit()` bytes; the zip directory's sizes are checked before anything is inflated.
DEFAULT_SIZE_LIMIT = 512 << 20
MAX_MODULES = 4096


class ModuleEntry:
    """One module of an allexe, as its zip directory describes it."""

    __slots__ = ("name", "crc", "method", "compressed_size", "size", "header_offset", "flags")

    def __init__(self, name, crc, method, compressed_size, size, header_offset, flags):
        self.name = name
        self.crc = crc
        self.method = method
        self.compressed_size = compressed_size
        self.size = size
        self.header_offset = header_offset
        self.flags = flags

    @property
    def crc_hex(self) -> str:
        """The module's displayed identity: its CRC-32, 8 upper-case hex digits."""
        return f"{self.crc:08X}"

    @property
    def base_name(self) -> str:
        return self.name.rstrip("/").rsplit("/", 1)[-1]


class Allexe:
    """An opened, validated allexe. The whole file is held in memory (allexes are small)."""

    def __init__(self, path: str, data: bytes, modules: list[ModuleEntry]):
        self.path = path
        self.data = data
        self.modules = modules
        # Each module's stored-bytes digest, by name, once computed (allvm.cache.stored_digest):
        # every module is hashed once per process, however many keys need it.
        self.digests: dict[str, str] = {}

    @classmethod
    def open(cls, path: str) -> "Allexe":
        """The allexe at `path`, read and parsed once per process while the file stays the
        same (alley's cache-hit check, its policy check and its build each open it)."""
        identity = _identity(path)
        known = _OPENED.get(path)
        if identity is not None and known is not None and known[0] == identity:
            return known[1]
        allexe = cls.from_bytes(path, read_input(path))
        if identity is not None:
            _OPENED[path] = (identity, allexe)
        return allexe

    @classmethod
    def from_bytes(cls, path: str, data: bytes) -> "Allexe":
        """An allexe read by other means (e.g. from a pipe); `path` names it in messages.

        A bare bitcode file is read as the allexe holding it, stored, as its only module
        `main.bc`: the same program, the same cache key (binfmt_misc runs both kinds).
        """
        if is_bitcode(data):
            data = _stored_zip(MAIN_MODULE, data)
        try:
            modules = _read_directory(data)
        except ValueError:
            raise AllvmError(f"Could not open '{path}': empty or invalid allexe") from None
        except _TooManyModules as e:
            raise AllvmError(f"Could not open '{path}': {e} modules, more than the limit "
                             f"of {MAX_MODULES}") from None
        for entry in modules:  # before any message quotes a name
            if not entry.name.isprintable():
                raise AllvmError(f"Could not open '{path}': module name {entry.name!r} has "
                                 "control characters")
        if modules[0].name != MAIN_MODULE:
            raise AllvmError(
                f"Could not open '{path}': First entry was '{modules[0].name}', "
                f"expected '{MAIN_MODULE}'"
            )
        allexe = cls(path, data, modules)
        allexe._check_entries()
        return allexe

    def _check_entries(self) -> None:
        """Refuse entries this platform cannot load (encrypted, unknown compression), entries
        that would inflate past the size limit, and duplicate names.

        Entry names are only ever names: no tool uses one as a file system path.
        """
        limit = size_limit()
        seen = set()
        for entry in self.modules:
            if entry.name in seen:
                raise AllvmError(f"{self.path}: duplicate module name '{entry.name}'")
            seen.add(entry.name)
            if entry.size > limit:
                raise AllvmError(f"{self.path}: entry '{entry.name}' would inflate to "
                                 f"{entry.size} bytes, more than the limit of {limit} "
                                 "(ALLVM_SIZE_LIMIT)")
            if entry.flags & _FLAG_ENCRYPTED:
                raise AllvmError(f"{self.path}: entry '{entry.name}' is encrypted")
            if entry.method not in (_STORED, _DEFLATED):
                raise AllvmError(
                    f"{self.path}: entry '{entry.name}' uses unsupported compression "
                    f"{entry.method}"
                )

    @property
    def main(self) -> ModuleEntry:
        return self.modules[0]

    @property
    def has_shebang(self) -> bool:
        return self.data.startswith(b"#!")

    def stored_bytes(self, entry: ModuleEntry) -> memoryview:
        """The entry's bytes exactly as stored (compressed or not)."""
        if entry.header_offset + _LOCAL.size > len(self.data):
            raise AllvmError(f"{self.path}: entry '{entry.name}' is truncated")
        fields = _LOCAL.unpack_from(self.data, entry.header_offset)
        if fields[0] != _LOCAL_SIG:
            raise AllvmError(f"{self.path}: entry '{entry.name}': bad local header")
        start = entry.header_offset + _LOCAL.size + fields[9] + fields[10]
        stored = memoryview(self.data)[start : start + entry.compressed_size]
        if len(stored) != entry.compressed_size:
            raise AllvmError(f"{self.path}: entry '{entry.name}' is truncated")
        return stored

    def read_module(self, entry: ModuleEntry) -> bytes:
        """The module's bitcode, inflated and checked against its CRC."""
        return inflate(entry, self.stored_bytes(entry), self.path)


def inflate(entry: ModuleEntry, stored: bytes | memoryview, path: str) -> bytes:
    """An entry's bitcode from its stored bytes (wherever they travelled), checked against its
    CRC; `path` names the allexe in messages."""
    if entry.method == _STORED:
        data = bytes(stored)
    else:
        try:
            data = zlib.decompressobj(-15).decompress(stored, entry.size + 1)
        except zlib.error as e:
            raise AllvmError(f"{path}: entry '{entry.name}': {e}") from None
    if len(data) != entry.size or zlib.crc32(data) != entry.crc:
        raise AllvmError(f"{path}: entry '{entry.name}' is corrupt (CRC mismatch)")
    return data


def size_limit() -> int:
    """The most bytes an allexe file or one inflated module may have: `$ALLVM_SIZE_LIMIT`."""
    value = os.environ.get("ALLVM_SIZE_LIMIT", "")
    return int(value) if value.isdigit() else DEFAULT_SIZE_LIMIT


def read_regular_file(path: str) -> bytes:
    """A regular file's bytes, at most the size limit; OSError (with strerror) otherwise.

    Opened non-blocking, so a FIFO or device given as input is refused instead of hanging.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        limit = size_limit()
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"{st.st_size} bytes, more than the limit of {limit} "
                                       "(ALLVM_SIZE_LIMIT)")
        # Read to the end rather than asking for `limit` bytes: that would allocate the whole
        # limit up front, which MALLOC_PERTURB_ (set by coreutils' tests) then fills byte by byte.
        with open(fd, "rb", buffering=0, closefd=False) as f:
            data = f.read()
        if len(data) > limit:  # it grew since fstat
            raise OSError(errno.EFBIG, f"more than the limit of {limit} bytes (ALLVM_SIZE_LIMIT)")
        return data
    finally:
        os.close(fd)


# Allexes this process has parsed, by path, with the identity of the file they were read from
# (as CPython's zipimport keeps the directories it read).
_OPENED: dict[str, tuple[tuple, Allexe]] = {}


def _identity(path: str) -> tuple | None:
    """Device, inode, size, mtime and ctime of the file at `path`: any change moves one."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def read_input(path: str) -> bytes:
    """An input file's bytes, or the one-line error `Could not open '<path>': <reason>`."""
    try:
        return read_regular_file(path)
    except OSError as e:
        raise AllvmError(f"Could not open '{path}': {e.strerror}") from None


class _TooManyModules(Exception):
    pass


def _read_directory(data: bytes) -> list[ModuleEntry]:
    """Parse the zip central directory; ValueError for anything that is not a usable zip."""
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65536 - _EOCD.size))
    if eocd < 0 or len(data) - eocd < _EOCD.size:
        raise ValueError("no end of central directory")
    _, _, _, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(data, eocd)
    # Data prepended to a zip written without it (a shebang added later) shifts every offset.
    base = eocd - cd_size - cd_offset
    if base < 0 or count == 0:
        raise ValueError("bad central directory")
    if count > MAX_MODULES:
        raise _TooManyModules(count)
    pos = cd_offset + base
    modules = []
    for _ in range(count):
        if pos + _CENTRAL.size > eocd:
            raise ValueError("truncated central directory")
        f = _CENTRAL.unpack_from(data, pos)
        if f[0] != _CENTRAL_SIG:
            raise ValueError("bad central directory entry")
        flags, method, crc, csize, size, nlen, elen, clen, offset = (
            f[3], f[4], f[7], f[8], f[9], f[10], f[11], f[12], f[16]
        )
        name = data[pos + _CENTRAL.size : pos + _CENTRAL.size + nlen].decode("utf-8", "replace")
        modules.append(ModuleEntry(name, crc, method, csize, size, offset + base, flags))
        pos += _CENTRAL.size + nlen + elen + clen
    return modules


def _stored_zip(name: str, data: bytes) -> bytes:
    """A zip holding `data` stored (not deflated) as its one entry `name`."""
    raw_name, crc = name.encode(), zlib.crc32(data)
    local = _LOCAL.pack(_LOCAL_SIG, 20, 0, _STORED, 0, 0x21, crc, len(data), len(data),
                        len(raw_name), 0)
    central = _CENTRAL.pack(_CENTRAL_SIG, 20, 20, 0, _STORED, 0, 0x21, crc, len(data),
                            len(data), len(raw_name), 0, 0, 0, 0, 0, 0)
    directory_offset = len(local) + len(raw_name) + len(data)
    eocd = _EOCD.pack(_EOCD_SIG, 0, 0, 1, 1, len(central) + len(raw_name), directory_offset, 0)
    return local + raw_name + data + central + raw_name + eocd


def alley_path() -> str:
    """The absolute path of this install's alley console script, for the shebang line."""
    import sysconfig

    return os.path.join(sysconfig.get_path("scripts"), "alley")


def pack_allexe(modules: list[tuple[str, bytes]]) -> bytes:
    """The bytes of an allexe: shebang line, then a zip whose offsets count from file start."""
    import io
    import zipfile

    if not modules or modules[0][0] != MAIN_MODULE:
        raise AllvmError(f"the first module of an allexe must be '{MAIN_MODULE}'")
    seen: set[str] = set()
    for name, _ in modules:
        if name in seen:
            raise AllvmError(f"duplicate module name '{name}'")
        seen.add(name)
    buf = io.BytesIO()
    buf.write(f"#!{alley_path()}\n".encode())
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, bitcode in modules:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), bitcode,
                       compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def write_allexe(path: str, modules: list[tuple[str, bytes]], *, force: bool) -> None:
    """Write an executable allexe through the one output writer."""
    from allvm.output import write_output

    write_output(path, pack_allexe(modules), force=force, executable=True)

