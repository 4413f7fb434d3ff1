/*  sync_bus.h: the SyncActor's translation layer between protobuf messages
 *  and the pure machine (sync_machine.h). No sockets, no loop: main.c owns
 *  those and calls these helpers.
 *
 *  - Header verification: the headers of a HeadersResult are decoded with a
 *    size bound, checked one by one (alys_header_check: proposer for the
 *    slot, signature, timestamp) and linked (alys_header_check_link: height,
 *    parent hash, strictly increasing slot, no slot beyond the wall clock's)
 *    to each other and to the parent the FETCH_HEADERS action named. The
 *    parent's slot comes from a ring of recently verified headers (and the
 *    committed head that Storage reported); when it is not there (a head that
 *    came from outside a header fetch) only the slot order against it is
 *    skipped.
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
#include "sync_machine.h"

/* A header's encoding is ~200 bytes; anything much larger is not a header. */
#define SYNC_HEADER_MAX_BYTES  1024
/* Headers accepted in one HeadersResult (wire.proto bounds GetHeaders at 2048). */
#define SYNC_HEADERS_MAX       2048

/* ---- time ---------------------------------------------------------------- */
/* mono_ms (main.c's monotonic clock, as given to the machine) -> unix ms. */
uint64_t sync_bus_unix(uint64_t mono_ms);

/* ---- verified headers ------------------------------------------------------ */
typedef struct sync_hdr_ring sync_hdr_ring_t;

sync_hdr_ring_t *sync_hdr_ring_new(size_t cap);
void sync_hdr_ring_destroy(sync_hdr_ring_t **self_p);
void sync_hdr_ring_put(sync_hdr_ring_t *self, uint64_t height, uint64_t slot,
                       const alys_hash_t hash);
/* Slot of the verified header (height, hash), or false if not held. */
bool sync_hdr_ring_slot(const sync_hdr_ring_t *self, uint64_t height, const alys_hash_t hash,
                        uint64_t *slot);

/* Verify n encoded headers answering GetHeaders{start, asked} whose parent
 * (height start-1) has hash parent_hash. On success returns 0, fills
 * hashes[0..n) and records them in ring. On failure returns -1 and says why
 * (the peer served something invalid); nothing is recorded. n == 0 or
 * n > asked are failures too (the machine is told INVALID). */
int sync_verify_headers(const alys_genesis_t *g, sync_hdr_ring_t *ring, uint64_t now_unix_ms,
                        uint64_t start, uint32_t asked, const alys_hash_t parent_hash,
                        const ProtobufCBinaryData *headers, size_t n, alys_hash_t *hashes,
                        char *why, size_t whylen);

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

/* ---- SyncProgress / SyncStatus ------------------------------------------------ */
typedef struct {
    Alys__Progress__SyncProgress msg;
    Alys__Progress__PeerScore scores[SYNC_MAX_PEERS];
    Alys__Progress__PeerScore *score_ptrs[SYNC_MAX_PEERS];
    sync_progress_t p;                       /* the values the strings point into */
} sync_progress_buf_t;

/* Fill buf->msg from the machine's progress at now (monotonic). */
void sync_bus_progress(sync_progress_buf_t *buf, const sync_machine_t *m, uint64_t now_ms);

typedef struct {
    Alys__Sync__SyncStatus msg;
    Alys__Sync__SyncStateInfo info;
    char *peer_ptrs[SYNC_MAX_PARALLEL];
    sync_state_t s;
    sync_progress_buf_t progress;
} sync_status_buf_t;

void sync_bus_status(sync_status_buf_t *buf, const sync_machine_t *m, uint64_t now_ms,
                     uint64_t production_allowed_at);

/* Why CanProduceBlocks answers what it does, one line. */
void sync_bus_can_produce_reason(const sync_machine_t *m, uint64_t now_ms, char *out, size_t len);

/* One line for logs and the "progress" event:
 * "state=DownloadingBlocks height=1200 target=20000 behind=18800 bps=812.3
 *  eta=23.1 peers=3/3 percent=6.00 can_produce=false paused=false". */
void sync_bus_progress_line(const sync_progress_t *p, char *out, size_t len);

#endif
