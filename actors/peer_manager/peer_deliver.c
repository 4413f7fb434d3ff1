/*  peer_deliver.c: downloads to BlockProcessor in height order, results to
 *  SyncActor, and the blame that follows (see pm.h, peer_reorder.h).
 *
 *  Blame flow:
 *    - data that is wrong whatever anyone else serves (undecodable, body not
 *      matching its verified header, response not matching the request):
 *      peer_net.c blames at once (peer_table_blame_now);
 *    - a block BlockProcessor refuses for its own content (signatures, tx
 *      root, nonces, balances, state root, linkage inside the chunk): the
 *      serving peer is only suspected for [h, h+1) (peer_table_suspect): the
 *      failure could be ours;
 *    - SyncActor re-fetches the range elsewhere; when a copy validates it
 *      sends RangeVerdict{valid=false} for each peer whose copy failed (one
 *      more suspicion, of the whole range) and then RangeVerdict{valid=true}
 *      for the peer whose copy was good: peer_table_range_validated convicts
 *      the suspects inside it, once per verdict however many suspicions
 *      (a suspect whose own copy validated is cleared instead);
 *    - Penalise applies what only SyncActor sees (stalls, lies about the
 *      height, invalid headers).
 *  Failures not about the block (future slot: our clock; internal errors;
 *  linkage of a chunk's first block: the previous batch's fault) blame no one.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pm.h"
#include "pm_flow.h"
#include "pm_judge.h"
#include "util.h"

#define DROPS_MAX 32

/* ---- verdicts ------------------------------------------------------------------ */

/* Range [start, end) served by peer_id is now proven good. */
static void validated(pm_t *pm, const char *peer_id, uint64_t start, uint64_t end)
{
    peer_ref_t blamed[16];
    peer_action_t actions[16];
    size_t n = peer_table_range_validated(pm->table, peer_id, start, end, pm_now(pm), blamed,
                                          actions, 16);
    for (size_t i = 0; i < n && i < 16; i++) {
        log_warn("peer %s convicted: it served blocks in [%llu,%llu) that failed, now proven good",
                 blamed[i].id, (unsigned long long) start, (unsigned long long) end);
        pm_apply_action(pm, blamed[i].id, actions[i], "served invalid blocks");
    }
    if (n)
        pm->peerset_dirty = true;
}

/* valid=false: a suspicion (SyncActor's view of which copy failed);
 * valid=true: the range is proven good, suspects inside it lied. */
void pm_range_verdict(pm_t *pm, const Alys__Peer__RangeVerdict *v)
{
    const char *peer = v->peer_id ? v->peer_id : "";
    if (v->count == 0 || !*peer)
        return;
    if (v->valid)
        validated(pm, peer, v->start, v->start + v->count);
    else
        peer_table_suspect(pm->table, peer, v->start, v->start + v->count,
                           v->reason ? v->reason : "invalid", pm_now(pm));
}

void pm_penalise(pm_t *pm, const Alys__Peer__Penalise *p)
{
    const char *peer = p->peer_id ? p->peer_id : "";
    peer_outcome_t o = {.reason = p->reason && *p->reason ? p->reason : "penalised by sync"};
    if (!pm_judge_penalty((int) p->outcome, &o.kind))
        return;
    pm_record(pm, peer, &o);
}

/* ---- reports of processing ---------------------------------------------------- */

static void send_outcome(pm_t *pm, Alys__Peer__BatchOutcome *bo)
{
    if (bo->request_id & PM_GOSSIP_REQ_BIT)
        return; /* gossip's own ancestor fetch: not SyncActor's */
    bo->head_height = pm->head_height;
    bo->head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, pm->head_hash};
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME;
    msg.batch_outcome = bo;
    if (pm_send_sync_peer(pm, &msg) != 0)
        log_warn("cannot report batch %llu to sync", (unsigned long long) bo->request_id);
}

/* Tell SyncActor what became of ranges the buffer let go. */
static void report_drops(pm_t *pm, const reorder_ref_t *drops, size_t n)
{
    for (size_t i = 0; i < n && i < DROPS_MAX; i++) {
        const reorder_ref_t *d = &drops[i];
        log_info("range [%llu,+%u) of request %llu from %s dropped: %s",
                 (unsigned long long) d->start, d->count, (unsigned long long) d->request_id,
                 d->peer_id, reorder_drop_name(d->why));
        Alys__Peer__BatchOutcome bo;
        if (!pm_flow_drop_outcome(d, &bo))
            continue; /* superseded: its blocks are still here */
        send_outcome(pm, &bo);
    }
}

