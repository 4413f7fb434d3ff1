/*  alysctl monitor [--metrics] [--fields] [--count N]: follow the event bus.
 *
 *  SUBscribes to the supervisor's event proxy (ep_events) and prints a line
 *  per event, e.g.
 *    12:00:01.234 lifecycle storage exited signal 9 (Killed)
 *    12:00:01.236 zmq storage accepted mailbox ipc:///run/alys-sync/storage.sock
 *  Metric snapshots (topic "metric") are skipped unless --metrics; --fields
 *  appends an event's key=value fields; --count N exits after N lines.
 *  Runs until Ctrl-C otherwise.
 */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alysctl.h"
#include "bus.h"

typedef struct {
    bool metrics;
    bool fields;
    long count; /* 0 = forever */
} monitor_opts_t;

static int parse_opts(int argc, char **argv, monitor_opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--metrics") == 0)
            o->metrics = true;
        else if (strcmp(argv[i], "--fields") == 0)
            o->fields = true;
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            char *end;
            o->count = strtol(argv[++i], &end, 10);
            if (*end || o->count <= 0)
                return -1;
        } else
            return -1;
    }
    return 0;
}

/* Local wall-clock time of day with milliseconds. */
static void format_time(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t) (ms / 1000);
    struct tm tm;
    localtime_r(&secs, &tm);
    snprintf(buf, len, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (ms % 1000));
}

static const char *str(const char *s)
{
    return s && *s ? s : "-";
}

static void print_event(const char *topic, const Alys__Control__Event *ev, bool fields)
{
    char when[32];
    format_time(ev->time_ms, when, sizeof when);
    printf("%s %s %s %s", when, topic, str(ev->actor), str(ev->kind));
    if (ev->detail && *ev->detail)
        printf(" %s", ev->detail);
    for (size_t i = 0; fields && i < ev->n_fields; i++)
        printf(" %s=%s", str(ev->fields[i]->key), ev->fields[i]->value ? ev->fields[i]->value : "");
    printf("\n");
}

static void print_metric(const alys_env_t *env)
{
    char when[32];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    format_time((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000, when, sizeof when);
    const Alys__Control__Metric *m = env->metric;
    bool labels = m->labels && *m->labels;
    printf("%s metric %s %s%s%s%s %.17g\n", when, str(env->sender), str(m->name),
           labels ? "{" : "", labels ? m->labels : "", labels ? "}" : "", m->value);
}

/* Print one message; returns 1 if a line was printed. */
static int show(const char *topic, const alys_env_t *env, const monitor_opts_t *o)
{
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_METRIC) {
        if (!o->metrics)
            return 0;
        print_metric(env);
        return 1;
    }
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_EVENT) {
        print_event(topic, env->event, o->fields);
        return 1;
    }
    printf("%s %s %s\n", topic, str(env->sender), alys_env_body_name(env));
    return 1;
}

int alysctl_monitor(const alys_config_t *cfg, int argc, char **argv)
{
    monitor_opts_t o = {0};
    if (parse_opts(argc, argv, &o) != 0) {
        return alysctl_bad_args("monitor", argc, argv);
    }
    /* Lines must reach a pipe or file as they happen, not at exit. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Subscribe to everything: "metric" is filtered here, so that --metrics
     * needs no second subscription. */
    zsock_t *sub = alys_sub_connect(cfg->ep_events, "");
    zpoller_t *poller = sub ? zpoller_new(sub, NULL) : NULL;
    if (!poller) {
        fprintf(stderr, "alysctl: cannot subscribe to %s\n", cfg->ep_events);
        zsock_destroy(&sub);
        return 1;
    }
    long printed = 0;
    while (!o.count || printed < o.count) {
        if (!zpoller_wait(poller, -1))
            break; /* Ctrl-C */
        char topic[64];
        alys_env_t *env = NULL;
        int rc = alys_recv_topic(sub, topic, sizeof topic, &env);
        if (rc < 0)
            break;
        if (rc == 0)
            printed += show(topic, env, &o);
        alys_env_free(&env);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&sub);
    return 0;
}
