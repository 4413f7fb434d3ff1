/*  fixture.c: see fixture.h. Plain asserts: a broken fixture should stop
 *  the run loudly, not show up as a confusing test failure. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "fixture.h"

uint64_t fx_rand(uint64_t *s)
{
    /* splitmix64: a reproducible stream, good enough for test data */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void fx_seckey(const char *label, int i, uint8_t sk[ALYS_SECKEY_LEN])
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%s/%d", label, i);
    assert(n > 0);
    alys_sha256(buf, (size_t) n, sk);
}

void fx_init(fx_t *fx)
{
    memset(fx, 0, sizeof *fx);
    alys_genesis_t *g = &fx->g;
    snprintf(g->chain_id, sizeof g->chain_id, "alys-test");
    g->authority_count = FX_AUTHS;
    g->authorities = calloc(FX_AUTHS, ALYS_PUBKEY_LEN);
    g->balance_count = FX_USERS;
    g->balances = calloc(FX_USERS, sizeof *g->balances);
    assert(g->authorities && g->balances);
    g->slot_duration_ms = FX_SLOT_MS;
    g->genesis_time = FX_GENESIS_TIME;
    for (int i = 0; i < FX_AUTHS; i++) {
        fx_seckey("auth", i, fx->auth_sk[i]);
        assert(alys_keypair_pubkey(fx->auth_sk[i], g->authorities[i]) == 0);
    }
    for (int i = 0; i < FX_USERS; i++) {
        fx_seckey("user", i, fx->user_sk[i]);
        assert(alys_keypair_pubkey(fx->user_sk[i], fx->user_pk[i]) == 0);
        memcpy(g->balances[i].pubkey, fx->user_pk[i], ALYS_PUBKEY_LEN);
        g->balances[i].balance = FX_BALANCE;
        alys_account_t a = {.balance = FX_BALANCE};
        ledger_put(&fx->committed, fx->user_pk[i], &a);
    }
    alys_genesis_finalize(g);
}

void fx_fini(fx_t *fx)
{
    alys_genesis_clear(&fx->g);
}

void fx_resign_tx(const fx_t *fx, int from, alys_tx_t *tx)
{
    alys_hash_t h;
    alys_tx_hash(tx, h);
    assert(alys_sign(fx->user_sk[from], h, tx->signature) == 0);
}

alys_tx_t fx_tx(const fx_t *fx, int from, const uint8_t to[ALYS_PUBKEY_LEN], uint64_t amount,
                uint64_t fee, uint64_t nonce)
{
    alys_tx_t tx = {.amount = amount, .fee = fee, .nonce = nonce};
    memcpy(tx.from, fx->user_pk[from], ALYS_PUBKEY_LEN);
    memcpy(tx.to, to, ALYS_PUBKEY_LEN);
    fx_resign_tx(fx, from, &tx);
    return tx;
}

void fx_resign(const fx_t *fx, alys_header_t *h)
{
    alys_hash_t hh;
    alys_header_hash(h, hh);
    assert(alys_sign(fx->auth_sk[h->proposer % FX_AUTHS], hh, h->signature) == 0);
}

void fx_block(const fx_t *fx, const alys_header_t *parent, const alys_hash_t parent_hash,
              uint64_t slot, const alys_tx_t *txs, uint32_t n, alys_block_t *out)
{
    memset(out, 0, sizeof *out);
    alys_header_t *h = &out->header;
    h->height = parent->height + 1;
    memcpy(h->parent_hash, parent_hash, ALYS_HASH_LEN);
    h->slot = slot;
    h->timestamp = FX_GENESIS_TIME + slot * FX_SLOT_MS / 1000;
    h->proposer = (uint32_t) (slot % FX_AUTHS);
    if (n) {
        out->txs = malloc(n * sizeof *txs);
        assert(out->txs);
        memcpy(out->txs, txs, n * sizeof *txs);
    }
    out->tx_count = n;
    alys_tx_root(out->txs, n, h->tx_root);
    /* State root from the reference model; stops at the first invalid tx, so
     * blocks meant to fail execution still get a well-formed header. */
    static ledger_t scratch;
    scratch = fx->committed;
    for (uint32_t i = 0; i < n; i++)
        if (!ledger_apply(&scratch, fx->g.authorities[h->proposer], &txs[i]))
            break;
    ledger_root(&scratch, h->state_root);
    fx_resign(fx, h);
}

int ledger_find(const ledger_t *l, const uint8_t pk[ALYS_PUBKEY_LEN])
{
    for (int i = 0; i < l->n; i++)
        if (memcmp(l->e[i].pk, pk, ALYS_PUBKEY_LEN) == 0)
            return i;
    return -1;
}

