/*  chain.c: hashed byte layouts, the tx Merkle root, stateless validation,
 *  genesis helpers.
 *
 *  Hash layouts. Every hashed structure is SHA-256 over a fixed layout that
 *  starts with an ASCII domain-separation tag (no terminating NUL), so bytes
 *  of one kind can never be read as another. Integers are little-endian of
 *  the width given; byte fields are raw.
 *
 *    header  "alys/header/v1"  || height u64 || parent_hash[32] || slot u64
 *            || timestamp u64 || proposer u32 || tx_root[32] || state_root[32]
 *            (138 bytes; the signature is over this hash, so excluded)
 *    tx      "alys/tx/v1" || from[32] || to[32] || amount u64 || fee u64
 *            || nonce u64   (98 bytes; signature excluded)
 *    genesis "alys/genesis/v1" || chain_id_len u32 || chain_id bytes
 *            || authority_count u32 || authorities[32]...
 *            || slot_duration_ms u64 || genesis_time u64
 *            || balance_count u32 || (pubkey[32] || balance u64)...
 *            (in file order; decode rejects duplicate keys)
 *    account "alys/account/v1" (the lattice, see state.c)
 *
 *  Tx hashes do not name the chain: the same key pair used on two chains
 *  could see a tx replayed on the other; per-account nonces make that a
 *  one-shot at most. Accepted for now (keys are per chain in practice).
 *
 *  Tx root: Bitcoin's binary Merkle tree over the tx hashes: a parent is
 *  SHA-256(left || right); a level with an odd count pairs its last node with
 *  itself; one tx's root is its hash; no txs gives 32 zero bytes. Inner
 *  preimages are 64 bytes and leaves are tagged 98-byte preimages, so a leaf
 *  cannot pose as an inner node. The duplicate-last rule makes [a,b,c] and
 *  [a,b,c,c] share a root (CVE-2012-2459 in Bitcoin). Here that cannot turn a
 *  valid block invalid or vice versa: two identical txs carry the same
 *  sender nonce, so the second always fails execution (bad_nonce), and the
 *  block hash commits to the header, which is checked against its own txs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain_internal.h"
#include "state.h"

#define HEADER_TAG  "alys/header/v1"
#define TX_TAG      "alys/tx/v1"
#define GENESIS_TAG "alys/genesis/v1"
#define TAG_LEN(t)  (sizeof(t) - 1)

#define HEADER_LAYOUT_LEN (TAG_LEN(HEADER_TAG) + 8 + 32 + 8 + 8 + 4 + 32 + 32)
#define TX_LAYOUT_LEN     (TAG_LEN(TX_TAG) + 32 + 32 + 8 + 8 + 8)

/* ---- verdicts ---- */

static const char *const s_error_names[ALYS_BLOCK_ERROR_COUNT] = {
    [ALYS_BLOCK_OK] = "ok",
    [ALYS_BLOCK_MALFORMED] = "malformed",
    [ALYS_BLOCK_OVERSIZE] = "oversize",
    [ALYS_BLOCK_BAD_PROPOSER_SIG] = "bad_proposer_signature",
    [ALYS_BLOCK_WRONG_PROPOSER] = "wrong_proposer",
    [ALYS_BLOCK_BAD_TX_SIG] = "bad_tx_signature",
    [ALYS_BLOCK_TX_ROOT_MISMATCH] = "tx_root_mismatch",
    [ALYS_BLOCK_PARENT_MISMATCH] = "parent_mismatch",
    [ALYS_BLOCK_HEIGHT_GAP] = "height_gap",
    [ALYS_BLOCK_NON_INCREASING_SLOT] = "non_increasing_slot",
    [ALYS_BLOCK_FUTURE_SLOT] = "future_slot",
    [ALYS_BLOCK_BAD_TIMESTAMP] = "bad_timestamp",
    [ALYS_BLOCK_BAD_NONCE] = "bad_nonce",
    [ALYS_BLOCK_INSUFFICIENT_BALANCE] = "insufficient_balance",
    [ALYS_BLOCK_STATE_ROOT_MISMATCH] = "state_root_mismatch",
    [ALYS_BLOCK_INTERNAL_ERROR] = "internal_error",
};

