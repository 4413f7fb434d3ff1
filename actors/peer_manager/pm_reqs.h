/*  pm_reqs.h: the requests PeerManager has in flight on its outbound
 *  connections (GetHeaders, GetBlocks for SyncActor; GetPeers of its own),
 *  on common/pending.h: a fresh wire request_id each (unique across
 *  restarts: alys_next_corr_id), a deadline, exactly-once completion. A
 *  response is matched by id AND connection; an unknown id (a late answer
 *  to a request that timed out, a duplicate) finds nothing. Pure: time is
 *  passed in; tests/unit/peer/test_reqs.c drives it.
 *
 *  Admission (pm_req_check): count 1..max (ALYS_WIRE_MAX_HEADERS or
 *  _BLOCKS), start >= 1, expected hashes none or exactly count 32-byte
 *  ones; a full table answers BUSY. The deadline (pm_req_timeout_ms) is the
 *  request's own timeout_ms, or the peer's adaptive one, capped at
 *  PM_REQ_MAX_TIMEOUT_MS.
 *
 *  A locator request (FetchHeaders.locator, fork choice) is admitted by
 *  pm_req_check_locator instead: count as for headers, start unused, 1..
 *  ALYS_LOCATOR_MAX hashes of 32 bytes.
 *
 *  Ownership: pm_reqs_new / pm_reqs_destroy(&self). A pm_req_t's expected
 *  and locator hashes are malloc'ed copies; pm_reqs_add takes them over on
 *  success; every pm_req_t handed back (take, expire, take_conn) is the
 *  caller's, freed with pm_req_clear.
 */
#ifndef PM_REQS_H
#define PM_REQS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "wire/wire.h"

#define PM_REQS_MAX           512
#define PM_REQ_MAX_TIMEOUT_MS 60000

typedef enum { PM_REQ_HEADERS = 0, PM_REQ_BLOCKS, PM_REQ_PEERS } pm_req_kind_t;

typedef struct {
    pm_req_kind_t kind;
    int conn;            /* pm_conns slot */
    uint64_t request_id; /* SyncActor's (0 for GetPeers) */
    uint64_t wire_id;    /* the wire request_id it went out with (late answers) */
    char peer_id[ALYS_WIRE_ID_MAX];
    uint64_t start;
    uint32_t count;
    uint8_t (*expected)[ALYS_HASH_LEN]; /* count hashes or NULL; owned */
    /* Headers from a block locator (n_locator > 0): start is unused, the
     * answer's start is the server's choice. Owned copies. */
    uint8_t (*locator)[ALYS_HASH_LEN];
    size_t n_locator;
    /* Blocks for SyncActor itself (FetchBlocks.to_requester): they come
     * back in FetchResult.blocks, not through the reorder buffer. */
    bool to_requester;
    int64_t sent_at;
} pm_req_t;

typedef struct pm_reqs pm_reqs_t;

pm_reqs_t *pm_reqs_new(size_t capacity);
void pm_reqs_destroy(pm_reqs_t **self_p);
bool pm_reqs_full(const pm_reqs_t *self);
size_t pm_reqs_count(const pm_reqs_t *self);
/* Record r under wire_id until deadline. 0, or -1 (full, id 0 or taken:
 * r->expected stays the caller's). */
int pm_reqs_add(pm_reqs_t *self, uint64_t wire_id, int64_t deadline, const pm_req_t *r);
/* The response with wire_id on connection conn: true and the request in
 * out, exactly once; false for anything else (late, duplicate, other conn). */
bool pm_reqs_take(pm_reqs_t *self, int conn, uint64_t wire_id, pm_req_t *out);
/* One request past its deadline (earliest first), or false. */
bool pm_reqs_expire(pm_reqs_t *self, int64_t now, pm_req_t *out);
/* One request on connection conn (it went away), or false. */
bool pm_reqs_take_conn(pm_reqs_t *self, int conn, pm_req_t *out);
/* busy[c] = true for every connection c < n with a request in flight. */
void pm_reqs_busy_conns(pm_reqs_t *self, bool *busy, size_t n);
void pm_req_clear(pm_req_t *r);
/* fn for every request in the table, read only (the table must not change
 * meanwhile). */
typedef void (*pm_reqs_each_fn)(const pm_req_t *r, void *arg);
void pm_reqs_each(pm_reqs_t *self, pm_reqs_each_fn fn, void *arg);

/* Admission: 0, or -1 with why (a bad request: SyncActor's to fix). */
int pm_req_check(pm_req_kind_t kind, uint64_t start, uint32_t count,
                 const ProtobufCBinaryData *expected, size_t n_expected, char *why, size_t why_len);
/* Admission of a locator FetchHeaders: count 1..ALYS_WIRE_MAX_HEADERS,
 * 1..ALYS_LOCATOR_MAX hashes of ALYS_HASH_LEN bytes (start unused). 0, or
 * -1 with why. */
int pm_req_check_locator(uint32_t count, const ProtobufCBinaryData *locator, size_t n_locator,
                         char *why, size_t why_len);
/* asked: the request's timeout_ms (0 = none), an upper bound; adaptive:
 * the peer's (0 = none). The shorter of the two, capped. */
uint32_t pm_req_timeout_ms(uint32_t asked, uint32_t adaptive);

#endif
