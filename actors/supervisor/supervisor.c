/*  supervisor.c: child table, restart policy and shutdown as a state machine.
 *  See supervisor.h for the states; every function here is pure bookkeeping
 *  over the times it is given.
 */
#include "supervisor.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "log.h"

struct sup {
    sup_policy_t policy;
    sup_child_t **children; /* supervised first (start order), externals after */
    size_t count, cap;
    size_t supervised;     /* children[0 .. supervised) are ours */
    sup_action_t *actions; /* FIFO: actions[head .. nact) pending */
    size_t nact, head, act_cap;
    bool started;
    bool shutting_down;
    bool exited;
    int stop_group; /* group being stopped during shutdown */
    int exit_code;
    char exit_message[SUP_DETAIL_MAX];
    uint64_t version;
    bool seen_input;    /* last_input is set */
    bool resumed;       /* SIGCONT since the last input: it was stopped */
    int64_t last_input; /* time of the latest input */
    int64_t paused_ms;  /* sum of the gaps not charged to children */
};

/* ---- construction */

sup_t *sup_new(const sup_policy_t *policy)
{
    sup_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->policy = *policy;
    return self;
}

static void child_free(sup_child_t **child_p)
{
    if (*child_p) {
        free((*child_p)->deaths);
        free(*child_p);
        *child_p = NULL;
    }
}

void sup_destroy(sup_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sup_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        child_free(&self->children[i]);
    free(self->children);
    free(self->actions);
    free(self);
    *self_p = NULL;
}

static sup_child_t *child_new(const char *name, const char *kind, int group, unsigned death_cap)
{
    sup_child_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->kind, sizeof c->kind, "%s", kind);
    c->group = group;
    c->death_cap = death_cap;
    if (death_cap) {
        c->deaths = calloc(death_cap, sizeof *c->deaths);
        if (!c->deaths) {
            free(c);
            return NULL;
        }
    }
    return c;
}

/* Insert at index (supervised children go before the externals). */
static int table_insert(sup_t *self, sup_child_t *c, size_t index)
{
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        sup_child_t **p = realloc(self->children, cap * sizeof *p);
        if (!p)
            return -1;
        self->children = p;
        self->cap = cap;
    }
    memmove(&self->children[index + 1], &self->children[index],
            (self->count - index) * sizeof *self->children);
    self->children[index] = c;
    self->count++;
    return 0;
}

static void table_remove(sup_t *self, size_t index)
{
    child_free(&self->children[index]);
    memmove(&self->children[index], &self->children[index + 1],
            (self->count - index - 1) * sizeof *self->children);
    self->count--;
}

static sup_child_t *find(const sup_t *self, const char *name, size_t *index)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->children[i]->name, name) == 0) {
            if (index)
                *index = i;
            return self->children[i];
        }
    return NULL;
}

int sup_add_child(sup_t *self, const char *name, const char *kind, int group)
{
    if (self->started || find(self, name, NULL) || strlen(name) >= SUP_NAME_MAX || group < 0)
        return -1;
    /* The intensity check needs the last max_restarts+1 death times. */
    sup_child_t *c = child_new(name, kind, group, self->policy.max_restarts + 1);
    if (!c || table_insert(self, c, self->supervised) != 0) {
        child_free(&c);
        return -1;
    }
    self->supervised++;
    return 0;
}

/* ---- actions */

