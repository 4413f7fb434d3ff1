/*  alys-producer: the ProducerActor's process (issue 9), started by the
 *  supervisor when [producer] enabled = true.
 *
 *  It loads the genesis (genesis_file of --config) and the authority key
 *  ([producer] key_file, or --key-file FILE; see common/chain/authkey.h:
 *  exit 78 on a key that is not one of the genesis authorities or a file
 *  others may read), then asks StorageActor for its durable fence record
 *  (GetFence; again at each own slot until read: no block before it is
 *  known, fence_unknown), then at the start of each of its own Aura slots
 *  asks SyncActor CanProduceBlocks and StorageActor GetHead{with_state} and
 *  GetMempoolTxs{proposer: us}, and a quarter of a slot later (or at once
 *  when all three have answered) takes the pure decision (slot_session.h,
 *  aura.h). On "produce" it builds a block on that head with the mempool's
 *  txs when they were selected on that same head, else with none
 *  (pool_txs.h, head_state.h, builder.h: each tx checked against the
 *  accounts storage sent with them, at most [producer] max_block_txs),
 *  sends FenceRecord(slot, header hash) to StorageActor
 *  and waits (a quarter of a slot at most) for FenceRecorded ok, which
 *  storage sends only after an fsync'ed write; only then does it sign
 *  (builder_sign checks the acknowledged record names the block).
 *
 *  The signed block goes to BlockProcessor as a ProcessBatch of one block
 *  (origin "producer"): the same stateless checks and the same commit by
 *  StorageActor as any block from a peer; nothing is special-cased for our
 *  own. When BatchProcessed says it committed, the slot counts as produced
 *  (alys_producer_blocks_total) and the block goes to PeerManager
 *  (AnnounceBlock), which pushes it to peers. Misses are logged and counted
 *  (alys_producer_missed_slots_total{reason}): not_allowed, too_late, busy,
 *  fence_refused, fence_unavailable, refused, not_committed, ...
 *
 *  Its mailbox (ipc://<run_dir>/producer.sock) answers GetProducerStatus
 *  (proto/producer.proto). Txs go to PeerManager (alysctl tx send): the
 *  mempool is StorageActor's.
 *
 *  Everything else on the command line goes to the common actor runtime
 *  (actor.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actor.h"
#include "aura.h"
#include "builder.h"
#include "chain/chain.h"
#include "head_state.h"
#include "keyfile.h"
#include "log.h"
#include "pool_txs.h"
#include "slot_session.h"
#include "status.h"
#include "util.h"
#include "version.h"

#define WAIT_DIVISOR  4 /* wait for the answers a quarter of a slot at most */
#define LATE_DIVISOR  2 /* start building no later than half-way into the slot */
#define FENCE_DIVISOR 4 /* the fence's durable write: a quarter of a slot at most */
#define MAX_ARGS      64

typedef struct {
    alys_actor_t *actor;
    const alys_config_t *cfg;
    alys_genesis_t genesis;
    bool have_genesis;
    uint8_t seckey[ALYS_SECKEY_LEN];
    uint32_t index;
    zsock_t *sync;      /* DEALER to SyncActor */
    zsock_t *storage;   /* DEALER to StorageActor */
    zsock_t *processor; /* DEALER to BlockProcessor: the signed block */
    zsock_t *pm;        /* DEALER to PeerManager: AnnounceBlock */
    uint8_t *submitted; /* the encoded block with BlockProcessor (owned) */
    size_t submitted_len;
    slot_session_t ss; /* every decision about an own slot */
    uint64_t own_slots;
    uint64_t next_slot;      /* the own slot the slot timer is armed for */
    bool armed;              /* the slot timer is armed */
    uint64_t corr_get_fence; /* the GetFence in flight (0: none) */
    head_state_t head;       /* the head of the slot in progress (its GetHead) */
    pool_txs_t pool;         /* the slot's mempool reply (owned; cleared per slot) */
    uint64_t submitted_txs;  /* txs in the block with BlockProcessor */
    alys_block_t block;      /* built, waiting for the fence; owned, cleared */
    bool have_block;
} prod_t;

static void schedule_next(prod_t *p);
static void act(prod_t *p, ss_action_t a);

/* ---------------------------------------------------------------- requests */

