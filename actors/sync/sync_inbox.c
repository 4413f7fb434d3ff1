/*  sync_inbox.c: messages and events in -> machine inputs (see
 *  sync_core_internal.h); replies are matched against our pending requests
 *  (sync_pending.h). Every input call is followed by sa_drain, so what the machine
 *  decides goes out before the next message is read.
 *
 *  StartSync/PauseSync/ResumeSync -> start/pause/resume; PeerDiscovered and
 *  every connected PeerSet entry -> on_peer_status (+score, rank);
 *  PeerDisconnected and entries that left the set -> on_peer_disconnected;
 *  HeadersResult -> verified (sync_headers.h), then on_headers (OK with hashes, or
 *  INVALID); FetchResult -> on_range_outcome; BatchOutcome, storage
 *  head_advanced and Head -> on_committed, then on_block_failed if it failed;
 *  CreateCheckpoint -> create_checkpoint; RecoverFromCheckpoint ->
 *  recover_from_checkpoint (with the checkpoint's hash from Storage).
 *
 *  Restarts: a peer actor's restart is seen on the lifecycle events (a
 *  "ready" with a new pid) and on our own socket to it (disconnected, then
 *  connected again: main.c's socket monitors); sync_restart.h decides which of
 *  those are new process instances (each acted on once, at once) and what
 *  each means (sync_restart_effects). Peers: sync_known.h; the rollback
 *  quiet window: sync_rollback.h; header verification: sync_headers.h.
 *
 *  Clock: sa->now / sa->now_unix, given by main.c for this callback.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sync_core_internal.h"
#include "util.h"

#define PROCESS_TIMEOUT_MS 30000
#define MAX_BATCH_BLOCKS   1024 /* ProcessBlockBatch bound */

/* ---------------------------------------------------------------- pending */

sync_pend_t *sa_pend_add(sa_t *sa, sync_pend_kind_t kind, uint32_t timeout_ms)
{
    return sync_pending_add(sa->pend, kind, sa->port.next_corr(sa->port.ctx), sa->now, timeout_ms);
}

void sa_pend_take_client(sa_t *sa, sync_pend_t *p)
{
    if (sa->client) {
        p->client = zframe_dup(sa->client);
        p->client_corr = sa->client_corr;
    }
}

void sa_pend_done(sync_pend_t *p)
{
    zframe_t *client = p->client;
    zframe_destroy(&client);
    p->client = NULL;
}

/* ---------------------------------------------------------------- requests out */

static uint64_t machine_head(sa_t *sa);

void sa_request_head(sa_t *sa)
{
    if (sync_pending_has_kind(sa->pend, SYNC_PEND_GET_HEAD))
        return;
    sync_pend_t *p = sa_pend_add(sa, SYNC_PEND_GET_HEAD, STORAGE_TIMEOUT_MS);
    if (!p)
        return;
    p->height = sa->initialised ? machine_head(sa) : 0; /* what we knew when asking */
    Alys__Storage__GetHead gh = ALYS__STORAGE__GET_HEAD__INIT;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
    sm.get_head = &gh;
    sa_send_storage(sa, &sm, p->corr_id);
    sa->last_head_poll = sa->now;
}

void sa_request_peers(sa_t *sa)
{
    if (sync_pending_has_kind(sa->pend, SYNC_PEND_GET_PEERS))
        return;
    sync_pend_t *p = sa_pend_add(sa, SYNC_PEND_GET_PEERS, PEERS_POLL_MS);
    if (!p)
        return;
    Alys__Peer__GetPeers gp = ALYS__PEER__GET_PEERS__INIT;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_GET_PEERS;
    pm.get_peers = &gp;
    sa_send_peer(sa, &pm, p->corr_id);
}

/* At our start: what PeerManager still holds of an earlier SyncActor's
 * fetches. The machine dispatches no body until the answer (or
 * request_timeout_ms), so a restart re-downloads nothing. */
static void request_in_flight(sa_t *sa)
{
    uint32_t timeout = sa->cfg->request_timeout_ms ? sa->cfg->request_timeout_ms : 5000;
    sync_pend_t *p = sa_pend_add(sa, SYNC_PEND_GET_IN_FLIGHT, timeout);
    if (!p)
        return;
    Alys__Peer__GetInFlight gi = ALYS__PEER__GET_IN_FLIGHT__INIT;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_GET_IN_FLIGHT;
    pm.get_in_flight = &gi;
    if (sa_send_peer(sa, &pm, p->corr_id) != 0)
        return; /* the machine's wait ends by itself */
    sync_machine_await_in_flight(sa->m, sa->now, timeout);
}

