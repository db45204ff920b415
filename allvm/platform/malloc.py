"""The platform's allocator: mimalloc behind malloc, free and the rest, in place of zig's.

zig 0.17.1's libc allocator maps and unmaps pages for every allocation above its 32 KiB slab
class and keeps size classes in powers of two: malloc/free of 1–64 KiB costs 15–29x glibc's
CPU time, and sqlite3 makes hundreds of mmap/munmap pairs per run. mimalloc (MIT, C) is the
allocator this platform links instead: on the workloads of `bench/libc/malloc.c` it takes
well under glibc's time where zig's took many times more (bench/figures.py, figure 12).

Third-party source is never committed: Debian's source of mimalloc (the version pinned here,
its tarball checked against the pinned SHA-256) is fetched with `apt-get source` on the first
build of the platform (`make setup` does it), into zig's cache directory beside the platform's
other builds. That needs a deb-src entry for Debian bookworm (make setup adds it).

mimalloc is compiled as one translation unit (its `src/static.c`) with the glue below, which
gives the libc functions musl's semantics where mimalloc's own differ (a failed allocation sets
errno to ENOMEM; posix_memalign's EINVAL). Every other name is made internal, so a program's
own mimalloc cannot clash with the platform's. The libc functions are weak, as the libc fixes
are (allvm.platform.libc), so a program's own malloc still wins; zig's (weak too, and later in
the link) never get linked. realloc is wrapped by the fixes (`--wrap=realloc`), so mimalloc's
realloc is what `__real_realloc` reaches. aligned_alloc and memalign are the fixes', over
posix_memalign.

The same glue and mimalloc build a position-independent object for native links
(`allocator_object`) and a member of the platform IR (`allocator_member`).
"""

import os
import re

from allvm.errors import AllvmError
from allvm.toolchain import zig_cache_dir

# The pinned source: Debian bookworm's mimalloc, its upstream tarball and that file's SHA-256.
PACKAGE, DEBIAN_VERSION = "mimalloc", "2.0.9+ds-2"
TARBALL = "mimalloc_2.0.9+ds.orig.tar.xz"
TARBALL_SHA256 = "cbc9d207ff105ad1f0cb739c378076143a6452b8d0624309cea0abfb040e972b"
TREE = "mimalloc-2.0.9+ds"

# What the allocator defines for the program and libc; everything else of it is internal.
EXPORTED = ("malloc", "calloc", "realloc", "free", "posix_memalign", "valloc",
            "malloc_usable_size")

GLUE = r"""
#include "static.c"

#include <errno.h>

#define LIBC __attribute__((weak))

/* mimalloc's start-up (options, the atexit and thread-exit hooks) runs at the first
   allocation, not in a constructor (which the build drops): a program that never allocates
   links none of the allocator and starts as fast as without it. */
static int loaded;

static inline void load(void)
{
    if (__builtin_expect(!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE), 0)
        && !__atomic_exchange_n(&loaded, 1, __ATOMIC_ACQ_REL))
        mi_process_load();
}

/* musl: a failed allocation sets errno (mimalloc leaves it alone where the size is too
   large, e.g. calloc's overflow). */
static void *checked(void *p)
{
    if (!p)
        errno = ENOMEM;
    return p;
}

LIBC void *malloc(size_t n)
{
    load();
    return checked(mi_malloc(n));
}

LIBC void *calloc(size_t m, size_t n)
{
    load();
    return checked(mi_calloc(m, n));
}

LIBC void *realloc(void *p, size_t n)
{
    load();
    return checked(mi_realloc(p, n));
}

LIBC void free(void *p) { mi_free(p); }
LIBC size_t malloc_usable_size(void *p) { return p ? mi_usable_size(p) : 0; }

/* musl: an alignment that is not a power of two, or below a pointer's size, is EINVAL. */
LIBC int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    load();
    void *p = mi_malloc_aligned(n, align);
    if (!p)
        return errno = ENOMEM;
    *out = p;
    return 0;
}

LIBC void *valloc(size_t n)
{
    load();
    return checked(mi_malloc_aligned(n, 4096));
}
"""

