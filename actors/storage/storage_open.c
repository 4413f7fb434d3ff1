/*  storage_open.c: open and recovery. RocksDB options (restart speed and
 *  flat memory), first initialisation from the genesis in one WriteBatch,
 *  and on every later open: format, genesis, checkpoints, head and lattice,
 *  checked against each other before the store serves anything (layout and
 *  genesis rule in storage.h). Also destroy and the accessors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "membudget.h"
#include "storage_internal.h"
#include "util.h"

/* Cache and memtables are sized from the memory budget (membudget.h). The
 * memtables are a bounded total (write buffer manager) rather than 64 MiB
 * per column family by default, so the process's memory stays flat however
 * long the chain gets. */
/* Table files kept open at once (the rest are opened on demand): bounds file
 * descriptors and keeps the open from touching every table file. */
#define MAX_OPEN_TABLE_FILES 512

/* ------------------------------------------------------------ RocksDB */

/* After a kill -9 the open replays the write-ahead log; by default RocksDB
 * then writes what it replayed to a new table file (a write, its fsyncs and
 * a manifest update) before the open returns. avoid_flush_during_recovery
 * keeps the replayed writes in the memtable and the old log until the next
 * ordinary flush: the same durability, a faster restart. The C API has no
 * setter for it, hence the option string. On failure the defaults stay. */
static rocksdb_options_t *with_recovery_options(rocksdb_options_t *opts)
{
    rocksdb_options_t *tuned = rocksdb_options_create();
    char *e = NULL;
    rocksdb_get_options_from_string(opts, "avoid_flush_during_recovery=true", tuned, &e);
    if (e) {
        log_warn("RocksDB: avoid_flush_during_recovery not set: %s", e);
        rocksdb_free(e);
        rocksdb_options_destroy(tuned);
        return opts;
    }
    rocksdb_options_destroy(opts);
    return tuned;
}

static rocksdb_options_t *db_options(rocksdb_cache_t *cache, const alys_membudget_t *mb)
{
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, cache);
    /* Bloom filters make the lookups of absent keys (new recipients, hash
     * index misses) skip the data blocks; the policy is owned by t. */
    rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom(10));
    /* Index and filter blocks in the (bounded) cache, not beside it, so
     * memory does not grow with the number of table files. */
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);

    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(opts, 1);
    rocksdb_options_set_create_missing_column_families(opts, 1);
    rocksdb_options_set_block_based_table_factory(opts, t);
    rocksdb_block_based_options_destroy(t);
    rocksdb_options_set_write_buffer_size(opts, (size_t) mb->cf_write_buffer_bytes);
    rocksdb_options_set_db_write_buffer_size(opts, (size_t) mb->write_buffer_bytes);
    rocksdb_options_set_max_background_jobs(opts, 2);
    rocksdb_options_set_keep_log_file_num(opts, 4);
    /* Point-in-time recovery: replay the WAL up to the last whole record.
     * A torn batch at the tail is dropped whole (the atomicity we rely on). */
    rocksdb_options_set_wal_recovery_mode(opts, 2);
    /* Restart speed (the supervisor's replacement is ready sooner): table
     * files are opened when first read, not all of them, each on a thread
     * of its own, before the open returns; statistics are not re-read from
     * every table file; and only warnings go to RocksDB's LOG (at info level
     * every open wrote ~100 KB of option dumps for the column families). */
    rocksdb_options_set_max_open_files(opts, MAX_OPEN_TABLE_FILES);
    rocksdb_options_set_max_file_opening_threads(opts, 1);
    rocksdb_options_set_skip_stats_update_on_db_open(opts, 1);
    rocksdb_options_set_info_log_level(opts, 2 /* WARN_LEVEL */);
    return with_recovery_options(opts);
}

