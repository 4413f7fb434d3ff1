/*  slot_session.c: see slot_session.h. */
#include <string.h>

#include "slot_session.h"

void ss_init(slot_session_t *ss, const alys_genesis_t *g, uint32_t authority, uint64_t wait_ms,
             uint64_t late_ms, uint64_t fence_timeout_ms)
{
    memset(ss, 0, sizeof *ss);
    ss->genesis = g;
    ss->authority = authority;
    ss->wait_ms = wait_ms;
    ss->late_ms = late_ms;
    ss->fence_timeout_ms = fence_timeout_ms;
}

static ss_action_t none(void)
{
    return (ss_action_t){.kind = SS_NONE};
}

static void count_miss(slot_session_t *ss, uint64_t slot, const char *reason)
{
    ss->missed++;
    ss->last_missed_slot = slot;
    ss->last_missed_reason = reason;
    for (int i = 0; i < SS_REASONS_MAX; i++) {
        if (!ss->missed_by[i].reason) {
            ss->missed_by[i].reason = reason;
            ss->missed_by[i].count = 1;
            return;
        }
        if (strcmp(ss->missed_by[i].reason, reason) == 0) {
            ss->missed_by[i].count++;
            return;
        }
    }
    /* More distinct reasons than slots: the total still counts it. */
}

uint64_t ss_missed_count(const slot_session_t *ss, const char *reason)
{
    for (int i = 0; i < SS_REASONS_MAX && ss->missed_by[i].reason; i++)
        if (strcmp(ss->missed_by[i].reason, reason) == 0)
            return ss->missed_by[i].count;
    return 0;
}

/* A miss of slot (the one in progress, or a new one found busy). */
static ss_action_t missed(slot_session_t *ss, uint64_t slot, const char *reason)
{
    count_miss(ss, slot, reason);
    return (ss_action_t){.kind = SS_MISSED, .slot = slot, .reason = reason};
}

/* End the slot in progress with a miss. */
static ss_action_t end_missed(slot_session_t *ss, const char *reason)
{
    ss->phase = SS_IDLE;
    return missed(ss, ss->slot, reason);
}

ss_action_t ss_slot_start(slot_session_t *ss, uint64_t slot, uint64_t now_ms)
{
    (void) now_ms;
    if (ss->phase != SS_IDLE)
        return missed(ss, slot, aura_decision_name(AURA_BUSY));
    ss->phase = SS_ASKING;
    ss->slot = slot;
    if (!aura_slot_start_ms(ss->genesis, slot, &ss->slot_start_ms))
        ss->slot_start_ms = UINT64_MAX;
    ss->answer = AURA_SYNC_NO_ANSWER;
    ss->head_known = false;
    ss->pool_known = false;
    ss->corr_sync = ++ss->next_corr;
    ss->corr_head = ++ss->next_corr;
    ss->corr_pool = ++ss->next_corr;
    return (ss_action_t){.kind = SS_ASK,
                         .slot = slot,
                         .corr_sync = ss->corr_sync,
                         .corr_head = ss->corr_head,
                         .corr_pool = ss->corr_pool};
}

static ss_action_t decide(slot_session_t *ss, uint64_t now_ms)
{
    aura_input_t in = {.genesis = ss->genesis,
                       .authority = ss->authority,
                       .slot = ss->slot,
                       .now_ms = now_ms,
                       .late_ms = ss->late_ms,
                       .can_produce = ss->answer,
                       .busy = ss->submitting, /* our previous block is not committed yet */
                       .head_slot = ss->head_slot,
                       .fence_any = ss->fence.any,
                       .fence_slot = ss->fence.slot};
    aura_decision_t d = aura_decide(&in);
    if (d == AURA_PRODUCE && !ss->fence_loaded) {
        ss->phase = SS_IDLE;
        return missed(ss, ss->slot, "fence_unknown");
    }
    if (d == AURA_PRODUCE) {
        ss->phase = SS_BUILDING;
        return (ss_action_t){.kind = SS_BUILD, .slot = ss->slot};
    }
    ss->phase = SS_IDLE;
    if (!aura_decision_is_miss(d))
        return none();
    return missed(ss, ss->slot, aura_decision_name(d));
}

/* Decide as soon as all answers are in. */
static ss_action_t maybe_decide(slot_session_t *ss, uint64_t now_ms)
{
    if (ss->phase == SS_ASKING && ss->answer != AURA_SYNC_NO_ANSWER && ss->head_known && ss->pool_known)
        return decide(ss, now_ms);
    return none();
}

ss_action_t ss_on_can_produce(slot_session_t *ss, uint64_t corr, bool yes, uint64_t now_ms)
{
    if (ss->phase != SS_ASKING || corr != ss->corr_sync)
        return none();
    ss->answer = yes ? AURA_SYNC_YES : AURA_SYNC_NO;
    return maybe_decide(ss, now_ms);
}

