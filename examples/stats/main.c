/* stats: read numbers from stdin, print min/max/mean/median/stddev using libstats. */
#include "libstats.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") == 0) { puts(stats_version()); return 0; }
    size_t n = 0, cap = 1024;
    double *values = malloc(cap * sizeof *values), v;
    while (scanf("%lf", &v) == 1) {
        if (n == cap) values = realloc(values, (cap *= 2) * sizeof *values);
        values[n++] = v;
    }
    struct summary s;
    if (stats_summarize(values, n, &s) != 0) { fprintf(stderr, "stats: no input\n"); return 1; }
    printf("n=%zu min=%g max=%g mean=%g median=%g stddev=%g\n",
           s.n, s.min, s.max, s.mean, s.median, s.stddev);
    free(values);
    return 0;
}
