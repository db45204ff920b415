/* The platform's string functions (allvm.platform.strings) answer as musl's do, at every
   alignment and length, with bytes above 127, and never read past the page that holds an
   input's last byte: each input is also placed to end right before a page that is not mapped
   (a read there would fault). Each function is checked against a plain byte loop; a line per
   function says "ok" or the first case that differs. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX 80

static int sign(int x) { return (x > 0) - (x < 0); }

static size_t ref_strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
static const void *ref_memchr(const void *s, int c, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)s)[i] == (unsigned char)c) return (const char *)s + i;
    return NULL;
}
static const void *ref_memrchr(const void *s, int c, size_t n) {
    while (n--)
        if (((const unsigned char *)s)[n] == (unsigned char)c) return (const char *)s + n;
    return NULL;
}
static const char *ref_strchrnul(const char *s, int c) {
    while (*s && *(unsigned char *)s != (unsigned char)c) s++;
    return s;
}
static int ref_memcmp(const void *a, const void *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int d = ((const unsigned char *)a)[i] - ((const unsigned char *)b)[i];
        if (d) return d;
    }
    return 0;
}
static int ref_strcmp(const char *a, const char *b) {
    size_t n = ref_strlen(a) + 1;
    return ref_memcmp(a, b, n);
}

/* Calls through volatile pointers: the compiler must call libc, not fold the calls. */
static size_t (*volatile f_strlen)(const char *) = strlen;
static size_t (*volatile f_strnlen)(const char *, size_t) = strnlen;
static void *(*volatile f_memchr)(const void *, int, size_t) = memchr;
static void *(*volatile f_memrchr)(const void *, int, size_t) = memrchr;
static char *(*volatile f_strchr)(const char *, int) = strchr;
static char *(*volatile f_strchrnul)(const char *, int) = strchrnul;
static int (*volatile f_strcmp)(const char *, const char *) = strcmp;
static int (*volatile f_memcmp)(const void *, const void *, size_t) = memcmp;
static int (*volatile f_bcmp)(const void *, const void *, size_t) = bcmp;

static int failures[9];
static const char *names[9] = {"strlen", "strnlen", "memchr", "memrchr", "strchr", "strchrnul",
                               "strcmp", "memcmp", "bcmp"};

static void fail(int f, const char *where, size_t len, size_t at) {
    if (!failures[f]++)
        printf("%s: differs (%s, length %zu, byte %zu)\n", names[f], where, len, at);
}

/* Every check on the string s of length len (a NUL at s[len]) and its copy t, which differs
   from s at byte `at` (at == len: t equals s). */
static void check(const char *where, char *s, char *t, size_t len, size_t at) {
    static const int needles[] = {'a', 0xE9, 0, 'z' + 1};
    if (f_strlen(s) != len) fail(0, where, len, at);
    if (f_memchr(s, 0, SIZE_MAX) != s + len) fail(2, where, len, SIZE_MAX);  /* a rawmemchr */
    for (size_t limit = 0; limit <= len + 1; limit += 1 + limit / 4)
        if (f_strnlen(s, limit) != (limit < len ? limit : len)) fail(1, where, len, limit);
    for (size_t k = 0; k < sizeof needles / sizeof *needles; k++) {
        int c = needles[k];
        for (size_t n = 0; n <= len + 1; n++) {
            if (f_memchr(s, c, n) != ref_memchr(s, c, n)) fail(2, where, len, n);
            if (f_memrchr(s, c, n) != ref_memrchr(s, c, n)) fail(3, where, len, n);
        }
        const char *nul = ref_strchrnul(s, c);
        if (f_strchrnul(s, c) != nul) fail(5, where, len, (size_t)c);
        if (f_strchr(s, c) != (*(unsigned char *)nul == (unsigned char)c ? nul : NULL))
            fail(4, where, len, (size_t)c);
        if (f_strchr(s, c + 256) != f_strchr(s, c)) fail(4, where, len, (size_t)c + 256);
    }
    if (sign(f_strcmp(s, t)) != sign(ref_strcmp(s, t)) || f_strcmp(s, t) != ref_strcmp(s, t))
        fail(6, where, len, at);
    if (f_strcmp(t, s) != ref_strcmp(t, s)) fail(6, where, len, at);
    for (size_t n = 0; n <= len; n++) {
        if (f_memcmp(s, t, n) != ref_memcmp(s, t, n)) fail(7, where, len, n);
        if (f_memcmp(t, s, n) != ref_memcmp(t, s, n)) fail(7, where, len, n);
        if (!f_bcmp(s, t, n) != !ref_memcmp(s, t, n)) fail(8, where, len, n);
    }
}

static void text(char *s, size_t len, unsigned seed) {
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        unsigned r = (seed >> 16) % 40;
        s[i] = (char)(r < 26 ? 'a' + r : r < 33 ? 0xE9 : 0x80 + r);  /* letters, é, >127 */
    }
    s[len] = 0;
}

/* Inputs at every alignment in ordinary memory, t differing from s at each position. */
static void everywhere(void) {
    static char sbuf[MAX + 64], tbuf[MAX + 64];
    for (size_t len = 0; len <= MAX; len++)
        for (size_t align = 0; align < 16; align++)
            for (size_t at = 0; at <= len; at += 1 + len / 8) {
                char *s = sbuf + align, *t = tbuf + (align * 7) % 16;
                text(s, len, (unsigned)(len * 16 + align));
                memcpy(t, s, len + 1);
                if (at < len) t[at] = (char)(t[at] ^ 0x81);
                check("aligned", s, t, len, at);
            }
}

/* Inputs whose last byte (the NUL) is the last byte before a page that is not mapped. */
static void page_end(void) {
    long page = sysconf(_SC_PAGESIZE);
    char *a = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED || mprotect(a + page, page, PROT_NONE)
        || mprotect(a + 3 * page, page, PROT_NONE)) {
        puts("mmap failed");
        exit(1);
    }
    char *end_s = a + page, *end_t = a + 3 * page;  /* one past the last mapped byte */
    for (size_t len = 0; len <= MAX; len++)
        for (size_t shift = 0; shift < 3; shift++) {  /* t's end 0, 1, 2 bytes earlier */
            char *s = end_s - len - 1, *t = end_t - len - 1 - shift;
            text(s, len, (unsigned)len);
            memcpy(t, s, len + 1);
            check("page end", s, t, len, len);
            if (len) {
                t[len - 1] = (char)(t[len - 1] ^ 1);
                check("page end", s, t, len, len - 1);
            }
        }
    /* memrchr and memcmp from the start of a page whose previous page is not mapped */
    char *start = a + 2 * page;
    text(start, MAX, 9);
    for (size_t n = 0; n <= MAX; n++)
        if (f_memrchr(start, 'a', n) != ref_memrchr(start, 'a', n)) fail(3, "page start", n, 0);
}

int main(void) {
    everywhere();
    page_end();
    for (int f = 0; f < 9; f++)
        if (!failures[f])
            printf("%s: ok\n", names[f]);
    return 0;
}
