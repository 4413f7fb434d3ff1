/*  server.c: sockets, signals, processes and metrics around supervisor.c.
 *
 *  Every input (a control message, a reaped child, a signal, the timer) is
 *  fed to the logic, then the logic's actions are executed until none is
 *  left (executing a SPAWN feeds sup_spawned back, which may queue more).
 */
#include "server.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "collector.h"
#include "log.h"
#include "metrics_http.h"
#include "preflight.h"
#include "procstat.h"
#include "sdnotify.h"
#include "sockmon.h"
#include "spawn.h"
#include "standby.h"
#include "supervisor.h"
#include "util.h"
#include "version.h"

/* Actor kinds in dependency (start) order; validators start together last.
 * The producer asks SyncActor and StorageActor and hands blocks to
 * BlockProcessor, so it starts after them. */
typedef struct {
    const char *kind;
    const char *binary;
    const char *subdir; /* folder of the binary in a meson build tree */
} kind_info_t;

static const kind_info_t s_kinds[] = {
    {"storage", "alys-storage", "storage"},
    {"peer_manager", "alys-peer-manager", "peer_manager"},
    {"block_processor", "alys-block-processor", "block_processor"},
    {"sync", "alys-sync", "sync"},
    {"producer", "alys-producer", "producer"}, /* only with [producer] enabled */
    {"validator", "alys-validator", "validator"},
};
#define NKINDS (sizeof s_kinds / sizeof s_kinds[0])

/* How late past its deadline the loop must wake, with no SIGCONT, for the
 * delay to count as a pause (sup_policy_t.pause_min_ms). A delay this long
 * is the shortest that could get a child killed wrongly: its last Pong is at
 * most one interval old when the loop sleeps, and may sit unread when the
 * timer fires. Shorter delays are CPU starvation and are charged, so a
 * stopped actor is found hung on time however busy the host; a SIGSTOP of
 * the supervisor itself is recognised by its SIGCONT instead, whatever its
 * length (input_clock). */
static uint32_t pause_min(const alys_config_t *cfg)
{
    return cfg->heartbeat_timeout_ms - cfg->heartbeat_interval_ms; /* > 0: config */
}

_Static_assert(SUP_EXIT_CONFIG == ALYS_EXIT_CONFIG, "one exit code for config errors");

struct sup_server {
    alys_config_t cfg;
    const char *sets[ALYS_SET_MAX]; /* --set KEY=VALUE, passed on to every actor */
    size_t nsets;
    char config_path[PATH_MAX];
    char binaries[NKINDS][PATH_MAX];
    sup_t *sup;
    collector_t *collector;
    metrics_http_t *http;
    zloop_t *loop;
    zsock_t *control;     /* ROUTER at ep_supervisor */
    zsock_t *xsub;        /* ep_events_in */
    zsock_t *xpub;        /* ep_events */
    zsock_t *monitors[2]; /* socket-monitor PAIRs of control and xsub */
    const char *monitor_labels[2];
    int sigfd;
    int contfd;          /* SIGCONT only: read before every input, see input_clock */
    standby_t *standbys; /* NULL when [supervisor] warm_standby is off */
    int lockfd;          /* run_dir/supervisor.pid, flock'ed */
    zmq_pollitem_t sigitem;
    int timer_id;
    int64_t armed; /* deadline the timer is armed for */
    uint64_t metrics_version;
    int64_t started_ms;
    bool ready_told;    /* READY=1 sent to systemd */
    bool stopping_told; /* STOPPING=1 sent */
    bool done;
    int exit_code;
};

/* ---- setup helpers */