int pm_deliver(pm_t *pm, uint64_t request_id, const char *peer_id, uint64_t start,
               const ProtobufCBinaryData *blocks, size_t n,
               const uint8_t (*expected)[ALYS_HASH_LEN], uint32_t *delivered)
{
    reorder_batch_t b = {.request_id = request_id,
                         .peer_id = peer_id,
                         .start = start,
                         .blocks = blocks,
                         .n = n,
                         .expected = expected};
    reorder_ref_t drops[DROPS_MAX];
    size_t nd = 0;
    reorder_insert_t rc = reorder_insert(pm->reorder, &b, drops, DROPS_MAX, &nd);
    report_drops(pm, drops, nd);
    *delivered = 0;
    if (rc == REORDER_FULL || rc == REORDER_INVALID) {
        log_warn("range [%llu,+%zu) from %s not kept: %s", (unsigned long long) start, n, peer_id,
                 rc == REORDER_FULL ? "reorder buffer full" : "out of memory");
        return ALYS__PEER__OUTCOME__BUSY;
    }
    *delivered = (uint32_t) n;
    pm_park_added(pm, &b);
    pm_deliver_pump(pm);
    return ALYS__PEER__OUTCOME__OK;
}

/* ---- to BlockProcessor ------------------------------------------------------- */

static int send_chunk(pm_t *pm, const reorder_send_t *s)
{
    Alys__Processor__ProcessBatch pb = ALYS__PROCESSOR__PROCESS_BATCH__INIT;
    pb.batch_id = s->batch_id;
    pb.n_blocks = s->count;
    pb.blocks = (ProtobufCBinaryData *) s->blocks;
    pb.n_expected_hashes = s->expected ? s->count : 0;
    pb.expected_hashes = (ProtobufCBinaryData *) s->expected;
    pb.origin = (char *) s->peer_id;
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PROCESS_BATCH;
    msg.process_batch = &pb;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &msg;
    env.corr_id = s->batch_id;
    return pm->port.send(pm->port.ctx, PM_TO_PROCESSOR, &env);
}

static void buffer_metrics(pm_t *pm)
{
    alys_metrics_t *m = pm->metrics;
    alys_metric_set(m, "alys_peer_reorder_blocks", NULL, "Downloaded blocks waiting for their turn",
                    (double) reorder_blocks(pm->reorder));
    alys_metric_set(m, "alys_peer_reorder_bytes", NULL, "Bytes in the reorder buffer",
                    (double) reorder_bytes(pm->reorder));
}

void pm_deliver_pump(pm_t *pm)
{
    for (;;) {
        uint64_t id = alys_next_corr_id();
        reorder_send_t s;
        if (!reorder_next(pm->reorder, (uint64_t) pm_mono(pm), id, &s))
            break;
        if (send_chunk(pm, &s) != 0) {
            log_warn("cannot hand [%llu,+%u) to the block processor: retrying",
                     (unsigned long long) s.start, s.count);
            reorder_on_busy(pm->reorder, id, (uint64_t) pm_mono(pm));
            break;
        }
        pm->batches_sent++;
        log_debug("handed [%llu,+%u) from %s to the block processor (batch %llu)",
                  (unsigned long long) s.start, s.count, s.peer_id, (unsigned long long) id);
    }
    pm_park_sync(pm); /* every change of the buffer ends here */
    buffer_metrics(pm);
}

void pm_deliver_tick(pm_t *pm)
{
    size_t n = reorder_expire(pm->reorder, (uint64_t) pm_mono(pm));
    if (n)
        log_warn("%zu batches unanswered by the block processor: resending", n);
    pm_deliver_pump(pm);
}

static void head_moved(pm_t *pm, uint64_t head, uint64_t seen_seq)
{
    reorder_ref_t drops[DROPS_MAX];
    size_t nd = 0;
    reorder_set_head(pm->reorder, head, seen_seq, drops, DROPS_MAX, &nd);
    report_drops(pm, drops, nd);
    pm_deliver_pump(pm);
}

/* ---- our head (StorageActor) ----------------------------------------------------- */

static void on_head(pm_t *pm, void *arg, uint64_t tag, const alys_env_t *reply)
{
    (void) arg;
    pm->head_asking = false;
    const Alys__Storage__StorageMsg *m = pm_storage_body(reply, ALYS__STORAGE__STORAGE_MSG__MSG_HEAD);
    if (!m)
        return;
    const Alys__Storage__Head *h = m->head;
    pm_head_t judged = pm_flow_head(h, (int64_t) tag, pm->bp_reply_at);
    if (judged == PM_HEAD_NO_GENESIS) {
        if (!pm->genesis_warned)
            log_warn("storage has no genesis yet: not talking to peers until it has");
        pm->genesis_warned = true;
        return;
    }
    if (!pm->have_head)
        log_info("head %llu from storage; serving and dialling peers", (unsigned long long) h->height);
    memcpy(pm->genesis_hash, h->genesis_hash.data, ALYS_HASH_LEN);
    pm->checkpoint = h->last_checkpoint;
    pm->head_at = pm_mono(pm);
    pm->have_head = true;
    if (judged == PM_HEAD_STALE)
        return; /* a BatchProcessed that arrived after we asked knows a fresher head */
    memset(pm->head_hash, 0, ALYS_HASH_LEN);
    if (h->hash.len == ALYS_HASH_LEN)
        memcpy(pm->head_hash, h->hash.data, ALYS_HASH_LEN);
    pm->head_height = h->height;
    head_moved(pm, h->height, pm->head_ask_seq);
}

