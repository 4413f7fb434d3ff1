/*  aura.c: see aura.h. */
#include <string.h>

#include "aura.h"

uint64_t aura_slot_at(const alys_genesis_t *g, uint64_t now_ms)
{
    return alys_genesis_slot_at(g, now_ms);
}

bool aura_slot_start_ms(const alys_genesis_t *g, uint64_t slot, uint64_t *start_ms)
{
    uint64_t dur = g->slot_duration_ms;
    if (g->genesis_time > UINT64_MAX / 1000 || (dur != 0 && slot > UINT64_MAX / dur))
        return false;
    uint64_t base = g->genesis_time * 1000, off = slot * dur;
    if (off > UINT64_MAX - base)
        return false;
    *start_ms = base + off;
    return true;
}

uint32_t aura_author(const alys_genesis_t *g, uint64_t slot)
{
    return (uint32_t) (slot % g->authority_count);
}

int aura_authority_index(const alys_genesis_t *g, const uint8_t pubkey[ALYS_PUBKEY_LEN])
{
    for (uint32_t i = 0; i < g->authority_count; i++)
        if (memcmp(g->authorities[i], pubkey, ALYS_PUBKEY_LEN) == 0)
            return (int) i;
    return -1;
}

bool aura_next_own_slot(const alys_genesis_t *g, uint32_t index, uint64_t now_ms, uint64_t *slot,
                        uint64_t *start_ms)
{
    uint32_t n = g->authority_count;
    if (n == 0 || index >= n || g->slot_duration_ms == 0)
        return false;
    uint64_t s = aura_slot_at(g, now_ms), start;
    if (!aura_slot_start_ms(g, s, &start))
        return false;
    if (start < now_ms)
        s++; /* the current slot has begun: the next one */
    if (s == 0)
        s = 1; /* slot 0 is the genesis' own */
    uint64_t r = s % n;
    uint64_t add = (index + n - r) % n;
    if (s > UINT64_MAX - add)
        return false;
    s += add;
    if (!aura_slot_start_ms(g, s, &start))
        return false;
    *slot = s;
    *start_ms = start;
    return true;
}

static const char *names[AURA_DECISION_COUNT] = {
    [AURA_PRODUCE] = "produce",           [AURA_NOT_OUR_SLOT] = "not_our_slot",
    [AURA_GENESIS_SLOT] = "genesis_slot", [AURA_ALREADY_SIGNED] = "already_signed",
    [AURA_HEAD_AHEAD] = "head_ahead",     [AURA_NO_ANSWER] = "no_answer",
    [AURA_NOT_ALLOWED] = "not_allowed",   [AURA_BUSY] = "busy",
    [AURA_TOO_LATE] = "too_late",
};

const char *aura_decision_name(aura_decision_t d)
{
    return (unsigned) d < AURA_DECISION_COUNT ? names[d] : "unknown";
}

bool aura_decision_is_miss(aura_decision_t d)
{
    return d != AURA_PRODUCE && d != AURA_NOT_OUR_SLOT && d != AURA_GENESIS_SLOT &&
           d < AURA_DECISION_COUNT;
}

/* Is now still early enough in the slot to start building? */
static bool in_time(const aura_input_t *in)
{
    uint64_t start;
    if (!aura_slot_start_ms(in->genesis, in->slot, &start))
        return false;
    if (in->now_ms < start)
        return true; /* a timer firing a little early */
    return in->now_ms - start <= in->late_ms;
}

aura_decision_t aura_decide(const aura_input_t *in)
{
    const alys_genesis_t *g = in->genesis;
    if (g->authority_count == 0 || aura_author(g, in->slot) != in->authority)
        return AURA_NOT_OUR_SLOT;
    if (in->slot == 0)
        return AURA_GENESIS_SLOT;
    if (in->fence_any && in->fence_slot >= in->slot)
        return AURA_ALREADY_SIGNED;
    if (in->head_slot >= in->slot)
        return AURA_HEAD_AHEAD;
    if (in->can_produce == AURA_SYNC_NO_ANSWER)
        return AURA_NO_ANSWER;
    if (in->can_produce == AURA_SYNC_NO)
        return AURA_NOT_ALLOWED;
    if (in->busy)
        return AURA_BUSY;
    if (!in_time(in))
        return AURA_TOO_LATE;
    return AURA_PRODUCE;
}