ss_action_t ss_on_head(slot_session_t *ss, uint64_t corr, uint64_t head_slot, uint64_t now_ms)
{
    if (ss->phase != SS_ASKING || corr != ss->corr_head)
        return none();
    ss->head_known = true;
    ss->head_slot = head_slot;
    return maybe_decide(ss, now_ms);
}

ss_action_t ss_on_pool(slot_session_t *ss, uint64_t corr, uint64_t now_ms)
{
    if (ss->phase != SS_ASKING || corr != ss->corr_pool)
        return none();
    ss->pool_known = true;
    return maybe_decide(ss, now_ms);
}

ss_action_t ss_tick(slot_session_t *ss, uint64_t now_ms)
{
    if (ss->submitting && now_ms >= ss->submit_sent_ms + ss->submit_timeout_ms) {
        ss->submitting = false;
        return missed(ss, ss->submit_slot, "not_committed");
    }
    if (ss->phase == SS_ASKING && ss->slot_start_ms != UINT64_MAX &&
        now_ms >= ss->slot_start_ms + ss->wait_ms)
        return decide(ss, now_ms); /* a silent SyncActor decides no_answer */
    if (ss->phase == SS_FENCING && now_ms >= ss->fence_sent_ms + ss->fence_timeout_ms)
        return end_missed(ss, "fence_unavailable");
    return none();
}

ss_action_t ss_built(slot_session_t *ss, uint64_t slot, const alys_hash_t header_hash, uint64_t now_ms)
{
    if (ss->phase != SS_BUILDING || slot != ss->slot)
        return none();
    if (!alys_fence_allows(alys_fence_check(&ss->fence, slot, header_hash)))
        return end_missed(ss, "fence_refused");
    memcpy(ss->building, header_hash, ALYS_HASH_LEN);
    ss->phase = SS_FENCING;
    ss->fence_sent_ms = now_ms;
    ss->corr_fence = ++ss->next_corr;
    return (ss_action_t){.kind = SS_RECORD_FENCE, .slot = slot, .corr_fence = ss->corr_fence};
}

ss_action_t ss_build_failed(slot_session_t *ss, uint64_t slot)
{
    if (ss->phase != SS_BUILDING || slot != ss->slot)
        return none();
    return end_missed(ss, "build_failed");
}

ss_action_t ss_on_fence_recorded(slot_session_t *ss, uint64_t corr, bool ok)
{
    if (ss->phase != SS_FENCING || corr != ss->corr_fence)
        return none();
    if (!ok)
        return end_missed(ss, "fence_unavailable");
    alys_fence_advance(&ss->fence, ss->slot, ss->building);
    ss->phase = SS_IDLE;
    return (ss_action_t){.kind = SS_SIGN_SUBMIT, .slot = ss->slot};
}

ss_action_t ss_abandon(slot_session_t *ss, const char *reason)
{
    if (ss->phase == SS_IDLE)
        return none();
    return end_missed(ss, reason);
}

ss_action_t ss_not_submitted(slot_session_t *ss, uint64_t slot, const char *reason)
{
    /* Only the slot just signed: the session went idle at SIGN_SUBMIT and
     * nothing else ends a slot that is already over. */
    if (ss->phase != SS_IDLE || slot != ss->slot || !ss->fence.any || ss->fence.slot != slot)
        return none();
    return missed(ss, slot, reason);
}

void ss_on_committed(slot_session_t *ss, uint64_t slot)
{
    (void) slot;
    ss->produced++;
}

uint64_t ss_submitted(slot_session_t *ss, uint64_t slot, uint64_t now_ms, uint64_t timeout_ms)
{
    ss->submitting = true;
    ss->submit_slot = slot;
    ss->submit_sent_ms = now_ms;
    ss->submit_timeout_ms = timeout_ms;
    ss->corr_submit = ++ss->next_corr;
    return ss->corr_submit;
}

ss_action_t ss_on_processed(slot_session_t *ss, uint64_t corr, bool committed, uint64_t *slot_out)
{
    if (!ss->submitting || corr != ss->corr_submit)
        return none();
    ss->submitting = false;
    *slot_out = ss->submit_slot;
    if (committed) {
        ss_on_committed(ss, ss->submit_slot);
        return none();
    }
    return missed(ss, ss->submit_slot, "refused");
}

void ss_set_fence(slot_session_t *ss, const alys_fence_record_t *durable)
{
    ss->fence_loaded = true;
    if (durable->any)
        alys_fence_advance(&ss->fence, durable->slot, durable->hash);
}
