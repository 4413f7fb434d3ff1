/*  sync_reorg.c: fork choice's steps (sync_fork.h decides) -> messages,
 *  and the answers back into it (see sync_core_internal.h).
 *
 *  GET_LOCATOR -> Storage GetLocator; FETCH_HEADERS -> FetchHeaders with
 *  the locator; FETCH_BLOCKS -> FetchBlocks{to_requester}; PROCESS ->
 *  ProcessBatch{the FetchResult's blocks, reorg ancestor} to
 *  BlockProcessor. The endings: REORGED restarts the machine from the new
 *  head; TOO_DEEP is logged as an error, published and counted
 *  (alys_chain_reorgs_refused_total); INVALID penalises the peer.
 */
#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "sync_core_internal.h"

static void publish(sa_t *sa, const char *kind, const char *detail)
{
    sa->port.event(sa->port.ctx, kind, detail);
}

static void send_get_locator(sa_t *sa)
{
    sync_pend_t *p = sa_pend_add(sa, SYNC_PEND_LOCATOR, STORAGE_TIMEOUT_MS);
    if (!p)
        return; /* the step's deadline ends the resolution */
    Alys__Storage__GetLocator gl = ALYS__STORAGE__GET_LOCATOR__INIT;
    /* One by one over the whole reorg window (and one past it): the fork
     * point found there is exact, so the depth judged against
     * max_reorg_depth is the true one (a sparse locator would name a
     * height below the fork point and refuse a fork we may adopt). */
    uint64_t dense = (uint64_t) sa->cfg->max_reorg_depth + 2;
    gl.dense = dense < ALYS_LOCATOR_DENSE_MAX ? (uint32_t) dense : ALYS_LOCATOR_DENSE_MAX;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_LOCATOR;
    sm.get_locator = &gl;
    sa_send_storage(sa, &sm, p->corr_id);
}

static void send_fetch_headers(sa_t *sa, const sync_fork_step_t *s)
{
    size_t n;
    const alys_hash_t *loc = sync_fork_locator(sa->fork, &n);
    ProtobufCBinaryData hashes[ALYS_LOCATOR_MAX];
    for (size_t i = 0; i < n && i < ALYS_LOCATOR_MAX; i++)
        hashes[i] = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) loc[i]};
    Alys__Peer__FetchHeaders fh = ALYS__PEER__FETCH_HEADERS__INIT;
    fh.request_id = s->req_id;
    fh.peer_id = (char *) s->peer;
    fh.count = s->count;
    fh.timeout_ms = sa->cfg->request_timeout_ms;
    fh.locator = hashes;
    fh.n_locator = n;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_HEADERS;
    pm.fetch_headers = &fh;
    log_info("fork choice: asking %s where its branch meets ours (%zu locator hashes from %" PRIu64
             ")",
             s->peer, n, s->head);
    sa_send_peer(sa, &pm, 0);
}

/* The expected hashes as protobuf bytes (sa->expected scratch). */
static ProtobufCBinaryData *expected_bytes(sa_t *sa, uint32_t count)
{
    uint32_t have;
    const alys_hash_t *h = sync_fork_expected(sa->fork, &have);
    if (have < count || sa_expected_reserve(sa, count) != 0)
        return NULL;
    for (uint32_t i = 0; i < count; i++)
        sa->expected[i] = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) h[i]};
    return sa->expected;
}

static void send_fetch_blocks(sa_t *sa, const sync_fork_step_t *s)
{
    Alys__Peer__FetchBlocks fb = ALYS__PEER__FETCH_BLOCKS__INIT;
    fb.request_id = s->req_id;
    fb.peer_id = (char *) s->peer;
    fb.start = s->start;
    fb.count = s->count;
    fb.expected_hashes = expected_bytes(sa, s->count);
    fb.n_expected_hashes = fb.expected_hashes ? s->count : 0;
    fb.timeout_ms = sa->cfg->request_timeout_ms;
    fb.to_requester = true;
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_FETCH_BLOCKS;
    pm.fetch_blocks = &fb;
    log_info("fork choice: %s's branch leaves ours at %" PRIu64 " (%" PRIu64
             " below our head); fetching [%" PRIu64 ",+%u)",
             s->peer, s->ancestor, s->depth, s->start, s->count);
    sa_send_peer(sa, &pm, 0);
}

