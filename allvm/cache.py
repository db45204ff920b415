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
CODEGEN_ID names everything that changes the native code for the same IR: a static binary's is
the optimized settings' (allvm/native/settings.py), or theirs when `$ALLVM_CPU` or
`$ALLVM_CARRY_IR` choose other static settings (alley's launcher then leaves the start to the
Python alley); an object's is the settings it was compiled with (the JIT path's tier).

Entries. Each entry is one file, sealed: payload, tag (what the entry is for: an object's target
triple; a static binary's is empty, or INTERIM_TAG for one linked from fast-tier objects that
stands in until the optimized binary replaces it, see allvm/native/promote.py), SEAL_MAGIC,
BLAKE2b-128 of payload and tag, payload size (8 bytes LE), tag size (2 bytes LE). A truncated or
corrupt entry is detected on use and rebuilt. Entries appear atomically: written in the scratch
directory `tmp/` under a name starting with the writer's pid (so what a killed writer left is
swept), then renamed into place; `tmp/` goes once empty.

Launch records (`launch/`, written and read by the launcher only; not entries). Hashing a 5 MB
allexe and its binary on every start would cost more than the start itself, so the launcher
remembers, per allexe file, its static binary key and the identity of the binary it last
verified. A file's identity is its device, inode, size, mtime and ctime (ns): any change to a
file moves its ctime, which no user can set back. A record is a symbolic link named
`_digest(CODEGEN_ID, "<dev>:<ino>")` whose target is the text `dev ino size mtime ctime key bdev
bino bsize bmtime bctime` (decimal numbers; the binary's fields 0 when none was verified): made
atomically, never torn, and not a regular file, so the cache's entries are the only regular
files in it. Its fields are checked against exactly this format (the key: 8 upper-case and 40
lower-case hex digits) before use. A record is believed only while no process has the allexe
open for writing (a read lease is granted): stores into an already-dirty page of a shared
writable mapping change a file without moving its ctime. Only files whose ctime is more than
RECORD_SETTLE_SECONDS old are recorded: a file changed twice within the file system's timestamp
granularity keeps its ctime ("racily clean", as git says).

Trust. A cache is used only when nobody else can change what is in it: its root and every
directory in it (DIRECTORIES) are real directories owned by the cache's owner (the caller, or
root for the system cache) and not writable by group or others, and every directory on the
way to the root (symbolic links followed, each checked where it lies) is owned by root or the
owner and not writable by group or others unless it is sticky (/tmp). Anything else gets one
warning and the program runs uncached. Directories are made with explicit modes whatever the
umask: 0700 for a user's cache, 0755 for the system cache. Entries are opened without
following symbolic links and without blocking (a FIFO must not hang a start), and used only
when they are regular files of the owner and sealed. The seal is integrity (a torn or corrupt
file), not authenticity: that comes from ownership, which the kernel enforces.

The system cache (`$ALLVM_SYSTEM_CACHE`, else SYSTEM_CACHE) is filled by root with
`allready -system` and consulted, read-only, after the user's own cache.