/* Send env (its body set) as ours with corr to sock; whether it went. */
static bool send_env(prod_t *p, zsock_t *sock, uint64_t corr, alys_env_t *env)
{
    env->corr_id = corr;
    env->sender = (char *) alys_actor_name(p->actor);
    return alys_send(sock, env) == 0;
}

static void ask_sync(prod_t *p, uint64_t corr)
{
    Alys__Sync__CanProduceBlocks q = ALYS__SYNC__CAN_PRODUCE_BLOCKS__INIT;
    Alys__Sync__SyncMsg sm = ALYS__SYNC__SYNC_MSG__INIT;
    sm.msg_case = ALYS__SYNC__SYNC_MSG__MSG_CAN_PRODUCE_BLOCKS;
    sm.can_produce_blocks = &q;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_SYNC;
    env.sync = &sm;
    if (!send_env(p, p->sync, corr, &env))
        log_warn("slot %llu: cannot ask SyncActor", (unsigned long long) p->ss.slot);
}

static void ask_head(prod_t *p, uint64_t corr)
{
    Alys__Storage__GetHead q = ALYS__STORAGE__GET_HEAD__INIT;
    q.with_state = true; /* the header and lattice to build on */
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
    sm.get_head = &q;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = &sm;
    if (!send_env(p, p->storage, corr, &env))
        log_warn("slot %llu: cannot ask StorageActor", (unsigned long long) p->ss.slot);
}

/* Txs for this slot's block and the accounts they touch (pool_txs.h). */
static void ask_pool(prod_t *p, uint64_t corr)
{
    Alys__Mempool__GetMempoolTxs q = ALYS__MEMPOOL__GET_MEMPOOL_TXS__INIT;
    q.max_txs = p->cfg->producer_max_block_txs;
    q.max_bytes = ALYS_MAX_BLOCK_BYTES - BUILDER_HEADER_BOUND;
    q.proposer = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, p->genesis.authorities[p->index]};
    Alys__Mempool__MempoolMsg mm = ALYS__MEMPOOL__MEMPOOL_MSG__INIT;
    mm.msg_case = ALYS__MEMPOOL__MEMPOOL_MSG__MSG_GET_MEMPOOL_TXS;
    mm.get_mempool_txs = &q;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_MEMPOOL;
    env.mempool = &mm;
    if (!send_env(p, p->storage, corr, &env))
        log_warn("slot %llu: cannot ask the mempool", (unsigned long long) p->ss.slot);
}

/* Read the durable fence record; asked again at each own slot until read. */
static void ask_fence(prod_t *p)
{
    Alys__Storage__GetFence q = ALYS__STORAGE__GET_FENCE__INIT;
    q.authority = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, p->genesis.authorities[p->index]};
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_FENCE;
    sm.get_fence = &q;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    /* Its own corr space (high bit): the session numbers from 1 upwards. */
    env.corr_id = p->corr_get_fence = (1ULL << 63) | (uint64_t) alys_now_ms();
    env.sender = (char *) alys_actor_name(p->actor);
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = &sm;
    if (alys_send(p->storage, &env) != 0)
        log_warn("cannot ask StorageActor for the fence record");
}

static void take_fence(prod_t *p, const Alys__Storage__Fence *fm)
{
    alys_fence_record_t r = {.any = fm->found, .slot = fm->slot};
    if (fm->found && fm->block_hash.len != ALYS_HASH_LEN) {
        log_error("StorageActor's fence record has a %zu-byte hash: ignored", fm->block_hash.len);
        return;
    }
    if (fm->found)
        memcpy(r.hash, fm->block_hash.data, ALYS_HASH_LEN);
    ss_set_fence(&p->ss, &r);
    p->corr_get_fence = 0;
    if (fm->found)
        log_info("fence record: signed up to slot %llu", (unsigned long long) fm->slot);
    else
        log_info("fence record: nothing signed yet");
}

/* FenceRecord(slot, header hash) for the block built; the reply (or the
 * fence deadline) decides whether it may be signed. */