/* PeerManager's answer: its ranges become the machine's (sync_machine_adopt). */
static void on_in_flight(sa_t *sa, const Alys__Peer__InFlight *inf)
{
    size_t n = inf && inf->n_ranges < SYNC_ADOPT_MAX ? inf->n_ranges : SYNC_ADOPT_MAX;
    if (!inf)
        n = 0;
    sync_adopt_range_t *r = n ? calloc(n, sizeof *r) : NULL;
    if (n && !r)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        const Alys__Peer__InFlightRange *x = inf->ranges[i];
        r[i].req_id = x->request_id;
        snprintf(r[i].peer, sizeof r[i].peer, "%s", x->peer_id ? x->peer_id : "");
        r[i].start = x->start;
        r[i].count = x->count;
        r[i].delivered = x->delivered;
    }
    log_info("PeerManager holds %zu ranges of ours", inf ? inf->n_ranges : 0);
    sync_machine_adopt(sa->m, sa->now, r, n);
    free(r);
    sa_drain(sa);
}

static void request_list_checkpoints(sa_t *sa, uint64_t height)
{
    sync_pend_t *p = sa_pend_add(sa, SYNC_PEND_LIST_CP, STORAGE_TIMEOUT_MS);
    if (!p) {
        sa_reply_ack(sa, sa->client, sa->client_corr, false, "too many requests in flight");
        return;
    }
    sa_pend_take_client(sa, p);
    p->height = height;
    Alys__Storage__ListCheckpoints lc = ALYS__STORAGE__LIST_CHECKPOINTS__INIT;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_LIST_CHECKPOINTS;
    sm.list_checkpoints = &lc;
    sa_send_storage(sa, &sm, p->corr_id);
}

/* ---------------------------------------------------------------- head */

static uint64_t machine_head(sa_t *sa)
{
    sync_progress_t p;
    sync_machine_get_progress(sa->m, sa->now, &p);
    return p.current_height;
}

/* A checkpoint exists at height: ours (explicit, CreateCheckpoint) or one
 * Storage wrote on its own every checkpoint_interval blocks as it committed
 * (we only see the latest: count the interval multiples passed). */
static void checkpoint_seen(sa_t *sa, uint64_t height, bool explicit)
{
    if (explicit)
        alys_metric_add(sa->metrics, "alys_checkpoints_created_total", NULL,
                        "Total checkpoints created", 1);
    uint64_t n = sync_bus_checkpoints_passed(sa->last_checkpoint_seen, height,
                                             sa->cfg->checkpoint_interval);
    if (n == 0)
        return;
    if (!explicit)
        alys_metric_add(sa->metrics, "alys_checkpoints_created_total", NULL,
                        "Total checkpoints created", (double) n);
    sa->last_checkpoint_seen = height;
    sync_machine_on_checkpoint_written(sa->m, sa->now, height);
    sa_drain(sa);
}


static void committed(sa_t *sa, uint64_t height, const uint8_t *hash, size_t hash_len)
{
    if (!sa->initialised || hash_len != ALYS_HASH_LEN)
        return;
    if (!sync_rollback_accepts_commit(sa->rollback, sa->now))
        return;
    sync_machine_on_committed(sa->m, sa->now, height, hash);
    sa_drain(sa);
}

/* Storage's head. asked_at_head: the machine's head when we asked; a
 * reply below it means storage went back (a rollback), while a reply below
 * the machine's head now may only be older than a commit reported since. */