static sup_action_t *push(sup_t *self, sup_action_kind_t kind, const char *name)
{
    if (self->head == self->nact)
        self->head = self->nact = 0; /* drained: reuse from the start */
    if (self->nact == self->act_cap) {
        size_t cap = self->act_cap ? self->act_cap * 2 : 32;
        sup_action_t *p = realloc(self->actions, cap * sizeof *p);
        if (!p) {
            log_error("out of memory queueing a supervisor action");
            return NULL;
        }
        self->actions = p;
        self->act_cap = cap;
    }
    sup_action_t *a = &self->actions[self->nact++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    snprintf(a->name, sizeof a->name, "%s", name ? name : "");
    return a;
}

bool sup_next_action(sup_t *self, sup_action_t *out)
{
    if (self->head == self->nact)
        return false;
    *out = self->actions[self->head++];
    return true;
}

static void add_field(sup_action_t *a, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_field(sup_action_t *a, const char *key, const char *fmt, ...)
{
    if (!a || a->nfields >= SUP_MAX_FIELDS)
        return;
    sup_field_t *f = &a->fields[a->nfields++];
    snprintf(f->key, sizeof f->key, "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->value, sizeof f->value, fmt, ap);
    va_end(ap);
}

static sup_action_t *event(sup_t *self, const sup_child_t *c, const char *kind, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));

static sup_action_t *event(sup_t *self, const sup_child_t *c, const char *kind, const char *fmt, ...)
{
    sup_action_t *a = push(self, SUP_ACT_EVENT, c->name);
    if (!a)
        return NULL;
    snprintf(a->event, sizeof a->event, "%s", kind);
    a->pid = c->pid;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->detail, sizeof a->detail, fmt, ap);
    va_end(ap);
    return a;
}

static void act_kill(sup_t *self, const sup_child_t *c, int sig)
{
    sup_action_t *a = push(self, SUP_ACT_KILL, c->name);
    if (a) {
        a->pid = c->pid;
        a->signal = sig;
    }
}

static void set_state(sup_t *self, sup_child_t *c, sup_state_t state)
{
    c->state = state;
    self->version++;
}

/* ---- the supervisor's own running time */

/* Moves every running timeout on by lost ms: the time between the deadline
 * the loop slept towards and now, in which the supervisor did not run. A
 * child's silence only counts while we were there to hear it. And whatever
 * it had left, a child gets one heartbeat interval of our running time to be
 * heard after the pause (its Pong or Ready may sit unread in the socket while
 * the timer fires first). Backoff expiries are not moved: a late restart
 * gains nothing from waiting more. */
static void discount(sup_t *self, int64_t lost, int64_t now)
{
    int64_t grace = now + self->policy.heartbeat_interval_ms;
    int64_t seen_floor = grace - self->policy.heartbeat_timeout_ms;
    for (size_t i = 0; i < self->count; i++) {
        sup_child_t *c = self->children[i];
        switch (c->state) {
        case SUP_READY:
        case SUP_EXTERNAL:
            c->last_seen += lost; /* the Pong wait resumes where it stopped */
            if (c->last_seen < seen_floor)
                c->last_seen = seen_floor;
            break;
        case SUP_STARTING:
        case SUP_STOPPING:
            c->deadline += lost;
            if (c->deadline < grace)
                c->deadline = grace;
            break;
        default: break;
        }
    }
    self->paused_ms += lost;
    self->version++;
}

/* Called first by every input. The loop wakes by sup_next_deadline at the
 * latest (state changes only through inputs, so the deadline computed now is
 * the one it slept towards); being later than that after a SIGCONT, or by at
 * least pause_min_ms, means we were stopped or paused. The ping due
 * meanwhile goes out on this tick. */
static void observe(sup_t *self, int64_t now)
{
    if (self->seen_input) {
        int64_t due = sup_next_deadline(self);
        if (due < self->last_input)
            due = self->last_input; /* we were running at the last input */
        int64_t late = due == INT64_MAX ? 0 : now - due;
        bool paused = late > 0 && (self->resumed || late >= (int64_t) self->policy.pause_min_ms);
        if (paused) {
            alys_log(late >= (int64_t) self->policy.heartbeat_interval_ms ? ALYS_LOG_WARN
                                                                          : ALYS_LOG_DEBUG,
                     "the supervisor did not run for %lld ms (stopped or paused): "
                     "heartbeat and start/stop timeouts resume from now",
                     (long long) late);
            discount(self, late, now);
        }
    }
    self->seen_input = true;
    self->resumed = false;
    if (now > self->last_input)
        self->last_input = now;
}

/* ---- starting */

static void spawn(sup_t *self, sup_child_t *c, int64_t now)
{
    c->pid = 0;
    c->spawned_at = now;
    c->ready_at = 0;
    c->kill_cause = NULL;
    c->deadline = now + self->policy.start_timeout_ms;
    set_state(self, c, SUP_STARTING);
    push(self, SUP_ACT_SPAWN, c->name);
}

static bool is_running(const sup_child_t *c)
{
    return c->state == SUP_STARTING || c->state == SUP_READY || c->state == SUP_KILLING ||
           c->state == SUP_STOPPING;
}

/* A group may start once every supervised child of the groups before it is ready. */
static bool deps_ready(const sup_t *self, int group)
{
    for (size_t i = 0; i < self->supervised; i++) {
        const sup_child_t *c = self->children[i];
        if (c->group < group && c->state != SUP_READY)
            return false;
    }
    return true;
}

static void start_pending(sup_t *self, int64_t now)
{
    if (!self->started || self->shutting_down)
        return;
    for (size_t i = 0; i < self->supervised; i++) {
        sup_child_t *c = self->children[i];
        if (c->state == SUP_IDLE && deps_ready(self, c->group))
            spawn(self, c, now);
    }
}

void sup_start(sup_t *self, int64_t now)
{
    if (self->started)
        return;
    observe(self, now);
    self->started = true;
    start_pending(self, now);
    if (self->supervised == 0)
        log_warn("no actors to supervise");
}

void sup_spawned(sup_t *self, const char *name, pid_t pid, int64_t now)
{
    observe(self, now);
    sup_child_t *c = find(self, name, NULL);
    if (!c)
        return;
    c->pid = pid;
    if (c->state != SUP_STARTING) {
        /* Cannot happen with the caller's action order; never leave a stray. */
        log_error("%s spawned as pid %d while %s: killing it", name, (int) pid,
                  sup_state_name(c->state));
        act_kill(self, c, SIGKILL);
        set_state(self, c, SUP_KILLING);
        return;
    }
    event(self, c, "spawned", "pid %d", (int) pid);
    self->version++;
}

/* ---- deaths and the restart policy */

static void record_exit(sup_child_t *c, const char *reason)
{
    snprintf(c->last_exit, sizeof c->last_exit, "%s", reason);
    snprintf(c->exits[c->exit_count % SUP_LAST_EXITS], sizeof c->exits[0], "%s", reason);
    c->exit_count++;
}

/* Deaths at or after since, in the ring. */
static unsigned deaths_since(const sup_child_t *c, int64_t since)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->death_count; i++)
        if (c->deaths[i] >= since)
            n++;
    return n;
}

