/*  storage_fence.c: the producers' signing fence records (layout and rules
 *  in storage.h, SIGNING FENCE; the rule itself is common/chain/fence.h).
 *
 *  Check-then-write is atomic without a lock or a transaction because the
 *  store has one owner thread and StorageActor serves one request at a
 *  time (storage.h: not thread-safe, one actor loop): no other write can
 *  come between the read of the record and the write of its successor.
 */
#include <string.h>

#include "log.h"
#include "storage_internal.h"
#include "util.h"

int storage_fence_get(storage_t *self, const uint8_t authority[ALYS_PUBKEY_LEN],
                      alys_fence_record_t *out, char *err, size_t errlen)
{
    uint8_t key[FENCE_KEY_LEN], rec[FENCE_RECORD_LEN];
    storage_fence_key(authority, key);
    memset(out, 0, sizeof *out);
    int rc = storage_db_get_fixed(self, CF_META, key, sizeof key, rec, sizeof rec, err, errlen);
    if (rc < 0)
        return rc;
    if (rc == 1)
        storage_fence_decode(rec, out);
    return STORAGE_OK;
}

/* The record alone, in its own batch, fsync'ed before this returns. */
static int write_fence(storage_t *self, const uint8_t key[FENCE_KEY_LEN],
                       const uint8_t rec[FENCE_RECORD_LEN], char *err, size_t errlen)
{
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_put_cf(wb, self->db.cf[CF_META], (const char *) key, FENCE_KEY_LEN,
                              (const char *) rec, FENCE_RECORD_LEN);
    char *e = NULL;
    rocksdb_write(self->db.db, self->db.wopts_sync, wb, &e);
    rocksdb_writebatch_destroy(wb);
    return storage_rdb_failed(&e, err, errlen, "fence record") ? STORAGE_EIO : STORAGE_OK;
}

int storage_fence_record(storage_t *self, const uint8_t authority[ALYS_PUBKEY_LEN], uint64_t slot,
                         const alys_hash_t hash, storage_fence_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->verdict = ALYS_FENCE_REFUSE_STALE; /* until the record is read */
    /* Atomic check-and-set: see the top of this file. */
    int rc = storage_fence_get(self, authority, &out->stored, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    out->verdict = alys_fence_check(&out->stored, slot, hash);
    if (out->verdict == ALYS_FENCE_ALLOW_RESIGN) {
        out->ok = true; /* already durable: nothing to write */
        return STORAGE_OK;
    }
    if (out->verdict != ALYS_FENCE_ALLOW_NEW)
        return STORAGE_OK;
    uint8_t key[FENCE_KEY_LEN], rec[FENCE_RECORD_LEN];
    storage_fence_key(authority, key);
    storage_fence_encode(slot, hash, rec);
    rc = write_fence(self, key, rec, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    alys_fence_advance(&out->stored, slot, hash);
    out->ok = true;
    out->written = true;
    return STORAGE_OK;
}