static void on_head(sa_t *sa, const Alys__Storage__Head *h, uint64_t asked_at_head)
{
    if (h->hash.len != ALYS_HASH_LEN)
        return;
    if (sa->have_genesis && h->genesis_hash.len == ALYS_HASH_LEN &&
        memcmp(h->genesis_hash.data, sa->genesis.hash, ALYS_HASH_LEN) != 0)
        log_error("storage holds another chain than genesis_file %s", sa->cfg->genesis_file);
    sync_hdr_ring_put(sa->ring, h->height, h->slot, h->hash.data);
    uint64_t now = sa->now;
    if (sync_bus_head_resets(sa->initialised, h->height, asked_at_head)) {
        /* First start (or the head went back: a rollback we did not ask
         * for): resume from the committed head, never from genesis. */
        log_info("%s from committed head %" PRIu64 " (last checkpoint %" PRIu64 ")",
                 sa->initialised ? "restarting" : "starting", h->height, h->last_checkpoint);
        if (!sa->initialised)
            request_in_flight(sa); /* bodies wait for its answer */
        sync_machine_init(sa->m, now, h->height, h->hash.data, h->last_checkpoint);
        sa_drain(sa);
        if (!sa->initialised) {
            sa->initialised = true;
            sync_machine_start(sa->m, now, false, 0, false, 0); /* auto start */
            sa_drain(sa);
            if (sa->start_paused) {
                log_info("ALYS_SYNC_START_PAUSED=1: waiting for `alysctl sync resume`");
                sync_machine_pause(sa->m, now);
                sa_drain(sa);
            }
            sa_request_peers(sa); /* the peers now, not at the next push */
        }
        sa->last_checkpoint_seen = h->last_checkpoint;
        return;
    }
    committed(sa, h->height, h->hash.data, h->hash.len);
    checkpoint_seen(sa, h->last_checkpoint, false);
}

/* ---------------------------------------------------------------- peers */

static uint64_t plausible_height(sa_t *sa)
{
    return sa->have_genesis ? alys_genesis_slot_at(&sa->genesis, sa->now_unix) : 0;
}

static void peer_gone(sa_t *sa, const char *id, const char *reason)
{
    log_info("peer %s gone: %s", id, reason);
    sync_machine_on_peer_disconnected(sa->m, sa->now, id, reason);
    sa_drain(sa);
}

/* PeerManager reports id connected: the known table first (it may evict
 * the peer reported longest ago, which the machine then forgets too). */
static bool peer_status(sa_t *sa, const char *id, uint64_t height)
{
    bool evicted;
    sync_peer_id_t old;
    if (!sync_known_seen(sa->known, id, sa->now, &evicted, old))
        return false;
    if (evicted)
        peer_gone(sa, old, "evicted: the known-peer table is full");
    sync_machine_on_peer_status(sa->m, sa->now, id, height, plausible_height(sa));
    sa_drain(sa);
    return true;
}

static void peer_left(sa_t *sa, const char *id, const char *reason)
{
    if (sync_known_gone(sa->known, id))
        peer_gone(sa, id, reason);
}

/* PeerSet: connected entries are (re)reported to the machine with their
 * rank and score; entries gone are gone at once; peers missing from the
 * sets for SYNC_KNOWN_ABSENT_MS are gone too (sync_known.h). */
static void on_peer_set(sa_t *sa, const Alys__Peer__PeerSet *ps)
{
    for (size_t i = 0; i < ps->n_peers; i++) {
        const Alys__Peer__PeerEntry *e = ps->peers[i];
        sync_entry_kind_t kind = sync_known_entry_kind(e->state);
        if (kind == SYNC_ENTRY_CONNECTED && sync_known_valid_id(e->peer_id)) {
            /* Rank and score before the status (a known peer's new work is
             * handed out on it) and after (a new peer exists only then). */
            sync_machine_on_peer_rank(sa->m, e->peer_id, (uint32_t) i);
            sync_machine_on_peer_score(sa->m, e->peer_id, e->score);
            peer_status(sa, e->peer_id, e->reported_height);
            sync_machine_on_peer_rank(sa->m, e->peer_id, (uint32_t) i);
            sync_machine_on_peer_score(sa->m, e->peer_id, e->score);
            sa_drain(sa);
        } else if (kind == SYNC_ENTRY_GONE) {
            peer_left(sa, e->peer_id, e->state);
        }
    }
    sync_peer_id_t id;
    while (sync_known_next_absent(sa->known, sa->now, id))
        peer_gone(sa, id, "no longer in PeerManager's peer set");
    if (ps->batch_size) {
        sync_machine_on_batch_size(sa->m, ps->batch_size);
        sa_drain(sa);
    }
}

/* ---------------------------------------------------------------- peer results */

