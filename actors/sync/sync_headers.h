/*  sync_headers.h: header verification for the SyncActor. Pure: no
 *  sockets, no clock (the wall clock's unix ms is passed in).
 *
 *  The machine asks for header ranges (FETCH_HEADERS, naming the hash of
 *  the parent at start-1); PeerManager answers with encoded headers; they
 *  are verified here before the machine sees any hash:
 *
 *  - each header is decoded with a size bound (SYNC_HEADER_MAX_BYTES) and
 *    checked alone (alys_header_check: proposer for the slot, signature,
 *    timestamp), then linked (alys_header_check_link: height, parent hash,
 *    strictly increasing slot, no slot beyond the wall clock's) to the one
 *    before it and, for the first, to the parent the request named;
 *  - the parent's slot comes from a ring of recently verified headers (and
 *    the committed heads Storage reported); when it is not there (a head
 *    that came from outside a header fetch) only the slot order against the
 *    parent is skipped;
 *  - a reply is all or nothing: nothing is recorded unless all of it
 *    verified.
 *
 *  The requests in flight are kept here too (sync_hdr_reqs_t): the answer
 *  must link to what the request named, whoever answers.
 *
 *  Ownership: sync_hdr_ring_new/destroy, sync_hdr_reqs_new/destroy.
 */
#ifndef SYNC_HEADERS_H
#define SYNC_HEADERS_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "sync_machine.h"

/* A header's encoding is ~200 bytes; anything much larger is not a header. */
#define SYNC_HEADER_MAX_BYTES 1024
/* Headers accepted in one HeadersResult (wire.proto bounds GetHeaders at 2048). */
#define SYNC_HEADERS_MAX      2048

/* ---- verified headers ------------------------------------------------------ */
typedef struct sync_hdr_ring sync_hdr_ring_t;

/* cap: entries (one per height, modulo cap); NULL on allocation failure. */
sync_hdr_ring_t *sync_hdr_ring_new(size_t cap);
void sync_hdr_ring_destroy(sync_hdr_ring_t **self_p);
void sync_hdr_ring_put(sync_hdr_ring_t *self, uint64_t height, uint64_t slot, const alys_hash_t hash);
/* How one decoded header is checked alone: alys_header_check unless set.
 * bytes are its encoding. The verdict is a pure function of the genesis and
 * the bytes, so a caller that checked these bytes before may answer from
 * memory (the simulator memoises signature checks this way); ctx is the
 * caller's. fn NULL restores alys_header_check. */
typedef bool (*sync_header_check_fn)(void *ctx, const alys_genesis_t *g, const uint8_t *bytes,
                                     size_t len, const alys_header_t *h, alys_verdict_t *v);
void sync_hdr_ring_set_check(sync_hdr_ring_t *self, sync_header_check_fn fn, void *ctx);
/* Slot of the verified header (height, hash), or false if not held. */
bool sync_hdr_ring_slot(const sync_hdr_ring_t *self, uint64_t height, const alys_hash_t hash,
                        uint64_t *slot);

/* Verify n encoded headers answering GetHeaders{start, asked} whose parent
 * (height start-1) has hash parent_hash. On success returns 0, fills
 * hashes[0..n) and records them in ring. On failure returns -1 and says why
 * (the peer served something invalid), or -2 when the headers are valid but
 * the first does not link to parent_hash (another branch than the one we
 * hold: sync_machine_on_headers_fork); nothing is recorded. n == 0 or
 * n > asked are failures too (the machine is told INVALID). */
int sync_verify_headers(const alys_genesis_t *g, sync_hdr_ring_t *ring, uint64_t now_unix_ms,
                        uint64_t start, uint32_t asked, const alys_hash_t parent_hash,
                        const ProtobufCBinaryData *headers, size_t n, alys_hash_t *hashes,
                        char *why, size_t whylen);

/* ---- requests in flight -------------------------------------------------- */
typedef struct {
    uint64_t req_id;
    sync_peer_id_t peer;
    uint64_t start;
    uint32_t count;
    alys_hash_t parent;
    uint64_t deadline; /* now_ms past which no answer is awaited */
} sync_hdr_req_t;

typedef struct sync_hdr_reqs sync_hdr_reqs_t;

/* cap: requests remembered at once (the machine has one in flight, a few
 * more while reassigning); NULL on allocation failure. */
sync_hdr_reqs_t *sync_hdr_reqs_new(size_t cap);
void sync_hdr_reqs_destroy(sync_hdr_reqs_t **self_p);
/* Remember a FETCH_HEADERS action sent at now. When full, the request with
 * the earliest deadline is forgotten (its answer will be ignored). Its
 * deadline: twice the action's timeout plus 3 s (PeerManager answers every
 * request, at the latest with TIMEOUT after timeout_ms). */
void sync_hdr_reqs_add(sync_hdr_reqs_t *self, const sync_action_t *fetch_headers, uint64_t now_ms);
/* Copy the request out and forget it; false when unknown (late, cancelled,
 * evicted, or expired). */
bool sync_hdr_reqs_take(sync_hdr_reqs_t *self, uint64_t req_id, sync_hdr_req_t *out);
void sync_hdr_reqs_clear(sync_hdr_reqs_t *self); /* PeerManager restarted */
void sync_hdr_reqs_expire(sync_hdr_reqs_t *self, uint64_t now_ms);
size_t sync_hdr_reqs_count(const sync_hdr_reqs_t *self);

/* ---- the verdict on one HeadersResult --------------------------------------- */
/* What the machine is told about the answer to req: PeerManager's outcome
 * (it scored it already), or after verification OK (*count hashes in
 * hashes) or INVALID (why says what failed; why is "" otherwise). A SHORT
 * answer with headers keeps what verifies: the next request continues from
 * there. g NULL: no genesis loaded, nothing can verify. *fork is set when
 * INVALID only means "another branch" (sync_verify_headers' -2): the caller
 * tells the machine sync_machine_on_headers_fork instead of on_headers. */
sync_outcome_t sync_headers_judge(const alys_genesis_t *g, sync_hdr_ring_t *ring,
                                  uint64_t now_unix_ms, const sync_hdr_req_t *req,
                                  sync_outcome_t reported, const ProtobufCBinaryData *headers,
                                  size_t n, alys_hash_t *hashes, uint32_t *count, bool *fork,
                                  char *why, size_t whylen);

#endif
