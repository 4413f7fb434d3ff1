#include "actor.h"

#include <openssl/crypto.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "sockmon.h"
#include "util.h"
#include "version.h"

#define METRICS_FLUSH_MS 1000

typedef struct {
    alys_actor_t *actor;
    zsock_t *sock;
    alys_reader_fn *fn;
    void *arg;
    bool owned;     /* runtime-made socket: destroyed with the actor */
    char label[32]; /* for monitor sockets: whose events */
} reader_t;

typedef struct {
    alys_actor_t *actor;
    alys_timer_fn *fn;
    void *arg;
    size_t times;
    int id;
} timer_t_;

struct alys_actor {
    char kind[ALYS_NAME_MAX];
    char name[ALYS_NAME_MAX];
    char endpoint[ALYS_ENDPOINT_MAX];
    char *connect;            /* --connect */
    char *cert;               /* --cert */
    char prog[ALYS_NAME_MAX]; /* the binary's name, for messages */
    int hupfd;                /* signalfd of SIGHUP, -1 if none */
    zmq_pollitem_t hupitem;
    const char *sets[ALYS_SET_MAX]; /* --set KEY=VALUE, pointing into argv */
    size_t nsets;
    bool supervised;
    alys_config_t config;
    zloop_t *loop;
    zsock_t *control; /* DEALER -> supervisor */
    zsock_t *events;  /* PUB -> supervisor's XSUB */
    zsock_t *mailbox; /* ROUTER */
    alys_mailbox_fn *on_message;
    void *on_message_arg;
    zlistx_t *readers; /* reader_t* */
    zlistx_t *timers;  /* timer_t_* */
    alys_metrics_t *metrics;
    bool stopping;
};

/* The binary's own name for messages: alys-block-processor, not the kind. */
static const char *prog_name(char **argv)
{
    const char *p = argv && argv[0] ? strrchr(argv[0], '/') : NULL;
    return p ? p + 1 : (argv && argv[0] ? argv[0] : "alys-actor");
}

static void usage(FILE *out, const char *prog, const char *kind)
{
    fprintf(out,
            "usage: %s [--config FILE] [--set KEY=VALUE]... [--name NAME] [--connect ENDPOINT]\n"
            "       %*s [--cert FILE] [--supervised [--standby]]\n"
            "       %s --help | --version\n"
            "  one %s actor of an alys-sync node; normally started by alys-supervisor\n"
            "  --config FILE      the node's config (default: $ALYS_CONFIG, else %s)\n"
            "  --set KEY=VALUE    override a config key (table.key), as the supervisor passes on\n"
            "  --name NAME        actor name on the bus (default: %s)\n"
            "  --connect ENDPOINT work endpoint to connect to (remote validators; no config needed)\n"
            "  --cert FILE        CURVE client certificate (remote validators)\n"
            "  --supervised       started by alys-supervisor (exit when it dies)\n"
            "  --standby          (with --supervised) wait, loaded but idle, until the\n"
            "                     supervisor activates this process to replace a dead one\n"
            "  -h, --help         this help, on stdout\n"
            "  -V, --version      version and commit\n"
            "exit status: 0 stopped cleanly, 2 usage error, %d config error (not restarted)\n",
            prog, (int) strlen(prog), "", prog, kind, ALYS_DEFAULT_CONFIG, kind, ALYS_EXIT_CONFIG);
}