static void on_headers_result(sa_t *sa, const Alys__Peer__HeadersResult *hr)
{
    if (hr->request_id & SYNC_FORK_REQ_BIT) {
        sa_fork_on_headers(sa, hr);
        return;
    }
    sync_hdr_req_t req;
    if (!sync_hdr_reqs_take(sa->hreqs, hr->request_id, &req)) {
        log_debug("headers for unknown request %" PRIu64 " ignored", hr->request_id);
        return;
    }
    char why[256];
    uint32_t n = 0;
    bool fork = false;
    sync_outcome_t o = sync_headers_judge(sa->have_genesis ? &sa->genesis : NULL, sa->ring,
                                          sa->now_unix, &req, sync_bus_outcome(hr->outcome),
                                          hr->headers, hr->n_headers, sa->hashes, &n, &fork, why,
                                          sizeof why);
    if (fork) {
        log_warn("headers from %s for [%" PRIu64 ",+%u) are another branch: %s", req.peer,
                 req.start, req.count, why);
        sync_machine_on_headers_fork(sa->m, sa->now, req.req_id);
        sa_drain(sa);
        return;
    }
    if (*why) {
        log_warn("invalid headers from %s for [%" PRIu64 ",+%u): %s", req.peer, req.start,
                 req.count, why);
        sa_error_metric(sa, "invalid_header");
    } else if (o != SYNC_OUTCOME_OK) {
        sa_error_metric(sa, sync_outcome_name(o));
    }
    sync_machine_on_headers(sa->m, sa->now, req.req_id, o, req.start, n,
                            (const alys_hash_t *) sa->hashes);
    sa_drain(sa);
}

static void on_fetch_result(sa_t *sa, const Alys__Peer__FetchResult *fr)
{
    if (fr->request_id & SYNC_FORK_REQ_BIT) {
        sa_fork_on_fetch_result(sa, fr);
        return;
    }
    sync_outcome_t outcome = sync_bus_outcome(fr->outcome);
    if (outcome != SYNC_OUTCOME_OK) {
        sa_error_metric(sa, sync_outcome_name(outcome));
        log_debug("range [%" PRIu64 ",...) from %s: %s %s", fr->start, fr->peer_id,
                  sync_outcome_name(outcome), fr->detail ? fr->detail : "");
    } else {
        log_debug("range [%" PRIu64 ",+%u) from %s delivered (request %" PRIu64 ", %u ms)",
                  fr->start, fr->delivered, fr->peer_id, fr->request_id, fr->latency_ms);
        alys_metric_add(sa->metrics, "alys_sync_blocks_downloaded_total", NULL,
                        "Blocks PeerManager delivered to BlockProcessor for us", fr->delivered);
        alys_metric_add(sa->metrics, "alys_sync_bytes_downloaded_total", NULL,
                        "Bytes of the ranges PeerManager fetched for us", (double) fr->bytes);
    }
    sync_machine_on_range_outcome(sa->m, sa->now, fr->request_id, outcome);
    sa_drain(sa);
}

static void on_batch_outcome(sa_t *sa, const Alys__Peer__BatchOutcome *bo)
{
    committed(sa, bo->head_height, bo->head_hash.data, bo->head_hash.len);
    if (!bo->failed)
        return;
    const char *reason = bo->reason ? bo->reason : "";
    const char *detail = bo->detail ? bo->detail : "";
    sync_refusal_t why = sync_bus_refusal(reason, detail, bo->failed_height, bo->start);
    if (why == SYNC_REFUSAL_REPEAT)
        return;
    bool fault = why == SYNC_REFUSAL_PEER_FAULT;
    log_warn("block %" PRIu64 " from %s refused: %s %s", bo->failed_height, bo->peer_id, reason,
             detail);
    sa_error_metric(sa, fault ? "block_invalid" : "block_processing");
    sync_machine_on_block_failed(sa->m, sa->now, bo->failed_height, fault, reason);
    sa_drain(sa);
}

static void on_peer_msg(sa_t *sa, const alys_env_t *env)
{
    const Alys__Peer__PeerMsg *pm = env->peer;
    switch (pm->msg_case) {
    case ALYS__PEER__PEER_MSG__MSG_HEADERS_RESULT:
        on_headers_result(sa, pm->headers_result);
        break;
    case ALYS__PEER__PEER_MSG__MSG_FETCH_RESULT: on_fetch_result(sa, pm->fetch_result); break;
    case ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME: on_batch_outcome(sa, pm->batch_outcome); break;
    case ALYS__PEER__PEER_MSG__MSG_IN_FLIGHT: {
        sync_pend_t p;
        if (env->reply && sync_pending_take(sa->pend, env->corr_id, &p)) {
            sa_pend_done(&p);
            on_in_flight(sa, pm->in_flight);
        }
        break;
    }
    case ALYS__PEER__PEER_MSG__MSG_PEER_SET: {
        if (env->reply)
            sync_pending_take(sa->pend, env->corr_id, NULL); /* our GetPeers: no client */
        sa->last_peer_set = sa->now;
        on_peer_set(sa, pm->peer_set);
        break;
    }
    default:
        log_debug("ignoring peer message %d from %s", (int) pm->msg_case, env->sender);
        break;
    }
}

