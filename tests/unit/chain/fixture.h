/*  fixture.h: a small chain for the chain unit tests and the micro-benchmark.
 *
 *  A genesis of 3 authorities and FX_USERS funded users, all keys derived
 *  from fixed seeds; a reference ledger (a plain array, full lattice
 *  recomputation) that computes every state root independently of state.c;
 *  and a block builder that fills a valid header (height, parent, slot,
 *  timestamp, proposer, tx root, state root, signature).
 */
#ifndef ALYS_TEST_CHAIN_FIXTURE_H
#define ALYS_TEST_CHAIN_FIXTURE_H

#include "chain/chain.h"
#include "chain/state.h"

#define FX_AUTHS        3
#define FX_USERS        8
#define FX_BALANCE      1000000
#define FX_SLOT_MS      2000
#define FX_GENESIS_TIME 1700000000ULL
#define LEDGER_MAX      4096

typedef struct {
    uint8_t pk[ALYS_PUBKEY_LEN];
    alys_account_t a;
} ledger_entry_t;

typedef struct {
    ledger_entry_t e[LEDGER_MAX];
    int n;
} ledger_t;

typedef struct {
    alys_genesis_t g;
    uint8_t auth_sk[FX_AUTHS][ALYS_SECKEY_LEN];
    uint8_t user_sk[FX_USERS][ALYS_SECKEY_LEN];
    uint8_t user_pk[FX_USERS][ALYS_PUBKEY_LEN];
    ledger_t committed; /* state at the last committed block */
} fx_t;

void fx_seckey(const char *label, int i, uint8_t sk[ALYS_SECKEY_LEN]);
void fx_init(fx_t *fx);
void fx_fini(fx_t *fx);

alys_tx_t fx_tx(const fx_t *fx, int from, const uint8_t to[ALYS_PUBKEY_LEN], uint64_t amount,
                uint64_t fee, uint64_t nonce);
/* A valid block on top of parent (state = fx->committed). txs are copied. */
void fx_block(const fx_t *fx, const alys_header_t *parent, const alys_hash_t parent_hash,
              uint64_t slot, const alys_tx_t *txs, uint32_t n, alys_block_t *out);
/* Re-sign the header with the authority its proposer index names (mod 3). */
void fx_resign(const fx_t *fx, alys_header_t *h);
void fx_resign_tx(const fx_t *fx, int from, alys_tx_t *tx);

/* Reference model. */
int ledger_find(const ledger_t *l, const uint8_t pk[ALYS_PUBKEY_LEN]);
alys_account_t ledger_get(const ledger_t *l, const uint8_t pk[ALYS_PUBKEY_LEN]);
void ledger_put(ledger_t *l, const uint8_t pk[ALYS_PUBKEY_LEN], const alys_account_t *a);
int ledger_read(void *ctx, const uint8_t pk[ALYS_PUBKEY_LEN], alys_account_t *out);
void ledger_root(const ledger_t *l, alys_hash_t out); /* full recomputation */
void ledger_lattice(const ledger_t *l, alys_lattice_t *out);
/* Apply a tx with the execution rules; false (ledger untouched) if invalid. */
bool ledger_apply(ledger_t *l, const uint8_t proposer[ALYS_PUBKEY_LEN], const alys_tx_t *tx);

/* A state view over fx->committed with a fresh lattice. */
void fx_view(fx_t *fx, alys_overlay_t *ov, alys_state_view_t *view);
/* Copy the overlay's accounts into fx->committed and reset the overlay. */
void fx_commit(fx_t *fx, alys_overlay_t *ov);

uint64_t fx_rand(uint64_t *s);

#endif
