/*  sync_restart.h: which restarts of the other actors the SyncActor acts
 *  on. Pure: no sockets, no clock; the core (sync_core.c) feeds it what
 *  main.c saw.
 *
 *  A restart is seen two ways: the supervisor's lifecycle "ready" event of
 *  the actor (it carries the new process's pid; "spawned" carries it too)
 *  and our own DEALER to it (the socket monitor's DISCONNECTED, then
 *  CONNECTED). Either may come first, either may be missing. Restarts are
 *  told apart by process instance (the pid), never by time: every new
 *  instance is acted on once and at once, however soon after the previous
 *  one it comes.
 *
 *    - ready(pid) of a pid already seen (the same event via "spawned" and
 *      "ready", or repeated): nothing.
 *    - ready(pid) of a new pid: a restart, unless our socket already showed
 *      this instance (a reconnect acted on before its ready came: the ready
 *      only names it), or it is the first instance we ever see and our
 *      socket never dropped (the actor's first start, nothing was lost).
 *    - socket CONNECTED after a DISCONNECTED: a restart, unless a ready of a
 *      new pid came since the drop (acted on already).
 *
 *  One ambiguity is inherent to two unordered streams: when an instance
 *  that our socket showed dies again before its ready arrives, that late
 *  ready is taken as a new instance (acted on twice: harmless, requests are
 *  re-issued). No instance is ever missed.
 *
 *  What a restart means for the SyncActor is sync_restart_effects(). The
 *  SyncActor's own restart is not seen here: at its start the core asks
 *  PeerManager GetInFlight and the machine adopts what it still holds
 *  (sync_machine_await_in_flight, sync_machine_adopt in sync_machine.h).
 *
 *  Ownership: sync_restart_new/destroy; names are static strings.
 */
#ifndef SYNC_RESTART_H
#define SYNC_RESTART_H

#include <stdbool.h>
#include <stdint.h>

/* The actors whose restarts cost us something. */
typedef enum {
    SYNC_WATCH_STORAGE = 0,
    SYNC_WATCH_PEER_MANAGER,
    SYNC_WATCH_PROCESSOR,
    SYNC_WATCH_COUNT
} sync_watch_t;

/* What to do about one restart (a bit set). */
enum {
    SYNC_RESTART_GET_HEAD = 1 << 0,  /* ask Storage for its head again */
    SYNC_RESTART_REISSUE = 1 << 1,   /* forget header requests in flight; machine:
                                          on_peer_manager_restarted, on_processor_restarted */
    SYNC_RESTART_GET_PEERS = 1 << 2, /* ask PeerManager for its peer set now */
};

typedef struct sync_restart sync_restart_t;

sync_restart_t *sync_restart_new(void);
void sync_restart_destroy(sync_restart_t **self_p);

/* "storage", "peer_manager", "block_processor"; SYNC_WATCH_COUNT when
 * name is none of them (or NULL). */
sync_watch_t sync_restart_watch_of(const char *name);
const char *sync_restart_name(sync_watch_t w);

/* A lifecycle "ready" (or "spawned") of w with pid. True: a restart to act
 * on now. pid <= 0 is ignored. */
bool sync_restart_on_ready(sync_restart_t *self, sync_watch_t w, int pid);
/* Our socket to w disconnected. */
void sync_restart_on_socket_lost(sync_restart_t *self, sync_watch_t w);
/* Our socket to w connected. True: a restart to act on now. */
bool sync_restart_on_socket_back(sync_restart_t *self, sync_watch_t w);

/* Restarts acted on so far (for tests and logs). */
uint64_t sync_restart_count(const sync_restart_t *self, sync_watch_t w);

/* SYNC_RESTART_* bits for a restart of w. Before the first head from
 * Storage (initialised false) only Storage's restart matters (ask again).
 * PeerManager: its requests in flight are lost and so are the ranges it had
 * downloaded but not yet handed to BlockProcessor (its reorder buffer), so
 * both are re-issued. BlockProcessor: nothing; PeerManager keeps every range
 * until it is committed and resends what the old BlockProcessor held (should
 * that fail, the machine's processing timeout re-fetches). */
unsigned sync_restart_effects(sync_watch_t w, bool initialised);

/* pid from a lifecycle event: its "pid" field when present (fvalue), else
 * "pid N" in its detail; 0 when neither names one. */
int sync_restart_event_pid(const char *field_pid, const char *detail);

#endif
