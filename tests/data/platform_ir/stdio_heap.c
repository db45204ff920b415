/* stdio, heap, qsort with a comparator, errno, locale, atexit and destructors: through
 * -platform-ir these run libc's own IR, optimized with the program. */
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static int by_value(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void at_exit_first(void) { puts("atexit: registered first, runs last"); }
static void at_exit_second(void) { printf("atexit: registered second, runs first\n"); }
__attribute__((destructor)) static void destructor(void) { fputs("destructor ran\n", stdout); }

int main(int argc, char **argv) {
    (void)argv;
    atexit(at_exit_first);
    atexit(at_exit_second);
    printf("%d %5s|%-5s| %x %o %c %%\n", 42, "ab", "cd", 255, 8, 'z');
    printf("%f %.3e %g %g %a\n", 3.14159, 12345.678, 0.0001, 1e20, 1.0);
    printf("%Lf %.10Lg\n", 1.5L, 2.0L / 3.0L);
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s-%d-%.2f", "snprintf", argc, 2.5);
    printf("%s (%d)\n", buf, n);

    int *v = malloc(1000 * sizeof *v);
    unsigned seed = 12345;
    for (int i = 0; i < 1000; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (int)(seed >> 8) % 10000;
    }
    qsort(v, 1000, sizeof *v, by_value);
    long sum = 0;
    for (int i = 0; i < 1000; i++) sum += (long)v[i] * i;
    printf("sorted: %d %d %d weighted %ld\n", v[0], v[500], v[999], sum);
    v = realloc(v, 10 * sizeof *v);
    int *z = calloc(100, sizeof *z);
    printf("calloc zero: %d, realloc kept: %d\n", z[99], v[9]);
    free(z);
    free(v);
    char *copy = strdup("duplicated");
    printf("%s %zu %ld %.3f\n", copy, strlen(copy), strtol("-0x1f", NULL, 16),
           strtod("2.5e3", NULL));
    free(copy);

    errno = 0;
    FILE *f = fopen("/nonexistent/file", "r");
    printf("fopen: %s, errno %d: %s\n", f ? "opened" : "failed", errno, strerror(errno));
    errno = 0;
    strtol("99999999999999999999", NULL, 10);
    printf("strtol overflow: errno %s\n", errno == ERANGE ? "ERANGE" : "other");

    printf("locale C: %s\n", setlocale(LC_ALL, "C"));
    printf("locale C.UTF-8: %s\n", setlocale(LC_ALL, "C.UTF-8"));
    wchar_t wide[8];
    size_t count = mbstowcs(wide, "h\xc3\xa9llo", 8);
    printf("mbstowcs: %zu, wide[1] = U+%04X, MB_CUR_MAX %zu\n", count, (unsigned)wide[1],
           MB_CUR_MAX);

    long bytes = 0, lines = 0;
    int c;
    while ((c = getc(stdin)) != EOF) {
        bytes++;
        if (c == '\n') lines++;
        putc(c == 'a' ? 'A' : c, stdout);
    }
    printf("stdin: %ld bytes, %ld lines\n", bytes, lines);
    return 3;
}
