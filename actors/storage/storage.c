/*  storage.c: the store (see storage.h for the layout, the genesis rule, the
 *  atomicity argument and the WAL policy).
 *
 *  Sections: byte helpers; RocksDB plumbing; open (genesis or existing);
 *  execution of a batch; commit; rollback; checkpoints; peer bans; reads;
 *  checks.
 *
 *  Every RocksDB call that takes an errptr is checked; the message RocksDB
 *  returns is freed with rocksdb_free and copied into the caller's err.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "log.h"
#include "storage.h"
#include "util.h"

/* ------------------------------------------------------------ constants */

enum {
    CF_DEFAULT, CF_HEADERS, CF_BODIES, CF_HASH_INDEX, CF_STATE, CF_UNDO,
    CF_META, CF_CHECKPOINTS, CF_PEERS, CF_COUNT
};

static const char *const s_cf_names[CF_COUNT] = {
    "default", "headers", "bodies", "hash_index", "state", "undo",
    "meta", "checkpoints", "peers",
};

#define META_FORMAT       "format"
#define META_GENESIS_HASH "genesis_hash"
#define META_GENESIS      "genesis"
#define META_HEAD         "head"
#define META_LATTICE      "lattice"

#define HEAD_RECORD_LEN   (8 + ALYS_HASH_LEN + ALYS_HASH_LEN + 8)
#define ACCOUNT_LEN       16                      /* balance LE64 || nonce LE64 */
#define UNDO_VERSION      1
#define UNDO_HEADER_LEN   5                       /* version u8 || count u32 */
#define UNDO_ENTRY_LEN    (ALYS_PUBKEY_LEN + ACCOUNT_LEN)
#define BLOB_FRAMING      6                       /* tag + length varint of one item */

/* Memtables: a bounded total (write buffer manager) rather than 64 MiB per
 * column family by default, so the process's memory stays flat however long
 * the chain gets. */
#define WRITE_BUFFER_BYTES     (4u << 20)
#define DB_WRITE_BUFFER_BYTES  (16u << 20)
#define MIN_CACHE_BYTES        (8u << 20)
/* Table files kept open at once (the rest are opened on demand): bounds file
 * descriptors and keeps the open from touching every table file. */
#define MAX_OPEN_TABLE_FILES   512

struct storage {
    char db_path[ALYS_PATH_MAX + 8];
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_cache_t *cache;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;

    alys_genesis_t genesis;
    storage_head_t head;
    alys_header_t head_header;         /* the head's header; alys_genesis_parent at 0 */
    alys_lattice_t lattice;            /* lattice of the committed state */
    alys_overlay_t *overlay;           /* reused by every batch */

    uint64_t *cps;                     /* checkpoint heights, ascending */
    size_t ncps, cps_cap;

    uint64_t checkpoint_interval;
    uint32_t max_checkpoints;
    uint32_t max_reorg_depth;
    bool wal_sync;

    alys_metrics_t *metrics;           /* borrowed, may be NULL */
};

/* ------------------------------------------------------------ byte helpers */

static void put_be64(uint8_t *p, uint64_t x)
{
    for (int i = 7; i >= 0; i--, x >>= 8)
        p[i] = (uint8_t) x;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    return x;
}

static void put_le64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++, x >>= 8)
        p[i] = (uint8_t) x;
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = x << 8 | p[i];
    return x;
}

static void account_to_bytes(const alys_account_t *a, uint8_t out[ACCOUNT_LEN])
{
    put_le64(out, a->balance);
    put_le64(out + 8, a->nonce);
}

static void account_from_bytes(const uint8_t in[ACCOUNT_LEN], alys_account_t *a)
{
    a->balance = get_le64(in);
    a->nonce = get_le64(in + 8);
}

static bool account_is_zero(const alys_account_t *a)
{
    return a->balance == 0 && a->nonce == 0;
}

/* True (and err filled, *e freed) if a RocksDB call reported an error. */
static bool rdb_failed(char **e, char *err, size_t errlen, const char *what)
{
    if (!*e)
        return false;
    alys_set_err(err, errlen, STORAGE_EIO, "%s: %s", what, *e);
    rocksdb_free(*e);
    *e = NULL;
    return true;
}

/* Destroy an iterator, folding its error (if any) into rc and err. */
static int iter_close(rocksdb_iterator_t *it, int rc, const char *what, char *err, size_t errlen)
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

static void hex_short(const uint8_t *h, char out[17])
{
    alys_hex(h, 8, out);
}

/* ------------------------------------------------------------ RocksDB plumbing */

/* Get a value (malloc'ed by RocksDB, freed by the caller with rocksdb_free).
 * 1 found, 0 absent, STORAGE_EIO on error. */
static int db_get(storage_t *self, int cf, const void *key, size_t klen,
                  char **val, size_t *vlen, char *err, size_t errlen)
{
    char *e = NULL;
    *val = rocksdb_get_cf(self->db, self->ropts, self->cf[cf], key, klen, vlen, &e);
    if (rdb_failed(&e, err, errlen, s_cf_names[cf]))
        return STORAGE_EIO;
    return *val ? 1 : 0;
}

/* Get a value of exactly want bytes into out. 1, 0 absent, STORAGE_EIO (also
 * when the stored value has another size: the database is damaged). */
static int db_get_fixed(storage_t *self, int cf, const void *key, size_t klen,
                        void *out, size_t want, char *err, size_t errlen)
{
    char *val;
    size_t vlen;
    int rc = db_get(self, cf, key, klen, &val, &vlen, err, errlen);
    if (rc != 1)
        return rc;
    if (vlen != want) {
        rocksdb_free(val);
        return alys_set_err(err, errlen, STORAGE_EIO, "%s: value of %zu bytes, want %zu (damaged)",
                       s_cf_names[cf], vlen, want);
    }
    memcpy(out, val, want);
    rocksdb_free(val);
    return 1;
}

static int db_write(storage_t *self, rocksdb_writebatch_t *wb, char *err, size_t errlen)
{
    char *e = NULL;
    rocksdb_write(self->db, self->wopts, wb, &e);
    return rdb_failed(&e, err, errlen, "commit") ? STORAGE_EIO : STORAGE_OK;
}

static void wb_put_height(rocksdb_writebatch_t *wb, storage_t *self, int cf, uint64_t h,
                          const void *val, size_t vlen)
{
    uint8_t key[8];
    put_be64(key, h);
    rocksdb_writebatch_put_cf(wb, self->cf[cf], (const char *) key, 8, val, vlen);
}

static void wb_delete_height(rocksdb_writebatch_t *wb, storage_t *self, int cf, uint64_t h)
{
    uint8_t key[8];
    put_be64(key, h);
    rocksdb_writebatch_delete_cf(wb, self->cf[cf], (const char *) key, 8);
}

static void head_to_bytes(const storage_head_t *h, uint8_t out[HEAD_RECORD_LEN])
{
    put_be64(out, h->height);
    memcpy(out + 8, h->hash, ALYS_HASH_LEN);
    memcpy(out + 8 + ALYS_HASH_LEN, h->state_root, ALYS_HASH_LEN);
    put_be64(out + 8 + 2 * ALYS_HASH_LEN, h->slot);
}

static void head_from_bytes(const uint8_t in[HEAD_RECORD_LEN], storage_head_t *h)
{
    h->height = get_be64(in);
    memcpy(h->hash, in + 8, ALYS_HASH_LEN);
    memcpy(h->state_root, in + 8 + ALYS_HASH_LEN, ALYS_HASH_LEN);
    h->slot = get_be64(in + 8 + 2 * ALYS_HASH_LEN);
}

