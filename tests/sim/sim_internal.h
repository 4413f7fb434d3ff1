/*  sim_internal.h: how the simulator's modules call each other. Every call
 *  between two "actors" goes through sim_post (a message with a latency on
 *  a FIFO channel), as it would over ZeroMQ; calls inside one actor are
 *  plain calls.
 */
#ifndef ALYS_SIM_INTERNAL_H
#define ALYS_SIM_INTERNAL_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "peer.pb-c.h"
#include "pipeline.h"
#include "sim.h"
#include "sim_chain.h"

/* ---- the world (sim_world.c) ------------------------------------------------ */
const sim_chain_t *sim_honest_chain(const sim_t *sim);
const sim_chain_t *sim_fork_chain(const sim_t *sim, uint32_t peer); /* NULL unless SF_BAD_CHAIN */
const alys_genesis_t *sim_genesis(const sim_t *sim);
sim_chain_cache_t *sim_cache(sim_t *sim);
/* Height of the honest chain's tip now (grows at block_time_ms). */
uint64_t sim_tip(const sim_t *sim);
uint64_t sim_final_tip(const sim_t *sim);
/* Unix ms the virtual clock stands for (slot rules), and its slot. */
uint64_t sim_unix_ms(const sim_t *sim);
uint64_t sim_now_slot(const sim_t *sim);
const char *sim_peer_id(uint32_t peer); /* "peer-3" */
int sim_peer_index(const char *id);     /* -1 if not a sim peer id */
bool sim_peer_honest(const sim_t *sim, uint32_t peer);

/* Incarnation of an actor: bumped by each restart. Timers and ids carry it
 * so a dead incarnation's timers stop and its ids never match the new one's. */
uint32_t sim_incarnation(const sim_t *sim, sim_actor_t actor);
#define SIM_INC_ARG(inc) ((void *) (uintptr_t) (inc))

/* ---- remote peers and the network (sim_net.c) -------------------------------- */
typedef enum {
    M_STATUS_REQ,
    M_STATUS,
    M_GET_HEADERS,
    M_HEADERS,
    M_GET_BLOCKS,
    M_BLOCKS,
    M_NOT_FOUND
} sim_msg_kind_t;

typedef struct {
    sim_msg_kind_t kind;
    uint32_t peer;
    uint64_t wire_id;
    uint64_t start;
    uint32_t count;  /* asked (requests) */
    uint64_t height; /* M_STATUS */
    bool genesis_ok; /* M_STATUS */
    bool truncated;
    size_t n;
    ProtobufCBinaryData *items; /* owned array; item bytes owned if owned[i] */
    bool *owned;
} sim_msg_t;

void sim_msg_free(sim_msg_t **m_p);
typedef struct sim_net sim_net_t;
sim_net_t *sim_net_new(sim_t *sim);
void sim_net_destroy(sim_net_t **self_p);
/* PeerManager sends m (owned by the net from here) to its peer. */
void sim_net_send(sim_t *sim, sim_msg_t *m);
/* Whether the node can reach peer now (no partition, not down, not silent). */
bool sim_net_reachable(const sim_t *sim, uint32_t peer);
/* Whether a TCP connection to peer can stand now: false while a disconnect
 * fault has it down (its connections reset). Partitions and silence keep
 * connections up: nothing on a peer socket notices them but timeouts. */
bool sim_net_link_ok(const sim_t *sim, uint32_t peer);
void sim_net_start(sim_t *sim); /* schedules partitions etc. */

/* ---- PeerManager adapter (sim_peer.c) ---------------------------------------- */
typedef struct sim_pm sim_pm_t;
sim_pm_t *sim_pm_new(sim_t *sim);
void sim_pm_destroy(sim_pm_t **self_p);
void sim_pm_start(sim_t *sim);
void sim_pm_on_net(sim_t *sim, sim_msg_t *m); /* takes m */
void sim_pm_fetch_headers(sim_t *sim, uint64_t req_id, const char *peer, uint64_t start,
                          uint32_t count, uint32_t timeout_ms);
/* expected: count hashes, copied. */
void sim_pm_fetch_blocks(sim_t *sim, uint64_t req_id, const char *peer, uint64_t start,
                         uint32_t count, const alys_hash_t *expected, uint32_t timeout_ms);
void sim_pm_penalise(sim_t *sim, const char *peer, int outcome, const char *reason);
void sim_pm_verdict(sim_t *sim, const char *peer, uint64_t start, uint32_t count, bool valid,
                    const char *reason);
/* GetInFlight from a (re)started SyncActor: answered on the channel to it. */
void sim_pm_get_in_flight(sim_t *sim);
void sim_pm_on_processed(sim_t *sim, const pl_outcome_t *o);
void sim_pm_on_refused(sim_t *sim, uint64_t batch_id, bool bad_request);
/* BlockProcessor reconnected after a restart: resend what it held. */
void sim_pm_processor_restarted(sim_t *sim);
/* A restarted PeerManager finds what StorageActor kept for the one before
 * it (bans, address book): self takes them from old. */
