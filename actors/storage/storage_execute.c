/*  storage_execute.c: execution of a batch of blocks and its commit.
 *
 *  Blocks are decoded, linked to the head (or acknowledged as already
 *  committed), their tx root checked (alys_block_check_tx_root), then
 *  executed in order against a view of the committed state (an in-memory
 *  overlay over RocksDB). The batch stops at the first failing block. Everything of the blocks before it
 *  (headers, bodies, hash index, undo records, checkpoints, the state changes
 *  from the overlay, undo and checkpoint pruning, the new head and lattice)
 *  goes into ONE WriteBatch; the in-memory head moves only after RocksDB
 *  applied it.
 *
 *  The batch machinery (storage_batch_t, storage_internal.h) is shared with
 *  storage_reorg.c: a reorg starts the same batch from its ancestor instead
 *  of the head, after staging the undo of the old branch in the same
 *  overlay and WriteBatch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage_internal.h"
#include "util.h"


/* on_change of the view: the account's value before the block. Capacity
 * was reserved before execution, so this never allocates. */
static void undo_collect(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                         const alys_account_t *before, const alys_account_t *after)
{
    (void) after;
    storage_batch_t *b = ctx;
    storage_undo_append(&b->undo, pubkey, before);
}

/* ------------------------------------------------------------ one block */

/* Record the failure of block (expected) height h in the result; stop. */
static bool batch_fail(storage_batch_t *b, uint64_t h, const alys_hash_t hash, const alys_verdict_t *v)
{
    storage_batch_result_t *out = b->out;
    out->failed = true;
    out->failed_height = h;
    if (hash)
        memcpy(out->failed_hash, hash, ALYS_HASH_LEN);
    out->verdict = *v;
    return false;
}

static bool batch_fail_internal(storage_batch_t *b, uint64_t h, const alys_hash_t hash,
                                const char *what)
{
    alys_verdict_t v = {.code = ALYS_BLOCK_INTERNAL_ERROR, .tx_index = -1};
    snprintf(v.detail, sizeof v.detail, "%s", what);
    return batch_fail(b, h, hash, &v);
}

/* A block at or below the head: the committed one (acknowledge) or a fork. */
static bool accept_duplicate(storage_batch_t *b, const alys_block_t *blk, const alys_hash_t hash)
{
    uint64_t h = blk->header.height;
    uint64_t at;
    char err[160];
    int rc = storage_find_block(b->self, hash, &at);
    if (rc < 0)
        return batch_fail_internal(b, h, hash, "hash index read failed");
    if (rc == 1 && at == h) {
        b->out->already_committed++;
        return true;
    }
    alys_hash_t stored = {0};
    alys_header_t sh;
    if (h == 0 || storage_load_header(b->self, h, &sh, stored, err, sizeof err) != 1)
        memset(stored, 0, sizeof stored);
    char got[17], want[17];
    alys_hex(hash, 8, got);
    alys_hex(stored, 8, want);
    alys_verdict_t v = {.code = ALYS_BLOCK_PARENT_MISMATCH, .tx_index = -1};
    snprintf(v.detail, sizeof v.detail,
             "block %llu %s.. conflicts with committed block %llu %s.. (fork below head %llu; "
             "roll back first)",
             (unsigned long long) h, got, (unsigned long long) h, want,
             (unsigned long long) b->self->head.height);
    return batch_fail(b, h, hash, &v);
}

/* Everything of an executed block except the state (written from the
 * overlay at commit) into the write batch. */
static bool stage_block(storage_batch_t *b, const ProtobufCBinaryData *raw, const alys_block_t *blk,
                        const alys_hash_t hash, const uint8_t *henc, size_t hlen)
{
    storage_t *self = b->self;
    const storage_policy_t *p = &self->policy;
    uint64_t h = blk->header.height;
    uint8_t hkey[HEIGHT_KEY_LEN];
    put_be64(hkey, h);
    storage_wb_put_height(b->wb, self, CF_HEADERS, h, henc, hlen);
    storage_wb_put_height(b->wb, self, CF_BODIES, h, raw->data, raw->len);
    rocksdb_writebatch_put_cf(b->wb, self->db.cf[CF_HASH_INDEX], (const char *) hash,
                              ALYS_HASH_LEN, (const char *) hkey, sizeof hkey);
    if (p->max_reorg_depth > 0) {
        storage_undo_finish(&b->undo);
        storage_wb_put_height(b->wb, self, CF_UNDO, h, b->undo.bytes, b->undo.len);
    }
    bool cp_due = p->checkpoint_interval && p->max_checkpoints && h % p->checkpoint_interval == 0;
    if (!cp_due)
        return true;
    if (storage_wb_put_checkpoint(b->wb, self, &blk->header, hash, b->progress) != 0)
        return false;
    return storage_cps_push(&b->cps, h) == 0;
}

