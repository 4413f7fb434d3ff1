/*  service.c: StorageMsg requests -> store calls -> StorageMsg replies.
 *  Every field that arrives is checked before use (sizes of byte fields,
 *  counts); the store itself bounds what it reads and writes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "service.h"

static void reply_error(storage_reply_t *rep, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_error(storage_reply_t *rep, uint32_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->error_text, sizeof rep->error_text, fmt, ap);
    va_end(ap);
    rep->error = (Alys__Bus__Error) ALYS__BUS__ERROR__INIT;
    rep->error.code = code;
    rep->error.message = rep->error_text;
    rep->env.body_case = ALYS__BUS__ENVELOPE__BODY_ERROR;
    rep->env.error = &rep->error;
}

/* Map a store result to the Error code the requester sees. */
static void reply_store_error(storage_reply_t *rep, int rc, const char *err)
{
    reply_error(rep, rc == STORAGE_EINVAL ? ALYS_ERR_INVALID : ALYS_ERR_INTERNAL, "%s", err);
}

static void reply_body(storage_reply_t *rep, Alys__Storage__StorageMsg__MsgCase c)
{
    rep->msg.msg_case = c;
    rep->env.body_case = ALYS__BUS__ENVELOPE__BODY_STORAGE;
    rep->env.storage = &rep->msg;
}

static ProtobufCBinaryData bin(const uint8_t *p, size_t n)
{
    return (ProtobufCBinaryData){n, (uint8_t *) p};
}

static void fill_head(storage_reply_t *rep, storage_t *store)
{
    storage_head(store, &rep->head_value);
    const storage_head_t *h = &rep->head_value;
    rep->head = (Alys__Storage__Head) ALYS__STORAGE__HEAD__INIT;
    rep->head.height = h->height;
    rep->head.hash = bin(h->hash, ALYS_HASH_LEN);
    rep->head.state_root = bin(h->state_root, ALYS_HASH_LEN);
    rep->head.slot = h->slot;
    rep->head.genesis_hash = bin(h->genesis_hash, ALYS_HASH_LEN);
    rep->head.last_checkpoint = h->last_checkpoint;
}

/* ---- ExecuteBatch ---- */

static void log_batch(const Alys__Storage__ExecuteBatch *req, const storage_batch_result_t *r)
{
    const char *origin = req->origin && *req->origin ? req->origin : "?";
    if (r->failed)
        log_warn("batch %llu from %s: %u committed, block %llu refused: %s: %s",
                 (unsigned long long) req->batch_id, origin, r->committed,
                 (unsigned long long) r->failed_height, storage_batch_reason(r), r->verdict.detail);
    else
        log_debug("batch %llu from %s: %u committed (%u already), head %llu",
                  (unsigned long long) req->batch_id, origin, r->committed, r->already_committed,
                  (unsigned long long) r->head.height);
}

static void fill_batch_result(storage_reply_t *rep, uint64_t batch_id, const storage_batch_result_t *r)
{
    Alys__Storage__BatchResult *b = &rep->batch;
    *b = (Alys__Storage__BatchResult) ALYS__STORAGE__BATCH_RESULT__INIT;
    rep->head_value = r->head;
    b->batch_id = batch_id;
    b->committed = r->committed;
    b->already_committed = r->already_committed;
    b->head_height = rep->head_value.height;
    b->head_hash = bin(rep->head_value.hash, ALYS_HASH_LEN);
    b->state_root = bin(rep->head_value.state_root, ALYS_HASH_LEN);
    b->checkpoint_height = rep->head_value.last_checkpoint;
    b->reorg_depth = r->reorg_depth;
    b->tx_index = -1;
    if (!r->failed)
        return;
    b->failed = true;
    b->failed_height = r->failed_height;
    memcpy(rep->failed_hash, r->failed_hash, ALYS_HASH_LEN);
    static const alys_hash_t zero;
    if (memcmp(rep->failed_hash, zero, ALYS_HASH_LEN) != 0)
        b->failed_hash = bin(rep->failed_hash, ALYS_HASH_LEN);
    snprintf(rep->reason, sizeof rep->reason, "%s", storage_batch_reason(r));
    snprintf(rep->detail, sizeof rep->detail, "%s", r->verdict.detail);
    b->reason = rep->reason;
    b->detail = rep->detail;
    b->tx_index = r->verdict.tx_index;
}