static int open_db(storage_t *self, const alys_config_t *cfg, char *err, size_t errlen)
{
    storage_db_t *d = &self->db;
    alys_membudget_t mb;
    char why[ALYS_ERR_MAX];
    if (alys_membudget_derive(&mb, cfg->max_memory_gb, cfg->cache_size_mb, why, sizeof why) != 0)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "%s", why);
    d->cache = rocksdb_cache_create_lru((size_t) mb.cache_bytes);
    d->opts = db_options(d->cache, &mb);
    const rocksdb_options_t *cf_opts[CF_COUNT];
    for (int i = 0; i < CF_COUNT; i++)
        cf_opts[i] = d->opts;
    char *e = NULL;
    d->db = rocksdb_open_column_families(d->opts, self->db_path, CF_COUNT, storage_cf_names,
                                         cf_opts, d->cf, &e);
    if (e) {
        alys_set_err(err, errlen, STORAGE_EIO, "cannot open database at %s: %s", self->db_path, e);
        rocksdb_free(e);
        d->db = NULL;
        return STORAGE_EIO;
    }
    d->ropts = rocksdb_readoptions_create();
    d->ropts_scan = rocksdb_readoptions_create();
    rocksdb_readoptions_set_fill_cache(d->ropts_scan, 0);
    d->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(d->wopts, self->policy.wal_sync ? 1 : 0);
    /* A fence record is acknowledged only once fsync'ed, whatever wal_sync
     * says for blocks: a lost block is fetched again, a lost fence record
     * could let the producer sign a second block for a slot. */
    d->wopts_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(d->wopts_sync, 1);
    return STORAGE_OK;
}

/* ------------------------------------------------------------ first open */

/* The genesis accounts, lattice, genesis and head in one batch. */
static int init_genesis(storage_t *self, const alys_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->genesis_file[0])
        return alys_set_err(err, errlen, STORAGE_EINVAL,
                            "database at %s is empty and no genesis is configured "
                            "(set genesis_file in [node])",
                            self->db_path);
    char gerr[256];
    if (alys_genesis_load(cfg->genesis_file, &self->genesis, gerr, sizeof gerr) != 0)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "genesis_file %s: %s", cfg->genesis_file,
                            gerr);
    uint8_t *genc;
    size_t glen;
    if (alys_genesis_encode(&self->genesis, &genc, &glen) != 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "cannot encode the genesis (out of memory?)");

    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (uint32_t i = 0; i < self->genesis.balance_count; i++) {
        alys_account_t a = {.balance = self->genesis.balances[i].balance, .nonce = 0};
        if (account_is_zero(&a))
            continue;
        uint8_t val[ACCOUNT_LEN];
        storage_account_encode(&a, val);
        rocksdb_writebatch_put_cf(wb, self->db.cf[CF_STATE],
                                  (const char *) self->genesis.balances[i].pubkey,
                                  ALYS_PUBKEY_LEN, (const char *) val, sizeof val);
    }
    alys_lattice_from_genesis(&self->lattice, &self->genesis);
    memset(&self->head, 0, sizeof self->head);
    memcpy(self->head.hash, self->genesis.hash, ALYS_HASH_LEN);
    memcpy(self->head.state_root, self->genesis.state_root, ALYS_HASH_LEN);
    storage_wb_put_meta(wb, self, META_FORMAT, STORAGE_FORMAT, strlen(STORAGE_FORMAT));
    storage_wb_put_meta(wb, self, META_GENESIS_HASH, self->genesis.hash, ALYS_HASH_LEN);
    storage_wb_put_meta(wb, self, META_GENESIS, genc, glen);
    storage_wb_put_head(wb, self, &self->head, &self->lattice);
    free(genc);
    int rc = storage_db_write(self, wb, err, errlen);
    rocksdb_writebatch_destroy(wb);
    if (rc == STORAGE_OK) {
        char hex[2 * ALYS_HASH_LEN + 1];
        alys_hex(self->genesis.hash, ALYS_HASH_LEN, hex);
        log_info("initialised %s from genesis %s (%s, %u accounts)", self->db_path, hex,
                 cfg->genesis_file, self->genesis.balance_count);
    }
    return rc;
}

/* ------------------------------------------------------------ later opens */

