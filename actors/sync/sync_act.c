/*  sync_act.c: the machine's actions -> messages, and the send and reply
 *  helpers every part of the core uses (see sync_core_internal.h).
 *
 *  Drained after EVERY input call (sa_drain): FETCH_HEADERS/FETCH_BLOCKS ->
 *  FetchHeaders/FetchBlocks to PeerManager; CANCEL -> dropped here (no
 *  Cancel message: the machine ignores late results); PENALISE_PEER ->
 *  Penalise; RANGE_VERDICT -> RangeVerdict; CREATE_CHECKPOINT / ROLLBACK ->
 *  Storage; STATE_CHANGED, CAN_PRODUCE_CHANGED -> log, event, metric;
 *  RECOVERED -> metric; LOG -> log.
 *
 *  The gauges refreshed every second (sa_publish_metrics) live here
 *  too, so that alys_sync_state has one encoding (state_gauge) whoever sets it.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sync_core_internal.h"
#include "util.h"

/* ---------------------------------------------------------------- sending */

int sa_send_env(sa_t *sa, sync_dest_t to, alys_env_t *env)
{
    return sa->port.send(sa->port.ctx, to, env);
}

int sa_send_peer(sa_t *sa, Alys__Peer__PeerMsg *pm, uint64_t corr)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = corr;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PEER;
    env.peer = pm;
    return sa_send_env(sa, SYNC_TO_PEER_MANAGER, &env);
}

int sa_send_process_batch(sa_t *sa, Alys__Processor__ProcessBatch *pb, uint64_t corr)
{
    Alys__Processor__ProcessorMsg pm = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    pm.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PROCESS_BATCH;
    pm.process_batch = pb;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = corr;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &pm;
    return sa_send_env(sa, SYNC_TO_PROCESSOR, &env);
}

int sa_send_storage(sa_t *sa, Alys__Storage__StorageMsg *sm, uint64_t corr)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = corr;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = sm;
    return sa_send_env(sa, SYNC_TO_STORAGE, &env);
}

/* Reply with a SyncMsg body to a client (identity + its corr_id). */
void sa_reply_sync(sa_t *sa, zframe_t *client, uint64_t corr, Alys__Sync__SyncMsg *msg)
{
    if (!client || corr == 0)
        return;
    alys_env_t rep = ALYS__BUS__ENVELOPE__INIT;
    rep.corr_id = corr;
    rep.reply = true;
    rep.body_case = ALYS__BUS__ENVELOPE__BODY_SYNC;
    rep.sync = msg;
    sa->port.reply(sa->port.ctx, client, &rep);
}

void sa_reply_ack(sa_t *sa, zframe_t *client, uint64_t corr, bool ok, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    Alys__Sync__Ack ack = ALYS__SYNC__ACK__INIT;
    ack.ok = ok;
    ack.message = text;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_ACK;
    msg.ack = &ack;
    sa_reply_sync(sa, client, corr, &msg);
}

static void error_series(sa_t *sa, const char *type, double delta)
{
    char labels[96];
    snprintf(labels, sizeof labels, "error_type=\"%s\"", type);
    alys_metric_add(sa->metrics, "alys_sync_errors_total", labels, "Sync errors by type", delta);
}

void sa_error_metric(sa_t *sa, const char *type)
{
    error_series(sa, type, 1);
}

/* Every error_type sa_error_metric() is called with, besides the machine's
 * outcome and penalty names (declared from their own name functions below). */
static const char *const s_error_types[] = {"invalid_header",       "sync_failed",
                                            "block_invalid",        "block_processing",
                                            "block_pushed_invalid", "request_timeout"};

/* Every counter the core increments, declared at 0 for every label value it
 * can take, so that rate(), increase() and the alerts see each series from
 * the start rather than from its first event (issue 10). */
