/*  fence.h: the signing fence (Lighthouse's slashing protection as the
 *  model), the pure rule. The durable record lives in StorageActor
 *  (FenceRecord / GetFence in proto/storage.proto); this module only says
 *  whether a signature may leave, given the last record.
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
 *    s <  ls               refuse (stale): never sign at or below a signed slot
 *
 *  Protocol in the producer: check, send FenceRecord(s, H), wait for its
 *  reply with ok (storage has fsync'ed it), advance the local copy, sign.
 *  No reply, or ok = false: the slot is missed (reason fence_unavailable),
 *  never signed on hope.
 */
#ifndef ALYS_PRODUCER_FENCE_H
#define ALYS_PRODUCER_FENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "chain/chain.h"

typedef struct {
    bool        any;        /* false: nothing signed yet by this authority */
    uint64_t    slot;
    alys_hash_t hash;
} fence_record_t;

typedef enum {
    FENCE_ALLOW_NEW = 0,
    FENCE_ALLOW_RESIGN,
    FENCE_REFUSE_DOUBLE,
    FENCE_REFUSE_STALE,
} fence_verdict_t;

fence_verdict_t fence_check(const fence_record_t *last, uint64_t slot, const alys_hash_t hash);
static inline bool fence_allows(fence_verdict_t v)
{
    return v == FENCE_ALLOW_NEW || v == FENCE_ALLOW_RESIGN;
}
/* "allow_new", "allow_resign", "refuse_double", "refuse_stale". */
const char *fence_verdict_name(fence_verdict_t v);
/* After storage acknowledged the durable record of (slot, hash). Never moves
 * the record backwards (a late reply for an older slot changes nothing). */
void fence_advance(fence_record_t *last, uint64_t slot, const alys_hash_t hash);

#endif
