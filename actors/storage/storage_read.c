/*  storage_read.c: the reads: stored blocks or headers by height (bounded in
 *  count and bytes), one decoded block, one account, the hash index, and
 *  the block locator (ours, and where a peer's meets our chain).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "storage_internal.h"
#include "util.h"
#include "wire/wire.h"

void storage_blobs_clear(storage_blobs_t *b)
{
    for (size_t i = 0; b->items && i < b->count; i++)
        free(b->items[i].data);
    free(b->items);
    memset(b, 0, sizeof *b);
}

static int blobs_push(storage_blobs_t *b, size_t *cap, const char *data, size_t len)
{
    if (b->count == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        ProtobufCBinaryData *p = realloc(b->items, c * sizeof *p);
        if (!p)
            return -1;
        b->items = p;
        *cap = c;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -1;
    memcpy(copy, data, len);
    b->items[b->count++] = (ProtobufCBinaryData){len, copy};
    b->bytes += len;
    return 0;
}

int storage_get_blocks(storage_t *self, uint64_t start, uint32_t count, bool headers_only,
                       size_t max_bytes, uint64_t *first, storage_blobs_t *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (start == 0)
        start = 1;
    *first = start;
    if (count > STORAGE_MAX_GET_BLOCKS)
        count = STORAGE_MAX_GET_BLOCKS;
    uint64_t head = self->head.height;
    if (start > head || count == 0)
        return STORAGE_OK;
    uint64_t last = head - start + 1 < count ? head : start + count - 1;
    rocksdb_column_family_handle_t *cf = self->db.cf[headers_only ? CF_HEADERS : CF_BODIES];
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db.db, self->db.ropts_scan, cf);
    uint8_t key[HEIGHT_KEY_LEN];
    put_be64(key, start);
    size_t cap = 0, framed = 0;
    int rc = STORAGE_OK;
    uint64_t want = start;
    for (rocksdb_iter_seek(it, (const char *) key, sizeof key);
         rocksdb_iter_valid(it) && want <= last; rocksdb_iter_next(it), want++) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != HEIGHT_KEY_LEN || get_be64((const uint8_t *) k) != want) {
            rc = alys_set_err(err, errlen, STORAGE_EIO, "block %llu missing below the head (damaged)",
                              (unsigned long long) want);
            break;
        }
        const char *v = rocksdb_iter_value(it, &vlen);
        if (framed + vlen + BLOB_FRAMING > max_bytes)
            break;
        if (blobs_push(out, &cap, v, vlen) != 0) {
            rc = alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
            break;
        }
        framed += vlen + BLOB_FRAMING;
    }
    rc = storage_iter_close(it, rc, "blocks", err, errlen);
    if (rc != STORAGE_OK)
        storage_blobs_clear(out);
    return rc;
}

int storage_get_block(storage_t *self, uint64_t height, alys_block_t *out)
{
    memset(out, 0, sizeof *out);
    if (height == 0 || height > self->head.height)
        return 0;
    uint8_t key[HEIGHT_KEY_LEN];
    put_be64(key, height);
    char *val;
    size_t vlen;
    char err[128];
    int rc = storage_db_get(self, CF_BODIES, key, sizeof key, &val, &vlen, err, sizeof err);
    if (rc != 1)
        return rc == 0 ? 0 : -1;
    alys_verdict_t v;
    rc = alys_block_decode((const uint8_t *) val, vlen, out, &v);
    rocksdb_free(val);
    return rc == 0 ? 1 : -1;
}

int storage_get_account(storage_t *self, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out)
{
    memset(out, 0, sizeof *out);
    int rc = storage_state_read(self, pubkey, out);
    if (rc != 1)
        memset(out, 0, sizeof *out);
    return rc;
}

int storage_find_block(storage_t *self, const alys_hash_t hash, uint64_t *height)
{
    uint8_t val[HEIGHT_KEY_LEN];
    char err[128];
    int rc = storage_db_get_fixed(self, CF_HASH_INDEX, hash, ALYS_HASH_LEN, val, sizeof val, err,
                                  sizeof err);
    if (rc < 0) {
        log_error("%s", err);
        return -1;
    }
    if (rc == 1)
        *height = get_be64(val);
    return rc;
}

/* The header hash at height: the genesis hash at 0. */
static int hash_at(storage_t *self, uint64_t height, alys_hash_t out, char *err, size_t errlen)
{
    if (height == 0) {
        memcpy(out, self->genesis.hash, ALYS_HASH_LEN);
        return STORAGE_OK;
    }
    alys_header_t h;
    int rc = storage_load_header(self, height, &h, out, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "no header for block %llu (damaged)",
                            (unsigned long long) height);
    return rc == 1 ? STORAGE_OK : rc;
}

int storage_locator(storage_t *self, uint32_t dense, uint64_t *heights, alys_hash_t *hashes,
                    size_t cap, size_t *n, char *err, size_t errlen)
{
    *n = alys_locator_heights(self->head.height, dense, heights, cap);
    for (size_t i = 0; i < *n; i++) {
        int rc = hash_at(self, heights[i], hashes[i], err, errlen);
        if (rc != STORAGE_OK) {
            *n = 0;
            return rc;
        }
    }
    return STORAGE_OK;
}

int storage_locate(storage_t *self, const ProtobufCBinaryData *hashes, size_t n, uint64_t *start,
                   char *err, size_t errlen)
{
    *start = 1;
    for (size_t i = 0; i < n; i++) {
        if (hashes[i].len != ALYS_HASH_LEN)
            continue; /* the caller bounds the request; a short hash is on no chain */
        if (memcmp(hashes[i].data, self->genesis.hash, ALYS_HASH_LEN) == 0)
            return STORAGE_OK; /* the genesis: height 0, start 1 */
        uint64_t at = 0;
        int rc = storage_find_block(self, hashes[i].data, &at);
        if (rc < 0)
            return alys_set_err(err, errlen, STORAGE_EIO, "hash index read failed");
        if (rc == 1) {
            *start = at + 1;
            return STORAGE_OK;
        }
    }
    return STORAGE_OK;
}