static int load_stored_genesis(storage_t *self, char *err, size_t errlen)
{
    char *val;
    size_t vlen;
    int rc = storage_db_get(self, CF_META, META_GENESIS, strlen(META_GENESIS), &val, &vlen, err,
                            errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO,
                            "database at %s has a genesis hash but no genesis", self->db_path);
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
        return alys_set_err(err, errlen, STORAGE_EIO,
                            "stored genesis does not hash to %s (damaged)", a);
    if (!cfg->genesis_file[0])
        return STORAGE_OK;
    alys_genesis_t g;
    char gerr[256];
    if (alys_genesis_load(cfg->genesis_file, &g, gerr, sizeof gerr) != 0)
        return alys_set_err(err, errlen, STORAGE_EINVAL, "genesis_file %s: %s", cfg->genesis_file,
                            gerr);
    alys_hex(g.hash, ALYS_HASH_LEN, b);
    bool same = memcmp(g.hash, stored, ALYS_HASH_LEN) == 0;
    alys_genesis_clear(&g);
    if (!same)
        return alys_set_err(err, errlen, STORAGE_EINVAL,
                            "database at %s belongs to genesis %s, config names genesis %s (%s)",
                            self->db_path, a, b, cfg->genesis_file);
    return STORAGE_OK;
}

int storage_load_head(storage_t *self, char *err, size_t errlen)
{
    uint8_t rec[HEAD_RECORD_LEN], lat[ALYS_LATTICE_BYTES];
    int rc = storage_db_get_fixed(self, CF_META, META_HEAD, strlen(META_HEAD), rec, sizeof rec,
                                  err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "database at %s has no head record",
                            self->db_path);
    if (rc != 1)
        return rc;
    rc = storage_db_get_fixed(self, CF_META, META_LATTICE, strlen(META_LATTICE), lat, sizeof lat,
                              err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "database at %s has no lattice", self->db_path);
    if (rc != 1)
        return rc;
    storage_head_decode(rec, &self->head);
    memcpy(self->head.genesis_hash, self->genesis.hash, ALYS_HASH_LEN);
    alys_lattice_from_bytes(&self->lattice, lat);
    return STORAGE_OK;
}

int storage_load_head_header(storage_t *self, char *err, size_t errlen)
{
    if (self->head.height == 0) {
        alys_genesis_parent(&self->genesis, &self->head_header);
        return memcmp(self->head.hash, self->genesis.hash, ALYS_HASH_LEN) == 0
                   ? STORAGE_OK
                   : alys_set_err(err, errlen, STORAGE_EIO,
                                  "head at height 0 is not the genesis hash");
    }
    alys_hash_t hash;
    int rc = storage_load_header(self, self->head.height, &self->head_header, hash, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "no header for the head %llu (damaged)",
                            (unsigned long long) self->head.height);
    if (rc != 1)
        return rc;
    if (memcmp(hash, self->head.hash, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, STORAGE_EIO,
                            "header %llu does not hash to the head hash (damaged)",
                            (unsigned long long) self->head.height);
    return STORAGE_OK;
}

static int load_checkpoints(storage_t *self, char *err, size_t errlen)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db.db, self->db.ropts,
                                                        self->db.cf[CF_CHECKPOINTS]);
    int rc = STORAGE_OK;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen != HEIGHT_KEY_LEN ||
            storage_cps_push(&self->cps, get_be64((const uint8_t *) k)) != 0) {
            rc = alys_set_err(err, errlen, STORAGE_EIO, "checkpoints: bad key or out of memory");
            break;
        }
    }
    rc = storage_iter_close(it, rc, "checkpoints", err, errlen);
    self->head.last_checkpoint = self->cps.count ? self->cps.heights[self->cps.count - 1] : 0;
    return rc;
}

/* Undo records older than the window (a smaller max_reorg_depth than the
 * last run's) would never be pruned by commits: drop them now. */
/* True when the undo column family holds a record below height keep_from.
 * A range deletion costs a write (an fsync with wal_sync) and a tombstone
 * every later read steps over, so it is written only when there is
 * something to delete: most opens find nothing. */
static bool stale_undo_exists(storage_t *self, uint64_t keep_from)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(self->db.db, self->db.ropts,
                                                        self->db.cf[CF_UNDO]);
    rocksdb_iter_seek_to_first(it);
    bool stale = false;
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        stale = klen < HEIGHT_KEY_LEN || get_be64((const uint8_t *) k) < keep_from;
    } else {
        char *e = NULL;
        rocksdb_iter_get_error(it, &e);
        stale = e != NULL; /* unsure: prune, as before */
        rocksdb_free(e);
    }
    rocksdb_iter_destroy(it);
    return stale;
}

