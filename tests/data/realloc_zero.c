/* The platform's libc behaves as musl documents (SPEC §4): realloc(NULL, 0) and
   reallocarray(NULL, 0, n) return what malloc(0) returns, a unique pointer free() takes;
   realloc(p, 0) too. The sizes come from argv, so the compiler cannot rewrite the calls. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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
    return 0;
}
