"""Promotion: a program first run from the fast tier gets its optimized static binary built in
the background; meanwhile the program linked from its fast-tier objects stands in for it, so
that every later start is a cache hit (one exec, no Python).

`start` is called by alley's JIT path when it ran the program from fast-tier code and no static
binary was cached. It stores the program it linked as the static binary, tagged INTERIM_TAG
(allvm.native.build: only a build counts it as missing; the launcher runs it as any sealed
entry), then starts `python -m allvm.native.promote ALLEXE` detached: in a session of its own (a
terminal's Ctrl-C does not reach it), reparented to init (the program alley becomes never sees
an unexpected child), stdio on /dev/null, at idle CPU priority (SCHED_IDLE: it runs only on
cycles nothing else wants). Builds take turns, one at a time per cache: the promoter holds an
flock on the cache's `static_binaries/` directory while it builds, so concurrent starts of one
allexe build it once (a promoter that gets the lock after another built it finds the binary
cached and stops) and alley does not start another while one runs. A promoter that is killed
leaves at most scratch files named after its pid, which the next build sweeps; the next start of
the program starts a promotion again.
"""

import os
import sys

from allvm.allexe import Allexe
from allvm.cache import INTERIM_TAG, STATIC_BINARIES, Cache, static_binary_key


def start(allexe: Allexe, cache: Cache, program: str) -> None:
    """Store `program` (linked from the allexe's fast-tier objects) as its static binary until
    the optimized one, built in the background, replaces it (see the module's docstring).
    Nothing to do when the optimized one is there (a deny policy sends every start here)."""
    path = cache.static_binary_path(static_binary_key(allexe))
    tag = cache.entry_tag(path)
    if tag is not None and tag != INTERIM_TAG:
        return
    if tag is None:
        with open(program, "rb") as f:
            cache.put(path, f.read(), tag=INTERIM_TAG, executable=True, replace=False)
    start_promoter(allexe, cache)


def start_promoter(allexe: Allexe, cache: Cache) -> None:
    """Start the background build of the allexe's optimized binary, unless one is running.

    (The launcher does the same when it runs a stand-in and none is: allvm/launcher.c.)"""
    if _promotion_running(cache):
        return
    try:
        pid = os.fork()
    except OSError:  # no process to spare: the next start tries again
        return
    if pid:
        os.waitpid(pid, 0)
        return
    try:  # the child: a new session, then the promoter as its child, then gone
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.posix_spawn(sys.executable,
                       [sys.executable, "-I", "-m", __name__, os.path.abspath(allexe.path)],
                       os.environ,
                       file_actions=[(os.POSIX_SPAWN_DUP2, devnull, fd) for fd in (0, 1, 2)])
    finally:
        os._exit(0)


def _lock(cache: Cache, *, wait: bool) -> int | None:
    """The promotion lock of `cache` (an flock on its static_binaries/ directory), held by the
    returned descriptor; None when another process holds it and `wait` is false."""
    import fcntl

    fd = os.open(os.path.join(cache.root, STATIC_BINARIES),
                 os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _promotion_running(cache: Cache) -> bool:
    try:
        fd = _lock(cache, wait=False)
    except OSError:  # no static_binaries/ yet: no promoter has run
        return False
    if fd is not None:
        os.close(fd)
    return fd is None


def promote(allexe_path: str) -> None:
    """The promoter: the optimized static binary into the user's cache, at idle priority."""
    from allvm.native.build import build_static_binary

    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    cache = Cache()
    if not cache.ensure_dirs():
        return
    fd = _lock(cache, wait=True)
    try:
        build_static_binary(Allexe.open(allexe_path), cache)
    finally:
        os.close(fd)


if __name__ == "__main__":
    try:
        promote(sys.argv[1])
    except Exception:  # nobody to tell: the next start runs from the fast tier and tries again
        sys.exit(1)
