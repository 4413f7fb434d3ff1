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
#include "pm_mon.h"
#include "util.h"

#define DROPS_MAX 32

/* ---- to SyncActor ------------------------------------------------------------ */

int pm_send_sync_peer(pm_t *pm, Alys__Peer__PeerMsg *msg)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PEER;
    env.peer = msg;
    return alys_send(pm->sync, &env);
}

int pm_send_sync_msg(pm_t *pm, Alys__Sync__SyncMsg *msg)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_SYNC;
    env.sync = msg;
    return alys_send(pm->sync, &env);
}

void pm_peer_discovered(pm_t *pm, const char *peer_id, uint64_t height, const uint8_t *head_hash)
{
    Alys__Sync__PeerDiscovered pd = ALYS__SYNC__PEER_DISCOVERED__INIT;
    pd.peer_id = (char *) peer_id;
    pd.reported_height = height;
    if (head_hash)
        pd.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) head_hash};
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCOVERED;
    msg.peer_discovered = &pd;
    if (pm_send_sync_msg(pm, &msg) != 0)
        log_debug("cannot tell sync about peer %s", peer_id);
    pm->peerset_dirty = true;
}

void pm_peer_disconnected(pm_t *pm, const char *peer_id, const char *reason)
{
    Alys__Sync__PeerDisconnected pd = ALYS__SYNC__PEER_DISCONNECTED__INIT;
    pd.peer_id = (char *) peer_id;
    pd.reason = (char *) reason;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCONNECTED;
    msg.peer_disconnected = &pd;
    if (pm_send_sync_msg(pm, &msg) != 0)
        log_debug("cannot tell sync peer %s left", peer_id);
    pm->peerset_dirty = true;
}

/* ---- PeerSet ----------------------------------------------------------------- */

#define PN_REFUSED_CAP 64     /* unlisted endpoints taken from each side */
#define PS_CAP (PEER_TABLE_MAX_PEERS + PEER_MAX_BANS + PN_REFUSED_CAP * 2)

/* Everything a PeerSet points to; set is first so a PeerSet* is a holder*. */
typedef struct {
    Alys__Peer__PeerSet     set;
    Alys__Peer__PeerEntry  *entries;    /* PS_CAP */
    Alys__Peer__PeerEntry **ptrs;
    uint32_t               *timeouts;
    peer_view_t            *views;      /* PEER_TABLE_MAX_PEERS: strings live here */
    peer_ban_t             *bans;       /* PEER_MAX_BANS */
    pn_refused_t           *refused;    /* PN_REFUSED_CAP * 2 */
    peer_ref_t             *order;      /* PEER_TABLE_MAX_PEERS */
} holder_t;

void pm_peerset_free(Alys__Peer__PeerSet **set_p)
{
    if (!set_p || !*set_p)
        return;
    holder_t *h = (holder_t *) *set_p;
    free(h->entries);
    free(h->ptrs);
    free(h->timeouts);
    free(h->views);
    free(h->bans);
    free(h->refused);
    free(h->order);
    free(h);
    *set_p = NULL;
}

static Alys__Peer__PeerEntry *entry_add(holder_t *h)
{
    if (h->set.n_peers >= PS_CAP)
        return NULL;
    Alys__Peer__PeerEntry *e = &h->entries[h->set.n_peers];
    *e = (Alys__Peer__PeerEntry) ALYS__PEER__PEER_ENTRY__INIT;
    h->ptrs[h->set.n_peers++] = e;
    return e;
}

static void entry_from_view(Alys__Peer__PeerEntry *e, peer_view_t *v)
{
    e->peer_id = v->info.peer_id;
    e->endpoint = v->info.endpoint;
    /* Connected but below the score cutoff: not for sync, and said so, as
     * SyncActor reads "connected" as usable. */
    e->state = v->info.state == PEER_STATE_CONNECTED && !v->eligible
                   ? "low_score" : (char *) peer_state_name(v->info.state);
    e->reported_height = v->info.reported_height;
    e->score = v->score;
    e->latency_ms = v->metrics.average_latency_ms;
    e->bandwidth = v->metrics.bandwidth_bps;
    e->error_rate = v->metrics.error_rate;
    e->reliability = v->metrics.reliability_score;
    e->blocks_served = v->metrics.blocks_served;
    e->ban_until = v->info.state == PEER_STATE_BANNED ? v->info.ban_until : 0;
    e->ban_reason = v->ban_reason;
    e->min_rtt_ms = v->metrics.min_rtt_ms;
}

