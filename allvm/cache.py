"""The native-code cache: `objects/` (one per module) and `static_binaries/` (one per allexe).

This module is on alley's cache-hit path: it imports nothing heavy. It is also where the cache's
format is specified, for both of its implementations: this module, and alley's native launcher
(allvm/launcher.c), which gets the constants below compiled in and is held to the same answers
by tests/test_launcher.py.

Keys. A module's identity is `stored digest` = BLAKE2b-160 (hex) of its compression method
(2 bytes, little-endian) followed by its bytes exactly as stored in the zip (no inflating; the
CRC is for display only). `_digest(*parts)` = BLAKE2b-160 (hex) of each part's UTF-8 bytes,
each followed by a NUL byte.
- object:        `<CRC>-<module base name>-<_digest(CODEGEN_ID, stored digest)>.o`
- static binary: `<CRC of main.bc>-<_digest(CODEGEN_ID, name 1, stored digest 1, name 2, ...)>`
  over all modules in order. A bare bitcode file is keyed as the allexe holding it, stored, as
  its only module `main.bc` (allvm/allexe.py reads it so).
CODEGEN_ID names everything that changes the native code for the same IR.

Entries. Each entry is one file, sealed: payload, tag (what the entry is for: an object's
target triple), SEAL_MAGIC, BLAKE2b-128 of payload and tag, payload size (8 bytes LE), tag
size (2 bytes LE). A truncated or corrupt entry is detected on use and rebuilt. Entries appear
atomically: written in the scratch directory `tmp/` under a name starting with the writer's
pid (so what a killed writer left is swept), then renamed into place; `tmp/` goes once empty.

Launch records (`launch/`, written and read by the launcher only). Hashing a 5 MB allexe and
its binary on every start would cost more than the start itself, so the launcher remembers,
per allexe file, its static binary key and the identity of the binary it last verified. A
file's identity is its device, inode, size, mtime and ctime (ns): any change to a file moves
its ctime, which no user can set back. A record is named `_digest(CODEGEN_ID, "<dev>:<ino>")`
and sealed like an entry; its payload is the text `dev ino size mtime ctime key bdev bino bsize
bmtime bctime` (the binary's fields 0 when none was verified). Only files whose ctime is more
than RECORD_SETTLE_SECONDS old are recorded: a file changed twice within the file system's
timestamp granularity keeps its ctime ("racily clean", as git says).
"""

import errno
import os
from _blake2 import blake2b

from allvm import LLVM_VERSION, __version__
from allvm.allexe import Allexe, ModuleEntry

# Everything that changes the native code for the same IR. Bump FORMAT when the layout changes.
FORMAT = 2
TARGET_CPU = "x86-64"
CODEGEN_OPT_LEVEL = 2
ZIG_VERSION = "0.17.1"
CODEGEN_ID = (f"allvm-py {__version__}; cache format {FORMAT}; LLVM {LLVM_VERSION}; "
              f"zig {ZIG_VERSION}; cpu {TARGET_CPU}; O{CODEGEN_OPT_LEVEL}")

# Below this much free space the cache's file system counts as full: a build would fail halfway.
MIN_FREE_SPACE = 16 << 20
# Errors that mean "this file system refuses writes" (full, quota, read-only): worth a warning.
_WARN_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
# Cache roots this process has warned about: alley may look at its cache twice (its
# cached-objects lane, then the full JIT path), the user hears about a problem once.
_WARNED: set[str] = set()

STATIC_BINARIES = "static_binaries"
RECORD_SETTLE_SECONDS = 2
KEY_DIGEST_SIZE = 20
# The seal's trailer: magic, digest of payload+tag, payload size, tag size.
SEAL_MAGIC = b"ALLVMCE2"
SEAL_DIGEST_SIZE = 16
_TRAILER_SIZE = len(SEAL_MAGIC) + SEAL_DIGEST_SIZE + 8 + 2