/* Head record and lattice, always written together. */
static void wb_put_head(rocksdb_writebatch_t *wb, storage_t *self, const storage_head_t *head,
                        const alys_lattice_t *lattice)
{
    uint8_t rec[HEAD_RECORD_LEN], lat[ALYS_LATTICE_BYTES];
    head_to_bytes(head, rec);
    alys_lattice_to_bytes(lattice, lat);
    rocksdb_writebatch_put_cf(wb, self->cf[CF_META], META_HEAD, strlen(META_HEAD),
                              (const char *) rec, sizeof rec);
    rocksdb_writebatch_put_cf(wb, self->cf[CF_META], META_LATTICE, strlen(META_LATTICE),
                              (const char *) lat, sizeof lat);
}

/* The committed account (state read callback of the execution view). */
static int state_read(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out)
{
    storage_t *self = ctx;
    char *e = NULL;
    rocksdb_pinnableslice_t *v = rocksdb_get_pinned_cf(self->db, self->ropts, self->cf[CF_STATE],
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
        account_from_bytes((const uint8_t *) p, out);
    else {
        log_error("state: account value of %zu bytes (damaged)", len);
        rc = -1;
    }
    rocksdb_pinnableslice_destroy(v);
    return rc;
}

/* Header stored at height (1..head), and its hash. 1, 0 absent, STORAGE_EIO. */
static int load_header(storage_t *self, uint64_t height, alys_header_t *h, alys_hash_t hash,
                       char *err, size_t errlen)
{
    uint8_t key[8];
    put_be64(key, height);
    char *val;
    size_t vlen;
    int rc = db_get(self, CF_HEADERS, key, 8, &val, &vlen, err, errlen);
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

/* ------------------------------------------------------------ open */

static int open_db(storage_t *self, const alys_config_t *cfg, char *err, size_t errlen)
{
    size_t cache = (size_t) cfg->cache_size_mb << 20;
    self->cache = rocksdb_cache_create_lru(cache < MIN_CACHE_BYTES ? MIN_CACHE_BYTES : cache);
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, self->cache);
    /* Bloom filters make the lookups of absent keys (new recipients, hash
     * index misses) skip the data blocks; the policy is owned by t. */
    rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom(10));
    /* Index and filter blocks in the (bounded) cache, not beside it, so
     * memory does not grow with the number of table files. */
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);

    self->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(self->opts, 1);
    rocksdb_options_set_create_missing_column_families(self->opts, 1);
    rocksdb_options_set_block_based_table_factory(self->opts, t);
    rocksdb_block_based_options_destroy(t);
    rocksdb_options_set_write_buffer_size(self->opts, WRITE_BUFFER_BYTES);
    rocksdb_options_set_db_write_buffer_size(self->opts, DB_WRITE_BUFFER_BYTES);
    rocksdb_options_set_max_background_jobs(self->opts, 2);
    rocksdb_options_set_keep_log_file_num(self->opts, 4);
    /* Point-in-time recovery: replay the WAL up to the last whole record.
     * A torn batch at the tail is dropped whole (the atomicity we rely on). */
    rocksdb_options_set_wal_recovery_mode(self->opts, 2);
    /* Restart speed (the supervisor's replacement is ready sooner): table
     * files are opened when first read, not all of them, each on a thread
     * of its own, before the open returns; statistics are not re-read from
     * every table file; and only warnings go to RocksDB's LOG (at info level
     * every open wrote ~100 KB of option dumps for the column families). */
    rocksdb_options_set_max_open_files(self->opts, MAX_OPEN_TABLE_FILES);
    rocksdb_options_set_max_file_opening_threads(self->opts, 1);
    rocksdb_options_set_skip_stats_update_on_db_open(self->opts, 1);
    rocksdb_options_set_info_log_level(self->opts, 2 /* WARN_LEVEL */);

    const rocksdb_options_t *cf_opts[CF_COUNT];
    for (int i = 0; i < CF_COUNT; i++)
        cf_opts[i] = self->opts;
    char *e = NULL;
    self->db = rocksdb_open_column_families(self->opts, self->db_path, CF_COUNT, s_cf_names,
                                            cf_opts, self->cf, &e);
    if (e) {
        alys_set_err(err, errlen, STORAGE_EIO, "cannot open database at %s: %s", self->db_path, e);
        rocksdb_free(e);
        self->db = NULL;
        return STORAGE_EIO;
    }
    self->ropts = rocksdb_readoptions_create();
    self->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(self->wopts, self->wal_sync ? 1 : 0);
    return STORAGE_OK;
}

static void wb_put_meta(rocksdb_writebatch_t *wb, storage_t *self, const char *key,
                        const void *val, size_t len)
{
    rocksdb_writebatch_put_cf(wb, self->cf[CF_META], key, strlen(key), val, len);
}

/* First open: the genesis accounts, lattice, genesis and head in one batch. */
static int init_genesis(storage_t *self, const alys_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->genesis_file[0])
        return alys_set_err(err, errlen, STORAGE_EINVAL,
                       "database at %s is empty and no genesis is configured "
                       "(set genesis_file in [node])", self->db_path);
    char gerr[256];
    if (alys_genesis_load(cfg->genesis_file, &self->genesis, gerr, sizeof gerr) != 0)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "genesis_file %s: %s", cfg->genesis_file, gerr);
    uint8_t *genc;
    size_t glen;
    if (alys_genesis_encode(&self->genesis, &genc, &glen) != 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "cannot encode the genesis (out of memory?)");

    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (uint32_t i = 0; i < self->genesis.balance_count; i++) {
        alys_account_t a = { .balance = self->genesis.balances[i].balance, .nonce = 0 };
        if (account_is_zero(&a))
            continue;
        uint8_t val[ACCOUNT_LEN];
        account_to_bytes(&a, val);
        rocksdb_writebatch_put_cf(wb, self->cf[CF_STATE],
                                  (const char *) self->genesis.balances[i].pubkey,
                                  ALYS_PUBKEY_LEN, (const char *) val, sizeof val);
    }
    alys_lattice_from_genesis(&self->lattice, &self->genesis);
    memset(&self->head, 0, sizeof self->head);
    memcpy(self->head.hash, self->genesis.hash, ALYS_HASH_LEN);
    memcpy(self->head.state_root, self->genesis.state_root, ALYS_HASH_LEN);
    wb_put_meta(wb, self, META_FORMAT, STORAGE_FORMAT, strlen(STORAGE_FORMAT));
    wb_put_meta(wb, self, META_GENESIS_HASH, self->genesis.hash, ALYS_HASH_LEN);
    wb_put_meta(wb, self, META_GENESIS, genc, glen);
    wb_put_head(wb, self, &self->head, &self->lattice);
    free(genc);
    int rc = db_write(self, wb, err, errlen);
    rocksdb_writebatch_destroy(wb);
    if (rc == STORAGE_OK) {
        char hex[2 * ALYS_HASH_LEN + 1];
        alys_hex(self->genesis.hash, ALYS_HASH_LEN, hex);
        log_info("initialised %s from genesis %s (%s, %u accounts)", self->db_path, hex,
                 cfg->genesis_file, self->genesis.balance_count);
    }
    return rc;
}

static int load_stored_genesis(storage_t *self, char *err, size_t errlen)
{
    char *val;
    size_t vlen;
    int rc = db_get(self, CF_META, META_GENESIS, strlen(META_GENESIS), &val, &vlen, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "database at %s has a genesis hash but no genesis",
                       self->db_path);
    if (rc != 1)
        return rc;
    char gerr[256];
    rc = alys_genesis_decode((const uint8_t *) val, vlen, &self->genesis, gerr, sizeof gerr);
    rocksdb_free(val);
    if (rc != 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "stored genesis: %s", gerr);
    return STORAGE_OK;
}

