/*  storage_schema.c: the column families, the encoding of every record the
 *  store writes (layouts in storage.h) and the RocksDB plumbing the other
 *  files of the store use to read and write them.
 *
 *  The record functions are pure (bytes in, bytes out) so the unit tests pin
 *  the on-disk layout byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "storage_internal.h"
#include "util.h"

const char *const storage_cf_names[CF_COUNT] = {
    "default", "headers", "bodies", "hash_index", "state", "undo", "meta", "checkpoints", "peers",
};

/* ------------------------------------------------------------ records */

void storage_account_encode(const alys_account_t *a, uint8_t out[ACCOUNT_LEN])
{
    put_le64(out, a->balance);
    put_le64(out + 8, a->nonce);
}

void storage_account_decode(const uint8_t in[ACCOUNT_LEN], alys_account_t *a)
{
    a->balance = get_le64(in);
    a->nonce = get_le64(in + 8);
}

void storage_head_encode(const storage_head_t *h, uint8_t out[HEAD_RECORD_LEN])
{
    put_be64(out, h->height);
    memcpy(out + 8, h->hash, ALYS_HASH_LEN);
    memcpy(out + 8 + ALYS_HASH_LEN, h->state_root, ALYS_HASH_LEN);
    put_be64(out + 8 + 2 * ALYS_HASH_LEN, h->slot);
}

void storage_head_decode(const uint8_t in[HEAD_RECORD_LEN], storage_head_t *h)
{
    h->height = get_be64(in);
    memcpy(h->hash, in + 8, ALYS_HASH_LEN);
    memcpy(h->state_root, in + 8 + ALYS_HASH_LEN, ALYS_HASH_LEN);
    h->slot = get_be64(in + 8 + 2 * ALYS_HASH_LEN);
}

void storage_fence_key(const uint8_t authority[ALYS_PUBKEY_LEN], uint8_t out[FENCE_KEY_LEN])
{
    memcpy(out, META_FENCE_PREFIX, META_FENCE_PREFIX_LEN);
    memcpy(out + META_FENCE_PREFIX_LEN, authority, ALYS_PUBKEY_LEN);
}

void storage_fence_encode(uint64_t slot, const alys_hash_t hash, uint8_t out[FENCE_RECORD_LEN])
{
    put_be64(out, slot);
    memcpy(out + 8, hash, ALYS_HASH_LEN);
}

void storage_fence_decode(const uint8_t in[FENCE_RECORD_LEN], alys_fence_record_t *r)
{
    r->any = true;
    r->slot = get_be64(in);
    memcpy(r->hash, in + 8, ALYS_HASH_LEN);
}

int storage_undo_reserve(storage_undo_t *u, uint32_t tx_count)
{
    size_t want = UNDO_HEADER_LEN + ((size_t) 2 * tx_count + 1) * UNDO_ENTRY_LEN;
    if (want > u->cap) {
        uint8_t *p = realloc(u->bytes, want);
        if (!p)
            return -1;
        u->bytes = p;
        u->cap = want;
    }
    u->bytes[0] = UNDO_VERSION;
    u->len = UNDO_HEADER_LEN;
    return 0;
}

void storage_undo_append(storage_undo_t *u, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                         const alys_account_t *before)
{
    if (u->len + UNDO_ENTRY_LEN > u->cap)
        return; /* cannot happen: reserved; storage_undo_count would catch it */
    uint8_t *p = u->bytes + u->len;
    memcpy(p, pubkey, ALYS_PUBKEY_LEN);
    storage_account_encode(before, p + ALYS_PUBKEY_LEN);
    u->len += UNDO_ENTRY_LEN;
}

void storage_undo_finish(storage_undo_t *u)
{
    uint32_t count = (uint32_t) ((u->len - UNDO_HEADER_LEN) / UNDO_ENTRY_LEN);
    for (int i = 0; i < 4; i++)
        u->bytes[1 + i] = (uint8_t) (count >> (8 * i));
}

void storage_undo_free(storage_undo_t *u)
{
    free(u->bytes);
    memset(u, 0, sizeof *u);
}

int storage_undo_count(const uint8_t *rec, size_t len, uint32_t *count)
{
    if (len < UNDO_HEADER_LEN || rec[0] != UNDO_VERSION)
        return -1;
    uint32_t n = (uint32_t) rec[1] | (uint32_t) rec[2] << 8 | (uint32_t) rec[3] << 16 |
                 (uint32_t) rec[4] << 24;
    if ((len - UNDO_HEADER_LEN) / UNDO_ENTRY_LEN != n || (len - UNDO_HEADER_LEN) % UNDO_ENTRY_LEN)
        return -2;
    *count = n;
    return 0;
}

int storage_checkpoint_pack(const alys_header_t *h, const alys_hash_t hash,
                            const Alys__Progress__SyncProgress *progress, uint64_t interval,
                            uint64_t now_ms, uint8_t **out, size_t *len)
{
    Alys__Progress__SyncProgress own = ALYS__PROGRESS__SYNC_PROGRESS__INIT;
    if (!progress) {
        own.current_height = h->height;
        own.last_checkpoint = h->height;
        own.checkpoint_frequency = interval;
        own.eta_seconds = -1;
        progress = &own;
    }
    Alys__Chain__BlockCheckpoint cp = ALYS__CHAIN__BLOCK_CHECKPOINT__INIT;
    cp.height = h->height;
    cp.hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) hash};
    cp.parent_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) h->parent_hash};
    cp.state_root = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) h->state_root};
    cp.timestamp = now_ms;
    cp.sync_progress = (Alys__Progress__SyncProgress *) progress;
    cp.verified = true;
    *len = alys__chain__block_checkpoint__get_packed_size(&cp);
    *out = malloc(*len ? *len : 1);
    if (!*out)
        return -1;
    alys__chain__block_checkpoint__pack(&cp, *out);
    return 0;
}

