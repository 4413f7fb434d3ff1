/*  testchain.h: a small deterministic chain builder for the storage tests and
 *  the storage benchmark. Independent of alys-chaingen on purpose: it applies
 *  the execution rules itself (sender debit, recipient credit, fee to the
 *  slot's proposer) and keeps the lattice incrementally, so the store's
 *  execution is checked against a second implementation.
 *
 *  Genesis: 3 authorities (secret keys SHA-256("storage-test/authority" i)),
 *  `accounts` funded accounts (SHA-256("storage-test/account" i)), slot 2 s,
 *  genesis_time 1600000000 (the past: no block is in the future).
 *  Blocks: slot = parent + 1, proposer = slot % 3, txs between funded accounts,
 *  one in 8 to a fresh key (new accounts appear), with the sender's next
 *  nonce; headers and txs signed (BIP340).
 *
 *  Ownership: tchain_new/tchain_destroy; block bytes are owned by the chain.
 */
#ifndef TESTCHAIN_H
#define TESTCHAIN_H

#include <protobuf-c/protobuf-c.h>

#include "chain/chain.h"
#include "chain/memstate.h"
#include "chain/state.h"

typedef struct {
    alys_genesis_t genesis;
    uint8_t auth_sec[3][ALYS_SECKEY_LEN];
    uint32_t naccounts;
    uint8_t (*acc_sec)[ALYS_SECKEY_LEN];
    uint8_t (*acc_pub)[ALYS_PUBKEY_LEN];
    alys_memstate_t *state; /* state after the last block built */
    alys_lattice_t lattice;
    alys_header_t tip; /* genesis parent before any block */
    alys_hash_t tip_hash;
    uint64_t rng;
    uint64_t slot_gap; /* extra slots before the next block (tchain_diverge) */
    /* blocks[i] is height i + 1 */
    ProtobufCBinaryData *blocks;
    alys_hash_t *hashes;
    alys_hash_t *roots;
    size_t nblocks, cap;
} tchain_t;

/* NULL on failure. chain_id lets tests make a second, different genesis. */
tchain_t *tchain_new(uint32_t accounts, uint64_t seed, const char *chain_id);
void tchain_destroy(tchain_t **self_p);
int tchain_save_genesis(const tchain_t *self, const char *path);
/* Append n blocks of txs transfers each. Returns 0 or -1. */
int tchain_extend(tchain_t *self, uint32_t n, uint32_t txs);
/* Make this chain a branch from here on: the next block skips a slot (so
 * it differs from the block another chain of the same seed builds at this
 * height even without txs) and the txs come from another random stream.
 * Two chains of one seed extended alike share their blocks up to the
 * height where one of them diverged. */
void tchain_diverge(tchain_t *self, uint64_t salt);

/* Re-encoded copies of block `height` made invalid. Caller frees ->data. */
/* TBAD_TX_ROOT: one tx changed under the header's tx root (the header and its
 * hash stay those of the chain's block). */
typedef enum { TBAD_STATE_ROOT, TBAD_NONCE, TBAD_BALANCE, TBAD_TX_ROOT } tchain_fault_t;
int tchain_corrupt(const tchain_t *self, uint64_t height, tchain_fault_t kind,
                   ProtobufCBinaryData *out);

#endif
