/*  chaingen.h: deterministic generator of long valid (or deliberately
 *  invalid) chains, for tests, the devnet and benchmarks. The CLI is
 *  alys-chaingen (main.c); this is the logic, linked as chaingen_lib.
 *
 *  DETERMINISM. Everything derives from the configuration: the same config
 *  gives the same bytes in DIR/genesis, DIR/keys and DIR/chain.export on any
 *  machine and with any thread count. No wall clock, no OS randomness:
 *    secret key = SHA-256("alys-chaingen/v1" 0x00 seed 0x00 label 0x00 index
 *                 u32le [counter u8 if the first try is not a valid key])
 *                 with label "authority" or "account";
 *    choices (skipped slots, senders, recipients, amounts, fees) come from
 *    xoshiro256** seeded with SHA-256("alys-chaingen/v1/rng" 0x00 seed);
 *    BIP340 signatures are made without auxiliary randomness.
 *
 *  THE CHAIN. Genesis: chain_id, F authorities, slot_ms, genesis_time, A
 *  accounts funded with ALYS_CHAINGEN_FUNDING each (authorities start empty
 *  and earn the fees). Block i (i = 1..N, height i when no fault shifts it):
 *  slot = parent slot + 1, or + 2 with probability 1/20 (a skipped slot);
 *  proposer = slot % F; timestamp = genesis_time + slot * slot_ms / 1000;
 *  K transfers between distinct funded accounts, amount 1..1000, fee 1..10,
 *  with the sender's next nonce; tx root by alys_tx_root; state root by
 *  executing the block (its value is computed incrementally by the
 *  generator and confirmed by alys_execute_block over an alys_memstate, in a
 *  pipeline thread; a disagreement is a generator error). The confirmation
 *  costs about a fifth of the CPU time (it hashes every touched account
 *  twice more); no_verify skips it for big benchmark chains, with the same
 *  bytes: the unit tests check generated chains against alys_execute_block.
 *
 *  FAULTS. A fault kind is named by the alys_block_error_t the node must
 *  report (its alys_block_error_name): bad_proposer_signature,
 *  wrong_proposer, bad_tx_signature, tx_root_mismatch, parent_mismatch,
 *  height_gap, non_increasing_slot, future_slot, bad_timestamp, bad_nonce,
 *  insufficient_balance, state_root_mismatch, malformed, oversize. With a
 *  fault at position H, block H breaks exactly that one rule (everything it
 *  changes is re-signed and re-hashed, so no other check fails first) and the
 *  blocks after it are built on top of it as if it were valid: their parent
 *  hash is its header hash, their heights and slots follow its own, and the
 *  state continues from its valid twin (for bad_nonce / insufficient_balance
 *  the state as if the tx had not been altered). What each kind does:
 *    bad_proposer_signature  flip one bit of the header signature
 *    wrong_proposer          proposer = (slot + 1) % F, signed by that
 *                            authority (needs F >= 2)
 *    bad_tx_signature        flip one bit of the signature of tx K/2
 *    tx_root_mismatch        flip one bit of tx_root, re-sign the header
 *    parent_mismatch         flip one bit of parent_hash, re-sign
 *    height_gap              height = parent height + 2, re-sign
 *    non_increasing_slot     slot = parent slot (proposer, timestamp follow)
 *    future_slot             slot = parent slot + 1 + 1000 years of slots
 *    bad_timestamp           timestamp + 1
 *    bad_nonce               tx K/2's nonce + 1, re-signed, tx root redone
 *    insufficient_balance    tx K/2's amount = 2^62 (over the total supply)
 *    state_root_mismatch     flip one bit of state_root, re-sign
 *    malformed               record bytes = a valid encoding + 2 bytes that
 *                            open a field running past the end
 *    oversize                record bytes = a valid encoding + copies of its
 *                            txs up to ALYS_MAX_TXS_PER_BLOCK + 1 txs (the
 *                            record stays under ALYS_MAX_BLOCK_BYTES so the
 *                            export stream remains readable; the block
 *                            decoder refuses it)
 *  (bad_tx_signature, bad_nonce and insufficient_balance need K >= 1.)
 *
 *  Ownership: functions taking err/errlen copy a one-line message there.
 *  Structures filled by *_derive / *_new are freed by the matching
 *  *_clear / *_destroy.
 */