void sim_pm_inherit(sim_pm_t *self, const sim_pm_t *old);
size_t sim_pm_reorder_entries(const sim_t *sim);
size_t sim_pm_suspects(const sim_t *sim);
size_t sim_pm_table_size(const sim_t *sim);
size_t sim_pl_batches(const sim_t *sim); /* admitted, not yet answered */
/* The peer's current score and ban state; -1 if the table does not know it. */
int sim_pm_score(sim_t *sim, const char *peer, double *score, bool *banned);
size_t sim_pm_reorder_bytes(const sim_t *sim);

/* ---- BlockProcessor adapter (sim_pipeline.c) ---------------------------------- */
typedef struct sim_pl sim_pl_t;
sim_pl_t *sim_pl_new(sim_t *sim);
void sim_pl_destroy(sim_pl_t **self_p);
void sim_pl_start(sim_t *sim);
/* A ProcessBatch from PeerManager; blocks and expected are copied. */
void sim_pl_submit(sim_t *sim, uint64_t batch_id, const char *origin,
                   const ProtobufCBinaryData *blocks, size_t n,
                   const ProtobufCBinaryData *expected, size_t n_expected);
void sim_pl_storage_reply(sim_t *sim, uint64_t req_id, const pl_outcome_t *o);

/* ---- storage model (sim_storage.c) ------------------------------------------- */
typedef struct sim_storage sim_storage_t;
sim_storage_t *sim_storage_new(sim_t *sim);
void sim_storage_destroy(sim_storage_t **self_p);
/* ExecuteBatch (n > 0) or GetHead (n == 0): fills o like StorageActor's reply. */
void sim_storage_execute(sim_t *sim, const ProtobufCBinaryData *blocks, size_t n, pl_outcome_t *o);
uint64_t sim_storage_head(const sim_t *sim, alys_hash_t hash, alys_hash_t state_root);
uint64_t sim_storage_last_checkpoint(const sim_t *sim);
/* Full recomputation of the state root from every account (end check). */
void sim_storage_recompute_root(const sim_t *sim, alys_hash_t out);
size_t sim_storage_checkpoints(const sim_t *sim, uint64_t *heights, alys_hash_t *hashes,
                               alys_hash_t *roots, size_t cap);

/* ---- SyncActor adapter (sim_sync.c) ----------------------------------------- */
typedef struct sim_sync sim_sync_t;
sim_sync_t *sim_sync_new(sim_t *sim);
void sim_sync_destroy(sim_sync_t **self_p);
void sim_sync_start(sim_t *sim);
void sim_sync_on_peer_status(sim_t *sim, const char *peer, uint64_t height, uint32_t rank,
                             double score);
void sim_sync_on_peer_gone(sim_t *sim, const char *peer, const char *reason);
void sim_sync_on_batch_size(sim_t *sim, uint32_t batch_size);
/* headers: n encoded headers (copied), outcome a sync_outcome_t. */
void sim_sync_on_headers(sim_t *sim, uint64_t req_id, int outcome, uint64_t start,
                         const ProtobufCBinaryData *headers, size_t n);
void sim_sync_on_fetch_result(sim_t *sim, uint64_t req_id, int outcome);
/* PeerManager's InFlight: adopted (sync_machine_adopt). */
void sim_sync_on_in_flight(sim_t *sim, const Alys__Peer__InFlight *inf);
void sim_sync_on_batch_outcome(sim_t *sim, uint64_t head, const alys_hash_t head_hash,
                               bool failed, uint64_t failed_height, uint64_t start,
                               const char *reason, const char *detail);
void sim_sync_on_head(sim_t *sim, uint64_t head, const alys_hash_t hash);
void sim_sync_on_checkpoint(sim_t *sim, uint64_t height);
void sim_sync_on_restarted(sim_t *sim, sim_actor_t actor);
void sim_sync_head_event(sim_t *sim, void *arg); /* arg: u64 height + hash, freed */
int sim_sync_state(const sim_t *sim);            /* sync_state_kind_t */
uint64_t sim_sync_head(const sim_t *sim);

/* ---- component access for the modules ------------------------------------------ */
sim_pm_t *sim_get_pm(sim_t *sim);
sim_pl_t *sim_get_pl(sim_t *sim);
sim_storage_t *sim_get_storage(sim_t *sim);
sim_sync_t *sim_get_sync(sim_t *sim);
sim_net_t *sim_get_net(sim_t *sim);
const sim_pm_t *sim_get_pm_c(const sim_t *sim);
const sim_storage_t *sim_get_storage_c(const sim_t *sim);
const sim_sync_t *sim_get_sync_c(const sim_t *sim);
const sim_net_t *sim_get_net_c(const sim_t *sim);

/* Invariant hooks the adapters call when the core did something checkable. */
void sim_check_penalty(sim_t *sim, const char *peer, const char *what);
void sim_check_commit(sim_t *sim, uint64_t height, const alys_hash_t hash);
void sim_head_advanced(sim_t *sim, uint64_t head);

#endif
