#include "libstats.h"
#include <math.h>
#include <stdlib.h>

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int stats_summarize(double *values, size_t n, struct summary *out) {
    if (n == 0) return -1;
    qsort(values, n, sizeof *values, compare);
    double total = 0, squares = 0;
    for (size_t i = 0; i < n; i++) total += values[i];
    out->n = n;
    out->min = values[0];
    out->max = values[n - 1];
    out->mean = total / n;
    for (size_t i = 0; i < n; i++) squares += (values[i] - out->mean) * (values[i] - out->mean);
    out->stddev = sqrt(squares / n);
    out->median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    return 0;
}

const char *stats_version(void) { return "libstats 1.0"; }