def cache_root() -> str:
    """`$ALLVM_CACHE_DIR`, else the user cache directory (found without HOME, too)."""
    root = os.environ.get("ALLVM_CACHE_DIR")
    if root:
        return root
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.environ.get("HOME")
        if not home:
            import pwd

            home = pwd.getpwuid(os.getuid()).pw_dir
        base = os.path.join(home, ".cache")
    return os.path.join(base, "allvm")


def _digest(*parts: str) -> str:
    h = blake2b(digest_size=KEY_DIGEST_SIZE)
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def stored_digest(allexe: Allexe, entry: ModuleEntry) -> str:
    """A module's identity in keys: a strong hash of its bytes as stored (the CRC is not)."""
    h = blake2b(digest_size=KEY_DIGEST_SIZE)
    h.update(entry.method.to_bytes(2, "little"))
    h.update(allexe.stored_bytes(entry))
    return h.hexdigest()


def object_key(allexe: Allexe, entry: ModuleEntry) -> str:
    """`<CRC>-<module base name>-<key>.o`: a person can tell what it is; the key decides."""
    # The name is for people only: a module name may be long or hostile (`..`), keep it short.
    name = entry.base_name.removesuffix(".bc").lstrip(".")[:40] or "module"
    return f"{entry.crc_hex}-{name}-{_digest(CODEGEN_ID, stored_digest(allexe, entry))}.o"


def static_binary_key(allexe: Allexe) -> str:
    """One key over all modules in order: `<CRC of main.bc>-<key>`."""
    parts = [CODEGEN_ID]
    for entry in allexe.modules:
        parts += [entry.name, stored_digest(allexe, entry)]
    return f"{allexe.main.crc_hex}-{_digest(*parts)}"


def seal(data: bytes, tag: bytes = b"") -> bytes:
    """The payload, a short tag (what the entry is for), and an integrity trailer.

    ELF readers (the kernel, the linker) ignore bytes after the file's last section.
    """
    digest = blake2b(data + tag, digest_size=SEAL_DIGEST_SIZE).digest()
    return (data + tag + SEAL_MAGIC + digest + len(data).to_bytes(8, "little")
            + len(tag).to_bytes(2, "little"))


def unseal(data: bytes) -> tuple[bytes, bytes] | None:
    """(payload, tag) of a complete, uncorrupted sealed entry; None for a damaged one."""
    if len(data) < _TRAILER_SIZE:
        return None
    trailer = data[-_TRAILER_SIZE:]
    magic_end = len(SEAL_MAGIC)
    digest = trailer[magic_end : magic_end + SEAL_DIGEST_SIZE]
    size = int.from_bytes(trailer[magic_end + SEAL_DIGEST_SIZE : -2], "little")
    tag_size = int.from_bytes(trailer[-2:], "little")
    if trailer[:magic_end] != SEAL_MAGIC or size + tag_size + _TRAILER_SIZE != len(data):
        return None
    signed = memoryview(data)[: size + tag_size]
    if blake2b(signed, digest_size=SEAL_DIGEST_SIZE).digest() != digest:
        return None
    return bytes(signed[:size]), bytes(signed[size:])