static void record_death(sup_child_t *c, int64_t now)
{
    if (!c->death_cap)
        return;
    c->deaths[c->death_head] = now;
    c->death_head = (c->death_head + 1) % c->death_cap;
    if (c->death_count < c->death_cap)
        c->death_count++;
}

/* "exit 1; signal 9 (Killed); exit 1", oldest first. */
static void last_exits(const sup_child_t *c, char *buf, size_t len)
{
    unsigned n = c->exit_count < SUP_LAST_EXITS ? c->exit_count : SUP_LAST_EXITS;
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned k = n; k > 0; k--) {
        const char *r = c->exits[(c->exit_count - k) % SUP_LAST_EXITS];
        int w = snprintf(buf + used, len - used, "%s%s", used ? "; " : "", r);
        if (w < 0 || (size_t) w >= len - used)
            break;
        used += (size_t) w;
    }
}

static void begin_shutdown(sup_t *self, int64_t now);

static void give_up(sup_t *self, sup_child_t *c, int64_t now)
{
    char exits[3 * SUP_REASON_MAX + 8];
    last_exits(c, exits, sizeof exits);
    snprintf(self->exit_message, sizeof self->exit_message,
             "giving up on %s: more than %u restarts within %u s (last exits: %s)", c->name,
             self->policy.max_restarts, self->policy.restart_window_ms / 1000, exits);
    self->exit_code = 1;
    log_error("%s", self->exit_message);
    set_state(self, c, SUP_STOPPED);
    event(self, c, "gave_up", "%s", self->exit_message);
    begin_shutdown(self, now);
}

/* The first restart after a healthy run (no other death inside the window)
 * is immediate; each further one inside the window doubles the delay. */
static uint32_t next_delay(sup_t *self, sup_child_t *c, unsigned recent)
{
    if (recent == 0) {
        c->backoff_ms = self->policy.backoff_min_ms;
        return 0;
    }
    uint32_t delay = c->backoff_ms ? c->backoff_ms : self->policy.backoff_min_ms;
    uint64_t next = (uint64_t) delay * 2;
    c->backoff_ms = next > self->policy.backoff_max_ms ? self->policy.backoff_max_ms : (uint32_t) next;
    if (c->backoff_ms == 0)
        c->backoff_ms = self->policy.backoff_min_ms;
    return delay > self->policy.backoff_max_ms ? self->policy.backoff_max_ms : delay;
}

