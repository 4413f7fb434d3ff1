#include "metrics_client.h"

#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"

/* Histogram upper bounds in seconds: 100 us to 10 s covers a signature check
 * up to a stalled batch. */
static const double s_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define NBUCKETS (sizeof s_buckets / sizeof s_buckets[0])

typedef struct {
    char *name;
    char *labels;
    char *help;
    int kind;     /* ALYS__CONTROL__METRIC__KIND__* */
    double value; /* counter/gauge */
    double sum;   /* histogram */
    uint64_t count;
    uint64_t bucket[NBUCKETS]; /* cumulative at flush, per-bucket here */
    bool dirty;
} series_t;

struct alys_metrics {
    zlistx_t *series; /* of series_t*; a handful per actor: linear scan is fine */
    uint64_t flushes;
};

static void series_destroy(void **item)
{
    series_t *s = *item;
    if (s) {
        free(s->name);
        free(s->labels);
        free(s->help);
        free(s);
        *item = NULL;
    }
}

alys_metrics_t *alys_metrics_new(void)
{
    alys_metrics_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->series = zlistx_new();
    if (!self->series) {
        free(self);
        return NULL;
    }
    zlistx_set_destructor(self->series, series_destroy);
    return self;
}

void alys_metrics_destroy(alys_metrics_t **self_p)
{
    if (self_p && *self_p) {
        zlistx_destroy(&(*self_p)->series);
        free(*self_p);
        *self_p = NULL;
    }
}

static series_t *lookup(alys_metrics_t *self, const char *name, const char *labels,
                        const char *help, int kind)
{
    labels = labels ? labels : "";
    for (series_t *s = zlistx_first(self->series); s; s = zlistx_next(self->series))
        if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
            return s;
    series_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->name = strdup(name);
    s->labels = strdup(labels);
    s->help = strdup(help ? help : "");
    s->kind = kind;
    if (!s->name || !s->labels || !s->help || !zlistx_add_end(self->series, s)) {
        void *p = s;
        series_destroy(&p);
        return NULL;
    }
    return s;
}

void alys_metric_add(alys_metrics_t *self, const char *name, const char *labels, const char *help,
                     double delta)
{
    series_t *s = lookup(self, name, labels, help, ALYS__CONTROL__METRIC__KIND__COUNTER);
    if (s) {
        s->value += delta;
        s->dirty = true;
    }
}

void alys_metric_declare(alys_metrics_t *self, const char *name, const char *labels, const char *help)
{
    alys_metric_add(self, name, labels, help, 0);
}

void alys_metric_counter_set(alys_metrics_t *self, const char *name, const char *labels,
                             const char *help, double value)
{
    series_t *s = lookup(self, name, labels, help, ALYS__CONTROL__METRIC__KIND__COUNTER);
    if (s && (value > s->value || s->count == 0)) {
        if (value > s->value)
            s->value = value;
        s->count = 1; /* marks "has been set" so a first 0 is still sent */
        s->dirty = true;
    }
}

void alys_metric_set(alys_metrics_t *self, const char *name, const char *labels, const char *help,
                     double value)
{
    series_t *s = lookup(self, name, labels, help, ALYS__CONTROL__METRIC__KIND__GAUGE);
    if (s && (s->value != value || s->count == 0)) {
        s->value = value;
        s->count = 1; /* marks "has been set" so a 0 is still sent once */
        s->dirty = true;
    }
}

void alys_metric_observe(alys_metrics_t *self, const char *name, const char *labels,
                         const char *help, double value)
{
    series_t *s = lookup(self, name, labels, help, ALYS__CONTROL__METRIC__KIND__HISTOGRAM);
    if (!s)
        return;
    s->sum += value;
    s->count++;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (value <= s_buckets[i]) {
            s->bucket[i]++;
            break;
        }
    s->dirty = true;
}

bool alys_metric_has(alys_metrics_t *self, const char *name, const char *labels, bool *is_counter)
{
    labels = labels ? labels : "";
    for (series_t *s = zlistx_first(self->series); s; s = zlistx_next(self->series))
        if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0) {
            if (is_counter)
                *is_counter = s->kind == ALYS__CONTROL__METRIC__KIND__COUNTER;
            return true;
        }
    return false;
}

double alys_metric_value(alys_metrics_t *self, const char *name, const char *labels)
{
    labels = labels ? labels : "";
    for (series_t *s = zlistx_first(self->series); s; s = zlistx_next(self->series))
        if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
            return s->kind == ALYS__CONTROL__METRIC__KIND__HISTOGRAM ? (double) s->count : s->value;
    return 0;
}

static int send_one(zsock_t *pub, const char *name, const char *labels, const char *help,
                    int kind, double value)
{
    Alys__Control__Metric m = ALYS__CONTROL__METRIC__INIT;
    m.name = (char *) name;
    m.labels = (char *) labels;
    m.help = (char *) help;
    m.kind = kind;
    m.op = ALYS__CONTROL__METRIC__OP__SET;
    m.value = value;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_METRIC;
    env.metric = &m;
    return alys_publish(pub, "metric", &env);
}

static int flush_histogram(zsock_t *pub, series_t *s)
{
    char name[160], labels[512];
    uint64_t cumulative = 0;
    snprintf(name, sizeof name, "%s_bucket", s->name);
    for (size_t i = 0; i <= NBUCKETS; i++) {
        char le[32];
        if (i < NBUCKETS) {
            cumulative += s->bucket[i];
            snprintf(le, sizeof le, "%g", s_buckets[i]);
        } else {
            snprintf(le, sizeof le, "+Inf");
        }
        snprintf(labels, sizeof labels, "%s%sle=\"%s\"", s->labels, *s->labels ? "," : "", le);
        double v = i < NBUCKETS ? (double) cumulative : (double) s->count;
        if (send_one(pub, name, labels, s->help, s->kind, v) != 0)
            return -1;
    }
    snprintf(name, sizeof name, "%s_sum", s->name);
    if (send_one(pub, name, s->labels, s->help, s->kind, s->sum) != 0)
        return -1;
    snprintf(name, sizeof name, "%s_count", s->name);
    return send_one(pub, name, s->labels, s->help, s->kind, (double) s->count);
}

int alys_metrics_flush(alys_metrics_t *self, zsock_t *pub)
{
    int sent = 0;
    /* Every 5th flush resends everything: PUB drops while its connection is
     * being (re)made, and an unchanged series would otherwise never arrive. */
    bool all = (self->flushes++ % 5) == 0;
    for (series_t *s = zlistx_first(self->series); s; s = zlistx_next(self->series)) {
        if (!s->dirty && !all)
            continue;
        int rc = s->kind == ALYS__CONTROL__METRIC__KIND__HISTOGRAM
                     ? flush_histogram(pub, s)
                     : send_one(pub, s->name, s->labels, s->help, s->kind, s->value);
        if (rc != 0)
            return -1;
        s->dirty = false;
        sent++;
    }
    return sent;
}