/* A database that exists: same genesis as configured (if configured). */
static int check_genesis(storage_t *self, const alys_config_t *cfg, const alys_hash_t stored,
                         char *err, size_t errlen)
{
    int rc = load_stored_genesis(self, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    char a[2 * ALYS_HASH_LEN + 1], b[2 * ALYS_HASH_LEN + 1];
    alys_hex(stored, ALYS_HASH_LEN, a);
    if (memcmp(self->genesis.hash, stored, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "stored genesis does not hash to %s (damaged)", a);
    if (!cfg->genesis_file[0])
        return STORAGE_OK;
    alys_genesis_t g;
    char gerr[256];
    if (alys_genesis_load(cfg->genesis_file, &g, gerr, sizeof gerr) != 0)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "genesis_file %s: %s", cfg->genesis_file, gerr);
    alys_hex(g.hash, ALYS_HASH_LEN, b);
    bool same = memcmp(g.hash, stored, ALYS_HASH_LEN) == 0;
    alys_genesis_clear(&g);
    if (!same)
        return alys_set_err(err, errlen, STORAGE_EINVAL,
                       "database at %s belongs to genesis %s, config names genesis %s (%s)",
                       self->db_path, a, b, cfg->genesis_file);
    return STORAGE_OK;
}

static int load_head(storage_t *self, char *err, size_t errlen)
{
    uint8_t rec[HEAD_RECORD_LEN], lat[ALYS_LATTICE_BYTES];
    int rc = db_get_fixed(self, CF_META, META_HEAD, strlen(META_HEAD), rec, sizeof rec, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "database at %s has no head record", self->db_path);
    if (rc != 1)
        return rc;
    rc = db_get_fixed(self, CF_META, META_LATTICE, strlen(META_LATTICE), lat, sizeof lat, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "database at %s has no lattice", self->db_path);
    if (rc != 1)
        return rc;
    uint64_t last_cp = self->head.last_checkpoint;
    head_from_bytes(rec, &self->head);
    self->head.last_checkpoint = last_cp;
    memcpy(self->head.genesis_hash, self->genesis.hash, ALYS_HASH_LEN);
    alys_lattice_from_bytes(&self->lattice, lat);
    return STORAGE_OK;
}

/* The head's header (checked against the head hash) or the genesis parent. */
static int load_head_header(storage_t *self, char *err, size_t errlen)
{
    if (self->head.height == 0) {
        alys_genesis_parent(&self->genesis, &self->head_header);
        return memcmp(self->head.hash, self->genesis.hash, ALYS_HASH_LEN) == 0
                   ? STORAGE_OK
                   : alys_set_err(err, errlen, STORAGE_EIO, "head at height 0 is not the genesis hash");
    }
    alys_hash_t hash;
    int rc = load_header(self, self->head.height, &self->head_header, hash, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "no header for the head %llu (damaged)",
                       (unsigned long long) self->head.height);
    if (rc != 1)
        return rc;
    if (memcmp(hash, self->head.hash, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "header %llu does not hash to the head hash (damaged)",
                       (unsigned long long) self->head.height);
    return STORAGE_OK;
}

static int cps_push(storage_t *self, uint64_t h)
{
    if (self->ncps == self->cps_cap) {
        size_t cap = self->cps_cap ? 2 * self->cps_cap : 16;
        uint64_t *p = realloc(self->cps, cap * sizeof *p);
        if (!p)
            return -1;
        self->cps = p;
        self->cps_cap = cap;
    }
    self->cps[self->ncps++] = h;
    return 0;
}

static int load_checkpoints(storage_t *self, char *err, size_t errlen)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db, self->ropts, self->cf[CF_CHECKPOINTS]);
    int rc = STORAGE_OK;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != 8 || cps_push(self, get_be64((const uint8_t *) k)) != 0) {
            rc = alys_set_err(err, errlen, STORAGE_EIO, "checkpoints: bad key or out of memory");
            break;
        }
    }
    rc = iter_close(it, rc, "checkpoints", err, errlen);
    self->head.last_checkpoint = self->ncps ? self->cps[self->ncps - 1] : 0;
    return rc;
}

/* Undo records older than the window (a smaller max_reorg_depth than the
 * last run's) would never be pruned by commits: drop them now. */
static int prune_stale_undo(storage_t *self, char *err, size_t errlen)
{
    uint64_t keep_from = self->head.height >= self->max_reorg_depth
                             ? self->head.height - self->max_reorg_depth + 1 : 1;
    uint8_t lo[8], hi[8];
    put_be64(lo, 0);
    put_be64(hi, keep_from);
    char *e = NULL;
    rocksdb_delete_range_cf(self->db, self->wopts, self->cf[CF_UNDO], (const char *) lo, 8,
                            (const char *) hi, 8, &e);
    return rdb_failed(&e, err, errlen, "undo prune") ? STORAGE_EIO : STORAGE_OK;
}

static int check_format(storage_t *self, char *err, size_t errlen)
{
    char *val;
    size_t vlen;
    int rc = db_get(self, CF_META, META_FORMAT, strlen(META_FORMAT), &val, &vlen, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "database at %s has no format record", self->db_path);
    if (rc != 1)
        return rc;
    bool ok = vlen == strlen(STORAGE_FORMAT) && memcmp(val, STORAGE_FORMAT, vlen) == 0;
    if (!ok)
        alys_set_err(err, errlen, STORAGE_EINVAL, "database at %s has format \"%.*s\", this build reads \"%s\"",
                self->db_path, (int) (vlen > 64 ? 64 : vlen), val, STORAGE_FORMAT);
    rocksdb_free(val);
    return ok ? STORAGE_OK : STORAGE_EINVAL;
}

