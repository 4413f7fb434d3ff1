/*  Supervisor, with real processes: every actor restarted after SIGKILL, a
 *  hung (SIGSTOPped) actor detected and restarted, a crash loop hitting the
 *  intensity limit, clean SIGTERM shutdown in reverse order, nothing left
 *  after SIGKILL of the supervisor, the metrics endpoint, alysctl monitor and
 *  status, and a validator started by hand.
 *
 *  Timing is shortened in the node's config (heartbeats every 100 ms, hung
 *  after 2 s) so the whole program runs in well under two minutes. Every
 *  wait is "eventually within T", T from that config (it_budget_ms); the
 *  only timing assertion is a lower bound (not hung before the timeout).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "prom_parse.h"

/* Names the design seed fixed that promtool's lint dislikes: its lines about
 * them are allowed. alys_sync_peer_count is a gauge whose "_count" suffix
 * promtool reserves for histograms and summaries. */
static const char *const s_seed_fixed[] = {"alys_sync_peer_count "};

static it_node_t node;

static const char *const s_timing[] = {
    "heartbeat_interval_ms = 100", "heartbeat_timeout_ms = 2000",  "start_timeout_ms = 5000",
    "restart_backoff_min_ms = 50", "restart_backoff_max_ms = 500", "max_restarts = 5",
    "restart_window_secs = 10",    "shutdown_timeout_ms = 2000",   NULL,
};

static const char *s_actors[] = {"storage", "peer_manager", "block_processor",
                                 "sync",    "validator-1",  "validator-2"};
#define NACTORS 6

static void cleanup(void)
{
    it_node_cleanup(&node);
}

/* The real actor binaries, or a clear failure naming the missing ones. */
static void require_actors(void)
{
    const char *missing = it_missing_actors(&node);
    cr_assert_str_empty(missing, "actor binaries not built: %s", missing);
}

/* A node with the test timing, started and fully ready. */
static json_t *start_node(void)
{
    cr_assert_eq(it_node_init(&node, s_timing), 0, "node set-up failed");
    require_actors();
    cr_assert_eq(it_node_start(&node), 0);
    json_t *st = it_wait_all_ready(&node, it_budget_ms(&node, IT_READY, 0));
    if (!st) {
        char *log = it_read_file(node.log);
        cr_assert_fail("not every actor became ready; supervisor log:\n%s", log ? log : "(none)");
    }
    cr_assert_eq(json_array_size(json_object_get(st, "actors")), NACTORS);
    return st;
}

static pid_t pid_of(json_t *st, const char *name)
{
    json_t *a = it_actor(st, name);
    cr_assert_not_null(a, "%s not in status", name);
    return (pid_t) json_integer_value(json_object_get(a, "pid"));
}

static int restarts_of(json_t *st, const char *name)
{
    return (int) json_integer_value(json_object_get(it_actor(st, name), "restarts"));
}

/* "restarting NAME in" lines of a log. */
static int restarts_of_log(const char *log, const char *name)
{
    char needle[96];
    snprintf(needle, sizeof needle, "restarting %s in ", name);
    int n = 0;
    for (const char *p = strstr(log, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static bool wait_dead(pid_t pid, int timeout_ms)
{
    int64_t end = it_now_ms() + timeout_ms;
    while (it_pid_alive(pid)) {
        if (it_now_ms() > end)
            return false;
        it_sleep_ms(10);
    }
    return true;
}

/* The pid of name's warm standby: a child of the supervisor started with
 * "--name NAME" and "--standby", other than skip (an activated standby keeps
 * its command line); 0 if there is none. */
static pid_t standby_of(pid_t sup, const char *name, pid_t skip)
{
    DIR *d = opendir("/proc");
    cr_assert_not_null(d);
    pid_t found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        pid_t pid = (pid_t) atoi(e->d_name);
        char path[64], buf[4096];
        if (pid <= 1 || pid == skip)
            continue;
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "r");
        int ppid = 0;
        if (!f)
            continue;
        /* "pid (comm) state ppid": comm is the binary's name, no spaces. */
        int ok = fscanf(f, "%*d %*s %*c %d", &ppid);
        fclose(f);
        if (ok != 1 || ppid != sup)
            continue;
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int) pid);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        bool standby = false, named = false;
        for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t) strlen(buf + i) + 1) {
            buf[n] = '\0';
            standby = standby || strcmp(buf + i, "--standby") == 0;
            named = named ||
                    (strcmp(buf + i, "--name") == 0 && i + 7 < n && strcmp(buf + i + 7, name) == 0);
        }
        if (standby && named)
            found = pid;
    }
    closedir(d);
    return found;
}

/* name's standby, waited for (it is spawned once name is ready). */
static pid_t wait_standby(const char *name, pid_t skip)
{
    int64_t end = it_now_ms() + it_budget_ms(&node, IT_RESTART, 0);
    pid_t pid;
    while ((pid = standby_of(node.supervisor, name, skip)) == 0 && it_now_ms() < end)
        it_sleep_ms(20);
    return pid;
}

TestSuite(supervisor, .fini = cleanup, .timeout = 120);

