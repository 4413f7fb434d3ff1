/*  storage.h: StorageActor's store. RocksDB, sequential execution of blocks
 *  against the account state, one atomic commit per batch. No sockets: main.c
 *  and service.c move bytes; tests drive this module directly. The
 *  implementation is one file per seam (schema and records, open and
 *  recovery, execute and commit, rollback, checkpoints and bans, reads,
 *  check); storage_internal.h lists them and holds what they share.
 *
 *  DATABASE
 *  --------
 *  One RocksDB database at <data_dir>/db with these column families. Heights
 *  are 8-byte big-endian keys (so byte order = height order for iterators and
 *  for `ldb scan`); hashes are the 32-byte alys_header_hash of the header.
 *
 *    headers      height BE64        -> alys.chain.Header (alys_header_encode)
 *    bodies       height BE64        -> alys.chain.Block, the bytes exactly as
 *                                       received (so export gives back the
 *                                       imported bytes)
 *    hash_index   header hash [32]   -> height BE64
 *    state        pubkey [32]        -> balance LE64 || nonce LE64 (16 bytes);
 *                                       a zero account is deleted, not stored
 *    undo         height BE64        -> undo record of that block (below)
 *    meta         "format"           -> "alys-storage/1"
 *                 "genesis_hash"     -> 32 bytes
 *                 "genesis"          -> alys.chain.Genesis (alys_genesis_encode)
 *                 "head"             -> height BE64 || hash[32] || state_root[32]
 *                                       || slot BE64   (80 bytes)
 *                 "lattice"          -> the state lattice, ALYS_LATTICE_BYTES
 *                                       (2048; alys_lattice_to_bytes)
 *                 "fence/" || authority pubkey[32]   (38-byte key)
 *                                    -> slot BE64 || header hash[32] (40 bytes):
 *                                       the signing fence record of that
 *                                       authority (below)
 *    checkpoints  height BE64        -> alys.chain.BlockCheckpoint
 *    peers        peer id (UTF-8)    -> alys.storage.PeerBan
 *
 *  Undo record (the accounts block H touched, with their values before H):
 *      version u8 = 1 || count u32 LE || count x (pubkey[32] || balance LE64
 *      || nonce LE64)
 *  Undo records are kept for the heights (head - max_reorg_depth, head] and
 *  pruned in the batch that moves the head past them.
 *
 *  GENESIS AND HEIGHT 0
 *  --------------------
 *  The genesis is not a block. An empty database is initialised from the
 *  configured genesis_file: its accounts (nonce 0), lattice, the genesis
 *  itself and head = { height 0, hash = genesis hash, state_root = genesis
 *  state root, slot 0 }. Block 1 links to that head exactly as to any other:
 *  its parent_hash is the genesis hash (alys_genesis_parent in chain.h).
 *  A database whose stored genesis hash differs from the configured genesis
 *  is refused; with no genesis_file configured, a non-empty database runs on
 *  the genesis it stores, and an empty one is refused.
 *
 *  ATOMICITY AND WAL POLICY
 *  ------------------------
 *  Every change (a batch of blocks, a reorg, a rollback, a checkpoint, the
 *  ban list) is ONE rocksdb WriteBatch: the blocks' headers, bodies and hash index, the
 *  state changes, undo records, undo pruning, checkpoints and their pruning,
 *  and the new head and lattice. RocksDB applies a write batch atomically,
 *  including on WAL replay after a crash (point-in-time recovery drops a torn
 *  last record whole), so after a crash at any instant the database is at the
 *  old head or the new one, never between. The in-memory head is updated only
 *  after the write returned OK.
 *  WAL sync (config [storage] wal_sync, default true): with true every commit
 *  fsyncs the WAL before it is acknowledged, so an acknowledged commit survives
 *  power loss and OS crashes. With false the WAL is still written (write(2))
 *  before the acknowledgement, so commits survive a crash of the process
 *  (kill -9) but the last ones can be lost to an OS crash or power loss; the
 *  database then reopens at an older, still consistent head and sync simply
 *  fetches those blocks again. true costs one fsync per batch (not per block).
 *
 *  REORGS (fork choice; storage_execute_reorg, storage_reorg.c)
 *  ------
 *  A reorg is one more WriteBatch of the same kind: the old branch's undo
 *  records applied (newest first) to the execution overlay and checked
 *  against the ancestor's state root, the old blocks' headers, bodies, hash
 *  index entries, undo records and checkpoints deleted, the new blocks
 *  executed from the ancestor, the new head and lattice. Written only when
 *  every block executed and the branch ends above the old head, so after a
 *  crash the database has the old branch or the new one, whole.
 *
 *  SIGNING FENCE (issue 9; the rule is common/chain/fence.h)
 *  -------------
 *  One record per authority key: the (slot, alys_header_hash) of the last
 *  block it may have signed. storage_fence_record is a check-and-set: the
 *  stored record, alys_fence_check, and only if that allows a NEW record a
 *  write with sync = true (fsync'd WAL) whatever wal_sync says; ok is
 *  reported only after that write returned OK. The same (slot, hash) again
 *  is acknowledged without a write (it is already durable). The records live
 *  in meta under their own prefix and nothing else in the store writes or
 *  deletes them: rollback, checkpoints, recovery at open, batch execution
 *  (and so import) and the consistency check leave them as they are; a
 *  record only ever moves up, by storage_fence_record.
 *
 *  TRUST
 *  -----
 *  Blocks reaching the store have passed the stateless checks (signatures,
 *  proposer, timestamp) in the BlockProcessor. The store checks what needs
 *  the chain or the state: linkage to its head (alys_header_check_link with
 *  the wall clock's slot), execution and the state root. It also checks the
 *  tx root (alys_block_check_tx_root: hashes only, no signatures): cheap,
 *  and it guarantees the body stored under a header is the body that header
 *  commits to.
 *
 *  Ownership: storage_open returns a store freed by storage_destroy(&p),
 *  which sets p to NULL. Outputs that carry memory say who frees them. Not
 *  thread-safe: one thread (the actor loop) owns a store.
 */
