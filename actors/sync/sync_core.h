/*  sync_core.h: the SyncActor without its process: everything between the
 *  bytes main.c receives and the bytes it sends. No sockets, no clock, no
 *  loop: main.c reads the clocks and hands them in (sync_core_clock), passes
 *  every decoded message and event in, and gives the core a port to send
 *  through. tests/unit/sync drives it with a fake port.
 *
 *  Inside (sync_core_internal.h): the machine (sync_machine.h) and the pure
 *  modules around it: header verification (sync_headers.h), the known-peer
 *  table (sync_known.h), restart de-duplication (sync_restart.h), the
 *  rollback quiet window (sync_rollback.h), the pending requests
 *  (sync_pending.h) and the message translations (sync_bus.h).
 *
 *  Ownership: sync_core_new/destroy. The config and metrics are the
 *  caller's and must outlive the core. Envelopes given to the port are
 *  valid during the call only.
 */
#ifndef SYNC_CORE_H
#define SYNC_CORE_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "chain/chain.h"
#include "config.h"
#include "metrics_client.h"
#include "sync_machine.h"
#include "sync_restart.h"

/* The other actors the core sends to. */
typedef enum { SYNC_TO_PEER_MANAGER, SYNC_TO_STORAGE, SYNC_TO_PROCESSOR } sync_dest_t;

/* What the core needs from its process (main.c: sockets and actor). */
typedef struct {
    void *ctx;
    /* env to another actor; -1 when it could not be queued. */
    int (*send)(void *ctx, sync_dest_t to, alys_env_t *env);
    /* env to a client of our mailbox (its identity frame). */
    int (*reply)(void *ctx, zframe_t *client, alys_env_t *env);
    /* An Error reply to request req of client. */
    void (*reply_error)(void *ctx, zframe_t *client, const alys_env_t *req, uint32_t code,
                        const char *text);
    /* An event on topic "sync". */
    void (*event)(void *ctx, const char *kind, const char *text);
    /* A correlation id no earlier incarnation used. */
    uint64_t (*next_corr)(void *ctx);
} sync_port_t;

typedef struct sync_core sync_core_t;

/* now_ms/now_unix_ms: the clocks at creation; instance: unique per process
 * incarnation (request ids and the machine's seed derive from it).
 * start_paused: hold the first sync until ResumeSync (tests and benchmarks).
 * NULL on allocation failure. */
sync_core_t *sync_core_new(const alys_config_t *cfg, alys_metrics_t *metrics,
                           const sync_port_t *port, uint64_t now_ms, uint64_t now_unix_ms,
                           uint64_t instance, bool start_paused);
void sync_core_destroy(sync_core_t **self_p);

/* The clocks for the inputs that follow: monotonic ms (the machine's) and
 * unix ms, read at the same moment. */
void sync_core_clock(sync_core_t *self, uint64_t now_ms, uint64_t now_unix_ms);

/* The genesis, loaded by the caller: the core takes it over (clears it on
 * destroy) and asks Storage for its head. Until then headers cannot be
 * verified and the core waits. */
void sync_core_set_genesis(sync_core_t *self, alys_genesis_t *genesis);
bool sync_core_has_genesis(const sync_core_t *self);

/* A message: from the mailbox (from = the client's identity) or a reply on
 * one of our sockets to the other actors (from NULL). */
void sync_core_on_message(sync_core_t *self, zframe_t *from, const alys_env_t *env);
/* An event we subscribed to: topics "lifecycle" and "storage". */
void sync_core_on_event(sync_core_t *self, const char *topic, const Alys__Control__Event *ev);
/* Our socket to w connected (true) or disconnected (false). */
void sync_core_on_socket(sync_core_t *self, sync_watch_t w, bool connected);
/* Every ~100 ms: deadlines, polls, the machine's timers. */
void sync_core_tick(sync_core_t *self);
/* Every second: metrics, and the "progress" event. */
void sync_core_progress(sync_core_t *self);

/* For tests: the machine inside. */
sync_machine_t *sync_core_machine(sync_core_t *self);

#endif