static void record_fence(prod_t *p, uint64_t corr)
{
    alys_hash_t h;
    alys_header_hash(&p->block.header, h);
    Alys__Storage__FenceRecord q = ALYS__STORAGE__FENCE_RECORD__INIT;
    q.authority = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, p->genesis.authorities[p->index]};
    q.slot = p->block.header.slot;
    q.block_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, h};
    q.height = p->block.header.height;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_FENCE_RECORD;
    sm.fence_record = &q;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    env.storage = &sm;
    if (!send_env(p, p->storage, corr, &env))
        log_warn("slot %llu: cannot send FenceRecord (the deadline will miss the slot)",
                 (unsigned long long) q.slot);
}

/* The FenceRecorded reply of the slot in progress. A refusal carries the
 * stored record: the local copy catches up with it (it only moves up). */
static ss_action_t take_fence_recorded(prod_t *p, uint64_t corr,
                                       const Alys__Storage__FenceRecorded *fr)
{
    if (p->ss.phase != SS_FENCING || corr != p->ss.corr_fence)
        return (ss_action_t){.kind = SS_NONE};
    if (!fr->ok) {
        log_warn("slot %llu: fence record refused by StorageActor (%s; stored record %s%llu)",
                 (unsigned long long) p->ss.slot, fr->reason ? fr->reason : "?",
                 fr->found ? "slot " : "none ", (unsigned long long) fr->slot);
        if (fr->found && fr->block_hash.len == ALYS_HASH_LEN) {
            alys_fence_record_t r = {.any = true, .slot = fr->slot};
            memcpy(r.hash, fr->block_hash.data, ALYS_HASH_LEN);
            ss_set_fence(&p->ss, &r);
        }
    }
    return ss_on_fence_recorded(&p->ss, corr, fr->ok);
}

static void drop_block(prod_t *p)
{
    if (p->have_block)
        alys_block_clear(&p->block);
    p->have_block = false;
}

/* ---------------------------------------------------------------- actions */

static int on_tick(alys_actor_t *actor, void *arg)
{
    (void) actor;
    prod_t *p = arg;
    act(p, ss_tick(&p->ss, (uint64_t) alys_now_ms()));
    return 0;
}

static void missed(prod_t *p, const ss_action_t *a)
{
    char labels[96];
    snprintf(labels, sizeof labels, "reason=\"%s\"", a->reason);
    alys_metric_add(alys_actor_metrics(p->actor), "alys_producer_missed_slots_total", labels,
                    "own slots without a block of ours, by reason", 1);
    alys_actor_event(p->actor, "producer", "slot_missed", "slot=%llu reason=%s",
                     (unsigned long long) a->slot, a->reason);
    log_info("slot %llu: missed (%s)", (unsigned long long) a->slot, a->reason);
}

/* Build on the head of this slot's GetHead; the fence comes next. */
static ss_action_t build(prod_t *p, uint64_t slot)
{
    if (!p->head.valid) {
        log_warn("slot %llu: no usable head from StorageActor: nothing built",
                 (unsigned long long) slot);
        return ss_build_failed(&p->ss, slot);
    }
    builder_input_t in;
    bool with_txs = head_state_input(&p->head, &p->genesis, slot,
                                     (uint64_t) alys_now_ms() ^ (uint64_t) getpid(), &p->pool,
                                     p->cfg->producer_max_block_txs, &in);
    if (!with_txs && p->pool.valid)
        log_info("slot %llu: the mempool's txs were selected on another head: none taken",
                 (unsigned long long) slot);
    char err[256] = "";
    drop_block(p);
    builder_stats_t st;
    builder_result_t r = builder_assemble(&in, &p->block, &st, err, sizeof err);
    pool_txs_clear(&p->pool);
    if (r != BUILD_OK) {
        log_error("slot %llu: build failed (%s): %s", (unsigned long long) slot,
                  builder_result_name(r), err);
        return ss_build_failed(&p->ss, slot);
    }
    p->have_block = true;
    if (st.considered)
        log_info("slot %llu: %u of %u txs in the block (skipped: nonce %u, balance %u, size %u, "
                 "after its sender's %u)",
                 (unsigned long long) slot, st.included, st.considered, st.skipped_nonce,
                 st.skipped_balance, st.skipped_size, st.skipped_sender);
    alys_hash_t h;
    alys_header_hash(&p->block.header, h);
    return ss_built(&p->ss, slot, h, (uint64_t) alys_now_ms());
}

