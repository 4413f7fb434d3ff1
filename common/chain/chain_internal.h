/*  chain_internal.h: helpers shared by the files of common/chain only.
 *  Not part of the contract other areas code against.
 */
#ifndef ALYS_CHAIN_INTERNAL_H
#define ALYS_CHAIN_INTERNAL_H

#include <stdarg.h>
#include "chain.h"

/* Incremental SHA-256 for inputs too large to lay out in one buffer. */
typedef struct {
    void *md_ctx;
} achain_sha256_t;
void achain_sha256_init(achain_sha256_t *st);
void achain_sha256_update(achain_sha256_t *st, const void *data, size_t len);
void achain_sha256_final(achain_sha256_t *st, alys_hash_t out);

/* SHAKE256(data) truncated/extended to outlen bytes. */
void achain_shake256(const void *data, size_t len, uint8_t *out, size_t outlen);
void achain_expand(const void *data, size_t len, uint8_t *out, size_t outlen);

/* Keyed 64-bit hash of a public key (SipHash-2-4 with a per-process random
 * key): hash-map index that an adversary choosing recipient keys cannot
 * steer into collisions. */
uint64_t achain_key_hash(const uint8_t key[ALYS_PUBKEY_LEN]);

/* The genesis hash alone (alys_genesis_finalize without the state root). */
void achain_genesis_hash(alys_genesis_t *g);

/* Fill v (if not NULL) and return false, so callers can `return fail(...)`. */
bool achain_fail(alys_verdict_t *v, alys_block_error_t code, int32_t tx_index, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void achain_ok(alys_verdict_t *v);

static inline void achain_put_le64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t) (x >> (8 * i));
}

static inline void achain_put_le32(uint8_t *p, uint32_t x)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t) (x >> (8 * i));
}

#endif