/* PeerManager answered a fetch with an Error instead of a result: nobody
 * served anything, so the machine re-issues it without blame. */
static void on_fetch_error(sa_t *sa, const alys_env_t *env)
{
    uint64_t req_id;
    bool headers;
    if (!sync_pending_fetch_refused(sa->pend, env->corr_id, &req_id, &headers))
        return;
    const char *msg = env->error && env->error->message ? env->error->message : "";
    sync_outcome_t o = sync_bus_error_outcome(env->error ? env->error->code : 0);
    log_warn("peer_manager refused request %" PRIu64 ": %s", req_id, msg);
    sync_hdr_req_t req;
    if (!headers)
        sync_machine_on_range_outcome(sa->m, sa->now, req_id, o);
    else if (sync_hdr_reqs_take(sa->hreqs, req_id, &req))
        sync_machine_on_headers(sa->m, sa->now, req_id, o, req.start, 0, NULL);
    sa_drain(sa);
}

/* ---------------------------------------------------------------- storage replies */

static void on_checkpoints(sa_t *sa, sync_pend_t *p, const Alys__Storage__Checkpoints *cps)
{
    if (p->kind == SYNC_PEND_CREATE_CP) {
        Alys__Chain__BlockCheckpoint *cp = cps->n_checkpoints ? cps->checkpoints[0] : NULL;
        if (cp) {
            alys_metric_set(sa->metrics, "alys_checkpoint_height", NULL,
                            "Latest checkpoint height", (double) cp->height);
            checkpoint_seen(sa, cp->height, true);
            log_info("checkpoint written at height %" PRIu64, cp->height);
        }
        Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
        msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_CHECKPOINT;
        msg.checkpoint = cp;
        if (cp)
            sa_reply_sync(sa, p->client, p->client_corr, &msg);
        else
            sa_reply_ack(sa, p->client, p->client_corr, false, "storage wrote no checkpoint");
        return;
    }
    /* SYNC_PEND_LIST_CP: RecoverFromCheckpoint{height} needs the checkpoint's hash. */
    const Alys__Chain__BlockCheckpoint *found = sync_bus_find_checkpoint(cps, p->height);
    if (!found) {
        sa_reply_ack(sa, p->client, p->client_corr, false,
                     "no checkpoint at height %" PRIu64 " (see alysctl checkpoint list)", p->height);
        return;
    }
    sa->client = p->client; /* the ROLLBACK action answers it */
    sa->client_corr = p->client_corr;
    int rc = sync_machine_recover_from_checkpoint(sa->m, sa->now, found->height, found->hash.data);
    sa_drain(sa);
    sa->client = NULL;
    if (rc != 0)
        sa_reply_ack(sa, p->client, p->client_corr, false,
                     "cannot recover to %" PRIu64 ": above the committed head", p->height);
}

static void on_storage_reply(sa_t *sa, sync_pend_t *p, const alys_env_t *env)
{
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_ERROR) {
        const char *msg = env->error && env->error->message ? env->error->message : "error";
        log_warn("storage refused %s: %s", sync_pending_kind_name(p->kind), msg);
        sa_reply_ack(sa, p->client, p->client_corr, false, "storage refused: %s", msg);
        if (p->kind == SYNC_PEND_ROLLBACK) {
            sync_rollback_failed(sa->rollback);
            sa_request_head(sa); /* the machine moved; storage did not */
        }
        return;
    }
    if (env->body_case != ALYS__BUS__ENVELOPE__BODY_STORAGE)
        return;
    const Alys__Storage__StorageMsg *sm = env->storage;
    if (sm->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_HEAD) {
        /* After a rollback, storage's head is the truth whatever we knew. */
        if (p->kind == SYNC_PEND_ROLLBACK) {
            sa_reply_ack(sa, p->client, p->client_corr, true, "rolled back to height %" PRIu64,
                         sm->head->height);
            sync_rollback_done(sa->rollback, sa->now);
        }
        on_head(sa, sm->head, p->kind == SYNC_PEND_GET_HEAD ? p->height : UINT64_MAX);
    } else if (sm->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_CHECKPOINTS) {
        on_checkpoints(sa, p, sm->checkpoints);
    }
}

