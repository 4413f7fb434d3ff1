/*  storage_rollback.c: undo the blocks above a height, atomically.
 *
 *  Each block's undo record holds the accounts it touched with their values
 *  before it. A rollback applies them newest first into one indexed
 *  WriteBatch (so a later undo reads what an earlier one restored), removes
 *  the blocks' headers, bodies, hash index entries, undo records and the
 *  checkpoints above the target, and writes the new head and lattice. The
 *  lattice is checked against the target block's state root before anything
 *  is written.
 */
#include <string.h>

#include "log.h"
#include "storage_internal.h"
#include "util.h"

typedef struct {
    storage_t *self;
    rocksdb_writebatch_wi_t *wb;
    alys_lattice_t lattice;
} rollback_t;

/* The account as the rollback batch sees it (its own writes first). */
static int rb_read(rollback_t *r, const uint8_t *pubkey, alys_account_t *out, char *err, size_t errlen)
{
    storage_db_t *d = &r->self->db;
    char *e = NULL;
    size_t vlen;
    char *val = rocksdb_writebatch_wi_get_from_batch_and_db_cf(r->wb, d->db, d->ropts,
                                                               d->cf[CF_STATE], (const char *) pubkey,
                                                               ALYS_PUBKEY_LEN, &vlen, &e);
    if (storage_rdb_failed(&e, err, errlen, "state"))
        return STORAGE_EIO;
    memset(out, 0, sizeof *out);
    if (!val)
        return STORAGE_OK;
    int rc = STORAGE_OK;
    if (vlen == ACCOUNT_LEN)
        storage_account_decode((const uint8_t *) val, out);
    else
        rc = alys_set_err(err, errlen, STORAGE_EIO, "state: account value of %zu bytes (damaged)",
                          vlen);
    rocksdb_free(val);
    return rc;
}

static int rb_apply_undo(rollback_t *r, uint64_t h, const uint8_t *rec, size_t len, char *err,
                         size_t errlen)
{
    uint32_t count;
    int bad = storage_undo_count(rec, len, &count);
    if (bad)
        return alys_set_err(err, errlen, STORAGE_EIO, "undo record %llu: bad %s (damaged)",
                            (unsigned long long) h, bad == -1 ? "header" : "length");
    rocksdb_column_family_handle_t *cf = r->self->db.cf[CF_STATE];
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *pk = rec + UNDO_HEADER_LEN + (size_t) i * UNDO_ENTRY_LEN;
        alys_account_t cur, before;
        storage_account_decode(pk + ALYS_PUBKEY_LEN, &before);
        if (rb_read(r, pk, &cur, err, errlen) != STORAGE_OK)
            return STORAGE_EIO;
        alys_lattice_sub_account(&r->lattice, pk, &cur);
        alys_lattice_add_account(&r->lattice, pk, &before);
        if (account_is_zero(&before))
            rocksdb_writebatch_wi_delete_cf(r->wb, cf, (const char *) pk, ALYS_PUBKEY_LEN);
        else
            rocksdb_writebatch_wi_put_cf(r->wb, cf, (const char *) pk, ALYS_PUBKEY_LEN,
                                         (const char *) pk + ALYS_PUBKEY_LEN, ACCOUNT_LEN);
    }
    return STORAGE_OK;
}

int storage_undo_load(storage_t *self, uint64_t h, char **rec, size_t *len, alys_hash_t hash,
                      char *err, size_t errlen)
{
    uint8_t key[HEIGHT_KEY_LEN];
    put_be64(key, h);
    alys_header_t hdr;
    int rc = storage_load_header(self, h, &hdr, hash, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "no header for block %llu (damaged)",
                            (unsigned long long) h);
    if (rc != 1)
        return rc;
    rc = storage_db_get(self, CF_UNDO, key, sizeof key, rec, len, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "no undo data for block %llu",
                            (unsigned long long) h);
    return rc == 1 ? STORAGE_OK : rc;
}

