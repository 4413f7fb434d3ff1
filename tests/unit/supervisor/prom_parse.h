/*  prom_parse.h: a small, strict reader of the Prometheus text format 0.0.4,
 *  written independently of the collector so the tests check the collector's
 *  output against the format rather than against itself. Also used by the
 *  integration tests on the live /metrics endpoint.
 */
#ifndef ALYS_PROM_PARSE_H
#define ALYS_PROM_PARSE_H

#include <stddef.h>

typedef struct {
    int families;
    int samples;
    int histograms;
} prom_summary_t;

/* Validates text: HELP/TYPE syntax, each family declared once and before its
 * samples, sample names belonging to their family (histograms: _bucket with
 * le, _sum, _count), label syntax, values, buckets ascending and cumulative
 * with +Inf equal to _count. 0 and *out filled, or -1 with the first problem
 * (line number and what) in err. */
int prom_parse(const char *text, prom_summary_t *out, char *err, size_t errlen);

/* Value of the sample whose "name{labels}" text is exactly `series`
 * (e.g. `alys_actor_up{actor="storage"}`); -1 if absent, 0 if found. */
int prom_value(const char *text, const char *series, double *value);

#endif