/* A reorg sets both fields (the hash exactly 32 bytes); a half-set
 * request is refused before anything runs. *reorg says which it is. */
static bool reorg_fields_ok(storage_reply_t *rep, const Alys__Storage__ExecuteBatch *req, bool *reorg)
{
    *reorg = req->reorg_ancestor_hash.len != 0 || req->reorg_ancestor_height != 0;
    if (!*reorg || req->reorg_ancestor_hash.len == ALYS_HASH_LEN)
        return true;
    reply_error(rep, ALYS_ERR_BAD_REQUEST,
                "execute_batch: reorg_ancestor_hash of %zu bytes, want %d (a reorg sets "
                "reorg_ancestor_hash and reorg_ancestor_height together)",
                req->reorg_ancestor_hash.len, ALYS_HASH_LEN);
    return false;
}

/* A reorg storage will not do (too deep, another ancestor, no undo data)
 * is the batch's answer, not an error: BlockProcessor retries errors,
 * and this one would never change. Nothing was written. */
static void reorg_refused(storage_reply_t *rep, storage_t *store,
                          const Alys__Storage__ExecuteBatch *req, const char *why)
{
    storage_batch_result_t r;
    memset(&r, 0, sizeof r);
    storage_head(store, &r.head);
    fill_batch_result(rep, req->batch_id, &r);
    Alys__Storage__BatchResult *b = &rep->batch;
    b->failed = true;
    b->failed_height = req->reorg_ancestor_height + 1;
    snprintf(rep->reason, sizeof rep->reason, "reorg_refused");
    snprintf(rep->detail, sizeof rep->detail, "%.*s", (int) sizeof rep->detail - 1, why);
    b->reason = rep->reason;
    b->detail = rep->detail;
    rep->msg.batch_result = b;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_BATCH_RESULT);
}

/* The "reorg" event's detail. */
static void fill_reorg_text(storage_reply_t *rep, const storage_batch_result_t *r)
{
    char o[2 * ALYS_HASH_LEN + 1], n[2 * ALYS_HASH_LEN + 1];
    alys_hex(r->old_head.hash, ALYS_HASH_LEN, o);
    alys_hex(r->head.hash, ALYS_HASH_LEN, n);
    snprintf(rep->reorg_text, sizeof rep->reorg_text,
             "depth=%u old_height=%llu old_hash=%s new_height=%llu new_hash=%s", r->reorg_depth,
             (unsigned long long) r->old_head.height, o, (unsigned long long) r->head.height, n);
    rep->reorged = true;
}

static int run_execute(storage_t *store, const Alys__Storage__ExecuteBatch *req, bool reorg,
                       storage_batch_result_t *r, char *err, size_t errlen)
{
    if (!reorg)
        return storage_execute_batch(store, req->blocks, req->n_blocks, req->progress, r, err, errlen);
    return storage_execute_reorg(store, req->reorg_ancestor_height, req->reorg_ancestor_hash.data,
                                 req->blocks, req->n_blocks, req->progress, r, err, errlen);
}