/* Undo block h: its state changes, header, body, hash index and undo record. */
static int rb_undo_block(rollback_t *r, uint64_t h, char *err, size_t errlen)
{
    storage_t *self = r->self;
    uint8_t key[HEIGHT_KEY_LEN];
    put_be64(key, h);
    char *rec;
    size_t len;
    alys_hash_t hash;
    int rc = storage_undo_load(self, h, &rec, &len, hash, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    rc = rb_apply_undo(r, h, (const uint8_t *) rec, len, err, errlen);
    rocksdb_free(rec);
    if (rc != STORAGE_OK)
        return rc;
    storage_db_t *d = &self->db;
    rocksdb_writebatch_wi_delete_cf(r->wb, d->cf[CF_HASH_INDEX], (const char *) hash, ALYS_HASH_LEN);
    rocksdb_writebatch_wi_delete_cf(r->wb, d->cf[CF_HEADERS], (const char *) key, sizeof key);
    rocksdb_writebatch_wi_delete_cf(r->wb, d->cf[CF_BODIES], (const char *) key, sizeof key);
    rocksdb_writebatch_wi_delete_cf(r->wb, d->cf[CF_UNDO], (const char *) key, sizeof key);
    return STORAGE_OK;
}

/* Head record for height (target of a rollback). */
static int rb_target_head(storage_t *self, uint64_t height, storage_head_t *head,
                          alys_header_t *hdr, char *err, size_t errlen)
{
    *head = self->head;
    head->height = height;
    if (height == 0) {
        alys_genesis_parent(&self->genesis, hdr);
        memcpy(head->hash, self->genesis.hash, ALYS_HASH_LEN);
        memcpy(head->state_root, self->genesis.state_root, ALYS_HASH_LEN);
        head->slot = 0;
        return STORAGE_OK;
    }
    int rc = storage_load_header(self, height, hdr, head->hash, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "no header for block %llu (damaged)",
                            (unsigned long long) height);
    if (rc != 1)
        return rc;
    memcpy(head->state_root, hdr->state_root, ALYS_HASH_LEN);
    head->slot = hdr->slot;
    return STORAGE_OK;
}

static int rollback_check(const storage_t *self, uint64_t height, char *err, size_t errlen)
{
    uint64_t head = self->head.height;
    if (height > head)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "rollback target %llu is above the head %llu",
                            (unsigned long long) height, (unsigned long long) head);
    if (head - height > self->policy.max_reorg_depth)
        return alys_set_err(err, errlen, STORAGE_EINVAL,
                            "rollback to %llu is %llu blocks below the head %llu; max_reorg_depth is %u",
                            (unsigned long long) height, (unsigned long long) (head - height),
                            (unsigned long long) head, self->policy.max_reorg_depth);
    return STORAGE_OK;
}

/* The checkpoints above height out of the batch; how many remain. */
static size_t rb_drop_checkpoints(rollback_t *r, uint64_t height)
{
    const storage_cps_t *cps = &r->self->cps;
    size_t keep = cps->count;
    while (keep > 0 && cps->heights[keep - 1] > height) {
        keep--;
        uint8_t key[HEIGHT_KEY_LEN];
        put_be64(key, cps->heights[keep]);
        rocksdb_writebatch_wi_delete_cf(r->wb, r->self->db.cf[CF_CHECKPOINTS], (const char *) key,
                                        sizeof key);
    }
    return keep;
}

/* Stage the whole rollback in r->wb and the new head in *head. */
static int rollback_stage(rollback_t *r, uint64_t height, storage_head_t *head,
                          alys_header_t *hdr, size_t *cps_keep, char *err, size_t errlen)
{
    storage_t *self = r->self;
    for (uint64_t h = self->head.height; h > height; h--) {
        int rc = rb_undo_block(r, h, err, errlen);
        if (rc != STORAGE_OK)
            return rc;
    }
    int rc = rb_target_head(self, height, head, hdr, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    alys_hash_t root;
    alys_lattice_root(&r->lattice, root);
    if (memcmp(root, head->state_root, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, STORAGE_EIO,
                            "undo data does not restore the state root of block %llu "
                            "(damaged); nothing written",
                            (unsigned long long) height);
    *cps_keep = rb_drop_checkpoints(r, height);
    uint8_t rec[HEAD_RECORD_LEN], lat[ALYS_LATTICE_BYTES];
    storage_head_encode(head, rec);
    alys_lattice_to_bytes(&r->lattice, lat);
    rocksdb_column_family_handle_t *meta = self->db.cf[CF_META];
    rocksdb_writebatch_wi_put_cf(r->wb, meta, META_HEAD, strlen(META_HEAD), (const char *) rec,
                                 sizeof rec);
    rocksdb_writebatch_wi_put_cf(r->wb, meta, META_LATTICE, strlen(META_LATTICE),
                                 (const char *) lat, sizeof lat);
    return STORAGE_OK;
}

int storage_rollback(storage_t *self, uint64_t height, char *err, size_t errlen)
{
    int rc = rollback_check(self, height, err, errlen);
    if (rc != STORAGE_OK || height == self->head.height)
        return rc;
    rollback_t r = {.self = self, .wb = rocksdb_writebatch_wi_create(0, 1), .lattice = self->lattice};
    storage_head_t head;
    alys_header_t hdr;
    size_t keep = 0;
    rc = rollback_stage(&r, height, &head, &hdr, &keep, err, errlen);
    if (rc == STORAGE_OK) {
        char *e = NULL;
        rocksdb_write_writebatch_wi(self->db.db, self->db.wopts, r.wb, &e);
        if (storage_rdb_failed(&e, err, errlen, "rollback commit"))
            rc = STORAGE_EIO;
    }
    rocksdb_writebatch_wi_destroy(r.wb);
    if (rc != STORAGE_OK)
        return rc;
    log_info("rolled back from %llu to %llu", (unsigned long long) self->head.height,
             (unsigned long long) height);
    self->head = head;
    self->head_header = hdr;
    self->lattice = r.lattice;
    self->cps.count = keep;
    self->head.last_checkpoint = keep ? self->cps.heights[keep - 1] : 0;
    if (self->metrics) {
        alys_metric_add(self->metrics, "alys_storage_rollbacks_total", NULL, "Rollbacks done", 1);
        storage_set_metrics(self, self->metrics);
    }
    return STORAGE_OK;
}