static void observe_exec(storage_t *self, int64_t t0_us)
{
    if (self->metrics)
        alys_metric_observe(self->metrics, "alys_block_execution_duration_seconds", NULL,
                            "Execution of one block against the state (storage)",
                            (double) (alys_mono_us() - t0_us) / 1e6);
}

/* Tx root, then execute. Allocations happen before alys_execute_block so
 * that nothing can fail once the view holds the block's changes. */
static bool execute_one(storage_batch_t *b, const ProtobufCBinaryData *raw,
                        const alys_block_t *blk, const alys_hash_t hash)
{
    uint64_t h = blk->header.height;
    alys_verdict_t v;
    /* The body stored under a header must be the body that header commits
     * to: the tx root rule of common/chain (hashes only; the signatures
     * were checked by the BlockProcessor). */
    if (!alys_block_check_tx_root(blk, &v))
        return batch_fail(b, h, hash, &v);
    uint8_t *henc;
    size_t hlen;
    if (alys_header_encode(&blk->header, &henc, &hlen) != 0)
        return batch_fail_internal(b, h, hash, "out of memory encoding the header");
    if (storage_undo_reserve(&b->undo, blk->tx_count) != 0) {
        free(henc);
        return batch_fail_internal(b, h, hash, "out of memory for undo data");
    }
    int64_t t0 = alys_mono_us();
    bool ok = alys_execute_block(&b->view, blk, &v);
    observe_exec(b->self, t0);
    if (ok && !stage_block(b, raw, blk, hash, henc, hlen)) {
        /* The view already holds the block: the batch cannot go on, nor
         * commit this block. Let the caller drop the whole batch. */
        free(henc);
        b->executed = UINT32_MAX;
        return batch_fail_internal(b, h, hash, "out of memory staging the block");
    }
    free(henc);
    if (!ok)
        return batch_fail(b, h, hash, &v);
    b->executed++;
    b->txs += blk->tx_count;
    return true;
}

bool storage_batch_block(storage_batch_t *b, const ProtobufCBinaryData *raw)
{
    uint64_t expect = b->cursor.height + 1;
    uint64_t head = b->dup_upto;
    alys_block_t blk;
    alys_verdict_t v;
    if (alys_block_decode(raw->data, raw->len, &blk, &v) != 0)
        return batch_fail(b, expect, NULL, &v);
    alys_hash_t hash;
    alys_header_hash(&blk.header, hash);
    bool ok;
    if (!b->started && blk.header.height <= head && blk.header.height > 0)
        ok = accept_duplicate(b, &blk, hash); /* no link: equal to a committed block */
    else if (!alys_header_check_link(&b->cursor, b->cursor_hash, &blk.header, b->now_slot, &v))
        ok = batch_fail(b, expect, hash, &v); /* its place, as BlockProcessor names it;
                                               * the claimed height is in the detail */
    else if (blk.header.height <= head)
        ok = accept_duplicate(b, &blk, hash);
    else
        ok = execute_one(b, raw, &blk, hash);
    if (ok) {
        b->cursor = blk.header;
        memcpy(b->cursor_hash, hash, ALYS_HASH_LEN);
        b->started = true;
        b->out->committed++;
    }
    alys_block_clear(&blk);
    return ok;
}

/* ------------------------------------------------------------ commit */

/* alys_overlay_foreach callback: one changed account into the batch. */
static int stage_account(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                         const alys_account_t *now, const alys_account_t *before)
{
    storage_batch_t *b = ctx;
    if (memcmp(now, before, sizeof *now) == 0)
        return 0;
    rocksdb_column_family_handle_t *cf = b->self->db.cf[CF_STATE];
    if (account_is_zero(now)) {
        rocksdb_writebatch_delete_cf(b->wb, cf, (const char *) pubkey, ALYS_PUBKEY_LEN);
    } else {
        uint8_t val[ACCOUNT_LEN];
        storage_account_encode(now, val);
        rocksdb_writebatch_put_cf(b->wb, cf, (const char *) pubkey, ALYS_PUBKEY_LEN,
                                  (const char *) val, sizeof val);
    }
    return 0;
}

/* Undo records falling out of the window (old - depth, new - depth]. */
static void stage_undo_prune(storage_batch_t *b, uint64_t old_head, uint64_t new_head)
{
    uint64_t depth = b->self->policy.max_reorg_depth;
    uint64_t lo = old_head > depth ? old_head - depth + 1 : 1;
    uint64_t hi = new_head > depth ? new_head - depth : 0;
    for (uint64_t h = lo; h <= hi; h++)
        storage_wb_delete_height(b->wb, b->self, CF_UNDO, h);
}