void sa_declare_metrics(sa_t *sa)
{
    alys_metrics_t *m = sa->metrics;
    for (size_t i = 0; i < sizeof s_error_types / sizeof s_error_types[0]; i++)
        error_series(sa, s_error_types[i], 0);
    for (int o = SYNC_OUTCOME_OK + 1; o <= SYNC_OUTCOME_BUSY; o++)
        error_series(sa, sync_outcome_name((sync_outcome_t) o), 0);
    for (int p = SYNC_PENALTY_STALL; p <= SYNC_PENALTY_INVALID_CHAIN; p++)
        error_series(sa, sync_penalty_name((sync_penalty_t) p), 0);
    for (int w = 0; w < SYNC_WATCH_COUNT; w++)
        sa_restart_series(sa, (sync_watch_t) w, 0);
    alys_metric_declare(m, "alys_sync_recoveries_total", NULL, "Number of successful sync recoveries");
    alys_metric_declare(m, "alys_sync_blocks_requested_total", NULL,
                        "Blocks asked of PeerManager (re-requests included)");
    alys_metric_declare(m, "alys_sync_range_requests_total", NULL,
                        "Block ranges asked of PeerManager");
    alys_metric_declare(m, "alys_sync_blocks_downloaded_total", NULL,
                        "Blocks PeerManager delivered to BlockProcessor for us");
    alys_metric_declare(m, "alys_sync_bytes_downloaded_total", NULL,
                        "Bytes of the ranges PeerManager fetched for us");
    alys_metric_declare(m, "alys_checkpoints_created_total", NULL, "Total checkpoints created");
    alys_metric_declare(m, "alys_chain_reorgs_refused_total", NULL,
                        "Forks not adopted: deeper than max_reorg_depth");
    sa_progress_counters(sa, 0, 0, 0);
}

/* The machine keeps these counts since its start: exported as counters
 * (_total), not gauges, because they count events. */
void sa_progress_counters(sa_t *sa, uint64_t retries, uint64_t reassignments, uint64_t dropped)
{
    alys_metrics_t *m = sa->metrics;
    alys_metric_counter_set(m, "alys_sync_retries_total", NULL,
                            "Range attempts that failed since the start", (double) retries);
    alys_metric_counter_set(m, "alys_sync_reassignments_total", NULL,
                            "Stalled ranges moved to another peer", (double) reassignments);
    alys_metric_counter_set(m, "alys_sync_dropped_actions_total", NULL,
                            "Machine actions lost to a full queue (a bug if not 0)",
                            (double) dropped);
}

/* ---------------------------------------------------------------- actions */

static uint64_t fetch_corr(sa_t *sa, uint64_t req_id, bool headers)
{
    uint64_t corr = sa->port.next_corr(sa->port.ctx);
    sync_pending_fetch_sent(sa->pend, corr, req_id, headers);
    return corr;
}

static void act_fetch_headers(sa_t *sa, const sync_action_t *a)
{
    sync_hdr_reqs_add(sa->hreqs, a, sa->now);
    Alys__Peer__FetchHeaders fh = ALYS__PEER__FETCH_HEADERS__INIT;
    fh.request_id = a->fetch_headers.req_id;
    fh.peer_id = (char *) a->fetch_headers.peer;
    fh.start = a->fetch_headers.start;
    fh.count = a->fetch_headers.count;
    fh.timeout_ms = a->fetch_headers.timeout_ms;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_HEADERS;
    pm.fetch_headers = &fh;
    log_debug("fetch headers [%" PRIu64 ",+%u) from %s (request %" PRIu64 ")", fh.start, fh.count,
              fh.peer_id, fh.request_id);
    sa_send_peer(sa, &pm, fetch_corr(sa, fh.request_id, true));
}

int sa_expected_reserve(sa_t *sa, uint32_t n)
{
    if (n <= sa->expected_cap)
        return 0;
    ProtobufCBinaryData *e = realloc(sa->expected, n * sizeof *e);
    if (!e) {
        log_error("out of memory for %u expected hashes", n);
        return -1;
    }
    sa->expected = e;
    sa->expected_cap = n;
    return 0;
}

