/*  chain.h: the Alys-like chain as C values: genesis, header, tx, block,
 *  hashing, signing, stateless validation and sequential execution.
 *
 *  Hashes: SHA-256 (OpenSSL libcrypto) over a fixed little-endian byte layout
 *  per structure (documented in chain.c), never over protobuf bytes, which are
 *  not canonical. Signatures: BIP340 Schnorr (libsecp256k1 schnorrsig module)
 *  over the 32-byte hash, keys are 32-byte x-only public keys.
 *
 *  Ownership: alys_block_t owns its txs array; free with alys_block_clear().
 *  alys_genesis_t owns its authorities and balances; alys_genesis_clear().
 */
#ifndef ALYS_CHAIN_H
#define ALYS_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALYS_HASH_LEN             32
#define ALYS_PUBKEY_LEN           32
#define ALYS_SECKEY_LEN           32
#define ALYS_SIG_LEN              64
/* Bounds on everything that arrives from outside; checked before allocating. */
#define ALYS_MAX_TXS_PER_BLOCK    4096
#define ALYS_MAX_BLOCK_BYTES      (1024 * 1024)
#define ALYS_MAX_AUTHORITIES      64
#define ALYS_MAX_GENESIS_ACCOUNTS 100000
#define ALYS_MAX_GENESIS_BYTES    (16 * 1024 * 1024)

typedef uint8_t alys_hash_t[ALYS_HASH_LEN];

/* Why a block was refused. Names (alys_block_error_name) are stable strings
 * used in logs, metrics labels and results. */
typedef enum {
    ALYS_BLOCK_OK = 0,
    ALYS_BLOCK_MALFORMED, /* does not decode, wrong field sizes */
    ALYS_BLOCK_OVERSIZE,  /* too many txs or bytes */
    ALYS_BLOCK_BAD_PROPOSER_SIG,
    ALYS_BLOCK_WRONG_PROPOSER, /* proposer != slot mod n */
    ALYS_BLOCK_BAD_TX_SIG,     /* bad_tx_index says which */
    ALYS_BLOCK_TX_ROOT_MISMATCH,
    ALYS_BLOCK_PARENT_MISMATCH,
    ALYS_BLOCK_HEIGHT_GAP,
    ALYS_BLOCK_NON_INCREASING_SLOT,
    ALYS_BLOCK_FUTURE_SLOT,   /* slot after the wall clock's slot */
    ALYS_BLOCK_BAD_TIMESTAMP, /* != genesis_time + slot * duration */
    ALYS_BLOCK_BAD_NONCE,
    ALYS_BLOCK_INSUFFICIENT_BALANCE,
    ALYS_BLOCK_STATE_ROOT_MISMATCH,
    /* Not the block's fault (state read I/O error, out of memory): retry,
     * never ban a peer or record the block as invalid for this. */
    ALYS_BLOCK_INTERNAL_ERROR,
    ALYS_BLOCK_ERROR_COUNT
} alys_block_error_t;

const char *alys_block_error_name(alys_block_error_t e); /* "bad_tx_signature", ... */

/* Whose fault a refused block is, from its reason (a name above, or
 * "header_mismatch"): a content reason is about the block's own bytes, so the
 * peer that served it; a linkage reason (parent_mismatch, height_gap,
 * non_increasing_slot) is the serving peer's inside a range it served, but at
 * the range's first block it is the previous range's (or ours). Anything else
 * (storage, busy, restarts, an empty reason) is nobody's. PeerManager and
 * SyncActor both judge with these, so they never disagree. */
bool alys_refusal_is_content(const char *reason);
bool alys_refusal_is_peer_fault(const char *reason, uint64_t failed_height, uint64_t range_start);

typedef struct {
    alys_block_error_t code;
    int32_t tx_index; /* the offending tx, or -1 */
    char detail[160]; /* human-readable, names the rule */
} alys_verdict_t;

typedef struct {
    uint8_t pubkey[ALYS_PUBKEY_LEN];
    uint64_t balance;
} alys_genesis_account_t;

typedef struct {
    char chain_id[64];
    uint8_t (*authorities)[ALYS_PUBKEY_LEN];
    uint32_t authority_count;
    uint64_t slot_duration_ms;
    uint64_t genesis_time; /* unix seconds */
    alys_genesis_account_t *balances;
    uint32_t balance_count;
    alys_hash_t hash;       /* filled by alys_genesis_finalize() */
    alys_hash_t state_root; /* state root of the genesis accounts */
} alys_genesis_t;

typedef struct {
    uint64_t height;
    alys_hash_t parent_hash;
    uint64_t slot;
    uint64_t timestamp;
    uint32_t proposer;
    alys_hash_t tx_root;
    alys_hash_t state_root;
    uint8_t signature[ALYS_SIG_LEN];
} alys_header_t;

typedef struct {
    uint8_t from[ALYS_PUBKEY_LEN];
    uint8_t to[ALYS_PUBKEY_LEN];
    uint64_t amount;
    uint64_t fee;
    uint64_t nonce;
    uint8_t signature[ALYS_SIG_LEN];
} alys_tx_t;

typedef struct {
    alys_header_t header;
    alys_tx_t *txs; /* owned */
    uint32_t tx_count;
} alys_block_t;

/* ---- hashing and signing ---- */
void alys_sha256(const void *data, size_t len, alys_hash_t out);
/* SipHash-2-4 of in under the key (k0, k1): keyed hashing of strangers'
 * input for tables (the address book's buckets, the key hash). */