static void drop_submitted(prod_t *p)
{
    free(p->submitted);
    p->submitted = NULL;
    p->submitted_len = 0;
}

/* The signed block to BlockProcessor: a ProcessBatch of one, like any
 * other block; the answer (or the submit deadline) ends the slot. */
static ss_action_t submit(prod_t *p, uint64_t slot)
{
    drop_submitted(p);
    p->submitted_txs = p->block.tx_count;
    if (alys_block_encode(&p->block, &p->submitted, &p->submitted_len) != 0) {
        p->submitted = NULL;
        return ss_not_submitted(&p->ss, slot, "encode_failed");
    }
    uint64_t timeout = p->genesis.slot_duration_ms;
    uint64_t corr = ss_submitted(&p->ss, slot, (uint64_t) alys_now_ms(), timeout);
    ProtobufCBinaryData blk = {p->submitted_len, p->submitted};
    Alys__Processor__ProcessBatch pb = ALYS__PROCESSOR__PROCESS_BATCH__INIT;
    pb.batch_id = corr;
    pb.n_blocks = 1;
    pb.blocks = &blk;
    pb.origin = "producer";
    Alys__Processor__ProcessorMsg pm = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    pm.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PROCESS_BATCH;
    pm.process_batch = &pb;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &pm;
    if (!send_env(p, p->processor, corr, &env))
        log_warn("slot %llu: cannot send the block to BlockProcessor (the deadline misses it)",
                 (unsigned long long) slot);
    if (alys_actor_add_timer(p->actor, (size_t) timeout + 1, 1, on_tick, p) < 0)
        log_warn("slot %llu: no submit deadline timer", (unsigned long long) slot);
    return (ss_action_t){.kind = SS_NONE};
}

/* The durable record names the block: sign it and hand it over. */
static ss_action_t sign_block(prod_t *p, uint64_t slot)
{
    if (!p->have_block || p->block.header.slot != slot)
        return ss_not_submitted(&p->ss, slot, "sign_failed");
    if (builder_sign(&p->genesis, &p->ss.fence, &p->block, p->seckey) != 0) {
        log_error("slot %llu: the block does not sign under the fence record",
                  (unsigned long long) slot);
        drop_block(p);
        return ss_not_submitted(&p->ss, slot, "sign_failed");
    }
    char hex[2 * ALYS_HASH_LEN + 1];
    alys_hex(p->ss.fence.hash, ALYS_HASH_LEN, hex);
    log_info("slot %llu: block height %llu hash %.16s signed under the durable fence record",
             (unsigned long long) slot, (unsigned long long) p->block.header.height, hex);
    ss_action_t a = submit(p, slot);
    drop_block(p);
    return a;
}

/* PeerManager pushes the committed block to peers (no reply). */
static void announce(prod_t *p)
{
    Alys__Peer__AnnounceBlock ab = ALYS__PEER__ANNOUNCE_BLOCK__INIT;
    ab.block = (ProtobufCBinaryData){p->submitted_len, p->submitted};
    Alys__Peer__PeerMsg pm = ALYS__PEER__PEER_MSG__INIT;
    pm.msg_case = ALYS__PEER__PEER_MSG__MSG_ANNOUNCE_BLOCK;
    pm.announce_block = &ab;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.sender = (char *) alys_actor_name(p->actor);
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PEER;
    env.peer = &pm;
    if (alys_send(p->pm, &env) != 0)
        log_warn("cannot announce the block to PeerManager");
}

/* BlockProcessor's answer to our ProcessBatch (or an error reply). */
static ss_action_t take_processed(prod_t *p, const alys_env_t *env)
{
    bool committed = false;
    const char *why = "error reply";
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR) {
        const Alys__Processor__BatchProcessed *bp = env->processor->batch_processed;
        committed = !bp->failed && bp->committed == 1;
        why = bp->reason && *bp->reason ? bp->reason : "not committed";
    } else if (env->error && env->error->message) {
        why = env->error->message;
    }
    uint64_t slot = 0;
    ss_action_t a = ss_on_processed(&p->ss, env->corr_id, committed, &slot);
    if (committed) {
        alys_metric_add(alys_actor_metrics(p->actor), "alys_producer_blocks_total", NULL,
                        "blocks this producer signed that storage committed", 1);
        alys_metric_add(alys_actor_metrics(p->actor), "alys_producer_block_txs_total", NULL,
                        "txs in the blocks this producer signed that storage committed",
                        p->submitted_txs);
        alys_actor_event(p->actor, "producer", "block_produced", "slot=%llu",
                         (unsigned long long) slot);
        log_info("slot %llu: block committed (%llu txs); announcing it",
                 (unsigned long long) slot, (unsigned long long) p->submitted_txs);
        announce(p);
    } else {
        log_warn("slot %llu: block not committed: %s", (unsigned long long) slot, why);
    }
    drop_submitted(p);
    return a;
}