#ifndef ALYS_STORAGE_H
#define ALYS_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "chain/chain.h"
#include "chain/fence.h"
#include "chain/state.h"
#include "config.h"
#include "metrics_client.h"
#include "storage.pb-c.h"

#define STORAGE_MAX_BATCH_BLOCKS 4096 /* blocks in one ExecuteBatch */
#define STORAGE_MAX_GET_BLOCKS   1024 /* blocks in one GetBlocks answer */
#define STORAGE_MAX_PEER_BANS    4096 /* entries in one PutPeerBans */
#define STORAGE_MAX_PEER_ID      256  /* bytes of a peer id */
#define STORAGE_FORMAT           "alys-storage/1"

/* The address book (storage_peers.c). */
#define STORAGE_MAX_BOOK_ENTRIES 2048    /* entries in one PutAddrBook */
#define STORAGE_MAX_BOOK_EP      255     /* bytes of a book endpoint */
#define STORAGE_MAX_BOOK_SRC     63      /* bytes of a book entry's source group */
#define STORAGE_MAX_BOOK_BYTES   1048576 /* the stored book, encoded */

/* Results of calls that can be refused. */
#define STORAGE_OK     0
#define STORAGE_EINVAL (-1) /* the request is wrong or refused; err says why */
#define STORAGE_EIO    (-2) /* RocksDB (or memory) failed; nothing was written */

typedef struct storage storage_t;

typedef struct {
    uint64_t height;
    alys_hash_t hash; /* genesis hash at height 0 */
    alys_hash_t state_root;
    uint64_t slot;
    alys_hash_t genesis_hash;
    uint64_t last_checkpoint; /* height of the newest checkpoint, 0 = none */
} storage_head_t;

