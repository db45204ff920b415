/* The platform's libc behaves as musl does where zig 0.17.1's libc differs
   (allvm.platform.libc). Arguments come from argv, so the compiler cannot fold the calls.
   The expected output is what Debian's musl (musl-gcc) prints. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *null_or_not(void *p) { return p ? "non-NULL" : "NULL"; }

int main(int argc, char **argv) {
    size_t zero = (size_t)atoi(argc > 1 ? argv[1] : "0");
    void *a = realloc(NULL, zero);
    void *b = reallocarray(NULL, zero, 8);
    void *c = realloc(malloc(16), zero);
    printf("realloc(NULL, 0): %s\n", null_or_not(a));
    printf("reallocarray(NULL, 0, 8): %s\n", null_or_not(b));
    printf("realloc(p, 0): %s\n", null_or_not(c));
    printf("distinct: %d\n", a != b && b != c && a != c);
    void *d = reallocarray(NULL, SIZE_MAX / 2 + zero, 4);
    printf("reallocarray overflow: %s\n", null_or_not(d));
    void *e = realloc(a, 100 + zero);
    printf("realloc(p, 100): %s\n", null_or_not(e));
    free(e);
    free(b);
    free(c);

    /* A failed allocation sets errno: libc reads it (%m), as perror does; the compiler assumes
       that an allocation leaves errno alone, and the volatile keeps the calls. */
    static void *volatile kept;
    size_t huge = SIZE_MAX / 2 + zero;
    errno = 0;
    kept = malloc(huge);
    printf("malloc(huge): %s, %m;", null_or_not(kept));
    errno = 0;
    kept = calloc(huge, 4);
    printf(" calloc: %s, %m;", null_or_not(kept));
    errno = 0;
    kept = realloc(NULL, huge);
    printf(" realloc: %s, %m\n", null_or_not(kept));
    errno = 0;
    kept = aligned_alloc(24 + zero, 48);
    printf("aligned_alloc(24): %s, %m;", null_or_not(kept));
    errno = 0;
    kept = memalign(64 + zero, 48);
    printf(" memalign(64): %s, %m;", null_or_not(kept));
    free(kept);
    errno = 0;
    kept = aligned_alloc(64 + zero, huge);
    printf(" aligned_alloc(64, huge): %s, %m\n", null_or_not(kept));

    int eof = EOF + (int)zero;
    printf("tolower(EOF) %d toupper(EOF) %d tolower(300) %d tolower('A') %c toupper('z') %c\n",
           tolower(eof), toupper(eof), tolower(300 + eof + 1), tolower('A' + eof + 1),
           toupper('z' + eof + 1));
    char text[] = "hello", buf[8];
    char *past = memccpy(buf, text + zero, 'l', 5);
    printf("memccpy found %td, not found %s\n", past - buf,
           null_or_not(memccpy(buf, text + zero, 'z', 5)));
    errno = 0;
    int advise = posix_fadvise(-1, 0, 0, POSIX_FADV_NORMAL);
    int allocate = posix_fallocate(-1, 0, 1);
    printf("posix_fadvise %d posix_fallocate %d errno %d\n", advise, allocate, errno);
    srand(1 + zero);
    int r1 = rand(), r2 = rand();
    srand(42 + zero);
    int r3 = rand();
    unsigned seed = 5 + zero;
    int r4 = rand_r(&seed), r5 = rand_r(&seed);
    printf("rand %d %d %d rand_r %d %d\n", r1, r2, r3, r4, r5);

    /* strto*: past every digit of an overflowing number; EINVAL without digits */
    const char *big = "99999999999999999999999x", *subjects[] = {big, " -0x", "-", "0x1g", "08"};
    char *end;
    for (size_t i = 0; i < sizeof subjects / sizeof *subjects; i++) {
        errno = 0;
        long l = strtol(subjects[i] + zero, &end, 0);
        printf("strtol '%s' %ld end %td errno %d\n", subjects[i], l, end - subjects[i], errno);
    }
    errno = 0;
    uintmax_t u = strtoumax(big + zero, &end, 10);
    printf("strtoumax %ju end %td errno %d", u, end - big, errno);
    errno = 0;
    unsigned long neg = strtoul("-1", &end, 10 + (int)zero);
    printf(" strtoul('-1') %lu errno %d", neg, errno);
    errno = 0;
    long long min = strtoll("-9223372036854775809", &end, 10 + (int)zero);
    printf(" strtoll %lld errno %d\n", min, errno);
    return 0;
}