/* ---------------------------------------------------------------- processor replies */

static void on_processed(sa_t *sa, sync_pend_t *p, const alys_env_t *env)
{
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_ERROR) {
        sa_reply_ack(sa, p->client, p->client_corr, false, "block processor refused: %s",
                     env->error && env->error->message ? env->error->message : "error");
        return;
    }
    if (env->body_case != ALYS__BUS__ENVELOPE__BODY_PROCESSOR ||
        env->processor->msg_case != ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED)
        return;
    const Alys__Processor__BatchProcessed *bp = env->processor->batch_processed;
    /* Not a range of ours: no on_block_failed (it would suspect whoever
     * served an overlapping range). The head moves all the same. */
    committed(sa, bp->head_height, bp->head_hash.data, bp->head_hash.len);
    if (bp->failed) {
        sa_error_metric(sa, "block_pushed_invalid");
        sa_reply_ack(sa, p->client, p->client_corr, false, "block %" PRIu64 " refused: %s",
                     bp->failed_height, bp->reason ? bp->reason : "");
    } else {
        sa_reply_ack(sa, p->client, p->client_corr, true, "%u committed, head %" PRIu64,
                     bp->committed, bp->head_height);
    }
}

/* ---------------------------------------------------------------- replies (any socket) */

static void on_reply(sa_t *sa, const alys_env_t *env)
{
    sync_pend_t copy; /* out of the table: handlers may add pendings */
    if (!sync_pending_take(sa->pend, env->corr_id, &copy)) {
        log_debug("late or unknown reply %s %" PRIu64 " from %s", alys_env_body_name(env),
                  env->corr_id, env->sender);
        return;
    }
    switch (copy.kind) {
    case SYNC_PEND_GET_HEAD:
    case SYNC_PEND_CREATE_CP:
    case SYNC_PEND_LIST_CP:
    case SYNC_PEND_ROLLBACK: on_storage_reply(sa, &copy, env); break;
    case SYNC_PEND_PROCESS: on_processed(sa, &copy, env); break;
    case SYNC_PEND_GET_PEERS: break;
    case SYNC_PEND_GET_IN_FLIGHT: on_in_flight(sa, NULL); break; /* refused: nothing to adopt */
    case SYNC_PEND_LOCATOR:
        sa_fork_on_locator(sa, env->body_case == ALYS__BUS__ENVELOPE__BODY_STORAGE &&
                                       env->storage->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_LOCATOR
                                   ? env->storage->locator
                                   : NULL);
        break;
    case SYNC_PEND_REORG: sa_fork_on_processed(sa, env); break;
    }
    sa_pend_done(&copy);
}

/* ---------------------------------------------------------------- sync mailbox */

static void on_status_request(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    static sync_status_buf_t buf;
    sync_bus_status(&buf, sa->m, sa->now, sa->now_unix, sa->production_allowed_at);
    static sync_fork_status_t fs;
    sync_fork_get_status(sa->fork, &fs);
    buf.msg.reorgs = fs.reorgs;
    buf.msg.reorgs_refused = fs.refused;
    buf.msg.last_reorg = fs.last_reorg;
    buf.msg.last_reorg_refused = fs.last_refused;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_SYNC_STATUS;
    msg.sync_status = &buf.msg;
    sa_reply_sync(sa, from, env->corr_id, &msg);
}

static void on_can_produce(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    char reason[256];
    sync_bus_can_produce_reason(sa->m, sa->now, reason, sizeof reason);
    Alys__Sync__CanProduceBlocksReply r = ALYS__SYNC__CAN_PRODUCE_BLOCKS_REPLY__INIT;
    r.can_produce = sync_machine_can_produce_blocks(sa->m);
    r.reason = reason;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_CAN_PRODUCE_REPLY;
    msg.can_produce_reply = &r;
    sa_reply_sync(sa, from, env->corr_id, &msg);
}