typedef struct {
    uint32_t committed;         /* leading blocks of the batch now in the chain */
    uint32_t already_committed; /* of those, how many were there before */
    bool failed;
    uint64_t failed_height;  /* the expected height if it did not decode */
    alys_hash_t failed_hash; /* zeros if it did not decode */
    alys_verdict_t verdict;  /* code, tx_index, detail of the failure */
    /* A reorg whose branch executed but does not end above the old head
     * (longest chain; a tie keeps ours): verdict.code is
     * ALYS_BLOCK_PARENT_MISMATCH, the reason callers see is "not_longer"
     * (storage_batch_reason), failed_height/hash name the branch's tip. */
    bool not_longer;
    uint32_t reorg_depth;    /* blocks of the old branch undone (a committed reorg) */
    storage_head_t old_head; /* the head before the request */
    storage_head_t head;     /* after the commit */
} storage_batch_result_t;

/* The stable name of a batch failure: "not_longer", or
 * alys_block_error_name(verdict.code). */
const char *storage_batch_reason(const storage_batch_result_t *r);

/* A list of byte strings the caller owns; free with storage_blobs_clear. The
 * items are laid out as protobuf-c binary data so they can be handed to a
 * message as they are. */
typedef struct {
    ProtobufCBinaryData *items;
    size_t count;
    size_t bytes; /* sum of the lengths */
} storage_blobs_t;

typedef struct {
    uint64_t accounts; /* records in the state CF */
    uint64_t undo_records;
    uint64_t undo_lowest; /* 0 when there are none */
    uint64_t checkpoints;
    uint64_t blocks; /* records in the bodies CF */
} storage_stats_t;

/* ---- life cycle ---- */

/* Open (or create and initialise from the genesis) <cfg->data_dir>/db and
 * check it: stored genesis against cfg->genesis_file, lattice root against
 * the head's state root, the head's header against its hash. Returns NULL
 * with a one-line reason in err. Reads data_dir, genesis_file,
 * checkpoint_interval, max_checkpoints, max_reorg_depth, wal_sync,
 * max_memory_gb and cache_size_mb (cache and write buffers: membudget.h);
 * keeps no pointer to cfg. */
storage_t *storage_open(const alys_config_t *cfg, char *err, size_t errlen);
void storage_destroy(storage_t **self_p);

/* Record metrics into m (borrowed; NULL = none). */
void storage_set_metrics(storage_t *self, alys_metrics_t *m);
/* Set the RocksDB memory gauges (alys_storage_rocksdb_bytes{part=...}:
 * memtables, table readers, block cache, its pinned part) in the metrics
 * of storage_set_metrics. The process's RSS alone cannot say which of them
 * grows with the chain. */
void storage_publish_memory(storage_t *self);

const alys_genesis_t *storage_genesis(const storage_t *self);
void storage_head(const storage_t *self, storage_head_t *out);
const char *storage_db_path(const storage_t *self);
/* The head's header (alys_genesis_parent at height 0) and the lattice of the
 * committed state, as the store holds them in memory. */
void storage_head_state(const storage_t *self, alys_header_t *header, alys_lattice_t *lattice);

/* ---- the one writer ---- */

/* Execute blocks[0..n) (encoded alys.chain.Block) in order on top of the head
 * and commit every block up to the first failing one in one WriteBatch,
 * with checkpoints (BlockCheckpoint.sync_progress = progress, or one the
 * store fills when progress is NULL). Blocks at or below the head equal to
 * the committed ones are acknowledged, not re-executed. A block at or below
 * the head that differs from the committed one fails as parent_mismatch
 * (a fork: failed_height <= head height; send the branch as a reorg,
 * storage_execute_reorg, or roll back first).
 * Returns STORAGE_OK with *out filled (out->failed says whether a block
 * failed), STORAGE_EINVAL (too many blocks) or STORAGE_EIO (the commit failed:
 * nothing of the batch was written). */
