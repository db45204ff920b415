"""alley's paths: exec a cached static binary, or build native code and run it.

The cache-hit path (`run_cached`) is hot: this module imports nothing heavy at the top; the
compiler (llvmlite) is imported only by the paths that compile.
"""

import os

from allvm.allexe import Allexe
from allvm.cache import Cache, object_key, open_static_binary, static_binary_key
from allvm.errors import AllvmError
from allvm.signals import restore_caller_dispositions

# The dynamic loader's variables are the program's, not the Python alley's: a program's
# LD_PRELOAD (stdbuf's libstdbuf.so, built for musl) would load into the glibc interpreter and
# stop it. The native launcher hands them over renamed, HIDDEN_PREFIX + name, and the program
# gets them back under their own names.
LOADER_PREFIX = "LD_"
HIDDEN_PREFIX = "ALLVM_HIDDEN_"


def original_environ() -> dict[bytes, bytes]:
    """The environment alley was started with, exactly: the loader's variables the launcher
    hid from Python under their own names again, in their places.

    Python may add variables to its own environment at start-up (C locale coercion sets
    LC_CTYPE); the kernel's copy in /proc/self/environ is untouched, so the program gets that.
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return dict(os.environb)
    hidden = (HIDDEN_PREFIX + LOADER_PREFIX).encode()
    env = {}
    for item in raw.split(b"\0"):
        if item:
            key, _, value = item.partition(b"=")
            env.setdefault(key.removeprefix(HIDDEN_PREFIX.encode()) if key.startswith(hidden)
                           else key, value)
    return env


def exec_program(program: str | int, argv: list[str]) -> None:
    """Become the program (a path, or a descriptor of the file checked): its argv, alley's
    environment, the caller's signal dispositions."""
    restore_caller_dispositions()
    os.execve(program, argv, original_environ())


def run_cached(allexe_path: str, argv: list[str], *, objects: bool = True) -> None:
    """Exec the allexe's cached native code with `argv` if all of it is cached, else return.

    A cached static binary (the user's, else the system cache's) is exec'd as it is. With
    `objects`, cached objects are linked first: that is the JIT path with nothing to compile,
    so it runs here, before alley loads its option parser or the compiler. Any problem
    returns: the full path then reports it properly.
    """
    try:
        allexe = Allexe.open(allexe_path)
        cache = Cache()
        binary = open_static_binary(static_binary_key(allexe), cache)
    except (AllvmError, OSError, MemoryError):
        return
    if binary is not None:
        exec_program(binary, argv)
    if not objects:
        return
    try:
        with Build(allexe, cache, cache_objects=True) as build:
            if build.missing:
                return
            program = _copy_to_memory(build.link())
    except (AllvmError, OSError, MemoryError):
        return
    exec_program(program, argv)


class Build:
    """Native code for one allexe: its objects, linked into an executable in a work directory.

    `cache_objects` says whether compiled objects go into `objects/` (the JIT path) or stay
    private (allready: a static binary, no objects). Objects already cached are used either way.
    """

    def __init__(self, allexe: Allexe, cache: Cache, *, cache_objects: bool):
        self.allexe = allexe
        self.cache = cache
        self.cache_usable = cache.ensure_dirs()
        self.cache_objects = cache_objects and self.cache_usable
        self._workdir = None
        self.paths, self.needs, self.missing = self._lookup()

    def __enter__(self) -> "Build":
        return self

    def __exit__(self, *exc) -> None:
        if self._workdir is not None:
            self.cache.remove_workdir(self._workdir)

    @property
    def workdir(self) -> str:
        """The build's scratch directory, made when first needed."""
        if self._workdir is None:
            self._workdir = self.cache.make_workdir()
        return self._workdir

    def _lookup(self) -> tuple[list[str], list, list[int]]:
        """Every module's object path in the cache, what it needs from the platform if the
        object is cached there, and the modules still to compile."""
        from allvm.platform import Needs

        paths, needs, missing = [], [], []
        for index, entry in enumerate(self.allexe.modules):
            path = self.cache.object_path(object_key(self.allexe, entry))
            tag = self.cache.entry_tag(path) if self.cache_usable else None
            paths.append(path if tag is None else self._hold(path, index))
            needs.append(Needs.from_tag(tag) if tag is not None else None)
            if tag is None:
                missing.append(index)
        return paths, needs, missing

    def _hold(self, path: str, index: int) -> str:
        """A hard link in the work directory to the cached object at `path`: the cache's limit
        may evict the entry before the link step reads it, never the file linked here."""
        held = os.path.join(self.workdir, f"{index}.o")
        try:
            os.link(path, held)
        except OSError:
            return path
        return held

    def objects(self) -> tuple[list[str], object]:
        """Paths of every module's object, in module order, and what the program needs from
        the platform (an allvm.platform.Needs; imported late, as this module is alley's hot
        path)."""
        from allvm.platform import program_needs

        if self.missing:
            self._compile()
        return self.paths, program_needs(self.needs)

    def _compile(self) -> None:
        from allvm.codegen import check_bitcode_target, compile_module
        from allvm.parallel import in_parallel

        indices, self.missing = self.missing, []
        paths = self.paths
        jobs = [(self.allexe.read_module(self.allexe.modules[i]), self.allexe.modules[i].name)
                for i in indices]
        for bitcode, name in jobs:  # another architecture: refused before anything compiles
            check_bitcode_target(bitcode, name)
        for i, (obj, needs) in zip(indices, in_parallel(compile_module, jobs), strict=True):
            self.needs[i] = needs
            if not (self.cache_objects and self.cache.put(paths[i], obj, tag=needs.tag())):
                paths[i] = os.path.join(self.workdir, f"{i}.o")
                try:
                    with open(paths[i], "wb") as f:
                        f.write(obj)
                except OSError as e:  # e.g. the disk filled up since the cache was checked
                    raise AllvmError(f"could not write '{paths[i]}': {e.strerror}") from None

    def link(self) -> str:
        """Link every module into one executable in the work directory; returns its path."""
        from allvm.platform import link_executable

        objects, needs = self.objects()
        output = os.path.join(self.workdir, "program")
        link_executable(objects, needs, output)
        return output


