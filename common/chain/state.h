/*  state.h: account state, its incremental commitment, and sequential block
 *  execution.
 *
 *  State root: a lattice hash (as in Solana's accounts lattice hash). Each
 *  account (pubkey, balance, nonce) maps through SHA-256 then a ChaCha20
 *  keystream (an XOF; cheaper than SHAKE256) to a vector of 1024
 *  uint16 lanes; the state's lattice is the lane-wise sum (mod 2^16) of its
 *  accounts' vectors; the state root is SHA-256 of the lattice. Changing one
 *  account subtracts its old vector and adds its new one, so a block costs
 *  O(accounts it touches), not O(all accounts). An account with balance 0 and
 *  nonce 0 is absent (contributes nothing).
 *
 *  Execution runs over alys_state_view_t: a read callback to the committed
 *  state (RocksDB in StorageActor, a hash map in chaingen and tests) plus an
 *  in-memory overlay of accounts changed since the last commit. The caller
 *  commits the overlay (alys_overlay_foreach) and then resets it.
 */
#ifndef ALYS_STATE_H
#define ALYS_STATE_H

#include "chain.h"

#define ALYS_LATTICE_LANES 1024
#define ALYS_LATTICE_BYTES (2 * ALYS_LATTICE_LANES) /* serialized: lanes little-endian */

typedef struct {
    uint16_t lane[ALYS_LATTICE_LANES];
} alys_lattice_t;

typedef struct {
    uint64_t balance;
    uint64_t nonce; /* next nonce expected from this account */
} alys_account_t;

void alys_lattice_zero(alys_lattice_t *l);
void alys_lattice_add_account(alys_lattice_t *l, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                              const alys_account_t *a);
void alys_lattice_sub_account(alys_lattice_t *l, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                              const alys_account_t *a);
void alys_lattice_root(const alys_lattice_t *l, alys_hash_t out);
/* Persisted form of a lattice (what StorageActor stores beside the head). */
void alys_lattice_to_bytes(const alys_lattice_t *l, uint8_t out[ALYS_LATTICE_BYTES]);
void alys_lattice_from_bytes(alys_lattice_t *l, const uint8_t in[ALYS_LATTICE_BYTES]);
/* Lattice of the genesis accounts (nonce 0); its root is g->state_root. */
void alys_lattice_from_genesis(alys_lattice_t *l, const alys_genesis_t *g);

/* Read the committed account. Return 1 found, 0 absent (zero account), -1 on I/O error. */
typedef int (*alys_state_read_fn)(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                                  alys_account_t *out);

typedef struct alys_overlay alys_overlay_t; /* hash map of changed accounts */

alys_overlay_t *alys_overlay_new(void);
void alys_overlay_destroy(alys_overlay_t **self_p);
void alys_overlay_reset(alys_overlay_t *self);
size_t alys_overlay_size(const alys_overlay_t *self);
/* Visit every changed account (its value after the last executed block). */
typedef int (*alys_overlay_visit_fn)(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                                     const alys_account_t *now, const alys_account_t *before);
/* Visits in first-touch order (deterministic); stops at and returns the first
 * non-zero fn result, else 0. */
int alys_overlay_foreach(const alys_overlay_t *self, alys_overlay_visit_fn fn, void *ctx);
/* The overlay's current value of an account: 1 if the overlay holds it, else 0. */
int alys_overlay_get(const alys_overlay_t *self, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                     alys_account_t *now);

typedef struct {
    const alys_genesis_t *genesis;
    alys_state_read_fn read;
    void *read_ctx;
    alys_overlay_t *overlay; /* borrowed */
    alys_lattice_t lattice;  /* current lattice, updated per block */
    /* Optional: after a block executes, called once per account it touched,
     * with the account's value before and after that block (undo data). */
    void (*on_change)(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                      const alys_account_t *before, const alys_account_t *after);
    void *change_ctx;
} alys_state_view_t;

/* Execute one block on top of view (txs in order: nonce, balance, amount+fee,
 * fee to the proposer's account) and compare the resulting state root with the
 * header's. On failure the view is left exactly as before the block. */
bool alys_execute_block(alys_state_view_t *view, const alys_block_t *b, alys_verdict_t *v);
/* An account as the view sees it (overlay, else committed state). Returns 1
 * found, 0 absent (zero account), -1 on read error. */
int alys_state_view_get(const alys_state_view_t *view, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                        alys_account_t *out);
/* Set an account to value in the view's overlay, outside any block: the
 * undo records of a reorg applied to an execution view (StorageActor undoes
 * the old branch and executes the new one in one overlay, one WriteBatch).
 * When the overlay lacks the account its committed value is read first, so
 * alys_overlay_foreach's `before` stays the committed value and the commit
 * writes only what differs. view->lattice follows (the current value's
 * vector subtracted, the new one's added; zero accounts have none).
 * on_change is not called. 0, or -1 (read error or out of memory; the view
 * is then unchanged). */
int alys_state_view_restore(alys_state_view_t *view, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                            const alys_account_t *value);


#endif