#ifndef ALYS_CHAINGEN_H
#define ALYS_CHAINGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"

#define ALYS_CHAINGEN_FUNDING        1000000000000ULL   /* per funded account */
#define ALYS_CHAINGEN_MAX_BLOCKS     1000000000ULL
#define ALYS_CHAINGEN_MAX_SLOT_MS    3600000ULL
#define ALYS_CHAINGEN_MAX_GENESIS_TIME 100000000000ULL  /* year ~5100 */
#define ALYS_CHAINGEN_MAX_SEED       256
#define ALYS_CHAINGEN_MAX_THREADS    64
#define ALYS_CHAINGEN_DEFAULT_SLOT_MS      2000
#define ALYS_CHAINGEN_DEFAULT_GENESIS_TIME 1600000000ULL
#define ALYS_CHAINGEN_DEFAULT_CHAIN_ID     "alys-chaingen"

/* ---------------------------------------------------------------- keys */

typedef struct {
    uint32_t authority_count;
    uint8_t (*authority_sec)[ALYS_SECKEY_LEN];
    uint8_t (*authority_pub)[ALYS_PUBKEY_LEN];
    uint32_t account_count;
    uint8_t (*account_sec)[ALYS_SECKEY_LEN];
    uint8_t (*account_pub)[ALYS_PUBKEY_LEN];
} alys_chaingen_keys_t;

/* Derive the F authority and A account key pairs from seed (see above).
 * Returns 0, or -1 (out of memory). Free with alys_chaingen_keys_clear. */
int  alys_chaingen_keys_derive(const char *seed, uint32_t authorities, uint32_t accounts,
                               alys_chaingen_keys_t *out);
void alys_chaingen_keys_clear(alys_chaingen_keys_t *k);
/* Secret key of an account or authority public key; NULL if unknown.
 * Linear search: meant for the odd re-signing, not for every tx. */
const uint8_t *alys_chaingen_keys_secret(const alys_chaingen_keys_t *k,
                                         const uint8_t pubkey[ALYS_PUBKEY_LEN]);

/* ---------------------------------------------------------------- faults */

/* Parse a fault name ("bad_nonce", ...) into its alys_block_error_t.
 * Returns 0, or -1 with the list of valid names in err. */
int  alys_chaingen_fault_parse(const char *name, alys_block_error_t *kind,
                               char *err, size_t errlen);
/* True for the kinds that change the encoded bytes, not the block value
 * (malformed, oversize): use alys_chaingen_corrupt_encoding for those. */
bool alys_chaingen_fault_is_encoding(alys_block_error_t kind);

typedef struct {
    const alys_genesis_t       *genesis;
    const alys_chaingen_keys_t *keys;     /* to re-sign what the fault changes */
    const alys_header_t        *parent;   /* needed by non_increasing_slot */
} alys_chaingen_fault_ctx_t;

/* Make a valid, signed block b invalid in exactly the way `kind` names
 * (table above), re-signing and re-hashing whatever else that change
 * touches. Used by the generator and meant for a fault-injecting peer that
 * corrupts blocks it serves. Limits: the header's state root is not
 * recomputed (that needs the state): after wrong_proposer, non_increasing_slot
 * or future_slot the fees go to another authority, so the block would also
 * fail execution; the stateless or link check fails first in any pipeline
 * (the generator itself applies these before executing, so its chains break
 * one rule only). Returns 0, or -1 with err when the kind does not apply
 * (an encoding kind, K = 0 for a tx kind, F < 2 for wrong_proposer, no
 * parent, an unknown key). *tx_index (may be NULL) gets the altered tx or -1. */
