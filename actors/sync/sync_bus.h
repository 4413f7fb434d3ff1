/*  sync_bus.h: the SyncActor's translation between protobuf messages and
 *  the pure machine (sync_machine.h). Pure: no sockets, no loop, no clock
 *  (both clocks are passed in); the shell calls these helpers and
 *  tests/unit/sync drives them.
 *
 *  - Outcome and fault mapping: alys.peer.Outcome -> sync_outcome_t, which
 *    block refusals are the serving peer's fault, machine penalties ->
 *    alys.peer.Penalise outcomes.
 *  - Message builders: the SyncStatus / SyncProgress / PeerMsg bodies for the
 *    machine's state and actions, built into caller-provided buffers so
 *    nothing is allocated per message.
 *
 *  Time: the machine runs on main.c's monotonic clock; the messages carry
 *  unix ms. sync_bus_unix() converts (0 stays 0: "none").
 *
 *  Ownership: sync_hdr_ring_new/destroy; every *_buf_t is a plain struct
 *  whose message points into itself, valid until the buffer is reused.
 */
#ifndef SYNC_BUS_H
#define SYNC_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "chain/chain.h"
#include "sync_headers.h"
#include "sync_machine.h"

/* ---- time ---------------------------------------------------------------- */
/* A monotonic ms (the machine's clock) -> unix ms, given both clocks read at
 * the same moment (now_ms, now_unix_ms). 0 stays 0 ("none"). */
uint64_t sync_bus_unix(uint64_t mono_ms, uint64_t now_ms, uint64_t now_unix_ms);

/* ---- outcomes ---------------------------------------------------------------- */
/* alys.peer.Outcome -> sync_outcome_t; unknown values become NO_PEER
 * (re-issued, nobody blamed). */
sync_outcome_t sync_bus_outcome(uint32_t outcome);
/* Was a block refused for its own content (the serving peer may have lied),
 * rather than for something on our side (storage error, busy, restart)?
 * range_start: first height of the range the block came in. */
bool sync_bus_reason_is_peer_fault(const char *reason, uint64_t failed_height, uint64_t range_start);
/* alys.peer.Penalise outcome for a machine penalty. */
uint32_t sync_bus_penalty_outcome(sync_penalty_t p);
/* What a refused block of a BatchOutcome means (reason, detail: its
 * fields; failed_height, range_start: the block and its range's first). */
typedef enum {
    SYNC_REFUSAL_REPEAT,     /* "dropped"/"after_failure": the lower range's
                                   failure re-queued it already: nothing */
    SYNC_REFUSAL_PEER_FAULT, /* its content: the serving peer may have lied */
    SYNC_REFUSAL_OURS,       /* storage, busy, restart: nobody's fault */
} sync_refusal_t;
sync_refusal_t sync_bus_refusal(const char *reason, const char *detail, uint64_t failed_height,
                                uint64_t range_start);
/* PeerManager answered a fetch with an Error of code (alys_err_t): nobody
 * served anything; BUSY is re-issued a little later, the rest at once. */
sync_outcome_t sync_bus_error_outcome(uint32_t code);

/* ---- Storage ------------------------------------------------------------- */
/* Storage's head as a reply to our GetHead: true when the machine must be
 * (re)initialised from it (the first head, or one below what the machine
 * held when we asked: storage went back, a rollback we did not ask for);
 * false: it is a commit report like any other. A reply below the machine's
 * head now but not below asked_at_head is only older than a commit since.
 * The answer to our Rollback is passed with asked_at_head UINT64_MAX: after
 * a rollback, Storage's head is the truth whatever the machine knew. */
bool sync_bus_head_resets(bool initialised, uint64_t height, uint64_t asked_at_head);
/* Storage's "head_advanced" event detail "height=H hash=HEX": true and
 * height/hash filled when it parses. */
bool sync_bus_parse_head_advanced(const char *detail, uint64_t *height, alys_hash_t hash);
/* Checkpoints written between the last one seen and one at height: Storage
 * writes one every interval blocks and reports only the latest. 0 when
 * height is not above last_seen, at least 1 otherwise. */
uint64_t sync_bus_checkpoints_passed(uint64_t last_seen, uint64_t height, uint64_t interval);
/* The checkpoint at height in a Checkpoints reply (with a full hash), or
 * NULL (RecoverFromCheckpoint needs its hash). */
const Alys__Chain__BlockCheckpoint *sync_bus_find_checkpoint(const Alys__Storage__Checkpoints *cps,
                                                             uint64_t height);

/* ---- SyncProgress / SyncStatus ------------------------------------------------ */
typedef struct {
    Alys__Progress__SyncProgress msg;
    Alys__Progress__PeerScore scores[SYNC_MAX_PEERS];
    Alys__Progress__PeerScore *score_ptrs[SYNC_MAX_PEERS];
    sync_progress_t p; /* the values the strings point into */
} sync_progress_buf_t;

/* Fill buf->msg from the machine's progress at now_ms (monotonic; the
 * times in it are converted with now_unix_ms, read at the same moment). */
void sync_bus_progress(sync_progress_buf_t *buf, const sync_machine_t *m, uint64_t now_ms,
                       uint64_t now_unix_ms);

typedef struct {
    Alys__Sync__SyncStatus msg;
    Alys__Sync__SyncStateInfo info;
    char *peer_ptrs[SYNC_MAX_PARALLEL];
    sync_state_t s;
    sync_progress_buf_t progress;
} sync_status_buf_t;

void sync_bus_status(sync_status_buf_t *buf, const sync_machine_t *m, uint64_t now_ms,
                     uint64_t now_unix_ms, uint64_t production_allowed_at);

/* Why CanProduceBlocks answers what it does, one line. */
void sync_bus_can_produce_reason(const sync_machine_t *m, uint64_t now_ms, char *out, size_t len);

/* One line for logs and the "progress" event:
 * "state=DownloadingBlocks height=1200 target=20000 behind=18800 bps=812.3
 *  eta=23.1 peers=3/3 percent=6.00 can_produce=false paused=false". */
void sync_bus_progress_line(const sync_progress_t *p, char *out, size_t len);

#endif