/* A usage error: the problem first, on its own line, then the usage. */
static int usage_error(const char *prog, const char *kind, const char *what, const char *arg)
{
    fprintf(stderr, "%s: %s%s%s%s\n", prog, what, arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
    usage(stderr, prog, kind);
    return -1;
}

static int add_set(alys_actor_t *self, const char *prog, const char *arg)
{
    if (self->nsets >= ALYS_SET_MAX)
        return usage_error(prog, self->kind, "too many --set options", NULL);
    if (!strchr(arg, '='))
        return usage_error(prog, self->kind, "--set needs KEY=VALUE, got", arg);
    self->sets[self->nsets++] = arg;
    return 0;
}

static int parse_args(alys_actor_t *self, int argc, char **argv, const char **config_path,
                      bool *name_given, bool *standby)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},  {"name", required_argument, 0, 'n'},
        {"connect", required_argument, 0, 'C'}, {"cert", required_argument, 0, 'k'},
        {"supervised", no_argument, 0, 's'},    {"standby", no_argument, 0, 'W'},
        {"help", no_argument, 0, 'h'},          {"set", required_argument, 0, 'S'},
        {"version", no_argument, 0, 'V'},       {0, 0, 0, 0}};
    const char *prog = prog_name(argv);
    optind = 1;
    opterr = 0; /* our own messages, problem first */
    int c;
    while ((c = getopt_long(argc, argv, ":c:n:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': *config_path = optarg; break;
        case 'n':
            *name_given = true;
            if (alys_strlcpy(self->name, optarg, sizeof self->name) != 0)
                return usage_error(prog, self->kind, "--name is too long:", optarg);
            break;
        case 'C':
            free(self->connect);
            self->connect = strdup(optarg);
            break;
        case 'k':
            free(self->cert);
            self->cert = strdup(optarg);
            break;
        case 's': self->supervised = true; break;
        case 'W': *standby = true; break;
        case 'S':
            if (add_set(self, prog, optarg) != 0)
                return -1;
            break;
        case 'h': usage(stdout, prog, self->kind); return 1;
        case 'V': alys_print_version(prog); return 1;
        case ':': return usage_error(prog, self->kind, "option needs a value:", argv[optind - 1]);
        default: return usage_error(prog, self->kind, "unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error(prog, self->kind, "unexpected argument", argv[optind]);
    if (*standby && !self->supervised)
        return usage_error(prog, self->kind, "--standby needs --supervised", NULL);
    if (!*config_path && !self->connect)
        *config_path = alys_config_default_path();
    return 0;
}

/* The message of a config exit, where the supervisor looks for it (see
 * ALYS_NOTE_DIR_ENV). Best effort: stderr has it anyway. */
static void leave_note(const char *name, const char *msg)
{
    const char *dir = getenv(ALYS_NOTE_DIR_ENV);
    if (!dir || !*dir || strchr(name, '/'))
        return;
    char path[ALYS_PATH_MAX + ALYS_NAME_MAX + 16];
    int n = snprintf(path, sizeof path, "%s/%s%s", dir, name, ALYS_NOTE_SUFFIX);
    if (n < 0 || (size_t) n >= sizeof path)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    ssize_t w = write(fd, msg, strlen(msg));
    (void) w;
    close(fd);
}

static void fail_config_msg(const char *prog, const char *name, const char *msg)
{
    fprintf(stderr, "%s: config error: %s\n", prog, msg);
    leave_note(name, msg);
}

void alys_actor_fail_config(alys_actor_t *self, const char *fmt, ...)
{
    char msg[ALYS_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_error("config error: %s", msg);
    fail_config_msg(self->prog, self->name, msg);
    exit(ALYS_EXIT_CONFIG);
}

static int load_config(alys_actor_t *self, const char *path)
{
    alys_config_defaults(&self->config);
    if (!path)
        return 0;
    char err[ALYS_ERR_MAX];
    if (alys_config_load_set(&self->config, path, self->sets, self->nsets, err, sizeof err) != 0) {
        fail_config_msg(self->prog, self->name, err);
        return -1;
    }
    return 0;
}

static int on_control(zloop_t *loop, zsock_t *sock, void *arg);
static int on_flush(zloop_t *loop, int timer_id, void *arg);
static int on_sighup(zloop_t *loop, zmq_pollitem_t *item, void *arg);

/* SIGHUP is blocked and read from a signalfd in the loop: a handler would
 * interrupt zmq_poll, and zloop ends on EINTR. Blocked before the first
 * ZeroMQ socket, so libzmq's threads inherit the mask. */
static int watch_sighup(alys_actor_t *self)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    self->hupfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return self->hupfd < 0 ? -1 : 0;
}

static int connect_bus(alys_actor_t *self)
{
    const alys_config_t *cfg = &self->config;
    self->loop = zloop_new();
    self->events = alys_pub_connect(cfg->ep_events_in);
    self->control = alys_dealer_connect(cfg->ep_supervisor, self->name);
    if (!self->loop || !self->events || !self->control)
        return -1;
    if (zloop_reader(self->loop, self->control, on_control, self) != 0)
        return -1;
    if (zloop_timer(self->loop, METRICS_FLUSH_MS, 0, on_flush, self) < 0)
        return -1;
    if (self->hupfd >= 0) {
        self->hupitem = (zmq_pollitem_t){.socket = NULL, .fd = self->hupfd, .events = ZMQ_POLLIN};
        if (zloop_poller(self->loop, &self->hupitem, on_sighup, self) != 0)
            return -1;
    }
    return 0;
}

/* A warm standby (--standby): the supervisor spawned this process ahead of
 * need so that a restart skips exec, dynamic linking (about 35 shared
 * libraries, most of a cold start) and static initialisers. It also does,
 * before waiting, the start-up work that claims nothing: the ZeroMQ context
 * and its I/O thread, OpenSSL's configuration. Then it waits, before reading
 * the config, binding or connecting anything (the dead process's routing id
 * and, for storage, its database are not ours yet), for SIGUSR1 from the
 * supervisor. The supervisor spawned us with SIGUSR1 already blocked, so a
 * signal sent early stays pending instead of killing us. SIGTERM or SIGINT
 * while waiting end the standby at once; if the supervisor dies,
 * PR_SET_PDEATHSIG does. The config is read after activation, so a standby
 * never starts with a stale one. */
static int wait_activation(void)
{
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, SIGUSR1);
    sigaddset(&wake, SIGTERM);
    sigaddset(&wake, SIGINT);
    if (sigprocmask(SIG_BLOCK, &wake, NULL) != 0)
        return -1;
    zsys_init();
    /* libzmq starts a context's I/O and reaper threads at its first socket,
     * not at zmq_ctx_new: open and close one now, so the activated actor
     * does not spend two thread creations on its way to Ready. */
    zsock_t *warm = zsock_new(ZMQ_PAIR);
    zsock_destroy(&warm);
    (void) OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&wake, &si);
        if (sig < 0 && errno != EINTR)
            return -1;
        if (sig == SIGTERM || sig == SIGINT)
            _exit(0); /* nothing was started: nothing to stop */
        if (sig == SIGUSR1 && si.si_pid == getppid())
            break; /* only our supervisor activates us */
    }
    return sigprocmask(SIG_UNBLOCK, &wake, NULL);
}