alys_account_t ledger_get(const ledger_t *l, const uint8_t pk[ALYS_PUBKEY_LEN])
{
    int i = ledger_find(l, pk);
    return i < 0 ? (alys_account_t){0, 0} : l->e[i].a;
}

void ledger_put(ledger_t *l, const uint8_t pk[ALYS_PUBKEY_LEN], const alys_account_t *a)
{
    int i = ledger_find(l, pk);
    if (i < 0) {
        assert(l->n < LEDGER_MAX);
        i = l->n++;
        memcpy(l->e[i].pk, pk, ALYS_PUBKEY_LEN);
    }
    l->e[i].a = *a;
}

int ledger_read(void *ctx, const uint8_t pk[ALYS_PUBKEY_LEN], alys_account_t *out)
{
    *out = ledger_get(ctx, pk);
    return out->balance || out->nonce;
}

/* From scratch and independent of state.c: the account layout written out
 * again here, SHA-256 and ChaCha20 called through OpenSSL directly. */
static void ref_vector(const uint8_t pk[ALYS_PUBKEY_LEN], const alys_account_t *a,
                       uint8_t out[ALYS_LATTICE_BYTES])
{
    uint8_t in[15 + 32 + 16];
    memcpy(in, "alys/account/v1", 15);
    memcpy(in + 15, pk, 32);
    for (int i = 0; i < 8; i++) {
        in[47 + i] = (uint8_t) (a->balance >> (8 * i));
        in[55 + i] = (uint8_t) (a->nonce >> (8 * i));
    }
    uint8_t key[32], iv[16] = {0}, zeros[ALYS_LATTICE_BYTES] = {0};
    SHA256(in, sizeof in, key);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    assert(ctx);
    int outl = 0;
    assert(EVP_EncryptInit_ex(ctx, EVP_chacha20(), NULL, key, iv) == 1);
    assert(EVP_EncryptUpdate(ctx, out, &outl, zeros, ALYS_LATTICE_BYTES) == 1);
    assert(outl == ALYS_LATTICE_BYTES);
    EVP_CIPHER_CTX_free(ctx);
}

void ledger_lattice(const ledger_t *l, alys_lattice_t *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < l->n; i++) {
        if (l->e[i].a.balance == 0 && l->e[i].a.nonce == 0)
            continue;
        uint8_t v[ALYS_LATTICE_BYTES];
        ref_vector(l->e[i].pk, &l->e[i].a, v);
        for (int k = 0; k < ALYS_LATTICE_LANES; k++)
            out->lane[k] = (uint16_t) (out->lane[k] + (v[2 * k] | v[2 * k + 1] << 8));
    }
}

void ledger_root(const ledger_t *l, alys_hash_t out)
{
    alys_lattice_t lat;
    ledger_lattice(l, &lat);
    uint8_t bytes[ALYS_LATTICE_BYTES];
    for (int k = 0; k < ALYS_LATTICE_LANES; k++) {
        bytes[2 * k] = (uint8_t) lat.lane[k];
        bytes[2 * k + 1] = (uint8_t) (lat.lane[k] >> 8);
    }
    SHA256(bytes, sizeof bytes, out);
}

bool ledger_apply(ledger_t *l, const uint8_t proposer[ALYS_PUBKEY_LEN], const alys_tx_t *tx)
{
    alys_account_t s = ledger_get(l, tx->from);
    if (tx->nonce != s.nonce || tx->amount > UINT64_MAX - tx->fee || s.balance < tx->amount + tx->fee)
        return false;
    s.balance -= tx->amount + tx->fee;
    s.nonce++;
    ledger_put(l, tx->from, &s);
    alys_account_t r = ledger_get(l, tx->to);
    r.balance += tx->amount;
    ledger_put(l, tx->to, &r);
    alys_account_t p = ledger_get(l, proposer);
    p.balance += tx->fee;
    ledger_put(l, proposer, &p);
    return true;
}

void fx_view(fx_t *fx, alys_overlay_t *ov, alys_state_view_t *view)
{
    memset(view, 0, sizeof *view);
    view->genesis = &fx->g;
    view->read = ledger_read;
    view->read_ctx = &fx->committed;
    view->overlay = ov;
    ledger_lattice(&fx->committed, &view->lattice);
}

static int commit_one(void *ctx, const uint8_t pk[ALYS_PUBKEY_LEN], const alys_account_t *now,
                      const alys_account_t *before)
{
    (void) before;
    ledger_put(ctx, pk, now);
    return 0;
}

void fx_commit(fx_t *fx, alys_overlay_t *ov)
{
    assert(alys_overlay_foreach(ov, commit_one, &fx->committed) == 0);
    alys_overlay_reset(ov);
}