static void serve_execute(storage_reply_t *rep, storage_t *store,
                          const Alys__Storage__ExecuteBatch *req)
{
    bool reorg;
    if (!reorg_fields_ok(rep, req, &reorg))
        return;
    storage_batch_result_t r;
    char err[256];
    int rc = run_execute(store, req, reorg, &r, err, sizeof err);
    if (reorg && rc == STORAGE_EINVAL) {
        reorg_refused(rep, store, req, err);
        return;
    }
    if (rc != STORAGE_OK) {
        log_error("batch %llu: %s", (unsigned long long) req->batch_id, err);
        reply_store_error(rep, rc, err);
        return;
    }
    log_batch(req, &r);
    fill_batch_result(rep, req->batch_id, &r);
    rep->msg.batch_result = &rep->batch;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_BATCH_RESULT);
    if (r.reorg_depth > 0)
        fill_reorg_text(rep, &r);
    if (r.head.height != r.old_head.height ||
        memcmp(r.head.hash, r.old_head.hash, ALYS_HASH_LEN) != 0) {
        rep->head_changed = true;
        rep->head_event = "head_advanced";
    }
}

/* ---- reads ---- */

static void serve_get_head(storage_reply_t *rep, storage_t *store)
{
    fill_head(rep, store);
    rep->msg.head = &rep->head;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_HEAD);
}

/* The head with its header and lattice, what a producer builds on. */
static void serve_get_head_state(storage_reply_t *rep, storage_t *store)
{
    alys_header_t h;
    alys_lattice_t l;
    storage_head_state(store, &h, &l);
    fill_head(rep, store);
    if (rep->head_value.height > 0) {
        size_t len = 0;
        if (alys_header_encode(&h, &rep->head_header, &len) != 0) {
            reply_error(rep, ALYS_ERR_INTERNAL, "get_head: cannot encode the head header");
            return;
        }
        rep->head.header = bin(rep->head_header, len);
    }
    alys_lattice_to_bytes(&l, rep->lattice);
    rep->head.lattice = bin(rep->lattice, ALYS_LATTICE_BYTES);
    rep->msg.head = &rep->head;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_HEAD);
}

/* GetBlocks.locator: where it meets our chain is the start. */
static bool locate_start(storage_reply_t *rep, storage_t *store,
                         const Alys__Storage__GetBlocks *req, uint64_t *start)
{
    *start = req->start;
    if (req->n_locator == 0)
        return true;
    if (req->n_locator > ALYS_LOCATOR_MAX) {
        reply_error(rep, ALYS_ERR_BAD_REQUEST, "get_blocks: locator of %zu hashes, at most %d",
                    req->n_locator, ALYS_LOCATOR_MAX);
        return false;
    }
    for (size_t i = 0; i < req->n_locator; i++)
        if (req->locator[i].len != ALYS_HASH_LEN) {
            reply_error(rep, ALYS_ERR_BAD_REQUEST,
                        "get_blocks: locator hash %zu of %zu bytes, want %d", i,
                        req->locator[i].len, ALYS_HASH_LEN);
            return false;
        }
    char err[256];
    int rc = storage_locate(store, req->locator, req->n_locator, start, err, sizeof err);
    if (rc != STORAGE_OK) {
        reply_store_error(rep, rc, err);
        return false;
    }
    return true;
}

static void serve_get_blocks(storage_reply_t *rep, storage_t *store,
                             const Alys__Storage__GetBlocks *req)
{
    char err[256];
    uint64_t start, first;
    if (!locate_start(rep, store, req, &start))
        return;
    int rc = storage_get_blocks(store, start, req->count, req->headers_only,
                                STORAGE_REPLY_BLOCK_BYTES, &first, &rep->blobs, err, sizeof err);
    if (rc != STORAGE_OK) {
        reply_store_error(rep, rc, err);
        return;
    }
    rep->blocks = (Alys__Storage__Blocks) ALYS__STORAGE__BLOCKS__INIT;
    rep->blocks.start = first;
    rep->blocks.n_blocks = rep->blobs.count;
    rep->blocks.blocks = rep->blobs.items;
    rep->msg.blocks = &rep->blocks;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_BLOCKS);
}

