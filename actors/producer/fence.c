/*  fence.c: see fence.h. */
#include <string.h>

#include "fence.h"

fence_verdict_t fence_check(const fence_record_t *last, uint64_t slot, const alys_hash_t hash)
{
    if (!last->any || slot > last->slot)
        return FENCE_ALLOW_NEW;
    if (slot < last->slot)
        return FENCE_REFUSE_STALE;
    return memcmp(hash, last->hash, ALYS_HASH_LEN) == 0 ? FENCE_ALLOW_RESIGN : FENCE_REFUSE_DOUBLE;
}

const char *fence_verdict_name(fence_verdict_t v)
{
    switch (v) {
    case FENCE_ALLOW_NEW: return "allow_new";
    case FENCE_ALLOW_RESIGN: return "allow_resign";
    case FENCE_REFUSE_DOUBLE: return "refuse_double";
    case FENCE_REFUSE_STALE: return "refuse_stale";
    }
    return "unknown";
}

void fence_advance(fence_record_t *last, uint64_t slot, const alys_hash_t hash)
{
    if (last->any && slot <= last->slot)
        return;
    last->any = true;
    last->slot = slot;
    memcpy(last->hash, hash, ALYS_HASH_LEN);
}
