/*  fence.h: the signing fence (Lighthouse's slashing protection as the
 *  model), the pure rule. The durable record lives in StorageActor
 *  (FenceRecord / GetFence in proto/storage.proto); this module only says
 *  whether a signature may leave, given the last record.
 *
 *  In common/chain, not in the producer, because two processes apply it:
 *  alys-producer before it signs, and StorageActor when it records (a
 *  check-and-set against the stored record, so a second producer process
 *  with the same key, or a bug, cannot move the record backwards).
 *
 *  A record is (slot, header hash) where the header hash is
 *  alys_header_hash, which excludes the signature: it is known before
 *  signing. Signing is BIP340 with no auxiliary randomness (alys_sign), so
 *  re-signing the same header gives the same bytes.
 *
 *  Rule for signing header hash H at slot s, last record (ls, lh):
 *    no record             allow (new)
 *    s >  ls               allow (new): record (s, H) durably FIRST, then sign
 *    s == ls and H == lh   allow (resign): the same block, e.g. after a crash
 *                          between the record and the signature's use
 *    s == ls and H != lh   refuse (double): two blocks for one slot
 *    s <  ls               refuse (stale): never below a signed slot (at it: only
 *                          the same block, as above)
 *
 *  Protocol in the producer: check, send FenceRecord(s, H), wait for its
 *  reply with ok (storage has fsync'ed it), advance the local copy, sign.
 *  No reply, or ok = false: the slot is missed (reason fence_unavailable),
 *  never signed on hope.
 */
#ifndef ALYS_CHAIN_FENCE_H
#define ALYS_CHAIN_FENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "chain.h"

typedef struct {
    bool any; /* false: nothing signed yet by this authority */
    uint64_t slot;
    alys_hash_t hash;
} alys_fence_record_t;

typedef enum {
    ALYS_FENCE_ALLOW_NEW = 0,
    ALYS_FENCE_ALLOW_RESIGN,
    ALYS_FENCE_REFUSE_DOUBLE,
    ALYS_FENCE_REFUSE_STALE,
} alys_fence_verdict_t;

alys_fence_verdict_t alys_fence_check(const alys_fence_record_t *last, uint64_t slot,
                                      const alys_hash_t hash);
static inline bool alys_fence_allows(alys_fence_verdict_t v)
{
    return v == ALYS_FENCE_ALLOW_NEW || v == ALYS_FENCE_ALLOW_RESIGN;
}
/* "allow_new", "allow_resign", "refuse_double", "refuse_stale". */
const char *alys_fence_verdict_name(alys_fence_verdict_t v);
/* After storage acknowledged the durable record of (slot, hash). Never moves
 * the record backwards (a late reply for an older slot changes nothing). */
void alys_fence_advance(alys_fence_record_t *last, uint64_t slot, const alys_hash_t hash);

#endif
