/*  storage_internal.h: what the files of the store share with each other.
 *  Nothing outside actors/storage includes it except the storage unit tests
 *  (which check the record encodings byte for byte); service.c and main.c
 *  use storage.h only.
 *
 *  The store is one module split along its seams, one file each:
 *
 *    storage_schema.c       column families, key layouts and the encoding of
 *                           every record (head, account, undo, checkpoint);
 *                           the RocksDB plumbing every other file uses
 *    storage_open.c         open and recovery: RocksDB options, first
 *                           initialisation from the genesis, loading and
 *                           checking the head, destroy, accessors
 *    storage_execute.c      execution of a batch and its commit in ONE
 *                           WriteBatch (storage_batch_t, below)
 *    storage_reorg.c        a reorg: the old branch undone and the new one
 *                           executed in ONE WriteBatch, all or nothing
 *    storage_rollback.c     rollback through the undo records, one
 *                           WriteBatch
 *    storage_checkpoints.c  checkpoints (written with batches or on demand,
 *                           pruned, listed) and the peer ban list
 *    storage_read.c         reads: blocks, headers, accounts, hash index
 *    storage_check.c        consistency check and figures
 *    storage_fence.c        the producers' signing fence records (read,
 *                           check-and-set with a synced write)
 *
 *  State: all of it hangs off struct storage (below); no file has statics
 *  other than constant tables. Every RocksDB call that takes an errptr is
 *  checked; the message RocksDB returns is freed with rocksdb_free and copied
 *  into the caller's err.
 */
#ifndef ALYS_STORAGE_INTERNAL_H
#define ALYS_STORAGE_INTERNAL_H

#include <rocksdb/c.h>

#include "storage.h"

/* ------------------------------------------------------------ schema */

/* Column families, in the order they are opened (handles in db.cf[]). */
enum {
    CF_DEFAULT,
    CF_HEADERS,
    CF_BODIES,
    CF_HASH_INDEX,
    CF_STATE,
    CF_UNDO,
    CF_META,
    CF_CHECKPOINTS,
    CF_PEERS,
    CF_COUNT
};

/* Their names in the database ("default", "headers", ...). */
extern const char *const storage_cf_names[CF_COUNT];

/* Keys of the meta column family. */
#define META_FORMAT           "format"
#define META_GENESIS_HASH     "genesis_hash"
#define META_GENESIS          "genesis"
#define META_HEAD             "head"
#define META_LATTICE          "lattice"
#define META_ADDR_BOOK        "peers/book" /* PeerManager's address book (storage_peers.c) */
/* Fence records: META_FENCE_PREFIX || authority pubkey[32] (storage.h). */
#define META_FENCE_PREFIX     "fence/"
#define META_FENCE_PREFIX_LEN 6
#define FENCE_KEY_LEN         (META_FENCE_PREFIX_LEN + ALYS_PUBKEY_LEN)
#define FENCE_RECORD_LEN      (8 + ALYS_HASH_LEN) /* slot BE64 || header hash[32] */

#define HEIGHT_KEY_LEN  8 /* height BE64 */
#define HEAD_RECORD_LEN (8 + ALYS_HASH_LEN + ALYS_HASH_LEN + 8)
#define ACCOUNT_LEN     16 /* balance LE64 || nonce LE64 */
#define UNDO_VERSION    1
#define UNDO_HEADER_LEN 5 /* version u8 || count u32 LE */
#define UNDO_ENTRY_LEN  (ALYS_PUBKEY_LEN + ACCOUNT_LEN)
#define BLOB_FRAMING    6 /* tag + length varint of one item */

/* ------------------------------------------------------------ state */

/* RocksDB handles, owned by the store (storage_open / storage_destroy). */
typedef struct {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_cache_t *cache;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_readoptions_t *ropts;
    /* Range reads of blocks and headers (serving peers, export): fill_cache
     * off, so blocks read once do not fill the block cache (a serving node's
     * storage otherwise grows to the whole cache, 512 MiB by default). */
    rocksdb_readoptions_t *ropts_scan;
    rocksdb_writeoptions_t *wopts;
    rocksdb_writeoptions_t *wopts_sync; /* sync = true whatever wal_sync says: fences */
} storage_db_t;

/* What the configuration asks of the store (copied at open). */
typedef struct {
    uint64_t checkpoint_interval;
    uint32_t max_checkpoints;
    uint32_t max_reorg_depth;
    bool wal_sync;
} storage_policy_t;

/* Heights of the stored checkpoints, ascending, mirrored in memory so that
 * pruning and rollback need no scan. */
typedef struct {
    uint64_t *heights;
    size_t count, cap;
} storage_cps_t;

struct storage {
    char db_path[ALYS_PATH_MAX + 8];
    storage_db_t db;
    storage_policy_t policy;

