/*  testchain.c: see testchain.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testchain.h"

#define GENESIS_TIME 1600000000ULL
#define SLOT_MS      2000ULL
#define FUNDING      1000000000000ULL

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: deterministic, no OS randomness */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int derive_key(const char *label, uint32_t i, uint8_t sec[32], uint8_t pub[32])
{
    for (uint32_t ctr = 0; ctr < 16; ctr++) {
        char in[96];
        int n = snprintf(in, sizeof in, "storage-test/%s/%u/%u", label, i, ctr);
        alys_sha256(in, (size_t) n, sec);
        if (alys_keypair_pubkey(sec, pub) == 0)
            return 0;
    }
    return -1;
}

static int make_genesis(tchain_t *self, const char *chain_id)
{
    alys_genesis_t *g = &self->genesis;
    snprintf(g->chain_id, sizeof g->chain_id, "%s", chain_id);
    g->authority_count = 3;
    g->authorities = calloc(3, ALYS_PUBKEY_LEN);
    g->slot_duration_ms = SLOT_MS;
    g->genesis_time = GENESIS_TIME;
    g->balance_count = self->naccounts;
    g->balances = calloc(self->naccounts, sizeof *g->balances);
    if (!g->authorities || !g->balances)
        return -1;
    for (uint32_t i = 0; i < 3; i++)
        if (derive_key("authority", i, self->auth_sec[i], g->authorities[i]) != 0)
            return -1;
    for (uint32_t i = 0; i < self->naccounts; i++) {
        if (derive_key("account", i, self->acc_sec[i], self->acc_pub[i]) != 0)
            return -1;
        memcpy(g->balances[i].pubkey, self->acc_pub[i], ALYS_PUBKEY_LEN);
        g->balances[i].balance = FUNDING;
    }
    alys_genesis_finalize(g);
    return 0;
}

tchain_t *tchain_new(uint32_t accounts, uint64_t seed, const char *chain_id)
{
    tchain_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->naccounts = accounts;
    self->rng = seed;
    self->acc_sec = calloc(accounts, ALYS_SECKEY_LEN);
    self->acc_pub = calloc(accounts, ALYS_PUBKEY_LEN);
    self->state = alys_memstate_new();
    if (!self->acc_sec || !self->acc_pub || !self->state || make_genesis(self, chain_id) != 0 ||
        alys_memstate_load_genesis(self->state, &self->genesis) != 0) {
        tchain_destroy(&self);
        return NULL;
    }
    alys_lattice_from_genesis(&self->lattice, &self->genesis);
    alys_genesis_parent(&self->genesis, &self->tip);
    memcpy(self->tip_hash, self->genesis.hash, ALYS_HASH_LEN);
    return self;
}

void tchain_destroy(tchain_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    tchain_t *self = *self_p;
    for (size_t i = 0; i < self->nblocks; i++)
        free(self->blocks[i].data);
    free(self->blocks);
    free(self->hashes);
    free(self->roots);
    free(self->acc_sec);
    free(self->acc_pub);
    alys_memstate_destroy(&self->state);
    alys_genesis_clear(&self->genesis);
    free(self);
    *self_p = NULL;
}

int tchain_save_genesis(const tchain_t *self, const char *path)
{
    return alys_genesis_save(path, &self->genesis);
}

/* Set an account, keeping the lattice in step (sub old, add new). */
static void set_account(tchain_t *self, const uint8_t *pk, const alys_account_t *now)
{
    alys_account_t old;
    alys_memstate_get(self->state, pk, &old);
    alys_lattice_sub_account(&self->lattice, pk, &old);
    alys_lattice_add_account(&self->lattice, pk, now);
    alys_memstate_put(self->state, pk, now);
}

static void credit(tchain_t *self, const uint8_t *pk, uint64_t amount)
{
    alys_account_t a;
    alys_memstate_get(self->state, pk, &a);
    a.balance += amount;
    set_account(self, pk, &a);
}

static void make_tx(tchain_t *self, alys_tx_t *tx, const uint8_t *proposer)
{
    uint32_t from = (uint32_t) (rng_next(&self->rng) % self->naccounts);
    uint32_t to = (uint32_t) (rng_next(&self->rng) % self->naccounts);
    memset(tx, 0, sizeof *tx);
    memcpy(tx->from, self->acc_pub[from], ALYS_PUBKEY_LEN);
    if (rng_next(&self->rng) % 8 == 0)
        for (int i = 0; i < 4; i++) { /* a fresh recipient nobody holds a key for */
            uint64_t r = rng_next(&self->rng);
            memcpy(tx->to + 8 * i, &r, 8);
        }
    else
        memcpy(tx->to, self->acc_pub[to], ALYS_PUBKEY_LEN);
    tx->amount = 1 + rng_next(&self->rng) % 1000;
    tx->fee = 1 + rng_next(&self->rng) % 10;
    alys_account_t s;
    alys_memstate_get(self->state, tx->from, &s);
    tx->nonce = s.nonce;
    alys_hash_t h;
    alys_tx_hash(tx, h);
    alys_sign(self->acc_sec[from], h, tx->signature);
    /* Apply in the order state.c does: debit, credit recipient, fee. */
    s.balance -= tx->amount + tx->fee;
    s.nonce++;
    set_account(self, tx->from, &s);
    credit(self, tx->to, tx->amount);
    credit(self, proposer, tx->fee);
}

