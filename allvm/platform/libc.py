"""The platform's libc fixes: where zig's libc (musl with parts replaced by zig's own code)
differs from what musl does, a small object restores musl's behaviour.

zig 0.17.1 implements parts of the libc in Zig (lib/c/*.zig), with these differences from musl
(found by running the same edge cases against Debian's musl 1.2.3, musl-gcc):
- `realloc(NULL, 0)`, `reallocarray(NULL, 0, n)` and `realloc(p, 0)` free and return NULL;
  musl returns `malloc(0)`, a unique pointer that can be freed. gnulib's regex/dfa compiler
  allocates zero elements that way and then dies with `memory exhausted`.
- `aligned_alloc` and `memalign` take an alignment that is not a power of two (musl: EINVAL).
- `tolower(EOF)` and `toupper(EOF)` return 255 (and `tolower(300)` 44): the argument is cut
  to a byte; musl returns anything that is not a letter unchanged (a loop ending at EOF
  after tolower never ends).
- `memccpy` returns a pointer to the found byte instead of past it, and never NULL when
  the byte is not found.
- `posix_fadvise` and `posix_fallocate` return -1 and set errno; POSIX and musl return the
  error number.
- `rand`, `srand` and `rand_r` use another generator than musl's: a seeded sequence differs.
- `strtol` and its family stop reading at the digit that overflows, so the end pointer lands
  inside the number (C and musl: past all its digits, with ERANGE; coreutils then reports
  `invalid suffix` instead of `too large`), and a subject without digits leaves errno alone
  (musl: EINVAL).

zig's definitions are weak: the fixes are weak definitions too, which come first in the link
(a program's own definition still wins). realloc must still reach zig's for every other size,
so it is wrapped (`ld --wrap`): the link sends every call of `realloc` (the program's and
libc's own) to `__wrap_realloc`, which calls zig's as `__real_realloc`.

Only static musl programs get the fixes: a gnu program's libc is the host glibc, as it is. A
program that carries its libc in IR gets them as a member of the platform IR (`fix_member`), where
renaming does what --wrap does in a native link (allvm.platform.libc_ir).
"""

import os
from collections.abc import Callable

from allvm.errors import AllvmError
from allvm.toolchain import MUSL_TARGET, run_zig, zig_binary, zig_cache_dir

WRAPPED = ("realloc", "reallocarray")

SOURCE = r"""
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FIX __attribute__((weak))

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

/* musl: an alignment that is not a power of two is EINVAL. */
FIX void *aligned_alloc(size_t align, size_t n)
{
    void *p;
    if (align & (align - 1)) {
        errno = EINVAL;
        return 0;
    }
    int error = posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, n);
    if (error) {
        errno = error;
        return 0;
    }
    return p;
}

FIX void *memalign(size_t align, size_t n) { return aligned_alloc(align, n); }

FIX int tolower(int c) { return (unsigned)c - 'A' < 26 ? c | 32 : c; }
FIX int toupper(int c) { return (unsigned)c - 'a' < 26 ? c & 0x5f : c; }

FIX void *memccpy(void *restrict dest, const void *restrict src, int c, size_t n)
{
    unsigned char *d = dest;
    const unsigned char *s = src;
    for (; n; n--, d++, s++)
        if ((*d = *s) == (unsigned char)c)
            return d + 1;
    return 0;
}

/* The error number is returned; errno stays as it was. */
static int error_number(int saved_errno, long r)
{
    int e = r < 0 ? errno : 0;
    errno = saved_errno;
    return e;
}

FIX int posix_fadvise(int fd, off_t base, off_t len, int advice)
{
    int saved = errno;
    return error_number(saved, syscall(SYS_fadvise64, fd, base, len, advice));
}

FIX int posix_fallocate(int fd, off_t base, off_t len)
{
    int saved = errno;
    return error_number(saved, syscall(SYS_fallocate, fd, 0, base, len));
}

/* musl's generators: a 64-bit LCG for rand, a tempered 32-bit one for rand_r. */
static uint64_t rand_seed;
FIX void srand(unsigned s) { rand_seed = s - 1; }
FIX int rand(void)
{
    rand_seed = 6364136223846793005ULL * rand_seed + 1;
    return rand_seed >> 33;
}

static unsigned temper(unsigned x)
{
    x ^= x >> 11;
    x ^= x << 7 & 0x9D2C5680;
    x ^= x << 15 & 0xEFC60000;
    x ^= x >> 18;
    return x;
}

FIX int rand_r(unsigned *seed) { return temper(*seed = *seed * 1103515245 + 12345) / 2; }

/* musl's __intscan on a string: every digit of the subject is read, also past an overflow;
   `lim` is the bound of the result type (odd: unsigned, whose negation wraps). */
static unsigned digit(unsigned char c)
{
    return c - '0' < 10 ? c - '0' : (c | 32) - 'a' < 26 ? (c | 32) - 'a' + 10 : 255;
}

static unsigned long long intscan(const char *s, char **end, unsigned base,
                                  unsigned long long lim)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned long long y = 0;
    int neg = 0, overflow = 0;
    if (end)
        *end = (char *)s;
    if (base > 36 || base == 1) {
        errno = EINVAL;
        return 0;
    }
    while (*p == ' ' || *p - '\t' < 5u)
        p++;
    if (*p == '+' || *p == '-')
        neg = -(*p++ == '-');
    if ((base == 0 || base == 16) && *p == '0') {
        p++;
        if ((*p | 32) == 'x') {
            if (digit(p[1]) >= 16) {  /* "0x" without a hex digit: the number is the 0 */
                if (end)
                    *end = (char *)p;
                return 0;
            }
            p++;
            base = 16;
        } else if (base == 0) {
            base = 8;
        }
    } else {
        if (base == 0)
            base = 10;
        if (digit(*p) >= base) {
            errno = EINVAL;
            return 0;
        }
    }
    for (; digit(*p) < base; p++) {
        if (y > (ULLONG_MAX - digit(*p)) / base)
            overflow = 1;
        else if (!overflow)
            y = y * base + digit(*p);
    }
    if (end)
        *end = (char *)p;
    if (overflow) {
        errno = ERANGE;
        y = lim;
        if (lim & 1)
            neg = 0;
    }
    if (y >= lim) {
        if (!(lim & 1) && !neg) {
            errno = ERANGE;
            return lim - 1;
        } else if (y > lim) {
            errno = ERANGE;
            return lim;
        }
    }
    return (y ^ neg) - neg;
}

#define STRTO(type, name, lim)                                                 \
    FIX type name(const char *restrict s, char **restrict end, int base)      \
    {                                                                          \
        return intscan(s, end, base, lim);                                     \
    }                                                                          \
    FIX type __##name##_internal(const char *restrict s, char **restrict end, int base) \
    {                                                                          \
        return intscan(s, end, base, lim);                                     \
    }
STRTO(long, strtol, 0UL + LONG_MIN)
STRTO(unsigned long, strtoul, ULONG_MAX)
STRTO(long long, strtoll, LLONG_MIN)
STRTO(unsigned long long, strtoull, ULLONG_MAX)
STRTO(intmax_t, strtoimax, LLONG_MIN)
STRTO(uintmax_t, strtoumax, ULLONG_MAX)
"""