static void send_process(sa_t *sa, const sync_fork_step_t *s, const Alys__Peer__FetchResult *fr)
{
    sync_pend_t *p = sa_pend_add(sa, SYNC_PEND_REORG, (uint32_t) sa->cfg->request_timeout_ms * 6);
    if (!p)
        return; /* the step's deadline ends the resolution */
    Alys__Processor__ProcessBatch pb = ALYS__PROCESSOR__PROCESS_BATCH__INIT;
    pb.batch_id = p->corr_id;
    pb.n_blocks = s->count;
    pb.blocks = fr->blocks;
    pb.expected_hashes = expected_bytes(sa, s->count);
    pb.n_expected_hashes = pb.expected_hashes ? s->count : 0;
    pb.origin = (char *) s->peer;
    pb.reorg_ancestor_height = s->ancestor;
    pb.reorg_ancestor_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) s->ancestor_hash};
    log_info("fork choice: %u blocks of %s's branch to BlockProcessor as one reorg above %" PRIu64,
             s->count, s->peer, s->ancestor);
    sa_send_process_batch(sa, &pb, p->corr_id);
}

static void reorged(sa_t *sa, const sync_fork_step_t *s)
{
    log_warn("fork choice: %s", s->detail);
    publish(sa, "reorg", s->detail);
}

static void run(sa_t *sa, const sync_fork_step_t *s, const Alys__Peer__FetchResult *fr)
{
    switch (s->kind) {
    case SYNC_FORK_NONE: break;
    case SYNC_FORK_GET_LOCATOR: send_get_locator(sa); break;
    case SYNC_FORK_FETCH_HEADERS: send_fetch_headers(sa, s); break;
    case SYNC_FORK_FETCH_BLOCKS: send_fetch_blocks(sa, s); break;
    case SYNC_FORK_PROCESS:
        if (fr)
            send_process(sa, s, fr);
        break;
    case SYNC_FORK_REORGED: reorged(sa, s); break;
    case SYNC_FORK_TOO_DEEP:
        log_error("fork choice REFUSED a reorg: %s", s->detail);
        publish(sa, "reorg_refused", s->detail);
        alys_metric_add(sa->metrics, "alys_chain_reorgs_refused_total", NULL,
                        "Forks not adopted: deeper than max_reorg_depth", 1);
        break;
    case SYNC_FORK_KEEP_OURS: log_info("fork choice: %s", s->detail); break;
    case SYNC_FORK_INVALID:
        log_warn("fork choice: %s", s->detail);
        sa_error_metric(sa, "invalid_header");
        sa_penalise(sa, s->peer, ALYS__PEER__OUTCOME__INVALID, "invalid_branch");
        break;
    case SYNC_FORK_ABANDONED: log_info("fork choice: %s", s->detail); break;
    }
    if (s->kind >= SYNC_FORK_REORGED) { /* over: whoever waits its turn is next */
        sync_fork_step_t next;
        sync_fork_next(sa->fork, sa->now, &next);
        if (next.kind == SYNC_FORK_GET_LOCATOR)
            send_get_locator(sa);
    }
}

void sa_fork_found(sa_t *sa, const char *peer, uint64_t peer_height)
{
    sync_fork_step_t s;
    sync_fork_found(sa->fork, sa->now, peer, peer_height, &s);
    run(sa, &s, NULL);
}

