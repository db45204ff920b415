"""The platform's string functions: SSE2 versions of the ones programs call on short inputs.

zig 0.17.1 implements strlen, memchr, strcmp, memcmp and their kin in Zig, a byte at a time:
4–9x glibc's CPU time on strings of a few dozen bytes (bench/figures.py, figure 12). These
versions compare 16 bytes at once (SSE2 is in every x86-64), as glibc's and musl's own
word-at-a-time versions do:

- a string of unknown length is read in aligned 16-byte blocks, the first one masked below the
  start: an aligned block never crosses a page, so no read reaches past the page that holds the
  string's last byte (what the C standard leaves to the implementation);
- strcmp and memcmp, with two pointers that are not aligned alike, read 16 bytes at once only
  where neither read crosses a page, a byte at a time near a page's end;
- they return what musl's return (strcmp and memcmp the difference of the first bytes that
  differ, as unsigned char).

memcpy and memset are not here: zig's (compiler_rt) already take less time than glibc's on
short copies (figure 12). The functions are weak, as the libc fixes are (allvm.platform.libc):
a program's own definition still wins, and zig's (weak too, later in the link) never get
linked. musl's internal names (`__strchrnul`, `__memrchr`) are aliases, so libc's own calls
reach these too. Natively the object is linked after a musl program's objects
(`string_object`); in the platform IR it is a member (`string_member`).
"""

from allvm.platform.libc import cached_object, compile_c

# What this source defines for programs and libc.
FUNCTIONS = ("strlen", "strnlen", "memchr", "memrchr", "__memrchr", "strchr", "strchrnul",
             "__strchrnul", "strcmp", "memcmp", "bcmp")

