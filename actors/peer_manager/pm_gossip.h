/*  pm_gossip.h: block gossip decisions (issue 9), pure: no sockets, no
 *  clock. peer_gossip.c moves the bytes.
 *
 *  Push. A block that storage committed as our new head, whether we produced
 *  it (AnnounceBlock from alys-producer) or a peer pushed it to us, is sent
 *  whole (NewBlock) to at most PMG_PUSH_MAX of our ready peers, never back
 *  to the peer it came from. Whole blocks rather than hash announcements:
 *  an announcement costs every hop a request and a round trip before the
 *  block moves, and a new wire message; our blocks are bounded
 *  (ALYS_MAX_BLOCK_BYTES) and our networks small, so the bound on fan-out
 *  is what keeps the upload per block bounded (PMG_PUSH_MAX x block), and
 *  since every node relays once after its own commit the block still
 *  floods the network in a few hops. Peers past the bound hear of the new
 *  head from our Status (their range sync), as before.
 *
 *  Receive (pmg_on_block). A pushed block is dropped if its hash was seen
 *  (a bounded ring of the last PMG_SEEN_MAX hashes: pushed, produced or
 *  relayed) or if its height is at or below our head (no fork choice
 *  here). Its parent is our head's height: it goes to BlockProcessor
 *  (stateless checks by the validators, execution and commit by storage)
 *  and is relayed only once committed. Up to PMG_MAX_GAP above that: its
 *  ancestors are missing; it waits in the pusher's part of the orphan pool
 *  (at most PMG_ORPHANS_PER_PEER per peer, PMG_ORPHANS_MAX in all) and the
 *  missing range is fetched from that peer (PMG_FETCH_MAX blocks at most).
 *  Farther ahead: we are behind by more than a few blocks, which is range
 *  sync's work; SyncActor is told the peer's height.
 *
 *  Another branch (pmg_other_branch): a pushed block that BlockProcessor
 *  refused for linkage (another parent) and that is above our head is the
 *  tip of a longer branch. Fork choice is SyncActor's (range sync from a
 *  block locator finds where the branches meet), so SyncActor is told the
 *  pusher's height, and the pusher pays nothing (another branch is not a
 *  lie). BlockProcessor's answer decides, not our cached head hash, which
 *  may lag the height it is paired with.
 *
 *  After our head moves, an orphan whose parent is the new head goes to
 *  BlockProcessor (pmg_orphan_next); orphans at or below the head are
 *  dropped (pmg_orphans_prune).
 *
 *  Ownership: pmg_new / pmg_destroy(&self). Orphans and blocks in flight
 *  hold their own copy of the bytes; pmg_orphan_next and pmg_inflight_take
 *  hand that copy to the caller, who frees it (free()).
 */
#ifndef PM_GOSSIP_H
#define PM_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "wire/wire.h"

#define PMG_SEEN_MAX         1024
#define PMG_PUSH_MAX         8
#define PMG_MAX_GAP          8
#define PMG_FETCH_MAX        PMG_MAX_GAP
#define PMG_ORPHANS_PER_PEER 4
#define PMG_ORPHANS_MAX      32
#define PMG_INFLIGHT_MAX     16

typedef enum {
    PMG_PROCESS = 0, /* to BlockProcessor now */
    PMG_DROP_SEEN,   /* hash already seen */
    PMG_DROP_OLD,    /* at or below our head */
    PMG_ORPHAN,      /* keep (pmg_orphan_add) and fetch [head+1, height) from the pusher */
    PMG_BEHIND,      /* far ahead: range sync (tell SyncActor the peer's height) */
} pmg_verdict_t;

const char *pmg_verdict_name(pmg_verdict_t v);

typedef struct {
    char peer[ALYS_WIRE_ID_MAX];
    alys_hash_t hash;
    alys_hash_t parent;
    uint64_t height;
    uint8_t *bytes; /* the encoded block (owned by whoever holds the entry) */
    size_t len;
    uint64_t batch_id; /* in flight: the ProcessBatch id */
} pmg_block_t;

typedef struct pmg pmg_t;

pmg_t *pmg_new(void);
void pmg_destroy(pmg_t **self_p);

bool pmg_seen(const pmg_t *self, const alys_hash_t hash);
void pmg_mark_seen(pmg_t *self, const alys_hash_t hash);

/* The verdict on a pushed block (hash, height) with our head at
 * head_height. PROCESS and ORPHAN mark it seen (a second copy is a
 * duplicate); the others do not (a dropped block may come back usefully). */
pmg_verdict_t pmg_on_block(pmg_t *self, const alys_hash_t hash, uint64_t height, uint64_t head_height);

/* A pushed block at height, refused by BlockProcessor for linkage
 * (pm_judge_refusal's linkage) or not, with our head now at head_height:
 * the tip of another, longer branch (see above)? */
bool pmg_other_branch(bool linkage_refused, uint64_t height, uint64_t head_height);

/* Keep an orphan (bytes copied). -1 if the peer's share or the pool is
 * full, or out of memory: the block is dropped (and unmarked as seen). */
int pmg_orphan_add(pmg_t *self, const char *peer, const alys_hash_t hash,
                   const alys_hash_t parent, uint64_t height, const uint8_t *bytes, size_t len);
size_t pmg_orphan_count(const pmg_t *self, const char *peer); /* NULL: all */
/* The orphan whose parent is our head (height head+1, parent head_hash),
 * taken out of the pool into *out (the caller owns out->bytes). */
bool pmg_orphan_next(pmg_t *self, uint64_t head_height, const alys_hash_t head_hash, pmg_block_t *out);
/* Drop the orphans at or below head_height (they can no longer link);
 * returns how many. */
size_t pmg_orphans_prune(pmg_t *self, uint64_t head_height);
/* The peer left: its orphans go. */
void pmg_peer_gone(pmg_t *self, const char *peer);

/* A block handed to BlockProcessor under batch_id (bytes copied, kept to
 * relay it once committed). -1 when PMG_INFLIGHT_MAX are in flight. */
int pmg_inflight_add(pmg_t *self, uint64_t batch_id, const pmg_block_t *b);
bool pmg_inflight_has(const pmg_t *self, uint64_t batch_id);
/* The answer came: the entry, out of the table (caller owns out->bytes). */
bool pmg_inflight_take(pmg_t *self, uint64_t batch_id, pmg_block_t *out);

/* Which of n peers get a push: at most cap of them, never index except
 * (SIZE_MAX: none excluded), starting at seed % n so that the peers past
 * the bound differ from block to block. Writes indices to out (cap
 * entries); returns how many. */
size_t pmg_push_pick(size_t n, size_t except, size_t cap, uint64_t seed, size_t *out);

#endif