const char *alys_block_error_name(alys_block_error_t e)
{
    if ((unsigned) e >= ALYS_BLOCK_ERROR_COUNT || !s_error_names[e])
        return "unknown";
    return s_error_names[e];
}

bool achain_fail(alys_verdict_t *v, alys_block_error_t code, int32_t tx_index, const char *fmt, ...)
{
    if (!v)
        return false;
    v->code = code;
    v->tx_index = tx_index;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(v->detail, sizeof v->detail, "%s", alys_block_error_name(code));
    return false;
}

void achain_ok(alys_verdict_t *v)
{
    if (!v)
        return;
    v->code = ALYS_BLOCK_OK;
    v->tx_index = -1;
    v->detail[0] = '\0';
}

/* ---- hashes ---- */

static uint8_t *put_bytes(uint8_t *p, const void *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

static uint8_t *put64(uint8_t *p, uint64_t x)
{
    achain_put_le64(p, x);
    return p + 8;
}

void alys_header_hash(const alys_header_t *h, alys_hash_t out)
{
    uint8_t buf[HEADER_LAYOUT_LEN];
    uint8_t *p = put_bytes(buf, HEADER_TAG, TAG_LEN(HEADER_TAG));
    p = put64(p, h->height);
    p = put_bytes(p, h->parent_hash, ALYS_HASH_LEN);
    p = put64(p, h->slot);
    p = put64(p, h->timestamp);
    achain_put_le32(p, h->proposer);
    p += 4;
    p = put_bytes(p, h->tx_root, ALYS_HASH_LEN);
    p = put_bytes(p, h->state_root, ALYS_HASH_LEN);
    alys_sha256(buf, (size_t) (p - buf), out);
}

void alys_tx_hash(const alys_tx_t *tx, alys_hash_t out)
{
    uint8_t buf[TX_LAYOUT_LEN];
    uint8_t *p = put_bytes(buf, TX_TAG, TAG_LEN(TX_TAG));
    p = put_bytes(p, tx->from, ALYS_PUBKEY_LEN);
    p = put_bytes(p, tx->to, ALYS_PUBKEY_LEN);
    p = put64(p, tx->amount);
    p = put64(p, tx->fee);
    p = put64(p, tx->nonce);
    alys_sha256(buf, (size_t) (p - buf), out);
}

static void hash_pair(const uint8_t *left, const uint8_t *right, alys_hash_t out)
{
    uint8_t buf[2 * ALYS_HASH_LEN];
    memcpy(buf, left, ALYS_HASH_LEN);
    memcpy(buf + ALYS_HASH_LEN, right, ALYS_HASH_LEN);
    alys_sha256(buf, sizeof buf, out);
}

/* Streaming form of the duplicate-last tree (the shape of Bitcoin Core's
 * former MerkleComputation): inner[l] holds a finished left subtree of 2^l
 * leaves waiting for its right sibling, so memory is O(log n) and nothing is
 * allocated whatever the tx count. */
void alys_tx_root(const alys_tx_t *txs, uint32_t n, alys_hash_t out)
{
    if (n == 0) {
        memset(out, 0, ALYS_HASH_LEN);
        return;
    }
    uint8_t inner[33][ALYS_HASH_LEN];
    alys_hash_t h;
    uint64_t count = 0;
    for (uint32_t i = 0; i < n; i++) {
        alys_tx_hash(&txs[i], h);
        count++;
        int level = 0;
        for (; !(count & (1ULL << level)); level++)
            hash_pair(inner[level], h, h);
        memcpy(inner[level], h, ALYS_HASH_LEN);
    }
    /* Close the rightmost, incomplete branch: pair it with itself at each odd
     * level, folding in waiting left subtrees on the way up. */
    int level = 0;
    while (!(count & (1ULL << level)))
        level++;
    memcpy(h, inner[level], ALYS_HASH_LEN);
    while (count != (1ULL << level)) {
        hash_pair(h, h, h);
        count += 1ULL << level;
        level++;
        for (; !(count & (1ULL << level)); level++)
            hash_pair(inner[level], h, h);
    }
    memcpy(out, h, ALYS_HASH_LEN);
}

/* ---- stateless validation ---- */

/* Timestamp rule: unix seconds = genesis_time + floor(slot * slot_duration_ms
 * / 1000), i.e. the second in which the slot starts. Returns false if that
 * does not fit in 64 bits (no honest header can then match). */
static bool expected_timestamp(const alys_genesis_t *g, uint64_t slot, uint64_t *ts)
{
    uint64_t dur = g->slot_duration_ms;
    if (dur != 0 && slot > UINT64_MAX / dur)
        return false;
    uint64_t secs = slot * dur / 1000;
    if (secs > UINT64_MAX - g->genesis_time)
        return false;
    *ts = g->genesis_time + secs;
    return true;
}

static bool check_proposer(const alys_genesis_t *g, const alys_header_t *h, alys_verdict_t *v)
{
    uint32_t n = g->authority_count;
    if (n == 0)
        return achain_fail(v, ALYS_BLOCK_WRONG_PROPOSER, -1, "genesis has no authorities");
    if (h->proposer >= n)
        return achain_fail(v, ALYS_BLOCK_WRONG_PROPOSER, -1,
                           "proposer index %u >= authority count %u", h->proposer, n);
    uint64_t want = h->slot % n;
    if (h->proposer != want)
        return achain_fail(v, ALYS_BLOCK_WRONG_PROPOSER, -1, "proposer %u != slot %llu mod %u = %llu",
                           h->proposer, (unsigned long long) h->slot, n, (unsigned long long) want);
    return true;
}

static bool check_timestamp(const alys_genesis_t *g, const alys_header_t *h, alys_verdict_t *v)
{
    uint64_t want;
    if (!expected_timestamp(g, h->slot, &want))
        return achain_fail(v, ALYS_BLOCK_BAD_TIMESTAMP, -1,
                           "slot %llu: timestamp overflows 64 bits", (unsigned long long) h->slot);
    if (h->timestamp != want)
        return achain_fail(v, ALYS_BLOCK_BAD_TIMESTAMP, -1,
                           "timestamp %llu != genesis_time + slot %llu * %llu ms = %llu",
                           (unsigned long long) h->timestamp, (unsigned long long) h->slot,
                           (unsigned long long) g->slot_duration_ms, (unsigned long long) want);
    return true;
}

bool alys_header_check(const alys_genesis_t *g, const alys_header_t *h, alys_verdict_t *v)
{
    if (!check_proposer(g, h, v) || !check_timestamp(g, h, v))
        return false;
    alys_hash_t hh;
    alys_header_hash(h, hh);
    if (!alys_verify(g->authorities[h->proposer], hh, h->signature))
        return achain_fail(v, ALYS_BLOCK_BAD_PROPOSER_SIG, -1,
                           "header signature does not verify under authority %u", h->proposer);
    achain_ok(v);
    return true;
}

static bool check_tx_sigs(const alys_block_t *b, alys_verdict_t *v)
{
    for (uint32_t i = 0; i < b->tx_count; i++) {
        alys_hash_t th;
        alys_tx_hash(&b->txs[i], th);
        if (!alys_verify(b->txs[i].from, th, b->txs[i].signature))
            return achain_fail(v, ALYS_BLOCK_BAD_TX_SIG, (int32_t) i,
                               "tx %u: signature does not verify under its sender", i);
    }
    return true;
}

/* Cheap checks first so a forged block costs little: sizes, proposer slot,
 * timestamp, tx root, then the signatures. */
bool alys_block_check_stateless(const alys_genesis_t *g, const alys_block_t *b, alys_verdict_t *v)
{
    if (b->tx_count > ALYS_MAX_TXS_PER_BLOCK)
        return achain_fail(v, ALYS_BLOCK_OVERSIZE, -1, "%u txs, max %u", b->tx_count,
                           (unsigned) ALYS_MAX_TXS_PER_BLOCK);
    if (b->tx_count > 0 && !b->txs)
        return achain_fail(v, ALYS_BLOCK_MALFORMED, -1, "tx_count %u with no txs", b->tx_count);
    if (!check_proposer(g, &b->header, v) || !check_timestamp(g, &b->header, v) ||
        !alys_block_check_tx_root(b, v))
        return false;
    if (!alys_header_check(g, &b->header, v) || !check_tx_sigs(b, v))
        return false;
    achain_ok(v);
    return true;
}

bool alys_block_check_tx_root(const alys_block_t *b, alys_verdict_t *v)
{
    if (b->tx_count > 0 && !b->txs)
        return achain_fail(v, ALYS_BLOCK_MALFORMED, -1, "tx_count %u with no txs", b->tx_count);
    alys_hash_t root;
    alys_tx_root(b->txs, b->tx_count, root);
    if (memcmp(root, b->header.tx_root, ALYS_HASH_LEN) != 0) {
        char want[2 * ALYS_HASH_LEN + 1], got[2 * ALYS_HASH_LEN + 1];
        alys_hex(root, 8, want);
        alys_hex(b->header.tx_root, 8, got);
        return achain_fail(v, ALYS_BLOCK_TX_ROOT_MISMATCH, -1,
                           "tx root %s.. != Merkle root of %u txs %s..", got, b->tx_count, want);
    }
    achain_ok(v);
    return true;
}

bool alys_block_decode_check(const alys_genesis_t *g, const uint8_t *buf, size_t len,
                             alys_verdict_t *v)
{
    alys_block_t b;
    memset(&b, 0, sizeof b);
    if (alys_block_decode(buf, len, &b, v) != 0)
        return false;
    bool ok = alys_block_check_stateless(g, &b, v);
    alys_block_clear(&b);
    return ok;
}

bool alys_header_check_link(const alys_header_t *parent, const alys_hash_t parent_hash,
                            const alys_header_t *child, uint64_t now_slot, alys_verdict_t *v)
{
    if (parent->height == UINT64_MAX || child->height != parent->height + 1)
        return achain_fail(v, ALYS_BLOCK_HEIGHT_GAP, -1, "height %llu != parent height %llu + 1",
                           (unsigned long long) child->height, (unsigned long long) parent->height);
    if (memcmp(child->parent_hash, parent_hash, ALYS_HASH_LEN) != 0) {
        char want[17], got[17];
        alys_hex(parent_hash, 8, want);
        alys_hex(child->parent_hash, 8, got);
        return achain_fail(v, ALYS_BLOCK_PARENT_MISMATCH, -1,
                           "parent hash %s.. != hash of block %llu %s..", got,
                           (unsigned long long) parent->height, want);
    }
    if (child->slot <= parent->slot)
        return achain_fail(v, ALYS_BLOCK_NON_INCREASING_SLOT, -1, "slot %llu <= parent slot %llu",
                           (unsigned long long) child->slot, (unsigned long long) parent->slot);
    if (child->slot > now_slot)
        return achain_fail(v, ALYS_BLOCK_FUTURE_SLOT, -1, "slot %llu > wall-clock slot %llu",
                           (unsigned long long) child->slot, (unsigned long long) now_slot);
    achain_ok(v);
    return true;
}

uint64_t alys_genesis_slot_at(const alys_genesis_t *g, uint64_t now_ms)
{
    if (g->slot_duration_ms == 0 || g->genesis_time > UINT64_MAX / 1000)
        return 0;
    uint64_t start_ms = g->genesis_time * 1000;
    if (now_ms < start_ms)
        return 0;
    return (now_ms - start_ms) / g->slot_duration_ms;
}

void alys_genesis_parent(const alys_genesis_t *g, alys_header_t *out)
{
    memset(out, 0, sizeof *out);
    out->timestamp = g->genesis_time;
    memcpy(out->state_root, g->state_root, ALYS_HASH_LEN);
}

/* ---- genesis ---- */

static void hash_put64(achain_sha256_t *st, uint64_t x)
{
    uint8_t b[8];
    achain_put_le64(b, x);
    achain_sha256_update(st, b, 8);
}

static void hash_put32(achain_sha256_t *st, uint32_t x)
{
    uint8_t b[4];
    achain_put_le32(b, x);
    achain_sha256_update(st, b, 4);
}

static void genesis_hash(const alys_genesis_t *g, alys_hash_t out)
{
    achain_sha256_t st;
    achain_sha256_init(&st);
    size_t id_len = strnlen(g->chain_id, sizeof g->chain_id);
    achain_sha256_update(&st, GENESIS_TAG, TAG_LEN(GENESIS_TAG));
    hash_put32(&st, (uint32_t) id_len);
    achain_sha256_update(&st, g->chain_id, id_len);
    hash_put32(&st, g->authority_count);
    for (uint32_t i = 0; i < g->authority_count; i++)
        achain_sha256_update(&st, g->authorities[i], ALYS_PUBKEY_LEN);
    hash_put64(&st, g->slot_duration_ms);
    hash_put64(&st, g->genesis_time);
    hash_put32(&st, g->balance_count);
    for (uint32_t i = 0; i < g->balance_count; i++) {
        achain_sha256_update(&st, g->balances[i].pubkey, ALYS_PUBKEY_LEN);
        hash_put64(&st, g->balances[i].balance);
    }
    achain_sha256_final(&st, out);
}

/* Assumes distinct balance keys (alys_genesis_decode enforces it): two entries
 * for one key would enter the lattice as two accounts. */
void achain_genesis_hash(alys_genesis_t *g)
{
    genesis_hash(g, g->hash);
    memset(g->state_root, 0, ALYS_HASH_LEN);
}

void alys_genesis_finalize(alys_genesis_t *g)
{
    genesis_hash(g, g->hash);
    alys_lattice_t l;
    alys_lattice_from_genesis(&l, g);
    alys_lattice_root(&l, g->state_root);
}

void alys_genesis_clear(alys_genesis_t *g)
{
    if (!g)
        return;
    free(g->authorities);
    free(g->balances);
    memset(g, 0, sizeof *g);
}

/* ---- whose fault a refusal is (chain.h) ------------------------------------ */

static bool s_name_in(const char *name, const char *const *list)
{
    for (size_t i = 0; name && list[i]; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

bool alys_refusal_is_content(const char *reason)
{
    static const char *const content[] = {"bad_proposer_signature",
                                          "wrong_proposer",
                                          "bad_tx_signature",
                                          "tx_root_mismatch",
                                          "bad_timestamp",
                                          "bad_nonce",
                                          "insufficient_balance",
                                          "state_root_mismatch",
                                          "malformed",
                                          "oversize",
                                          "header_mismatch",
                                          NULL};
    return s_name_in(reason, content);
}

bool alys_refusal_is_peer_fault(const char *reason, uint64_t failed_height, uint64_t range_start)
{
    static const char *const linkage[] = {"parent_mismatch", "height_gap", "non_increasing_slot",
                                          NULL};
    return alys_refusal_is_content(reason) ||
           (s_name_in(reason, linkage) && failed_height > range_start);
}
