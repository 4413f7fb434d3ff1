/*  metrics_client.h: an actor's local metric registry.
 *
 *  Actors keep their own counters, gauges and histograms here and publish a
 *  snapshot of what changed (every value absolute, op SET) on the event bus
 *  about once a second; the supervisor's collector serves them to Prometheus.
 *  Absolute values, not deltas, so a dropped PUB message loses nothing but
 *  freshness, and a restarted actor simply restarts its counters (Prometheus
 *  treats a counter reset as such).
 *
 *  Ownership: alys_metrics_new() returns a registry freed by
 *  alys_metrics_destroy(&m). Names, labels and help are copied.
 */
#ifndef ALYS_METRICS_CLIENT_H
#define ALYS_METRICS_CLIENT_H

#include <czmq.h>

typedef struct alys_metrics alys_metrics_t;

alys_metrics_t *alys_metrics_new(void);
void alys_metrics_destroy(alys_metrics_t **self_p);

/* labels: Prometheus label body without braces, e.g. "reason=\"bad_nonce\"", or NULL. */
void alys_metric_add(alys_metrics_t *self, const char *name, const char *labels, const char *help,
                     double delta); /* counter */
/* A counter exported at 0 from the start, before its first event, so that
 * dashboards and alerts (rate(), increase(), absent()) see it: call once per
 * known label value at start. Same as alys_metric_add(..., 0). */
void alys_metric_declare(alys_metrics_t *self, const char *name, const char *labels, const char *help);
/* A counter whose absolute count the caller keeps (events since start):
 * exported as a counter (name ends in _total), unlike a gauge. A value below
 * the last one is ignored: counters only go up within a process. */
void alys_metric_counter_set(alys_metrics_t *self, const char *name, const char *labels,
                             const char *help, double value);
void alys_metric_set(alys_metrics_t *self, const char *name, const char *labels, const char *help,
                     double value); /* gauge */
void alys_metric_observe(alys_metrics_t *self, const char *name, const char *labels,
                         const char *help, double value); /* histogram, seconds */
double alys_metric_value(alys_metrics_t *self, const char *name, const char *labels);
/* True when the series exists (declared or touched), whatever its value:
 * alys_metric_value() cannot tell a series at 0 from one never made.
 * *is_counter, when not NULL, says whether it is exported as a counter. */
bool alys_metric_has(alys_metrics_t *self, const char *name, const char *labels, bool *is_counter);

/* Publish every series changed since the last flush (topic "metric").
 * Returns the number of series sent, -1 on error. */
int alys_metrics_flush(alys_metrics_t *self, zsock_t *pub);

#endif