static void advance_shutdown(sup_t *self, int64_t now);

static void on_death(sup_t *self, sup_child_t *c, const char *reason, int64_t now)
{
    record_exit(c, reason);
    c->pid = 0;
    c->died_at = now;
    if (self->shutting_down) {
        set_state(self, c, SUP_STOPPED);
        event(self, c, "stopped", "%s", reason);
        advance_shutdown(self, now);
        return;
    }
    unsigned recent = deaths_since(c, now - (int64_t) self->policy.restart_window_ms);
    record_death(c, now);
    if (recent + 1 > self->policy.max_restarts) {
        give_up(self, c, now);
        return;
    }
    uint32_t delay = next_delay(self, c, recent);
    c->restarts++;
    sup_action_t *a = event(self, c, "restarting", "in %u ms", delay);
    add_field(a, "delay_ms", "%u", delay);
    add_field(a, "restarts", "%u", c->restarts);
    log_info("restarting %s in %u ms (restart %u)", c->name, delay, c->restarts);
    if (delay == 0) {
        spawn(self, c, now);
    } else {
        c->restart_at = now + delay;
        set_state(self, c, SUP_RESTARTING);
    }
}

void sup_spawn_failed(sup_t *self, const char *name, const char *why, int64_t now)
{
    observe(self, now);
    sup_child_t *c = find(self, name, NULL);
    if (!c || c->state != SUP_STARTING || c->pid != 0)
        return;
    char reason[SUP_REASON_MAX];
    snprintf(reason, sizeof reason, "spawn failed: %s", why);
    log_error("%s: %s", name, reason);
    on_death(self, c, reason, now);
}

void sup_exit_reason(int wstatus, char *buf, size_t len)
{
    if (WIFEXITED(wstatus))
        snprintf(buf, len, "exit %d", WEXITSTATUS(wstatus));
    else if (WIFSIGNALED(wstatus))
        snprintf(buf, len, "signal %d (%s%s)", WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)),
                 WCOREDUMP(wstatus) ? ", core dumped" : "");
    else
        snprintf(buf, len, "status 0x%x", (unsigned) wstatus);
}

static sup_child_t *find_pid(const sup_t *self, pid_t pid)
{
    for (size_t i = 0; i < self->supervised; i++)
        if (self->children[i]->pid == pid && is_running(self->children[i]))
            return self->children[i];
    return NULL;
}

bool sup_exited(sup_t *self, pid_t pid, int wstatus, int64_t now)
{
    return sup_exited_note(self, pid, wstatus, NULL, now);
}

/* The child refused its config: stop the node, exit 78 with its words. */
static void config_error(sup_t *self, sup_child_t *c, const char *reason, const char *note, int64_t now)
{
    record_exit(c, reason);
    c->pid = 0;
    c->died_at = now;
    snprintf(self->exit_message, sizeof self->exit_message,
             "%s exited with %d (config error), not restarted: %s", c->name, SUP_EXIT_CONFIG,
             note && *note ? note : "(it left no message; see its lines above)");
    self->exit_code = SUP_EXIT_CONFIG;
    log_error("%s", self->exit_message);
    set_state(self, c, SUP_STOPPED);
    event(self, c, "gave_up", "%s", self->exit_message);
    begin_shutdown(self, now);
}

bool sup_exited_note(sup_t *self, pid_t pid, int wstatus, const char *note, int64_t now)
{
    observe(self, now);
    sup_child_t *c = pid > 0 ? find_pid(self, pid) : NULL;
    if (!c)
        return false;
    char status[SUP_REASON_MAX - 16], reason[SUP_REASON_MAX];
    sup_exit_reason(wstatus, status, sizeof status);
    if (c->kill_cause)
        snprintf(reason, sizeof reason, "%.14s: %s", c->kill_cause, status);
    else
        snprintf(reason, sizeof reason, "%s", status);
    bool expected = self->shutting_down;
    alys_log(expected ? ALYS_LOG_INFO : ALYS_LOG_WARN, "%s (pid %d) exited: %s", c->name,
             (int) pid, reason);
    sup_action_t *a = event(self, c, "exited", "%s", reason);
    if (WIFEXITED(wstatus))
        add_field(a, "status", "%d", WEXITSTATUS(wstatus));
    if (WIFSIGNALED(wstatus))
        add_field(a, "signal", "%d", WTERMSIG(wstatus));
    if (!self->shutting_down && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == SUP_EXIT_CONFIG)
        config_error(self, c, reason, note, now);
    else
        on_death(self, c, reason, now);
    return true;
}

