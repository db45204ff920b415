"""The platform's libc fixes: where zig's libc (musl with parts replaced by zig's own code)
differs from what musl documents, a small object restores musl's behaviour.

zig 0.17.1 implements malloc and friends in Zig (lib/c/malloc.zig). Its `realloc(p, 0)` frees
and returns NULL, also for `realloc(NULL, 0)` and `reallocarray(NULL, 0, n)`; musl returns
`malloc(0)`, a unique pointer that can be freed. gnulib's regex/dfa compiler allocates zero
elements that way and then dies with `memory exhausted`. zig's definitions are weak, but the
fix must still reach them for every other size, so it wraps them (`ld --wrap`): the link
sends every call of `realloc` (the program's and libc's own) to `__wrap_realloc`, which calls
zig's as `__real_realloc`.

Only static musl programs get the fixes: a gnu program's libc is the host glibc, as it is.
"""

import os

from allvm.errors import AllvmError
from allvm.toolchain import MUSL_TARGET, run_zig, zig_binary, zig_cache_dir

WRAPPED = ("realloc", "reallocarray")

SOURCE = r"""
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

void *__real_realloc(void *, size_t);

/* musl: a zero size gives what malloc(0) gives (never NULL unless out of memory), and the old
   block is freed only when the new one exists. */
void *__wrap_realloc(void *p, size_t n)
{
    if (n == 0) {
        void *q = malloc(0);
        if (q)
            free(p);
        return q;
    }
    return __real_realloc(p, n);
}

void *__wrap_reallocarray(void *p, size_t m, size_t n)
{
    if (n && m > SIZE_MAX / n) {
        errno = ENOMEM;
        return 0;
    }
    return __wrap_realloc(p, m * n);
}
"""


def link_flags() -> list[str]:
    """The linker options that route the wrapped functions through the fixes."""
    return [f"-Wl,--wrap={name}" for name in WRAPPED]


def fix_object() -> str:
    """The fixes' object (position-independent, for any kind of executable), compiled once
    into zig's cache directory, named by a hash of its source and the compiler."""
    from _blake2 import blake2b

    zig = os.stat(zig_binary())
    key = blake2b(f"{SOURCE}{zig.st_size}{zig.st_mtime_ns}".encode(), digest_size=10)
    path = os.path.join(zig_cache_dir(), f"allvm-libc-fixes-{key.hexdigest()}.o")
    if not os.path.exists(path):
        _compile(path)
    return path


def _compile(path: str) -> None:
    """Compile SOURCE to `path` atomically (concurrent first runs each write their own)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    source, temp = f"{path}.{os.getpid()}.c", f"{path}.{os.getpid()}.tmp"
    try:
        with open(source, "w") as f:
            f.write(SOURCE)
        run_zig("cc", ["-target", MUSL_TARGET, "-O2", "-fPIC", "-g0", "-c", source, "-o", temp],
                "compiling the platform's libc fixes")
        os.replace(temp, path)
    except OSError as e:
        raise AllvmError(f"could not write '{path}': {e.strerror}") from None
    finally:
        for leftover in (source, temp):
            try:
                os.unlink(leftover)
            except OSError:
                pass