uint64_t alys_siphash24(uint64_t k0, uint64_t k1, const void *in, size_t len);
void alys_header_hash(const alys_header_t *h, alys_hash_t out);       /* excludes signature */
void alys_tx_hash(const alys_tx_t *tx, alys_hash_t out);              /* excludes signature */
void alys_tx_root(const alys_tx_t *txs, uint32_t n, alys_hash_t out); /* Merkle, zeros if n==0 */
/* Derive a keypair from 32 secret bytes; returns -1 if the secret is invalid. */
int alys_keypair_pubkey(const uint8_t seckey[ALYS_SECKEY_LEN], uint8_t pubkey[ALYS_PUBKEY_LEN]);
int alys_sign(const uint8_t seckey[ALYS_SECKEY_LEN], const alys_hash_t msg, uint8_t sig[ALYS_SIG_LEN]);
/* As alys_sign with BIP340 auxiliary randomness aux32 (32 bytes, or NULL as in
 * alys_sign: deterministic). For the BIP340 test vectors and for callers who
 * want side-channel hardening more than reproducible bytes. */
int alys_sign_aux(const uint8_t seckey[ALYS_SECKEY_LEN], const alys_hash_t msg,
                  const uint8_t *aux32, uint8_t sig[ALYS_SIG_LEN]);
bool alys_verify(const uint8_t pubkey[ALYS_PUBKEY_LEN], const alys_hash_t msg,
                 const uint8_t sig[ALYS_SIG_LEN]);
void alys_hex(const uint8_t *bytes, size_t n, char *out); /* out: 2n+1 chars */
int alys_unhex(const char *hex, uint8_t *out, size_t n);  /* exactly n bytes, -1 on error */

/* ---- codec: protobuf (proto/chain.proto) <-> C, bounded ---- */
/* Decode one Block. Returns 0, or -1 with v->code MALFORMED/OVERSIZE and detail. */
int alys_block_decode(const uint8_t *buf, size_t len, alys_block_t *out, alys_verdict_t *v);
/* Encode; *out is malloc'ed, caller frees. Returns 0 or -1. */
int alys_block_encode(const alys_block_t *b, uint8_t **out, size_t *len);
int alys_header_decode(const uint8_t *buf, size_t len, alys_header_t *out, alys_verdict_t *v);
int alys_header_encode(const alys_header_t *h, uint8_t **out, size_t *len);
void alys_block_clear(alys_block_t *b);

int alys_genesis_decode(const uint8_t *buf, size_t len, alys_genesis_t *out, char *err, size_t errlen);
int alys_genesis_encode(const alys_genesis_t *g, uint8_t **out, size_t *len);
int alys_genesis_load(const char *path, alys_genesis_t *out, char *err, size_t errlen);
int alys_genesis_save(const char *path, const alys_genesis_t *g);
/* As alys_genesis_decode / alys_genesis_load, but the state root is not
 * computed (state_root is left all zeros): for processes that never execute
 * blocks (validators, the BlockProcessor) and need the parameters and the
 * hash only. The root costs one 2 KiB lattice vector per genesis account on
 * every start, before Ready (a 100,000-account genesis: ~0.1 s). */
int alys_genesis_decode_light(const uint8_t *buf, size_t len, alys_genesis_t *out, char *err,
                              size_t errlen);
int alys_genesis_load_light(const char *path, alys_genesis_t *out, char *err, size_t errlen);
/* Compute hash and state_root. Call after filling a genesis by hand. */
void alys_genesis_finalize(alys_genesis_t *g);
void alys_genesis_clear(alys_genesis_t *g);

/* ---- stateless validation (safe to run in parallel, no state) ---- */
/* Proposer for the slot, proposer signature, tx root, every tx signature, sizes. */
bool alys_block_check_stateless(const alys_genesis_t *g, const alys_block_t *b, alys_verdict_t *v);
/* The tx root rule alone: header.tx_root is the Merkle root (alys_tx_root)
 * of the block's txs. True, or false with v = TX_ROOT_MISMATCH. The one
 * implementation: alys_block_check_stateless runs it, and so may a store
 * that receives blocks it did not check statelessly itself. */
bool alys_block_check_tx_root(const alys_block_t *b, alys_verdict_t *v);
/* Decode one encoded alys.chain.Block (bounded, alys_block_decode) and run
 * alys_block_check_stateless: the per-block work of a validator worker, and
 * of the BlockProcessor when it checks in process (sequential mode, no
 * worker connected), so both check exactly the same things. True if valid,
 * else false with v filled (MALFORMED/OVERSIZE when it does not decode). */
bool alys_block_decode_check(const alys_genesis_t *g, const uint8_t *buf, size_t len,
                             alys_verdict_t *v);
/* Header-only checks: proposer for the slot, proposer signature, timestamp. */
bool alys_header_check(const alys_genesis_t *g, const alys_header_t *h, alys_verdict_t *v);
/* Linkage of child to parent: height = parent + 1, parent hash, slot strictly
 * increasing. now_slot: the wall clock's slot (alys_genesis_slot_at); child
 * slots beyond it are FUTURE_SLOT. parent_hash is the parent's header hash. */
bool alys_header_check_link(const alys_header_t *parent, const alys_hash_t parent_hash,
                            const alys_header_t *child, uint64_t now_slot, alys_verdict_t *v);
/* The slot the wall clock is in at unix time now_ms (0 before genesis). */
uint64_t alys_genesis_slot_at(const alys_genesis_t *g, uint64_t now_ms);
/* The virtual parent of block 1: height 0, slot 0, timestamp genesis_time,
 * state_root = g->state_root, zero parent/tx root and signature. Block 1 links
 * to it with parent_hash = g->hash (pass g->hash as parent_hash to
 * alys_header_check_link; it is NOT alys_header_hash of this header). So
 * block 1 has height 1 and slot >= 1. Call after alys_genesis_finalize. */
void alys_genesis_parent(const alys_genesis_t *g, alys_header_t *out);

#endif