static void act(prod_t *p, ss_action_t a)
{
    switch (a.kind) {
    case SS_NONE: break;
    case SS_ASK:
        pool_txs_clear(&p->pool);
        ask_sync(p, a.corr_sync);
        ask_head(p, a.corr_head);
        /* The decision deadline: the session decides at wait_ms whatever came. */
        if (alys_actor_add_timer(p->actor, (size_t) p->ss.wait_ms + 1, 1, on_tick, p) < 0) {
            act(p, ss_abandon(&p->ss, "timer_failed"));
        } else if (p->cfg->producer_max_block_txs > 0) {
            ask_pool(p, a.corr_pool);
        } else {
            /* Empty blocks by configuration: nothing to wait for. */
            act(p, ss_on_pool(&p->ss, a.corr_pool, (uint64_t) alys_now_ms()));
            return;
        }
        break;
    case SS_BUILD: act(p, build(p, a.slot)); return;
    case SS_RECORD_FENCE:
        record_fence(p, a.corr_fence);
        /* The fence deadline: the session misses the slot (fence_unavailable)
         * at fence_timeout_ms without an ok, and a late ok changes nothing. */
        if (alys_actor_add_timer(p->actor, (size_t) p->ss.fence_timeout_ms + 1, 1, on_tick, p) < 0)
            act(p, ss_abandon(&p->ss, "timer_failed"));
        break;
    case SS_SIGN_SUBMIT: act(p, sign_block(p, a.slot)); return;
    case SS_MISSED:
        if (!p->ss.submitting)
            drop_submitted(p);
        /* A busy miss names a new slot while this one is still fencing:
         * its block stays. */
        if (p->ss.phase == SS_IDLE)
            drop_block(p);
        missed(p, &a);
        break;
    }
    /* Once the slot's work is over, wait for the next own slot. */
    if (p->ss.phase == SS_IDLE && !p->armed)
        schedule_next(p);
}

static int on_slot_start(alys_actor_t *actor, void *arg)
{
    (void) actor;
    prod_t *p = arg;
    uint64_t now = (uint64_t) alys_now_ms();
    uint64_t slot = p->next_slot; /* a late timer: the decision says too_late */
    p->armed = false;
    p->own_slots++;
    if (!p->ss.fence_loaded)
        ask_fence(p);
    alys_metric_add(alys_actor_metrics(p->actor), "alys_producer_own_slots_total", NULL,
                    "own Aura slots whose start this producer saw", 1);
    act(p, ss_slot_start(&p->ss, slot, now));
    return 0;
}

static void schedule_next(prod_t *p)
{
    uint64_t now = (uint64_t) alys_now_ms(), slot, start;
    if (!aura_next_own_slot(&p->genesis, p->index, now + 1, &slot, &start)) {
        log_error("no next own slot can be computed: the producer idles");
        return;
    }
    size_t delay = start > now ? (size_t) (start - now) : 1;
    p->next_slot = slot;
    if (alys_actor_add_timer(p->actor, delay, 1, on_slot_start, p) < 0)
        log_error("cannot arm the slot timer: the producer idles");
    else
        p->armed = true;
}

/* ---------------------------------------------------------------- replies */

/* The slot's mempool reply (txs and accounts), kept to build with. An
 * error reply or a reply that is not taken means a block without txs. */