/* Genesis, head, lattice, checkpoints; then the cheap integrity checks. */
static int load_state(storage_t *self, const alys_config_t *cfg, char *err, size_t errlen)
{
    alys_hash_t stored;
    int rc = db_get_fixed(self, CF_META, META_GENESIS_HASH, strlen(META_GENESIS_HASH),
                          stored, ALYS_HASH_LEN, err, errlen);
    if (rc < 0)
        return rc;
    if (rc == 0)
        rc = init_genesis(self, cfg, err, errlen);
    else if ((rc = check_format(self, err, errlen)) == STORAGE_OK)
        rc = check_genesis(self, cfg, stored, err, errlen);
    if (rc == STORAGE_OK)
        rc = load_checkpoints(self, err, errlen);
    if (rc == STORAGE_OK)
        rc = load_head(self, err, errlen);
    if (rc == STORAGE_OK)
        rc = load_head_header(self, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    alys_hash_t root;
    alys_lattice_root(&self->lattice, root);
    if (memcmp(root, self->head.state_root, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "lattice root != state root of head %llu (damaged)",
                       (unsigned long long) self->head.height);
    return prune_stale_undo(self, err, errlen);
}

storage_t *storage_open(const alys_config_t *cfg, char *err, size_t errlen)
{
    storage_t *self = calloc(1, sizeof *self);
    if (!self) {
        alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
        return NULL;
    }
    self->checkpoint_interval = cfg->checkpoint_interval;
    self->max_checkpoints = cfg->max_checkpoints;
    self->max_reorg_depth = cfg->max_reorg_depth;
    self->wal_sync = cfg->wal_sync;
    snprintf(self->db_path, sizeof self->db_path, "%s/db", cfg->data_dir);
    int rc = STORAGE_OK;
    if (alys_mkdir_p(cfg->data_dir, 0750) != 0)
        rc = alys_set_err(err, errlen, STORAGE_EIO, "cannot create data_dir %s: %s", cfg->data_dir,
                     strerror(errno));
    if (rc == STORAGE_OK)
        rc = open_db(self, cfg, err, errlen);
    if (rc == STORAGE_OK)
        rc = load_state(self, cfg, err, errlen);
    if (rc == STORAGE_OK && !(self->overlay = alys_overlay_new()))
        rc = alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
    if (rc != STORAGE_OK) {
        storage_destroy(&self);
        return NULL;
    }
    log_info("storage %s: head %llu, wal_sync %s, %zu checkpoints", self->db_path,
             (unsigned long long) self->head.height, self->wal_sync ? "on" : "off", self->ncps);
    return self;
}

void storage_destroy(storage_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    storage_t *self = *self_p;
    if (self->db) {
        for (int i = 0; i < CF_COUNT; i++)
            if (self->cf[i])
                rocksdb_column_family_handle_destroy(self->cf[i]);
        rocksdb_close(self->db);
    }
    if (self->ropts)
        rocksdb_readoptions_destroy(self->ropts);
    if (self->wopts)
        rocksdb_writeoptions_destroy(self->wopts);
    if (self->opts)
        rocksdb_options_destroy(self->opts);
    if (self->cache)
        rocksdb_cache_destroy(self->cache);
    alys_overlay_destroy(&self->overlay);
    alys_genesis_clear(&self->genesis);
    free(self->cps);
    free(self);
    *self_p = NULL;
}

void storage_set_metrics(storage_t *self, alys_metrics_t *m)
{
    self->metrics = m;
    if (m) {
        alys_metric_set(m, "alys_storage_head_height", NULL, "Height of the committed head",
                        (double) self->head.height);
        alys_metric_set(m, "alys_checkpoint_height", NULL, "Height of the newest checkpoint",
                        (double) self->head.last_checkpoint);
    }
}

const alys_genesis_t *storage_genesis(const storage_t *self) { return &self->genesis; }
void storage_head(const storage_t *self, storage_head_t *out) { *out = self->head; }
const char *storage_db_path(const storage_t *self) { return self->db_path; }

/* ------------------------------------------------------------ checkpoints (records) */

/* Encode the BlockCheckpoint of a block into wb. progress NULL: a minimal
 * SyncProgress naming this checkpoint. */
static int wb_put_checkpoint(rocksdb_writebatch_t *wb, storage_t *self, const alys_header_t *h,
                             const alys_hash_t hash, const Alys__Progress__SyncProgress *progress)
{
    Alys__Progress__SyncProgress own = ALYS__PROGRESS__SYNC_PROGRESS__INIT;
    if (!progress) {
        own.current_height = h->height;
        own.last_checkpoint = h->height;
        own.checkpoint_frequency = self->checkpoint_interval;
        own.eta_seconds = -1;
        progress = &own;
    }
    Alys__Chain__BlockCheckpoint cp = ALYS__CHAIN__BLOCK_CHECKPOINT__INIT;
    cp.height = h->height;
    cp.hash = (ProtobufCBinaryData) { ALYS_HASH_LEN, (uint8_t *) hash };
    cp.parent_hash = (ProtobufCBinaryData) { ALYS_HASH_LEN, (uint8_t *) h->parent_hash };
    cp.state_root = (ProtobufCBinaryData) { ALYS_HASH_LEN, (uint8_t *) h->state_root };
    cp.timestamp = (uint64_t) alys_now_ms();
    cp.sync_progress = (Alys__Progress__SyncProgress *) progress;
    cp.verified = true;
    size_t len = alys__chain__block_checkpoint__get_packed_size(&cp);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    alys__chain__block_checkpoint__pack(&cp, buf);
    wb_put_height(wb, self, CF_CHECKPOINTS, h->height, buf, len);
    free(buf);
    return 0;
}

/* Heights of checkpoints after adding `added` (ascending, all above the
 * existing ones or equal to the last): delete the oldest beyond
 * max_checkpoints in wb. Returns how many of the merged list survive from
 * the front (the first `drop` are deleted). */
static size_t wb_prune_checkpoints(rocksdb_writebatch_t *wb, storage_t *self,
                                   const uint64_t *added, size_t nadded)
{
    size_t total = self->ncps + nadded;
    size_t drop = total > self->max_checkpoints ? total - self->max_checkpoints : 0;
    for (size_t i = 0; i < drop; i++) {
        uint64_t h = i < self->ncps ? self->cps[i] : added[i - self->ncps];
        wb_delete_height(wb, self, CF_CHECKPOINTS, h);
    }
    return drop;
}

/* After a successful write: the in-memory list = merged list minus drop. */
static void cps_apply(storage_t *self, const uint64_t *added, size_t nadded, size_t drop)
{
    for (size_t i = 0; i < nadded; i++)
        if (!(self->ncps && self->cps[self->ncps - 1] == added[i]))
            if (cps_push(self, added[i]) != 0)
                log_warn("checkpoint list: out of memory (list is rebuilt on restart)");
    if (drop > self->ncps)
        drop = self->ncps;
    if (drop) {
        memmove(self->cps, self->cps + drop, (self->ncps - drop) * sizeof *self->cps);
        self->ncps -= drop;
    }
    self->head.last_checkpoint = self->ncps ? self->cps[self->ncps - 1] : 0;
}

/* ------------------------------------------------------------ execution of a batch */

typedef struct {
    storage_t *self;
    rocksdb_writebatch_t *wb;
    alys_state_view_t view;
    const Alys__Progress__SyncProgress *progress;
    storage_batch_result_t *out;
    uint64_t now_slot;
    /* The last block of the chain as this batch has it so far. */
    alys_header_t cursor;
    alys_hash_t cursor_hash;
    bool started;                 /* a block has been accepted (dup or new) */
    /* Undo record of the block being executed. */
    uint8_t *undo;
    size_t undo_len, undo_cap;
    /* What the batch adds. */
    uint32_t executed;
    uint64_t txs;
    uint64_t *cps;
    size_t ncps, cps_cap;
} batch_t;

/* on_change of the view: append (pubkey, value before the block). Capacity
 * was reserved before execution (reserve_undo), so this never allocates. */
static void undo_collect(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                         const alys_account_t *before, const alys_account_t *after)
{
    (void) after;
    batch_t *b = ctx;
    if (b->undo_len + UNDO_ENTRY_LEN > b->undo_cap)
        return;   /* cannot happen: reserve_undo sized it; undo_count check catches it */
    uint8_t *p = b->undo + b->undo_len;
    memcpy(p, pubkey, ALYS_PUBKEY_LEN);
    account_to_bytes(before, p + ALYS_PUBKEY_LEN);
    b->undo_len += UNDO_ENTRY_LEN;
}

/* Worst case of one block: sender and recipient per tx plus the proposer. */
static int reserve_undo(batch_t *b, uint32_t tx_count)
{
    size_t want = UNDO_HEADER_LEN + ((size_t) 2 * tx_count + 1) * UNDO_ENTRY_LEN;
    if (want > b->undo_cap) {
        uint8_t *p = realloc(b->undo, want);
        if (!p)
            return -1;
        b->undo = p;
        b->undo_cap = want;
    }
    b->undo[0] = UNDO_VERSION;
    b->undo_len = UNDO_HEADER_LEN;
    return 0;
}

static void undo_finish(batch_t *b)
{
    uint32_t count = (uint32_t) ((b->undo_len - UNDO_HEADER_LEN) / UNDO_ENTRY_LEN);
    for (int i = 0; i < 4; i++)
        b->undo[1 + i] = (uint8_t) (count >> (8 * i));
}

/* Record the failure of block (expected) height h in the result; stop. */
static bool batch_fail(batch_t *b, uint64_t h, const alys_hash_t hash, const alys_verdict_t *v)
{
    storage_batch_result_t *out = b->out;
    out->failed = true;
    out->failed_height = h;
    if (hash)
        memcpy(out->failed_hash, hash, ALYS_HASH_LEN);
    out->verdict = *v;
    return false;
}

static bool batch_fail_internal(batch_t *b, uint64_t h, const alys_hash_t hash, const char *what)
{
    alys_verdict_t v = { .code = ALYS_BLOCK_INTERNAL_ERROR, .tx_index = -1 };
    snprintf(v.detail, sizeof v.detail, "%s", what);
    return batch_fail(b, h, hash, &v);
}

/* A block at or below the head: the committed one (acknowledge) or a fork. */
static bool accept_duplicate(batch_t *b, const alys_block_t *blk, const alys_hash_t hash)
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
    alys_hash_t stored = { 0 };
    alys_header_t sh;
    if (h == 0 || load_header(b->self, h, &sh, stored, err, sizeof err) != 1)
        memset(stored, 0, sizeof stored);
    char got[17], want[17];
    hex_short(hash, got);
    hex_short(stored, want);
    alys_verdict_t v = { .code = ALYS_BLOCK_PARENT_MISMATCH, .tx_index = -1 };
    snprintf(v.detail, sizeof v.detail,
             "block %llu %s.. conflicts with committed block %llu %s.. (fork below head %llu; "
             "roll back first)", (unsigned long long) h, got, (unsigned long long) h, want,
             (unsigned long long) b->self->head.height);
    return batch_fail(b, h, hash, &v);
}

static bool check_tx_root(const alys_block_t *blk, alys_verdict_t *v)
{
    alys_hash_t root;
    alys_tx_root(blk->txs, blk->tx_count, root);
    if (memcmp(root, blk->header.tx_root, ALYS_HASH_LEN) == 0)
        return true;
    v->code = ALYS_BLOCK_TX_ROOT_MISMATCH;
    v->tx_index = -1;
    snprintf(v->detail, sizeof v->detail, "tx root does not match the block's %u txs", blk->tx_count);
    return false;
}

/* Everything of an executed block except the state (written from the
 * overlay at commit) into the write batch. */
static bool stage_block(batch_t *b, const ProtobufCBinaryData *raw, const alys_block_t *blk,
                        const alys_hash_t hash, const uint8_t *henc, size_t hlen)
{
    storage_t *self = b->self;
    uint64_t h = blk->header.height;
    uint8_t hkey[8];
    put_be64(hkey, h);
    wb_put_height(b->wb, self, CF_HEADERS, h, henc, hlen);
    wb_put_height(b->wb, self, CF_BODIES, h, raw->data, raw->len);
    rocksdb_writebatch_put_cf(b->wb, self->cf[CF_HASH_INDEX], (const char *) hash, ALYS_HASH_LEN,
                              (const char *) hkey, 8);
    if (self->max_reorg_depth > 0) {
        undo_finish(b);
        wb_put_height(b->wb, self, CF_UNDO, h, b->undo, b->undo_len);
    }
    bool cp_due = self->checkpoint_interval && self->max_checkpoints
                  && h % self->checkpoint_interval == 0;
    if (cp_due) {
        if (b->ncps == b->cps_cap) {
            size_t cap = b->cps_cap ? 2 * b->cps_cap : 8;
            uint64_t *p = realloc(b->cps, cap * sizeof *p);
            if (!p)
                return false;
            b->cps = p;
            b->cps_cap = cap;
        }
        if (wb_put_checkpoint(b->wb, self, &blk->header, hash, b->progress) != 0)
            return false;
        b->cps[b->ncps++] = h;
    }
    return true;
}

static void observe_exec(storage_t *self, int64_t t0_us)
{
    if (self->metrics)
        alys_metric_observe(self->metrics, "alys_block_execution_duration_seconds", NULL,
                            "Execution of one block against the state (storage)",
                            (double) (alys_mono_us() - t0_us) / 1e6);
}

/* Link, tx root, then execute. Allocations happen before alys_execute_block
 * so that nothing can fail once the view holds the block's changes. */
static bool execute_one(batch_t *b, const ProtobufCBinaryData *raw, const alys_block_t *blk,
                        const alys_hash_t hash)
{
    uint64_t h = blk->header.height;
    alys_verdict_t v;
    if (!check_tx_root(blk, &v))
        return batch_fail(b, h, hash, &v);
    uint8_t *henc;
    size_t hlen;
    if (alys_header_encode(&blk->header, &henc, &hlen) != 0)
        return batch_fail_internal(b, h, hash, "out of memory encoding the header");
    if (reserve_undo(b, blk->tx_count) != 0) {
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

/* One block of the batch. Returns true to go on with the next one. */
static bool process_block(batch_t *b, const ProtobufCBinaryData *raw)
{
    uint64_t expect = b->cursor.height + 1;
    alys_block_t blk;
    alys_verdict_t v;
    if (alys_block_decode(raw->data, raw->len, &blk, &v) != 0)
        return batch_fail(b, expect, NULL, &v);
    alys_hash_t hash;
    alys_header_hash(&blk.header, hash);
    bool ok;
    if (!b->started && blk.header.height <= b->self->head.height && blk.header.height > 0)
        ok = accept_duplicate(b, &blk, hash);   /* no link: equal to a committed block */
    else if (!alys_header_check_link(&b->cursor, b->cursor_hash, &blk.header, b->now_slot, &v))
        ok = batch_fail(b, expect, hash, &v);   /* its place, as BlockProcessor names it;
                                                 * the claimed height is in the detail */
    else if (blk.header.height <= b->self->head.height)
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

static int stage_account(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                         const alys_account_t *now, const alys_account_t *before)
{
    batch_t *b = ctx;
    if (memcmp(now, before, sizeof *now) == 0)
        return 0;
    rocksdb_column_family_handle_t *cf = b->self->cf[CF_STATE];
    if (account_is_zero(now)) {
        rocksdb_writebatch_delete_cf(b->wb, cf, (const char *) pubkey, ALYS_PUBKEY_LEN);
    } else {
        uint8_t val[ACCOUNT_LEN];
        account_to_bytes(now, val);
        rocksdb_writebatch_put_cf(b->wb, cf, (const char *) pubkey, ALYS_PUBKEY_LEN,
                                  (const char *) val, sizeof val);
    }
    return 0;
}

/* Undo records falling out of the window (old - depth, new - depth]. */
static void stage_undo_prune(batch_t *b, uint64_t old_head, uint64_t new_head)
{
    uint64_t depth = b->self->max_reorg_depth;
    uint64_t lo = old_head > depth ? old_head - depth + 1 : 1;
    uint64_t hi = new_head > depth ? new_head - depth : 0;
    for (uint64_t h = lo; h <= hi; h++)
        wb_delete_height(b->wb, b->self, CF_UNDO, h);
}

static void count_commit(storage_t *self, batch_t *b, int64_t t0_us)
{
    alys_metrics_t *m = self->metrics;
    if (!m)
        return;
    alys_metric_observe(m, "alys_storage_commit_duration_seconds", NULL,
                        "One atomic RocksDB write of a batch", (double) (alys_mono_us() - t0_us) / 1e6);
    alys_metric_add(m, "alys_storage_blocks_committed_total", NULL, "Blocks committed", b->executed);
    alys_metric_add(m, "alys_storage_txs_committed_total", NULL, "Txs committed", (double) b->txs);
    alys_metric_add(m, "alys_checkpoints_created_total", NULL, "Checkpoints written", (double) b->ncps);
    alys_metric_set(m, "alys_storage_head_height", NULL, "Height of the committed head",
                    (double) self->head.height);
    alys_metric_set(m, "alys_checkpoint_height", NULL, "Height of the newest checkpoint",
                    (double) self->head.last_checkpoint);
}

static int commit_batch(batch_t *b, char *err, size_t errlen)
{
    storage_t *self = b->self;
    alys_overlay_foreach(self->overlay, stage_account, b);
    storage_head_t head = self->head;
    head.height = b->cursor.height;
    memcpy(head.hash, b->cursor_hash, ALYS_HASH_LEN);
    memcpy(head.state_root, b->cursor.state_root, ALYS_HASH_LEN);
    head.slot = b->cursor.slot;
    wb_put_head(b->wb, self, &head, &b->view.lattice);
    if (self->max_reorg_depth > 0)
        stage_undo_prune(b, self->head.height, head.height);
    size_t drop = wb_prune_checkpoints(b->wb, self, b->cps, b->ncps);
    int64_t t0 = alys_mono_us();
    int rc = db_write(self, b->wb, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    uint64_t last_cp = self->head.last_checkpoint;
    self->head = head;
    self->head.last_checkpoint = last_cp;
    self->head_header = b->cursor;
    self->lattice = b->view.lattice;
    cps_apply(self, b->cps, b->ncps, drop);
    count_commit(self, b, t0);
    return STORAGE_OK;
}

static void batch_init(batch_t *b, storage_t *self, const Alys__Progress__SyncProgress *progress,
                       storage_batch_result_t *out)
{
    memset(b, 0, sizeof *b);
    b->self = self;
    b->out = out;
    b->progress = progress;
    b->wb = rocksdb_writebatch_create();
    b->now_slot = alys_genesis_slot_at(&self->genesis, (uint64_t) alys_now_ms());
    b->cursor = self->head_header;
    memcpy(b->cursor_hash, self->head.hash, ALYS_HASH_LEN);
    alys_overlay_reset(self->overlay);
    b->view = (alys_state_view_t) {
        .genesis = &self->genesis, .read = state_read, .read_ctx = self,
        .overlay = self->overlay, .lattice = self->lattice,
        .on_change = undo_collect, .change_ctx = b,
    };
}

static void batch_clear(batch_t *b)
{
    rocksdb_writebatch_destroy(b->wb);
    alys_overlay_reset(b->self->overlay);
    free(b->undo);
    free(b->cps);
}

static void count_failure(storage_t *self, const storage_batch_result_t *out)
{
    if (!self->metrics || !out->failed)
        return;
    char labels[64];
    snprintf(labels, sizeof labels, "reason=\"%s\"", alys_block_error_name(out->verdict.code));
    alys_metric_add(self->metrics, "alys_storage_block_failures_total", labels,
                    "Blocks refused by execution or linkage, by reason", 1);
}

int storage_execute_batch(storage_t *self, const ProtobufCBinaryData *blocks, size_t n,
                          const Alys__Progress__SyncProgress *progress,
                          storage_batch_result_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->verdict.tx_index = -1;
    if (n > STORAGE_MAX_BATCH_BLOCKS)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "batch of %zu blocks exceeds the limit %d",
                       n, STORAGE_MAX_BATCH_BLOCKS);
    batch_t b;
    batch_init(&b, self, progress, out);
    for (size_t i = 0; i < n; i++)
        if (!process_block(&b, &blocks[i]))
            break;
    int rc = STORAGE_OK;
    if (b.executed == UINT32_MAX)
        rc = alys_set_err(err, errlen, STORAGE_EIO, "out of memory staging block %llu: nothing written",
                     (unsigned long long) out->failed_height);
    else if (b.executed > 0)
        rc = commit_batch(&b, err, errlen);
    batch_clear(&b);
    if (rc != STORAGE_OK) {
        out->committed = out->already_committed;
        return rc;
    }
    count_failure(self, out);
    out->head = self->head;
    return STORAGE_OK;
}

/* ------------------------------------------------------------ rollback */

typedef struct {
    storage_t *self;
    rocksdb_writebatch_wi_t *wb;
    alys_lattice_t lattice;
} rollback_t;

/* The account as the rollback batch sees it (its own writes first). */
static int rb_read(rollback_t *r, const uint8_t *pubkey, alys_account_t *out, char *err, size_t errlen)
{
    char *e = NULL;
    size_t vlen;
    char *val = rocksdb_writebatch_wi_get_from_batch_and_db_cf(r->wb, r->self->db, r->self->ropts,
                                                               r->self->cf[CF_STATE],
                                                               (const char *) pubkey, ALYS_PUBKEY_LEN,
                                                               &vlen, &e);
    if (rdb_failed(&e, err, errlen, "state"))
        return STORAGE_EIO;
    memset(out, 0, sizeof *out);
    if (!val)
        return STORAGE_OK;
    int rc = STORAGE_OK;
    if (vlen == ACCOUNT_LEN)
        account_from_bytes((const uint8_t *) val, out);
    else
        rc = alys_set_err(err, errlen, STORAGE_EIO, "state: account value of %zu bytes (damaged)", vlen);
    rocksdb_free(val);
    return rc;
}

static int rb_apply_undo(rollback_t *r, uint64_t h, const uint8_t *rec, size_t len,
                         char *err, size_t errlen)
{
    if (len < UNDO_HEADER_LEN || rec[0] != UNDO_VERSION)
        return alys_set_err(err, errlen, STORAGE_EIO, "undo record %llu: bad header (damaged)",
                       (unsigned long long) h);
    uint32_t count = (uint32_t) rec[1] | (uint32_t) rec[2] << 8 | (uint32_t) rec[3] << 16
                     | (uint32_t) rec[4] << 24;
    if ((len - UNDO_HEADER_LEN) / UNDO_ENTRY_LEN != count || (len - UNDO_HEADER_LEN) % UNDO_ENTRY_LEN)
        return alys_set_err(err, errlen, STORAGE_EIO, "undo record %llu: bad length (damaged)",
                       (unsigned long long) h);
    rocksdb_column_family_handle_t *cf = r->self->cf[CF_STATE];
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *pk = rec + UNDO_HEADER_LEN + (size_t) i * UNDO_ENTRY_LEN;
        alys_account_t cur, before;
        account_from_bytes(pk + ALYS_PUBKEY_LEN, &before);
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

/* Undo block h: its state changes, header, body, hash index and undo record. */
static int rb_undo_block(rollback_t *r, uint64_t h, char *err, size_t errlen)
{
    storage_t *self = r->self;
    uint8_t key[8];
    put_be64(key, h);
    char *rec;
    size_t len;
    int rc = db_get(self, CF_UNDO, key, 8, &rec, &len, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "no undo data for block %llu",
                       (unsigned long long) h);
    if (rc != 1)
        return rc;
    rc = rb_apply_undo(r, h, (const uint8_t *) rec, len, err, errlen);
    rocksdb_free(rec);
    if (rc != STORAGE_OK)
        return rc;
    alys_header_t hdr;
    alys_hash_t hash;
    rc = load_header(self, h, &hdr, hash, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "no header for block %llu (damaged)",
                       (unsigned long long) h);
    if (rc != 1)
        return rc;
    rocksdb_writebatch_wi_delete_cf(r->wb, self->cf[CF_HASH_INDEX], (const char *) hash, ALYS_HASH_LEN);
    rocksdb_writebatch_wi_delete_cf(r->wb, self->cf[CF_HEADERS], (const char *) key, 8);
    rocksdb_writebatch_wi_delete_cf(r->wb, self->cf[CF_BODIES], (const char *) key, 8);
    rocksdb_writebatch_wi_delete_cf(r->wb, self->cf[CF_UNDO], (const char *) key, 8);
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
    int rc = load_header(self, height, hdr, head->hash, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "no header for block %llu (damaged)",
                       (unsigned long long) height);
    if (rc != 1)
        return rc;
    memcpy(head->state_root, hdr->state_root, ALYS_HASH_LEN);
    head->slot = hdr->slot;
    return STORAGE_OK;
}

static int rollback_check(storage_t *self, uint64_t height, char *err, size_t errlen)
{
    if (height > self->head.height)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "rollback target %llu is above the head %llu",
                       (unsigned long long) height, (unsigned long long) self->head.height);
    if (self->head.height - height > self->max_reorg_depth)
        return alys_set_err(err, errlen, STORAGE_EINVAL,
                       "rollback to %llu is %llu blocks below the head %llu; max_reorg_depth is %u",
                       (unsigned long long) height, (unsigned long long) (self->head.height - height),
                       (unsigned long long) self->head.height, self->max_reorg_depth);
    return STORAGE_OK;
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
                       "undo data does not restore the state root of block %llu (damaged); "
                       "nothing written", (unsigned long long) height);
    size_t keep = self->ncps;
    while (keep > 0 && self->cps[keep - 1] > height) {
        keep--;
        uint8_t key[8];
        put_be64(key, self->cps[keep]);
        rocksdb_writebatch_wi_delete_cf(r->wb, self->cf[CF_CHECKPOINTS], (const char *) key, 8);
    }
    *cps_keep = keep;
    uint8_t rec[HEAD_RECORD_LEN], lat[ALYS_LATTICE_BYTES];
    head_to_bytes(head, rec);
    alys_lattice_to_bytes(&r->lattice, lat);
    rocksdb_writebatch_wi_put_cf(r->wb, self->cf[CF_META], META_HEAD, strlen(META_HEAD),
                                 (const char *) rec, sizeof rec);
    rocksdb_writebatch_wi_put_cf(r->wb, self->cf[CF_META], META_LATTICE, strlen(META_LATTICE),
                                 (const char *) lat, sizeof lat);
    return STORAGE_OK;
}

int storage_rollback(storage_t *self, uint64_t height, char *err, size_t errlen)
{
    int rc = rollback_check(self, height, err, errlen);
    if (rc != STORAGE_OK || height == self->head.height)
        return rc;
    rollback_t r = { .self = self, .wb = rocksdb_writebatch_wi_create(0, 1), .lattice = self->lattice };
    storage_head_t head;
    alys_header_t hdr;
    size_t keep = 0;
    rc = rollback_stage(&r, height, &head, &hdr, &keep, err, errlen);
    if (rc == STORAGE_OK) {
        char *e = NULL;
        rocksdb_write_writebatch_wi(self->db, self->wopts, r.wb, &e);
        if (rdb_failed(&e, err, errlen, "rollback commit"))
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
    self->ncps = keep;
    self->head.last_checkpoint = keep ? self->cps[keep - 1] : 0;
    if (self->metrics) {
        alys_metric_add(self->metrics, "alys_storage_rollbacks_total", NULL, "Rollbacks done", 1);
        storage_set_metrics(self, self->metrics);
    }
    return STORAGE_OK;
}

/* ------------------------------------------------------------ checkpoints (API) */

static int read_checkpoint(storage_t *self, uint64_t h, Alys__Chain__BlockCheckpoint **out,
                           char *err, size_t errlen)
{
    uint8_t key[8];
    put_be64(key, h);
    char *val;
    size_t vlen;
    int rc = db_get(self, CF_CHECKPOINTS, key, 8, &val, &vlen, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "checkpoint %llu vanished", (unsigned long long) h);
    if (rc != 1)
        return rc;
    *out = alys__chain__block_checkpoint__unpack(NULL, vlen, (const uint8_t *) val);
    rocksdb_free(val);
    if (!*out)
        return alys_set_err(err, errlen, STORAGE_EIO, "checkpoint %llu does not decode (damaged)",
                       (unsigned long long) h);
    return STORAGE_OK;
}

int storage_create_checkpoint(storage_t *self, const Alys__Progress__SyncProgress *progress,
                              Alys__Chain__BlockCheckpoint **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (self->head.height == 0)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "no checkpoint at height 0: nothing is synced yet");
    if (!self->checkpoint_interval || !self->max_checkpoints)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "checkpoints are disabled (max_checkpoints 0)");
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    uint64_t h = self->head.height;
    int rc = STORAGE_OK;
    if (wb_put_checkpoint(wb, self, &self->head_header, self->head.hash, progress) != 0)
        rc = alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
    bool replaces = self->ncps && self->cps[self->ncps - 1] == h;
    size_t drop = replaces ? 0 : wb_prune_checkpoints(wb, self, &h, 1);
    if (rc == STORAGE_OK)
        rc = db_write(self, wb, err, errlen);
    rocksdb_writebatch_destroy(wb);
    if (rc != STORAGE_OK)
        return rc;
    cps_apply(self, &h, 1, drop);
    if (self->metrics) {
        alys_metric_add(self->metrics, "alys_checkpoints_created_total", NULL, "Checkpoints written", 1);
        alys_metric_set(self->metrics, "alys_checkpoint_height", NULL,
                        "Height of the newest checkpoint", (double) h);
    }
    return out ? read_checkpoint(self, h, out, err, errlen) : STORAGE_OK;
}

void storage_checkpoints_free(Alys__Chain__BlockCheckpoint **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        alys__chain__block_checkpoint__free_unpacked(list[i], NULL);
    free(list);
}

int storage_list_checkpoints(storage_t *self, Alys__Chain__BlockCheckpoint ***out, size_t *n,
                             char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (self->ncps == 0)
        return STORAGE_OK;
    Alys__Chain__BlockCheckpoint **list = calloc(self->ncps, sizeof *list);
    if (!list)
        return alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
    for (size_t i = 0; i < self->ncps; i++) {
        int rc = read_checkpoint(self, self->cps[i], &list[i], err, errlen);
        if (rc != STORAGE_OK) {
            storage_checkpoints_free(list, i);
            return rc;
        }
    }
    *out = list;
    *n = self->ncps;
    return STORAGE_OK;
}

/* ------------------------------------------------------------ peer bans */

static int check_bans(Alys__Storage__PeerBan *const *bans, size_t n, char *err, size_t errlen)
{
    if (n > STORAGE_MAX_PEER_BANS)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "%zu bans exceed the limit %d", n,
                       STORAGE_MAX_PEER_BANS);
    for (size_t i = 0; i < n; i++) {
        const char *id = bans[i] ? bans[i]->peer_id : NULL;
        size_t len = id ? strlen(id) : 0;
        if (len == 0 || len > STORAGE_MAX_PEER_ID)
            return alys_set_err(err, errlen, STORAGE_EINVAL, "ban %zu: peer_id empty or over %d bytes",
                           i, STORAGE_MAX_PEER_ID);
    }
    return STORAGE_OK;
}

/* Delete every stored ban key into wb (the list is replaced whole). */
static int wb_clear_bans(storage_t *self, rocksdb_writebatch_t *wb, char *err, size_t errlen)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db, self->ropts, self->cf[CF_PEERS]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        rocksdb_writebatch_delete_cf(wb, self->cf[CF_PEERS], k, klen);
    }
    return iter_close(it, STORAGE_OK, "peers", err, errlen);
}