static void act_fetch_blocks(sa_t *sa, const sync_action_t *a)
{
    uint32_t n = a->fetch_blocks.expected ? a->fetch_blocks.expected_count : 0;
    if (sa_expected_reserve(sa, n) != 0)
        return; /* the machine's lost-request timer re-issues it */
    for (uint32_t i = 0; i < n; i++) {
        sa->expected[i].len = ALYS_HASH_LEN;
        sa->expected[i].data = (uint8_t *) a->fetch_blocks.expected[i];
    }
    Alys__Peer__FetchBlocks fb = ALYS__PEER__FETCH_BLOCKS__INIT;
    fb.request_id = a->fetch_blocks.req_id;
    fb.peer_id = (char *) a->fetch_blocks.peer;
    fb.start = a->fetch_blocks.start;
    fb.count = a->fetch_blocks.count;
    fb.n_expected_hashes = n;
    fb.expected_hashes = sa->expected;
    fb.timeout_ms = a->fetch_blocks.timeout_ms;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_BLOCKS;
    pm.fetch_blocks = &fb;
    log_debug("fetch blocks [%" PRIu64 ",+%u) from %s (request %" PRIu64 ")", fb.start, fb.count,
              fb.peer_id, fb.request_id);
    alys_metric_add(sa->metrics, "alys_sync_blocks_requested_total", NULL,
                    "Blocks asked of PeerManager (re-requests included)", fb.count);
    alys_metric_add(sa->metrics, "alys_sync_range_requests_total", NULL,
                    "Block ranges asked of PeerManager", 1);
    sa_send_peer(sa, &pm, fetch_corr(sa, fb.request_id, false));
}

static void act_cancel(sa_t *sa, const sync_action_t *a)
{
    /* No Cancel message exists: PeerManager finishes or times the request
     * out and the machine ignores the late result. Forget our context. */
    sync_hdr_reqs_take(sa->hreqs, a->cancel.req_id, NULL);
}

int sa_penalise(sa_t *sa, const char *peer, uint32_t outcome, const char *reason)
{
    Alys__Peer__Penalise pen = ALYS__PEER__PENALISE__INIT;
    pen.peer_id = (char *) peer;
    pen.outcome = outcome;
    pen.reason = (char *) reason;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_PENALISE;
    pm.penalise = &pen;
    return sa_send_peer(sa, &pm, 0);
}

static void act_penalise(sa_t *sa, const sync_action_t *a)
{
    const char *reason = sync_penalty_name(a->penalise.kind);
    log_info("penalising peer %s: %s", a->penalise.peer, reason);
    sa_error_metric(sa, reason);
    sa_penalise(sa, a->penalise.peer, sync_bus_penalty_outcome(a->penalise.kind), reason);
}

static void act_verdict(sa_t *sa, const sync_action_t *a)
{
    Alys__Peer__RangeVerdict rv = ALYS__PEER__RANGE_VERDICT__INIT;
    rv.start = a->range_verdict.start;
    rv.count = a->range_verdict.count;
    rv.peer_id = (char *) a->range_verdict.peer;
    rv.valid = a->range_verdict.valid;
    rv.reason = (char *) a->range_verdict.reason;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_RANGE_VERDICT;
    pm.range_verdict = &rv;
    log_info("range [%" PRIu64 ",+%u) verdict for %s: %s (%s)", rv.start, rv.count, rv.peer_id,
             rv.valid ? "valid" : "served bad data", rv.reason);
    sa_send_peer(sa, &pm, 0);
}

static double state_gauge(sync_state_kind_t k)
{
    return (double) k;
}