static ss_action_t take_pool(prod_t *p, const alys_env_t *env, uint64_t now)
{
    if (p->ss.phase != SS_ASKING || env->corr_id != p->ss.corr_pool)
        return (ss_action_t){.kind = SS_NONE};
    char err[256] = "";
    if (env->body_case != ALYS__BUS__ENVELOPE__BODY_MEMPOOL)
        log_warn("slot %llu: the mempool refused: %s", (unsigned long long) p->ss.slot,
                 env->error && env->error->message ? env->error->message : "?");
    else if (pool_txs_take(&p->pool, env->mempool->mempool_txs, p->cfg->producer_max_block_txs,
                           p->genesis.authorities[p->index], err, sizeof err) != 0)
        log_warn("slot %llu: %s", (unsigned long long) p->ss.slot, err);
    return ss_on_pool(&p->ss, env->corr_id, now);
}

/* The head of the slot in progress (its GetHead), kept to build on. */
static ss_action_t take_head(prod_t *p, uint64_t corr, const Alys__Storage__Head *m, uint64_t now)
{
    if (p->ss.phase == SS_ASKING && corr == p->ss.corr_head) {
        char err[256] = "";
        if (head_state_take(&p->head, &p->genesis, m, err, sizeof err) != 0)
            log_warn("slot %llu: %s", (unsigned long long) p->ss.slot, err);
    }
    return ss_on_head(&p->ss, corr, m->slot, now);
}

static void take_reply(prod_t *p, zsock_t *sock)
{
    alys_env_t *env = NULL;
    if (alys_recv(sock, &env) != 0)
        return;
    uint64_t now = (uint64_t) alys_now_ms();
    ss_action_t a = {.kind = SS_NONE};
    if (env->reply && env->body_case == ALYS__BUS__ENVELOPE__BODY_SYNC &&
        env->sync->msg_case == ALYS__SYNC__SYNC_MSG__MSG_CAN_PRODUCE_REPLY)
        a = ss_on_can_produce(&p->ss, env->corr_id, env->sync->can_produce_reply->can_produce, now);
    else if (env->reply && env->body_case == ALYS__BUS__ENVELOPE__BODY_STORAGE &&
             env->storage->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_HEAD)
        a = take_head(p, env->corr_id, env->storage->head, now);
    else if (env->reply && env->corr_id == p->ss.corr_pool &&
             (env->body_case == ALYS__BUS__ENVELOPE__BODY_ERROR ||
              (env->body_case == ALYS__BUS__ENVELOPE__BODY_MEMPOOL &&
               env->mempool->msg_case == ALYS__MEMPOOL__MEMPOOL_MSG__MSG_MEMPOOL_TXS)))
        a = take_pool(p, env, now);
    else if (env->reply && env->body_case == ALYS__BUS__ENVELOPE__BODY_STORAGE &&
             env->storage->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_FENCE_RECORDED)
        a = take_fence_recorded(p, env->corr_id, env->storage->fence_recorded);
    else if (env->reply && p->ss.submitting && env->corr_id == p->ss.corr_submit &&
             (env->body_case == ALYS__BUS__ENVELOPE__BODY_ERROR ||
              (env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR &&
               env->processor->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED)))
        a = take_processed(p, env);
    else if (env->reply && p->corr_get_fence && env->corr_id == p->corr_get_fence &&
             env->body_case == ALYS__BUS__ENVELOPE__BODY_STORAGE &&
             env->storage->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_FENCE)
        take_fence(p, env->storage->fence);
    /* Anything else (an error reply, a stray message) is dropped; the
     * session's deadline decides without it. */
    alys_env_free(&env);
    act(p, a);
}

static int on_reply(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    prod_t *p = arg;
    while (zsock_events(sock) & ZMQ_POLLIN)
        take_reply(p, sock);
    return 0;
}

/* ---------------------------------------------------------------- mailbox */

static void reply_status(prod_t *p, zframe_t *from, const alys_env_t *req)
{
    producer_status_t st;
    producer_status_fill(&st, &p->ss, true, p->armed ? p->next_slot : 0);
    Alys__Producer__ProducerMsg pm = ALYS__PRODUCER__PRODUCER_MSG__INIT;
    pm.msg_case = ALYS__PRODUCER__PRODUCER_MSG__MSG_PRODUCER_STATUS;
    pm.producer_status = &st.msg;
    alys_env_t rep = ALYS__BUS__ENVELOPE__INIT;
    rep.sender = (char *) alys_actor_name(p->actor);
    rep.body_case = ALYS__BUS__ENVELOPE__BODY_PRODUCER;
    rep.producer = &pm;
    if (alys_reply(alys_actor_mailbox(p->actor), from, req, &rep) != 0)
        log_warn("cannot answer a status request");
}

