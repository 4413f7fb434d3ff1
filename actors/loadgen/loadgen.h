/*  loadgen.h: the load generator's pure core: valid signed transfers from
 *  generated accounts, their encoding, and the pacing arithmetic. No I/O,
 *  no clock (time is a parameter).
 *
 *  Accounts are common/forge's (alys_forge_keys_derive with the chain's
 *  seed: the same accounts alys-chaingen funded). Senders go round-robin
 *  over the accounts, so each account's nonces are consecutive from
 *  first_nonce; the recipient is another account picked by a seeded
 *  splitmix64 stream (reproducible runs). Amount in [1, amount_max], fee in
 *  [fee_min, fee_max].
 *
 *  With a genesis (optional), every account must be funded in it (else
 *  loadgen_new fails: the seed is not the chain's), and an account stops
 *  sending once its next tx would take its total spent over its genesis
 *  balance (received amounts and history before first_nonce are not
 *  counted: conservative), or over the balance loadgen_set_account gave it
 *  (the head's, after replaying the chain). loadgen_next returns 0 when no
 *  account can pay.
 *
 *  Encoding: a tx is an encoded alys.chain.Tx (proto/chain.proto), the
 *  chain's tx encoding; a stream is either one lowercase hex line per tx
 *  or, in binary, a u32 little-endian length then the bytes, per tx.
 *
 *  Ownership: the generator borrows keys and genesis (both must outlive
 *  it); loadgen_destroy(&self) frees the rest and nulls the pointer.
 */
#ifndef ALYS_LOADGEN_H
#define ALYS_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "forge/keys.h"

#define LOADGEN_MAX_RATE     100000 /* tx/s; 0 = as fast as possible */
#define LOADGEN_TX_MAX_BYTES 200    /* bound on one encoded Tx */

typedef struct {
    uint64_t first_nonce; /* every account's next nonce at the start */
    uint64_t amount_max;  /* >= 1 */
    uint64_t fee_min;
    uint64_t fee_max; /* >= fee_min */
    uint64_t rng_seed;
} loadgen_params_t;

typedef struct loadgen loadgen_t;

/* NULL with err on bad parameters (no accounts, amount_max 0, fee_min >
 * fee_max), an account not funded in genesis (when genesis is not NULL), or
 * out of memory. */
loadgen_t *loadgen_new(const alys_forge_keys_t *keys, const alys_genesis_t *genesis,
                       const loadgen_params_t *p, char *err, size_t errlen);
void loadgen_destroy(loadgen_t **self_p);

/* Start account i at (nonce, balance), its state at the chain's head (e.g.
 * after replaying the chain's export: alys-loadgen --chain). Needs a
 * generator made with a genesis (budgets on). 0, or -1 if i is out of
 * range or budgets are off. */
int loadgen_set_account(loadgen_t *self, uint32_t i, uint64_t nonce, uint64_t balance);

/* The next signed tx: 1, or 0 when no account can pay any more, -1 if
 * signing failed. */
int loadgen_next(loadgen_t *self, alys_tx_t *out);

/* Encode tx as an alys.chain.Tx into buf (at least LOADGEN_TX_MAX_BYTES).
 * Returns the length, or 0 if it does not fit. */
size_t loadgen_encode_tx(const alys_tx_t *tx, uint8_t *buf, size_t cap);

/* How many txs are due at now_ms for a run that started at start_ms at
 * rate tx/s and has sent `sent` so far (0 when ahead of schedule). rate 0:
 * always 1 (as fast as possible). */
uint64_t loadgen_due(uint64_t rate, uint64_t start_ms, uint64_t now_ms, uint64_t sent);
/* Milliseconds from now_ms until the next tx is due (0 if due now). */
uint64_t loadgen_wait_ms(uint64_t rate, uint64_t start_ms, uint64_t now_ms, uint64_t sent);

#endif