SOURCE = r"""
#include <emmintrin.h>
#include <stddef.h>
#include <stdint.h>

/* noinline: in the platform IR, copies inlined into a program's loops lost to LLVM's own
   knowledge of these library functions (some calls went back to zig's byte loops, others ran
   at their speed: figure 12); as calls they run as in a native link. */
#define LIBC __attribute__((weak, noinline))
#define PAGE 4096

typedef __m128i block;

/* Bit i set where byte i of the aligned block at p equals the byte in every lane of v. */
static inline unsigned matches(const unsigned char *p, block v)
{
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_load_si128((const block *)p), v));
}

static inline unsigned zeros_or(const unsigned char *p, block c)
{
    block b = _mm_load_si128((const block *)p);
    block hit = _mm_or_si128(_mm_cmpeq_epi8(b, _mm_setzero_si128()), _mm_cmpeq_epi8(b, c));
    return (unsigned)_mm_movemask_epi8(hit);
}

/* Whether 16 bytes from p stay on p's page. */
static inline int within_page(const void *p) { return ((uintptr_t)p & (PAGE - 1)) <= PAGE - 16; }

LIBC size_t strlen(const char *s)
{
    const unsigned char *p = (const unsigned char *)((uintptr_t)s & ~(uintptr_t)15);
    block zero = _mm_setzero_si128();
    unsigned mask = matches(p, zero) >> ((uintptr_t)s & 15);
    if (mask)
        return __builtin_ctz(mask);
    for (;;) {
        p += 16;
        if ((mask = matches(p, zero)))
            return (size_t)(p - (const unsigned char *)s) + __builtin_ctz(mask);
    }
}

/* The first byte equal to c in s[0, n), scanning aligned blocks (n may be SIZE_MAX). */
static inline const unsigned char *find(const unsigned char *s, int c, size_t n)
{
    if (!n)
        return 0;
    block v = _mm_set1_epi8((char)c);
    const unsigned char *p = (const unsigned char *)((uintptr_t)s & ~(uintptr_t)15);
    unsigned mask = matches(p, v) & (0xffffu << (s - p));
    for (;;) {
        if (mask) {
            const unsigned char *hit = p + __builtin_ctz(mask);
            return (size_t)(hit - s) < n ? hit : 0;
        }
        p += 16;
        if ((size_t)(p - s) >= n)
            return 0;
        mask = matches(p, v);
    }
}

LIBC void *memchr(const void *s, int c, size_t n) { return (void *)find(s, c, n); }

LIBC size_t strnlen(const char *s, size_t n)
{
    const unsigned char *end = find((const unsigned char *)s, 0, n);
    return end ? (size_t)(end - (const unsigned char *)s) : n;
}

/* The last byte equal to c in s[0, n), scanning aligned blocks from the end. */
LIBC void *memrchr(const void *src, int c, size_t n)
{
    const unsigned char *s = src;
    if (!n)
        return 0;
    block v = _mm_set1_epi8((char)c);
    const unsigned char *last = s + n - 1;
    const unsigned char *p = (const unsigned char *)((uintptr_t)last & ~(uintptr_t)15);
    unsigned mask = matches(p, v) & (0xffffu >> (15 - (last - p)));
    for (;;) {
        if (p <= s)
            mask &= 0xffffu << (s - p);
        if (mask)
            return (void *)(p + 31 - __builtin_clz(mask));
        if (p <= s)
            return 0;
        p -= 16;
        mask = matches(p, v);
    }
}

LIBC void *__memrchr(const void *s, int c, size_t n) __attribute__((alias("memrchr")));

/* The first byte of s equal to c, or its terminating NUL. */
static inline char *find_or_end(const char *s, int c)
{
    block v = _mm_set1_epi8((char)c);
    const unsigned char *p = (const unsigned char *)((uintptr_t)s & ~(uintptr_t)15);
    unsigned mask = zeros_or(p, v) >> ((uintptr_t)s & 15);
    if (mask)
        return (char *)s + __builtin_ctz(mask);
    for (;;) {
        p += 16;
        if ((mask = zeros_or(p, v)))
            return (char *)p + __builtin_ctz(mask);
    }
}

LIBC char *strchrnul(const char *s, int c) { return find_or_end(s, c); }

LIBC char *__strchrnul(const char *s, int c) __attribute__((alias("strchrnul")));

LIBC char *strchr(const char *s, int c)
{
    char *p = find_or_end(s, c);
    return *(unsigned char *)p == (unsigned char)c ? p : 0;
}

/* Bit i set where a[i] and b[i] differ or a[i] is zero, for 16 unaligned bytes. */
static inline unsigned differ_or_end(const unsigned char *a, const unsigned char *b)
{
    block x = _mm_loadu_si128((const block *)a), y = _mm_loadu_si128((const block *)b);
    unsigned same = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y));
    unsigned end = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_setzero_si128()));
    return (~same | end) & 0xffff;
}

LIBC int strcmp(const char *l, const char *r)
{
    const unsigned char *a = (const unsigned char *)l, *b = (const unsigned char *)r;
    for (;;) {
        if (within_page(a) && within_page(b)) {
            unsigned mask = differ_or_end(a, b);
            if (mask) {
                unsigned i = __builtin_ctz(mask);
                return a[i] - b[i];
            }
            a += 16;
            b += 16;
        } else {  /* near a page's end: a byte at a time up to it */
            for (int i = 0; i < 16; i++, a++, b++)
                if (*a != *b || !*a)
                    return *a - *b;
        }
    }
}

/* Bit i set where the 16 bytes at a and b differ. */
static inline unsigned differ(const unsigned char *a, const unsigned char *b)
{
    block x = _mm_loadu_si128((const block *)a), y = _mm_loadu_si128((const block *)b);
    return ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) & 0xffff;
}

LIBC int memcmp(const void *l, const void *r, size_t n)
{
    const unsigned char *a = l, *b = r;
    unsigned mask;
    if (n >= 16) {
        for (; n > 16; n -= 16, a += 16, b += 16)
            if ((mask = differ(a, b)))
                goto found;
        a += n - 16;  /* the last 16 bytes, overlapping those compared */
        b += n - 16;
        if ((mask = differ(a, b)))
            goto found;
        return 0;
    }
    if (within_page(a) && within_page(b)) {
        if ((mask = differ(a, b) & ((1u << n) - 1)))
            goto found;
        return 0;
    }
    for (; n; n--, a++, b++)
        if (*a != *b)
            return *a - *b;
    return 0;
found:;
    unsigned i = __builtin_ctz(mask);
    return a[i] - b[i];
}

/* The compiler turns memcmp(...) == 0 into bcmp. */
LIBC int bcmp(const void *l, const void *r, size_t n) { return memcmp(l, r, n); }
"""

_WHAT = "compiling the platform's string functions"


def string_object() -> str:
    """The string functions' object (position-independent), compiled once into zig's cache
    directory."""
    return cached_object("allvm-strings", SOURCE,
                         lambda path: compile_c(SOURCE, path, "-fPIC", what=_WHAT))


def string_member(path: str) -> None:
    """The string functions as bitcode into `path`, for the platform IR."""
    compile_c(SOURCE, path, "-emit-llvm", what=_WHAT)
