/*  chaingen.h: deterministic generator of long valid (or deliberately
 *  invalid) chains, for tests, the devnet and benchmarks. The CLI is
 *  alys-chaingen (main.c); this is the logic, linked as chaingen_lib.
 *
 *  DETERMINISM. Everything derives from the configuration: the same config
 *  gives the same bytes in DIR/genesis, DIR/keys and DIR/chain.export on any
 *  machine and with any thread count. No wall clock, no OS randomness:
 *    keys: alys_forge_keys_derive (common/forge/keys.h) from the seed;
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
 *  FAULTS. With --fault KIND --fault-height H, block H breaks exactly the
 *  one rule KIND names (common/forge/fault.h lists the kinds and what each
 *  changes) and the blocks after it are built on top of it as if it were
 *  valid: their parent hash is its header hash, their heights and slots
 *  follow its own, and the state continues from its valid twin (for
 *  bad_nonce / insufficient_balance the state as if the tx had not been
 *  altered). The generator applies the change before executing and signing,
 *  so its chains break one rule only.
 *
 *  Ownership: functions taking err/errlen copy a one-line message there.
 *  alys_chaingen_new's result is freed by alys_chaingen_destroy.
 */
#ifndef ALYS_CHAINGEN_H
#define ALYS_CHAINGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "forge/fault.h"
#include "forge/keys.h"
#include "forge/par.h"

#define ALYS_CHAINGEN_FUNDING              1000000000000ULL /* per funded account */
#define ALYS_CHAINGEN_MAX_BLOCKS           1000000000ULL
#define ALYS_CHAINGEN_MAX_SLOT_MS          3600000ULL
#define ALYS_CHAINGEN_MAX_GENESIS_TIME     100000000000ULL /* year ~5100 */
#define ALYS_CHAINGEN_MAX_SEED             ALYS_FORGE_MAX_SEED
#define ALYS_CHAINGEN_MAX_THREADS          ALYS_FORGE_MAX_THREADS
#define ALYS_CHAINGEN_DEFAULT_SLOT_MS      2000
#define ALYS_CHAINGEN_DEFAULT_GENESIS_TIME 1600000000ULL
#define ALYS_CHAINGEN_DEFAULT_CHAIN_ID     "alys-chaingen"

/* ---------------------------------------------------------------- generator */

typedef struct {
    uint64_t blocks;        /* N */
    uint32_t txs_per_block; /* K */
    uint32_t accounts;      /* A */
    uint32_t authorities;   /* F */
    char seed[ALYS_CHAINGEN_MAX_SEED + 1];
    uint64_t slot_ms;
    uint64_t genesis_time; /* unix seconds */
    char chain_id[64];
    alys_block_error_t fault; /* ALYS_BLOCK_OK = none */
    uint64_t fault_height;    /* position 1..N of the faulty block */
    uint32_t threads;         /* 0 = online CPUs; never changes the output */
    bool no_verify;           /* skip the alys_execute_block confirmation
                                   * (faster, same bytes) */
} alys_chaingen_config_t;

/* Defaults: slot_ms 2000, genesis_time 1600000000, chain_id "alys-chaingen",
 * no fault, threads 0; everything else 0 / "" (must be set). */
void alys_chaingen_config_default(alys_chaingen_config_t *c);
/* Every bound and combination; the message names the option, e.g.
 * "--txs-per-block 5000 exceeds the limit 4096". Returns 0 or -1. */
int alys_chaingen_config_check(const alys_chaingen_config_t *c, char *err, size_t errlen);

typedef struct alys_chaingen alys_chaingen_t;

/* Checks the config, derives keys, builds the genesis. NULL + err on error. */
alys_chaingen_t *alys_chaingen_new(const alys_chaingen_config_t *c, char *err, size_t errlen);
void alys_chaingen_destroy(alys_chaingen_t **self_p);

/* Owned by the generator, valid until destroy. */
const alys_genesis_t *alys_chaingen_genesis(const alys_chaingen_t *self);
const alys_forge_keys_t *alys_chaingen_keys(const alys_chaingen_t *self);

/* The next block, in order. Returns 1 with *bytes and *len (the export record:
 * for encoding faults the invalid bytes) and, if block is not NULL, *block
 * (the block value, before any encoding fault), all owned by the generator
 * and valid until the next call; 0 after the last block; -1 with err. */
int alys_chaingen_next(alys_chaingen_t *self, const uint8_t **bytes, size_t *len,
                       const alys_block_t **block, char *err, size_t errlen);

typedef struct {
    uint64_t blocks;
    uint64_t txs;
    uint64_t head_height;   /* as written in the last header */
    alys_hash_t head_hash;  /* alys_header_hash of the last header */
    alys_hash_t state_root; /* the last header's state_root */
    alys_hash_t genesis_hash;
} alys_chaingen_result_t;

/* Summary so far (complete once next() has returned 0). */
void alys_chaingen_result(const alys_chaingen_t *self, alys_chaingen_result_t *out);

/* The whole tool: create out_dir if missing, write out_dir/genesis
 * (alys_genesis_save), out_dir/keys (authority secret keys, hex, one per
 * line, mode 0600) and out_dir/chain.export (fsync'ed). Returns 0 or -1. */
int alys_chaingen_run(const alys_chaingen_config_t *c, const char *out_dir,
                      alys_chaingen_result_t *res, char *err, size_t errlen);

#endif
