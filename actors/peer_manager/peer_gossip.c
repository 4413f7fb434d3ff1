/*  peer_gossip.c: block gossip's bytes (pm_gossip.h takes the decisions).
 *
 *  In:  a NewBlock from a peer (either direction of connection) and
 *       AnnounceBlock from our producer.
 *  Out: ProcessBatch of one block to BlockProcessor (its stateless checks,
 *       then execution and commit by StorageActor); NewBlock pushes to
 *       peers once a block is committed; GetBlocks for an orphan's missing
 *       ancestors from its pusher; PeerDiscovered to SyncActor when a push
 *       shows we are far behind (range sync's job) or a longer branch
 *       (fork choice's).
 *  Cost: a pushed block BlockProcessor refuses for its own content is
 *       charged to the pusher as an invalid served block (INVALID) at
 *       once: a node relays only what it committed, so an honest pusher
 *       never pushes one. One that does not decode costs the same.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pm.h"
#include "pm_gossip.h"
#include "pm_judge.h"

#define PUSH_TARGETS_MAX (PM_CONN_MAX + 64)

static void count(pm_t *pm, const char *name, const char *reason, const char *help)
{
    char labels[64];
    if (reason)
        snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
    alys_metric_add(pm->metrics, name, reason ? labels : NULL, help, 1);
}

static void dropped(pm_t *pm, const char *reason)
{
    count(pm, "alys_gossip_blocks_dropped_total", reason,
          "pushed blocks dropped (duplicate, old, invalid, pool full, behind, other branch)");
}

static pmg_t *state(pm_t *pm)
{
    if (!pm->gossip)
        pm->gossip = pmg_new();
    return pm->gossip;
}

/* ---- push */

typedef struct {
    bool inbound; /* a client of ours (ps_push) or a peer we dialled (pn_push) */
    size_t at;
    const char *id;
} target_t;

static bool listed(const target_t *t, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].id, id) == 0)
            return true;
    return false;
}

/* Every ready peer once (a node we dialled that also dialled us counts
 * once), except `except`. */
static size_t targets(pm_t *pm, const char *except, target_t *t, size_t cap)
{
    int slots[PM_CONN_MAX];
    const char *ids[PUSH_TARGETS_MAX];
    size_t idx[64], n = 0;
    size_t k = pn_ready_peers(pm, slots, ids, PM_CONN_MAX);
    for (size_t i = 0; i < k && n < cap; i++)
        if ((!except || strcmp(ids[i], except) != 0) && !listed(t, n, ids[i]))
            t[n++] = (target_t){.inbound = false, .at = (size_t) slots[i], .id = ids[i]};
    k = ps_ready_clients(pm, idx, ids, 64);
    for (size_t i = 0; i < k && n < cap; i++)
        if ((!except || strcmp(ids[i], except) != 0) && !listed(t, n, ids[i]))
            t[n++] = (target_t){.inbound = true, .at = idx[i], .id = ids[i]};
    return n;
}

static void push(pm_t *pm, const ProtobufCBinaryData *block, const char *except)
{
    target_t t[PUSH_TARGETS_MAX];
    size_t n = targets(pm, except, t, PUSH_TARGETS_MAX);
    size_t pick[PMG_PUSH_MAX];
    size_t k = pmg_push_pick(n, SIZE_MAX, PMG_PUSH_MAX, (uint64_t) pm_mono(pm), pick);
    Alys__Wire__NewBlock nb = ALYS__WIRE__NEW_BLOCK__INIT;
    nb.block = *block;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK;
    m.new_block = &nb;
    for (size_t i = 0; i < k; i++) {
        const target_t *to = &t[pick[i]];
        int rc = to->inbound ? ps_push(pm, to->at, &m) : pn_push(pm, (int) to->at, &m);
        if (rc == 0)
            count(pm, "alys_gossip_blocks_relayed_total", NULL,
                  "NewBlock pushes sent to peers (committed blocks only)");
        else
            log_debug("push to %s dropped", to->id);
    }
}

