/*  mp_fixture.c: see mp_fixture.h. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_fixture.h"

void mpf_init(mpf_t *f, uint32_t accounts, uint64_t balance)
{
    memset(f, 0, sizeof *f);
    int rc = alys_forge_keys_derive("mempool-test", MPF_AUTHS, accounts, &f->keys);
    assert(rc == 0);
    alys_genesis_t *g = &f->g;
    snprintf(g->chain_id, sizeof g->chain_id, "alys-mempool-test");
    g->authority_count = MPF_AUTHS;
    g->authorities = calloc(MPF_AUTHS, ALYS_PUBKEY_LEN);
    g->balance_count = accounts;
    g->balances = calloc(accounts ? accounts : 1, sizeof *g->balances);
    assert(g->authorities && g->balances);
    memcpy(g->authorities, f->keys.authority_pub, (size_t) MPF_AUTHS * ALYS_PUBKEY_LEN);
    for (uint32_t i = 0; i < accounts; i++) {
        memcpy(g->balances[i].pubkey, f->keys.account_pub[i], ALYS_PUBKEY_LEN);
        g->balances[i].balance = balance;
    }
    g->slot_duration_ms = MPF_SLOT_MS;
    g->genesis_time = MPF_GENESIS_TIME;
    alys_genesis_finalize(g);
    f->ms = alys_memstate_new();
    f->ov = alys_overlay_new();
    assert(f->ms && f->ov);
    rc = alys_memstate_load_genesis(f->ms, g);
    assert(rc == 0);
    alys_memstate_view_init(f->ms, g, f->ov, &f->view);
    (void) rc;
}

void mpf_fini(mpf_t *f)
{
    alys_overlay_destroy(&f->ov);
    alys_memstate_destroy(&f->ms);
    alys_genesis_clear(&f->g);
    alys_forge_keys_clear(&f->keys);
}

alys_tx_t mpf_tx(const mpf_t *f, uint32_t from, uint32_t to, uint64_t amount, uint64_t fee,
                 uint64_t nonce)
{
    assert(from < f->keys.account_count && to < f->keys.account_count);
    alys_tx_t tx = {.amount = amount, .fee = fee, .nonce = nonce};
    memcpy(tx.from, f->keys.account_pub[from], ALYS_PUBKEY_LEN);
    memcpy(tx.to, f->keys.account_pub[to], ALYS_PUBKEY_LEN);
    alys_hash_t h;
    alys_tx_hash(&tx, h);
    int rc = alys_sign(f->keys.account_sec[from], h, tx.signature);
    assert(rc == 0);
    (void) rc;
    return tx;
}

void mpf_set(mpf_t *f, uint32_t account, uint64_t balance, uint64_t nonce)
{
    alys_account_t a = {.balance = balance, .nonce = nonce};
    int rc = alys_memstate_put(f->ms, f->keys.account_pub[account], &a);
    assert(rc == 0);
    (void) rc;
    alys_memstate_view_init(f->ms, &f->g, f->ov, &f->view);
}