/* ---- readiness and heartbeats */

static sup_ready_result_t ready_supervised(sup_t *self, sup_child_t *c, const sup_ready_t *r,
                                           int64_t now)
{
    if (r->external) {
        log_warn("an external actor claims the supervised name '%s' (pid %d): ignored", r->name,
                 (int) r->pid);
        return SUP_READY_CONFLICT;
    }
    if (c->pid != r->pid || (c->state != SUP_STARTING && c->state != SUP_READY)) {
        log_warn("Ready from %s pid %d ignored: expecting pid %d in state %s", r->name,
                 (int) r->pid, (int) c->pid, sup_state_name(c->state));
        return SUP_READY_STALE;
    }
    c->last_seen = now;
    if (c->state == SUP_READY)
        return SUP_READY_ACCEPTED; /* a repeated Ready: proof of life only */
    snprintf(c->endpoint, sizeof c->endpoint, "%s", r->endpoint ? r->endpoint : "");
    c->ready_at = now;
    c->next_ping_at = now + self->policy.heartbeat_interval_ms;
    set_state(self, c, SUP_READY);
    sup_action_t *a = event(self, c, "ready", "pid %d, %s", (int) c->pid, c->endpoint);
    add_field(a, "pid", "%d", (int) c->pid);
    add_field(a, "start_ms", "%lld", (long long) (now - c->spawned_at));
    if (c->restarts > 0)
        add_field(a, "down_ms", "%lld", (long long) (now - c->died_at));
    log_info("%s ready (pid %d) in %lld ms", c->name, (int) c->pid, (long long) (now - c->spawned_at));
    start_pending(self, now);
    return SUP_READY_ACCEPTED;
}

static size_t external_count(const sup_t *self)
{
    return self->count - self->supervised;
}

static sup_ready_result_t ready_external(sup_t *self, sup_child_t *c, const sup_ready_t *r, int64_t now)
{
    if (!c) {
        if (external_count(self) >= SUP_MAX_EXTERNAL) {
            log_warn("external actor %s refused: %d already", r->name, SUP_MAX_EXTERNAL);
            return SUP_READY_CONFLICT;
        }
        c = child_new(r->name, r->kind ? r->kind : "", -1, 0);
        if (!c || table_insert(self, c, self->count) != 0) {
            child_free(&c);
            return SUP_READY_CONFLICT;
        }
        c->pid = 0;
    }
    bool fresh = c->pid != r->pid;
    c->pid = r->pid;
    c->last_seen = now;
    snprintf(c->endpoint, sizeof c->endpoint, "%s", r->endpoint ? r->endpoint : "");
    if (fresh) {
        c->spawned_at = c->ready_at = now;
        c->next_ping_at = now + self->policy.heartbeat_interval_ms;
        set_state(self, c, SUP_EXTERNAL);
        sup_action_t *a = event(self, c, "ready", "external, pid %d, %s", (int) c->pid, c->endpoint);
        add_field(a, "pid", "%d", (int) c->pid);
        add_field(a, "external", "true");
        log_info("external actor %s ready (pid %d)", c->name, (int) c->pid);
    }
    return SUP_READY_EXTERNAL;
}

sup_ready_result_t sup_ready(sup_t *self, const sup_ready_t *r, int64_t now)
{
    if (self->exited || !r->name || !*r->name)
        return SUP_READY_UNKNOWN;
    observe(self, now);
    size_t index;
    sup_child_t *c = find(self, r->name, &index);
    if (c && index < self->supervised)
        return ready_supervised(self, c, r, now);
    if (!r->external) {
        log_warn("Ready from unknown actor '%s' (pid %d), not external: ignored", r->name,
                 (int) r->pid);
        return SUP_READY_UNKNOWN;
    }
    if (self->shutting_down)
        return SUP_READY_CONFLICT;
    return ready_external(self, c, r, now);
}

void sup_pong(sup_t *self, const char *name, uint64_t seq, int64_t now)
{
    observe(self, now);
    sup_child_t *c = find(self, name, NULL);
    if (c && (c->state == SUP_READY || c->state == SUP_EXTERNAL) && seq <= c->ping_seq)
        c->last_seen = now;
}

