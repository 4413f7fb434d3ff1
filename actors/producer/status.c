/*  status.c: see status.h. */
#include "status.h"

void producer_status_fill(producer_status_t *out, const slot_session_t *ss, bool enabled,
                          uint64_t next_own_slot)
{
    alys__producer__producer_status__init(&out->msg);
    out->msg.enabled = enabled;
    out->msg.authority_index = ss->authority;
    out->msg.produced = ss->produced;
    out->msg.missed_slots = ss->missed;
    out->msg.last_missed_reason = (char *) (ss->last_missed_reason ? ss->last_missed_reason : "");
    out->msg.last_missed_slot = ss->last_missed_slot;
    out->msg.signed_up_to_slot = ss->fence.any ? ss->fence.slot : 0;
    out->msg.next_own_slot = next_own_slot;
    size_t n = 0;
    for (; n < SS_REASONS_MAX && ss->missed_by[n].reason; n++) {
        alys__producer__missed_slots__init(&out->items[n]);
        out->items[n].reason = (char *) ss->missed_by[n].reason;
        out->items[n].count = ss->missed_by[n].count;
        out->ptrs[n] = &out->items[n];
    }
    out->msg.n_missed_by_reason = n;
    out->msg.missed_by_reason = n ? out->ptrs : NULL;
}