    alys_genesis_t genesis;
    storage_head_t head;
    alys_header_t head_header; /* the head's header; alys_genesis_parent at 0 */
    alys_lattice_t lattice;    /* lattice of the committed state */
    alys_overlay_t *overlay;   /* reused by every batch */
    storage_cps_t cps;

    alys_metrics_t *metrics; /* borrowed, may be NULL */
};

/* ------------------------------------------------------------ records (pure) */

static inline void put_be64(uint8_t *p, uint64_t x)
{
    for (int i = 7; i >= 0; i--, x >>= 8)
        p[i] = (uint8_t) x;
}

static inline uint64_t get_be64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    return x;
}

static inline void put_le64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++, x >>= 8)
        p[i] = (uint8_t) x;
}

static inline uint64_t get_le64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = x << 8 | p[i];
    return x;
}

static inline bool account_is_zero(const alys_account_t *a)
{
    return a->balance == 0 && a->nonce == 0;
}

void storage_account_encode(const alys_account_t *a, uint8_t out[ACCOUNT_LEN]);
void storage_account_decode(const uint8_t in[ACCOUNT_LEN], alys_account_t *a);
/* Height, hash, state root and slot; last_checkpoint and genesis_hash are
 * not part of the record (decode leaves them as they were). */
void storage_head_encode(const storage_head_t *h, uint8_t out[HEAD_RECORD_LEN]);
void storage_head_decode(const uint8_t in[HEAD_RECORD_LEN], storage_head_t *h);
/* The key of an authority's fence record and the record itself. */
void storage_fence_key(const uint8_t authority[ALYS_PUBKEY_LEN], uint8_t out[FENCE_KEY_LEN]);
void storage_fence_encode(uint64_t slot, const alys_hash_t hash, uint8_t out[FENCE_RECORD_LEN]);
void storage_fence_decode(const uint8_t in[FENCE_RECORD_LEN], alys_fence_record_t *r);

/* The undo record of one block, built while it executes. The buffer is
 * owned by the builder; storage_undo_free releases it. */
typedef struct {
    uint8_t *bytes;
    size_t len, cap;
} storage_undo_t;

/* Start the record of a block of tx_count txs, reserving its worst case
 * (sender and recipient per tx plus the proposer) so that appending never
 * allocates. 0, or -1 out of memory. */
int storage_undo_reserve(storage_undo_t *u, uint32_t tx_count);
/* Append (pubkey, value before the block). Beyond the reservation the entry
 * is dropped (cannot happen; storage_undo_count of the result then fails). */
void storage_undo_append(storage_undo_t *u, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                         const alys_account_t *before);
/* Write the entry count into the record's header. */
void storage_undo_finish(storage_undo_t *u);
void storage_undo_free(storage_undo_t *u);
/* Number of entries of a stored record: 0 with *count set; -1 bad header
 * (too short, unknown version); -2 length disagrees with the count. Entry i
 * is at rec + UNDO_HEADER_LEN + i * UNDO_ENTRY_LEN: pubkey, then the account
 * as storage_account_decode reads it. */
int storage_undo_count(const uint8_t *rec, size_t len, uint32_t *count);

/* The BlockCheckpoint of a block, packed. progress NULL: a minimal
 * SyncProgress naming this checkpoint (with checkpoint frequency interval).
 * *out is malloc'ed, freed by the caller. 0, or -1 out of memory. */
int storage_checkpoint_pack(const alys_header_t *h, const alys_hash_t hash,
                            const Alys__Progress__SyncProgress *progress, uint64_t interval,
                            uint64_t now_ms, uint8_t **out, size_t *len);

/* ------------------------------------------------------------ RocksDB plumbing */

/* True (and err filled, *e freed) if a RocksDB call reported an error. */
bool storage_rdb_failed(char **e, char *err, size_t errlen, const char *what);
/* Destroy an iterator, folding its error (if any) into rc and err. */
int storage_iter_close(rocksdb_iterator_t *it, int rc, const char *what, char *err, size_t errlen);
/* A value (malloc'ed by RocksDB, freed by the caller with rocksdb_free).
 * 1 found, 0 absent, STORAGE_EIO on error. */
int storage_db_get(storage_t *self, int cf, const void *key, size_t klen, char **val,
                   size_t *vlen, char *err, size_t errlen);
/* A value of exactly want bytes into out. 1, 0 absent, STORAGE_EIO (also
 * when the stored value has another size: the database is damaged). */
int storage_db_get_fixed(storage_t *self, int cf, const void *key, size_t klen, void *out,
                         size_t want, char *err, size_t errlen);
/* Apply wb atomically (WAL fsynced first when wal_sync). */
int storage_db_write(storage_t *self, rocksdb_writebatch_t *wb, char *err, size_t errlen);
void storage_wb_put_height(rocksdb_writebatch_t *wb, storage_t *self, int cf, uint64_t h,
                           const void *val, size_t vlen);