void sa_fork_on_locator(sa_t *sa, const Alys__Storage__Locator *loc)
{
    uint64_t heights[ALYS_LOCATOR_MAX];
    alys_hash_t hashes[ALYS_LOCATOR_MAX];
    size_t n = loc ? loc->n_heights : 0;
    if (!loc || n != loc->n_hashes || n > ALYS_LOCATOR_MAX)
        n = 0; /* malformed: sync_fork abandons */
    for (size_t i = 0; i < n; i++) {
        if (loc->hashes[i].len != ALYS_HASH_LEN) {
            n = 0;
            break;
        }
        heights[i] = loc->heights[i];
        memcpy(hashes[i], loc->hashes[i].data, ALYS_HASH_LEN);
    }
    sync_fork_step_t s;
    sync_fork_on_locator(sa->fork, sa->now, heights, (const alys_hash_t *) hashes, n, &s);
    run(sa, &s, NULL);
}

void sa_fork_on_headers(sa_t *sa, const Alys__Peer__HeadersResult *hr)
{
    sync_outcome_t o = sync_bus_outcome(hr->outcome);
    alys_hash_t parent;
    char why[256] = "";
    bool verified = false;
    uint32_t n = 0;
    if (o == SYNC_OUTCOME_OK && hr->n_headers > 0 &&
        sync_fork_parent(sa->fork, hr->request_id, hr->start, parent)) {
        size_t take = hr->n_headers < SYNC_FORK_MAX_BLOCKS ? hr->n_headers : SYNC_FORK_MAX_BLOCKS;
        verified = sa->have_genesis &&
                   sync_verify_headers(&sa->genesis, sa->ring, sa->now_unix, hr->start,
                                       (uint32_t) take, parent, hr->headers, take, sa->hashes,
                                       why, sizeof why) == 0;
        n = verified ? (uint32_t) take : 0;
    } else if (o == SYNC_OUTCOME_OK) {
        n = (uint32_t) hr->n_headers; /* 0, or a start we never named: invalid */
    }
    sync_fork_step_t s;
    sync_fork_on_headers(sa->fork, sa->now, hr->request_id, o, verified || n == 0, hr->start,
                         (const alys_hash_t *) sa->hashes, n, why, &s);
    run(sa, &s, NULL);
}

void sa_fork_on_fetch_result(sa_t *sa, const Alys__Peer__FetchResult *fr)
{
    sync_outcome_t o = sync_bus_outcome(fr->outcome);
    sync_fork_step_t s;
    sync_fork_on_blocks(sa->fork, sa->now, fr->request_id, o, (uint32_t) fr->n_blocks, &s);
    run(sa, &s, fr);
}

void sa_fork_on_processed(sa_t *sa, const alys_env_t *env)
{
    const Alys__Processor__BatchProcessed *bp = NULL;
    if (env && env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR &&
        env->processor->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED)
        bp = env->processor->batch_processed;
    const char *reason = bp && bp->reason ? bp->reason : "";
    if (!bp && env && env->body_case == ALYS__BUS__ENVELOPE__BODY_ERROR && env->error)
        reason = env->error->message ? env->error->message : "error";
    sync_fork_step_t s;
    sync_fork_on_processed(sa->fork, sa->now, bp != NULL, bp ? bp->reorg_depth : 0,
                           bp ? bp->head_height : 0, bp && bp->failed,
                           bp && bp->failed && alys_refusal_is_content(reason), reason, &s);
    run(sa, &s, NULL);
    if (s.kind == SYNC_FORK_REORGED && bp->head_hash.len == ALYS_HASH_LEN) {
        /* The machine's windows, headers and peer caps were about the old
         * branch: it restarts from the new head. */
        sync_machine_on_reorg(sa->m, sa->now, bp->head_height, bp->head_hash.data);
        sa_drain(sa);
    }
}

void sa_fork_tick(sa_t *sa)
{
    sync_fork_step_t s;
    sync_fork_tick(sa->fork, sa->now, &s);
    run(sa, &s, NULL);
}