def build_static_binary(allexe: Allexe, cache: Cache) -> str:
    """The allexe's static binary in the cache (built if missing); its path."""
    path = cache.static_binary_path(static_binary_key(allexe))
    if cache.entry_tag(path) is not None:
        return path
    with Build(allexe, cache, cache_objects=False) as build:
        if not build.cache_usable:
            raise AllvmError(f"cache directory '{cache.root}' is not usable")
        with open(build.link(), "rb") as f:
            binary = f.read()
    store_static_binary(cache, path, binary)
    return path


def store_static_binary(cache: Cache, path: str, binary: bytes) -> None:
    """Put a static binary into the cache at `path` (its static_binary_key's path)."""
    if not cache.put(path, binary, executable=True):
        raise AllvmError(f"could not write to the cache directory '{cache.root}'")


def _open_built(cache: Cache, path: str) -> int:
    """A descriptor of the static binary just built at `path`, checked as any entry is."""
    found = cache.open_entry(path)
    if found is None:
        raise AllvmError(f"the static binary built at '{path}' is gone or damaged")
    return found[0]


def _copy_to_memory(path: str) -> str:
    """A path to an anonymous in-memory copy of `path`, which is about to be deleted: no
    executable is left behind in any directory, and the copy vanishes with the program."""
    fd = os.memfd_create("allvm-program", os.MFD_CLOEXEC)
    with open(path, "rb") as source, open(fd, "wb", closefd=False) as copy:
        copy.write(source.read())
    return f"/proc/self/fd/{fd}"


def run(allexe_path: str, argv: list[str], *, force_static: bool = False,
        noexec: bool = False, jit: str = "exec", policy=None) -> None:
    """alley's slow path: build what is missing, then exec (or, with noexec, report).

    `jit="inprocess"` runs a gnu allexe inside this process (allvm.jit). The exec path is the
    default: measured by bench/bench_alley.py (README, "The in-process JIT"), with objects
    cached it starts sooner (no llvmlite import; zig's link of cached objects is a cache hit).
    """
    allexe = Allexe.open(allexe_path)
    if policy:  # an allvm.policy.Policy: checked on the IR before any of its code runs
        policy.check(allexe, argv)
    cache = Cache()
    if jit == "inprocess" and not force_static:
        from allvm import jit as inprocess

        if inprocess.runs_inprocess(allexe, cache):
            inprocess.run_inprocess(allexe, argv, original_environ(), noexec=noexec)
            return
    if force_static and cache.ensure_dirs():
        program = _open_built(cache, build_static_binary(allexe, cache))
    else:  # the JIT path; also where the cache cannot be used at all
        with Build(allexe, cache, cache_objects=True) as build:
            program = _copy_to_memory(build.link())
    if noexec:
        print("'noexec' option set")
        return
    exec_program(program, argv)
