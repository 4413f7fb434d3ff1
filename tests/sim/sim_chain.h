/*  sim_chain.h: chains for the simulator, made by the real generator
 *  (actors/chaingen) and cached inside one process.
 *
 *  A chain is keyed by (variant, slot_ms, txs per block, fault, fault
 *  height); a sweep draws few variants, so each is generated once and then
 *  every case reuses its prefix. Chains grow on demand: sim_chain_need()
 *  asks the generator for more blocks only when a case needs a higher
 *  height than anyone before. Signatures are real (BIP340 by the chain's
 *  authorities and accounts).
 *
 *  Ownership: the cache owns every chain; pointers stay valid until
 *  sim_chain_cache_destroy.
 */
#ifndef ALYS_SIM_CHAIN_H
#define ALYS_SIM_CHAIN_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "chain/chain.h"
#include "chaingen.h"

typedef struct {
    uint32_t variant;
    uint64_t slot_ms;
    uint32_t txs;
    alys_block_error_t fault; /* ALYS_BLOCK_OK = honest */
    uint64_t fault_height;
} sim_chain_key_t;

typedef struct {
    sim_chain_key_t key;
    alys_chaingen_t *gen;
    uint64_t max_blocks; /* what the generator was configured for */
    uint64_t n;          /* blocks generated: heights 1..n */
    uint64_t cap;
    ProtobufCBinaryData *block;  /* [h - 1]: encoded block (the export record) */
    ProtobufCBinaryData *header; /* [h - 1]: encoded header */
    alys_hash_t *hash;           /* [h - 1]: header hash */
    alys_hash_t *state_root;     /* [h - 1] */
    uint64_t *slot;              /* [h - 1] */
} sim_chain_t;

typedef struct sim_chain_cache sim_chain_cache_t;

sim_chain_cache_t *sim_chain_cache_new(void);
void sim_chain_cache_destroy(sim_chain_cache_t **self_p);

/* The chain for key with at least `height` blocks. NULL with err on failure
 * (height beyond what the key allows, generator error). */
sim_chain_t *sim_chain_need(sim_chain_cache_t *self, const sim_chain_key_t *key, uint64_t height,
                            char *err, size_t errlen);
const alys_genesis_t *sim_chain_genesis(const sim_chain_t *c);
const alys_forge_keys_t *sim_chain_keys(const sim_chain_t *c);

/* Memo of alys_block_decode_check verdicts by the SHA-256 of the block bytes:
 * the check is a pure function of (genesis, bytes), so a block seen by an
 * earlier case of the same process is not verified again. Returns true if
 * valid. */
bool sim_chain_check_block(sim_chain_cache_t *self, const alys_genesis_t *g, const uint8_t *buf,
                           size_t len, alys_verdict_t *v);
/* Same memo for a header's stateless check (alys_header_check). */
bool sim_chain_check_header(sim_chain_cache_t *self, const alys_genesis_t *g, const uint8_t *buf,
                            size_t len, const alys_header_t *h, alys_verdict_t *v);
void sim_chain_memo_off(sim_chain_cache_t *self); /* --no-memo: verify every time */

#endif
