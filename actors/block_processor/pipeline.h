/*  pipeline.h: BlockProcessorActor's pure logic, no sockets, no clock.
 *
 *  A batch (ProcessBatch) goes through
 *
 *    admission   decode every block (bounded), header hash, linkage between
 *                consecutive blocks, expected header hashes; stops at the
 *                first failure (nothing after it is ever needed)
 *    validation  the admitted blocks are cut into tasks of about chunk_sigs
 *                signatures; tasks go to free workers (the ZeroMQ guide's
 *                load-balancing pattern: a worker has `capacity` credits,
 *                each task takes one, each result gives one back; the free
 *                worker that waited longest gets the next task), oldest
 *                batch first. Workers that go silent are dropped and tasks
 *                held too long are re-dispatched; the first result of a task
 *                wins, later ones are ignored. With no worker for
 *                inline_after_ms, or in sequential mode, tasks are validated
 *                in-process instead (pipeline_run_inline).
 *    storage     once the verdicts of a batch's valid prefix are known, the
 *                prefix goes to StorageActor (ExecuteBatch; GetHead when the
 *                prefix is empty). One storage request at a time and batches
 *                strictly in admission order, so storage always executes in
 *                height order; validation of later batches goes on meanwhile
 *                (unless overlap is off: the seed's sequential behaviour).
 *                Requests are resent after storage_timeout_ms or when the
 *                caller reports that storage reconnected (it restarted);
 *                storage's ExecuteBatch is idempotent for committed blocks.
 *    reply       storage's answer and the batch's own failure (if any) make
 *                the outcome handed to ops->reply; the batch is freed.
 *
 *  The failing block of a batch is the first block, in height order, that
 *  fails any check; at one block the checks rank: decoding, the stateless
 *  checks, linkage to the previous block, the expected hash. (Stateless
 *  before linkage so a batch boundary does not change the reason: the first
 *  block's link to the head is checked by storage, after validation.)
 *
 *  Time is an input (now_ms, monotonic) of every call, so tests drive the
 *  timeouts without sleeping.
 *
 *  Ownership: pipeline_new copies the config; the genesis is borrowed and
 *  must outlive the pipeline (pipeline_set_genesis may swap it while no batch
 *  is in flight). Block bytes given to pipeline_submit are copied. The
 *  reply_ctx given to pipeline_submit belongs to the pipeline when it returns
 *  PL_ACCEPTED or PL_DUPLICATE (then the one it replaces is released) and is
 *  released through ops->free_reply_ctx exactly once; on any other result it
 *  stays the caller's. Bytes passed to ops callbacks are borrowed for the
 *  duration of the call. The wall clock is read only for the future-slot
 *  rule of the linkage check.
 */
#ifndef ALYS_PIPELINE_H
#define ALYS_PIPELINE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"

#define PL_MAX_WORKERS     256
#define PL_ID_MAX          128 /* worker / requester routing id, bytes */
#define PL_MAX_CAPACITY    16  /* tasks one worker may hold at once */
#define PL_REASON_MAX      40
#define PL_ORIGIN_MAX      64
/* Verdict code of an expected-hash mismatch ("header_mismatch"); beyond the
 * alys_block_error_t range on purpose: it is the requester's rule, not the
 * chain's. */
#define PL_HEADER_MISMATCH ALYS_BLOCK_ERROR_COUNT

typedef struct pipeline pipeline_t;

typedef struct {
    uint32_t max_batches;        /* admitted and not yet answered */
    uint32_t max_batch_blocks;   /* blocks per ProcessBatch */
    size_t max_batch_bytes;      /* sum of block bytes per ProcessBatch */
    uint32_t chunk_sigs;         /* target signatures per task */
    uint32_t chunk_max_blocks;   /* and at most this many blocks */
    uint32_t task_timeout_ms;    /* re-dispatch a task held this long */
    uint32_t worker_timeout_ms;  /* drop a worker silent this long */
    uint32_t inline_after_ms;    /* no worker this long: validate in-process */
    uint32_t storage_timeout_ms; /* resend a storage request after this */
    uint32_t storage_retry_ms;   /* after storage answered with an error */
    bool sequential;             /* in-process, one block per task, no workers */
    bool overlap;                /* validate later batches while storage works */
    uint64_t id_base;            /* first task id, storage request id and batch
                                    sequence: make it unique per incarnation (the
                                    shell draws it at random) so that a reply meant
                                    for a dead incarnation never matches; the core
                                    draws nothing itself. 0 counts as 1. */
} pl_config_t;