static int block_signals(sup_server_t *self, char *err, size_t errlen)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Blocked before any thread exists, so every thread inherits the mask
     * and the signals are only ever read from the signalfd in the loop. */
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 ||
        (self->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        snprintf(err, errlen, "cannot set up signal handling: %s", strerror(errno));
        return -1;
    }
    /* SIGCONT has its own signalfd, polled by nobody: the loop may run a
     * timer before it reads the main signalfd, so every input first reads
     * this one (input_clock). Blocking SIGCONT does not stop it resuming
     * the process. */
    sigset_t cont;
    sigemptyset(&cont);
    sigaddset(&cont, SIGCONT);
    if (sigprocmask(SIG_BLOCK, &cont, NULL) != 0 ||
        (self->contfd = signalfd(-1, &cont, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        snprintf(err, errlen, "cannot set up SIGCONT handling: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The clock for an input to the policy. A pending SIGCONT means we were
 * stopped until just now: tell the policy before the input, so the input's
 * lateness is not charged to the children. */
static int64_t input_clock(sup_server_t *self)
{
    struct signalfd_siginfo si;
    bool resumed = false;
    while (read(self->contfd, &si, sizeof si) == (ssize_t) sizeof si)
        resumed = true;
    if (resumed)
        sup_resumed(self->sup);
    return alys_mono_ms();
}

/* One supervisor per run_dir: binding would otherwise unlink the live one's
 * ipc sockets and steal its actors. */
static int lock_run_dir(sup_server_t *self, char *err, size_t errlen)
{
    char path[ALYS_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/supervisor.pid", self->cfg.run_dir);
    self->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->lockfd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(self->lockfd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(self->lockfd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errlen, "another supervisor (pid %s) is running on %s", pid, self->cfg.run_dir);
        return -1;
    }
    char line[32];
    int len = snprintf(line, sizeof line, "%d\n", (int) getpid());
    if (ftruncate(self->lockfd, 0) != 0 || pwrite(self->lockfd, line, (size_t) len, 0) != len) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int make_dirs(const alys_config_t *cfg, char *err, size_t errlen)
{
    const char *dirs[] = {cfg->run_dir, cfg->data_dir};
    for (size_t i = 0; i < 2; i++)
        if (alys_mkdir_p(dirs[i], 0755) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", dirs[i], strerror(errno));
            return -1;
        }
    return 0;
}

/* Validators only with workers configured; the producer only when enabled. */
static bool kind_wanted(const alys_config_t *cfg, const char *kind)
{
    if (strcmp(kind, "validator") == 0)
        return cfg->validation_workers > 0;
    if (strcmp(kind, "producer") == 0)
        return cfg->producer_enabled;
    return true;
}

static int find_binaries(sup_server_t *self, char *err, size_t errlen)
{
    for (size_t k = 0; k < NKINDS; k++) {
        bool needed = kind_wanted(&self->cfg, s_kinds[k].kind);
        if (needed && spawn_find_binary(s_kinds[k].binary, s_kinds[k].subdir, self->binaries[k],
                                        sizeof self->binaries[k], err, errlen) != 0)
            return -1;
    }
    return 0;
}

static zsock_t *bind_proxy_end(int type, const char *endpoint, char *err, size_t errlen)
{
    zsock_t *sock = zsock_new(type);
    if (!sock) {
        snprintf(err, errlen, "cannot create a socket");
        return NULL;
    }
    alys_sock_limits(sock);
    alys_unlink_ipc(endpoint);
    if (zsock_bind(sock, "%s", endpoint) < 0) {
        snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
        zsock_destroy(&sock);
    }
    return sock;
}

static int bind_sockets(sup_server_t *self, char *err, size_t errlen)
{
    self->control = alys_router_bind(self->cfg.ep_supervisor);
    if (!self->control) {
        snprintf(err, errlen, "cannot bind the control socket %s: %s", self->cfg.ep_supervisor,
                 zmq_strerror(zmq_errno()));
        return -1;
    }
    self->xsub = bind_proxy_end(ZMQ_XSUB, self->cfg.ep_events_in, err, errlen);
    if (!self->xsub)
        return -1;
    self->xpub = bind_proxy_end(ZMQ_XPUB, self->cfg.ep_events, err, errlen);
    if (!self->xpub)
        return -1;
    /* Subscribe the XSUB to everything: the collector needs every "metric"
     * message whether or not a tool subscribes on the XPUB side. */
    if (zmq_send(zsock_resolve(self->xsub), "\x01", 1, 0) != 1) {
        snprintf(err, errlen, "cannot subscribe the event proxy: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static int add_children(sup_server_t *self)
{
    for (int k = 0; k < (int) NKINDS - 1; k++)
        if (kind_wanted(&self->cfg, s_kinds[k].kind) &&
            sup_add_child(self->sup, s_kinds[k].kind, s_kinds[k].kind, k) != 0)
            return -1;
    for (uint32_t i = 1; i <= self->cfg.validation_workers; i++) {
        char name[SUP_NAME_MAX];
        snprintf(name, sizeof name, "validator-%u", i);
        if (sup_add_child(self->sup, name, "validator", (int) NKINDS - 1) != 0)
            return -1;
    }
    return 0;
}

static sup_policy_t policy_of(const alys_config_t *cfg)
{
    return (sup_policy_t){
        .start_timeout_ms = cfg->start_timeout_ms,
        .heartbeat_interval_ms = cfg->heartbeat_interval_ms,
        .heartbeat_timeout_ms = cfg->heartbeat_timeout_ms,
        .backoff_min_ms = cfg->restart_backoff_min_ms,
        .backoff_max_ms = cfg->restart_backoff_max_ms,
        .max_restarts = cfg->max_restarts,
        .restart_window_ms = cfg->restart_window_secs * 1000,
        .shutdown_timeout_ms = cfg->shutdown_timeout_ms,
        .pause_min_ms = pause_min(cfg),
    };
}

static int start_metrics(sup_server_t *self, char *err, size_t errlen)
{
    self->collector = collector_new();
    if (!self->collector) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!self->cfg.metrics_enabled)
        return 0;
    self->http = metrics_http_new(self->collector, self->cfg.metrics_bind, self->cfg.metrics_port,
                                  err, errlen);
    if (!self->http)
        return -1;
    log_info("metrics at http://%s:%u/metrics", self->cfg.metrics_bind,
             (unsigned) self->cfg.metrics_port);
    return 0;
}

/* Actors leave their last words for a config exit (78) here; see
 * alys_actor_fail_config. The variable is inherited by every child. */
static int set_note_dir(sup_server_t *self, char *err, size_t errlen)
{
    if (setenv(ALYS_NOTE_DIR_ENV, self->cfg.run_dir, 1) != 0) {
        snprintf(err, errlen, "setenv: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int setup(sup_server_t *self, char *err, size_t errlen)
{
    if (preflight_check(&self->cfg, err, errlen) != 0 || set_note_dir(self, err, errlen) != 0 ||
        block_signals(self, err, errlen) != 0 || make_dirs(&self->cfg, err, errlen) != 0 ||
        lock_run_dir(self, err, errlen) != 0 || find_binaries(self, err, errlen) != 0)
        return -1;
    /* Our signalfd handles SIGINT/SIGTERM; CZMQ's handler must not eat them. */
    zsys_handler_set(NULL);
    if (bind_sockets(self, err, errlen) != 0 || start_metrics(self, err, errlen) != 0)
        return -1;
    sup_policy_t policy = policy_of(&self->cfg);
    self->sup = sup_new(&policy);
    if (!self->sup || add_children(self) != 0) {
        snprintf(err, errlen, "cannot build the child table");
        return -1;
    }
    if (self->cfg.warm_standby &&
        !(self->standbys = standby_new(sup_child_count(self->sup), self->cfg.restart_backoff_max_ms))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

sup_server_t *sup_server_new(const alys_config_t *cfg, const char *const *sets, size_t nsets,
                             char *err, size_t errlen)
{
    sup_server_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    for (size_t i = 0; i < nsets && i < ALYS_SET_MAX; i++)
        self->sets[self->nsets++] = sets[i];
    self->sigfd = self->contfd = self->lockfd = self->timer_id = -1;
    self->armed = INT64_MAX;
    /* Children get an absolute path: they may resolve it after we chdir'ed,
     * and a relative --config in a log line says little. */
    if (!realpath(cfg->path, self->config_path))
        snprintf(self->config_path, sizeof self->config_path, "%s", cfg->path);
    if (setup(self, err, errlen) != 0)
        sup_server_destroy(&self);
    return self;
}

void sup_server_destroy(sup_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sup_server_t *self = *self_p;
    metrics_http_destroy(&self->http);
    collector_destroy(&self->collector);
    zloop_destroy(&self->loop);
    for (int i = 0; i < 2; i++)
        zsock_destroy(&self->monitors[i]);
    zsock_destroy(&self->control);
    zsock_destroy(&self->xsub);
    zsock_destroy(&self->xpub);
    standby_destroy(&self->standbys);
    sup_destroy(&self->sup);
    if (self->sigfd >= 0)
        close(self->sigfd);
    if (self->contfd >= 0)
        close(self->contfd);
    if (self->lockfd >= 0)
        close(self->lockfd);
    free(self);
    *self_p = NULL;
}

/* ---- executing the logic's actions */

static const kind_info_t *kind_index(const char *kind, size_t *index)
{
    for (size_t k = 0; k < NKINDS; k++)
        if (strcmp(s_kinds[k].kind, kind) == 0) {
            *index = k;
            return &s_kinds[k];
        }
    return NULL;
}

static void note_path(const sup_server_t *self, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s%s", self->cfg.run_dir, name, ALYS_NOTE_SUFFIX);
}

static void clear_note(const sup_server_t *self, const char *name)
{
    char path[ALYS_PATH_MAX + SUP_NAME_MAX + 16];
    note_path(self, name, path, sizeof path);
    if (unlink(path) != 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", path, strerror(errno));
}

/* The child's last words (one line, bounded), "" if none; the file is gone
 * afterwards. */
static void read_note(const sup_server_t *self, const char *name, char *out, size_t len)
{
    char path[ALYS_PATH_MAX + SUP_NAME_MAX + 16];
    note_path(self, name, path, sizeof path);
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, len - 1);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    clear_note(self, name);
}

/* Built before fork: the child may not allocate. The --set overrides go
 * on, so every actor reads the config the supervisor checked. argv has room
 * for 9 + 2 * ALYS_SET_MAX entries. */
static void build_argv(sup_server_t *self, size_t k, const char *name, bool standby, char **argv)
{
    size_t n = 0;
    argv[n++] = self->binaries[k];
    argv[n++] = "--config";
    argv[n++] = self->config_path;
    argv[n++] = "--name";
    argv[n++] = (char *) name;
    argv[n++] = "--supervised";
    for (size_t i = 0; i < self->nsets; i++) {
        argv[n++] = "--set";
        argv[n++] = (char *) self->sets[i];
    }
    if (standby)
        argv[n++] = "--standby";
    argv[n] = NULL;
}

static void do_spawn(sup_server_t *self, const char *name)
{
    int64_t now = alys_mono_ms();
    const sup_child_t *c = sup_child_find(self->sup, name);
    size_t k = 0;
    if (!c || !kind_index(c->kind, &k)) {
        sup_spawn_failed(self->sup, name, "unknown actor kind", now);
        return;
    }
    char *argv[9 + 2 * ALYS_SET_MAX];
    build_argv(self, k, name, false, argv);
    clear_note(self, name);
    pid_t pid = self->standbys ? standby_activate(self->standbys, name) : 0;
    if (pid > 0) {
        log_debug("activated the standby of %s, pid %d", name, (int) pid);
    } else if ((pid = spawn_child(self->binaries[k], argv)) < 0) {
        sup_spawn_failed(self->sup, name, strerror(errno), input_clock(self));
        return;
    } else {
        log_debug("spawned %s as pid %d", name, (int) pid);
    }
    sup_spawned(self->sup, name, pid, input_clock(self));
}

/* One standby for every ready child that has none (standby.h). One spawn per
 * call: each blocks until the exec, and inputs come often enough. None while
 * shutting down: those left are killed. */
static void keep_standbys(sup_server_t *self)
{
    if (!self->standbys)
        return;
    if (sup_shutting_down(self->sup)) {
        standby_kill_all(self->standbys);
        return;
    }
    int64_t now = alys_mono_ms();
    for (size_t i = 0; i < sup_child_count(self->sup); i++) {
        const sup_child_t *c = sup_child_at(self->sup, i);
        size_t k = 0;
        if (c->state != SUP_READY || !kind_index(c->kind, &k) ||
            !standby_wanted(self->standbys, c->name, now))
            continue;
        char *argv[9 + 2 * ALYS_SET_MAX];
        build_argv(self, k, c->name, true, argv);
        if (standby_spawn(self->standbys, c->name, self->binaries[k], argv, now) != 0)
            log_warn("cannot spawn a standby for %s: %s (restarts spawn cold meanwhile)", c->name,
                     strerror(errno));
        return;
    }
}

static void do_kill(const sup_action_t *a)
{
    /* Never 0 or -1 (process group, everyone), never init. */
    if (a->pid <= 1)
        return;
    if (kill(a->pid, a->signal) != 0 && errno != ESRCH)
        log_warn("kill(%d, %d) for %s: %s", (int) a->pid, a->signal, a->name, strerror(errno));
}

static void send_control(sup_server_t *self, const char *name, Alys__Control__Control *ctl)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_CONTROL;
    env.control = ctl;
    /* EHOSTUNREACH (router mandatory) while the actor is not connected: the
     * heartbeat timeout covers it. */
    if (alys_send_to_name(self->control, name, &env) != 0)
        log_debug("cannot send %s to %s: %s", alys_env_body_name(&env), name,
                  zmq_strerror(zmq_errno()));
}

static void do_ping(sup_server_t *self, const sup_action_t *a)
{
    Alys__Control__Ping ping = ALYS__CONTROL__PING__INIT;
    ping.seq = a->seq;
    Alys__Control__Control ctl = ALYS__CONTROL__CONTROL__INIT;
    ctl.msg_case = ALYS__CONTROL__CONTROL__MSG_PING;
    ctl.ping = &ping;
    send_control(self, a->name, &ctl);
}

static void do_stop(sup_server_t *self, const sup_action_t *a)
{
    Alys__Control__Stop stop = ALYS__CONTROL__STOP__INIT;
    stop.reason = (char *) a->detail;
    Alys__Control__Control ctl = ALYS__CONTROL__CONTROL__INIT;
    ctl.msg_case = ALYS__CONTROL__CONTROL__MSG_STOP;
    ctl.stop = &stop;
    send_control(self, a->name, &ctl);
}

static void do_event(sup_server_t *self, const sup_action_t *a)
{
    Alys__Control__Field fields[SUP_MAX_FIELDS + 1];
    Alys__Control__Field *fp[SUP_MAX_FIELDS + 1];
    size_t n = 0;
    for (int i = 0; i < a->nfields; i++, n++) {
        alys__control__field__init(&fields[n]);
        fields[n].key = (char *) a->fields[i].key;
        fields[n].value = (char *) a->fields[i].value;
        fp[n] = &fields[n];
    }
    /* Microseconds of wall clock: the restart benchmark compares this with
     * the time it sent SIGKILL. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char time_us[32];
    snprintf(time_us, sizeof time_us, "%lld",
             (long long) ts.tv_sec * 1000000 + (long long) ts.tv_nsec / 1000);
    alys__control__field__init(&fields[n]);
    fields[n].key = "time_us";
    fields[n].value = time_us;
    fp[n] = &fields[n];
    n++;
    Alys__Control__Event ev = ALYS__CONTROL__EVENT__INIT;
    ev.topic = "lifecycle";
    ev.actor = (char *) a->name;
    ev.kind = (char *) a->event;
    ev.detail = (char *) a->detail;
    ev.time_ms = alys_now_ms();
    ev.n_fields = n;
    ev.fields = fp;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_EVENT;
    env.event = &ev;
    if (alys_publish(self->xpub, "lifecycle", &env) != 0)
        log_debug("cannot publish lifecycle %s of %s", a->event, a->name);
    if (strcmp(a->event, "removed") == 0)
        collector_forget(self->collector, a->name);
}

static void do_exit(sup_server_t *self, const sup_action_t *a)
{
    self->done = true;
    self->exit_code = a->exit_code;
    log_info("all actors stopped, exiting with %d", a->exit_code);
    /* The cause is the operator's last line (journalctl -u shows it last). */
    if (*a->detail)
        fprintf(stderr, "alys-supervisor: %s\n", a->detail);
}

static void execute(sup_server_t *self, const sup_action_t *a)
{
    switch (a->kind) {
    case SUP_ACT_SPAWN: do_spawn(self, a->name); break;
    case SUP_ACT_KILL: do_kill(a); break;
    case SUP_ACT_PING: do_ping(self, a); break;
    case SUP_ACT_STOP: do_stop(self, a); break;
    case SUP_ACT_EVENT: do_event(self, a); break;
    case SUP_ACT_EXIT: do_exit(self, a); break;
    }
}

/* ---- metrics of the supervisor itself */

static void escape_label(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (; *in && o + 3 < len; in++) {
        if (*in == '"' || *in == '\\') {
            out[o++] = '\\';
            out[o++] = *in;
        } else if (*in == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
}

static void child_metrics(sup_server_t *self, const sup_child_t *c)
{
    char labels[SUP_NAME_MAX + SUP_REASON_MAX * 2 + 32], reason[SUP_REASON_MAX * 2];
    snprintf(labels, sizeof labels, "actor=\"%s\"", c->name);
    bool up = c->state == SUP_READY || c->state == SUP_EXTERNAL;
    collector_set(self->collector, "alys_actor_up", labels, COLLECTOR_GAUGE,
                  "1 if the actor is running and answering heartbeats", up ? 1 : 0);
    collector_set(self->collector, "alys_actor_restarts_total", labels, COLLECTOR_COUNTER,
                  "Restarts of the actor by the supervisor", c->restarts);
    if (up && c->ready_at)
        collector_set(self->collector, "alys_actor_start_seconds", labels, COLLECTOR_GAUGE,
                      "Spawn to Ready of the actor's current process, seconds",
                      (double) (c->ready_at - c->spawned_at) / 1000.0);
    if (up && c->restarts && c->ready_at >= c->died_at && c->died_at)
        collector_set(self->collector, "alys_actor_restart_seconds", labels, COLLECTOR_GAUGE,
                      "Death to Ready of the actor's last restart, seconds",
                      (double) (c->ready_at - c->died_at) / 1000.0);
    if (*c->last_exit) {
        /* Info-style: one series per actor, its reason label replaced. */
        escape_label(c->last_exit, reason, sizeof reason);
        snprintf(labels, sizeof labels, "actor=\"%s\",reason=\"%s\"", c->name, reason);
        collector_remove(self->collector, "alys_actor_last_exit", c->name);
        collector_set(self->collector, "alys_actor_last_exit", labels, COLLECTOR_GAUGE,
                      "Last exit reason of the actor (value 1; the reason is the label)", 1);
    }
}

/* Every supervised actor ready? body: "ready\n", or a line per actor that
 * is not ("sync: starting"). */
static bool all_ready(sup_server_t *self, char *body, size_t len, int64_t now)
{
    size_t used = 0;
    bool ready = !sup_shutting_down(self->sup);
    body[0] = '\0';
    if (!ready)
        used = (size_t) snprintf(body, len, "not ready: the node is stopping\n");
    for (size_t i = 0; i < sup_child_count(self->sup); i++) {
        const sup_child_t *c = sup_child_at(self->sup, i);
        if (sup_child_answering(self->sup, c, now))
            continue;
        if (ready)
            used = (size_t) snprintf(body, len, "not ready:\n");
        ready = false;
        if (used >= len)
            continue;
        if (c->state == SUP_READY || c->state == SUP_EXTERNAL)
            used += (size_t) snprintf(body + used, len - used, "%s: no Pong for %lld ms\n",
                                      c->name, (long long) (now - c->last_seen));
        else
            used += (size_t) snprintf(body + used, len - used, "%s: %s\n", c->name,
                                      sup_state_name(c->state));
    }
    if (ready)
        snprintf(body, len, "ready: %zu actors\n", sup_child_count(self->sup));
    return ready;
}

/* /ready and systemd: READY=1 once, when every actor first is; STOPPING=1
 * when the shutdown begins. Refreshed after every input, not only on state
 * changes: an actor that stops answering changes nothing but the time. */
static void refresh_readiness(sup_server_t *self)
{
    char body[2048];
    bool ready = all_ready(self, body, sizeof body, alys_mono_ms());
    metrics_http_set_ready(self->http, ready, body);
    collector_set(self->collector, "alys_node_ready", "", COLLECTOR_GAUGE,
                  "1 when every supervised actor is ready (as /ready answers 200)", ready ? 1 : 0);
    if (ready && !self->ready_told) {
        self->ready_told = true;
        if (sdnotify_send("READY=1\nSTATUS=every actor ready") < 0)
            log_warn("sd_notify READY=1: %s", strerror(errno));
    }
    if (sup_shutting_down(self->sup) && !self->stopping_told) {
        self->stopping_told = true;
        if (sdnotify_send("STOPPING=1\nSTATUS=stopping actors") < 0)
            log_warn("sd_notify STOPPING=1: %s", strerror(errno));
    }
}

static void refresh_metrics(sup_server_t *self)
{
    uint64_t v = sup_version(self->sup);
    if (v == self->metrics_version)
        return;
    self->metrics_version = v;
    for (size_t i = 0; i < sup_child_count(self->sup); i++)
        child_metrics(self, sup_child_at(self->sup, i));
    if (self->standbys) {
        collector_set(self->collector, "alys_supervisor_standbys", "", COLLECTOR_GAUGE,
                      "Warm standby processes waiting to replace a dead actor",
                      (double) standby_count(self->standbys));
        collector_set(self->collector, "alys_supervisor_standby_activations_total", "",
                      COLLECTOR_COUNTER, "Restarts served by activating a warm standby",
                      (double) standby_activations(self->standbys));
    }
    collector_set(self->collector, "alys_supervisor_paused_seconds_total", "", COLLECTOR_COUNTER,
                  "Time the supervisor found it had not been running (stopped, VM paused), "
                  "not charged to the actors' heartbeat timeouts",
                  (double) sup_paused_ms(self->sup) / 1000.0);
    collector_set(self->collector, "alys_collector_dropped_total", "", COLLECTOR_COUNTER,
                  "Metric updates refused by the collector (bad name, labels or type)",
                  (double) collector_dropped(self->collector));
}

/* ---- process metrics, Prometheus' standard names, one series per actor */

#define PROCESS_METRICS_MS 1000 /* also the systemd watchdog period */

static void process_metrics_of(sup_server_t *self, const char *actor, pid_t pid)
{
    static const char *const families[] = {"process_cpu_seconds_total",
                                           "process_resident_memory_bytes",
                                           "process_virtual_memory_bytes",
                                           "process_open_fds",
                                           "process_max_fds",
                                           "process_start_time_seconds"};
    procstat_t ps;
    if (pid <= 0 || procstat_read(pid, &ps) != 0) {
        for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
            collector_remove(self->collector, families[i], actor);
        return;
    }
    char labels[SUP_NAME_MAX + 16];
    snprintf(labels, sizeof labels, "actor=\"%s\"", actor);
    collector_set(self->collector, families[0], labels, COLLECTOR_COUNTER,
                  "Total user and system CPU time spent in seconds.", ps.cpu_seconds);
    collector_set(self->collector, families[1], labels, COLLECTOR_GAUGE,
                  "Resident memory size in bytes.", ps.resident_bytes);
    collector_set(self->collector, families[2], labels, COLLECTOR_GAUGE,
                  "Virtual memory size in bytes.", ps.virtual_bytes);
    collector_set(self->collector, families[3], labels, COLLECTOR_GAUGE,
                  "Number of open file descriptors.", ps.open_fds);
    collector_set(self->collector, families[4], labels, COLLECTOR_GAUGE,
                  "Maximum number of open file descriptors.", ps.max_fds);
    collector_set(self->collector, families[5], labels, COLLECTOR_GAUGE,
                  "Start time of the process since unix epoch in seconds.", ps.start_time_seconds);
}

static int on_process_metrics(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    sup_server_t *self = arg;
    /* The loop is turning: systemd's watchdog (WatchdogSec=) is fed from
     * here, so a supervisor whose loop hangs is restarted. No-op outside
     * systemd. */
    if (sdnotify_send("WATCHDOG=1") < 0)
        log_debug("sd_notify WATCHDOG=1: %s", strerror(errno));
    process_metrics_of(self, "supervisor", getpid());
    for (size_t i = 0; i < sup_child_count(self->sup); i++) {
        const sup_child_t *c = sup_child_at(self->sup, i);
        /* Externals run elsewhere (maybe another host): not ours to read. */
        bool ours = c->state != SUP_EXTERNAL && c->pid > 0;
        process_metrics_of(self, c->name, ours ? c->pid : 0);
    }
    return 0;
}

static void build_info(sup_server_t *self)
{
    char labels[256];
    snprintf(labels, sizeof labels, "version=\"%s\",commit=\"%s\"", alys_version(), alys_commit());
    collector_set(self->collector, "alys_build_info", labels, COLLECTOR_GAUGE,
                  "Version and commit of the running binaries (value 1)", 1);
    /* The threshold of the AlysPeersBelowMinimum alert (deploy/alerts.yml). */
    collector_set(self->collector, "alys_config_min_sync_peers", "", COLLECTOR_GAUGE,
                  "sync.min_sync_peers of the config", self->cfg.min_sync_peers);
}

/* ---- ZeroMQ events of the supervisor's own sockets
 *
 * Actors publish their sockets' monitor events themselves, but an event
 * raised before an actor's PUB is connected is lost. The supervisor's side
 * of every actor connection (control and event sockets) is published here,
 * on the XPUB it owns, so `alysctl monitor` always shows actors connecting
 * and disconnecting. */

static void publish_zmq_event(sup_server_t *self, const char *kind, const char *detail)
{
    Alys__Control__Event ev = ALYS__CONTROL__EVENT__INIT;
    ev.topic = "zmq";
    ev.actor = "supervisor";
    ev.kind = (char *) kind;
    ev.detail = (char *) detail;
    ev.time_ms = alys_now_ms();
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_EVENT;
    env.event = &ev;
    if (alys_publish(self->xpub, "zmq", &env) != 0)
        log_debug("cannot publish zmq %s", kind);
}

static int on_monitor(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    sup_server_t *self = arg;
    const char *label = sock == self->monitors[0] ? self->monitor_labels[0]
                                                  : self->monitor_labels[1];
    char addr[256];
    int ev = sockmon_read(sock, addr, sizeof addr);
    if (ev != 0) {
        char detail[300];
        snprintf(detail, sizeof detail, "%s %s", label, addr);
        publish_zmq_event(self, sockmon_event_name(ev), detail);
    }
    return 0;
}

static int watch_socket(sup_server_t *self, int index, zsock_t *sock, const char *label)
{
    int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_ACCEPT_FAILED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    self->monitors[index] = sockmon_new(sock, label, events);
    self->monitor_labels[index] = label;
    if (!self->monitors[index])
        return -1;
    return zloop_reader(self->loop, self->monitors[index], on_monitor, self);
}

/* ---- the loop */

static int on_timer(zloop_t *loop, int timer_id, void *arg);

static void rearm(sup_server_t *self)
{
    int64_t next = sup_next_deadline(self->sup);
    if (next == self->armed)
        return;
    if (self->timer_id >= 0)
        zloop_timer_end(self->loop, self->timer_id);
    self->timer_id = -1;
    self->armed = INT64_MAX;
    if (next == INT64_MAX)
        return;
    int64_t delay = next - alys_mono_ms();
    self->timer_id = zloop_timer(self->loop, delay > 0 ? (size_t) delay : 0, 1, on_timer, self);
    if (self->timer_id >= 0)
        self->armed = next;
    else
        log_error("cannot arm the supervisor timer");
}

/* After every input: run the actions, refresh derived state. -1 ends the loop. */
static int process(sup_server_t *self)
{
    sup_action_t a;
    while (sup_next_action(self->sup, &a))
        execute(self, &a);
    keep_standbys(self);
    refresh_readiness(self);
    refresh_metrics(self);
    if (self->done)
        return -1;
    rearm(self);
    return 0;
}

static int on_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    sup_server_t *self = arg;
    self->timer_id = -1; /* one-shot: zloop has already forgotten it */
    self->armed = INT64_MAX;
    sup_tick(self->sup, input_clock(self));
    return process(self);
}

static void reap(sup_server_t *self)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        char note[SUP_DETAIL_MAX / 2] = "";
        if (WIFEXITED(status) && WEXITSTATUS(status) == SUP_EXIT_CONFIG) {
            const sup_child_t *c = NULL;
            for (size_t i = 0; i < sup_child_count(self->sup) && !c; i++)
                if (sup_child_at(self->sup, i)->pid == pid)
                    c = sup_child_at(self->sup, i);
            if (c)
                read_note(self, c->name, note, sizeof note);
        }
        if (self->standbys && standby_reaped(self->standbys, pid, alys_mono_ms())) {
            log_warn("standby pid %d ended before activation (status %d); replaced later",
                     (int) pid, status);
            continue;
        }
        if (!sup_exited_note(self->sup, pid, status, note, input_clock(self)))
            log_debug("reaped pid %d, not a current child", (int) pid);
    }
}

/* SIGHUP (systemctl reload): re-read the config, apply log_level and
 * log_format here and in every actor (each re-reads the file on the SIGHUP
 * passed on); the rest of the config needs a restart. A config that no
 * longer loads changes nothing and says why. */
static void reload(sup_server_t *self)
{
    alys_config_t fresh;
    char err[ALYS_ERR_MAX];
    if (alys_config_load_set(&fresh, self->config_path, self->sets, self->nsets, err, sizeof err) != 0) {
        log_error("SIGHUP: config not reloaded: %s", err);
        return;
    }
    (void) alys_log_set_level(fresh.log_level);
    (void) alys_log_set_format(fresh.log_format);
    snprintf(self->cfg.log_level, sizeof self->cfg.log_level, "%s", fresh.log_level);
    snprintf(self->cfg.log_format, sizeof self->cfg.log_format, "%s", fresh.log_format);
    log_info("SIGHUP: log_level %s, log_format %s; passed on to the actors", fresh.log_level,
             fresh.log_format);
    /* Standbys read the config only when activated, but run the binaries
     * that were on disk when they were spawned: replace them. */
    if (self->standbys)
        standby_kill_all(self->standbys);
    for (size_t i = 0; i < sup_child_count(self->sup); i++) {
        const sup_child_t *c = sup_child_at(self->sup, i);
        /* Only ready ones have their handler installed; never externals. */
        if (c->state == SUP_READY && c->pid > 1 && kill(c->pid, SIGHUP) != 0 && errno != ESRCH)
            log_warn("SIGHUP to %s: %s", c->name, strerror(errno));
    }
}

static int on_signal(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    sup_server_t *self = arg;
    struct signalfd_siginfo si;
    bool child = false;
    while (read(self->sigfd, &si, sizeof si) == (ssize_t) sizeof si) {
        if (si.ssi_signo == SIGCHLD)
            child = true;
        else if (si.ssi_signo == SIGHUP)
            reload(self);
        else
            sup_shutdown(self->sup, strsignal((int) si.ssi_signo), input_clock(self));
    }
    /* Signals coalesce: reap every exited child, not one per SIGCHLD. */
    if (child)
        reap(self);
    return process(self);
}

static void on_ready(sup_server_t *self, zframe_t *from, const Alys__Control__Ready *r)
{
    if (!r->name || zframe_size(from) != strlen(r->name) ||
        memcmp(zframe_data(from), r->name, zframe_size(from)) != 0) {
        /* Heartbeats are routed by name: a Ready from another routing id
         * could never be answered. */
        log_warn("Ready for '%s' from a socket with another routing id: ignored",
                 r->name ? r->name : "");
        return;
    }
    sup_ready_t ready = {.name = r->name,
                         .pid = r->pid,
                         .endpoint = r->endpoint,
                         .kind = r->kind,
                         .external = r->external};
    sup_ready(self->sup, &ready, input_clock(self));
}

static void reply_status(sup_server_t *self, zframe_t *from, const alys_env_t *req);

static int on_control(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    sup_server_t *self = arg;
    zframe_t *from = NULL;
    alys_env_t *env = NULL;
    int rc = alys_recv_from(sock, &from, &env);
    if (rc != 0)
        return 0; /* bad message: logged and counted by the bus */
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_CONTROL) {
        const Alys__Control__Control *ctl = env->control;
        char name[SUP_NAME_MAX];
        snprintf(name, sizeof name, "%.*s", (int) zframe_size(from), (char *) zframe_data(from));
        switch (ctl->msg_case) {
        case ALYS__CONTROL__CONTROL__MSG_READY: on_ready(self, from, ctl->ready); break;
        case ALYS__CONTROL__CONTROL__MSG_PONG:
            sup_pong(self->sup, name, ctl->pong->seq, input_clock(self));
            break;
        case ALYS__CONTROL__CONTROL__MSG_STATUS_REQUEST: reply_status(self, from, env); break;
        default: log_debug("ignored control message %d", (int) ctl->msg_case); break;
        }
    } else if (env->corr_id && !env->reply) {
        alys_reply_error(sock, from, env, ALYS_ERR_BAD_REQUEST,
                         "the supervisor takes control messages only");
    }
    alys_env_free(&env);
    zframe_destroy(&from);
    return process(self);
}

static void reply_status(sup_server_t *self, zframe_t *from, const alys_env_t *req)
{
    size_t n = sup_child_count(self->sup);
    Alys__Control__ActorStatus *rows = calloc(n ? n : 1, sizeof *rows);
    Alys__Control__ActorStatus **rp = calloc(n ? n : 1, sizeof *rp);
    if (!rows || !rp) {
        free(rows);
        free(rp);
        alys_reply_error(self->control, from, req, ALYS_ERR_INTERNAL, "out of memory");
        return;
    }
    int64_t now = alys_mono_ms();
    for (size_t i = 0; i < n; i++) {
        const sup_child_t *c = sup_child_at(self->sup, i);
        alys__control__actor_status__init(&rows[i]);
        rows[i].name = (char *) c->name;
        rows[i].pid = c->pid;
        rows[i].state = (char *) sup_state_name(c->state);
        rows[i].restarts = c->restarts;
        rows[i].uptime_s = c->pid > 0 && c->spawned_at ? (double) (now - c->spawned_at) / 1000.0 : 0;
        rows[i].endpoint = (char *) c->endpoint;
        rows[i].last_exit = (char *) c->last_exit;
        rp[i] = &rows[i];
    }
    Alys__Control__StatusReply reply = ALYS__CONTROL__STATUS_REPLY__INIT;
    reply.n_actors = n;
    reply.actors = rp;
    reply.supervisor_pid = (int32_t) getpid();
    reply.uptime_s = (double) (now - self->started_ms) / 1000.0;
    Alys__Control__Control ctl = ALYS__CONTROL__CONTROL__INIT;
    ctl.msg_case = ALYS__CONTROL__CONTROL__MSG_STATUS_REPLY;
    ctl.status_reply = &reply;
    alys_env_t rep = ALYS__BUS__ENVELOPE__INIT;
    rep.body_case = ALYS__BUS__ENVELOPE__BODY_CONTROL;
    rep.control = &ctl;
    if (alys_reply(self->control, from, req, &rep) != 0)
        log_debug("status reply not delivered: %s", zmq_strerror(zmq_errno()));
    free(rows);
    free(rp);
}

static void collect_metric(sup_server_t *self, zframe_t *frame)
{
    char err[256];
    alys_env_t *env = alys_env_decode(zframe_data(frame), zframe_size(frame), err, sizeof err);
    if (!env) {
        log_debug("dropped metric: %s", err);
        return;
    }
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_METRIC) {
        const Alys__Control__Metric *m = env->metric;
        if (collector_push(self->collector, env->sender, m->name, m->labels,
                           (collector_kind_t) m->kind, m->help, m->value, err, sizeof err) != 0)
            log_debug("metric from %s refused: %s", env->sender, err);
    }
    alys_env_free(&env);
}

/* The proxy: XSUB -> XPUB, collecting metrics on the way. */
static int on_events_in(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    sup_server_t *self = arg;
    zmsg_t *msg = zmsg_recv(sock);
    if (!msg)
        return 0;
    zframe_t *topic = zmsg_first(msg);
    if (zmsg_size(msg) == 2 && zframe_streq(topic, "metric"))
        collect_metric(self, zmsg_next(msg));
    if (zmsg_send(&msg, self->xpub) != 0)
        zmsg_destroy(&msg);
    return 0;
}

/* Subscriptions from tools, passed upstream as a proxy does. The XSUB's own
 * subscribe-all stays in force whatever they add or remove (libzmq counts
 * subscriptions per topic), so this changes nothing today; it keeps the
 * proxy standard if the subscribe-all ever goes. */
static int on_events_sub(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    sup_server_t *self = arg;
    zframe_t *f = zframe_recv(sock);
    if (f && zframe_send(&f, self->xsub, ZFRAME_DONTWAIT) != 0)
        zframe_destroy(&f);
    return 0;
}

int sup_server_run(sup_server_t *self)
{
    self->loop = zloop_new();
    if (!self->loop)
        return 1;
    zloop_set_nonstop(self->loop, true); /* signals come through our signalfd */
    self->sigitem = (zmq_pollitem_t){.socket = NULL, .fd = self->sigfd, .events = ZMQ_POLLIN};
    if (zloop_reader(self->loop, self->control, on_control, self) != 0 ||
        zloop_reader(self->loop, self->xsub, on_events_in, self) != 0 ||
        zloop_reader(self->loop, self->xpub, on_events_sub, self) != 0 ||
        zloop_poller(self->loop, &self->sigitem, on_signal, self) != 0) {
        log_error("cannot set up the event loop");
        return 1;
    }
    if (watch_socket(self, 0, self->control, "control") != 0 ||
        watch_socket(self, 1, self->xsub, "events_in") != 0)
        log_warn("cannot monitor the supervisor's sockets: no zmq events of its own");
    if (zloop_timer(self->loop, PROCESS_METRICS_MS, 0, on_process_metrics, self) < 0)
        log_warn("cannot arm the process metrics timer: no process_* metrics");
    build_info(self);
    self->started_ms = alys_mono_ms();
    log_info("supervising %zu actors (config %s)", sup_child_count(self->sup), self->config_path);
    sup_start(self->sup, self->started_ms);
    if (process(self) == 0)
        zloop_start(self->loop);
    if (!self->done) {
        /* The loop failed under us: leave no actor behind. */
        log_error("event loop ended unexpectedly: killing every actor");
        for (size_t i = 0; i < sup_child_count(self->sup); i++) {
            const sup_child_t *c = sup_child_at(self->sup, i);
            if (c->pid > 1 && c->state != SUP_EXTERNAL)
                kill(c->pid, SIGKILL);
        }
        while (waitpid(-1, NULL, 0) > 0)
            ;
        return 1;
    }
    return self->exit_code;
}
