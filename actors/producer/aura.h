/*  aura.h: Aura slot arithmetic and the producer's decision at a slot
 *  start, pure (the time is a parameter; no I/O).
 *
 *  Slots: slot = (now_ms - genesis_time * 1000) / slot_duration_ms (the
 *  chain's own alys_genesis_slot_at); the slot's author is
 *  authorities[slot mod n]; slot 0 is the genesis' virtual parent, so no
 *  block is ever produced in it. A block's header timestamp is fixed by its
 *  slot (chain.c's rule), not by the producer's clock.
 *
 *  Decision at a slot start, checks in this order (the first that fails is
 *  the reason, so an operator sees the most fundamental cause):
 *    not_our_slot    the slot's author is another authority (not a miss)
 *    genesis_slot    slot 0 (not a miss)
 *    already_signed  the fence holds a slot at or above this one (restart
 *                    inside a slot already signed: never sign again)
 *    head_ahead      the head's slot is at or above this one (a block of a
 *                    later slot exists; ours could not link after it)
 *    no_answer       SyncActor did not answer CanProduceBlocks
 *    not_allowed     SyncActor answered no
 *    busy            a block is still being built or recorded
 *    too_late        now is past slot start + late_ms (the block would
 *                    reach peers too late to be built on)
 *  else produce.
 */
#ifndef ALYS_PRODUCER_AURA_H
#define ALYS_PRODUCER_AURA_H

#include <stdbool.h>
#include <stdint.h>

#include "chain/chain.h"

/* The slot the wall clock is in (0 before genesis). */
uint64_t aura_slot_at(const alys_genesis_t *g, uint64_t now_ms);
/* Unix ms at which slot starts; false if it overflows 64 bits. */
bool aura_slot_start_ms(const alys_genesis_t *g, uint64_t slot, uint64_t *start_ms);
/* Index of the slot's author (authority_count must be > 0). */
uint32_t aura_author(const alys_genesis_t *g, uint64_t slot);
/* Index of pubkey among the genesis authorities, or -1. */
int aura_authority_index(const alys_genesis_t *g, const uint8_t pubkey[ALYS_PUBKEY_LEN]);
/* The first slot >= 1 authored by authority index whose start is at or
 * after now_ms, and its start. False if index is out of range, the genesis
 * has no authorities or no slot duration, or it overflows. */
bool aura_next_own_slot(const alys_genesis_t *g, uint32_t index, uint64_t now_ms, uint64_t *slot,
                        uint64_t *start_ms);

typedef enum {
    AURA_PRODUCE = 0,
    AURA_NOT_OUR_SLOT,
    AURA_GENESIS_SLOT,
    AURA_ALREADY_SIGNED,
    AURA_HEAD_AHEAD,
    AURA_NO_ANSWER,
    AURA_NOT_ALLOWED,
    AURA_BUSY,
    AURA_TOO_LATE,
    AURA_DECISION_COUNT
} aura_decision_t;

/* "produce", "not_our_slot", ... stable strings (metric labels). */
const char *aura_decision_name(aura_decision_t d);
/* Is it a missed own slot (counted as missed_slots{reason})? */
bool aura_decision_is_miss(aura_decision_t d);

typedef enum { AURA_SYNC_NO_ANSWER = 0, AURA_SYNC_NO, AURA_SYNC_YES } aura_sync_answer_t;

typedef struct {
    const alys_genesis_t *genesis;
    uint32_t authority; /* our index */
    uint64_t slot;
    uint64_t now_ms;
    uint64_t late_ms; /* latest start offset into the slot */
    aura_sync_answer_t can_produce;
    bool busy;
    uint64_t head_slot;
    bool fence_any;      /* the fence holds a signed slot ... */
    uint64_t fence_slot; /* ... this one */
} aura_input_t;

aura_decision_t aura_decide(const aura_input_t *in);

#endif