Test(supervisor, every_actor_killed_with_sigkill_is_restarted)
{
    json_t *st = start_node();
    for (int i = 0; i < NACTORS; i++) {
        const char *name = s_actors[i];
        pid_t old = pid_of(st, name);
        int restarts = restarts_of(st, name);
        cr_assert_gt(old, 1);
        cr_assert_eq(kill(old, SIGKILL), 0);
        json_decref(st);
        st = it_wait_restarted(&node, name, old, restarts + 1, it_budget_ms(&node, IT_RESTART, 0));
        cr_assert_not_null(st, "%s was not restarted", name);
        cr_assert_neq(pid_of(st, name), old, "%s has a new pid", name);
        cr_assert_eq(restarts_of(st, name), restarts + 1, "%s restarts +1", name);
        cr_assert(wait_dead(old, it_budget_ms(&node, IT_RESTART, 0)), "old %s process %d is gone",
                  name, (int) old);
        cr_assert_str_eq(json_string_value(json_object_get(it_actor(st, name), "last_exit")),
                         "signal 9 (Killed)");
    }
    /* One_for_one: the others kept their single restart. */
    for (int i = 0; i < NACTORS; i++)
        cr_assert_eq(restarts_of(st, s_actors[i]), 1, "%s", s_actors[i]);
    json_decref(st);
    char *log = it_read_file(node.log);
    cr_assert(strstr(log, "storage (pid") && strstr(log, "exited: signal 9 (Killed)"),
              "deaths are logged with their signal");
    free(log);
}

Test(supervisor, a_hung_actor_is_detected_and_restarted)
{
    json_t *st = start_node();
    const char *name = "block_processor";
    pid_t old = pid_of(st, name);
    json_decref(st);
    long long hb = it_cfg_int(&node, "heartbeat_timeout_ms");
    int64_t stopped_at = it_now_ms();
    cr_assert_eq(kill(old, SIGSTOP), 0);
    st = it_wait_restarted(&node, name, old, 1, it_budget_ms(&node, IT_RESTART, 0));
    cr_assert_not_null(st, "a SIGSTOPped %s was not restarted", name);
    int64_t took = it_now_ms() - stopped_at;
    /* A lower bound only: the last Pong may have come up to one heartbeat
     * interval before the SIGSTOP. */
    long long least = hb - it_cfg_int(&node, "heartbeat_interval_ms");
    cr_assert_geq(took, least, "declared hung after %lld ms, before the %lld ms heartbeat timeout",
                  (long long) took, hb);
    cr_assert(wait_dead(old, it_budget_ms(&node, IT_RESTART, 0)), "the hung process was killed");
    cr_assert_str_eq(json_string_value(json_object_get(it_actor(st, name), "last_exit")),
                     "hung: signal 9 (Killed)");
    json_decref(st);
}

/* Issue 7: a supervisor stopped for longer than heartbeat_timeout_ms (here
 * 2 s; a SIGSTOP stands for a VM pause) used to kill every actor as hung on
 * resume. The length of the pause is the fault itself, not a wait. */
Test(supervisor, a_paused_supervisor_kills_nobody_on_resume)
{
    json_t *st = start_node();
    pid_t before[NACTORS];
    for (int i = 0; i < NACTORS; i++)
        before[i] = pid_of(st, s_actors[i]);
    json_decref(st);
    cr_assert_eq(kill(node.supervisor, SIGSTOP), 0);
    it_sleep_ms(3500);
    cr_assert_eq(kill(node.supervisor, SIGCONT), 0);
    cr_assert(it_wait_file_contains(node.log, "the supervisor did not run for", 10000),
              "the supervisor noticed its own pause");
    /* A status round trip goes through the loop after the resume tick. */
    st = it_wait_all_ready(&node, 10000);
    cr_assert_not_null(st, "every actor still ready after the pause");
    for (int i = 0; i < NACTORS; i++) {
        cr_assert_eq(pid_of(st, s_actors[i]), before[i], "%s kept its process", s_actors[i]);
        cr_assert_eq(restarts_of(st, s_actors[i]), 0, "%s not restarted", s_actors[i]);
    }
    json_decref(st);
    char *log = it_read_file(node.log);
    cr_assert_null(strstr(log, "is hung"), "nobody declared hung:\n%s", log);
    free(log);
}

Test(supervisor, an_actor_dying_at_start_hits_the_intensity_limit)
{
    /* A real failure: storage cannot bind its mailbox in a missing folder. */
    char bad[200];
    snprintf(bad, sizeof bad, "storage = \"ipc:///tmp/alys-it-no-such-dir-%d/storage.sock\"",
             (int) getpid());
    const char *overrides[] = {"max_restarts = 3",
                               "restart_window_secs = 30",
                               "restart_backoff_min_ms = 20",
                               "restart_backoff_max_ms = 100",
                               bad,
                               NULL};
    cr_assert_eq(it_node_init(&node, overrides), 0);
    require_actors();
    cr_assert_eq(it_node_start(&node), 0);
    int status = it_wait_exit(node.supervisor, it_budget_ms(&node, IT_GIVE_UP, 0));
    cr_assert_neq(status, -1, "the supervisor did not give up");
    node.supervisor = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0, "exit status %d", status);
    char *log = it_read_file(node.log);
    cr_assert(strstr(log, "alys-supervisor: giving up on storage: more than 3 restarts within 30 s"),
              "message naming the actor:\n%s", log);
    cr_assert(strstr(log, "last exits: exit"), "last exit reasons given:\n%s", log);
    cr_assert_null(strstr(log, "peer_manager ready"), "nothing after storage was started");
    free(log);
}