int storage_put_peer_bans(storage_t *self, Alys__Storage__PeerBan *const *bans, size_t n,
                          char *err, size_t errlen)
{
    int rc = check_bans(bans, n, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rc = wb_clear_bans(self, wb, err, errlen);
    for (size_t i = 0; rc == STORAGE_OK && i < n; i++) {
        size_t len = alys__storage__peer_ban__get_packed_size(bans[i]);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) {
            rc = alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
            break;
        }
        alys__storage__peer_ban__pack(bans[i], buf);
        rocksdb_writebatch_put_cf(wb, self->cf[CF_PEERS], bans[i]->peer_id, strlen(bans[i]->peer_id),
                                  (const char *) buf, len);
        free(buf);
    }
    if (rc == STORAGE_OK)
        rc = db_write(self, wb, err, errlen);
    rocksdb_writebatch_destroy(wb);
    return rc;
}

void storage_peer_bans_free(Alys__Storage__PeerBan **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        alys__storage__peer_ban__free_unpacked(list[i], NULL);
    free(list);
}

/* Append one stored ban to the growing list; undecodable records are
 * skipped with a warning (a damaged ban must not stop the node). */
static int push_ban(Alys__Storage__PeerBan ***list, size_t *n, size_t *cap,
                    const char *val, size_t vlen)
{
    Alys__Storage__PeerBan *ban = alys__storage__peer_ban__unpack(NULL, vlen, (const uint8_t *) val);
    if (!ban) {
        log_warn("peers: skipping a ban record that does not decode");
        return 0;
    }
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        Alys__Storage__PeerBan **p = realloc(*list, c * sizeof *p);
        if (!p) {
            alys__storage__peer_ban__free_unpacked(ban, NULL);
            return -1;
        }
        *list = p;
        *cap = c;
    }
    (*list)[(*n)++] = ban;
    return 0;
}