static bool in_order(const holder_t *h, size_t n_order, const char *id)
{
    for (size_t i = 0; i < n_order; i++)
        if (strcmp(h->order[i].id, id) == 0)
            return true;
    return false;
}

/* Selected peers first, best first; then (all) every other entry. */
static void add_table(pm_t *pm, holder_t *h, bool all, uint64_t now)
{
    peer_select_req_t req = {.count = PEER_TABLE_MAX_PEERS};
    size_t n_order = peer_table_select(pm->table, &req, now, h->order, PEER_TABLE_MAX_PEERS);
    size_t n_views = 0;
    for (size_t i = 0; i < n_order; i++) {
        peer_view_t *v = &h->views[n_views];
        if (peer_table_get(pm->table, h->order[i].id, now, v) != PEER_OK)
            continue;
        n_views++;
        Alys__Peer__PeerEntry *e = entry_add(h);
        entry_from_view(e, v);
        h->timeouts[h->set.n_timeout_ms++] =
            peer_table_request_timeout(pm->table, v->info.peer_id, h->set.batch_size);
    }
    if (!all)
        return;
    peer_view_t *rest = &h->views[n_views];
    size_t n = peer_table_list(pm->table, now, rest, PEER_TABLE_MAX_PEERS - n_views);
    for (size_t i = 0; i < n; i++) {
        if (in_order(h, n_order, rest[i].info.peer_id))
            continue;
        Alys__Peer__PeerEntry *e = entry_add(h);
        if (!e)
            return;
        entry_from_view(e, &rest[i]);
        h->timeouts[h->set.n_timeout_ms++] = rest[i].timeout_ms;
    }
}

/* Bans of peers not in the table (after a restart, or never connected). */
static void add_bans(pm_t *pm, holder_t *h, uint64_t now)
{
    size_t n = peer_table_export_bans(pm->table, now, h->bans, PEER_MAX_BANS);
    for (size_t i = 0; i < n; i++) {
        if (h->bans[i].peer_id[0] && peer_table_contains(pm->table, h->bans[i].peer_id))
            continue;
        Alys__Peer__PeerEntry *e = entry_add(h);
        if (!e)
            return;
        e->peer_id = h->bans[i].peer_id;
        e->endpoint = h->bans[i].endpoint;
        e->state = "banned";
        e->ban_until = h->bans[i].ban_until;
        e->ban_reason = h->bans[i].reason;
        h->timeouts[h->set.n_timeout_ms++] = 0;
    }
}

static void add_refused(pm_t *pm, holder_t *h)
{
    size_t n = pn_refused(pm, h->refused, PN_REFUSED_CAP);
    n += ps_refused(pm, h->refused + n, PN_REFUSED_CAP);
    for (size_t i = 0; i < n; i++) {
        Alys__Peer__PeerEntry *e = entry_add(h);
        if (!e)
            return;
        e->peer_id = h->refused[i].peer_id;
        e->endpoint = h->refused[i].endpoint;
        e->state = (char *) h->refused[i].state;
        e->ban_reason = h->refused[i].reason;
        h->timeouts[h->set.n_timeout_ms++] = 0;
    }
}