static void on_process_block_batch(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    const Alys__Sync__ProcessBlockBatch *b = env->sync->process_block_batch;
    if (b->n_blocks == 0 || b->n_blocks > MAX_BATCH_BLOCKS) {
        sa_reply_ack(sa, from, env->corr_id, false, "%zu blocks: 1..%d per batch", b->n_blocks,
                     MAX_BATCH_BLOCKS);
        return;
    }
    sync_pend_t *p = sa_pend_add(sa, SYNC_PEND_PROCESS, PROCESS_TIMEOUT_MS);
    if (!p) {
        sa_reply_ack(sa, from, env->corr_id, false, "too many batches in flight");
        return;
    }
    if (from && env->corr_id) {
        p->client = zframe_dup(from);
        p->client_corr = env->corr_id;
    }
    Alys__Processor__ProcessBatch pb = ALYS__PROCESSOR__PROCESS_BATCH__INIT;
    pb.batch_id = p->corr_id;
    pb.n_blocks = b->n_blocks;
    pb.blocks = b->blocks;
    pb.origin = b->from_peer && *b->from_peer ? b->from_peer : (char *) env->sender;
    if (sa_send_process_batch(sa, &pb, p->corr_id) != 0) {
        sync_pend_t failed;
        sync_pending_take(sa->pend, pb.batch_id, &failed);
        sa_reply_ack(sa, failed.client, failed.client_corr, false, "block processor unreachable");
        sa_pend_done(&failed);
    }
}

/* A command that is one machine call; answered with Ack. */
static void on_command(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    const Alys__Sync__SyncMsg *sm = env->sync;
    uint64_t now = sa->now;
    int rc = 0;
    const char *what = "";
    switch (sm->msg_case) {
    case ALYS__SYNC__SYNC_MSG__MSG_START_SYNC: {
        const Alys__Sync__StartSync *s = sm->start_sync;
        rc = sync_machine_start(sa->m, now, s->has_from, s->from_height, s->has_target,
                                s->target_height);
        what = "sync started";
        break;
    }
    case ALYS__SYNC__SYNC_MSG__MSG_PAUSE_SYNC:
        rc = sync_machine_pause(sa->m, now);
        what = "sync paused";
        break;
    case ALYS__SYNC__SYNC_MSG__MSG_RESUME_SYNC:
        rc = sync_machine_resume(sa->m, now);
        what = "sync resumed";
        break;
    default: return;
    }
    sa_drain(sa);
    log_info("%s by %s", what, env->sender ? env->sender : "?");
    sa_reply_ack(sa, from, env->corr_id, rc == 0, "%s", rc == 0 ? what : "refused");
}

static void on_sync_msg(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    const Alys__Sync__SyncMsg *sm = env->sync;
    bool ready = sa->initialised;
    switch (sm->msg_case) {
    case ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCOVERED:
        peer_status(sa, sm->peer_discovered->peer_id, sm->peer_discovered->reported_height);
        sa_reply_ack(sa, from, env->corr_id, true, "ok");
        return;
    case ALYS__SYNC__SYNC_MSG__MSG_PEER_DISCONNECTED:
        peer_left(sa, sm->peer_disconnected->peer_id,
                  sm->peer_disconnected->reason ? sm->peer_disconnected->reason : "");
        sa_reply_ack(sa, from, env->corr_id, true, "ok");
        return;
    case ALYS__SYNC__SYNC_MSG__MSG_GET_SYNC_STATUS: on_status_request(sa, from, env); return;
    case ALYS__SYNC__SYNC_MSG__MSG_CAN_PRODUCE_BLOCKS: on_can_produce(sa, from, env); return;
    case ALYS__SYNC__SYNC_MSG__MSG_PROCESS_BLOCK_BATCH:
        on_process_block_batch(sa, from, env);
        return;
    default: break;
    }
    if (!ready) {
        sa_reply_ack(sa, from, env->corr_id, false,
                     "not started yet: waiting for StorageActor's head");
        return;
    }
    switch (sm->msg_case) {
    case ALYS__SYNC__SYNC_MSG__MSG_CREATE_CHECKPOINT:
        sa->client = from;
        sa->client_corr = env->corr_id;
        sync_machine_create_checkpoint(sa->m, sa->now);
        sa_drain(sa);
        sa->client = NULL;
        return;
    case ALYS__SYNC__SYNC_MSG__MSG_RECOVER_FROM_CHECKPOINT:
        sa->client = from;
        sa->client_corr = env->corr_id;
        request_list_checkpoints(sa, sm->recover_from_checkpoint->height);
        sa->client = NULL;
        return;
    default: on_command(sa, from, env); return;
    }
}

/* ---------------------------------------------------------------- dispatch */

