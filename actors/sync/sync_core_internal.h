/*  sync_core_internal.h: the SyncActor's core (sync_core.h), shared by its
 *  files; private to actors/sync.
 *
 *    sync_core.c    lifecycle, timers, progress, sockets and events seen
 *    sync_inbox.c   messages and events in -> machine inputs; the requests
 *                   we make on our own
 *    sync_act.c     machine actions -> messages out (drained after every
 *                   input), the send/reply helpers, the metrics
 *
 *  Every decision is the machine's (sync_machine.h) or a pure module's:
 *  sync_headers.h, sync_known.h, sync_restart.h, sync_rollback.h,
 *  sync_pending.h, sync_bus.h. Messages leave through the port (main.c's
 *  sockets); no file here reads a clock: sa->now and sa->now_unix are what
 *  sync_core_clock() was given. Messages carry unix ms (sync_bus_unix).
 *
 *  Ownership: the core owns every module and the genesis it was given; a
 *  request in sync_pending holds a zframe_t client (a copy of the asker's
 *  identity) that whoever takes the request out frees (sa_pend_done).
 */
#ifndef SYNC_CORE_INTERNAL_H
#define SYNC_CORE_INTERNAL_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "chain/chain.h"
#include "metrics_client.h"
#include "sync_bus.h"
#include "sync_core.h"
#include "sync_fork.h"
#include "sync_headers.h"
#include "sync_known.h"
#include "sync_machine.h"
#include "sync_pending.h"
#include "sync_restart.h"
#include "sync_rollback.h"

#define STORAGE_TIMEOUT_MS 2000
#define HEAD_POLL_MS       5000
#define PEERS_POLL_MS      2500 /* PeerManager pushes one at least every 2 s */
#define MAX_PENDING        64
#define MAX_HDR_REQS       8

struct sync_core {
    sync_port_t port;
    bool start_paused; /* pause the first sync (sync_core_new) */
    const alys_config_t *cfg;
    alys_metrics_t *metrics;
    alys_genesis_t genesis;
    bool have_genesis;
    sync_machine_t *m;
    bool initialised;
    /* The pure modules: every decision is theirs or the machine's. */
    sync_hdr_ring_t *ring;
    sync_hdr_reqs_t *hreqs;
    sync_known_t *known;
    sync_restart_t *restarts;
    sync_rollback_t *rollback;
    sync_pending_t *pend; /* our requests awaiting replies */
    sync_fork_t *fork;    /* fork choice (sync_reorg.c drives it) */

    /* The clocks main.c read at the start of this callback
     * (sync_core_clock): every input of the callback sees this moment. */
    uint64_t now;      /* monotonic ms: the machine's clock */
    uint64_t now_unix; /* unix ms, read at the same moment */

    alys_hash_t hashes[SYNC_HEADERS_MAX];
    ProtobufCBinaryData *expected; /* FetchBlocks expected_hashes scratch */
    size_t expected_cap;

    /* Client of the input call being made (its actions answer it). */
    zframe_t *client;
    uint64_t client_corr;

    uint64_t last_peer_set; /* mono ms of the last PeerSet */
    uint64_t last_head_poll;
    uint64_t production_allowed_at; /* unix ms */
    uint64_t last_checkpoint_seen;
};
typedef struct sync_core sa_t;

/* ---- sync_act.c ------------------------------------------------------------- */

/* -1 when the message could not be queued (the port logs it at debug only:
 * the machine's timers and our pending deadlines recover from a lost send). */
int sa_send_env(sa_t *sa, sync_dest_t to, alys_env_t *env);
int sa_send_peer(sa_t *sa, Alys__Peer__PeerMsg *pm, uint64_t corr);
int sa_send_storage(sa_t *sa, Alys__Storage__StorageMsg *sm, uint64_t corr);
int sa_send_process_batch(sa_t *sa, Alys__Processor__ProcessBatch *pb, uint64_t corr);
/* Penalise{peer, outcome (alys.peer.Outcome), reason} to PeerManager. */
int sa_penalise(sa_t *sa, const char *peer, uint32_t outcome, const char *reason);
/* Reply to a client (identity + its corr_id); nothing when no one waits
 * (client NULL or corr 0). */
void sa_reply_sync(sa_t *sa, zframe_t *client, uint64_t corr, Alys__Sync__SyncMsg *msg);
void sa_reply_ack(sa_t *sa, zframe_t *client, uint64_t corr, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void sa_error_metric(sa_t *sa, const char *type); /* alys_sync_errors_total{error_type} */
/* Declare at 0 every counter the core can increment, for every label value
 * (called once by sync_core_new). */
void sa_declare_metrics(sa_t *sa);
/* The machine's own event counts (SyncProgress, dropped actions) as _total
 * counters. */
void sa_progress_counters(sa_t *sa, uint64_t retries, uint64_t reassignments, uint64_t dropped);

/* Translate every queued action. Called after EVERY machine input: the
 * FETCH_BLOCKS expected pointer is only valid until the next input. */
void sa_drain(sa_t *sa);
/* sa->expected holds at least n entries: 0, or -1 out of memory. */
int sa_expected_reserve(sa_t *sa, uint32_t n);
void sa_publish_metrics(sa_t *sa, const sync_progress_t *p);

/* ---- sync_reorg.c: fork choice's steps (sync_fork.h) ------------------------ */

void sa_fork_found(sa_t *sa, const char *peer, uint64_t peer_height);
void sa_fork_on_locator(sa_t *sa, const Alys__Storage__Locator *loc); /* NULL: refused */
void sa_fork_on_headers(sa_t *sa, const Alys__Peer__HeadersResult *hr);
void sa_fork_on_fetch_result(sa_t *sa, const Alys__Peer__FetchResult *fr);
void sa_fork_on_processed(sa_t *sa, const alys_env_t *env);
void sa_fork_tick(sa_t *sa);

/* ---- sync_inbox.c ----------------------------------------------------------- */

/* NULL when the table is full: the caller answers its client or retries
 * on a later tick. */
sync_pend_t *sa_pend_add(sa_t *sa, sync_pend_kind_t kind, uint32_t timeout_ms);
void sa_pend_take_client(sa_t *sa, sync_pend_t *p); /* the current input's client */
void sa_pend_done(sync_pend_t *p);                  /* frees its client frame */
void sa_expire_pending(sa_t *sa);

void sa_request_head(sa_t *sa);  /* GetHead, unless one is in flight */
void sa_request_peers(sa_t *sa); /* GetPeers, unless one is in flight */

/* from: the mailbox client, NULL for replies on our DEALERs. */
void sa_dispatch(sa_t *sa, zframe_t *from, const alys_env_t *env);
void sa_on_lifecycle(sa_t *sa, const Alys__Control__Event *ev);
void sa_on_storage_event(sa_t *sa, const Alys__Control__Event *ev);
/* alys_sync_actor_restarts_seen_total{actor} += delta (0 declares it). */
void sa_restart_series(sa_t *sa, sync_watch_t w, double delta);
/* A restart of w that sync_restart said to act on; how: what showed it. */
void sa_restarted(sa_t *sa, sync_watch_t w, const char *how);

#endif