static void serve_get_locator(storage_reply_t *rep, storage_t *store,
                              const Alys__Storage__GetLocator *req)
{
    char err[256];
    size_t n = 0;
    uint32_t dense = req && req->dense ? req->dense : 10; /* 0: Bitcoin's shape */
    int rc = storage_locator(store, dense, rep->loc_heights, rep->loc_hashes, ALYS_LOCATOR_MAX,
                             &n, err, sizeof err);
    if (rc != STORAGE_OK) {
        reply_store_error(rep, rc, err);
        return;
    }
    for (size_t i = 0; i < n; i++)
        rep->loc_items[i] = bin(rep->loc_hashes[i], ALYS_HASH_LEN);
    rep->locator = (Alys__Storage__Locator) ALYS__STORAGE__LOCATOR__INIT;
    rep->locator.n_heights = n;
    rep->locator.heights = rep->loc_heights;
    rep->locator.n_hashes = n;
    rep->locator.hashes = rep->loc_items;
    rep->msg.locator = &rep->locator;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_LOCATOR);
}

static void serve_get_account(storage_reply_t *rep, storage_t *store,
                              const Alys__Storage__GetAccount *req)
{
    if (req->pubkey.len != ALYS_PUBKEY_LEN) {
        reply_error(rep, ALYS_ERR_BAD_REQUEST, "get_account: pubkey of %zu bytes, want %d",
                    req->pubkey.len, ALYS_PUBKEY_LEN);
        return;
    }
    memcpy(rep->pubkey, req->pubkey.data, ALYS_PUBKEY_LEN);
    alys_account_t a;
    int rc = storage_get_account(store, rep->pubkey, &a);
    if (rc < 0) {
        reply_error(rep, ALYS_ERR_INTERNAL, "get_account: state read failed");
        return;
    }
    rep->account = (Alys__Storage__AccountState) ALYS__STORAGE__ACCOUNT_STATE__INIT;
    rep->account.pubkey = bin(rep->pubkey, ALYS_PUBKEY_LEN);
    rep->account.balance = a.balance;
    rep->account.nonce = a.nonce;
    rep->account.found = rc == 1;
    rep->msg.account_state = &rep->account;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_ACCOUNT_STATE);
}

static void serve_find_block(storage_reply_t *rep, storage_t *store,
                             const Alys__Storage__FindBlock *req)
{
    if (req->hash.len != ALYS_HASH_LEN) {
        reply_error(rep, ALYS_ERR_BAD_REQUEST, "find_block: hash of %zu bytes, want %d",
                    req->hash.len, ALYS_HASH_LEN);
        return;
    }
    memcpy(rep->ref_hash, req->hash.data, ALYS_HASH_LEN);
    uint64_t height = 0;
    int rc = storage_find_block(store, rep->ref_hash, &height);
    if (rc < 0) {
        reply_error(rep, ALYS_ERR_INTERNAL, "find_block: hash index read failed");
        return;
    }
    rep->ref = (Alys__Storage__BlockRef) ALYS__STORAGE__BLOCK_REF__INIT;
    rep->ref.hash = bin(rep->ref_hash, ALYS_HASH_LEN);
    rep->ref.found = rc == 1;
    rep->ref.height = rc == 1 ? height : 0;
    rep->msg.block_ref = &rep->ref;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_BLOCK_REF);
}

/* ---- the signing fence ---- */

/* A byte field of a fence request must be exactly want bytes. */
static bool fence_field_ok(storage_reply_t *rep, const char *msg, const char *field,
                           const ProtobufCBinaryData *b, size_t want)
{
    if (b->len == want)
        return true;
    reply_error(rep, ALYS_ERR_BAD_REQUEST, "%s: %s of %zu bytes, want %zu", msg, field, b->len, want);
    return false;
}