# How mimalloc is built: a release build (no assertions, statistics or messages), its
# thread-local heap pointer reached as an executable's is (initial-exec, never through
# __tls_get_addr), and its warnings about its own code left to upstream.
FLAGS = ("-DNDEBUG", "-DMI_DEBUG=0", "-ftls-model=initial-exec", "-w")


def identity() -> str:
    """What a build of the allocator depends on besides the compiler: the pinned source and
    the glue (part of the platform's identity, allvm.native.settings)."""
    return f"{TARBALL} {TARBALL_SHA256}\n{GLUE}\n{FLAGS}"


def source_dir() -> str:
    """mimalloc's source tree in zig's cache directory, fetched and unpacked first if it is
    not there."""
    tree = os.path.join(zig_cache_dir(), f"allvm-{TREE}")
    if not os.path.isfile(os.path.join(tree, "src", "static.c")):
        _fetch(tree)
    return tree


def _fetch(tree: str) -> None:
    """Download the pinned tarball with apt-get, check it, unpack it as `tree` (atomically:
    unpacked beside it, then renamed; a concurrent fetch's result is as good)."""
    import hashlib
    import shutil
    import subprocess
    import tarfile
    import tempfile

    parent = os.path.dirname(tree)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f"{os.path.basename(tree)}.{os.getpid()}-", dir=parent)
    try:
        proc = subprocess.run(["apt-get", "source", "--download-only", "--tar-only", "-q",
                               f"{PACKAGE}={DEBIAN_VERSION}"], cwd=work, capture_output=True,
                              text=True)
        tarball = os.path.join(work, TARBALL)
        if proc.returncode != 0 or not os.path.isfile(tarball):
            reason = (proc.stderr.strip().splitlines() or ["no tarball downloaded"])[-1]
            raise AllvmError(f"could not fetch the platform allocator's source ({PACKAGE} "
                             f"{DEBIAN_VERSION}, with apt-get source; a deb-src entry for "
                             f"Debian bookworm is needed): {reason}")
        with open(tarball, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != TARBALL_SHA256:
            raise AllvmError(f"{TARBALL}: SHA-256 {digest}, expected {TARBALL_SHA256}")
        with tarfile.open(tarball) as archive:
            archive.extractall(work, filter="data")
        try:
            os.rename(os.path.join(work, TREE), tree)
        except OSError:
            if not os.path.isdir(tree):
                raise
    except OSError as e:
        raise AllvmError(f"could not unpack {TARBALL} into '{parent}': {e.strerror}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def allocator_object() -> str:
    """The allocator as a position-independent object for native links, built once into zig's
    cache directory (named by what it depends on)."""
    from allvm.platform.libc import cached_object

    return cached_object("allvm-allocator", identity(), _build_object)


def _build_object(path: str) -> None:
    from allvm.platform.libc import compile_c

    bitcode = f"{path}.{os.getpid()}.bc"
    try:
        _bitcode(bitcode, "-fPIC")
        compile_c(None, path, "-fPIC", bitcode, what="compiling the platform's allocator")
    finally:
        if os.path.exists(bitcode):
            os.unlink(bitcode)


def allocator_member(path: str) -> None:
    """The allocator as bitcode into `path`, a member of the platform IR."""
    _bitcode(path)


def _bitcode(path: str, *flags: str) -> None:
    """Compile the glue with mimalloc to bitcode at `path`, every name but EXPORTED internal."""
    from allvm.ir import llvm, parse_module
    from allvm.platform.libc import compile_c
    from allvm.symbols import internalize

    tree = source_dir()
    compile_c(GLUE, path, "-emit-llvm", *FLAGS, *flags, f"-I{tree}/include", f"-I{tree}/src",
              what="compiling the platform's allocator (mimalloc)")
    context = llvm().create_context()
    with open(path, "rb") as f:
        text = str(parse_module(f.read(), path, context=context))
    # mimalloc's constructor goes: the glue starts it at the first allocation.
    text = re.sub(r"^@llvm\.global_ctors = .*\n", "", text, count=1, flags=re.MULTILINE)
    module = internalize(parse_module(text.encode(), path, context=context),
                         keep=set(EXPORTED), keep_replacements=False)
    temp = f"{path}.{os.getpid()}.tmp"
    with open(temp, "wb") as f:
        f.write(module.as_bitcode())
    os.replace(temp, path)
