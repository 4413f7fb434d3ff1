/*  supervisor.h: the supervisor's pure logic, no sockets, no processes.
 *
 *  The child table, the OTP-style restart policy (one_for_one, backoff,
 *  intensity), readiness, heartbeats and the shutdown sequence, as a state
 *  machine. Inputs are events with the time passed in (start, a Ready, a
 *  Pong, a reaped exit status, a tick, a shutdown request); outputs are
 *  actions the caller executes in order (spawn, kill, ping, stop, publish an
 *  event, exit). Nothing here reads a clock, forks, or touches ZeroMQ, so the
 *  unit tests drive every policy with made-up times and pids.
 *
 *  Per child:
 *
 *      IDLE --spawn--> STARTING --Ready--> READY
 *        ^                |  start timeout   | no Pong within heartbeat_timeout
 *        |                v                  v
 *        |             KILLING (SIGKILL sent, waiting for the reap)
 *        |                | reaped           (any death while running, too)
 *        |                v
 *        +--backoff-- RESTARTING  (or gave up: the whole supervisor shuts down)
 *
 *  A child is only restarted after its old process has been reaped (the
 *  caller feeds reaped exit statuses in), which is what StorageActor needs:
 *  RocksDB allows one process per database.
 *
 *  Time the supervisor itself did not run is not charged to its children.
 *  Between two inputs the caller's loop sleeps at most until
 *  sup_next_deadline; an input that comes later than that was delayed, and
 *  the delay is forgiven (every running timeout, Pong wait, start and stop
 *  deadlines, moves on by it) only when it proves the supervisor was not
 *  running: a SIGCONT arrived since the previous input (sup_resumed: it was
 *  stopped), or the delay is at least pause_min_ms (a VM pause, which sends
 *  no signal). A shorter delay without SIGCONT is CPU starvation on a busy
 *  host and counts as usual, so a stopped child is still found hung on time
 *  however often the supervisor runs late. So a supervisor resumed after a
 *  SIGSTOP or a VM pause pings first and kills only children that then stay
 *  silent for heartbeat_timeout_ms of its own running time. Every input
 *  function does this check first.
 *
 *  A child that exits with SUP_EXIT_CONFIG (78, EX_CONFIG) says its config
 *  or environment is wrong: restarting it cannot help, so the supervisor
 *  stops everything and exits 78 itself with the child's message.
 *
 *  Shutdown stops the start-order groups in reverse: Stop + SIGTERM to every
 *  running child of the group (STOPPING), SIGKILL after shutdown_timeout,
 *  next group once all of it is reaped; then one EXIT action.
 *
 *  Ownership: sup_new returns a table freed by sup_destroy(&self). Actions
 *  are copied out by sup_next_action; nothing returned points inside the
 *  table except sup_child_at's result, valid until the next input call.
 */
#ifndef ALYS_SUPERVISOR_H
#define ALYS_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SUP_NAME_MAX     64
#define SUP_KIND_MAX     32
#define SUP_ENDPOINT_MAX 256
#define SUP_REASON_MAX   96
#define SUP_DETAIL_MAX   512
#define SUP_LAST_EXITS   3  /* exit reasons kept per child for the give-up message */
#define SUP_MAX_EXTERNAL 64 /* hand-started validators accepted at once */
#define SUP_MAX_FIELDS   4
/* EX_CONFIG (ALYS_EXIT_CONFIG in config.h): restarting cannot help. */
#define SUP_EXIT_CONFIG  78

typedef struct {
    uint32_t start_timeout_ms;
    uint32_t heartbeat_interval_ms;
    uint32_t heartbeat_timeout_ms;
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
    uint32_t max_restarts; /* more than this within the window: give up */
    uint32_t restart_window_ms;
    uint32_t shutdown_timeout_ms;
    /* An input later than the deadline the loop slept towards by at least
     * this, with no SIGCONT, means the supervisor was paused (a VM pause):
     * the late part does not count towards any child's timeout. Smaller
     * lateness without SIGCONT (scheduling delays on a busy host) counts as
     * usual, so that a starved supervisor still finds a stopped child hung
     * on time. */
    uint32_t pause_min_ms;
} sup_policy_t;

typedef enum {
    SUP_IDLE = 0, /* not started yet: waits for the groups before it */
    SUP_STARTING, /* spawned, no Ready yet */
    SUP_READY,
    SUP_KILLING,    /* SIGKILLed by us (hung, start timeout), not reaped yet */
    SUP_RESTARTING, /* reaped, waiting out its backoff */
    SUP_STOPPING,   /* shutdown: Stop + SIGTERM sent */
    SUP_STOPPED,
    SUP_EXTERNAL /* started by hand; heartbeated, never restarted */
} sup_state_t;

typedef struct {
    char name[SUP_NAME_MAX];
    char kind[SUP_KIND_MAX]; /* binary key: storage, validator, ... */
    int group;               /* start order; one group starts together */
    sup_state_t state;
    pid_t pid; /* 0 when no process */
    uint32_t restarts;
    char endpoint[SUP_ENDPOINT_MAX];
    char last_exit[SUP_REASON_MAX];             /* "" if it never died */
    char exits[SUP_LAST_EXITS][SUP_REASON_MAX]; /* ring, newest at exit_head-1 */
    unsigned exit_count;
    int64_t spawned_at; /* ms, this process */
    int64_t ready_at;
    int64_t died_at;    /* ms, last reap (for death -> ready latency) */
    int64_t deadline;   /* start / stop timeout, by state */
    int64_t restart_at; /* RESTARTING: when to spawn */
    int64_t last_seen;  /* Ready or Pong */
    int64_t next_ping_at;
    uint64_t ping_seq;
    uint32_t backoff_ms; /* delay of the next quick restart */
    int64_t *deaths;     /* ring of death times for the intensity */
    unsigned death_head, death_count, death_cap;
    const char *kill_cause; /* why we SIGKILLed it: "hung", "start timeout" */
    bool stop_killed;       /* shutdown escalated to SIGKILL */
} sup_child_t;

