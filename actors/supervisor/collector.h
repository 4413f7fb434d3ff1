/*  collector.h: the node's metrics store and its Prometheus text rendering.
 *
 *  Actors publish Metric messages (absolute values, op SET) on the event bus;
 *  the supervisor feeds each one in with the sender's name. The store keeps
 *  the latest value per (name, labels) and renders the Prometheus text
 *  exposition format 0.0.4: one # HELP and # TYPE per family, histograms
 *  (series name_bucket/_sum/_count sent with kind HISTOGRAM) grouped under
 *  their family name with buckets in ascending `le` order.
 *
 *  Everything that arrives from outside is checked before it is stored (name
 *  and label syntax, lengths, a cap on the number of series, one kind per
 *  family), so a bad publisher can not make /metrics unparsable or unbounded.
 *
 *  Thread safety: every function takes the store's mutex, so the HTTP thread
 *  renders while the supervisor's loop pushes.
 *
 *  Ownership: collector_new returns a store freed by collector_destroy(&self).
 *  collector_render returns a malloc'ed string the caller frees.
 */
#ifndef ALYS_COLLECTOR_H
#define ALYS_COLLECTOR_H

#include <stddef.h>
#include <stdint.h>

#define COLLECTOR_MAX_SERIES 20000
#define COLLECTOR_NAME_MAX   128
#define COLLECTOR_LABELS_MAX 512
#define COLLECTOR_HELP_MAX   256

typedef enum {
    COLLECTOR_COUNTER = 0, /* same numbering as alys.control.Metric.Kind */
    COLLECTOR_GAUGE = 1,
    COLLECTOR_HISTOGRAM = 2,
} collector_kind_t;

typedef struct collector collector_t;

collector_t *collector_new(void);
void collector_destroy(collector_t **self_p);

/* A sample pushed by actor `sender`: labels is the body without braces
 * (e.g. `peer="p1"` or ""). An actor="<sender>" label is put first unless the
 * labels already carry an actor label. Returns 0, or -1 (with the reason in
 * err) when the sample is refused. */
int collector_push(collector_t *self, const char *sender, const char *name, const char *labels,
                   collector_kind_t kind, const char *help, double value, char *err, size_t errlen);

/* A series of the collector's owner, labels taken as they are (the caller
 * includes actor=...). Returns 0 or -1. */
int collector_set(collector_t *self, const char *name, const char *labels, collector_kind_t kind,
                  const char *help, double value);

/* Drop every series of family `name` whose actor label is `actor` (an
 * info-style gauge whose reason label changed). */
void collector_remove(collector_t *self, const char *name, const char *actor);
/* Drop every series pushed by or about `actor` (an external actor left). */
void collector_forget(collector_t *self, const char *actor);

size_t collector_size(collector_t *self);
uint64_t collector_dropped(collector_t *self); /* refused pushes */

/* The exposition text; NULL on allocation failure. Caller frees. */
char *collector_render(collector_t *self);

/* Validation used by the store, public for tests and tools. */
int collector_valid_name(const char *name);
/* Parse a label body; returns the number of labels or -1 if malformed.
 * has_actor is set when one of them is `actor`. */
int collector_parse_labels(const char *labels, int *has_actor);

#endif