alys_actor_t *alys_actor_new(const char *kind, int argc, char **argv)
{
    alys_actor_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->kind, sizeof self->kind, "%s", kind);
    snprintf(self->name, sizeof self->name, "%s", kind);
    snprintf(self->prog, sizeof self->prog, "%s", prog_name(argv));
    self->hupfd = -1;
    const char *config_path = NULL;
    bool name_given = false;
    bool standby = false;
    int rc = parse_args(self, argc, argv, &config_path, &name_given, &standby);
    if (rc != 0) {
        alys_actor_destroy(&self);
        if (rc > 0)
            exit(0); /* --help or --version: done, nothing started */
        return NULL; /* usage error: the caller exits 2 */
    }
    if (standby && wait_activation() != 0) {
        alys_actor_destroy(&self);
        return NULL;
    }
    if (load_config(self, config_path) != 0) {
        alys_actor_destroy(&self);
        exit(ALYS_EXIT_CONFIG); /* the supervisor will not restart us for it */
    }
    /* Supervised actors must not outlive the supervisor: it set
     * PR_SET_PDEATHSIG before exec; if it already died in between, go now. */
    if (self->supervised && getppid() == 1) {
        fprintf(stderr, "alys-%s: supervisor is gone, exiting\n", kind);
        alys_actor_destroy(&self);
        return NULL;
    }
    /* Validators started by hand need distinct names on the bus, or two of
     * them would take over each other's routing id. */
    if (!self->supervised && !name_given && strcmp(kind, "validator") == 0)
        snprintf(self->name, sizeof self->name, "validator-ext-%d", (int) getpid());
    alys_log_init(self->name, self->config.log_level);
    (void) alys_log_set_format(self->config.log_format);
    if (watch_sighup(self) != 0)
        log_warn("cannot handle SIGHUP: %s", strerror(errno));
    alys_bus_set_name(self->name);
    self->readers = zlistx_new();
    self->timers = zlistx_new();
    self->metrics = alys_metrics_new();
    if (!self->readers || !self->timers || !self->metrics || connect_bus(self) != 0) {
        log_error("cannot set up the bus");
        alys_actor_destroy(&self);
        return NULL;
    }
    return self;
}