int  alys_chaingen_corrupt_block(alys_block_t *b, alys_block_error_t kind,
                                 const alys_chaingen_fault_ctx_t *ctx, int32_t *tx_index,
                                 char *err, size_t errlen);

/* Encode b as the invalid record bytes of an encoding kind (malformed,
 * oversize). *out is malloc'ed, caller frees. Returns 0 or -1. */
int  alys_chaingen_corrupt_encoding(const alys_block_t *b, alys_block_error_t kind,
                                    uint8_t **out, size_t *len, char *err, size_t errlen);

/* ---------------------------------------------------------------- generator */

typedef struct {
    uint64_t blocks;              /* N */
    uint32_t txs_per_block;       /* K */
    uint32_t accounts;            /* A */
    uint32_t authorities;         /* F */
    char     seed[ALYS_CHAINGEN_MAX_SEED + 1];
    uint64_t slot_ms;
    uint64_t genesis_time;        /* unix seconds */
    char     chain_id[64];
    alys_block_error_t fault;     /* ALYS_BLOCK_OK = none */
    uint64_t fault_height;        /* position 1..N of the faulty block */
    uint32_t threads;             /* 0 = online CPUs; never changes the output */
    bool     no_verify;           /* skip the alys_execute_block confirmation
                                   * (faster, same bytes) */
} alys_chaingen_config_t;

/* Defaults: slot_ms 2000, genesis_time 1600000000, chain_id "alys-chaingen",
 * no fault, threads 0; everything else 0 / "" (must be set). */
void alys_chaingen_config_default(alys_chaingen_config_t *c);
/* Every bound and combination; the message names the option, e.g.
 * "--txs-per-block 5000 exceeds the limit 4096". Returns 0 or -1. */
int  alys_chaingen_config_check(const alys_chaingen_config_t *c, char *err, size_t errlen);

typedef struct alys_chaingen alys_chaingen_t;

/* Checks the config, derives keys, builds the genesis. NULL + err on error. */
alys_chaingen_t *alys_chaingen_new(const alys_chaingen_config_t *c, char *err, size_t errlen);
void alys_chaingen_destroy(alys_chaingen_t **self_p);

/* Owned by the generator, valid until destroy. */
const alys_genesis_t       *alys_chaingen_genesis(const alys_chaingen_t *self);
const alys_chaingen_keys_t *alys_chaingen_keys(const alys_chaingen_t *self);

/* The next block, in order. Returns 1 with *bytes and *len (the export record:
 * for encoding faults the invalid bytes) and, if block is not NULL, *block
 * (the block value, before any encoding fault), all owned by the generator
 * and valid until the next call; 0 after the last block; -1 with err. */
int  alys_chaingen_next(alys_chaingen_t *self, const uint8_t **bytes, size_t *len,
                        const alys_block_t **block, char *err, size_t errlen);

typedef struct {
    uint64_t    blocks;
    uint64_t    txs;
    uint64_t    head_height;      /* as written in the last header */
    alys_hash_t head_hash;        /* alys_header_hash of the last header */
    alys_hash_t state_root;       /* the last header's state_root */
    alys_hash_t genesis_hash;
} alys_chaingen_result_t;

/* Summary so far (complete once next() has returned 0). */
void alys_chaingen_result(const alys_chaingen_t *self, alys_chaingen_result_t *out);

/* The whole tool: create out_dir if missing, write out_dir/genesis
 * (alys_genesis_save), out_dir/keys (authority secret keys, hex, one per
 * line, mode 0600) and out_dir/chain.export (fsync'ed). Returns 0 or -1. */
int  alys_chaingen_run(const alys_chaingen_config_t *c, const char *out_dir,
                       alys_chaingen_result_t *res, char *err, size_t errlen);

#endif