static void act_state_changed(sa_t *sa, const sync_action_t *a)
{
    const char *from = sync_state_name(a->state_changed.from);
    const char *to = sync_state_name(a->state_changed.to);
    const char *paused = a->state_changed.paused ? " (paused)" : "";
    log_info("state %s -> %s%s: %s", from, to, paused, a->state_changed.reason);
    char text[SYNC_REASON_MAX + 64];
    snprintf(text, sizeof text, "%s -> %s%s: %s", from, to, paused, a->state_changed.reason);
    sa->port.event(sa->port.ctx, "state_changed", text);
    alys_metric_set(sa->metrics, "alys_sync_state", NULL,
                    "Current sync state (0=discovering, 1=headers, 2=blocks, 3=catchup, 4=synced, 5=failed)",
                    state_gauge(a->state_changed.to));
    if (a->state_changed.to == SYNC_FAILED && a->state_changed.from != SYNC_FAILED)
        sa_error_metric(sa, "sync_failed");
}

static void act_can_produce(sa_t *sa, const sync_action_t *a)
{
    bool v = a->can_produce.value;
    sync_progress_t p;
    sync_machine_get_progress(sa->m, sa->now, &p);
    if (v)
        sa->production_allowed_at = sa->now_unix;
    log_info("block production %s at height %" PRIu64 " (target %" PRIu64 ")",
             v ? "allowed" : "not allowed", p.current_height, p.target_height);
    sa->port.event(sa->port.ctx, "can_produce_blocks", v ? "true" : "false");
    alys_metric_set(sa->metrics, "alys_sync_can_produce_blocks", NULL,
                    "1 when block production is allowed (CanProduceBlocks)", v ? 1 : 0);
}

static void act_create_checkpoint(sa_t *sa, const sync_action_t *a)
{
    sync_pend_t *p = sa_pend_add(sa, SYNC_PEND_CREATE_CP, STORAGE_TIMEOUT_MS);
    if (!p) {
        sa_reply_ack(sa, sa->client, sa->client_corr, false, "too many requests in flight");
        return;
    }
    sa_pend_take_client(sa, p);
    p->height = a->create_checkpoint.height;
    static sync_progress_buf_t buf; /* large; one at a time */
    sync_bus_progress(&buf, sa->m, sa->now, sa->now_unix);
    Alys__Storage__CreateCheckpoint cc = ALYS__STORAGE__CREATE_CHECKPOINT__INIT;
    cc.progress = &buf.msg;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_CREATE_CHECKPOINT;
    sm.create_checkpoint = &cc;
    log_info("creating a checkpoint at height %" PRIu64, p->height);
    sa_send_storage(sa, &sm, p->corr_id);
}

static void act_rollback(sa_t *sa, const sync_action_t *a)
{
    /* A head asked for before the rollback would move the machine back up. */
    sync_pending_drop_kind(sa->pend, SYNC_PEND_GET_HEAD, sa_pend_done);
    sync_pend_t *p = sa_pend_add(sa, SYNC_PEND_ROLLBACK, STORAGE_TIMEOUT_MS * 5);
    if (!p) {
        sa_reply_ack(sa, sa->client, sa->client_corr, false, "too many requests in flight");
        return;
    }
    sa_pend_take_client(sa, p);
    p->height = a->rollback.height;
    sync_rollback_sent(sa->rollback);
    Alys__Storage__Rollback rb = ALYS__STORAGE__ROLLBACK__INIT;
    rb.height = a->rollback.height;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_ROLLBACK;
    sm.rollback = &rb;
    log_warn("rolling storage back to height %" PRIu64, rb.height);
    sa_send_storage(sa, &sm, p->corr_id);
}

static void act_log(const sync_action_t *a)
{
    static const alys_log_level_t map[] = {ALYS_LOG_DEBUG, ALYS_LOG_INFO, ALYS_LOG_WARN,
                                           ALYS_LOG_ERROR};
    unsigned lvl = (unsigned) a->log.level < 4 ? (unsigned) a->log.level : 1;
    alys_log(map[lvl], "%s", a->log.text);
}