static int prune_stale_undo(storage_t *self, char *err, size_t errlen)
{
    uint64_t depth = self->policy.max_reorg_depth;
    uint64_t keep_from = self->head.height >= depth ? self->head.height - depth + 1 : 1;
    if (!stale_undo_exists(self, keep_from))
        return STORAGE_OK;
    uint8_t lo[HEIGHT_KEY_LEN], hi[HEIGHT_KEY_LEN];
    put_be64(lo, 0);
    put_be64(hi, keep_from);
    char *e = NULL;
    rocksdb_delete_range_cf(self->db.db, self->db.wopts, self->db.cf[CF_UNDO], (const char *) lo,
                            sizeof lo, (const char *) hi, sizeof hi, &e);
    return storage_rdb_failed(&e, err, errlen, "undo prune") ? STORAGE_EIO : STORAGE_OK;
}

static int check_format(storage_t *self, char *err, size_t errlen)
{
    char *val;
    size_t vlen;
    int rc = storage_db_get(self, CF_META, META_FORMAT, strlen(META_FORMAT), &val, &vlen, err, errlen);
    if (rc == 0)
        return alys_set_err(err, errlen, STORAGE_EIO, "database at %s has no format record",
                            self->db_path);
    if (rc != 1)
        return rc;
    bool ok = vlen == strlen(STORAGE_FORMAT) && memcmp(val, STORAGE_FORMAT, vlen) == 0;
    if (!ok)
        alys_set_err(err, errlen, STORAGE_EINVAL,
                     "database at %s has format \"%.*s\", this build reads \"%s\"", self->db_path,
                     (int) (vlen > 64 ? 64 : vlen), val, STORAGE_FORMAT);
    rocksdb_free(val);
    return ok ? STORAGE_OK : STORAGE_EINVAL;
}

/* Genesis, head, lattice, checkpoints; then the cheap integrity checks. */
static int load_state(storage_t *self, const alys_config_t *cfg, char *err, size_t errlen)
{
    alys_hash_t stored;
    int rc = storage_db_get_fixed(self, CF_META, META_GENESIS_HASH, strlen(META_GENESIS_HASH),
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
        rc = storage_load_head(self, err, errlen);
    if (rc == STORAGE_OK)
        rc = storage_load_head_header(self, err, errlen);
    if (rc != STORAGE_OK)
        return rc;
    alys_hash_t root;
    alys_lattice_root(&self->lattice, root);
    if (memcmp(root, self->head.state_root, ALYS_HASH_LEN) != 0)
        return alys_set_err(err, errlen, STORAGE_EIO,
                            "lattice root != state root of head %llu (damaged)",
                            (unsigned long long) self->head.height);
    return prune_stale_undo(self, err, errlen);
}

/* ------------------------------------------------------------ life cycle */

storage_t *storage_open(const alys_config_t *cfg, char *err, size_t errlen)
{
    storage_t *self = calloc(1, sizeof *self);
    if (!self) {
        alys_set_err(err, errlen, STORAGE_EIO, "out of memory");
        return NULL;
    }
    self->policy = (storage_policy_t){
        .checkpoint_interval = cfg->checkpoint_interval,
        .max_checkpoints = cfg->max_checkpoints,
        .max_reorg_depth = cfg->max_reorg_depth,
        .wal_sync = cfg->wal_sync,
    };
    snprintf(self->db_path, sizeof self->db_path, "%s/db", cfg->data_dir);
    int rc = STORAGE_OK;
    if (alys_mkdir_p(cfg->data_dir, 0750) != 0)
        rc = alys_set_err(err, errlen, STORAGE_EIO, "cannot create data_dir %s: %s",
                          cfg->data_dir, strerror(errno));
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
             (unsigned long long) self->head.height, self->policy.wal_sync ? "on" : "off",
             self->cps.count);
    return self;
}

/* On a clean stop, write the memtables out before closing. Without it the
 * next open replays the whole write-ahead log (tens of MB after an import
 * with wal_sync off), which under load or a sanitizer build outlasts the
 * supervisor's start_timeout_ms: every retry is killed mid-replay and the
 * node never starts. A kill -9 skips this, and its replay stays bounded by
 * the write buffers. A failed flush is only logged: the WAL still holds
 * everything, the next open is merely slower. */