int storage_execute_batch(storage_t *self, const ProtobufCBinaryData *blocks, size_t n,
                          const Alys__Progress__SyncProgress *progress,
                          storage_batch_result_t *out, char *err, size_t errlen);

/* A reorg (fork choice): undo our blocks above ancestor_height, whose block
 * must hash to ancestor_hash (the genesis hash at 0), and execute
 * blocks[0..n) from ancestor_height + 1, in ONE WriteBatch, all or nothing.
 * Refused with STORAGE_EINVAL and nothing written (err starts with a
 * stable word): "bad_ancestor" (above the head), "too_deep" (more than
 * max_reorg_depth below the head: also logged as an error and counted in
 * alys_chain_reorgs_refused_total), "ancestor_mismatch" (our block there
 * has another hash); "no undo data for block N" (undo data missing in
 * between, e.g. after max_reorg_depth was raised). Then, as
 * for a batch, STORAGE_OK with *out: a failing block (or a branch that is
 * not longer: out->not_longer) fails the whole request, out->committed 0,
 * nothing written; else every block is committed and out->reorg_depth =
 * old head - ancestor. STORAGE_EIO: damaged undo data (the state root of
 * the ancestor does not come back) or the write failed; nothing written.
 * Blocks at or below the ancestor equal to ours are acknowledged. */
int storage_execute_reorg(storage_t *self, uint64_t ancestor_height,
                          const alys_hash_t ancestor_hash, const ProtobufCBinaryData *blocks,
                          size_t n, const Alys__Progress__SyncProgress *progress,
                          storage_batch_result_t *out, char *err, size_t errlen);

/* Undo the blocks above height, atomically. Refused (STORAGE_EINVAL) if
 * height is above the head, more than max_reorg_depth below it, or undo data
 * for a block in between is missing. The resulting lattice is checked against
 * the state root of the block at height before anything is written. */
int storage_rollback(storage_t *self, uint64_t height, char *err, size_t errlen);

/* A checkpoint of the head now (refused at height 0). *out (may be NULL) is
 * the stored record, freed by the caller with
 * alys__chain__block_checkpoint__free_unpacked(*out, NULL). */
int storage_create_checkpoint(storage_t *self, const Alys__Progress__SyncProgress *progress,
                              Alys__Chain__BlockCheckpoint **out, char *err, size_t errlen);

/* Replace the stored ban list with bans[0..n). Empty or over-long peer ids are
 * refused; a repeated peer id keeps its last entry. */
int storage_put_peer_bans(storage_t *self, Alys__Storage__PeerBan *const *bans, size_t n,
                          char *err, size_t errlen);

/* ---- the signing fence (see SIGNING FENCE above) ---- */

typedef struct {
    alys_fence_verdict_t verdict; /* of the request against the stored record */
    bool ok;                      /* (slot, hash) is durably the record: may sign */
    bool written;                 /* this call wrote it (allow_new) */
    alys_fence_record_t stored;   /* the record after the call */
} storage_fence_result_t;

/* Check-and-set the fence record of authority to (slot, hash). STORAGE_OK
 * with *out filled (out->ok false: refused, out->stored is the record that
 * refused it), or STORAGE_EIO (the read or the synced write failed: nothing
 * is acknowledged; out->ok false, out->stored the record read, if any). */
int storage_fence_record(storage_t *self, const uint8_t authority[ALYS_PUBKEY_LEN], uint64_t slot,
                         const alys_hash_t hash, storage_fence_result_t *out, char *err,
                         size_t errlen);
/* The stored record (out->any false: none). STORAGE_OK or STORAGE_EIO. */
int storage_fence_get(storage_t *self, const uint8_t authority[ALYS_PUBKEY_LEN],
                      alys_fence_record_t *out, char *err, size_t errlen);

/* ---- reads ---- */