static int on_mailbox(alys_actor_t *actor, zframe_t *from, alys_env_t *env, void *arg)
{
    prod_t *p = arg;
    zsock_t *mb = alys_actor_mailbox(actor);
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PRODUCER &&
        env->producer->msg_case == ALYS__PRODUCER__PRODUCER_MSG__MSG_GET_PRODUCER_STATUS)
        reply_status(p, from, env);
    else if (env->corr_id)
        alys_reply_error(mb, from, env, ALYS_ERR_BAD_REQUEST, "alys-producer does not serve %s",
                         alys_env_body_name(env));
    return 0;
}

/* Every counter exists at 0 from the start, each known miss reason too, so
 * that rate() and increase() work before the first event (OPERATIONS.md). */
static void declare_metrics(prod_t *p)
{
    alys_metrics_t *m = alys_actor_metrics(p->actor);
    static const char *const other[] = {"fence_unknown", "fence_refused", "fence_unavailable",
                                        "build_failed",  "refused",       "not_committed",
                                        "sign_failed",   "encode_failed", "timer_failed"};
    char labels[96];
    alys_metric_declare(m, "alys_producer_blocks_total", NULL,
                        "blocks this producer signed that storage committed");
    alys_metric_declare(m, "alys_producer_block_txs_total", NULL,
                        "txs in the blocks this producer signed that storage committed");
    alys_metric_declare(m, "alys_producer_own_slots_total", NULL,
                        "own Aura slots whose start this producer saw");
    for (int d = 0; d < AURA_DECISION_COUNT; d++) {
        if (!aura_decision_is_miss((aura_decision_t) d))
            continue;
        snprintf(labels, sizeof labels, "reason=\"%s\"", aura_decision_name((aura_decision_t) d));
        alys_metric_declare(m, "alys_producer_missed_slots_total", labels,
                            "own slots without a block of ours, by reason");
    }
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", other[i]);
        alys_metric_declare(m, "alys_producer_missed_slots_total", labels,
                            "own slots without a block of ours, by reason");
    }
}

/* The mailbox: ipc://<run_dir>/producer.sock, derived as common/config
 * derives the others, until [endpoints] producer exists there. Without it
 * the producer still works (nobody can ask its status). */
static void bind_mailbox(prod_t *p)
{
    char ep[ALYS_PATH_MAX + 32];
    int n = snprintf(ep, sizeof ep, "ipc://%s/producer.sock", p->cfg->run_dir);
    if (n < 0 || (size_t) n >= sizeof ep || alys_actor_bind(p->actor, ep, on_mailbox, p) != 0)
        log_warn("cannot bind the mailbox %s: status requests will not be answered", ep);
}

/* ---------------------------------------------------------------- setup */

/* Take --key-file FILE / --key-file=FILE out of argv (the common runtime
 * refuses options it does not know). Returns 0, or -1 on a usage error. */