static void flush_memtables(storage_db_t *d)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    if (!fo)
        return;
    rocksdb_flushoptions_set_wait(fo, 1);
    for (int i = 0; i < CF_COUNT; i++) {
        if (!d->cf[i])
            continue;
        char *err = NULL;
        rocksdb_flush_cf(d->db, fo, d->cf[i], &err);
        if (err) {
            log_warn("storage: flushing %s on close: %s", storage_cf_names[i], err);
            rocksdb_free(err);
        }
    }
    rocksdb_flushoptions_destroy(fo);
}

static void close_db(storage_db_t *d)
{
    if (d->db) {
        flush_memtables(d);
        for (int i = 0; i < CF_COUNT; i++)
            if (d->cf[i])
                rocksdb_column_family_handle_destroy(d->cf[i]);
        rocksdb_close(d->db);
    }
    if (d->ropts)
        rocksdb_readoptions_destroy(d->ropts);
    if (d->ropts_scan)
        rocksdb_readoptions_destroy(d->ropts_scan);
    if (d->wopts)
        rocksdb_writeoptions_destroy(d->wopts);
    if (d->wopts_sync)
        rocksdb_writeoptions_destroy(d->wopts_sync);
    if (d->opts)
        rocksdb_options_destroy(d->opts);
    if (d->cache)
        rocksdb_cache_destroy(d->cache);
}

void storage_destroy(storage_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    storage_t *self = *self_p;
    close_db(&self->db);
    alys_overlay_destroy(&self->overlay);
    alys_genesis_clear(&self->genesis);
    free(self->cps.heights);
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
        /* Fork choice's counters at 0 from the start (storage_reorg.c).
         * The depth histogram alys_chain_reorg_depth appears with the
         * first reorg: the registry has no way to declare a histogram. */
        alys_metric_declare(m, "alys_chain_reorgs_total", NULL,
                            "Reorgs committed (a longer branch replaced blocks of ours)");
        alys_metric_declare(m, "alys_chain_reorgs_refused_total", NULL,
                            "Reorgs refused because the fork point is more than max_reorg_depth "
                            "below the head");
    }
}

static void memory_gauge(alys_metrics_t *m, const char *part, uint64_t bytes)
{
    char labels[48];
    snprintf(labels, sizeof labels, "part=\"%s\"", part);
    alys_metric_set(m, "alys_storage_rocksdb_bytes", labels,
                    "Memory RocksDB holds, by part (block cache includes pinned)", (double) bytes);
}

void storage_publish_memory(storage_t *self)
{
    storage_db_t *d = &self->db;
    if (!self->metrics || !d->db || !d->cache)
        return;
    rocksdb_memory_consumers_t *c = rocksdb_memory_consumers_create();
    if (!c)
        return;
    rocksdb_memory_consumers_add_db(c, d->db);
    rocksdb_memory_consumers_add_cache(c, d->cache);
    char *e = NULL;
    rocksdb_memory_usage_t *u = rocksdb_approximate_memory_usage_create(c, &e);
    if (e) {
        log_warn("cannot read RocksDB's memory usage: %s", e);
        rocksdb_free(e);
    } else if (u) {
        memory_gauge(self->metrics, "memtables",
                     rocksdb_approximate_memory_usage_get_mem_table_total(u));
        memory_gauge(self->metrics, "table_readers",
                     rocksdb_approximate_memory_usage_get_mem_table_readers_total(u));
        memory_gauge(self->metrics, "block_cache",
                     rocksdb_approximate_memory_usage_get_cache_total(u));
    }
    if (u)
        rocksdb_approximate_memory_usage_destroy(u);
    rocksdb_memory_consumers_destroy(c);
    memory_gauge(self->metrics, "block_cache_pinned", rocksdb_cache_get_pinned_usage(d->cache));
}

const alys_genesis_t *storage_genesis(const storage_t *self)
{
    return &self->genesis;
}

void storage_head(const storage_t *self, storage_head_t *out)
{
    *out = self->head;
}

void storage_head_state(const storage_t *self, alys_header_t *header, alys_lattice_t *lattice)
{
    *header = self->head_header;
    *lattice = self->lattice;
}

const char *storage_db_path(const storage_t *self)
{
    return self->db_path;
}