Alys__Peer__PeerSet *pm_peerset_new(pm_t *pm, bool all)
{
    holder_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->entries = calloc(PS_CAP, sizeof *h->entries);
    h->ptrs = calloc(PS_CAP, sizeof *h->ptrs);
    h->timeouts = calloc(PS_CAP, sizeof *h->timeouts);
    h->views = calloc(PEER_TABLE_MAX_PEERS, sizeof *h->views);
    h->order = calloc(PEER_TABLE_MAX_PEERS, sizeof *h->order);
    h->bans = all ? calloc(PEER_MAX_BANS, sizeof *h->bans) : NULL;
    h->refused = all ? calloc(PN_REFUSED_CAP * 2, sizeof *h->refused) : NULL;
    Alys__Peer__PeerSet *set = &h->set;
    if (!h->entries || !h->ptrs || !h->timeouts || !h->views || !h->order ||
        (all && (!h->bans || !h->refused))) {
        pm_peerset_free(&set);
        return NULL;
    }
    uint64_t now = pm_now();
    h->set = (Alys__Peer__PeerSet) ALYS__PEER__PEER_SET__INIT;
    h->set.peers = h->ptrs;
    h->set.timeout_ms = h->timeouts;
    h->set.batch_size = peer_table_batch_size(pm->table, now);
    h->set.strategy = (char *) peer_strategy_name(peer_table_config(pm->table)->strategy);
    add_table(pm, h, all, now);
    if (all) {
        add_bans(pm, h, now);
        add_refused(pm, h);
    }
    return set;
}

static void peer_metrics(pm_t *pm, const Alys__Peer__PeerSet *set)
{
    alys_metrics_t *m = alys_actor_metrics(pm->actor);
    uint64_t now = pm_now();
    alys_metric_set(m, "alys_sync_peer_count", NULL, "Number of peers available for sync",
                    (double) peer_table_eligible_count(pm->table, now));
    alys_metric_set(m, "alys_peers_connected", NULL, "Remote peers with a live handshake",
                    (double) pn_connected_count(pm));
    alys_metric_set(m, "alys_peers_banned", NULL, "Peers under an active ban",
                    (double) peer_table_ban_count(pm->table, now));
    alys_metric_set(m, "alys_peer_batch_size", NULL, "Adaptive blocks per request",
                    (double) set->batch_size);
    for (size_t i = 0; i < set->n_peers; i++) {
        char labels[96];
        snprintf(labels, sizeof labels, "peer_id=\"%s\"", set->peers[i]->peer_id);
        alys_metric_set(m, "alys_peer_score", labels, "Peer score [-100, 100]", set->peers[i]->score);
    }
}

void pm_push_peerset(pm_t *pm, bool force)
{
    int64_t now = pm_mono();
    if (!force && !pm->peerset_dirty && now - pm->peerset_at < 2000)
        return;
    Alys__Peer__PeerSet *set = pm_peerset_new(pm, false);
    if (!set)
        return;
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_PEER_SET;
    msg.peer_set = set;
    if (pm_send_sync_peer(pm, &msg) != 0)
        log_debug("cannot send the peer set to sync");
    peer_metrics(pm, set);
    pm_peerset_free(&set);
    pm->peerset_dirty = false;
    pm->peerset_at = now;
}

/* ---- scoring ----------------------------------------------------------------- */

void pm_apply_action(pm_t *pm, const char *peer_id, peer_action_t action, const char *reason)
{
    if (action == PEER_ACTION_NONE)
        return;
    char why[PEER_REASON_MAX + 32];
    snprintf(why, sizeof why, "%s: %s", action == PEER_ACTION_BAN ? "banned" : "score too low",
             reason ? reason : "");
    log_warn("peer %s %s", peer_id, why);
    if (action == PEER_ACTION_BAN) {
        pm->bans_dirty = true;
        alys_metric_add(alys_actor_metrics(pm->actor), "alys_peer_bans_total", NULL, "Peers banned", 1);
    }
    pn_disconnect(pm, peer_id, why);
    pm->peerset_dirty = true;
}

void pm_record(pm_t *pm, const char *peer_id, const peer_outcome_t *o)
{
    peer_action_t action = PEER_ACTION_NONE;
    uint64_t now = pm_now();
    int rc = o->kind == PEER_OUTCOME_INVALID || o->kind == PEER_OUTCOME_VIOLATION
                 ? peer_table_blame_now(pm->table, peer_id, o->kind, o->reason, now, &action)
                 : peer_table_record(pm->table, peer_id, o, now, &action);
    if (rc != PEER_OK)
        return;
    if (o->kind != PEER_OUTCOME_OK)
        log_info("peer %s: %s (%s)", peer_id, peer_outcome_name(o->kind), o->reason ? o->reason : "");
    pm_apply_action(pm, peer_id, action, o->reason);
    pm->peerset_dirty = true;
}