Test(supervisor, sigterm_stops_everything_in_reverse_order)
{
    json_t *st = start_node();
    pid_t pids[NACTORS];
    for (int i = 0; i < NACTORS; i++)
        pids[i] = pid_of(st, s_actors[i]);
    json_decref(st);
    cr_assert_eq(kill(node.supervisor, SIGTERM), 0);
    int status = it_wait_exit(node.supervisor, it_budget_ms(&node, IT_SHUTDOWN, 0));
    cr_assert_neq(status, -1, "the supervisor did not stop");
    node.supervisor = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    for (int i = 0; i < NACTORS; i++)
        cr_assert_not(it_pid_alive(pids[i]), "%s (pid %d) outlived the supervisor", s_actors[i],
                      (int) pids[i]);
    /* Reverse start order: validators, sync, block_processor, peer_manager, storage. */
    char *log = it_read_file(node.log);
    const char *order[] = {"stopping validator-", "stopping sync ", "stopping block_processor ",
                           "stopping peer_manager ", "stopping storage "};
    const char *at = log;
    for (int i = 0; i < 5; i++) {
        const char *next = strstr(at, order[i]);
        cr_assert_not_null(next, "'%s' missing or out of order in:\n%s", order[i], log);
        at = next;
    }
    cr_assert(strstr(log, "storage (pid") && strstr(log, "all actors stopped, exiting with 0"));
    free(log);
}

Test(supervisor, sigkill_of_the_supervisor_leaves_no_process)
{
    json_t *st = start_node();
    pid_t pids[NACTORS];
    for (int i = 0; i < NACTORS; i++)
        pids[i] = pid_of(st, s_actors[i]);
    json_decref(st);
    cr_assert_eq(kill(node.supervisor, SIGKILL), 0);
    cr_assert_neq(it_wait_exit(node.supervisor, it_budget_ms(&node, IT_RESTART, 0)), -1);
    node.supervisor = 0;
    /* PR_SET_PDEATHSIG: they follow at once; T is a hang guard. */
    for (int i = 0; i < NACTORS; i++)
        cr_assert(wait_dead(pids[i], it_budget_ms(&node, IT_RESTART, 0)),
                  "%s (pid %d) outlived a SIGKILLed supervisor", s_actors[i], (int) pids[i]);
}

Test(supervisor, the_metrics_endpoint_serves_text_that_parses)
{
    json_decref(start_node());
    /* Actors push their first snapshot within about a second (a constant of
     * the code); T: one heartbeat timeout, a live actor's longest silence. */
    char *text = NULL;
    double v = -1;
    int64_t end = it_now_ms() + it_budget_ms(&node, IT_RESTART, 0);
    do {
        free(text);
        text = it_http_get(node.metrics_port, "/metrics");
        cr_assert_not_null(text, "no 200 answer on port %d", node.metrics_port);
        if (prom_value(text, "alys_bus_dropped_total{actor=\"storage\",reason=\"malformed\"}", &v) == 0)
            break;
        it_sleep_ms(100);
    } while (it_now_ms() < end);
    prom_summary_t sum;
    char err[256];
    cr_assert_eq(prom_parse(text, &sum, err, sizeof err), 0, "%s\n%s", err, text);
    cr_assert_geq(v, 0, "an actor's own metric reached the collector:\n%s", text);
    for (int i = 0; i < NACTORS; i++) {
        char series[128];
        snprintf(series, sizeof series, "alys_actor_up{actor=\"%s\"}", s_actors[i]);
        cr_assert_eq(prom_value(text, series, &v), 0, "%s missing", series);
        cr_assert_eq(v, 1, "%s", series);
        snprintf(series, sizeof series, "alys_actor_restarts_total{actor=\"%s\"}", s_actors[i]);
        cr_assert_eq(prom_value(text, series, &v), 0, "%s missing", series);
    }
    free(text);
    cr_assert_null(it_http_get(node.metrics_port, "/nothing-here"), "only /metrics answers 200");
}

Test(supervisor, a_metrics_port_in_use_is_a_startup_error)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
    cr_assert_eq(listen(fd, 1), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *) &a, &len), 0);
    char port[64];
    snprintf(port, sizeof port, "metrics_port = %d", ntohs(a.sin_port));
    const char *overrides[] = {port, NULL};
    cr_assert_eq(it_node_init(&node, overrides), 0);
    require_actors();
    cr_assert_eq(it_node_start(&node), 0);
    int status = it_wait_exit(node.supervisor, it_budget_ms(&node, IT_READY, 0));
    node.supervisor = 0;
    close(fd);
    cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 78,
              "a port in use is the environment's fault: exit 78 (EX_CONFIG)");
    char *log = it_read_file(node.log);
    cr_assert(strstr(log, "Address already in use"), "clear reason:\n%s", log);
    cr_assert(strstr(log, "metrics.metrics_port"), "names the key:\n%s", log);
    cr_assert_null(strstr(log, "spawned"), "no actor started:\n%s", log);
    free(log);
}

