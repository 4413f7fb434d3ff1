/*  test_metrics_client.c: what common/metrics_client publishes for declared
 *  counters and for counters whose absolute count the caller keeps, read
 *  back over a real PUB/SUB pair as the supervisor's collector reads it.
 *  The publisher is an XPUB so the test waits for the subscription itself
 *  (a fact) before flushing, instead of sleeping. */
#include <criterion/criterion.h>
#include <string.h>

#include "bus.h"
#include "metrics_client.h"

#define MAX_SEEN 16
#define WAIT_MS  5000 /* upper bound for inproc delivery; passing is immediate */

typedef struct {
    char name[64];
    char labels[64];
    int kind;
    double value;
} seen_t;

static zsock_t *pub;
static zsock_t *sub;
static alys_metrics_t *m;

static void setup(void)
{
    pub = zsock_new(ZMQ_XPUB);
    cr_assert_not_null(pub);
    cr_assert_eq(zsock_bind(pub, "inproc://metrics-client-test"), 0);
    sub = zsock_new_sub(">inproc://metrics-client-test", "metric");
    cr_assert_not_null(sub);
    /* The subscription reaching the XPUB is the fact that makes a flush
     * arrive: wait for it. */
    zpoller_t *p = zpoller_new(pub, NULL);
    cr_assert_not_null(p);
    cr_assert_eq(zpoller_wait(p, WAIT_MS), pub, "subscription arrived");
    zframe_t *f = zframe_recv(pub);
    cr_assert_not_null(f);
    cr_assert_eq(zframe_data(f)[0], 1, "a subscribe, not an unsubscribe");
    zframe_destroy(&f);
    zpoller_destroy(&p);
    m = alys_metrics_new();
    cr_assert_not_null(m);
}

static void teardown(void)
{
    alys_metrics_destroy(&m);
    zsock_destroy(&sub);
    zsock_destroy(&pub);
}

TestSuite(metrics_client, .init = setup, .fini = teardown);

/* Flush and read back exactly the series flush says it sent (one message
 * each: no histograms here). Returns how many were read. */
static size_t flush_and_read(seen_t *seen, size_t max)
{
    int sent = alys_metrics_flush(m, pub);
    cr_assert_geq(sent, 0);
    cr_assert_leq((size_t) sent, max);
    zpoller_t *p = zpoller_new(sub, NULL);
    cr_assert_not_null(p);
    size_t n = 0;
    while (n < (size_t) sent) {
        cr_assert_eq(zpoller_wait(p, WAIT_MS), sub, "series %zu of %d arrived", n + 1, sent);
        char topic[32];
        alys_env_t *env = NULL;
        cr_assert_eq(alys_recv_topic(sub, topic, sizeof topic, &env), 0);
        cr_assert_eq(env->body_case, ALYS__BUS__ENVELOPE__BODY_METRIC);
        snprintf(seen[n].name, sizeof seen[n].name, "%s", env->metric->name);
        snprintf(seen[n].labels, sizeof seen[n].labels, "%s", env->metric->labels);
        seen[n].kind = env->metric->kind;
        seen[n].value = env->metric->value;
        alys_env_free(&env);
        n++;
    }
    zpoller_destroy(&p);
    return n;
}

static const seen_t *find(const seen_t *seen, size_t n, const char *name, const char *labels)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(seen[i].name, name) == 0 && strcmp(seen[i].labels, labels) == 0)
            return &seen[i];
    return NULL;
}

Test(metrics_client, declared_counters_are_published_at_zero_before_any_event)
{
    alys_metric_declare(m, "alys_x_errors_total", "error_type=\"a\"", "Errors");
    alys_metric_declare(m, "alys_x_errors_total", "error_type=\"b\"", "Errors");
    alys_metric_declare(m, "alys_x_recoveries_total", NULL, "Recoveries");
    seen_t seen[MAX_SEEN];
    size_t n = flush_and_read(seen, MAX_SEEN);
    cr_assert_eq(n, 3);
    const char *want[][2] = {{"alys_x_errors_total", "error_type=\"a\""},
                             {"alys_x_errors_total", "error_type=\"b\""},
                             {"alys_x_recoveries_total", ""}};
    for (size_t i = 0; i < 3; i++) {
        const seen_t *s = find(seen, n, want[i][0], want[i][1]);
        cr_assert_not_null(s, "%s{%s} published", want[i][0], want[i][1]);
        cr_expect_eq(s->value, 0);
        cr_expect_eq(s->kind, ALYS__CONTROL__METRIC__KIND__COUNTER);
    }
    /* The first event moves the declared series itself. */
    alys_metric_add(m, "alys_x_errors_total", "error_type=\"a\"", "Errors", 1);
    n = flush_and_read(seen, MAX_SEEN);
    const seen_t *a = find(seen, n, "alys_x_errors_total", "error_type=\"a\"");
    cr_assert_not_null(a);
    cr_expect_eq(a->value, 1);
}

Test(metrics_client, counter_set_publishes_zero_then_never_goes_down)
{
    alys_metric_counter_set(m, "alys_x_retries_total", NULL, "Retries", 0);
    seen_t seen[MAX_SEEN];
    size_t n = flush_and_read(seen, MAX_SEEN);
    const seen_t *s = find(seen, n, "alys_x_retries_total", "");
    cr_assert_not_null(s, "a counter set to 0 is published");
    cr_expect_eq(s->value, 0);
    cr_expect_eq(s->kind, ALYS__CONTROL__METRIC__KIND__COUNTER);

    alys_metric_counter_set(m, "alys_x_retries_total", NULL, "Retries", 5);
    alys_metric_counter_set(m, "alys_x_retries_total", NULL, "Retries", 3); /* ignored */
    cr_expect_eq(alys_metric_value(m, "alys_x_retries_total", NULL), 5);
    n = flush_and_read(seen, MAX_SEEN);
    s = find(seen, n, "alys_x_retries_total", "");
    cr_assert_not_null(s);
    cr_expect_eq(s->value, 5);
}

Test(metrics_client, has_tells_a_series_at_zero_from_one_never_made)
{
    bool is_counter = false;
    cr_expect_not(alys_metric_has(m, "alys_x_total", NULL, NULL));
    alys_metric_declare(m, "alys_x_total", NULL, "X");
    cr_expect(alys_metric_has(m, "alys_x_total", NULL, &is_counter));
    cr_expect(is_counter);
    alys_metric_set(m, "alys_x_level", NULL, "Level", 0);
    cr_expect(alys_metric_has(m, "alys_x_level", NULL, &is_counter));
    cr_expect_not(is_counter);
}
