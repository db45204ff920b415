/* libstats: summary statistics over an array of doubles (the library part of `stats`). */
#ifndef LIBSTATS_H
#define LIBSTATS_H
#include <stddef.h>

struct summary { size_t n; double min, max, mean, median, stddev; };

int stats_summarize(double *values, size_t n, struct summary *out);
const char *stats_version(void);

#endif