/* Range [start, end) served by peer_id is now proven good. */
static void validated(pm_t *pm, const char *peer_id, uint64_t start, uint64_t end)
{
    peer_ref_t blamed[16];
    peer_action_t actions[16];
    size_t n = peer_table_range_validated(pm->table, peer_id, start, end, pm_now(), blamed,
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
                           v->reason ? v->reason : "invalid", pm_now());
}

void pm_penalise(pm_t *pm, const Alys__Peer__Penalise *p)
{
    const char *peer = p->peer_id ? p->peer_id : "";
    if (p->outcome == ALYS__PEER__OUTCOME__OK || p->outcome > ALYS__PEER__OUTCOME__VIOLATION)
        return;                   /* NO_PEER, BUSY: nobody's fault */
    peer_outcome_t o = {.kind = (peer_outcome_kind_t) p->outcome,
                        .reason = p->reason && *p->reason ? p->reason : "penalised by sync"};
    pm_record(pm, peer, &o);
}

/* ---- reports of processing ---------------------------------------------------- */

static void send_outcome(pm_t *pm, Alys__Peer__BatchOutcome *bo)
{
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
        if (d->why == REORDER_DROP_SUPERSEDED)
            continue;                  /* its blocks are still here, under a newer request */
        Alys__Peer__BatchOutcome bo = ALYS__PEER__BATCH_OUTCOME__INIT;
        bo.request_id = d->request_id;
        bo.peer_id = (char *) d->peer_id;
        bo.start = d->start;
        if (d->why == REORDER_DROP_COMMITTED) {
            bo.committed = d->count;
            bo.detail = "already committed";
        } else {
            bo.failed = true;
            bo.failed_height = d->start;
            bo.reason = "dropped";
            bo.detail = (char *) reorder_drop_name(d->why);
        }
        send_outcome(pm, &bo);
    }
}

int pm_deliver(pm_t *pm, uint64_t request_id, const char *peer_id, uint64_t start,
               const ProtobufCBinaryData *blocks, size_t n,
               const uint8_t (*expected)[ALYS_HASH_LEN], uint32_t *delivered)
{
    reorder_batch_t b = {.request_id = request_id, .peer_id = peer_id, .start = start,
                         .blocks = blocks, .n = n, .expected = expected};
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
    return alys_send(pm->bp, &env);
}

static void buffer_metrics(pm_t *pm)
{
    alys_metrics_t *m = alys_actor_metrics(pm->actor);
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
        if (!reorder_next(pm->reorder, (uint64_t) pm_mono(), id, &s))
            break;
        if (send_chunk(pm, &s) != 0) {
            log_warn("cannot hand [%llu,+%u) to the block processor: retrying",
                     (unsigned long long) s.start, s.count);
            reorder_on_busy(pm->reorder, id, (uint64_t) pm_mono());
            break;
        }
        pm->batches_sent++;
        log_debug("handed [%llu,+%u) from %s to the block processor (batch %llu)",
                  (unsigned long long) s.start, s.count, s.peer_id, (unsigned long long) id);
    }
    buffer_metrics(pm);
}

void pm_deliver_tick(pm_t *pm)
{
    size_t n = reorder_expire(pm->reorder, (uint64_t) pm_mono());
    if (n)
        log_warn("%zu batches unanswered by the block processor: resending", n);
    pm_deliver_pump(pm);
}

void pm_deliver_on_head(pm_t *pm, uint64_t head, int64_t asked_at, uint64_t seen_seq)
{
    if (asked_at < pm->bp_reply_at)
        return;
    reorder_ref_t drops[DROPS_MAX];
    size_t nd = 0;
    reorder_set_head(pm->reorder, head, seen_seq, drops, DROPS_MAX, &nd);
    report_drops(pm, drops, nd);
    pm_deliver_pump(pm);
}

/* ---- from BlockProcessor ----------------------------------------------------- */

