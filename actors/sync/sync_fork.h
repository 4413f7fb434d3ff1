/*  sync_fork.h: fork choice for the SyncActor (pure: no sockets, no clock;
 *  time is an input).
 *
 *  When a peer's headers do not link to our committed head (the machine's
 *  SYNC_ACTION_FORK_FOUND), the peer is on another branch that left ours
 *  at or below the head. The longest chain wins; a tie keeps ours (the
 *  branch seen first). One resolution at a time, with one peer:
 *
 *    LOCATOR  ask Storage for our block locator (GetLocator: our head, the
 *             9 below it, then doubling steps, the genesis last)
 *    HEADERS  ask the peer for the headers after the first locator hash on
 *             its chain (FetchHeaders.locator, Bitcoin's getheaders). Its
 *             answer's start - 1 is where the branches meet (the
 *             ancestor): it must be a locator height, and the first header
 *             must link to our hash there (the caller verifies the headers
 *             against sync_fork_parent's hash)
 *    BLOCKS   fetch the branch's blocks [ancestor + 1, ancestor + n] back
 *             to us (FetchBlocks.to_requester, checked against the
 *             verified header hashes), n enough to end above our head
 *    PROCESS  hand them to BlockProcessor as ONE reorg batch
 *             (ProcessBatch.reorg_ancestor_*): Storage undoes our blocks
 *             above the ancestor and applies theirs in one WriteBatch, all
 *             or nothing, and only if the result ends above its head
 *
 *  Refused, loudly (SYNC_FORK_TOO_DEEP): an ancestor more than
 *  max_reorg_depth below our head, or a branch that needs more than
 *  SYNC_FORK_MAX_BLOCKS blocks to get above our head (one batch is what
 *  Storage can apply atomically). Kept quietly (SYNC_FORK_KEEP_OURS): a
 *  branch the peer shows that does not end above our head. Nobody pays for
 *  serving another branch; only invalid data costs (SYNC_FORK_INVALID:
 *  headers that do not verify or do not link to the locator hash their
 *  start names; a block of the branch refused for its content).
 *
 *  Each step has a deadline (timeout_ms); a peer whose resolution ended
 *  without a reorg is not tried again for SYNC_FORK_COOLDOWN_MS. Peers
 *  found on another branch while one resolution runs wait their turn (the
 *  last SYNC_FORK_WAITING of them); when it ends without a reorg the next
 *  one starts (sync_fork_next); a reorg forgets them (the machine restarts
 *  and finds again whoever is still on another branch).
 *
 *  Ownership: sync_fork_new / sync_fork_destroy(&self).
 */
#ifndef SYNC_FORK_H
#define SYNC_FORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "sync_machine.h"
#include "wire/wire.h"

#define SYNC_FORK_HEADERS     512 /* headers asked with the locator */
#define SYNC_FORK_MAX_BLOCKS  512 /* blocks of one reorg batch */
#define SYNC_FORK_EXTRA       64  /* blocks fetched beyond the least that is longer */
#define SYNC_FORK_COOLDOWN_MS 10000
#define SYNC_FORK_COOLDOWNS   8
#define SYNC_FORK_WAITING     4
/* Request ids of fork choice's own fetches carry this bit: their results
 * are the fork's, never the machine's (whose ids, from the actor's
 * instance number, unix ms << 16, stay below 2^61 for a thousand years).
 * Not bit 62: PeerManager marks its gossip's own fetches with it
 * (PM_GOSSIP_REQ_BIT) and reports their results to nobody. */
#define SYNC_FORK_REQ_BIT     (1ull << 61)

typedef enum {
    SYNC_FORK_NONE = 0,      /* nothing to do */
    SYNC_FORK_GET_LOCATOR,   /* send GetLocator to Storage */
    SYNC_FORK_FETCH_HEADERS, /* FetchHeaders{req_id, peer, locator, count} */
    SYNC_FORK_FETCH_BLOCKS,  /* FetchBlocks{req_id, peer, start, count,
                                expected (sync_fork_expected), to_requester} */
    SYNC_FORK_PROCESS,       /* ProcessBatch{the FetchResult's count blocks,
                                expected, ancestor, ancestor_hash} */
    SYNC_FORK_REORGED,       /* done: the head is on the peer's branch */
    SYNC_FORK_TOO_DEEP,      /* refused: report it loudly */
    SYNC_FORK_KEEP_OURS,     /* their branch is not longer */
    SYNC_FORK_INVALID,       /* the peer served invalid data: penalise it */
    SYNC_FORK_ABANDONED,     /* timeout, or a failure that is nobody's fault */
} sync_fork_step_kind_t;