Test(supervisor, monitor_shows_lifecycle_and_zmq_events)
{
    json_t *st = start_node();
    pid_t victim = pid_of(st, "sync");
    json_decref(st);
    char out[256];
    snprintf(out, sizeof out, "%s/monitor.txt", node.dir);
    const char *argv[] = {it_bin("actors/alysctl/alysctl"), "--config", node.config, "monitor", NULL};
    pid_t mon = it_spawn(argv, out);
    /* The SUB connects asynchronously: it is subscribed once it prints the
     * zmq events that our own status requests cause on the supervisor's
     * control socket. */
    bool subscribed = false;
    for (int64_t end = it_now_ms() + it_budget_ms(&node, IT_REQUEST, 0);
         !subscribed && it_now_ms() < end;) {
        json_decref(it_status(&node));
        subscribed = it_wait_file_contains(out, "zmq supervisor", 50);
    }
    cr_assert(subscribed, "alysctl monitor shows no event");
    cr_assert_eq(kill(victim, SIGKILL), 0);
    cr_assert(it_wait_file_contains(out, "lifecycle sync ready pid",
                                    it_budget_ms(&node, IT_RESTART, 0)),
              "no ready event");
    kill(mon, SIGINT);
    cr_assert_neq(it_wait_exit(mon, it_budget_ms(&node, IT_REQUEST, 0)), -1,
                  "monitor stops on Ctrl-C");
    char *text = it_read_file(out);
    const char *expect[] = {"lifecycle sync exited signal 9 (Killed)",
                            "lifecycle sync restarting in 0 ms", "lifecycle sync spawned pid",
                            "lifecycle sync ready pid", "zmq supervisor disconnected control ipc://"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_assert(strstr(text, expect[i]), "'%s' missing from:\n%s", expect[i], text);
    cr_assert_null(strstr(text, " metric "), "metrics hidden without --metrics");
    free(text);
    /* --count N: exits by itself after N lines. */
    snprintf(out, sizeof out, "%s/monitor2.txt", node.dir);
    const char *argv2[] = {it_bin("actors/alysctl/alysctl"),
                           "--config",
                           node.config,
                           "monitor",
                           "--count",
                           "2",
                           "--metrics",
                           NULL};
    mon = it_spawn(argv2, out);
    /* Metric snapshots arrive every second: T is a hang guard. */
    int status = it_wait_exit(mon, it_budget_ms(&node, IT_RESTART, 0));
    cr_assert_neq(status, -1, "monitor --count 2 did not stop by itself");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    text = it_read_file(out);
    int lines = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        lines++;
    cr_assert_eq(lines, 2, "%s", text);
    free(text);
}

Test(supervisor, metrics_disabled_means_no_listener)
{
    const char *overrides[] = {"metrics_enabled = false", "heartbeat_interval_ms = 100", NULL};
    cr_assert_eq(it_node_init(&node, overrides), 0);
    require_actors();
    cr_assert_eq(it_node_start(&node), 0);
    json_t *st = it_wait_all_ready(&node, it_budget_ms(&node, IT_READY, 0));
    cr_assert_not_null(st);
    json_decref(st);
    cr_assert_null(it_http_get(node.metrics_port, "/metrics"));
}

Test(supervisor, a_validator_started_by_hand_is_listed_as_external)
{
    json_decref(start_node());
    char out[256];
    snprintf(out, sizeof out, "%s/external.log", node.dir);
    const char *argv[] = {it_bin("actors/validator/alys-validator"), "--config", node.config, NULL};
    pid_t ext = it_spawn(argv, out);
    json_t *found = NULL;
    for (int64_t end = it_now_ms() + it_budget_ms(&node, IT_READY, 0);
         !found && it_now_ms() < end; it_sleep_ms(50)) {
        json_t *st = it_status(&node);
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(st, "actors"), i, a)
        {
            if (json_integer_value(json_object_get(a, "pid")) == ext)
                found = json_incref(a);
        }
        json_decref(st);
    }
    cr_assert_not_null(found, "the hand-started validator (pid %d) is not in status", (int) ext);
    cr_assert_str_eq(json_string_value(json_object_get(found, "state")), "external");
    char want[64];
    snprintf(want, sizeof want, "validator-ext-%d", (int) ext);
    cr_assert_str_eq(json_string_value(json_object_get(found, "name")), want);
    json_decref(found);
    /* It is not restarted when it goes: it just leaves the list. */
    cr_assert_eq(kill(ext, SIGKILL), 0);
    cr_assert_neq(it_wait_exit(ext, it_budget_ms(&node, IT_RESTART, 0)), -1);
    bool gone = false;
    for (int64_t end = it_now_ms() + it_budget_ms(&node, IT_RESTART, 0);
         !gone && it_now_ms() < end; it_sleep_ms(100)) {
        json_t *st = it_status(&node);
        gone = st && json_array_size(json_object_get(st, "actors")) == NACTORS;
        json_decref(st);
    }
    cr_assert(gone, "the external validator was not removed after the heartbeat timeout");
}

Test(supervisor, status_without_a_supervisor_says_so)
{
    cr_assert_eq(it_node_init(&node, NULL), 0);
    const char *argv[] = {it_bin("actors/alysctl/alysctl"), "--config", node.config, "status", NULL};
    char out[1024];
    int rc = it_run(argv, out, sizeof out, it_budget_ms(&node, IT_REQUEST, 0));
    cr_assert_eq(rc, 1, "exit code %d: %s", rc, out);
    cr_assert(strstr(out, "no supervisor answering at ipc://"), "%s", out);
    cr_assert(strstr(out, "/run/supervisor.sock"), "%s", out);
}

/* ---- command line and fail-fast (issue 10) */

/* Runs argv with stdout and stderr into two buffers; returns the exit code. */
static int run_split(const char *const argv[], char *out, size_t outlen, char *err, size_t errlen)
{
    char dir[] = "/tmp/alys-it-cli-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char po[64], pe[64];
    snprintf(po, sizeof po, "%s/out", dir);
    snprintf(pe, sizeof pe, "%s/err", dir);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        execv(argv[0], (char *const *) argv);
        _exit(127);
    }
    int status = it_wait_exit(pid, 20000);
    cr_assert_neq(status, -1, "%s did not exit", argv[0]);
    char *o = it_read_file(po), *e = it_read_file(pe);
    snprintf(out, outlen, "%s", o ? o : "");
    snprintf(err, errlen, "%s", e ? e : "");
    free(o);
    free(e);
    unlink(po);
    unlink(pe);
    rmdir(dir);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *const s_binaries[] = {
    "actors/supervisor/alys-supervisor",
    "actors/storage/alys-storage",
    "actors/peer_manager/alys-peer-manager",
    "actors/block_processor/alys-block-processor",
    "actors/sync/alys-sync",
    "actors/validator/alys-validator",
    "actors/alysctl/alysctl",
};
#define NBINARIES (sizeof s_binaries / sizeof s_binaries[0])