/* ---- to BlockProcessor */

static int process(pm_t *pm, const pmg_block_t *b)
{
    uint64_t id = alys_next_corr_id();
    if (pmg_inflight_add(state(pm), id, b) != 0)
        return -1;
    ProtobufCBinaryData blk = {b->len, b->bytes};
    Alys__Processor__ProcessBatch pb = ALYS__PROCESSOR__PROCESS_BATCH__INIT;
    pb.batch_id = id;
    pb.n_blocks = 1;
    pb.blocks = &blk;
    pb.origin = (char *) b->peer;
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PROCESS_BATCH;
    msg.process_batch = &pb;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &msg;
    env.corr_id = id;
    if (pm->port.send(pm->port.ctx, PM_TO_PROCESSOR, &env) != 0) {
        pmg_block_t back;
        if (pmg_inflight_take(state(pm), id, &back))
            free(back.bytes);
        return -1;
    }
    return 0;
}

/* The missing ancestors [head+1, height) of an orphan, from its pusher. */
static void fetch_ancestors(pm_t *pm, const char *peer, uint64_t height)
{
    uint64_t start = pm->head_height + 1;
    uint64_t n = height > start ? height - start : 0;
    if (n == 0)
        return;
    if (n > PMG_FETCH_MAX)
        n = PMG_FETCH_MAX;
    Alys__Peer__FetchBlocks fb = ALYS__PEER__FETCH_BLOCKS__INIT;
    fb.request_id = PM_GOSSIP_REQ_BIT | (alys_next_corr_id() & (PM_GOSSIP_REQ_BIT - 1));
    fb.peer_id = (char *) peer;
    fb.start = start;
    fb.count = (uint32_t) n;
    fb.timeout_ms = pm->cfg->request_timeout_ms;
    log_debug("fetching [%llu,+%u) from %s for an orphan", (unsigned long long) start, fb.count, peer);
    pn_fetch_blocks(pm, &fb);
}

static void charge(pm_t *pm, const char *peer, const char *why)
{
    char reason[PEER_REASON_MAX];
    snprintf(reason, sizeof reason, "pushed an invalid block: %s", why);
    log_warn("peer %s %s", peer, reason);
    peer_outcome_t o = {.kind = PEER_OUTCOME_INVALID, .reason = reason};
    pm_record(pm, peer, &o);
    dropped(pm, "invalid");
}

/* ---- entry points */

void pg_on_new_block(pm_t *pm, const char *peer, const ProtobufCBinaryData *block)
{
    count(pm, "alys_gossip_blocks_received_total", NULL, "NewBlock pushes received from peers");
    if (!state(pm) || !pm->have_head) {
        dropped(pm, "not_ready");
        return;
    }
    alys_block_t b;
    alys_verdict_t v;
    if (alys_block_decode(block->data, block->len, &b, &v) != 0) {
        charge(pm, peer, "does not decode");
        return;
    }
    pmg_block_t g = {.height = b.header.height, .bytes = block->data, .len = block->len};
    snprintf(g.peer, sizeof g.peer, "%s", peer);
    alys_header_hash(&b.header, g.hash);
    memcpy(g.parent, b.header.parent_hash, ALYS_HASH_LEN);
    alys_block_clear(&b);
    pmg_verdict_t verdict = pmg_on_block(pm->gossip, g.hash, g.height, pm->head_height);
    switch (verdict) {
    case PMG_PROCESS:
        if (process(pm, &g) != 0)
            dropped(pm, "busy");
        break;
    case PMG_ORPHAN:
        if (pmg_orphan_add(pm->gossip, peer, g.hash, g.parent, g.height, g.bytes, g.len) != 0) {
            dropped(pm, "orphans_full");
            break;
        }
        fetch_ancestors(pm, peer, g.height);
        break;
    case PMG_BEHIND:
        /* More than a few blocks behind: range sync catches up. */
        pm_peer_discovered(pm, peer, g.height, g.hash);
        dropped(pm, pmg_verdict_name(verdict));
        break;
    default: dropped(pm, pmg_verdict_name(verdict)); break;
    }
}