int storage_get_peer_bans(storage_t *self, Alys__Storage__PeerBan ***out, size_t *n,
                          char *err, size_t errlen)
{
    Alys__Storage__PeerBan **list = NULL;
    size_t count = 0, cap = 0;
    int rc = STORAGE_OK;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db, self->ropts, self->cf[CF_PEERS]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t vlen;
        const char *v = rocksdb_iter_value(it, &vlen);
        if (push_ban(&list, &count, &cap, v, vlen) != 0) {
            rc = alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
            break;
        }
    }
    rc = iter_close(it, rc, "peers", err, errlen);
    if (rc != STORAGE_OK) {
        storage_peer_bans_free(list, count);
        return rc;
    }
    *out = list;
    *n = count;
    return STORAGE_OK;
}

/* ------------------------------------------------------------ reads */

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
    b->items[b->count++] = (ProtobufCBinaryData) { len, copy };
    b->bytes += len;
    return 0;
}

int storage_get_blocks(storage_t *self, uint64_t start, uint32_t count, bool headers_only,
                       size_t max_bytes, uint64_t *first, storage_blobs_t *out,
                       char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (start == 0)
        start = 1;
    *first = start;
    if (count > STORAGE_MAX_GET_BLOCKS)
        count = STORAGE_MAX_GET_BLOCKS;
    if (start > self->head.height || count == 0)
        return STORAGE_OK;
    uint64_t last = self->head.height - start + 1 < count ? self->head.height : start + count - 1;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db, self->ropts,
                                                        self->cf[headers_only ? CF_HEADERS : CF_BODIES]);
    uint8_t key[8];
    put_be64(key, start);
    size_t cap = 0, framed = 0;
    int rc = STORAGE_OK;
    uint64_t want = start;
    for (rocksdb_iter_seek(it, (const char *) key, 8); rocksdb_iter_valid(it) && want <= last;
         rocksdb_iter_next(it), want++) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != 8 || get_be64((const uint8_t *) k) != want) {
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
    rc = iter_close(it, rc, "blocks", err, errlen);
    if (rc != STORAGE_OK)
        storage_blobs_clear(out);
    return rc;
}