static void count_commit(storage_t *self, const storage_batch_t *b, int64_t t0_us)
{
    alys_metrics_t *m = self->metrics;
    if (!m)
        return;
    alys_metric_observe(m, "alys_storage_commit_duration_seconds", NULL,
                        "One atomic RocksDB write of a batch",
                        (double) (alys_mono_us() - t0_us) / 1e6);
    alys_metric_add(m, "alys_storage_blocks_committed_total", NULL, "Blocks committed", b->executed);
    alys_metric_add(m, "alys_storage_txs_committed_total", NULL, "Txs committed", (double) b->txs);
    alys_metric_add(m, "alys_checkpoints_created_total", NULL, "Checkpoints written",
                    (double) b->cps.count);
    alys_metric_set(m, "alys_storage_head_height", NULL, "Height of the committed head",
                    (double) self->head.height);
    alys_metric_set(m, "alys_checkpoint_height", NULL, "Height of the newest checkpoint",
                    (double) self->head.last_checkpoint);
}

int storage_batch_commit(storage_batch_t *b, char *err, size_t errlen)
{
    storage_t *self = b->self;
    alys_overlay_foreach(self->overlay, stage_account, b);
    storage_head_t head = self->head;
    head.height = b->cursor.height;
    memcpy(head.hash, b->cursor_hash, ALYS_HASH_LEN);
    memcpy(head.state_root, b->cursor.state_root, ALYS_HASH_LEN);
    head.slot = b->cursor.slot;
    storage_wb_put_head(b->wb, self, &head, &b->view.lattice);
    if (self->policy.max_reorg_depth > 0)
        stage_undo_prune(b, self->head.height, head.height);
    size_t drop = storage_wb_prune_checkpoints(b->wb, self, b->cps.heights, b->cps.count);
    int64_t t0 = alys_mono_us();
    int rc = storage_db_write(self, b->wb, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    uint64_t last_cp = self->head.last_checkpoint;
    self->head = head;
    self->head.last_checkpoint = last_cp;
    self->head_header = b->cursor;
    self->lattice = b->view.lattice;
    storage_cps_apply(self, b->cps.heights, b->cps.count, drop);
    count_commit(self, b, t0);
    return STORAGE_OK;
}

/* ------------------------------------------------------------ the batch */

void storage_batch_init(storage_batch_t *b, storage_t *self,
                        const Alys__Progress__SyncProgress *progress, storage_batch_result_t *out)
{
    memset(b, 0, sizeof *b);
    b->self = self;
    b->out = out;
    b->progress = progress;
    b->wb = rocksdb_writebatch_create();
    b->now_slot = alys_genesis_slot_at(&self->genesis, (uint64_t) alys_now_ms());
    b->cursor = self->head_header;
    memcpy(b->cursor_hash, self->head.hash, ALYS_HASH_LEN);
    b->dup_upto = self->head.height;
    alys_overlay_reset(self->overlay);
    b->view = (alys_state_view_t){
        .genesis = &self->genesis,
        .read = storage_state_read,
        .read_ctx = self,
        .overlay = self->overlay,
        .lattice = self->lattice,
        .on_change = undo_collect,
        .change_ctx = b,
    };
}

void storage_batch_clear(storage_batch_t *b)
{
    rocksdb_writebatch_destroy(b->wb);
    alys_overlay_reset(b->self->overlay);
    storage_undo_free(&b->undo);
    free(b->cps.heights);
}

void storage_batch_count_failure(storage_t *self, const storage_batch_result_t *out)
{
    if (!self->metrics || !out->failed)
        return;
    char labels[64];
    snprintf(labels, sizeof labels, "reason=\"%s\"", storage_batch_reason(out));
    alys_metric_add(self->metrics, "alys_storage_block_failures_total", labels,
                    "Blocks refused by execution or linkage, by reason", 1);
}

int storage_execute_batch(storage_t *self, const ProtobufCBinaryData *blocks, size_t n,
                          const Alys__Progress__SyncProgress *progress,
                          storage_batch_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->verdict.tx_index = -1;
    out->old_head = self->head;
    if (n > STORAGE_MAX_BATCH_BLOCKS)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "batch of %zu blocks exceeds the limit %d",
                            n, STORAGE_MAX_BATCH_BLOCKS);
    storage_batch_t b;
    storage_batch_init(&b, self, progress, out);
    for (size_t i = 0; i < n; i++)
        if (!storage_batch_block(&b, &blocks[i]))
            break;
    int rc = STORAGE_OK;
    if (b.executed == UINT32_MAX)
        rc = alys_set_err(err, errlen, STORAGE_EIO,
                          "out of memory staging block %llu: nothing written",
                          (unsigned long long) out->failed_height);
    else if (b.executed > 0)
        rc = storage_batch_commit(&b, err, errlen);
    storage_batch_clear(&b);
    if (rc != STORAGE_OK) {
        out->committed = out->already_committed;
        return rc;
    }
    storage_batch_count_failure(self, out);
    out->head = self->head;
    return STORAGE_OK;
}
