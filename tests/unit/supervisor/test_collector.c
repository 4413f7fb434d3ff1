/*  Collector: store, actor labels, refusals, and Prometheus text that an
 *  independent parser (prom_parse.c) reads back.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "bus.h"
#include "collector.h"
#include "metrics_client.h"
#include "prom_parse.h"

static collector_t *col;
static char err[256];

static void setup(void)
{
    col = collector_new();
    cr_assert_not_null(col);
}
static void teardown(void)
{
    collector_destroy(&col);
}

TestSuite(collector, .init = setup, .fini = teardown);

static char *render_and_parse(prom_summary_t *sum)
{
    char *text = collector_render(col);
    cr_assert_not_null(text);
    char perr[256];
    cr_assert_eq(prom_parse(text, sum, perr, sizeof perr), 0, "%s\n---\n%s", perr, text);
    return text;
}

Test(collector, renders_counters_and_gauges_that_parse_back)
{
    cr_assert_eq(collector_push(col, "sync", "alys_sync_current_height", "", COLLECTOR_GAUGE,
                                "Local head height", 1234, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(collector_push(col, "peer_manager", "alys_peer_requests_total", "peer=\"p1\"",
                                COLLECTOR_COUNTER, "Requests sent", 7, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(collector_push(col, "peer_manager", "alys_peer_requests_total", "peer=\"p2\"",
                                COLLECTOR_COUNTER, "Requests sent", 0.5, err, sizeof err),
                 0, "%s", err);
    /* A newer value replaces the old one. */
    cr_assert_eq(collector_push(col, "sync", "alys_sync_current_height", "", COLLECTOR_GAUGE,
                                "Local head height", 1300, err, sizeof err),
                 0);
    prom_summary_t sum;
    char *text = render_and_parse(&sum);
    cr_assert_eq(sum.families, 2);
    cr_assert_eq(sum.samples, 3);
    double v;
    cr_assert_eq(prom_value(text, "alys_sync_current_height{actor=\"sync\"}", &v), 0, "%s", text);
    cr_assert_eq(v, 1300);
    cr_assert_eq(prom_value(text, "alys_peer_requests_total{actor=\"peer_manager\",peer=\"p2\"}", &v),
                 0);
    cr_assert_eq(v, 0.5);
    cr_assert(strstr(text, "# HELP alys_sync_current_height Local head height\n"));
    cr_assert(strstr(text, "# TYPE alys_peer_requests_total counter\n"));
    free(text);
}

Test(collector, keeps_an_actor_label_the_sender_already_set)
{
    cr_assert_eq(collector_push(col, "supervisor", "alys_thing", "actor=\"storage\",x=\"1\"",
                                COLLECTOR_GAUGE, "", 1, err, sizeof err),
                 0);
    char *text = collector_render(col);
    cr_assert(strstr(text, "alys_thing{actor=\"storage\",x=\"1\"} 1\n"), "%s", text);
    cr_assert_null(strstr(text, "actor=\"supervisor\""));
    /* A label merely ending in "actor" is not the actor label. */
    cr_assert_eq(collector_push(col, "sync", "alys_other", "factor=\"2\"", COLLECTOR_GAUGE, "", 1,
                                err, sizeof err),
                 0);
    free(text);
    text = collector_render(col);
    cr_assert(strstr(text, "alys_other{actor=\"sync\",factor=\"2\"} 1\n"), "%s", text);
    free(text);
}

Test(collector, renders_histograms_as_bucket_sum_count_in_le_order)
{
    /* Pushed out of order, as a PUB stream may deliver them. */
    const char *les[] = {"+Inf", "0.1", "0.001", "1", "0.01"};
    double counts[] = {10, 7, 1, 9, 4};
    for (int i = 0; i < 5; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "stage=\"sig\",le=\"%s\"", les[i]);
        cr_assert_eq(collector_push(col, "validator-1", "alys_check_seconds_bucket", labels,
                                    COLLECTOR_HISTOGRAM, "Check time", counts[i], err, sizeof err),
                     0, "%s", err);
    }
    cr_assert_eq(collector_push(col, "validator-1", "alys_check_seconds_count", "stage=\"sig\"",
                                COLLECTOR_HISTOGRAM, "Check time", 10, err, sizeof err),
                 0);
    cr_assert_eq(collector_push(col, "validator-1", "alys_check_seconds_sum", "stage=\"sig\"",
                                COLLECTOR_HISTOGRAM, "Check time", 2.25, err, sizeof err),
                 0);
    prom_summary_t sum;
    char *text = render_and_parse(&sum);
    cr_assert_eq(sum.histograms, 1);
    cr_assert_eq(sum.families, 1, "one family, not three: %s", text);
    cr_assert(strstr(text, "# TYPE alys_check_seconds histogram\n"), "%s", text);
    const char *expect =
        "alys_check_seconds_bucket{actor=\"validator-1\",stage=\"sig\",le=\"0.001\"} 1\n"
        "alys_check_seconds_bucket{actor=\"validator-1\",stage=\"sig\",le=\"0.01\"} 4\n"
        "alys_check_seconds_bucket{actor=\"validator-1\",stage=\"sig\",le=\"0.1\"} 7\n"
        "alys_check_seconds_bucket{actor=\"validator-1\",stage=\"sig\",le=\"1\"} 9\n"
        "alys_check_seconds_bucket{actor=\"validator-1\",stage=\"sig\",le=\"+Inf\"} 10\n"
        "alys_check_seconds_sum{actor=\"validator-1\",stage=\"sig\"} 2.25\n"
        "alys_check_seconds_count{actor=\"validator-1\",stage=\"sig\"} 10\n";
    cr_assert(strstr(text, expect), "got:\n%s", text);
    free(text);
}