void pg_on_announce(pm_t *pm, const ProtobufCBinaryData *block)
{
    alys_block_t b;
    alys_verdict_t v;
    if (!state(pm) || alys_block_decode(block->data, block->len, &b, &v) != 0)
        return;
    alys_hash_t h;
    alys_header_hash(&b.header, h);
    uint64_t height = b.header.height;
    alys_block_clear(&b);
    pmg_mark_seen(pm->gossip, h); /* its echo from a peer is a duplicate */
    if (height > pm->head_height) {
        /* Committed before it was announced: our head now, for our Status
         * and the next push's verdict, before the next GetHead says so. */
        pm->bp_reply_at = pm_mono(pm);
        pm->head_height = height;
        memcpy(pm->head_hash, h, ALYS_HASH_LEN);
    }
    push(pm, block, NULL);
}

/* A pushed block BlockProcessor did not commit (our head already moved to
 * its answer's): whose fault, if anyone's. */
static void not_committed(pm_t *pm, const pmg_block_t *b, const char *reason)
{
    pm_refusal_t r = pm_judge_refusal(reason, b->height, b->height);
    if (r.content_fault) {
        charge(pm, b->peer, reason ? reason : "refused");
    } else if (pmg_other_branch(r.linkage, b->height, pm->head_height)) {
        /* A longer branch: SyncActor's fork choice syncs towards it. */
        pm_peer_discovered(pm, b->peer, b->height, b->hash);
        dropped(pm, "other_branch");
    } else {
        log_debug("pushed block %llu from %s not committed: %s", (unsigned long long) b->height,
                  b->peer, reason ? reason : "");
        dropped(pm, "not_linked");
    }
}

bool pg_on_processor(pm_t *pm, const alys_env_t *env)
{
    pmg_block_t b;
    if (!pm->gossip || !pmg_inflight_take(pm->gossip, env->corr_id, &b))
        return false;
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR &&
        env->processor->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED) {
        const Alys__Processor__BatchProcessed *bp = env->processor->batch_processed;
        /* As peer_deliver.c does: a GetHead asked before this answer must
         * not take the head back (pm_flow_head's stale rule). */
        pm->bp_reply_at = pm_mono(pm);
        pm->head_height = bp->head_height;
        if (bp->head_hash.len == ALYS_HASH_LEN)
            memcpy(pm->head_hash, bp->head_hash.data, ALYS_HASH_LEN);
        if (!bp->failed && bp->committed == 1) {
            ProtobufCBinaryData blk = {b.len, b.bytes};
            push(pm, &blk, b.peer); /* checked and committed: relay it */
        } else {
            not_committed(pm, &b, bp->reason);
        }
    } else {
        dropped(pm, "busy"); /* an error reply: busy or unavailable, nobody's fault */
    }
    free(b.bytes);
    pg_head_moved(pm);
    return true;
}

void pg_head_moved(pm_t *pm)
{
    if (!pm->gossip)
        return;
    pmg_block_t b;
    if (pmg_orphan_next(pm->gossip, pm->head_height, pm->head_hash, &b)) {
        if (process(pm, &b) != 0)
            dropped(pm, "busy");
        free(b.bytes);
    }
    size_t n = pmg_orphans_prune(pm->gossip, pm->head_height);
    for (size_t i = 0; i < n; i++)
        dropped(pm, "orphan_stale");
}

void pg_take_stash(pm_t *pm)
{
    if (!pm->stash.bytes)
        return;
    ProtobufCBinaryData blk = {pm->stash.len, pm->stash.bytes};
    pg_on_new_block(pm, pm->stash.peer, &blk);
    pm_stash_clear(pm);
}