void alys_actor_destroy(alys_actor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    alys_actor_t *self = *self_p;
    zloop_destroy(&self->loop);
    if (self->readers) {
        for (reader_t *r = zlistx_first(self->readers); r; r = zlistx_next(self->readers)) {
            if (r->owned)
                zsock_destroy(&r->sock);
            free(r);
        }
        zlistx_destroy(&self->readers);
    }
    if (self->timers) {
        for (timer_t_ *t = zlistx_first(self->timers); t; t = zlistx_next(self->timers))
            free(t);
        zlistx_destroy(&self->timers);
    }
    zsock_destroy(&self->mailbox);
    zsock_destroy(&self->control);
    zsock_destroy(&self->events);
    alys_metrics_destroy(&self->metrics);
    if (self->hupfd >= 0)
        close(self->hupfd);
    free(self->connect);
    free(self->cert);
    free(self);
    *self_p = NULL;
}

const alys_config_t *alys_actor_config(alys_actor_t *self)
{
    return &self->config;
}
const char *alys_actor_name(alys_actor_t *self)
{
    return self->name;
}
const char *alys_actor_kind(alys_actor_t *self)
{
    return self->kind;
}
bool alys_actor_supervised(alys_actor_t *self)
{
    return self->supervised;
}
alys_metrics_t *alys_actor_metrics(alys_actor_t *self)
{
    return self->metrics;
}
zsock_t *alys_actor_mailbox(alys_actor_t *self)
{
    return self->mailbox;
}
zsock_t *alys_actor_events(alys_actor_t *self)
{
    return self->events;
}

const char *alys_actor_arg(alys_actor_t *self, const char *option)
{
    if (strcmp(option, "connect") == 0)
        return self->connect;
    if (strcmp(option, "cert") == 0)
        return self->cert;
    return NULL;
}

/* ---- control plane: ping/pong, stop */

static void send_pong(alys_actor_t *self, uint64_t seq)
{
    Alys__Control__Pong pong = ALYS__CONTROL__PONG__INIT;
    pong.seq = seq;
    Alys__Control__Control ctl = ALYS__CONTROL__CONTROL__INIT;
    ctl.msg_case = ALYS__CONTROL__CONTROL__MSG_PONG;
    ctl.pong = &pong;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_CONTROL;
    env.control = &ctl;
    if (alys_send(self->control, &env) != 0)
        log_warn("cannot answer heartbeat %llu", (unsigned long long) seq);
}

static int on_control(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    alys_actor_t *self = arg;
    alys_env_t *env = NULL;
    int rc = alys_recv(sock, &env);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    int result = 0;
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_CONTROL) {
        Alys__Control__Control *ctl = env->control;
        if (ctl->msg_case == ALYS__CONTROL__CONTROL__MSG_PING)
            send_pong(self, ctl->ping->seq);
        else if (ctl->msg_case == ALYS__CONTROL__CONTROL__MSG_STOP) {
            log_info("stop requested by the supervisor: %s", ctl->stop->reason);
            self->stopping = true;
            result = -1;
        }
    }
    alys_env_free(&env);
    return result;
}

/* The bus keeps its own totals; carry them into the counter as deltas so the
 * series keeps counter semantics. */
static void sync_counter(alys_metrics_t *m, const char *labels, uint64_t total)
{
    const char *name = "alys_bus_dropped_total";
    double delta = (double) total - alys_metric_value(m, name, labels);
    alys_metric_add(m, name, labels, "Bus messages dropped on receipt, by reason", delta);
}