static int take_key_file(int *argc, char **argv, const char **path)
{
    int out = 0;
    *path = NULL;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--key-file") == 0) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "alys-producer: --key-file needs a FILE\n");
                return -1;
            }
            *path = argv[++i];
        } else if (strncmp(argv[i], "--key-file=", 11) == 0) {
            *path = argv[i] + 11;
        } else {
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

static int load_identity(prod_t *p, const char *key_file)
{
    char err[512];
    if (!*p->cfg->genesis_file) {
        log_error("genesis_file is not set: the producer needs the authorities");
        return -1;
    }
    if (alys_genesis_load(p->cfg->genesis_file, &p->genesis, err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    p->have_genesis = true;
    if (p->genesis.slot_duration_ms == 0 || p->genesis.authority_count == 0) {
        log_error("genesis has no slot duration or no authorities");
        return -1;
    }
    int idx = keyfile_load(key_file, &p->genesis, p->seckey, err, sizeof err);
    if (idx < 0) {
        log_error("%s", err);
        return -1;
    }
    p->index = (uint32_t) idx;
    uint64_t dur = p->genesis.slot_duration_ms;
    ss_init(&p->ss, &p->genesis, p->index, dur / WAIT_DIVISOR, dur / LATE_DIVISOR,
            dur / FENCE_DIVISOR);
    log_info("authority %u of %u, slot %llu ms", p->index, p->genesis.authority_count,
             (unsigned long long) p->genesis.slot_duration_ms);
    return 0;
}

static int connect_peers(prod_t *p)
{
    char id[ALYS_NAME_MAX + 16];
    snprintf(id, sizeof id, "%s", alys_actor_name(p->actor));
    p->sync = alys_dealer_connect(p->cfg->ep_sync, id);
    p->storage = alys_dealer_connect(p->cfg->ep_storage, id);
    p->processor = alys_dealer_connect(p->cfg->ep_block_processor, id);
    p->pm = alys_dealer_connect(p->cfg->ep_peer_manager, id);
    if (!p->sync || !p->storage || !p->processor || !p->pm)
        return -1;
    if (alys_actor_add_reader(p->actor, p->sync, on_reply, p) != 0 ||
        alys_actor_add_reader(p->actor, p->storage, on_reply, p) != 0 ||
        alys_actor_add_reader(p->actor, p->processor, on_reply, p) != 0 ||
        alys_actor_add_reader(p->actor, p->pm, on_reply, p) != 0)
        return -1;
    return 0;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    if (alys_cli_asks_version(argc, argv)) {
        alys_print_version("alys-producer");
        return 0;
    }
    if (wants_help(argc, argv)) {
        printf("usage: alys-producer --config FILE --key-file FILE [--name NAME]\n"
               "  --config FILE    the node's config (genesis_file, run_dir, endpoints)\n"
               "  --key-file FILE  the authority's secret key: 64 hex digits on one line\n"
               "                   (a line of alys-chaingen's keys file), mode 0600; a key\n"
               "                   that is not a genesis authority is refused (exit 78)\n"
               "Decides each own Aura slot; when allowed builds a block on the head,\n"
               "records it in StorageActor's signing fence, signs it and hands it to\n"
               "BlockProcessor; once committed PeerManager pushes it to peers.\n"
               "Without --key-file the key is [producer] key_file of the config.\n");
        return 0;
    }
    const char *key_file = NULL;
    if (argc > MAX_ARGS || take_key_file(&argc, argv, &key_file) != 0)
        return 2;
    prod_t p;
    memset(&p, 0, sizeof p);
    p.actor = alys_actor_new("producer", argc, argv);
    if (!p.actor)
        return 2;
    p.cfg = alys_actor_config(p.actor);
    if (!key_file)
        key_file = p.cfg->producer_key_file;
    if (!*key_file) {
        log_error("no key: set [producer] key_file (or --key-file FILE): the authority's "
                  "secret key, 64 hex digits, mode 0600");
        alys_actor_destroy(&p.actor);
        return KEYFILE_EXIT_CONFIG;
    }
    int rc = load_identity(&p, key_file) != 0 ? KEYFILE_EXIT_CONFIG : 0;
    if (rc == 0 && connect_peers(&p) != 0) {
        log_error("cannot connect to SyncActor/StorageActor");
        rc = 1;
    }
    if (rc == 0) {
        declare_metrics(&p);
        bind_mailbox(&p);
        ask_fence(&p);
        schedule_next(&p);
        alys_actor_ready(p.actor);
        rc = alys_actor_run(p.actor) == 0 ? 0 : 1;
        log_info("stopping: %llu own slots, %llu produced, %llu missed (last: %s)",
                 (unsigned long long) p.own_slots, (unsigned long long) p.ss.produced,
                 (unsigned long long) p.ss.missed,
                 p.ss.last_missed_reason ? p.ss.last_missed_reason : "none");
    }
    explicit_bzero(p.seckey, sizeof p.seckey);
    drop_block(&p);
    pool_txs_clear(&p.pool);
    alys_actor_destroy(&p.actor);
    zsock_destroy(&p.sync);
    zsock_destroy(&p.storage);
    zsock_destroy(&p.processor);
    zsock_destroy(&p.pm);
    drop_submitted(&p);
    if (p.have_genesis)
        alys_genesis_clear(&p.genesis);
    return rc;
}