/* Defaults (parallel): 4 batches, 1024 blocks, 6 MiB, 256 sigs / 64 blocks
 * per task, timeouts 2000 ms, storage 15000 / 200 ms, overlap on. */
void pipeline_config_default(pl_config_t *c);

/* What a requester gets back (BatchProcessed), and what storage reported
 * (the caller of pipeline_storage_result fills committed, head_*, failed*,
 * reason, detail, tx_index, checkpoint_height; 0 / has_head for a Head). */
typedef struct {
    uint64_t batch_id;
    uint32_t committed;     /* leading blocks of the batch now in the chain */
    uint64_t committed_txs; /* txs in the committed blocks */
    uint32_t received;      /* blocks in the batch */
    uint64_t head_height;
    uint8_t head_hash[ALYS_HASH_LEN];
    bool has_head; /* head_hash and state_root are set */
    uint8_t state_root[ALYS_HASH_LEN];
    bool failed;
    uint64_t failed_height;
    uint8_t failed_hash[ALYS_HASH_LEN];
    bool has_failed_hash; /* false when the block does not decode */
    char reason[PL_REASON_MAX];
    char detail[160];
    int32_t tx_index;
    uint64_t checkpoint_height;
    uint32_t reorg_depth; /* blocks of the old branch undone (a reorg batch), else 0 */
    int64_t duration_ms;  /* admission to reply */
    char origin[PL_ORIGIN_MAX];
} pl_outcome_t;

/* A reorg batch (fork choice): its blocks start at ancestor_height + 1 and
 * replace the chain above the ancestor, in one storage operation (see
 * proto/storage.proto ExecuteBatch). The pipeline validates it like any
 * batch and hands it to storage with these fields. */
typedef struct {
    uint64_t ancestor_height;
    uint8_t ancestor_hash[ALYS_HASH_LEN];
} pl_reorg_t;

typedef struct {
    /* Send a ValidateTask to worker `id` on socket `sock` (the caller's tag:
     * local or remote ROUTER). Return 0, or -1 if unreachable (the worker is
     * then dropped and its tasks go back to the queue). */
    int (*send_task)(void *ctx, int sock, const char *id, uint64_t task_id,
                     const ProtobufCBinaryData *blocks, size_t n);
    /* Send ExecuteBatch{batch_seq, blocks, reorg fields when reorg is not
     * NULL} (n > 0) or GetHead (n == 0) with correlation id req_id. Return
     * 0 or -1 (then retried like a timeout). */
    int (*send_storage)(void *ctx, uint64_t req_id, uint64_t batch_seq,
                        const ProtobufCBinaryData *blocks, size_t n, const char *origin,
                        const pl_reorg_t *reorg);
    /* Answer the requester; reply_ctx is the one given to pipeline_submit. */
    void (*reply)(void *ctx, void *reply_ctx, const pl_outcome_t *o);
    /* Release a reply_ctx (after reply, refusal or replacement). May be NULL. */
    void (*free_reply_ctx)(void *reply_ctx);
} pl_ops_t;

typedef enum {
    PL_ACCEPTED = 0,
    PL_DUPLICATE,   /* same requester + batch_id in flight: reply_ctx replaced */
    PL_BUSY,        /* max_batches in flight: back off and resend */
    PL_BAD_REQUEST, /* empty, over-size, expected hashes do not match the blocks */
    PL_UNAVAILABLE  /* no genesis */
} pl_submit_t;

