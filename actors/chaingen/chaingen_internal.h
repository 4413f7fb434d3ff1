/*  chaingen_internal.h: what chaingen.c, fault.c and support.c share.
 *  Not part of the contract (chaingen.h is).
 */
#ifndef ALYS_CHAINGEN_INTERNAL_H
#define ALYS_CHAINGEN_INTERNAL_H

#include <secp256k1.h>
#include <secp256k1_extrakeys.h>

#include "chaingen.h"
#include "util.h"

/* snprintf into err (NULL-safe). */
/* An error message into err; chaingen returns its status apart. */
#define cg_err(err, errlen, ...) ((void) alys_set_err((err), (errlen), -1, __VA_ARGS__))

uint32_t cg_online_cpus(void);

/* Run fn(ctx, i) for i in [0, n) on up to `threads` threads (the caller is
 * one of them) and return when all are done. Items must be independent. */
typedef void (*cg_par_fn)(void *ctx, size_t i);
void cg_parallel_for(size_t n, uint32_t threads, cg_par_fn fn, void *ctx);

/* The process-wide signing context (created once, then only read); NULL
 * if libsecp256k1 could not create it. */
const secp256k1_context *cg_secp(void);

/* alys_chaingen_keys_derive on `threads` threads; kp (may be NULL) gets
 * the F + A key pairs, authorities first, for fast signing. */
int cg_keys_derive(const char *seed, uint32_t authorities, uint32_t accounts,
                   uint32_t threads, alys_chaingen_keys_t *out, secp256k1_keypair *kp);

/* Faults (fault.c). */
bool cg_is_fault_kind(alys_block_error_t k);
bool cg_fault_needs_tx(alys_block_error_t k);
/* Set the slot and the proposer and timestamp that follow from it. */
void cg_set_slot(alys_header_t *h, const alys_genesis_t *g, uint64_t slot);
/* Apply kind's change alone, without re-signing or re-hashing (the
 * generator signs later anyway). Preconditions as alys_chaingen_corrupt_block.
 * Returns the altered tx index or -1. */
int32_t cg_fault_mutate(alys_block_t *b, alys_block_error_t kind, const alys_chaingen_fault_ctx_t *ctx);

#endif