Test(supervisor, every_binary_has_help_version_and_usage_errors)
{
    char out[8192], err[8192];
    for (size_t i = 0; i < NBINARIES; i++) {
        const char *bin = it_bin(s_binaries[i]);
        const char *help[] = {bin, "--help", NULL};
        cr_assert_eq(run_split(help, out, sizeof out, err, sizeof err), 0, "%s --help", bin);
        cr_assert(strncmp(out, "usage: ", 7) == 0, "%s --help: usage on stdout:\n%s", bin, out);
        cr_assert_str_empty(err, "%s --help: nothing on stderr", bin);
        const char *h[] = {bin, "-h", NULL};
        cr_assert_eq(run_split(h, out, sizeof out, err, sizeof err), 0, "%s -h", bin);
        const char *ver[] = {bin, "--version", NULL};
        cr_assert_eq(run_split(ver, out, sizeof out, err, sizeof err), 0, "%s --version", bin);
        cr_assert(strstr(out, " (commit "), "%s --version:\n%s", bin, out);
        const char *bad[] = {bin, "--no-such-option", NULL};
        cr_assert_eq(run_split(bad, out, sizeof out, err, sizeof err), 2, "%s: usage error", bin);
        cr_assert(strstr(err, "unknown option '--no-such-option'") &&
                      strstr(err, "unknown option") < strstr(err, "usage:"),
                  "%s: the problem comes first:\n%s", bin, err);
    }
}

/* The tools (not started by the supervisor) parse their own arguments but
 * answer --help and --version the same way, whatever else the line holds. */
static const char *const s_tools[] = {
    "actors/chaingen/alys-chaingen",       "actors/loadgen/alys-loadgen",
    "actors/producer/alys-producer",       "actors/faultproxy/alys-faultproxy",
    "actors/benchtools/alys-verify-bench", "tests/sim/alys-sim",
};
#define NTOOLS (sizeof s_tools / sizeof s_tools[0])

Test(supervisor, every_tool_has_help_and_version)
{
    char out[8192], err[8192];
    for (size_t i = 0; i < NTOOLS; i++) {
        const char *bin = it_bin(s_tools[i]);
        const char *help[] = {bin, "--help", "--seed", NULL};
        cr_assert_eq(run_split(help, out, sizeof out, err, sizeof err), 0, "%s --help", bin);
        cr_assert(strncmp(out, "usage: ", 7) == 0, "%s --help: usage on stdout:\n%s", bin, out);
        cr_assert_str_empty(err, "%s --help: nothing on stderr", bin);
        const char *ver[] = {bin, "--no-such-option", "--version", NULL};
        cr_assert_eq(run_split(ver, out, sizeof out, err, sizeof err), 0, "%s --version", bin);
        cr_assert(strstr(out, " (commit "), "%s --version:\n%s", bin, out);
        const char *bad[] = {bin, "--no-such-option", NULL};
        cr_assert_eq(run_split(bad, out, sizeof out, err, sizeof err), 2, "%s: usage error", bin);
        cr_assert(strchr(err, '\n') && strchr(err, '\n') - err > 10,
                  "%s: a first line saying what is wrong:\n%s", bin, err);
    }
}