/* Re-reads the config file (with the same --set overrides) and applies what
 * may change while running: log_level and log_format. The rest needs a
 * restart; a config that no longer loads is reported and ignored. */
static void reload(alys_actor_t *self)
{
    if (!self->config.path[0])
        return;
    alys_config_t fresh;
    char err[ALYS_ERR_MAX];
    if (alys_config_load_set(&fresh, self->config.path, self->sets, self->nsets, err, sizeof err) != 0) {
        log_error("SIGHUP: config not reloaded: %s", err);
        return;
    }
    (void) alys_log_set_level(fresh.log_level);
    (void) alys_log_set_format(fresh.log_format);
    log_info("SIGHUP: log_level %s, log_format %s", fresh.log_level, fresh.log_format);
}

static int on_sighup(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void) loop;
    (void) item;
    alys_actor_t *self = arg;
    struct signalfd_siginfo si;
    bool got = false;
    while (read(self->hupfd, &si, sizeof si) == (ssize_t) sizeof si)
        got = true;
    if (got)
        reload(self);
    return 0;
}

static int on_flush(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    alys_actor_t *self = arg;
    const alys_bus_stats_t *st = alys_bus_stats();
    sync_counter(self->metrics, "reason=\"malformed\"", st->malformed);
    sync_counter(self->metrics, "reason=\"oversize\"", st->oversize);
    sync_counter(self->metrics, "reason=\"bad_framing\"", st->bad_framing);
    if (alys_metrics_flush(self->metrics, self->events) < 0)
        log_debug("metrics flush failed");
    return 0;
}

/* ---- mailbox, readers, timers */

static int on_mailbox(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    alys_actor_t *self = arg;
    zframe_t *from = NULL;
    alys_env_t *env = NULL;
    int rc = alys_recv_from(sock, &from, &env);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    int result = self->on_message ? self->on_message(self, from, env, self->on_message_arg) : 0;
    alys_env_free(&env);
    zframe_destroy(&from);
    return self->stopping ? -1 : result;
}

int alys_actor_bind(alys_actor_t *self, const char *endpoint, alys_mailbox_fn *fn, void *arg)
{
    self->mailbox = alys_router_bind(endpoint);
    if (!self->mailbox)
        return -1;
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    self->on_message = fn;
    self->on_message_arg = arg;
    if (zloop_reader(self->loop, self->mailbox, on_mailbox, self) != 0)
        return -1;
    alys_actor_monitor(self, self->mailbox, "mailbox");
    return 0;
}

static int on_reader(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    reader_t *r = arg;
    int rc = r->fn(r->actor, sock, r->arg);
    return r->actor->stopping ? -1 : rc;
}

static reader_t *add_reader(alys_actor_t *self, zsock_t *sock, alys_reader_fn *fn, void *arg, bool owned)
{
    reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    *r = (reader_t){.actor = self, .sock = sock, .fn = fn, .arg = arg, .owned = owned};
    if (!zlistx_add_end(self->readers, r) || zloop_reader(self->loop, sock, on_reader, r) != 0) {
        zlistx_delete(self->readers, zlistx_find(self->readers, r));
        free(r);
        return NULL;
    }
    zloop_reader_set_tolerant(self->loop, sock);
    return r;
}

int alys_actor_add_reader(alys_actor_t *self, zsock_t *sock, alys_reader_fn *fn, void *arg)
{
    return add_reader(self, sock, fn, arg, false) ? 0 : -1;
}

void alys_actor_remove_reader(alys_actor_t *self, zsock_t *sock)
{
    zloop_reader_end(self->loop, sock);
    for (reader_t *r = zlistx_first(self->readers); r; r = zlistx_next(self->readers)) {
        if (r->sock == sock) {
            zlistx_delete(self->readers, zlistx_cursor(self->readers));
            free(r);
            return;
        }
    }
}

static int on_timer(zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    timer_t_ *t = arg;
    alys_actor_t *self = t->actor;
    int rc = t->fn(self, t->arg);
    if (t->times == 1) {
        /* One-shot: zloop forgets it now, so do we. */
        void *handle = zlistx_find(self->timers, t);
        if (handle)
            zlistx_delete(self->timers, handle);
        free(t);
    }
    return self->stopping ? -1 : rc;
}