def link_flags() -> list[str]:
    """The linker options that route the wrapped functions through the fixes."""
    return [f"-Wl,--wrap={name}" for name in WRAPPED]


def fix_object() -> str:
    """The fixes' object (position-independent, for any kind of executable), compiled once
    into zig's cache directory."""
    return cached_object("allvm-libc-fixes", SOURCE,
                         lambda path: compile_c(SOURCE, path, "-fPIC", what=_FIXES))


def fix_member(path: str) -> None:
    """The fixes as bitcode into `path`, for the platform IR. The wrappers take the wrapped
    names; the platform IR renames the libc's own definitions to `__real_*`, so that every call
    reaches a wrapper and a wrapper reaches the libc's function, as --wrap arranges natively."""
    compile_c(SOURCE, path, "-emit-llvm", *(f"-D__wrap_{name}={name}" for name in WRAPPED),
              what=_FIXES)


_FIXES = "compiling the platform's libc fixes"


def cached_object(name: str, identity: str, build: Callable[[str], None]) -> str:
    """A platform object in zig's cache directory, `<name>-<key>.o`, the key a hash of
    `identity` (what the object is made from) and the compiler; `build(path)` makes it when
    it is not there yet."""
    from _blake2 import blake2b

    zig = os.stat(zig_binary())
    key = blake2b(f"{identity}{zig.st_size}{zig.st_mtime_ns}".encode(), digest_size=10)
    path = os.path.join(zig_cache_dir(), f"{name}-{key.hexdigest()}.o")
    if not os.path.exists(path):
        build(path)
    return path


def compile_c(source: str | None, path: str, *flags: str, what: str) -> None:
    """Compile the C `source` (None: the inputs named in `flags`) for static musl to `path`,
    atomically (concurrent first runs each write their own). `what` names it in errors."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temp = f"{path}.{os.getpid()}.tmp"
    inputs = []
    if source is not None:
        inputs.append(f"{path}.{os.getpid()}.c")
    try:
        if source is not None:
            with open(inputs[0], "w") as f:
                f.write(source)
        # -fno-builtin: clang must not turn a libc function's loop into a call of itself
        # (memccpy's loop into memccpy, malloc-and-memset into calloc).
        run_zig("cc", ["-target", MUSL_TARGET, "-O2", "-fno-builtin", "-g0", *flags, "-c",
                       *inputs, "-o", temp], what)
        os.replace(temp, path)
    except OSError as e:
        raise AllvmError(f"could not write '{path}': {e.strerror}") from None
    finally:
        for leftover in (*inputs, temp):
            try:
                os.unlink(leftover)
            except OSError:
                pass