/* Translate every queued action. Called after EVERY machine input: the
 * FETCH_BLOCKS expected pointer is only valid until the next input. */
void sa_drain(sa_t *sa)
{
    sync_action_t a;
    while (sync_machine_next_action(sa->m, &a)) {
        switch (a.kind) {
        case SYNC_ACTION_FETCH_HEADERS: act_fetch_headers(sa, &a); break;
        case SYNC_ACTION_FETCH_BLOCKS: act_fetch_blocks(sa, &a); break;
        case SYNC_ACTION_CANCEL: act_cancel(sa, &a); break;
        case SYNC_ACTION_PENALISE_PEER: act_penalise(sa, &a); break;
        case SYNC_ACTION_STATE_CHANGED: act_state_changed(sa, &a); break;
        case SYNC_ACTION_CAN_PRODUCE_CHANGED: act_can_produce(sa, &a); break;
        case SYNC_ACTION_CREATE_CHECKPOINT: act_create_checkpoint(sa, &a); break;
        case SYNC_ACTION_ROLLBACK: act_rollback(sa, &a); break;
        case SYNC_ACTION_RECOVERED:
            log_info("recovery %u from height %" PRIu64, a.recovered.attempt, a.recovered.from_height);
            alys_metric_add(sa->metrics, "alys_sync_recoveries_total", NULL,
                            "Number of successful sync recoveries", 1);
            break;
        case SYNC_ACTION_LOG: act_log(&a); break;
        case SYNC_ACTION_RANGE_VERDICT: act_verdict(sa, &a); break;
        case SYNC_ACTION_FORK_FOUND:
            sa_fork_found(sa, a.fork_found.peer, a.fork_found.peer_height);
            break;
        }
    }
}

/* ---------------------------------------------------------------- metrics */

void sa_publish_metrics(sa_t *sa, const sync_progress_t *p)
{
    alys_metrics_t *m = sa->metrics;
    alys_metric_set(m, "alys_sync_state", NULL,
                    "Current sync state (0=discovering, 1=headers, 2=blocks, 3=catchup, 4=synced, 5=failed)",
                    state_gauge(p->state));
    alys_metric_set(m, "alys_sync_current_height", NULL, "Current synced height",
                    (double) p->current_height);
    alys_metric_set(m, "alys_sync_target_height", NULL, "Target sync height from peers",
                    (double) p->target_height);
    alys_metric_set(m, "alys_sync_blocks_per_second", NULL,
                    "Current sync speed in blocks per second", p->blocks_per_second);
    alys_metric_set(m, "alys_sync_blocks_behind", NULL, "Number of blocks behind the network",
                    (double) p->blocks_behind);
    alys_metric_set(m, "alys_checkpoint_height", NULL, "Latest checkpoint height",
                    (double) p->last_checkpoint);
    alys_metric_set(m, "alys_sync_can_produce_blocks", NULL,
                    "1 when block production is allowed (CanProduceBlocks)",
                    p->can_produce_blocks ? 1 : 0);
    alys_metric_set(m, "alys_sync_paused", NULL, "1 while sync is paused", p->paused ? 1 : 0);
    alys_metric_set(m, "alys_sync_header_height", NULL, "Highest verified header",
                    (double) p->header_height);
    alys_metric_set(m, "alys_sync_ranges_in_flight", NULL, "Block ranges being downloaded",
                    (double) p->ranges_in_flight);
    sa_progress_counters(sa, p->retries, p->reassignments, sync_machine_dropped_actions(sa->m));
    alys_metric_set(m, "alys_sync_stall_timeout_seconds", NULL,
                    "Current adaptive stall timeout of a full range", p->stall_timeout_ms / 1000.0);
    alys_metric_set(m, "alys_sync_active_peers", NULL, "Peers usable for sync",
                    (double) p->active_peers);
}
