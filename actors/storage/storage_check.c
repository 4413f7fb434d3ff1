/*  storage_check.c: the consistency check of the database against its head
 *  (storage_check in storage.h says what each level checks) and the record
 *  counts. Reads only; used by the tests after every crash and by tools.
 */
#include <string.h>

#include "storage_internal.h"
#include "util.h"

/* Records in a column family (figures only: an iterator error shows as a
 * short count, which storage_check reports as an inconsistency). */
static uint64_t count_keys(storage_t *self, int cf, uint64_t *lowest)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db.db, self->db.ropts, self->db.cf[cf]);
    uint64_t n = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        if (n == 0 && lowest) {
            size_t klen;
            const char *k = rocksdb_iter_key(it, &klen);
            *lowest = klen == HEIGHT_KEY_LEN ? get_be64((const uint8_t *) k) : 0;
        }
        n++;
    }
    rocksdb_iter_destroy(it);
    return n;
}

int storage_stats(storage_t *self, storage_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->accounts = count_keys(self, CF_STATE, NULL);
    out->undo_records = count_keys(self, CF_UNDO, &out->undo_lowest);
    out->checkpoints = count_keys(self, CF_CHECKPOINTS, NULL);
    out->blocks = count_keys(self, CF_BODIES, NULL);
    return 0;
}

/* Head and lattice as persisted (not as cached in memory). */
static int check_head(storage_t *self, char *err, size_t errlen)
{
    storage_head_t mem = self->head;
    alys_lattice_t lat = self->lattice;
    int rc = storage_load_head(self, err, errlen);
    bool same = memcmp(&mem, &self->head, sizeof mem) == 0 &&
                memcmp(&lat, &self->lattice, sizeof lat) == 0;
    self->head = mem;
    self->lattice = lat;
    if (rc != STORAGE_OK)
        return -1;
    if (!same)
        return alys_set_err(err, errlen, -1,
                            "persisted head or lattice differs from the one in memory");
    alys_hash_t root;
    alys_lattice_root(&self->lattice, root);
    if (memcmp(root, self->head.state_root, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, -1, "lattice root != head state root");
    return storage_load_head_header(self, err, errlen) == STORAGE_OK ? 0 : -1;
}

static int lattice_add_kv(alys_lattice_t *l, const char *k, size_t klen, const char *v, size_t vlen)
{
    if (klen != ALYS_PUBKEY_LEN || vlen != ACCOUNT_LEN)
        return -1;
    alys_account_t a;
    storage_account_decode((const uint8_t *) v, &a);
    if (account_is_zero(&a))
        return -1; /* zero accounts are deleted, never stored */
    alys_lattice_add_account(l, (const uint8_t *) k, &a);
    return 0;
}

static int check_state(storage_t *self, char *err, size_t errlen)
{
    alys_lattice_t l;
    alys_lattice_zero(&l);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db.db, self->db.ropts,
                                                        self->db.cf[CF_STATE]);
    int rc = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (lattice_add_kv(&l, k, klen, v, vlen) != 0) {
            rc = alys_set_err(err, errlen, -1, "state: malformed or zero account record");
            break;
        }
    }
    if (storage_iter_close(it, rc, "state", err, errlen) != 0)
        return -1;
    alys_hash_t root;
    alys_lattice_root(&l, root);
    if (memcmp(root, self->head.state_root, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, -1,
                            "recomputed state root over all accounts != head state root");
    return 0;
}

/* Block h: header links to its parent, body's header equals it, hash indexed. */
static int check_block(storage_t *self, uint64_t h, alys_header_t *parent,
                       alys_hash_t parent_hash, char *err, size_t errlen)
{
    alys_header_t hdr;
    alys_hash_t hash;
    if (storage_load_header(self, h, &hdr, hash, err, errlen) != 1)
        return alys_set_err(err, errlen, -1, "header %llu missing or damaged", (unsigned long long) h);
    alys_verdict_t v;
    if (!alys_header_check_link(parent, parent_hash, &hdr, UINT64_MAX, &v))
        return alys_set_err(err, errlen, -1, "block %llu: %s", (unsigned long long) h, v.detail);
    alys_block_t blk;
    if (storage_get_block(self, h, &blk) != 1)
        return alys_set_err(err, errlen, -1, "body %llu missing or damaged", (unsigned long long) h);
    bool same = memcmp(&blk.header, &hdr, sizeof hdr) == 0;
    alys_block_clear(&blk);
    if (!same)
        return alys_set_err(err, errlen, -1, "body %llu has another header", (unsigned long long) h);
    uint64_t at;
    if (storage_find_block(self, hash, &at) != 1 || at != h)
        return alys_set_err(err, errlen, -1, "hash index misses block %llu", (unsigned long long) h);
    *parent = hdr;
    memcpy(parent_hash, hash, ALYS_HASH_LEN);
    return 0;
}

static int check_chain(storage_t *self, char *err, size_t errlen)
{
    alys_header_t parent;
    alys_hash_t parent_hash;
    alys_genesis_parent(&self->genesis, &parent);
    memcpy(parent_hash, self->genesis.hash, ALYS_HASH_LEN);
    uint64_t head = self->head.height;
    for (uint64_t h = 1; h <= head; h++)
        if (check_block(self, h, &parent, parent_hash, err, errlen) != 0)
            return -1;
    if (memcmp(parent_hash, self->head.hash, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, -1, "chain does not end at the head hash");
    uint64_t bodies = count_keys(self, CF_BODIES, NULL);
    uint64_t indexed = count_keys(self, CF_HASH_INDEX, NULL);
    uint64_t headers = count_keys(self, CF_HEADERS, NULL);
    if (bodies != head || headers != head || indexed != head)
        return alys_set_err(err, errlen, -1, "%llu bodies, %llu headers, %llu indexed for head %llu",
                            (unsigned long long) bodies, (unsigned long long) headers,
                            (unsigned long long) indexed, (unsigned long long) head);
    return 0;
}

int storage_check(storage_t *self, bool full, char *err, size_t errlen)
{
    if (check_head(self, err, errlen) != 0)
        return -1;
    if (!full)
        return 0;
    if (check_state(self, err, errlen) != 0)
        return -1;
    return check_chain(self, err, errlen);
}