class Cache:
    """The cache directory; `ensure_dirs()` says whether it can be used (written) at all."""

    def __init__(self, root: str | None = None):
        self.root = root or cache_root()
        self.problem: str | None = None  # why the cache is not being used, once warned
        self.objects = os.path.join(self.root, "objects")
        self.static_binaries = os.path.join(self.root, STATIC_BINARIES)

    def static_binary_path(self, key: str) -> str:
        return os.path.join(self.static_binaries, key)

    def object_path(self, key: str) -> str:
        return os.path.join(self.objects, key)

    def read_entry(self, path: str) -> tuple[bytes, bytes] | None:
        """(payload, tag) of the usable entry at `path`, or None; a damaged one is removed."""
        try:
            with open(path, "rb") as f:
                entry = unseal(f.read())
        except OSError:
            return None
        if entry is None:
            try:
                os.unlink(path)
            except OSError:
                pass
        return entry

    def entry_tag(self, path: str) -> bytes | None:
        """The tag of the usable entry at `path`, or None."""
        entry = self.read_entry(path)
        return entry[1] if entry is not None else None

    def ensure_dirs(self) -> bool:
        """Create the cache directories; False if the cache cannot be used at all."""
        if self.problem:
            return False
        try:
            os.makedirs(self.objects, exist_ok=True)
            os.makedirs(self.static_binaries, exist_ok=True)
            if not (os.access(self.objects, os.W_OK) and os.access(self.static_binaries, os.W_OK)):
                self._refused(OSError(errno.EACCES, "not writable"))
                return False
            fs = os.statvfs(self.root)
        except OSError as e:
            self._refused(e)
            return False
        if fs.f_bavail * fs.f_frsize < MIN_FREE_SPACE:
            self._refused(OSError(errno.ENOSPC, "less than 16 MiB free"))
            return False
        return True

    def _refused(self, error: OSError) -> None:
        """The cache's file system refused us (full, read-only): say so once, run uncached.

        A cache that cannot exist at all (`ALLVM_CACHE_DIR=/dev/null`) is not worth a warning.
        """
        if self.problem or error.errno not in _WARN_ERRNOS:
            return
        import sys

        self.problem = error.strerror
        if self.root in _WARNED:
            return
        _WARNED.add(self.root)
        tool = os.path.basename(sys.argv[0]) or "allvm"
        print(f"{tool}: warning: cache '{self.root}' not used ({error.strerror}); "
              "running uncached", file=sys.stderr, flush=True)

    def put(self, path: str, data: bytes, *, tag: bytes = b"", executable: bool = False) -> bool:
        """Store a sealed entry atomically; False if the cache refused it (full, read-only)."""
        import tempfile

        tmp = None
        try:
            fd, tmp = self._in_scratch(tempfile.mkstemp)
            with open(fd, "wb") as f:
                f.write(seal(data, tag))
            os.chmod(tmp, 0o755 if executable else 0o644)
            os.replace(tmp, path)  # concurrent puts of one key carry identical content
            return True
        except OSError as e:
            if tmp:
                _remove(tmp)
            self._refused(e)
            return False
        finally:
            self._drop_scratch()

    def _in_scratch(self, make):
        """`make` (mkstemp or mkdtemp) a name in the scratch directory; retried when a
        concurrent run removed the directory (once empty) between its creation and our use."""
        for attempt in range(_SCRATCH_ATTEMPTS):
            try:
                return make(prefix=f"{os.getpid()}-", dir=self._scratch())
            except (FileNotFoundError, FileExistsError):  # (makedirs' own check can race too)
                if attempt == _SCRATCH_ATTEMPTS - 1:
                    raise

    def make_workdir(self) -> str:
        """A private scratch directory for one build, inside the cache when it is usable.

        Directories are named after the owning process, so ones left by a killed process are
        swept by the next build.
        """
        import tempfile

        if not self.problem:
            try:
                return self._in_scratch(tempfile.mkdtemp)
            except OSError as e:
                self._refused(e)
        return tempfile.mkdtemp(prefix="allvm-")

    def remove_workdir(self, workdir: str) -> None:
        import shutil  # not at the top: shutil pulls in `re`, too slow for the cache-hit path

        shutil.rmtree(workdir, ignore_errors=True)
        self._drop_scratch()

    def _scratch(self) -> str:
        """`tmp/` in the cache, on the same file system as the entries (for atomic renames).

        Everything in it is named after its owning process, so what a killed process left is
        swept by the next one.
        """
        scratch = os.path.join(self.root, "tmp")
        os.makedirs(scratch, exist_ok=True)
        for name in os.listdir(scratch):
            pid = name.split("-", 1)[0]
            if pid.isdigit() and not process_alive(int(pid)):
                _remove(os.path.join(scratch, name))
        return scratch

    def _drop_scratch(self) -> None:
        """Leave nothing behind: the scratch directory goes once it is empty."""
        try:
            os.rmdir(os.path.join(self.root, "tmp"))
        except OSError:
            pass


# An attempt loses only when another run empties and removes the directory in the moment
# between our makedirs and our create (or inside makedirs itself).
_SCRATCH_ATTEMPTS = 100


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (its scratch files are still in use)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