void sa_dispatch(sa_t *sa, zframe_t *from, const alys_env_t *env)
{
    if (env->reply && sync_pending_known(sa->pend, env->corr_id)) {
        if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PEER)
            on_peer_msg(sa, env); /* GetPeers -> PeerSet */
        else
            on_reply(sa, env);
        return;
    }
    switch (env->body_case) {
    case ALYS__BUS__ENVELOPE__BODY_PEER: on_peer_msg(sa, env); break;
    case ALYS__BUS__ENVELOPE__BODY_SYNC:
        if (!env->reply)
            on_sync_msg(sa, from, env);
        break;
    case ALYS__BUS__ENVELOPE__BODY_ERROR:
        if (env->reply)
            on_fetch_error(sa, env);
        break;
    default:
        if (!env->reply && from && env->corr_id) {
            char text[96];
            snprintf(text, sizeof text, "sync does not serve %s", alys_env_body_name(env));
            sa->port.reply_error(sa->port.ctx, from, env, ALYS_ERR_BAD_REQUEST, text);
        }
        break;
    }
}

/* ---------------------------------------------------------------- restarts */

void sa_restart_series(sa_t *sa, sync_watch_t w, double delta)
{
    char labels[64];
    snprintf(labels, sizeof labels, "actor=\"%s\"", sync_restart_name(w));
    alys_metric_add(sa->metrics, "alys_sync_actor_restarts_seen_total", labels,
                    "Restarts of other actors the SyncActor acted on", delta);
}

void sa_restarted(sa_t *sa, sync_watch_t w, const char *how)
{
    const char *name = sync_restart_name(w);
    log_warn("%s restarted (%s)", name, how);
    sa_restart_series(sa, w, 1);
    unsigned fx = sync_restart_effects(w, sa->initialised);
    if (fx & SYNC_RESTART_GET_HEAD)
        sa_request_head(sa);
    if (fx & SYNC_RESTART_REISSUE) {
        sync_hdr_reqs_clear(sa->hreqs);
        sync_machine_on_peer_manager_restarted(sa->m, sa->now);
        sa_drain(sa);
        sync_machine_on_processor_restarted(sa->m, sa->now);
        sa_drain(sa);
    }
    if (fx & SYNC_RESTART_GET_PEERS)
        sa_request_peers(sa);
}

/* ---------------------------------------------------------------- events */

static const char *event_field(const Alys__Control__Event *ev, const char *key)
{
    for (size_t i = 0; i < ev->n_fields; i++)
        if (ev->fields[i]->key && strcmp(ev->fields[i]->key, key) == 0)
            return ev->fields[i]->value;
    return NULL;
}

void sa_on_lifecycle(sa_t *sa, const Alys__Control__Event *ev)
{
    if (!ev->kind || strcmp(ev->kind, "ready") != 0)
        return;
    sync_watch_t w = sync_restart_watch_of(ev->actor);
    int pid = sync_restart_event_pid(event_field(ev, "pid"), ev->detail);
    if (w < SYNC_WATCH_COUNT && sync_restart_on_ready(sa->restarts, w, pid))
        sa_restarted(sa, w, "a new process is ready");
}

void sa_on_storage_event(sa_t *sa, const Alys__Control__Event *ev)
{
    if (!ev->kind || !ev->detail || !sa->initialised)
        return;
    if (strcmp(ev->kind, "rolled_back") == 0) {
        sa_request_head(sa);
        return;
    }
    if (strcmp(ev->kind, "head_advanced") != 0)
        return;
    uint64_t height;
    alys_hash_t hash;
    if (sync_bus_parse_head_advanced(ev->detail, &height, hash))
        committed(sa, height, hash, ALYS_HASH_LEN);
}
/* ---------------------------------------------------------------- deadlines */

void sa_expire_pending(sa_t *sa)
{
    sync_pend_t p;
    while (sync_pending_next_expired(sa->pend, sa->now, &p)) {
        const char *name = sync_pending_kind_name(p.kind);
        log_debug("%s %" PRIu64 " timed out", name, p.corr_id);
        if (p.kind != SYNC_PEND_GET_PEERS && p.kind != SYNC_PEND_GET_HEAD &&
            p.kind != SYNC_PEND_GET_IN_FLIGHT)
            sa_error_metric(sa, "request_timeout");
        sa_reply_ack(sa, p.client, p.client_corr, false, "%s timed out", name);
        sa_pend_done(&p);
        if (p.kind == SYNC_PEND_ROLLBACK) {
            sync_rollback_failed(sa->rollback);
            sa_request_head(sa);
        }
    }
    sync_hdr_reqs_expire(sa->hreqs, sa->now);
}
