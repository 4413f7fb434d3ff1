/*  fence.c: see fence.h. */
#include <string.h>

#include "fence.h"

alys_fence_verdict_t alys_fence_check(const alys_fence_record_t *last, uint64_t slot,
                                      const alys_hash_t hash)
{
    if (!last->any || slot > last->slot)
        return ALYS_FENCE_ALLOW_NEW;
    if (slot < last->slot)
        return ALYS_FENCE_REFUSE_STALE;
    return memcmp(hash, last->hash, ALYS_HASH_LEN) == 0 ? ALYS_FENCE_ALLOW_RESIGN
                                                        : ALYS_FENCE_REFUSE_DOUBLE;
}

const char *alys_fence_verdict_name(alys_fence_verdict_t v)
{
    switch (v) {
    case ALYS_FENCE_ALLOW_NEW: return "allow_new";
    case ALYS_FENCE_ALLOW_RESIGN: return "allow_resign";
    case ALYS_FENCE_REFUSE_DOUBLE: return "refuse_double";
    case ALYS_FENCE_REFUSE_STALE: return "refuse_stale";
    }
    return "unknown";
}

void alys_fence_advance(alys_fence_record_t *last, uint64_t slot, const alys_hash_t hash)
{
    if (last->any && slot <= last->slot)
        return;
    last->any = true;
    last->slot = slot;
    memcpy(last->hash, hash, ALYS_HASH_LEN);
}