typedef enum {
    SUP_ACT_SPAWN, /* fork+exec child `name`; report with sup_spawned / sup_spawn_failed */
    SUP_ACT_KILL,  /* kill(pid, signal) */
    SUP_ACT_PING,  /* Control.Ping{seq} to routing id `name` */
    SUP_ACT_STOP,  /* Control.Stop{detail} to routing id `name` */
    SUP_ACT_EVENT, /* lifecycle Event{actor = name, kind = event, detail, fields} */
    SUP_ACT_EXIT   /* everything is stopped: exit with code, print message if any */
} sup_action_kind_t;

typedef struct {
    char key[32];
    char value[64];
} sup_field_t;

typedef struct {
    sup_action_kind_t kind;
    char name[SUP_NAME_MAX];
    pid_t pid;
    int signal;
    uint64_t seq;
    char event[16];
    char detail[SUP_DETAIL_MAX];
    sup_field_t fields[SUP_MAX_FIELDS];
    int nfields;
    int exit_code;
} sup_action_t;

typedef struct {
    const char *name;
    pid_t pid;
    const char *endpoint;
    const char *kind;
    bool external;
} sup_ready_t;

typedef enum {
    SUP_READY_ACCEPTED = 0,
    SUP_READY_EXTERNAL, /* a new or known hand-started actor */
    SUP_READY_STALE,    /* known name but not the process we are waiting for */
    SUP_READY_UNKNOWN,  /* not ours and not external: ignored */
    SUP_READY_CONFLICT, /* external claiming a supervised name, or too many */
} sup_ready_result_t;

typedef struct sup sup_t;

/* The policy is copied. */
sup_t *sup_new(const sup_policy_t *policy);
void sup_destroy(sup_t **self_p);

/* Add a supervised child; group gives the start order (lower first, equal
 * ones start together). Before sup_start only. 0 or -1 (duplicate, full). */
int sup_add_child(sup_t *self, const char *name, const char *kind, int group);

/* Begin: spawns the first group. */
void sup_start(sup_t *self, int64_t now);
/* The caller forked child `name` as pid (after a SPAWN action). */
void sup_spawned(sup_t *self, const char *name, pid_t pid, int64_t now);
/* fork failed: counted as a death, so the restart policy applies. */
void sup_spawn_failed(sup_t *self, const char *name, const char *why, int64_t now);
sup_ready_result_t sup_ready(sup_t *self, const sup_ready_t *ready, int64_t now);
void sup_pong(sup_t *self, const char *name, uint64_t seq, int64_t now);
/* A reaped child: wstatus as from waitpid. false if the pid is not ours. */
bool sup_exited(sup_t *self, pid_t pid, int wstatus, int64_t now);
/* The same with the child's own last words (NULL or "" if it left none):
 * a child that exits SUP_EXIT_CONFIG is not restarted. The whole supervisor
 * stops and exits SUP_EXIT_CONFIG, its EXIT message naming the child and
 * repeating `note`, so the operator reads the cause as the last line. */
bool sup_exited_note(sup_t *self, pid_t pid, int wstatus, const char *note, int64_t now);
/* Timers: start/heartbeat/stop timeouts, pings, backoff expiries. */
void sup_tick(sup_t *self, int64_t now);

/* The supervisor received SIGCONT: it was stopped, so the lateness of the
 * next input is time it did not run, whatever its size. Call before the
 * next input (the caller reads SIGCONT before handing any input in). */
void sup_resumed(sup_t *self);
/* SIGTERM/SIGINT: stop everything in reverse order and exit 0. A second call
 * kills whatever is left at once. */
void sup_shutdown(sup_t *self, const char *why, int64_t now);

/* Earliest time sup_tick has something to do; INT64_MAX if nothing. */
int64_t sup_next_deadline(const sup_t *self);
/* Pop the next action into *out; false when there is none. */
bool sup_next_action(sup_t *self, sup_action_t *out);

/* Children in start order, externals after them. NULL past the end. */
size_t sup_child_count(const sup_t *self);
const sup_child_t *sup_child_at(const sup_t *self, size_t index);
const sup_child_t *sup_child_find(const sup_t *self, const char *name);
/* Bumped on every state change, so callers refresh derived views lazily. */
uint64_t sup_version(const sup_t *self);
bool sup_shutting_down(const sup_t *self);

/* Whether c answers its heartbeats now: ready (or external) and heard
 * within two heartbeat intervals (one to be pinged, one to answer). A child
 * that stops answering (stopped, stuck) is reported not ready at once, long
 * before it is declared hung at heartbeat_timeout_ms. */
bool sup_child_answering(const sup_t *self, const sup_child_t *c, int64_t now);
/* Total time, ms, the supervisor found it had not been running (see above). */
int64_t sup_paused_ms(const sup_t *self);

/* "starting", "ready", "restarting", "stopping", "stopped", "external". */
const char *sup_state_name(sup_state_t state);
/* "exit 1", "signal 9 (Killed)", "signal 11 (Segmentation fault, core dumped)". */
void sup_exit_reason(int wstatus, char *buf, size_t len);

#endif