Size. The entries in `objects/` and `static_binaries/` (apparent sizes; not launch records, not
scratch) are kept under a limit: DEFAULT_LIMIT, unless `<root>/limit` (LIMIT_LINK) is a
symbolic link whose target is a decimal byte count (ASCII digits, at most LIMIT_DIGITS;
anything else means the default) -- one readlink to read, atomic to replace, and not a regular
file, so the cache's regular files are still exactly its entries. The process that adds an
entry (`Cache.put`) trims the cache: no daemon, no lock file. When the total is over the limit,
entries go least recently used first. Last use is max(atime, mtime): entries are never
modified after they appear, so mtime is when one was added and atime when it was last read or
exec'd -- as precisely as the mount allows (under `relatime` the atime moves on the first read
after a write, then at most daily; under `noatime` never, and the order is by age). An entry
used in the last RECENT_SECONDS is never removed, whatever the limit: that protects an entry
just added, before its adder opens it; so a burst of additions may hold the cache over its
limit that long, and the next addition after it brings it back under. Removal is unlink(2): a
program exec'd from an entry, or a reader that has it open, keeps its inode, and a later start
misses and rebuilds. Trimmers take turns on an flock of the root directory and rescan under
it, so concurrent ones do not remove more than needed. Hits and misses are not recorded (that
would be a write on alley's cache-hit path). allvm/cache_admin.py (`allvm-cache`) reports the
sizes, empties the cache and sets the limit.
"""

import errno
import os
from _blake2 import blake2b

from allvm.allexe import Allexe, ModuleEntry
from allvm.native.settings import OPTIMIZED, static_settings

# What static binaries are made with (allvm/native/settings.py): the launcher keys on it.
CODEGEN_ID = OPTIMIZED.codegen_id

# Below this much free space the cache's file system counts as full: a build would fail halfway.
MIN_FREE_SPACE = 16 << 20
# Errors that mean "this file system refuses writes" (full, quota, read-only): worth a warning.
_WARN_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
# Cache roots this process has warned about: alley may look at its cache twice (its
# cached-objects lane, then the full JIT path), the user hears about a problem once.
_WARNED: set[str] = set()

OBJECTS = "objects"
STATIC_BINARIES = "static_binaries"
SCRATCH = "tmp"
LAUNCH_RECORDS = "launch"
# The directories a cache may hold, all checked (Trust).
DIRECTORIES = (OBJECTS, STATIC_BINARIES, SCRATCH, LAUNCH_RECORDS)
SYSTEM_CACHE = "/var/cache/allvm"
USER_MODE, SYSTEM_MODE = 0o700, 0o755
# Symbolic links followed on the way to a cache root, as the kernel's own limit.
MAX_SYMLINKS = 40
RECORD_SETTLE_SECONDS = 2
INTERIM_TAG = b"tier fast"
# Size: the default limit, the link that sets another, and the window that keeps new entries.
DEFAULT_LIMIT = 5 << 30
LIMIT_LINK = "limit"
LIMIT_DIGITS = 20
# Longer than a build's gap between adding an entry and opening it (exec, link).
RECENT_SECONDS = 300
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


def system_cache_root() -> str:
    """`$ALLVM_SYSTEM_CACHE`, else SYSTEM_CACHE: root's cache, read by every user."""
    return os.environ.get("ALLVM_SYSTEM_CACHE") or SYSTEM_CACHE


def trust_problem(root: str, owner: int) -> str | None:
    """Why the cache at `root` is not safe for `owner`'s programs (Trust), or None.

    A missing root or directory in it is no problem: it is made with the right mode.
    """
    try:
        real = _safe_path(os.path.join(os.getcwd(), root), owner)  # `..` after a link: as
        # the kernel walks it (abspath would drop the link's directory instead)
        if real is None or not os.path.isdir(real):  # missing, or cannot be a cache at all
            return None
        for directory in (real, *(os.path.join(real, d) for d in DIRECTORIES)):
            problem = _directory_problem(directory, owner)
            if problem:
                return problem
    except OSError as e:
        return f"{e.filename}: {e.strerror}"
    return None


def _directory_problem(path: str, owner: int) -> str | None:
    """Why `path` cannot be a directory of `owner`'s cache, or None (also when missing)."""
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return f"'{path}' is not a directory"
    if st.st_uid != owner:
        return f"'{path}' is owned by uid {st.st_uid}, not {owner}"
    if st.st_mode & 0o022:
        return f"'{path}' is writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _safe_path(path: str, owner: int) -> str | None:
    """`path` with its symbolic links resolved, after checking that nobody but root and
    `owner` can change any directory on the way (a sticky one only lets its users rename
    their own files); None when a part of it does not exist yet."""
    import stat

    done, todo, links = "/", [p for p in path.split("/") if p], 0
    while todo:
        st = os.lstat(done)
        if not stat.S_ISDIR(st.st_mode):  # (/dev/null/cache) no cache can be there
            return None
        _check_ancestor(st, done, owner)
        part = todo.pop(0)
        if part in (".", ".."):
            done = os.path.dirname(done) if part == ".." else done
            continue
        here = os.path.join(done, part)
        try:
            st = os.lstat(here)
        except (FileNotFoundError, NotADirectoryError):  # not yet, or cannot be
            return None
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid not in (0, owner):  # in a sticky directory, its owner may replace it
                raise OSError(errno.EPERM, f"a link owned by uid {st.st_uid}", here)
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            target = os.readlink(here)
            todo[:0] = [p for p in target.split("/") if p]
            done = "/" if target.startswith("/") else done
            continue
        done = here
    return done


def _check_ancestor(st: os.stat_result, path: str, owner: int) -> None:
    import stat

    if st.st_uid not in (0, owner):
        raise OSError(errno.EPERM, f"owned by uid {st.st_uid}", path)
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise OSError(errno.EPERM, "writable by others", path)


def _digest(*parts: str) -> str:
    h = blake2b(digest_size=KEY_DIGEST_SIZE)
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def stored_digest(allexe: Allexe, entry: ModuleEntry) -> str:
    """A module's identity in keys: a strong hash of its bytes as stored (the CRC is not);
    computed once per module and process (Allexe.digests)."""
    digest = allexe.digests.get(entry.name)
    if digest is None:
        h = blake2b(digest_size=KEY_DIGEST_SIZE)
        h.update(entry.method.to_bytes(2, "little"))
        h.update(allexe.stored_bytes(entry))
        digest = allexe.digests[entry.name] = h.hexdigest()
    return digest


def object_key(allexe: Allexe, entry: ModuleEntry, codegen_id: str = CODEGEN_ID) -> str:
    """`<CRC>-<module base name>-<key>.o`: a person can tell what it is; the key decides.
    `codegen_id`: the settings it is compiled with (allvm.native.settings)."""
    # The name is for people only: a module name may be long or hostile (`..`), keep it short.
    name = entry.base_name.removesuffix(".bc").lstrip(".")[:40] or "module"
    return f"{entry.crc_hex}-{name}-{_digest(codegen_id, stored_digest(allexe, entry))}.o"


def static_binary_key(allexe: Allexe, codegen_id: str | None = None) -> str:
    """One key over all modules in order: `<CRC of main.bc>-<key>`. `codegen_id`: the
    settings it is built with; by default the static settings chosen here (static_settings():
    CODEGEN_ID unless `$ALLVM_CPU` or `$ALLVM_CARRY_IR` choose others)."""
    parts = [codegen_id or static_settings().codegen_id]
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
    """A cache directory: the user's (default) or, with `system`, the system cache.

    `trusted()` says whether it may be read, `ensure_dirs()` whether it can be written.
    """

    def __init__(self, root: str | None = None, *, system: bool = False):
        self.system = system
        self.root = root or (system_cache_root() if system else cache_root())
        self.owner = 0 if system else os.geteuid()
        self.problem: str | None = None  # why the cache is not being used, once warned
        self._trust_checked = False
        self.objects = os.path.join(self.root, OBJECTS)
        self.static_binaries = os.path.join(self.root, STATIC_BINARIES)

    def static_binary_path(self, key: str) -> str:
        return os.path.join(self.static_binaries, key)

    def object_path(self, key: str) -> str:
        return os.path.join(self.objects, key)

    def trusted(self) -> bool:
        """Whether nobody but its owner can change this cache (Trust); warns once if not."""
        if not self._trust_checked:
            self._trust_checked = True
            problem = trust_problem(self.root, self.owner)
            if problem:
                self._warn(f"not safe: {problem}")
        return self.problem is None

    def open_entry(self, path: str) -> tuple[int, bytes] | None:
        """A descriptor of the usable entry at `path` and its tag, or None; a damaged entry
        is removed. The descriptor is what was checked: exec it, not the path."""
        found = self._open_sealed(path)
        return (found[0], found[2]) if found else None

    def read_entry(self, path: str) -> tuple[bytes, bytes] | None:
        """(payload, tag) of the usable entry at `path`, or None; a damaged one is removed."""
        found = self._open_sealed(path)
        if found is None:
            return None
        os.close(found[0])
        return found[1], found[2]

    def entry_tag(self, path: str) -> bytes | None:
        """The tag of the usable entry at `path`, or None."""
        found = self.open_entry(path)
        if found is None:
            return None
        os.close(found[0])
        return found[1]

    def _open_sealed(self, path: str) -> tuple[int, bytes, bytes] | None:
        """(descriptor, payload, tag) of a regular file of the owner's, sealed, at `path`.

        Opened without following a link, or blocking on a FIFO."""
        if not self.trusted():
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        with open(fd, "rb", closefd=False) as f:
            entry = unseal(f.read()) if _is_entry_of(os.fstat(fd), self.owner) else None
        if entry is None:
            os.close(fd)
            if not self.system:
                _remove(path)
            return None
        return fd, *entry

    def ensure_dirs(self) -> bool:
        """Create the cache directories; False if the cache cannot be used at all."""
        if not self.trusted():
            return False
        try:
            mode = SYSTEM_MODE if self.system else USER_MODE
            for directory in (self.objects, self.static_binaries):
                make_directories(directory, mode)
            self._trust_checked = False  # made now: check what was made
            if not self.trusted():
                return False
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
        if not self.problem and error.errno in _WARN_ERRNOS:
            self._warn(error.strerror)

    def _warn(self, problem: str) -> None:
        """Stop using this cache, and say why once per process and cache."""
        import sys

        self.problem = problem
        if self.root in _WARNED:
            return
        _WARNED.add(self.root)
        tool = os.path.basename(sys.argv[0]) or "allvm"
        print(f"{tool}: warning: cache '{self.root}' not used ({problem}); "
              "running uncached", file=sys.stderr, flush=True)

    def put(self, path: str, data: bytes, *, tag: bytes = b"", executable: bool = False,
            replace: bool = True) -> bool:
        """Store a sealed entry atomically; False if the cache refused it (full, read-only).
        Without `replace`, an entry already at `path` stays (and counts as stored)."""
        import tempfile

        tmp = None
        try:
            fd, tmp = self._in_scratch(tempfile.mkstemp)
            with open(fd, "wb") as f:
                f.write(seal(data, tag))
            os.chmod(tmp, 0o755 if executable else 0o644)
            if replace:
                os.replace(tmp, path)  # concurrent puts of one key carry identical content
            else:
                _link_new(tmp, path)
        except OSError as e:
            if tmp:
                _remove(tmp)
            self._refused(e)
            return False
        finally:
            self.drop_scratch()
        try:
            self.trim()
        except OSError:
            pass  # the entry is stored; a trim that cannot run leaves the cache usable
        return True

    def limit(self) -> int:
        """The size limit in bytes (Size); DEFAULT_LIMIT for a cache not safe to read."""
        if not self.trusted():
            return DEFAULT_LIMIT
        try:
            text = os.readlink(os.path.join(self.root, LIMIT_LINK))
        except OSError:  # none (ENOENT), or not a link (EINVAL): the default
            return DEFAULT_LIMIT
        if text.isascii() and text.isdigit() and len(text) <= LIMIT_DIGITS:
            return int(text)
        return DEFAULT_LIMIT

    def trim(self) -> dict:
        """Remove least recently used entries until the cache is within its limit (Size).

        Returns what was removed (`entries`, `bytes`) and the bytes left (`total`), which may
        stay over the limit: entries used in the last RECENT_SECONDS are kept. Under the limit
        it costs one scan of the two entry directories.
        """
        if not self.trusted():
            return {"entries": 0, "bytes": 0, "total": 0}
        limit = self.limit()
        total = sum(size for _, size, _ in scan_entries(self.objects, self.static_binaries))
        if total <= limit:
            return {"entries": 0, "bytes": 0, "total": total}
        import fcntl
        import time

        count = removed = 0
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by the close
            # Again, under the lock: another trimmer may have been first.
            found = scan_entries(self.objects, self.static_binaries)
            total = sum(size for _, size, _ in found)
            recent = time.time() - RECENT_SECONDS
            for path, size, last_use in sorted(found, key=lambda entry: entry[2]):
                if total <= limit or last_use > recent:
                    break
                try:
                    os.unlink(path)
                except FileNotFoundError:  # removed meanwhile: gone all the same
                    pass
                total, count, removed = total - size, count + 1, removed + size
        finally:
            os.close(fd)
        return {"entries": count, "bytes": removed, "total": total}

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
        self.drop_scratch()

    def _scratch(self) -> str:
        """`tmp/` in the cache, on the same file system as the entries (for atomic renames).

        Everything in it is named after its owning process, so what a killed process left is
        swept by the next one.
        """
        scratch = os.path.join(self.root, SCRATCH)
        make_directories(scratch, SYSTEM_MODE if self.system else USER_MODE)
        self.sweep_scratch()
        return scratch

    def sweep_scratch(self) -> dict:
        """Remove what dead processes left in the scratch directory (each name starts with
        its owner's pid; a live one's are kept). Returns what went: `entries`, `bytes`."""
        count = size = 0
        for item in scan_directory(os.path.join(self.root, SCRATCH)):
            pid = item.name.split("-", 1)[0]
            if pid.isdigit() and not process_alive(int(pid)):
                size += _tree_size(item)
                _remove(item.path)
                count += 1
        return {"entries": count, "bytes": size}

    def drop_scratch(self) -> None:
        """Leave nothing behind: the scratch directory goes once it is empty."""
        try:
            os.rmdir(os.path.join(self.root, SCRATCH))
        except OSError:
            pass


# An attempt loses only when another run empties and removes the directory in the moment
# between our makedirs and our create (or inside makedirs itself).
_SCRATCH_ATTEMPTS = 100


def open_static_binary(key: str, cache: "Cache") -> tuple[int, bytes] | None:
    """A descriptor of the static binary under `key` and its tag: the user's cache first,
    then the system cache (read-only); None when neither has it."""
    for where in (cache, Cache(system=True)):
        found = where.open_entry(where.static_binary_path(key))
        if found is not None:
            return found
    return None


def _link_new(tmp: str, path: str) -> None:
    """`tmp` to `path` unless something is there already; `tmp` goes either way."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def make_directories(path: str, mode: int) -> None:
    """`os.makedirs` with `mode` exactly, whatever the umask, for each directory it makes."""
    parent = os.path.dirname(path)
    if parent and parent != path and not os.path.isdir(parent):
        make_directories(parent, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    os.chmod(path, mode)  # the umask only ever removes bits: put back what it took


def scan_directory(directory: str) -> list[os.DirEntry]:
    """The items in `directory`; none when it does not exist (yet)."""
    try:
        with os.scandir(directory) as items:
            return list(items)
    except (FileNotFoundError, NotADirectoryError):
        return []


def scan_entries(*directories: str) -> list[tuple[str, int, float]]:
    """(path, size, last use) of every entry -- regular file -- in `directories` (Size)."""
    found = []
    for directory in directories:
        for item in scan_directory(directory):
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed meanwhile
                continue
            if item.is_file(follow_symlinks=False):
                found.append((item.path, st.st_size, max(st.st_atime, st.st_mtime)))
    return found


def _tree_size(item: os.DirEntry) -> int:
    """Bytes of the file `item`, or of the regular files under it when it is a directory."""
    try:
        if not item.is_dir(follow_symlinks=False):
            return item.stat(follow_symlinks=False).st_size
        return sum(os.lstat(os.path.join(directory, name)).st_size
                   for directory, _, files in os.walk(item.path) for name in files)
    except OSError:  # removed meanwhile
        return 0


def _is_entry_of(st: os.stat_result, owner: int) -> bool:
    import stat

    return stat.S_ISREG(st.st_mode) and st.st_uid == owner


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
