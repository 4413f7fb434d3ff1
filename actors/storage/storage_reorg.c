/*  storage_reorg.c: fork choice's one write, a reorg, atomically.
 *
 *  A reorg is an ExecuteBatch that starts at an ancestor below our head. In
 *  ONE WriteBatch and one overlay (storage_batch_t, storage_execute.c):
 *    1. the undo records of our blocks head..ancestor+1, newest first, are
 *       applied to the overlay (alys_state_view_restore), and the lattice
 *       must then equal the ancestor's state root (else the undo data is
 *       damaged: nothing is written, as in storage_rollback);
 *    2. deletions of those blocks' headers, bodies, hash index entries,
 *       undo records and checkpoints are staged first, so the new blocks'
 *       puts that follow win where keys coincide;
 *    3. the new blocks execute from the ancestor with undo collection, as a
 *       batch does.
 *  Only when every block executed and the branch ends strictly above the old
 *  head (longest chain; a tie keeps ours) is the WriteBatch written: a crash
 *  leaves the old head or the new one. Anything else writes nothing, and the
 *  in-memory checkpoint list, cut to the ancestor while the batch runs, is
 *  put back.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "storage_internal.h"
#include "util.h"

const char *storage_batch_reason(const storage_batch_result_t *r)
{
    return r->not_longer ? "not_longer" : alys_block_error_name(r->verdict.code);
}

/* ------------------------------------------------------------ checks */

static void count_refused(storage_t *self)
{
    if (self->metrics)
        alys_metric_add(self->metrics, "alys_chain_reorgs_refused_total", NULL,
                        "Reorgs refused because the fork point is more than max_reorg_depth "
                        "below the head",
                        1);
}

/* The ancestor's header (the genesis parent at 0), after checking it is on
 * our chain, within max_reorg_depth, and the block the caller names. */
static int check_ancestor(storage_t *self, uint64_t anc, const alys_hash_t want,
                          alys_header_t *hdr, char *err, size_t errlen)
{
    uint64_t head = self->head.height;
    if (anc > head)
        return alys_set_err(err, errlen, STORAGE_EINVAL,
                            "bad_ancestor: reorg ancestor %llu is above the head %llu",
                            (unsigned long long) anc, (unsigned long long) head);
    if (head - anc > self->policy.max_reorg_depth) {
        alys_set_err(err, errlen, STORAGE_EINVAL,
                     "too_deep: reorg of depth %llu (ancestor %llu, head %llu) exceeds "
                     "max_reorg_depth %u",
                     (unsigned long long) (head - anc), (unsigned long long) anc,
                     (unsigned long long) head, self->policy.max_reorg_depth);
        log_error("reorg refused: %s", err);
        count_refused(self);
        return STORAGE_EINVAL;
    }
    alys_hash_t have;
    if (anc == 0) {
        alys_genesis_parent(&self->genesis, hdr);
        memcpy(have, self->genesis.hash, ALYS_HASH_LEN);
    } else {
        int rc = storage_load_header(self, anc, hdr, have, err, errlen);
        if (rc == 0)
            return alys_set_err(err, errlen, STORAGE_EIO, "no header for block %llu (damaged)",
                                (unsigned long long) anc);
        if (rc != 1)
            return rc;
    }
    if (memcmp(have, want, ALYS_HASH_LEN) == 0)
        return STORAGE_OK;
    char a[17], b[17];
    alys_hex(want, 8, a);
    alys_hex(have, 8, b);
    return alys_set_err(err, errlen, STORAGE_EINVAL,
                        "ancestor_mismatch: reorg ancestor %llu is %s.., our block there is %s..",
                        (unsigned long long) anc, a, b);
}

/* ------------------------------------------------------------ undo of the old branch */