/* Blocks (or headers) from max(start, 1) while height <= head, at most
 * min(count, STORAGE_MAX_GET_BLOCKS) of them and at most max_bytes counting
 * 6 bytes of protobuf framing per item. *first is the height of item 0. */
int storage_get_blocks(storage_t *self, uint64_t start, uint32_t count, bool headers_only,
                       size_t max_bytes, uint64_t *first, storage_blobs_t *out, char *err,
                       size_t errlen);
void storage_blobs_clear(storage_blobs_t *b);

/* The block locator of our chain (wire GetHeaders.locator, storage
 * GetLocator): heights from alys_locator_heights(head, dense) (head and
 * the blocks below it one by one, dense in all, then doubling steps, the
 * genesis last) and the header hash stored at each (the genesis hash at
 * 0). At most cap entries (<= ALYS_LOCATOR_MAX suffices for any head);
 * *n says how many. */
int storage_locator(storage_t *self, uint32_t dense, uint64_t *heights, alys_hash_t *hashes,
                    size_t cap, size_t *n, char *err, size_t errlen);
/* Where a peer's locator meets our chain: *start = 1 + the height of the
 * first of hashes[0..n) (each ALYS_HASH_LEN bytes; the caller checks) that
 * is one of our blocks (the genesis hash counts as height 0), or 1 when
 * none is. STORAGE_OK or STORAGE_EIO. */
int storage_locate(storage_t *self, const ProtobufCBinaryData *hashes, size_t n, uint64_t *start,
                   char *err, size_t errlen);

/* One block, decoded (alys_block_clear frees it). 1 found, 0 not, -1 error. */
int storage_get_block(storage_t *self, uint64_t height, alys_block_t *out);

/* 1 found, 0 absent (*out zeroed), -1 on error. */
int storage_get_account(storage_t *self, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out);

/* Height of the committed block with this header hash: 1 found, 0 not, -1 error. */
int storage_find_block(storage_t *self, const alys_hash_t hash, uint64_t *height);

/* Checkpoints, oldest first. *out is a malloc'ed array of unpacked messages;
 * free with storage_checkpoints_free(*out, *n). */
int storage_list_checkpoints(storage_t *self, Alys__Chain__BlockCheckpoint ***out, size_t *n,
                             char *err, size_t errlen);
void storage_checkpoints_free(Alys__Chain__BlockCheckpoint **list, size_t n);

/* The stored bans; free with storage_peer_bans_free(*out, *n). */
int storage_get_peer_bans(storage_t *self, Alys__Storage__PeerBan ***out, size_t *n, char *err,
                          size_t errlen);
void storage_peer_bans_free(Alys__Storage__PeerBan **list, size_t n);

/* PeerManager's address book (storage_peers.c): replaced whole, every bound
 * checked (STORAGE_EINVAL names the first broken one). Get returns the
 * stored book, or an empty one when none is stored or it is damaged or over
 * its bounds (entries past them are dropped); free with
 * storage_addr_book_free. */
int storage_put_addr_book(storage_t *self, const Alys__Storage__PutAddrBook *req, char *err,
                          size_t errlen);
int storage_get_addr_book(storage_t *self, Alys__Storage__AddrBook **out, char *err, size_t errlen);
void storage_addr_book_free(Alys__Storage__AddrBook **book_p);

/* ---- checks and figures ---- */

/* Consistency of the database with its head, as persisted: the stored head
 * and lattice equal the ones in memory, lattice root == head state root, the
 * head's header hashes to the head hash. full also recomputes the state root
 * from every account (O(accounts)) and walks the chain: every height 1..head
 * has a header linking to its parent, a body carrying that header and a
 * hash-index entry, and nothing is stored above the head (O(blocks)).
 * 0 consistent, -1 with the first problem in err. */
int storage_check(storage_t *self, bool full, char *err, size_t errlen);

int storage_stats(storage_t *self, storage_stats_t *out);

#endif