Test(collector, the_parser_rejects_broken_text)
{
    prom_summary_t sum;
    char e[256];
    cr_assert_eq(prom_parse("# TYPE a gauge\na 1\n", &sum, e, sizeof e), 0, "%s", e);
    cr_assert_eq(prom_parse("a 1\n", &sum, e, sizeof e), -1, "sample before TYPE");
    cr_assert_eq(prom_parse("# TYPE a gauge\na{x=\"1\" 1\n", &sum, e, sizeof e), -1);
    cr_assert_eq(prom_parse("# TYPE a gauge\nb 1\n", &sum, e, sizeof e), -1);
    cr_assert_eq(prom_parse("# TYPE a gauge\n# TYPE a gauge\n", &sum, e, sizeof e), -1);
    cr_assert_eq(prom_parse("# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"0.5\"} 6\n",
                            &sum, e, sizeof e),
                 -1, "descending le");
    cr_assert_eq(prom_parse("# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 6\n"
                            "h_count 7\n",
                            &sum, e, sizeof e),
                 -1, "count != +Inf bucket");
    cr_assert_eq(prom_parse("# TYPE a gauge\na x\n", &sum, e, sizeof e), -1, "bad value");
}

Test(collector, refuses_what_would_break_the_exposition)
{
    cr_assert_eq(collector_push(col, "sync", "9bad", "", COLLECTOR_GAUGE, "", 1, err, sizeof err), -1);
    cr_assert_eq(collector_push(col, "sync", "bad-name", "", COLLECTOR_GAUGE, "", 1, err, sizeof err),
                 -1);
    cr_assert_eq(collector_push(col, "sync", "ok", "x=1", COLLECTOR_GAUGE, "", 1, err, sizeof err),
                 -1);
    cr_assert_eq(collector_push(col, "sync", "ok", "x=\"a\nb\"", COLLECTOR_GAUGE, "", 1, err,
                                sizeof err),
                 -1);
    cr_assert_eq(collector_push(col, "sync", "ok", "x=\"1\",", COLLECTOR_GAUGE, "", 1, err, sizeof err),
                 -1);
    cr_assert_eq(collector_push(col, "sync", "h_total", "", COLLECTOR_HISTOGRAM, "", 1, err, sizeof err),
                 -1);
    cr_assert_eq(collector_push(col, "sync", "h_bucket", "", COLLECTOR_HISTOGRAM, "", 1, err,
                                sizeof err),
                 -1, "bucket without le");
    cr_assert_eq(collector_push(col, "sync", "ok", "", (collector_kind_t) 7, "", 1, err, sizeof err),
                 -1);
    cr_assert_eq(collector_push(col, "bad\"sender", "ok", "", COLLECTOR_GAUGE, "", 1, err, sizeof err),
                 -1);
    /* One type per family. */
    cr_assert_eq(collector_push(col, "sync", "same", "", COLLECTOR_GAUGE, "", 1, err, sizeof err), 0);
    cr_assert_eq(collector_push(col, "storage", "same", "", COLLECTOR_COUNTER, "", 1, err, sizeof err),
                 -1);
    cr_assert_eq(collector_dropped(col), 10);
    cr_assert_eq(collector_size(col), 1);
    prom_summary_t sum;
    free(render_and_parse(&sum));
}