/* ------------------------------------------------------------ RocksDB plumbing */

bool storage_rdb_failed(char **e, char *err, size_t errlen, const char *what)
{
    if (!*e)
        return false;
    alys_set_err(err, errlen, STORAGE_EIO, "%s: %s", what, *e);
    rocksdb_free(*e);
    *e = NULL;
    return true;
}

int storage_iter_close(rocksdb_iterator_t *it, int rc, const char *what, char *err, size_t errlen)
{
    char *e = NULL;
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    if (!e)
        return rc;
    if (rc == STORAGE_OK)
        rc = alys_set_err(err, errlen, STORAGE_EIO, "%s: %s", what, e);
    rocksdb_free(e);
    return rc;
}

int storage_db_get(storage_t *self, int cf, const void *key, size_t klen, char **val,
                   size_t *vlen, char *err, size_t errlen)
{
    char *e = NULL;
    *val = rocksdb_get_cf(self->db.db, self->db.ropts, self->db.cf[cf], key, klen, vlen, &e);
    if (storage_rdb_failed(&e, err, errlen, storage_cf_names[cf]))
        return STORAGE_EIO;
    return *val ? 1 : 0;
}

int storage_db_get_fixed(storage_t *self, int cf, const void *key, size_t klen, void *out,
                         size_t want, char *err, size_t errlen)
{
    char *val;
    size_t vlen;
    int rc = storage_db_get(self, cf, key, klen, &val, &vlen, err, errlen);
    if (rc != 1)
        return rc;
    if (vlen != want) {
        rocksdb_free(val);
        return alys_set_err(err, errlen, STORAGE_EIO, "%s: value of %zu bytes, want %zu (damaged)",
                            storage_cf_names[cf], vlen, want);
    }
    memcpy(out, val, want);
    rocksdb_free(val);
    return 1;
}

int storage_db_write(storage_t *self, rocksdb_writebatch_t *wb, char *err, size_t errlen)
{
    char *e = NULL;
    rocksdb_write(self->db.db, self->db.wopts, wb, &e);
    return storage_rdb_failed(&e, err, errlen, "commit") ? STORAGE_EIO : STORAGE_OK;
}

void storage_wb_put_height(rocksdb_writebatch_t *wb, storage_t *self, int cf, uint64_t h,
                           const void *val, size_t vlen)
{
    uint8_t key[HEIGHT_KEY_LEN];
    put_be64(key, h);
    rocksdb_writebatch_put_cf(wb, self->db.cf[cf], (const char *) key, sizeof key, val, vlen);
}

void storage_wb_delete_height(rocksdb_writebatch_t *wb, storage_t *self, int cf, uint64_t h)
{
    uint8_t key[HEIGHT_KEY_LEN];
    put_be64(key, h);
    rocksdb_writebatch_delete_cf(wb, self->db.cf[cf], (const char *) key, sizeof key);
}

void storage_wb_put_meta(rocksdb_writebatch_t *wb, storage_t *self, const char *key,
                         const void *val, size_t len)
{
    rocksdb_writebatch_put_cf(wb, self->db.cf[CF_META], key, strlen(key), val, len);
}

void storage_wb_put_head(rocksdb_writebatch_t *wb, storage_t *self, const storage_head_t *head,
                         const alys_lattice_t *lattice)
{
    uint8_t rec[HEAD_RECORD_LEN], lat[ALYS_LATTICE_BYTES];
    storage_head_encode(head, rec);
    alys_lattice_to_bytes(lattice, lat);
    storage_wb_put_meta(wb, self, META_HEAD, rec, sizeof rec);
    storage_wb_put_meta(wb, self, META_LATTICE, lat, sizeof lat);
}

int storage_state_read(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out)
{
    storage_t *self = ctx;
    char *e = NULL;
    rocksdb_pinnableslice_t *v = rocksdb_get_pinned_cf(self->db.db, self->db.ropts,
                                                       self->db.cf[CF_STATE],
                                                       (const char *) pubkey, ALYS_PUBKEY_LEN, &e);
    if (e) {
        log_error("state read: %s", e);
        rocksdb_free(e);
        return -1;
    }
    if (!v)
        return 0;
    size_t len;
    const char *p = rocksdb_pinnableslice_value(v, &len);
    int rc = 1;
    if (len == ACCOUNT_LEN)
        storage_account_decode((const uint8_t *) p, out);
    else {
        log_error("state: account value of %zu bytes (damaged)", len);
        rc = -1;
    }
    rocksdb_pinnableslice_destroy(v);
    return rc;
}

int storage_load_header(storage_t *self, uint64_t height, alys_header_t *h, alys_hash_t hash,
                        char *err, size_t errlen)
{
    uint8_t key[HEIGHT_KEY_LEN];
    put_be64(key, height);
    char *val;
    size_t vlen;
    int rc = storage_db_get(self, CF_HEADERS, key, sizeof key, &val, &vlen, err, errlen);
    if (rc != 1)
        return rc;
    alys_verdict_t v;
    rc = alys_header_decode((const uint8_t *) val, vlen, h, &v);
    rocksdb_free(val);
    if (rc != 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "header %llu does not decode (%s): damaged",
                            (unsigned long long) height, v.detail);
    if (hash)
        alys_header_hash(h, hash);
    return 1;
}