static bool name_in(const char *name, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

/* About the block's own bytes: nobody else's state or clock is involved. */
static bool content_reason(const char *reason)
{
    static const char *const k[] = {"bad_proposer_signature", "wrong_proposer", "bad_tx_signature",
                                    "tx_root_mismatch", "bad_timestamp", "bad_nonce",
                                    "insufficient_balance", "state_root_mismatch", "malformed",
                                    "oversize", "header_mismatch", NULL};
    return reason && name_in(reason, k);
}

/* Linkage: the block's fault inside a chunk, the previous batch's at its start. */
static bool linkage_reason(const char *reason)
{
    static const char *const k[] = {"parent_mismatch", "height_gap", "non_increasing_slot", NULL};
    return reason && name_in(reason, k);
}

static void on_processed(pm_t *pm, const Alys__Processor__BatchProcessed *bp)
{
    reorder_result_t r = {.batch_id = bp->batch_id, .committed = bp->committed,
                          .head_height = bp->head_height, .failed = bp->failed,
                          .failed_height = bp->failed_height,
                          .content_fault = content_reason(bp->reason)};
    reorder_ref_t ref, drops[DROPS_MAX];
    size_t nd = 0;
    reorder_done_t done = reorder_on_processed(pm->reorder, &r, (uint64_t) pm_mono(), &ref, drops,
                                               DROPS_MAX, &nd);
    if (done == REORDER_UNKNOWN)
        return;                            /* an abandoned send: its chunk went again */
    pm->bp_reply_at = pm_mono();
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
        bool own = content_reason(bp->reason) ||
                   (linkage_reason(bp->reason) && bp->failed_height > ref.start);
        log_warn("block %llu from %s refused (%s: %s)%s", (unsigned long long) bp->failed_height,
                 ref.peer_id, bp->reason, bp->detail, own ? ": peer suspected" : "");
        if (own)
            peer_table_suspect(pm->table, ref.peer_id, bp->failed_height, bp->failed_height + 1,
                               bp->reason, pm_now());
    }
    send_outcome(pm, &bo);
    report_drops(pm, drops, nd);
}

static void on_refused(pm_t *pm, const alys_env_t *env)
{
    uint32_t code = env->error->code;
    const char *text = env->error->message ? env->error->message : "";
    if (code != ALYS_ERR_BAD_REQUEST) {
        /* busy, unavailable, restarting storage: keep it, try again later */
        if (reorder_on_busy(pm->reorder, env->corr_id, (uint64_t) pm_mono()))
            log_debug("block processor busy (%u: %s): backing off", code, text);
        return;
    }
    reorder_ref_t ref, drops[DROPS_MAX];
    size_t nd = 0;
    if (reorder_on_refused(pm->reorder, env->corr_id, (uint64_t) pm_mono(), &ref, drops, DROPS_MAX,
                           &nd) == REORDER_UNKNOWN)
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

int pm_bp_on_reply(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    pm_t *pm = arg;
    alys_env_t *env = NULL;
    int rc = alys_recv(sock, &env);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (env->reply && env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR &&
        env->processor->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED)
        on_processed(pm, env->processor->batch_processed);
    else if (env->reply && env->body_case == ALYS__BUS__ENVELOPE__BODY_ERROR)
        on_refused(pm, env);
    alys_env_free(&env);
    pm_deliver_pump(pm);
    return 0;
}

zsock_t *pm_bp_monitor_new(zsock_t *bp)
{
    return pm_mon_new(bp);
}

/* The processor restarted: what it held is gone. Resend in order. */
int pm_bp_on_monitor(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    pm_t *pm = arg;
    int ev = pm_mon_event(sock);
    if (ev == ZMQ_EVENT_DISCONNECTED) {
        pm->bp_was_down = true;
    } else if (ev == ZMQ_EVENT_CONNECTED && pm->bp_was_down) {
        pm->bp_was_down = false;
        size_t n = reorder_on_lost(pm->reorder);
        if (n)
            log_warn("block processor reconnected: resending %zu batches", n);
        pm_deliver_pump(pm);
    }
    return 0;
}