bool sup_child_answering(const sup_t *self, const sup_child_t *c, int64_t now)
{
    return (c->state == SUP_READY || c->state == SUP_EXTERNAL) &&
           now - c->last_seen <= 2 * (int64_t) self->policy.heartbeat_interval_ms;
}

static void hung(sup_t *self, sup_child_t *c, int64_t now)
{
    event(self, c, "hung", "no Pong within %u ms", self->policy.heartbeat_timeout_ms);
    log_warn("%s (pid %d) is hung: no Pong for %lld ms, killing it", c->name, (int) c->pid,
             (long long) (now - c->last_seen));
    c->kill_cause = "hung";
    act_kill(self, c, SIGKILL);
    set_state(self, c, SUP_KILLING);
}

/* Returns true if the child was removed from the table. */
static bool tick_live(sup_t *self, sup_child_t *c, size_t index, int64_t now)
{
    if (now - c->last_seen > (int64_t) self->policy.heartbeat_timeout_ms) {
        if (c->state == SUP_EXTERNAL) {
            log_warn("external actor %s (pid %d) stopped answering: removed", c->name, (int) c->pid);
            event(self, c, "removed", "external, no Pong within %u ms",
                  self->policy.heartbeat_timeout_ms);
            table_remove(self, index);
            self->version++;
            return true;
        }
        hung(self, c, now);
        return false;
    }
    if (now >= c->next_ping_at) {
        sup_action_t *a = push(self, SUP_ACT_PING, c->name);
        if (a)
            a->seq = ++c->ping_seq;
        c->next_ping_at = now + self->policy.heartbeat_interval_ms;
    }
    return false;
}

static void tick_start_timeout(sup_t *self, sup_child_t *c)
{
    event(self, c, "hung", "no Ready within %u ms", self->policy.start_timeout_ms);
    log_warn("%s (pid %d) sent no Ready within %u ms, killing it", c->name, (int) c->pid,
             self->policy.start_timeout_ms);
    c->kill_cause = "start timeout";
    act_kill(self, c, SIGKILL);
    set_state(self, c, SUP_KILLING);
}

static void tick_stop_timeout(sup_t *self, sup_child_t *c)
{
    log_warn("%s (pid %d) did not stop within %u ms: SIGKILL", c->name, (int) c->pid,
             self->policy.shutdown_timeout_ms);
    c->stop_killed = true;
    act_kill(self, c, SIGKILL);
}

void sup_resumed(sup_t *self)
{
    self->resumed = true;
}

