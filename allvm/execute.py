"""alley's paths: exec a cached static binary, or build native code and run it.

The cache-hit path (`run_cached`) is hot: this module imports nothing heavy at the top; the
compiler (llvmlite) is imported only by the paths that compile.
"""

import os

from allvm.allexe import Allexe
from allvm.cache import INTERIM_TAG, Cache, open_static_binary, static_binary_key
from allvm.errors import AllvmError
from allvm.native.build import Build, build_static_binary
from allvm.native.settings import FAST, CodegenSettings, jit_tier
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
    try:
        os.execve(program, argv, original_environ())
    except OSError as e:  # e.g. a cached entry its owner made not executable
        name = "the cached static binary" if isinstance(program, int) else f"'{program}'"
        raise AllvmError(f"cannot run {name}: {e.strerror}") from None


def run_cached(allexe_path: str, argv: list[str], *, objects: bool = True,
               tier: CodegenSettings | None = None) -> None:
    """Exec the allexe's cached native code with `argv` if all of it is cached, else return.

    A cached static binary (the user's, else the system cache's) is exec'd as it is. With
    `objects`, cached objects of the JIT path's `tier` are linked first: that is the JIT path
    with nothing to compile, so it runs here, before alley loads its option parser or the
    compiler (and promotes the program, as the JIT path does). Any problem returns: the full
    path then reports it properly.
    """
    try:
        allexe = Allexe.open(allexe_path)
        cache = Cache()
        binary = open_static_binary(static_binary_key(allexe), cache)
    except (AllvmError, OSError, MemoryError):
        return
    if binary is not None:
        fd, tag = binary
        if tag == INTERIM_TAG:  # a stand-in: its optimized build must be under way
            if not objects:  # -force-static: the optimized binary itself, built by run()
                return
            from allvm.native import promote

            promote.start_promoter(allexe, cache)
        try:
            exec_program(fd, argv)
        except AllvmError:  # the full path reports it
            return
    if not objects:
        return
    tier = tier or jit_tier()
    try:
        with Build(allexe, cache, cache_objects=True, settings=tier) as build:
            if build.missing:
                return
            program = _copy_to_memory(build.link())
    except (AllvmError, OSError, MemoryError):
        return
    _promote(allexe, cache, tier, program)
    exec_program(program, argv)


def _promote(allexe: Allexe, cache: Cache, tier: CodegenSettings, program: str) -> None:
    """A program run from fast-tier code (`program`, linked) stands in as its static binary
    while the optimized one is built in the background (allvm.native.promote), unless the
    cache cannot hold them."""
    if tier is FAST and cache.ensure_dirs():
        from allvm.native import promote

        promote.start(allexe, cache, program)


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
        noexec: bool = False, jit: str = "exec", policy=None,
        tier: CodegenSettings | None = None) -> None:
    """alley's slow path: build what is missing, then exec (or, with noexec, report).

    The JIT path compiles with `tier` (allvm.native.settings; `$ALLVM_TIER` by default): from
    the fast tier, the program runs at once and is promoted in the background.

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
        tier = tier or jit_tier()
        with Build(allexe, cache, cache_objects=True, settings=tier) as build:
            program = _copy_to_memory(build.link())
        if not noexec:
            _promote(allexe, cache, tier, program)
    if noexec:
        print("'noexec' option set")
        return
    exec_program(program, argv)