void storage_wb_delete_height(rocksdb_writebatch_t *wb, storage_t *self, int cf, uint64_t h);
void storage_wb_put_meta(rocksdb_writebatch_t *wb, storage_t *self, const char *key,
                         const void *val, size_t len);
/* Head record and lattice, always written together. */
void storage_wb_put_head(rocksdb_writebatch_t *wb, storage_t *self, const storage_head_t *head,
                         const alys_lattice_t *lattice);
/* The committed account (the state read callback of the execution view;
 * ctx is the store). 1 found, 0 absent, -1 error (logged). */
int storage_state_read(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out);
/* Header stored at height (1..head), and its hash (hash may be NULL).
 * 1, 0 absent, STORAGE_EIO. */
int storage_load_header(storage_t *self, uint64_t height, alys_header_t *h, alys_hash_t hash,
                        char *err, size_t errlen);

/* ------------------------------------------------------------ batches (storage_execute.c) */

/* One ExecuteBatch (or reorg) in progress: the blocks staged into one
 * WriteBatch, the state changes in the store's overlay. */
typedef struct {
    storage_t *self;
    rocksdb_writebatch_t *wb;
    alys_state_view_t view;
    const Alys__Progress__SyncProgress *progress;
    storage_batch_result_t *out;
    uint64_t now_slot;
    /* The last block of the chain as this batch has it so far: the head,
     * or a reorg's ancestor before its first block. */
    alys_header_t cursor;
    alys_hash_t cursor_hash;
    /* Blocks at or below this height are compared with the committed ones
     * (acknowledged or a fork), never executed: the head, or a reorg's
     * ancestor (the blocks above it are being replaced). */
    uint64_t dup_upto;
    bool started; /* a block has been accepted (dup or new) */
    /* Undo record of the block being executed. */
    storage_undo_t undo;
    /* What the batch adds. */
    uint32_t executed; /* UINT32_MAX: staging failed, nothing may be written */
    uint64_t txs;
    storage_cps_t cps;
} storage_batch_t;

/* A batch on top of the head (cursor, dup_upto and view as for a plain
 * ExecuteBatch; a reorg moves cursor and dup_upto to its ancestor). The
 * overlay is reset. storage_batch_clear frees it whatever happened. */
void storage_batch_init(storage_batch_t *b, storage_t *self,
                        const Alys__Progress__SyncProgress *progress, storage_batch_result_t *out);
/* Decode, link, execute and stage one block. false: it failed (out names
 * it) and the batch stops. */
bool storage_batch_block(storage_batch_t *b, const ProtobufCBinaryData *raw);
/* State, head, lattice, undo and checkpoint pruning into the WriteBatch,
 * then write it; the in-memory head follows only after RocksDB applied it. */
int storage_batch_commit(storage_batch_t *b, char *err, size_t errlen);
void storage_batch_clear(storage_batch_t *b);
/* alys_storage_block_failures_total{reason} when out names a failure. */
void storage_batch_count_failure(storage_t *self, const storage_batch_result_t *out);

/* ------------------------------------------------------------ rollback (storage_rollback.c) */

/* What undoing block h (1..head) needs: its undo record (*rec, freed with
 * rocksdb_free) and its header hash. STORAGE_EINVAL "no undo data for
 * block h" (outside the kept window), STORAGE_EIO (read failure, or no
 * header: damaged); *rec is set only on STORAGE_OK. */
int storage_undo_load(storage_t *self, uint64_t h, char **rec, size_t *len, alys_hash_t hash,
                      char *err, size_t errlen);

/* ------------------------------------------------------------ open and recovery */

/* Head record and lattice as persisted into self->head and self->lattice
 * (last_checkpoint and genesis_hash kept). */
int storage_load_head(storage_t *self, char *err, size_t errlen);
/* The head's header (checked against the head hash) or the genesis parent. */
int storage_load_head_header(storage_t *self, char *err, size_t errlen);

/* ------------------------------------------------------------ checkpoints */

/* Append a height to the in-memory list. 0, or -1 out of memory. */
int storage_cps_push(storage_cps_t *cps, uint64_t h);
/* The checkpoint record of a block into wb. 0, or -1 out of memory. */
int storage_wb_put_checkpoint(rocksdb_writebatch_t *wb, storage_t *self, const alys_header_t *h,
                              const alys_hash_t hash, const Alys__Progress__SyncProgress *progress);
/* Delete from wb the oldest checkpoints beyond max_checkpoints once
 * added[0..nadded) (ascending, above the stored ones) join the list. Returns
 * how many of the merged list are dropped from its front. */
size_t storage_wb_prune_checkpoints(rocksdb_writebatch_t *wb, storage_t *self,
                                    const uint64_t *added, size_t nadded);
/* After a successful write: the in-memory list = merged list minus drop;
 * head.last_checkpoint follows. */
void storage_cps_apply(storage_t *self, const uint64_t *added, size_t nadded, size_t drop);

#endif