Test(collector, escapes_help_and_formats_special_values)
{
    collector_set(col, "alys_weird", "actor=\"x\"", COLLECTOR_GAUGE, "back\\slash\nnewline", NAN);
    collector_set(col, "alys_inf", "", COLLECTOR_GAUGE, "", INFINITY);
    collector_set(col, "alys_big", "", COLLECTOR_GAUGE, "", 1e20);
    prom_summary_t sum;
    char *text = render_and_parse(&sum);
    cr_assert(strstr(text, "# HELP alys_weird back\\\\slash\\nnewline\n"), "%s", text);
    cr_assert(strstr(text, "alys_weird{actor=\"x\"} NaN\n"));
    cr_assert(strstr(text, "alys_inf +Inf\n"));
    cr_assert(strstr(text, "alys_big 1e+20\n"), "%s", text);
    free(text);
}

Test(collector, remove_and_forget_drop_an_actors_series)
{
    collector_set(col, "alys_actor_last_exit", "actor=\"storage\",reason=\"exit 1\"",
                  COLLECTOR_GAUGE, "", 1);
    collector_set(col, "alys_actor_last_exit", "actor=\"sync\",reason=\"exit 2\"",
                  COLLECTOR_GAUGE, "", 1);
    collector_remove(col, "alys_actor_last_exit", "storage");
    collector_set(col, "alys_actor_last_exit", "actor=\"storage\",reason=\"signal 9 (Killed)\"",
                  COLLECTOR_GAUGE, "", 1);
    char *text = collector_render(col);
    cr_assert_null(strstr(text, "reason=\"exit 1\""), "old reason replaced: %s", text);
    cr_assert(strstr(text, "reason=\"signal 9 (Killed)\""));
    free(text);
    collector_push(col, "validator-ext-9", "alys_x", "", COLLECTOR_GAUGE, "", 1, err, sizeof err);
    collector_set(col, "alys_actor_up", "actor=\"validator-ext-9\"", COLLECTOR_GAUGE, "", 1);
    cr_assert_eq(collector_size(col), 4);
    collector_forget(col, "validator-ext-9");
    cr_assert_eq(collector_size(col), 2);
    prom_summary_t sum;
    free(render_and_parse(&sum));
}

/* The real client's snapshots, over a real PUB/SUB pair, as the supervisor
 * receives them: proves the two ends agree on names, kinds and labels. */
Test(collector, accepts_what_metrics_client_publishes)
{
    zsock_t *pub = zsock_new(ZMQ_PUB);
    cr_assert_not_null(pub);
    cr_assert_eq(zsock_bind(pub, "inproc://metrics-test"), 0);
    zsock_t *sub = zsock_new_sub(">inproc://metrics-test", "metric");
    cr_assert_not_null(sub);
    zclock_sleep(50); /* let the subscription reach the PUB */
    alys_bus_set_name("block_processor");
    alys_metrics_t *m = alys_metrics_new();
    alys_metric_add(m, "alys_blocks_total", "result=\"ok\"", "Blocks processed", 3);
    alys_metric_set(m, "alys_queue_depth", NULL, "Queue depth", 12);
    alys_metric_observe(m, "alys_batch_seconds", NULL, "Batch time", 0.003);
    alys_metric_observe(m, "alys_batch_seconds", NULL, "Batch time", 0.2);
    int sent = alys_metrics_flush(m, pub);
    cr_assert_eq(sent, 3);
    int got = 0;
    zpoller_t *poller = zpoller_new(sub, NULL);
    while (zpoller_wait(poller, 500)) {
        char topic[32];
        alys_env_t *env = NULL;
        if (alys_recv_topic(sub, topic, sizeof topic, &env) != 0)
            continue;
        cr_assert_eq(env->body_case, ALYS__BUS__ENVELOPE__BODY_METRIC);
        Alys__Control__Metric *mm = env->metric;
        cr_assert_eq(collector_push(col, env->sender, mm->name, mm->labels,
                                    (collector_kind_t) mm->kind, mm->help, mm->value, err, sizeof err),
                     0, "%s: %s", mm->name, err);
        alys_env_free(&env);
        got++;
    }
    cr_assert_gt(got, 3);
    prom_summary_t sum;
    char *text = render_and_parse(&sum);
    cr_assert_eq(sum.histograms, 1, "%s", text);
    double v;
    cr_assert_eq(prom_value(text, "alys_batch_seconds_count{actor=\"block_processor\"}", &v), 0,
                 "%s", text);
    cr_assert_eq(v, 2);
    cr_assert_eq(prom_value(text, "alys_blocks_total{actor=\"block_processor\",result=\"ok\"}", &v),
                 0);
    cr_assert_eq(v, 3);
    free(text);
    zpoller_destroy(&poller);
    alys_metrics_destroy(&m);
    zsock_destroy(&pub);
    zsock_destroy(&sub);
}