static void serve_fence_record(storage_reply_t *rep, storage_t *store,
                               const Alys__Storage__FenceRecord *req)
{
    if (!fence_field_ok(rep, "fence_record", "authority", &req->authority, ALYS_PUBKEY_LEN) ||
        !fence_field_ok(rep, "fence_record", "block_hash", &req->block_hash, ALYS_HASH_LEN))
        return;
    memcpy(rep->fence_authority, req->authority.data, ALYS_PUBKEY_LEN);
    memcpy(rep->fence_hash, req->block_hash.data, ALYS_HASH_LEN);
    char err[256] = "", who[17];
    alys_hex(rep->fence_authority, 8, who);
    storage_fence_result_t r;
    int rc = storage_fence_record(store, rep->fence_authority, req->slot, rep->fence_hash, &r,
                                  err, sizeof err);
    Alys__Storage__FenceRecorded *f = &rep->fence_recorded;
    *f = (Alys__Storage__FenceRecorded) ALYS__STORAGE__FENCE_RECORDED__INIT;
    f->ok = rc == STORAGE_OK && r.ok;
    f->found = r.stored.any;
    if (r.stored.any) {
        memcpy(rep->fence_hash, r.stored.hash, ALYS_HASH_LEN);
        f->slot = r.stored.slot;
        f->block_hash = bin(rep->fence_hash, ALYS_HASH_LEN);
    }
    if (rc != STORAGE_OK) {
        snprintf(rep->reason, sizeof rep->reason, "io_error");
        log_error("fence %s slot %llu height %llu: %s", who, (unsigned long long) req->slot,
                  (unsigned long long) req->height, err);
    } else if (!r.ok) {
        snprintf(rep->reason, sizeof rep->reason, "%s", alys_fence_verdict_name(r.verdict));
        log_warn("fence %s slot %llu height %llu refused (%s): record is slot %llu", who,
                 (unsigned long long) req->slot, (unsigned long long) req->height, rep->reason,
                 (unsigned long long) r.stored.slot);
    } else {
        log_info("fence %s slot %llu height %llu: %s", who, (unsigned long long) req->slot,
                 (unsigned long long) req->height,
                 r.written ? "recorded (fsync'ed)" : "already recorded");
    }
    if (!f->ok)
        f->reason = rep->reason;
    rep->msg.fence_recorded = f;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_FENCE_RECORDED);
}

static void serve_get_fence(storage_reply_t *rep, storage_t *store, const Alys__Storage__GetFence *req)
{
    if (!fence_field_ok(rep, "get_fence", "authority", &req->authority, ALYS_PUBKEY_LEN))
        return;
    memcpy(rep->fence_authority, req->authority.data, ALYS_PUBKEY_LEN);
    char err[256] = "";
    alys_fence_record_t r;
    int rc = storage_fence_get(store, rep->fence_authority, &r, err, sizeof err);
    if (rc != STORAGE_OK) {
        reply_store_error(rep, rc, err);
        return;
    }
    Alys__Storage__Fence *f = &rep->fence;
    *f = (Alys__Storage__Fence) ALYS__STORAGE__FENCE__INIT;
    f->authority = bin(rep->fence_authority, ALYS_PUBKEY_LEN);
    f->found = r.any;
    if (r.any) {
        memcpy(rep->fence_hash, r.hash, ALYS_HASH_LEN);
        f->slot = r.slot;
        f->block_hash = bin(rep->fence_hash, ALYS_HASH_LEN);
    }
    rep->msg.fence = f;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_FENCE);
}

/* ---- writes other than batches ---- */

static void serve_rollback(storage_reply_t *rep, storage_t *store, const Alys__Storage__Rollback *req)
{
    char err[256];
    storage_head(store, &rep->head_value);
    uint64_t before = rep->head_value.height;
    int rc = storage_rollback(store, req->height, err, sizeof err);
    if (rc != STORAGE_OK) {
        log_warn("rollback to %llu refused: %s", (unsigned long long) req->height, err);
        reply_store_error(rep, rc, err);
        return;
    }
    serve_get_head(rep, store);
    if (rep->head_value.height != before) {
        rep->head_changed = true;
        rep->head_event = "rolled_back";
    }
}