void pm_deliver_refresh_head(pm_t *pm)
{
    if (pm->head_asking)
        return;
    Alys__Storage__GetHead get = ALYS__STORAGE__GET_HEAD__INIT;
    Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
    msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
    msg.get_head = &get;
    uint64_t seq = reorder_seq(pm->reorder);
    uint64_t asked_at = (uint64_t) pm_mono(pm);
    if (pm_storage_request(pm, &msg, PM_STORE_TIMEOUT_MS, on_head, NULL, asked_at) == 0) {
        pm->head_asking = true;
        pm->head_ask_seq = seq;
    }
}

/* ---- from BlockProcessor ----------------------------------------------------- */

static void on_processed(pm_t *pm, const Alys__Processor__BatchProcessed *bp)
{
    reorder_result_t r = {.batch_id = bp->batch_id,
                          .committed = bp->committed,
                          .head_height = bp->head_height,
                          .failed = bp->failed,
                          .failed_height = bp->failed_height,
                          .content_fault = pm_judge_refusal(bp->reason, 0, 0).content_fault};
    reorder_ref_t ref, drops[DROPS_MAX];
    size_t nd = 0;
    reorder_done_t done = reorder_on_processed(pm->reorder, &r, (uint64_t) pm_mono(pm), &ref,
                                               drops, DROPS_MAX, &nd);
    if (done == REORDER_UNKNOWN)
        return; /* an abandoned send: its chunk went again */
    pm->bp_reply_at = pm_mono(pm);
    pm->head_height = bp->head_height;
    if (bp->head_hash.len == ALYS_HASH_LEN)
        memcpy(pm->head_hash, bp->head_hash.data, ALYS_HASH_LEN);
    if (done == REORDER_REQUEUED) {
        log_debug("batch %llu waits for its parent", (unsigned long long) bp->batch_id);
        return;
    }
    /* No conviction here: SyncActor knows which copies of a range failed
     * and sends RangeVerdicts once one validates (pm_range_verdict); doing
     * it here as well would convict the same lie twice. */
    Alys__Peer__BatchOutcome bo = ALYS__PEER__BATCH_OUTCOME__INIT;
    bo.request_id = ref.request_id;
    bo.peer_id = ref.peer_id;
    bo.start = ref.start;
    bo.committed = bp->committed;
    if (done == REORDER_FAILED) {
        bo.failed = true;
        bo.failed_height = bp->failed_height;
        bo.reason = bp->reason;
        bo.detail = bp->detail;
        bool own = pm_judge_refusal(bp->reason, bp->failed_height, ref.start).suspect;
        log_warn("block %llu from %s refused (%s: %s)%s", (unsigned long long) bp->failed_height,
                 ref.peer_id, bp->reason, bp->detail, own ? ": peer suspected" : "");
        if (own)
            peer_table_suspect(pm->table, ref.peer_id, bp->failed_height, bp->failed_height + 1,
                               bp->reason, pm_now(pm));
    }
    send_outcome(pm, &bo);
    report_drops(pm, drops, nd);
}

static void on_refused(pm_t *pm, const alys_env_t *env)
{
    uint32_t code = env->error->code;
    const char *text = env->error->message ? env->error->message : "";
    if (pm_flow_bp_busy(code)) {
        /* busy, unavailable, restarting storage: keep it, try again later */
        if (reorder_on_busy(pm->reorder, env->corr_id, (uint64_t) pm_mono(pm)))
            log_debug("block processor busy (%u: %s): backing off", code, text);
        return;
    }
    reorder_ref_t ref, drops[DROPS_MAX];
    size_t nd = 0;
    if (reorder_on_refused(pm->reorder, env->corr_id, (uint64_t) pm_mono(pm), &ref, drops,
                           DROPS_MAX, &nd) == REORDER_UNKNOWN)
        return;
    log_error("block processor refused [%llu,...) from %s: %s", (unsigned long long) ref.start,
              ref.peer_id, text);
    Alys__Peer__BatchOutcome bo = ALYS__PEER__BATCH_OUTCOME__INIT;
    bo.request_id = ref.request_id;
    bo.peer_id = ref.peer_id;
    bo.start = ref.start;
    bo.failed = true;
    bo.failed_height = ref.start;
    bo.reason = "dropped";
    bo.detail = (char *) text;
    send_outcome(pm, &bo);
    report_drops(pm, drops, nd);
}

void pm_bp_on_env(pm_t *pm, const alys_env_t *env)
{
    if (env->reply && env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR &&
        env->processor->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED)
        on_processed(pm, env->processor->batch_processed);
    else if (env->reply && env->body_case == ALYS__BUS__ENVELOPE__BODY_ERROR)
        on_refused(pm, env);
    pm_deliver_pump(pm);
}

/* The processor restarted: what it held is gone. Resend in order. */
void pm_bp_on_link(pm_t *pm, bool up)
{
    if (!up) {
        pm->bp_was_down = true;
    } else if (pm->bp_was_down) {
        pm->bp_was_down = false;
        size_t n = reorder_on_lost(pm->reorder);
        if (n)
            log_warn("block processor reconnected: resending %zu batches", n);
        pm_deliver_pump(pm);
    }
}