/* Apply one block's undo record to the batch's view. */
static int undo_into_view(storage_batch_t *b, uint64_t h, const uint8_t *rec, size_t len,
                          char *err, size_t errlen)
{
    uint32_t count;
    int bad = storage_undo_count(rec, len, &count);
    if (bad)
        return alys_set_err(err, errlen, STORAGE_EIO, "undo record %llu: bad %s (damaged)",
                            (unsigned long long) h, bad == -1 ? "header" : "length");
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *pk = rec + UNDO_HEADER_LEN + (size_t) i * UNDO_ENTRY_LEN;
        alys_account_t before;
        storage_account_decode(pk + ALYS_PUBKEY_LEN, &before);
        if (alys_state_view_restore(&b->view, pk, &before) != 0)
            return alys_set_err(err, errlen, STORAGE_EIO,
                                "undo of block %llu: state read failed or out of memory",
                                (unsigned long long) h);
    }
    return STORAGE_OK;
}

/* Undo block h in the view and stage the deletion of everything of it. */
static int undo_block(storage_batch_t *b, uint64_t h, char *err, size_t errlen)
{
    storage_t *self = b->self;
    char *rec;
    size_t len;
    alys_hash_t hash;
    int rc = storage_undo_load(self, h, &rec, &len, hash, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    rc = undo_into_view(b, h, (const uint8_t *) rec, len, err, errlen);
    rocksdb_free(rec);
    if (rc != STORAGE_OK)
        return rc;
    rocksdb_writebatch_delete_cf(b->wb, self->db.cf[CF_HASH_INDEX], (const char *) hash,
                                 ALYS_HASH_LEN);
    storage_wb_delete_height(b->wb, self, CF_HEADERS, h);
    storage_wb_delete_height(b->wb, self, CF_BODIES, h);
    storage_wb_delete_height(b->wb, self, CF_UNDO, h);
    return STORAGE_OK;
}

/* The checkpoints above the ancestor out of the batch and out of the
 * in-memory list (count only: the caller puts it back on failure). */
static void cut_checkpoints(storage_batch_t *b, uint64_t anc)
{
    storage_cps_t *cps = &b->self->cps;
    while (cps->count > 0 && cps->heights[cps->count - 1] > anc) {
        cps->count--;
        storage_wb_delete_height(b->wb, b->self, CF_CHECKPOINTS, cps->heights[cps->count]);
    }
    b->self->head.last_checkpoint = cps->count ? cps->heights[cps->count - 1] : 0;
}

/* Steps 1 and 2: the view at the ancestor's state, the old branch's
 * records deleted in the WriteBatch, the batch's cursor on the ancestor. */
static int undo_old_branch(storage_batch_t *b, uint64_t anc, const alys_header_t *anc_hdr,
                           const alys_hash_t anc_hash, char *err, size_t errlen)
{
    storage_t *self = b->self;
    /* Restoring is not executing a block: nothing to collect. */
    void (*collect)(void *, const uint8_t *, const alys_account_t *,
                    const alys_account_t *) = b->view.on_change;
    b->view.on_change = NULL;
    for (uint64_t h = self->head.height; h > anc; h--) {
        int rc = undo_block(b, h, err, errlen);
        if (rc != STORAGE_OK)
            return rc;
    }
    b->view.on_change = collect;
    alys_hash_t root;
    alys_lattice_root(&b->view.lattice, root);
    if (memcmp(root, anc_hdr->state_root, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, STORAGE_EIO,
                            "undo data does not restore the state root of block %llu "
                            "(damaged); nothing written",
                            (unsigned long long) anc);
    cut_checkpoints(b, anc);
    b->cursor = *anc_hdr;
    memcpy(b->cursor_hash, anc_hash, ALYS_HASH_LEN);
    b->dup_upto = anc;
    return STORAGE_OK;
}

/* ------------------------------------------------------------ the reorg */

/* Longest chain: the branch must end strictly above the old head. */
static bool check_longer(storage_batch_t *b)
{
    const storage_head_t *old = &b->self->head;
    if (b->cursor.height > old->height)
        return true;
    storage_batch_result_t *out = b->out;
    out->failed = true;
    out->not_longer = true;
    out->failed_height = b->cursor.height;
    memcpy(out->failed_hash, b->cursor_hash, ALYS_HASH_LEN);
    out->verdict = (alys_verdict_t){.code = ALYS_BLOCK_PARENT_MISMATCH, .tx_index = -1};
    char ours[17];
    alys_hex(old->hash, 8, ours);
    snprintf(out->verdict.detail, sizeof out->verdict.detail,
             "branch ends at %llu, not above our head %llu %s..: a tie or a shorter branch "
             "keeps ours",
             (unsigned long long) b->cursor.height, (unsigned long long) old->height, ours);
    return false;
}

static void count_reorg(storage_t *self, uint32_t depth)
{
    if (!self->metrics)
        return;
    alys_metric_add(self->metrics, "alys_chain_reorgs_total", NULL,
                    "Reorgs committed (a longer branch replaced blocks of ours)", 1);
    /* The histogram's buckets are the registry's (seconds): 1, 2.5, 5 and
     * 10 read as depths; deeper ones land in +Inf. */
    alys_metric_observe(self->metrics, "alys_chain_reorg_depth", NULL,
                        "Blocks of the old branch undone per reorg", (double) depth);
}

static void log_reorg(const storage_batch_result_t *out)
{
    char o[17], n[17];
    alys_hex(out->old_head.hash, 8, o);
    alys_hex(out->head.hash, 8, n);
    log_warn("reorg: depth %u, old head %llu %s.., new head %llu %s..", out->reorg_depth,
             (unsigned long long) out->old_head.height, o, (unsigned long long) out->head.height, n);
}

/* Steps 1 to 3 and the commit; *written says whether the batch was applied. */
static int run_reorg(storage_batch_t *b, uint64_t anc, const alys_header_t *anc_hdr,
                     const alys_hash_t anc_hash, const ProtobufCBinaryData *blocks, size_t n,
                     char *err, size_t errlen)
{
    int rc = undo_old_branch(b, anc, anc_hdr, anc_hash, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++)
        ok = storage_batch_block(b, &blocks[i]);
    if (b->executed == UINT32_MAX)
        return alys_set_err(err, errlen, STORAGE_EIO,
                            "out of memory staging block %llu: nothing written",
                            (unsigned long long) b->out->failed_height);
    if (!ok || !check_longer(b))
        return STORAGE_OK; /* out names the failure; nothing is written */
    return storage_batch_commit(b, err, errlen);
}

int storage_execute_reorg(storage_t *self, uint64_t ancestor_height,
                          const alys_hash_t ancestor_hash, const ProtobufCBinaryData *blocks,
                          size_t n, const Alys__Progress__SyncProgress *progress,
                          storage_batch_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->verdict.tx_index = -1;
    out->old_head = self->head;
    out->head = self->head;
    if (n > STORAGE_MAX_BATCH_BLOCKS)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "batch of %zu blocks exceeds the limit %d",
                            n, STORAGE_MAX_BATCH_BLOCKS);
    alys_header_t anc_hdr;
    int rc = check_ancestor(self, ancestor_height, ancestor_hash, &anc_hdr, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    size_t cps_count = self->cps.count;
    storage_batch_t b;
    storage_batch_init(&b, self, progress, out);
    rc = run_reorg(&b, ancestor_height, &anc_hdr, ancestor_hash, blocks, n, err, errlen);
    bool written = rc == STORAGE_OK && !out->failed;
    storage_batch_clear(&b);
    if (!written) {
        /* Nothing was written: the list and head the cut changed come back. */
        self->cps.count = cps_count;
        self->head.last_checkpoint = out->old_head.last_checkpoint;
        out->committed = out->already_committed = 0;
        if (rc == STORAGE_OK)
            storage_batch_count_failure(self, out);
        return rc;
    }
    out->head = self->head;
    out->reorg_depth = (uint32_t) (out->old_head.height - ancestor_height);
    if (out->reorg_depth > 0) {
        log_reorg(out);
        count_reorg(self, out->reorg_depth);
    }
    return STORAGE_OK;
}