static void serve_checkpoints(storage_reply_t *rep)
{
    rep->checkpoints = (Alys__Storage__Checkpoints) ALYS__STORAGE__CHECKPOINTS__INIT;
    rep->checkpoints.n_checkpoints = rep->ncps;
    rep->checkpoints.checkpoints = rep->cps;
    rep->msg.checkpoints = &rep->checkpoints;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_CHECKPOINTS);
}

static void serve_create_checkpoint(storage_reply_t *rep, storage_t *store,
                                    const Alys__Storage__CreateCheckpoint *req)
{
    char err[256];
    Alys__Chain__BlockCheckpoint *cp = NULL;
    int rc = storage_create_checkpoint(store, req->progress, &cp, err, sizeof err);
    if (rc != STORAGE_OK) {
        reply_store_error(rep, rc, err);
        return;
    }
    rep->cps = malloc(sizeof *rep->cps);
    if (!rep->cps) {
        alys__chain__block_checkpoint__free_unpacked(cp, NULL);
        reply_error(rep, ALYS_ERR_INTERNAL, "out of memory (the checkpoint was written)");
        return;
    }
    rep->cps[0] = cp;
    rep->ncps = 1;
    serve_checkpoints(rep);
}

static void serve_list_checkpoints(storage_reply_t *rep, storage_t *store)
{
    char err[256];
    int rc = storage_list_checkpoints(store, &rep->cps, &rep->ncps, err, sizeof err);
    if (rc != STORAGE_OK) {
        reply_store_error(rep, rc, err);
        return;
    }
    serve_checkpoints(rep);
}

static void serve_peer_bans(storage_reply_t *rep, storage_t *store)
{
    char err[256];
    int rc = storage_get_peer_bans(store, &rep->ban_list, &rep->nbans, err, sizeof err);
    if (rc != STORAGE_OK) {
        reply_store_error(rep, rc, err);
        return;
    }
    rep->bans = (Alys__Storage__PeerBans) ALYS__STORAGE__PEER_BANS__INIT;
    rep->bans.n_bans = rep->nbans;
    rep->bans.bans = rep->ban_list;
    rep->msg.peer_bans = &rep->bans;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_PEER_BANS);
}

static void serve_put_peer_bans(storage_reply_t *rep, storage_t *store,
                                const Alys__Storage__PutPeerBans *req)
{
    char err[256];
    int rc = storage_put_peer_bans(store, req->bans, req->n_bans, err, sizeof err);
    if (rc != STORAGE_OK) {
        reply_store_error(rep, rc, err);
        return;
    }
    serve_peer_bans(rep, store);
}

static void serve_put_addr_book(storage_reply_t *rep, storage_t *store,
                                const Alys__Storage__PutAddrBook *req)
{
    char err[256];
    int rc = storage_put_addr_book(store, req, err, sizeof err);
    if (rc != STORAGE_OK) {
        reply_store_error(rep, rc, err);
        return;
    }
    rep->book_ack = (Alys__Storage__AddrBook) ALYS__STORAGE__ADDR_BOOK__INIT;
    rep->msg.addr_book = &rep->book_ack;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_ADDR_BOOK);
}

static void serve_get_addr_book(storage_reply_t *rep, storage_t *store)
{
    char err[256];
    int rc = storage_get_addr_book(store, &rep->addr_book, err, sizeof err);
    if (rc != STORAGE_OK) {
        reply_store_error(rep, rc, err);
        return;
    }
    rep->msg.addr_book = rep->addr_book;
    reply_body(rep, ALYS__STORAGE__STORAGE_MSG__MSG_ADDR_BOOK);
}

/* ---- dispatch ---- */

static const char *msg_name(Alys__Storage__StorageMsg__MsgCase c)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&alys__storage__storage_msg__descriptor, (unsigned) c);
    return f ? f->name : "nothing";
}