static int push_block(tchain_t *self, const alys_block_t *b)
{
    if (self->nblocks == self->cap) {
        size_t cap = self->cap ? 2 * self->cap : 64;
        ProtobufCBinaryData *bl = realloc(self->blocks, cap * sizeof *bl);
        if (bl)
            self->blocks = bl;
        alys_hash_t *hs = realloc(self->hashes, cap * sizeof *hs);
        if (hs)
            self->hashes = hs;
        alys_hash_t *rs = realloc(self->roots, cap * sizeof *rs);
        if (rs)
            self->roots = rs;
        if (!bl || !hs || !rs)
            return -1;
        self->cap = cap;
    }
    ProtobufCBinaryData *out = &self->blocks[self->nblocks];
    if (alys_block_encode(b, &out->data, &out->len) != 0)
        return -1;
    alys_header_hash(&b->header, self->hashes[self->nblocks]);
    memcpy(self->roots[self->nblocks], b->header.state_root, ALYS_HASH_LEN);
    self->nblocks++;
    return 0;
}

static void sign_header(const tchain_t *self, alys_header_t *h)
{
    alys_hash_t hh;
    alys_header_hash(h, hh);
    alys_sign(self->auth_sec[h->proposer], hh, h->signature);
}

static int build_block(tchain_t *self, uint32_t txs)
{
    alys_block_t b;
    memset(&b, 0, sizeof b);
    alys_header_t *h = &b.header;
    h->height = self->tip.height + 1;
    memcpy(h->parent_hash, self->tip_hash, ALYS_HASH_LEN);
    h->slot = self->tip.slot + 1 + self->slot_gap;
    self->slot_gap = 0;
    h->proposer = (uint32_t) (h->slot % 3);
    h->timestamp = GENESIS_TIME + h->slot * SLOT_MS / 1000;
    b.txs = calloc(txs ? txs : 1, sizeof *b.txs);
    if (!b.txs)
        return -1;
    b.tx_count = txs;
    for (uint32_t i = 0; i < txs; i++)
        make_tx(self, &b.txs[i], self->genesis.authorities[h->proposer]);
    alys_tx_root(b.txs, txs, h->tx_root);
    alys_lattice_root(&self->lattice, h->state_root);
    sign_header(self, h);
    int rc = push_block(self, &b);
    self->tip = *h;
    alys_header_hash(h, self->tip_hash);
    alys_block_clear(&b);
    return rc;
}

void tchain_diverge(tchain_t *self, uint64_t salt)
{
    self->rng ^= salt * 0x9E3779B97F4A7C15ULL;
    self->slot_gap = 1;
}

int tchain_extend(tchain_t *self, uint32_t n, uint32_t txs)
{
    for (uint32_t i = 0; i < n; i++)
        if (build_block(self, txs) != 0)
            return -1;
    return 0;
}

static const uint8_t *secret_of(const tchain_t *self, const uint8_t *pub)
{
    for (uint32_t i = 0; i < self->naccounts; i++)
        if (memcmp(self->acc_pub[i], pub, ALYS_PUBKEY_LEN) == 0)
            return self->acc_sec[i];
    return NULL;
}

static void resign_tx(const tchain_t *self, alys_tx_t *tx)
{
    alys_hash_t h;
    alys_tx_hash(tx, h);
    alys_sign(secret_of(self, tx->from), h, tx->signature);
}

int tchain_corrupt(const tchain_t *self, uint64_t height, tchain_fault_t kind, ProtobufCBinaryData *out)
{
    if (height == 0 || height > self->nblocks)
        return -1;
    const ProtobufCBinaryData *raw = &self->blocks[height - 1];
    alys_block_t b;
    alys_verdict_t v;
    if (alys_block_decode(raw->data, raw->len, &b, &v) != 0)
        return -1;
    if (kind == TBAD_STATE_ROOT) {
        b.header.state_root[0] ^= 1;
    } else if (kind == TBAD_TX_ROOT) {
        if (b.tx_count > 0)
            b.txs[b.tx_count / 2].amount ^= 1; /* the header keeps the old root */
    } else if (b.tx_count > 0) {
        alys_tx_t *tx = &b.txs[b.tx_count / 2];
        if (kind == TBAD_NONCE)
            tx->nonce++;
        else
            tx->amount = 1ULL << 62;
        resign_tx(self, tx);
        alys_tx_root(b.txs, b.tx_count, b.header.tx_root);
    }
    sign_header(self, &b.header);
    int rc = alys_block_encode(&b, &out->data, &out->len);
    alys_block_clear(&b);
    return rc;
}