int storage_get_block(storage_t *self, uint64_t height, alys_block_t *out)
{
    memset(out, 0, sizeof *out);
    if (height == 0 || height > self->head.height)
        return 0;
    uint8_t key[8];
    put_be64(key, height);
    char *val;
    size_t vlen;
    char err[128];
    int rc = db_get(self, CF_BODIES, key, 8, &val, &vlen, err, sizeof err);
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
    int rc = state_read(self, pubkey, out);
    if (rc != 1)
        memset(out, 0, sizeof *out);
    return rc;
}

int storage_find_block(storage_t *self, const alys_hash_t hash, uint64_t *height)
{
    uint8_t val[8];
    char err[128];
    int rc = db_get_fixed(self, CF_HASH_INDEX, hash, ALYS_HASH_LEN, val, 8, err, sizeof err);
    if (rc < 0) {
        log_error("%s", err);
        return -1;
    }
    if (rc == 1)
        *height = get_be64(val);
    return rc;
}

/* ------------------------------------------------------------ checks and figures */

/* Records in a column family (figures only: an iterator error shows as a
 * short count, which storage_check reports as an inconsistency). */
static uint64_t count_keys(storage_t *self, int cf, uint64_t *lowest)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db, self->ropts, self->cf[cf]);
    uint64_t n = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        if (n == 0 && lowest) {
            size_t klen;
            const char *k = rocksdb_iter_key(it, &klen);
            *lowest = klen == 8 ? get_be64((const uint8_t *) k) : 0;
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
    int rc = load_head(self, err, errlen);
    bool same = memcmp(&mem, &self->head, sizeof mem) == 0
                && memcmp(&lat, &self->lattice, sizeof lat) == 0;
    self->head = mem;
    self->lattice = lat;
    if (rc != STORAGE_OK)
        return -1;
    if (!same)
        return alys_set_err(err, errlen, -1, "persisted head or lattice differs from the one in memory");
    alys_hash_t root;
    alys_lattice_root(&self->lattice, root);
    if (memcmp(root, self->head.state_root, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, -1, "lattice root != head state root");
    return load_head_header(self, err, errlen) == STORAGE_OK ? 0 : -1;
}

static int lattice_add_kv(alys_lattice_t *l, const char *k, size_t klen, const char *v, size_t vlen)
{
    if (klen != ALYS_PUBKEY_LEN || vlen != ACCOUNT_LEN)
        return -1;
    alys_account_t a;
    account_from_bytes((const uint8_t *) v, &a);
    if (account_is_zero(&a))
        return -1;    /* zero accounts are deleted, never stored */
    alys_lattice_add_account(l, (const uint8_t *) k, &a);
    return 0;
}

static int check_state(storage_t *self, char *err, size_t errlen)
{
    alys_lattice_t l;
    alys_lattice_zero(&l);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db, self->ropts, self->cf[CF_STATE]);
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
    if (iter_close(it, rc, "state", err, errlen) != 0)
        return -1;
    alys_hash_t root;
    alys_lattice_root(&l, root);
    if (memcmp(root, self->head.state_root, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, -1, "recomputed state root over all accounts != head state root");
    return 0;
}

/* Block h: header links to its parent, body's header equals it, hash indexed. */
static int check_block(storage_t *self, uint64_t h, alys_header_t *parent, alys_hash_t parent_hash,
                       char *err, size_t errlen)
{
    alys_header_t hdr;
    alys_hash_t hash;
    if (load_header(self, h, &hdr, hash, err, errlen) != 1)
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
    for (uint64_t h = 1; h <= self->head.height; h++)
        if (check_block(self, h, &parent, parent_hash, err, errlen) != 0)
            return -1;
    if (memcmp(parent_hash, self->head.hash, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, -1, "chain does not end at the head hash");
    storage_stats_t st;
    storage_stats(self, &st);
    uint64_t indexed = count_keys(self, CF_HASH_INDEX, NULL);
    uint64_t headers = count_keys(self, CF_HEADERS, NULL);
    if (st.blocks != self->head.height || headers != self->head.height || indexed != self->head.height)
        return alys_set_err(err, errlen, -1, "%llu bodies, %llu headers, %llu indexed for head %llu",
                       (unsigned long long) st.blocks, (unsigned long long) headers,
                       (unsigned long long) indexed, (unsigned long long) self->head.height);
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