static void dispatch(storage_reply_t *rep, storage_t *store, const Alys__Storage__StorageMsg *m)
{
    switch (m->msg_case) {
    case ALYS__STORAGE__STORAGE_MSG__MSG_EXECUTE_BATCH:
        serve_execute(rep, store, m->execute_batch);
        break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD:
        if (m->get_head && m->get_head->with_state)
            serve_get_head_state(rep, store);
        else
            serve_get_head(rep, store);
        break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_GET_BLOCKS:
        serve_get_blocks(rep, store, m->get_blocks);
        break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_GET_ACCOUNT:
        serve_get_account(rep, store, m->get_account);
        break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_ROLLBACK: serve_rollback(rep, store, m->rollback); break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_CREATE_CHECKPOINT:
        serve_create_checkpoint(rep, store, m->create_checkpoint);
        break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_LIST_CHECKPOINTS:
        serve_list_checkpoints(rep, store);
        break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_PUT_PEER_BANS:
        serve_put_peer_bans(rep, store, m->put_peer_bans);
        break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_GET_PEER_BANS: serve_peer_bans(rep, store); break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_PUT_ADDR_BOOK:
        serve_put_addr_book(rep, store, m->put_addr_book);
        break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_GET_ADDR_BOOK: serve_get_addr_book(rep, store); break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_GET_LOCATOR:
        serve_get_locator(rep, store, m->get_locator);
        break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_FIND_BLOCK:
        serve_find_block(rep, store, m->find_block);
        break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_FENCE_RECORD:
        serve_fence_record(rep, store, m->fence_record);
        break;
    case ALYS__STORAGE__STORAGE_MSG__MSG_GET_FENCE:
        serve_get_fence(rep, store, m->get_fence);
        break;
    default:
        reply_error(rep, ALYS_ERR_BAD_REQUEST, "storage does not serve %s", msg_name(m->msg_case));
    }
}

/* The head event's detail, from the head the reply carries. */
static void fill_event_text(storage_reply_t *rep)
{
    char hash[2 * ALYS_HASH_LEN + 1], root[2 * ALYS_HASH_LEN + 1];
    alys_hex(rep->head_value.hash, ALYS_HASH_LEN, hash);
    alys_hex(rep->head_value.state_root, ALYS_HASH_LEN, root);
    snprintf(rep->event_text, sizeof rep->event_text, "height=%llu hash=%s state_root=%s",
             (unsigned long long) rep->head_value.height, hash, root);
}

void storage_serve(storage_t *store, const alys_env_t *req, storage_reply_t *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->env = (alys_env_t) ALYS__BUS__ENVELOPE__INIT;
    rep->msg = (Alys__Storage__StorageMsg) ALYS__STORAGE__STORAGE_MSG__INIT;
    if (req->reply) {
        /* Storage asks nobody anything: a reply here is stray. Answering it
         * could start a ping-pong of errors with another actor. */
        log_debug("ignoring a reply (%s) from %s", alys_env_body_name(req),
                  req->sender ? req->sender : "?");
        return;
    }
    /* corr_id 0: the sender wants no reply (it is still served). */
    rep->answer = req->corr_id != 0;
    if (req->body_case != ALYS__BUS__ENVELOPE__BODY_STORAGE || !req->storage) {
        reply_error(rep, ALYS_ERR_BAD_REQUEST, "storage serves alys.storage.StorageMsg, got %s",
                    alys_env_body_name(req));
        return;
    }
    dispatch(rep, store, req->storage);
    if (rep->head_changed)
        fill_event_text(rep);
}

void storage_reply_clear(storage_reply_t *rep)
{
    storage_blobs_clear(&rep->blobs);
    storage_checkpoints_free(rep->cps, rep->ncps);
    storage_peer_bans_free(rep->ban_list, rep->nbans);
    storage_addr_book_free(&rep->addr_book);
    free(rep->head_header);
    rep->head_header = NULL;
    rep->cps = NULL;
    rep->ban_list = NULL;
    rep->ncps = rep->nbans = 0;
}
