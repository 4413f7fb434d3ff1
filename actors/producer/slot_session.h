/*  slot_session.h: the producer's work in one of its own slots, as a pure
 *  state machine (events in, one action out, time passed in), so the
 *  process shell only sends, receives and arms timers.
 *
 *  Flow of an own slot:
 *    slot start        -> ASK: CanProduceBlocks to SyncActor, GetHead and
 *                         GetMempoolTxs to StorageActor (corr ids given in
 *                         the action)
 *    all three answers, or wait_ms after the start -> the Aura decision
 *                         (a block built without the mempool's answer has
 *                         no txs)
 *                         (aura.h): BUILD, or MISSED(reason); a produce
 *                         decision before the durable fence record is known
 *                         (ss_set_fence: read from StorageActor at start) is
 *                         MISSED(fence_unknown): after a restart only that
 *                         record says whether this slot was already signed
 *    built(hash)       -> the fence rule against the durable record: refused
 *                         -> MISSED(fence_refused); else RECORD_FENCE
 *    FenceRecorded ok  -> SIGN_SUBMIT (the durable record now names the
 *                         block: builder_sign will sign it)
 *    FenceRecorded not ok, or fence_timeout_ms without an answer
 *                      -> MISSED(fence_unavailable): never signed on hope
 *    build failed      -> MISSED(build_failed)
 *    abandon(reason)   -> MISSED(reason) while the slot's work is under way
 *    not_submitted(reason) after SIGN_SUBMIT -> MISSED(reason): the signed
 *                         block was not handed over (sign_failed,
 *                         processor_unreachable)
 *    submitted(corr)   -> the block is with BlockProcessor; its answer:
 *                         committed -> produced; refused -> MISSED(refused);
 *                         no answer within submit_timeout_ms (ss_tick)
 *                         -> MISSED(not_committed). The session is idle
 *                         meanwhile (the next own slot may start).
 *  An answer whose corr id is not the one awaited (late, for an older slot)
 *  changes nothing. A slot start while another slot's work is unfinished
 *  is decided as busy.
 *
 *  It also keeps the producer's status (ProducerStatus in
 *  proto/producer.proto): produced, missed by reason, last miss, signed up
 *  to slot.
 */
#ifndef ALYS_PRODUCER_SLOT_SESSION_H
#define ALYS_PRODUCER_SLOT_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "aura.h"
#include "chain/chain.h"
#include "chain/fence.h"

typedef enum {
    SS_NONE = 0,
    SS_ASK,          /* send CanProduceBlocks (corr_sync), GetHead (corr_head) and
                        GetMempoolTxs (corr_pool) */
    SS_BUILD,        /* build on the head now (builder_assemble) */
    SS_RECORD_FENCE, /* send FenceRecord(slot, hash) (corr_fence) */
    SS_SIGN_SUBMIT,  /* sign (builder_sign with ss->fence) and hand the block over */
    SS_MISSED,       /* the slot is missed: reason */
} ss_action_kind_t;

typedef struct {
    ss_action_kind_t kind;
    uint64_t slot;
    const char *reason; /* SS_MISSED: aura_decision_name or the names above */
    uint64_t corr_sync, corr_head, corr_pool, corr_fence;
} ss_action_t;

typedef enum { SS_IDLE = 0, SS_ASKING, SS_BUILDING, SS_FENCING } ss_phase_t;

#define SS_REASONS_MAX 16

typedef struct {
    /* configuration */
    const alys_genesis_t *genesis;
    uint32_t authority;
    uint64_t wait_ms, late_ms, fence_timeout_ms;
    /* the slot in progress */
    ss_phase_t phase;
    uint64_t slot, slot_start_ms, fence_sent_ms;
    uint64_t corr_sync, corr_head, corr_pool, corr_fence, next_corr;
    aura_sync_answer_t answer;
    bool head_known;
    bool pool_known;      /* the mempool answered (txs, or an error: none) */
    uint64_t head_slot;   /* the latest head seen (kept across slots) */
    alys_hash_t building; /* the block being fenced */
    /* the signed block handed to BlockProcessor, awaiting its answer */
    bool submitting;
    uint64_t submit_slot, corr_submit, submit_sent_ms, submit_timeout_ms;
    /* the durable fence record (as acknowledged, or read at start) */
    alys_fence_record_t fence;
    bool fence_loaded; /* read from StorageActor (found or not) */
    /* status */
    uint64_t produced, missed, last_missed_slot;
    const char *last_missed_reason;
    struct {
        const char *reason;
        uint64_t count;
    } missed_by[SS_REASONS_MAX];
} slot_session_t;

void ss_init(slot_session_t *ss, const alys_genesis_t *g, uint32_t authority, uint64_t wait_ms,
             uint64_t late_ms, uint64_t fence_timeout_ms);

/* Events. Each returns the action to take now (SS_NONE: nothing). */
ss_action_t ss_slot_start(slot_session_t *ss, uint64_t slot, uint64_t now_ms);
ss_action_t ss_on_can_produce(slot_session_t *ss, uint64_t corr, bool yes, uint64_t now_ms);
ss_action_t ss_on_head(slot_session_t *ss, uint64_t corr, uint64_t head_slot, uint64_t now_ms);
/* StorageActor answered GetMempoolTxs (with txs or an error). */
ss_action_t ss_on_pool(slot_session_t *ss, uint64_t corr, uint64_t now_ms);
/* Timers: the decision deadline and the fence deadline. */
ss_action_t ss_tick(slot_session_t *ss, uint64_t now_ms);
/* The block for slot was assembled (header hash known, not signed); now_ms
 * starts the fence deadline. */
ss_action_t ss_built(slot_session_t *ss, uint64_t slot, const alys_hash_t header_hash,
                     uint64_t now_ms);
ss_action_t ss_build_failed(slot_session_t *ss, uint64_t slot);
ss_action_t ss_on_fence_recorded(slot_session_t *ss, uint64_t corr, bool ok);
ss_action_t ss_abandon(slot_session_t *ss, const char *reason);
/* After SS_SIGN_SUBMIT for slot: the block was not handed over (reason).
 * A miss of that slot; the fence record stays (it may have been signed). */
ss_action_t ss_not_submitted(slot_session_t *ss, uint64_t slot, const char *reason);
/* The block handed over was committed (counts as produced). */
void ss_on_committed(slot_session_t *ss, uint64_t slot);
/* After SIGN_SUBMIT for slot: the signed block went to BlockProcessor in a
 * ProcessBatch whose batch id is the returned corr; its answer is awaited
 * until now_ms + timeout_ms. */
uint64_t ss_submitted(slot_session_t *ss, uint64_t slot, uint64_t now_ms, uint64_t timeout_ms);
/* BlockProcessor's answer to the ProcessBatch corr: committed counts the
 * slot produced (SS_NONE); not committed is MISSED(refused). An answer not
 * awaited (late, or another corr) changes nothing. Sets *slot_out to the
 * slot the answer was about (when it was awaited). */
ss_action_t ss_on_processed(slot_session_t *ss, uint64_t corr, bool committed, uint64_t *slot_out);
/* The durable record read at start (GetFence; durable->any false when
 * storage holds none) or re-read. Production waits for the first. */
void ss_set_fence(slot_session_t *ss, const alys_fence_record_t *durable);

uint64_t ss_missed_count(const slot_session_t *ss, const char *reason);

#endif