typedef struct {
    sync_fork_step_kind_t kind;
    uint64_t req_id;
    sync_peer_id_t peer;
    uint64_t start; /* FETCH_BLOCKS: ancestor + 1 */
    uint32_t count; /* FETCH_HEADERS, FETCH_BLOCKS, PROCESS */
    uint64_t ancestor;
    alys_hash_t ancestor_hash;
    uint64_t head;  /* our head when the resolution began */
    uint64_t depth; /* head - ancestor */
    char detail[192];
} sync_fork_step_t;

typedef struct sync_fork sync_fork_t;

/* max_reorg_depth: [storage] max_reorg_depth; timeout_ms: each step's
 * deadline. NULL on allocation failure. */
sync_fork_t *sync_fork_new(uint32_t max_reorg_depth, uint32_t timeout_ms);
void sync_fork_destroy(sync_fork_t **self_p);

/* The machine found that peer (claiming peer_height) is on another branch
 * than our head. GET_LOCATOR when a resolution starts; NONE when one is
 * already under way or the peer cools down. */
void sync_fork_found(sync_fork_t *self, uint64_t now_ms, const char *peer, uint64_t peer_height,
                     sync_fork_step_t *out);
/* After a resolution ended (any terminal step): GET_LOCATOR for the next
 * peer waiting its turn, or NONE. */
void sync_fork_next(sync_fork_t *self, uint64_t now_ms, sync_fork_step_t *out);
/* Storage's Locator (heights descending, hashes 32 bytes each, parallel).
 * FETCH_HEADERS (the locator: sync_fork_locator), or ABANDONED when it is
 * malformed or not asked for. */
void sync_fork_on_locator(sync_fork_t *self, uint64_t now_ms, const uint64_t *heights,
                          const alys_hash_t *hashes, size_t n, sync_fork_step_t *out);
/* The locator hashes to send (n set), valid until the next call. */
const alys_hash_t *sync_fork_locator(const sync_fork_t *self, size_t *n);
/* Whether req_id is the HEADERS step's, and the hash the header at start
 * must link to (our hash at start - 1), if start - 1 is a locator height. */
bool sync_fork_parent(const sync_fork_t *self, uint64_t req_id, uint64_t start, alys_hash_t out);
/* The HEADERS answer: outcome from PeerManager; when OK, verified says
 * whether the caller's verification against sync_fork_parent passed, and
 * hashes[0..n) are the verified header hashes from start. */
void sync_fork_on_headers(sync_fork_t *self, uint64_t now_ms, uint64_t req_id, sync_outcome_t outcome,
                          bool verified, uint64_t start, const alys_hash_t *hashes, uint32_t n,
                          const char *why, sync_fork_step_t *out);
/* Expected header hashes of the BLOCKS and PROCESS steps (count set). */
const alys_hash_t *sync_fork_expected(const sync_fork_t *self, uint32_t *count);
/* The BLOCKS answer: PeerManager's outcome and the n blocks it returned. */
void sync_fork_on_blocks(sync_fork_t *self, uint64_t now_ms, uint64_t req_id,
                         sync_outcome_t outcome, uint32_t n, sync_fork_step_t *out);
/* BlockProcessor's answer to the reorg batch: reorg_depth > 0 with the head
 * above ours = REORGED. failed with content_fault (a block broke a rule of
 * its own, alys_refusal_is_content) = INVALID; any other failure or an
 * error = KEEP_OURS when storage found the branch not longer, else
 * ABANDONED. */
void sync_fork_on_processed(sync_fork_t *self, uint64_t now_ms, bool answered,
                            uint32_t reorg_depth, uint64_t head_height, bool failed,
                            bool content_fault, const char *reason, sync_fork_step_t *out);
/* A step past its deadline: ABANDONED. */
void sync_fork_tick(sync_fork_t *self, uint64_t now_ms, sync_fork_step_t *out);

/* For SyncStatus and metrics. */
typedef struct {
    bool busy;
    uint64_t reorgs, refused;
    char last_reorg[192];
    char last_refused[192];
} sync_fork_status_t;
void sync_fork_get_status(const sync_fork_t *self, sync_fork_status_t *out);
const char *sync_fork_step_name(sync_fork_step_kind_t k);

#endif