typedef enum {
    PL_WORKER_OK = 0,        /* registered (or known and alive) */
    PL_WORKER_NEEDS_GENESIS, /* send it a WorkerWelcome; not registered yet */
    PL_WORKER_REFUSED        /* the pool is full */
} pl_worker_t;

pipeline_t *pipeline_new(const pl_config_t *cfg, const alys_genesis_t *genesis,
                         const pl_ops_t *ops, void *ctx);
void pipeline_destroy(pipeline_t **self_p);
void pipeline_set_genesis(pipeline_t *self, const alys_genesis_t *genesis);

/* A ProcessBatch from `requester` (routing id). expected may be NULL / 0.
 * On anything but PL_ACCEPTED / PL_DUPLICATE, err says why. */
pl_submit_t pipeline_submit(pipeline_t *self, const char *requester, uint64_t batch_id,
                            const char *origin, const ProtobufCBinaryData *blocks, size_t n,
                            const ProtobufCBinaryData *expected, size_t n_expected,
                            void *reply_ctx, int64_t now_ms, char *err, size_t errlen);

/* pipeline_submit for a reorg batch (reorg copied; NULL = a plain batch).
 * That blocks[0] links to the ancestor is storage's check, as the link of
 * a plain batch to the head is. */
pl_submit_t pipeline_submit_reorg(pipeline_t *self, const char *requester, uint64_t batch_id,
                                  const char *origin, const ProtobufCBinaryData *blocks, size_t n,
                                  const ProtobufCBinaryData *expected, size_t n_expected,
                                  const pl_reorg_t *reorg, void *reply_ctx, int64_t now_ms,
                                  char *err, size_t errlen);

/* A WorkerReady (ready = true: the worker holds nothing) or WorkerHeartbeat
 * (queued = tasks it holds). A known id with a new pid restarted: its old
 * tasks are re-dispatched. */
pl_worker_t pipeline_worker_seen(pipeline_t *self, int sock, const char *id, int32_t pid,
                                 uint32_t capacity, uint32_t queued, bool has_genesis, bool ready,
                                 int64_t now_ms);

/* A ValidateResult: verdicts for the task's blocks in order, stopping at
 * the first failure. Returns true if it was used, false if ignored (unknown,
 * finished or cancelled task, or more verdicts than blocks). */
bool pipeline_task_result(pipeline_t *self, int sock, const char *id, uint64_t task_id,
                          const alys_verdict_t *verdicts, size_t n, int64_t now_ms);

/* Storage answered request req_id (a BatchResult or Head, converted into
 * r). Returns true if it matched the outstanding request. */
bool pipeline_storage_result(pipeline_t *self, uint64_t req_id, const pl_outcome_t *r, int64_t now_ms);
/* Storage answered req_id with an error: retry after storage_retry_ms. */
void pipeline_storage_error(pipeline_t *self, uint64_t req_id, int64_t now_ms);
/* Storage (re)connected: resend the outstanding request now. */
void pipeline_storage_reconnected(pipeline_t *self, int64_t now_ms);

/* Timeouts (tasks, workers, storage) and dispatch. Call every ~100 ms. */
void pipeline_tick(pipeline_t *self, int64_t now_ms);

/* In-process validation: true when there is a task to validate here now
 * (sequential mode, or no worker for inline_after_ms). */
bool pipeline_inline_wanted(pipeline_t *self, int64_t now_ms);
/* Validate queued tasks in-process until max_blocks blocks were checked.
 * Returns the number of blocks checked. */
size_t pipeline_run_inline(pipeline_t *self, size_t max_blocks, int64_t now_ms);

/* Introspection (metrics, tests). */
size_t pipeline_worker_count(const pipeline_t *self);
size_t pipeline_batch_count(const pipeline_t *self);
uint32_t pipeline_worker_credits(const pipeline_t *self, int sock, const char *id);

/* Name of a verdict code: alys_block_error_name, or "header_mismatch". */
const char *pipeline_reason_name(uint32_t code);

#endif