Test(supervisor, alysctl_lists_every_command_and_helps_each)
{
    cr_assert_eq(it_node_init(&node, NULL), 0); /* a config to read; no node runs */
    char out[8192], err[8192];
    const char *bin = it_bin("actors/alysctl/alysctl");
    const char *help[] = {bin, "--help", NULL};
    cr_assert_eq(run_split(help, out, sizeof out, err, sizeof err), 0);
    const char *expect[] = {"status", "monitor", "--metrics",   "import",     "export",  "peers",
                            "sync",   "head",    "can-produce", "checkpoint", "recover", "cert"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        cr_assert(strstr(out, expect[i]), "top help lists %s:\n%s", expect[i], out);
    const char *cmds[] = {"status", "monitor", "import",     "export",
                          "peers",  "sync",    "checkpoint", "cert"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char *sub[] = {bin, cmds[i], "--help", NULL};
        cr_assert_eq(run_split(sub, out, sizeof out, err, sizeof err), 0, "%s --help", cmds[i]);
        cr_assert(strncmp(out, "usage: alysctl", 14) == 0 && strstr(out, cmds[i]), "%s", out);
    }
    /* A usage error of a subcommand: the problem first, then its usage; exit 2. */
    const char *bad[][5] = {{"sync", "bogus"},    {"checkpoint", "recover", "abc"},
                            {"status", "--x"},    {"export"},
                            {"monitor", "--bad"}, {"cert"},
                            {"peers", "x"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[8] = {bin, "--config", node.config};
        size_t n = 3;
        for (size_t k = 0; k < 5 && bad[i][k]; k++)
            argv[n++] = bad[i][k];
        argv[n] = NULL;
        cr_assert_eq(run_split(argv, out, sizeof out, err, sizeof err), 2, "%s", bad[i][0]);
        char first[64];
        snprintf(first, sizeof first, "alysctl %s: ", bad[i][0]);
        cr_assert(strncmp(err, first, strlen(first)) == 0 && strstr(err, "\nusage: alysctl"),
                  "problem first, then usage:\n%s", err);
    }
    const char *sync_status[] = {bin, "sync", "status", "--help", NULL};
    cr_assert_eq(run_split(sync_status, out, sizeof out, err, sizeof err), 0);
    const char *typo[] = {bin, "stauts", NULL};
    cr_assert_eq(run_split(typo, out, sizeof out, err, sizeof err), 2);
    cr_assert(strncmp(err, "alysctl: unknown command 'stauts' (did you mean 'status'?)\n", 59) == 0,
              "%s", err);
    const char *none[] = {bin, "--config", "/no/such/file.toml", "status", NULL};
    cr_assert_eq(run_split(none, out, sizeof out, err, sizeof err), 78, "a config error is 78");
    cr_assert(strstr(err, "/no/such/file.toml: cannot open"), "%s", err);
}

static int run_supervisor(const char *const *extra, char *log, size_t loglen)
{
    const char *argv[16] = {it_bin("actors/supervisor/alys-supervisor"), "--config", node.config};
    size_t n = 3;
    for (; extra && *extra && n < 15; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    char err[8192];
    int rc = run_split(argv, log, loglen, err, sizeof err);
    snprintf(log, loglen, "%s", err); /* everything the supervisor says is on stderr */
    return rc;
}

/* The last non-empty line of text, in place. */
static const char *last_line(char *text)
{
    size_t n = strlen(text);
    while (n && text[n - 1] == '\n')
        text[--n] = '\0';
    char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}

Test(supervisor, a_bad_genesis_is_refused_before_anything_starts_with_78)
{
    cr_assert_eq(it_node_init(&node,
                              (const char *const[]){"genesis_file = \"no-such-genesis.bin\"", NULL}),
                 0);
    char log[8192];
    cr_assert_eq(run_supervisor(NULL, log, sizeof log), 78);
    cr_assert_null(strstr(log, "spawned"), "nothing started:\n%s", log);
    cr_assert(strstr(last_line(log), "node.genesis_file") &&
                  strstr(last_line(log), "No such file or directory"),
              "cause last:\n%s", log);
    /* A file that is there but is not a genesis. */
    char path[256];
    snprintf(path, sizeof path, "%s/junk.bin", node.dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("not a genesis\n", f);
    fclose(f);
    char set[300];
    snprintf(set, sizeof set, "genesis_file=%s", path);
    cr_assert_eq(run_supervisor((const char *const[]){"--set", set, NULL}, log, sizeof log), 78);
    cr_assert(strstr(last_line(log), "is not usable: genesis"), "%s", log);
}

Test(supervisor, config_and_directory_errors_exit_78_and_check_passes_a_good_config)
{
    cr_assert_eq(it_node_init(&node, NULL), 0);
    char log[8192];
    cr_assert_eq(run_supervisor((const char *const[]){"--check", NULL}, log, sizeof log), 0, "%s",
                 log);
    cr_assert_eq(run_supervisor((const char *const[]){"--set", "sync.no_such_key=1", NULL}, log,
                                sizeof log),
                 78);
    cr_assert(strstr(log, "unknown key 'sync.no_such_key'"), "%s", log);
    /* data_dir is a regular file: it cannot be a directory, whoever runs this. */
    char file[256], set[300];
    snprintf(file, sizeof file, "%s/a-file", node.dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(set, sizeof set, "data_dir=%s", file);
    cr_assert_eq(run_supervisor((const char *const[]){"--set", set, NULL}, log, sizeof log), 78);
    cr_assert(strstr(last_line(log), "node.data_dir"), "%s", log);
    const char *bad[] = {"--set", "nokey", NULL};
    cr_assert_eq(run_supervisor(bad, log, sizeof log), 2, "a --set without '=' is a usage error");
}

/* An actor that finds its config wrong exits 78: not restarted; the node stops
 * with 78 and repeats the actor's message last. The config is made wrong
 * under a running node, as an operator editing it would, then storage is
 * killed so that its restart reads it. */
Test(supervisor, an_actor_exiting_78_stops_the_node_with_its_message)
{
    json_t *st = start_node();
    pid_t storage = pid_of(st, "storage");
    json_decref(st);
    FILE *f = fopen(node.config, "a");
    cr_assert_not_null(f);
    fputs("\n[bogus_table]\n", f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(kill(storage, SIGKILL), 0);
    int status = it_wait_exit(node.supervisor, 30000);
    node.supervisor = 0;
    cr_assert(status != -1 && WIFEXITED(status), "the supervisor stopped");
    cr_assert_eq(WEXITSTATUS(status), 78);
    char *log = it_read_file(node.log);
    const char *last = last_line(log);
    cr_assert(strstr(last, "storage exited with 78 (config error), not restarted") &&
                  strstr(last, "unknown table [bogus_table]"),
              "last line:\n%s", last);
    cr_assert_eq(restarts_of_log(log, "storage"), 1, "one restart (after the kill), none after 78");
    free(log);
}

/* ---- health, readiness, metrics hygiene (issue 10 item 4) */

/* GET path: the HTTP status, the body into body (may be NULL). -1 if no answer. */
static int http_status(int port, const char *path, char *body, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t) port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    cr_assert_eq(write(fd, req, (size_t) n), n);
    static char buf[1 << 16];
    size_t used = 0;
    ssize_t r;
    while (used < sizeof buf - 1 && (r = read(fd, buf + used, sizeof buf - 1 - used)) > 0)
        used += (size_t) r;
    close(fd);
    buf[used] = '\0';
    int code = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
        return -1;
    const char *b = strstr(buf, "\r\n\r\n");
    if (body)
        snprintf(body, len, "%s", b ? b + 4 : "");
    return code;
}

Test(supervisor, health_and_ready_answer_with_who_is_not_ready)
{
    cr_assert_eq(it_node_init(&node, s_timing), 0);
    require_actors();
    cr_assert_eq(it_node_start(&node), 0);
    char body[4096];
    int code = -1;
    for (int64_t end = it_now_ms() + 10000; code != 200 && it_now_ms() < end; it_sleep_ms(20))
        code = http_status(node.metrics_port, "/health", body, sizeof body);
    cr_assert_eq(code, 200, "/health answers while the node starts");
    cr_assert_str_eq(body, "ok\n");
    json_decref(it_wait_all_ready(&node, 20000));
    code = -1;
    for (int64_t end = it_now_ms() + 5000; code != 200 && it_now_ms() < end; it_sleep_ms(20))
        code = http_status(node.metrics_port, "/ready", body, sizeof body);
    cr_assert_eq(code, 200, "/ready once every actor is: %s", body);
    cr_assert(strncmp(body, "ready", 5) == 0, "%s", body);
    /* A stopped actor: /ready says 503 and names it until it is back. */
    json_t *st = it_status(&node);
    pid_t sync = pid_of(st, "sync");
    json_decref(st);
    cr_assert_eq(kill(sync, SIGSTOP), 0);
    code = 200;
    for (int64_t end = it_now_ms() + 15000; code == 200 && it_now_ms() < end; it_sleep_ms(20))
        code = http_status(node.metrics_port, "/ready", body, sizeof body);
    kill(sync, SIGCONT);
    cr_assert_eq(code, 503, "/ready fails while sync is hung or restarting");
    cr_assert(strstr(body, "sync: "), "names the actor:\n%s", body);
}

/* Families that must exist from the start, at 0 before their first event. */
static const char *const s_zero_counters[] = {
    "alys_actor_restarts_total{actor=\"storage\"}",
    "alys_actor_restarts_total{actor=\"sync\"}",
    "alys_supervisor_paused_seconds_total",
    "alys_collector_dropped_total",
    /* The SyncActor's (issue 10): a fresh node with no peers has none of
     * these events, so each is there and at 0. */
    "alys_sync_errors_total{actor=\"sync\",error_type=\"sync_failed\"}",
    "alys_sync_errors_total{actor=\"sync\",error_type=\"block_pushed_invalid\"}",
    "alys_sync_errors_total{actor=\"sync\",error_type=\"invalid_header\"}",
    "alys_sync_errors_total{actor=\"sync\",error_type=\"request_timeout\"}",
    "alys_sync_recoveries_total{actor=\"sync\"}",
    "alys_sync_retries_total{actor=\"sync\"}",
    "alys_sync_reassignments_total{actor=\"sync\"}",
};

Test(supervisor, metrics_have_build_info_process_metrics_counters_at_0_and_pass_promtool)
{
    json_decref(start_node());
    char *text = NULL;
    double v = -1;
    for (int64_t end = it_now_ms() + 10000; it_now_ms() < end; it_sleep_ms(100)) {
        free(text);
        text = it_http_get(node.metrics_port, "/metrics");
        cr_assert_not_null(text);
        double r;
        if (prom_value(text, "process_open_fds{actor=\"validator-2\"}", &v) == 0 &&
            prom_value(text, "alys_sync_recoveries_total{actor=\"sync\"}", &r) == 0)
            break; /* the supervisor's own and the SyncActor's first snapshot */
    }
    cr_assert_gt(v, 0, "process metrics per actor:\n%s", text);
    for (int i = 0; i < NACTORS; i++) {
        const char *fams[] = {"process_cpu_seconds_total", "process_resident_memory_bytes",
                              "process_start_time_seconds", "process_open_fds"};
        for (size_t f = 0; f < 4; f++) {
            char series[160];
            snprintf(series, sizeof series, "%s{actor=\"%s\"}", fams[f], s_actors[i]);
            cr_assert_eq(prom_value(text, series, &v), 0, "%s missing", series);
        }
    }
    cr_assert(strstr(text, "alys_build_info{version=\"") && strstr(text, "\",commit=\""),
              "build info:\n%s", text);
    for (size_t i = 0; i < sizeof s_zero_counters / sizeof s_zero_counters[0]; i++) {
        cr_assert_eq(prom_value(text, s_zero_counters[i], &v), 0, "%s missing", s_zero_counters[i]);
        cr_assert_eq(v, 0, "%s at 0", s_zero_counters[i]);
    }
    /* promtool's lint on what a live node serves. */
    char path[200];
    snprintf(path, sizeof path, "%s/metrics.txt", node.dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
    char cmd[400], out[16384];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) != 127, "promtool is installed (scripts/deps.sh)");
    /* The seed fixed some names (alys_sync_blocks_per_second is a gauge named
     * like a rate...); everything else must be clean. */
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        bool seed = false;
        for (size_t i = 0; i < sizeof s_seed_fixed / sizeof s_seed_fixed[0]; i++)
            seed = seed || strncmp(line, s_seed_fixed[i], strlen(s_seed_fixed[i])) == 0;
        cr_assert(seed, "promtool: %s", line);
    }
}

/* Issue 10 item 6: SIGHUP no longer stops the node; it re-reads log_level
 * (here info -> debug) in the supervisor and in every actor. */
Test(supervisor, sighup_reloads_the_log_level_and_keeps_the_node)
{
    json_t *st = start_node();
    pid_t before = pid_of(st, "storage");
    json_decref(st);
    char *text = it_read_file(node.config);
    cr_assert_not_null(text);
    char *at = strstr(text, "\nlog_level = \"info\"");
    cr_assert_not_null(at, "the test config has log_level = \"info\"");
    FILE *f = fopen(node.config, "w");
    cr_assert_not_null(f);
    fprintf(f, "%.*s\nlog_level = \"debug\"%s", (int) (at - text), text,
            at + strlen("\nlog_level = \"info\""));
    cr_assert_eq(fclose(f), 0);
    free(text);
    cr_assert_eq(kill(node.supervisor, SIGHUP), 0);
    cr_assert(it_wait_file_contains(node.log,
                                    "SIGHUP: log_level debug, log_format text; passed on", 10000),
              "the supervisor reloaded");
    /* Each actor applies it within its next metrics flush (1 s). */
    char *log = NULL;
    int reloaded = 0;
    for (int64_t end = it_now_ms() + 10000; reloaded < NACTORS && it_now_ms() < end;
         it_sleep_ms(100)) {
        free(log);
        log = it_read_file(node.log);
        reloaded = 0;
        for (const char *p = strstr(log, "SIGHUP: log_level debug, log_format text\n"); p;
             p = strstr(p + 1, "SIGHUP: log_level debug, log_format text\n"))
            reloaded++;
    }
    free(log);
    cr_assert_eq(reloaded, NACTORS, "every actor reloaded");
    st = it_wait_all_ready(&node, 5000);
    cr_assert_not_null(st, "the node is still up");
    log = it_read_file(node.log);
    cr_assert_eq(pid_of(st, "storage"), before, "nothing restarted:\n%s", log);
    free(log);
    json_decref(st);
}

/* Type=notify: READY=1 once every actor is ready, WATCHDOG=1 from the loop,
 * STOPPING=1 when SIGTERM starts the shutdown, over $NOTIFY_SOCKET. */
static bool wait_datagram(int fd, const char *needle, int timeout_ms)
{
    char buf[512];
    for (int64_t end = it_now_ms() + timeout_ms; it_now_ms() < end;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        if (strstr(buf, needle))
            return true;
    }
    return false;
}

Test(supervisor, systemd_notify_ready_watchdog_and_stopping)
{
    char path[108];
    snprintf(path, sizeof path, "/tmp/alys-it-notify-%d.sock", (int) getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
    cr_assert_eq(setenv("NOTIFY_SOCKET", path, 1), 0);
    json_t *st = start_node();
    unsetenv("NOTIFY_SOCKET");
    json_decref(st);
    cr_assert(wait_datagram(fd, "READY=1", 10000), "READY=1 after every actor is ready");
    cr_assert(wait_datagram(fd, "WATCHDOG=1", 10000), "watchdog pings");
    cr_assert_eq(kill(node.supervisor, SIGTERM), 0);
    cr_assert(wait_datagram(fd, "STOPPING=1", 10000), "STOPPING=1 on SIGTERM");
    close(fd);
    unlink(path);
}

/* Issue 11: a restart activates the actor's warm standby, an idle process
 * of the same binary spawned ahead of need, instead of fork + exec; a new
 * standby follows; every standby goes with the node. */
Test(supervisor, a_restart_activates_the_warm_standby_and_a_new_one_follows)
{
    json_t *st = start_node();
    const char *names[] = {"storage", "sync"};
    for (int i = 0; i < 2; i++) {
        const char *name = names[i];
        pid_t old = pid_of(st, name), standby = wait_standby(name, old);
        int restarts = restarts_of(st, name);
        cr_assert_gt(standby, 1, "%s has a standby once ready", name);
        cr_assert_eq(kill(old, SIGKILL), 0);
        json_decref(st);
        st = it_wait_restarted(&node, name, old, restarts + 1, it_budget_ms(&node, IT_RESTART, 0));
        cr_assert_not_null(st, "%s was not restarted", name);
        cr_assert_eq(pid_of(st, name), standby, "%s's replacement is its standby (pid %d, not %d)",
                     name, (int) standby, (int) pid_of(st, name));
        pid_t next = wait_standby(name, standby);
        cr_assert_gt(next, 1, "a new standby for %s", name);
    }
    pid_t left = standby_of(node.supervisor, "sync", pid_of(st, "sync"));
    json_decref(st);
    cr_assert_eq(kill(node.supervisor, SIGTERM), 0);
    cr_assert_eq(it_wait_exit(node.supervisor, it_budget_ms(&node, IT_RESTART, 0)), 0);
    node.supervisor = 0;
    cr_assert(wait_dead(left, it_budget_ms(&node, IT_RESTART, 0)), "standby %d outlived the node",
              (int) left);
}

Test(supervisor, warm_standby_off_spawns_no_standby)
{
    const char *overrides[] = {"warm_standby = false", "heartbeat_interval_ms = 100", NULL};
    cr_assert_eq(it_node_init(&node, overrides), 0);
    require_actors();
    cr_assert_eq(it_node_start(&node), 0);
    json_t *st = it_wait_all_ready(&node, it_budget_ms(&node, IT_READY, 0));
    cr_assert_not_null(st);
    pid_t old = pid_of(st, "sync");
    int restarts = restarts_of(st, "sync");
    json_decref(st);
    cr_assert_eq(kill(old, SIGKILL), 0);
    st = it_wait_restarted(&node, "sync", old, restarts + 1, it_budget_ms(&node, IT_RESTART, 0));
    cr_assert_not_null(st, "restarted cold");
    json_decref(st);
    for (int i = 0; i < NACTORS; i++)
        cr_assert_eq(standby_of(node.supervisor, s_actors[i], 0), 0, "no standby for %s",
                     s_actors[i]);
}