void sup_tick(sup_t *self, int64_t now)
{
    if (self->exited)
        return;
    observe(self, now);
    for (size_t i = 0; i < self->count; i++) {
        sup_child_t *c = self->children[i];
        switch (c->state) {
        case SUP_STARTING:
            if (c->pid > 0 && now >= c->deadline)
                tick_start_timeout(self, c);
            break;
        case SUP_READY:
        case SUP_EXTERNAL:
            if (tick_live(self, c, i, now))
                i--; /* removed: the next child moved into slot i */
            break;
        case SUP_RESTARTING:
            if (!self->shutting_down && now >= c->restart_at)
                spawn(self, c, now);
            break;
        case SUP_STOPPING:
            if (!c->stop_killed && now >= c->deadline)
                tick_stop_timeout(self, c);
            break;
        default: break;
        }
    }
    start_pending(self, now);
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int64_t sup_next_deadline(const sup_t *self)
{
    int64_t next = INT64_MAX;
    if (self->exited)
        return next;
    for (size_t i = 0; i < self->count; i++) {
        const sup_child_t *c = self->children[i];
        switch (c->state) {
        case SUP_STARTING:
            if (c->pid > 0)
                next = min64(next, c->deadline);
            break;
        case SUP_READY:
        case SUP_EXTERNAL:
            next = min64(next, c->next_ping_at);
            next = min64(next, c->last_seen + self->policy.heartbeat_timeout_ms + 1);
            break;
        case SUP_RESTARTING:
            if (!self->shutting_down)
                next = min64(next, c->restart_at);
            break;
        case SUP_STOPPING:
            if (!c->stop_killed)
                next = min64(next, c->deadline);
            break;
        default: break;
        }
    }
    return next;
}

/* ---- shutdown */

static bool group_running(const sup_t *self, int group)
{
    for (size_t i = 0; i < self->supervised; i++)
        if (self->children[i]->group == group && is_running(self->children[i]))
            return true;
    return false;
}

/* Highest group below `below` that has children; -1 if none. */
static int prev_group(const sup_t *self, int below)
{
    int best = -1;
    for (size_t i = 0; i < self->supervised; i++) {
        int g = self->children[i]->group;
        if (g < below && g > best)
            best = g;
    }
    return best;
}

static void stop_child(sup_t *self, sup_child_t *c, int64_t now)
{
    if (c->state == SUP_KILLING || c->state == SUP_STOPPING)
        return; /* already on its way out: wait for the reap */
    if (!is_running(c) || c->pid <= 0) {
        if (c->state != SUP_STOPPED) {
            set_state(self, c, SUP_STOPPED);
            event(self, c, "stopped", "was not running");
        }
        return;
    }
    sup_action_t *a = push(self, SUP_ACT_STOP, c->name);
    if (a)
        snprintf(a->detail, sizeof a->detail, "supervisor shutting down");
    act_kill(self, c, SIGTERM);
    c->deadline = now + self->policy.shutdown_timeout_ms;
    c->stop_killed = false;
    set_state(self, c, SUP_STOPPING);
    log_info("stopping %s (pid %d)", c->name, (int) c->pid);
}

static void advance_shutdown(sup_t *self, int64_t now)
{
    while (!self->exited) {
        if (group_running(self, self->stop_group))
            return;
        int g = prev_group(self, self->stop_group);
        if (g < 0) {
            sup_action_t *a = push(self, SUP_ACT_EXIT, NULL);
            if (a) {
                a->exit_code = self->exit_code;
                snprintf(a->detail, sizeof a->detail, "%s", self->exit_message);
            }
            self->exited = true;
            self->version++;
            return;
        }
        self->stop_group = g;
        for (size_t i = 0; i < self->supervised; i++)
            if (self->children[i]->group == g)
                stop_child(self, self->children[i], now);
    }
}

static void begin_shutdown(sup_t *self, int64_t now)
{
    self->shutting_down = true;
    self->version++;
    /* Children waiting out a backoff will not be started again. */
    for (size_t i = 0; i < self->supervised; i++) {
        sup_child_t *c = self->children[i];
        if (c->state == SUP_RESTARTING || c->state == SUP_IDLE) {
            set_state(self, c, SUP_STOPPED);
            event(self, c, "stopped", "not running");
        }
    }
    self->stop_group = INT32_MAX;
    advance_shutdown(self, now);
}

void sup_shutdown(sup_t *self, const char *why, int64_t now)
{
    if (self->exited)
        return;
    observe(self, now);
    if (self->shutting_down) {
        /* Asked twice: the operator does not want to wait. */
        log_warn("second stop request: killing every actor now");
        for (size_t i = 0; i < self->supervised; i++) {
            sup_child_t *c = self->children[i];
            if (is_running(c) && c->pid > 0 && !c->stop_killed) {
                c->stop_killed = true;
                act_kill(self, c, SIGKILL);
            }
        }
        return;
    }
    log_info("shutting down (%s): stopping actors in reverse start order", why);
    begin_shutdown(self, now);
}

/* ---- queries */

size_t sup_child_count(const sup_t *self)
{
    return self->count;
}

const sup_child_t *sup_child_at(const sup_t *self, size_t index)
{
    return index < self->count ? self->children[index] : NULL;
}

const sup_child_t *sup_child_find(const sup_t *self, const char *name)
{
    return find(self, name, NULL);
}

uint64_t sup_version(const sup_t *self)
{
    return self->version;
}
bool sup_shutting_down(const sup_t *self)
{
    return self->shutting_down;
}
int64_t sup_paused_ms(const sup_t *self)
{
    return self->paused_ms;
}

const char *sup_state_name(sup_state_t state)
{
    switch (state) {
    case SUP_IDLE: return "starting"; /* waiting for its dependencies */
    case SUP_STARTING: return "starting";
    case SUP_READY: return "ready";
    case SUP_KILLING: return "restarting";
    case SUP_RESTARTING: return "restarting";
    case SUP_STOPPING: return "stopping";
    case SUP_STOPPED: return "stopped";
    case SUP_EXTERNAL: return "external";
    }
    return "unknown";
}