int alys_actor_add_timer(alys_actor_t *self, size_t delay_ms, size_t times, alys_timer_fn *fn,
                         void *arg)
{
    timer_t_ *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    *t = (timer_t_){.actor = self, .fn = fn, .arg = arg, .times = times};
    t->id = zloop_timer(self->loop, delay_ms, times, on_timer, t);
    if (t->id < 0 || !zlistx_add_end(self->timers, t)) {
        if (t->id >= 0)
            zloop_timer_end(self->loop, t->id);
        free(t);
        return -1;
    }
    return t->id;
}

void alys_actor_cancel_timer(alys_actor_t *self, int timer_id)
{
    for (timer_t_ *t = zlistx_first(self->timers); t; t = zlistx_next(self->timers)) {
        if (t->id == timer_id) {
            zloop_timer_end(self->loop, timer_id);
            zlistx_delete(self->timers, zlistx_cursor(self->timers));
            free(t);
            return;
        }
    }
}

/* ---- ZeroMQ socket monitor -> event bus */

static int on_monitor(alys_actor_t *self, zsock_t *sock, void *arg)
{
    reader_t *r = arg;
    char addr[256];
    int ev = sockmon_read(sock, addr, sizeof addr);
    /* Connect retries every few ms would drown the stream: skip them. */
    if (ev != 0 && ev != ZMQ_EVENT_CONNECT_RETRIED && ev != ZMQ_EVENT_CONNECT_DELAYED)
        alys_actor_event(self, "zmq", sockmon_event_name(ev), "%s %s", r->label, addr);
    return 0;
}

int alys_actor_monitor(alys_actor_t *self, zsock_t *sock, const char *label)
{
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_ACCEPTED |
                 ZMQ_EVENT_LISTENING | ZMQ_EVENT_BIND_FAILED | ZMQ_EVENT_CLOSED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
    zsock_t *pair = sockmon_new(sock, label, events);
    if (!pair)
        return -1;
    reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        zsock_destroy(&pair);
        return -1;
    }
    *r = (reader_t){.actor = self, .sock = pair, .fn = on_monitor, .owned = true};
    r->arg = r;
    snprintf(r->label, sizeof r->label, "%s", label);
    if (!zlistx_add_end(self->readers, r) || zloop_reader(self->loop, pair, on_reader, r) != 0) {
        zsock_destroy(&pair);
        free(r);
        return -1;
    }
    return 0;
}

/* ---- lifecycle */

int alys_actor_ready(alys_actor_t *self)
{
    Alys__Control__Ready ready = ALYS__CONTROL__READY__INIT;
    ready.name = self->name;
    ready.pid = (int32_t) getpid();
    ready.endpoint = self->endpoint;
    ready.kind = self->kind;
    ready.external = !self->supervised;
    Alys__Control__Control ctl = ALYS__CONTROL__CONTROL__INIT;
    ctl.msg_case = ALYS__CONTROL__CONTROL__MSG_READY;
    ctl.ready = &ready;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_CONTROL;
    env.control = &ctl;
    log_info("ready (mailbox %s)", *self->endpoint ? self->endpoint : "none");
    return alys_send(self->control, &env);
}

int alys_actor_event(alys_actor_t *self, const char *topic, const char *kind, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    Alys__Control__Event ev = ALYS__CONTROL__EVENT__INIT;
    ev.topic = (char *) topic;
    ev.actor = self->name;
    ev.kind = (char *) kind;
    ev.detail = detail;
    ev.time_ms = alys_now_ms();
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_EVENT;
    env.event = &ev;
    return alys_publish(self->events, topic, &env);
}

int alys_actor_run(alys_actor_t *self)
{
    zloop_start(self->loop);
    if (zsys_interrupted)
        log_info("stopping on signal");
    on_flush(self->loop, 0, self);
    return 0;
}

void alys_actor_stop(alys_actor_t *self)
{
    self->stopping = true;
}
