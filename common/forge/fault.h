/*  forge/fault.h: making one valid block invalid in exactly one way. Used
 *  by alys-chaingen (a chain with a faulty block at a chosen height), by
 *  alys-faultproxy (a peer that corrupts the blocks it serves) and by tests.
 *
 *  A fault kind is named by the alys_block_error_t the node must report
 *  (its alys_block_error_name): bad_proposer_signature, wrong_proposer,
 *  bad_tx_signature, tx_root_mismatch, parent_mismatch, height_gap,
 *  non_increasing_slot, future_slot, bad_timestamp, bad_nonce,
 *  insufficient_balance, state_root_mismatch, malformed, oversize. The
 *  block breaks exactly that one rule: everything the change touches is
 *  re-signed and re-hashed, so no other check fails first. What each does
 *  (K = the block's tx count, F = authorities, m = K/2):
 *    bad_proposer_signature  flip one bit of the header signature
 *    wrong_proposer          proposer = (slot + 1) % F, signed by that
 *                            authority (needs F >= 2)
 *    bad_tx_signature        flip one bit of the signature of tx m
 *    tx_root_mismatch        flip one bit of tx_root, re-sign the header
 *    parent_mismatch         flip one bit of parent_hash, re-sign
 *    height_gap              height + 1 (parent height + 2), re-sign
 *    non_increasing_slot     slot = parent slot (proposer, timestamp follow)
 *    future_slot             slot + 1000 years of slots
 *    bad_timestamp           timestamp + 1
 *    bad_nonce               tx m's nonce + 1, re-signed, tx root redone
 *    insufficient_balance    tx m's amount = 2^62 (over the total supply)
 *    state_root_mismatch     flip one bit of state_root, re-sign
 *    malformed               record bytes = a valid encoding + 2 bytes that
 *                            open a field running past the end
 *    oversize                record bytes = a valid encoding + copies of a
 *                            tx up to ALYS_MAX_TXS_PER_BLOCK + 1 txs (the
 *                            record stays under ALYS_MAX_BLOCK_BYTES so an
 *                            export stream remains readable; the block
 *                            decoder refuses it)
 *  (bad_tx_signature, bad_nonce and insufficient_balance need K >= 1.)
 *
 *  Ownership: functions taking err/errlen copy a one-line message there;
 *  bytes from alys_forge_corrupt_encoding are malloc'ed, the caller frees.
 */
#ifndef ALYS_FORGE_FAULT_H
#define ALYS_FORGE_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "forge/keys.h"

/* Parse a fault name ("bad_nonce", ...) into its alys_block_error_t.
 * Returns 0, or -1 with the list of valid names in err. */
int alys_forge_fault_parse(const char *name, alys_block_error_t *kind, char *err, size_t errlen);
/* Every error kind but ok and internal_error is a fault kind. */
bool alys_forge_fault_is_kind(alys_block_error_t kind);
/* The kinds that alter a tx (need K >= 1). */
bool alys_forge_fault_needs_tx(alys_block_error_t kind);
/* The kinds that change the encoded bytes, not the block value (malformed,
 * oversize): use alys_forge_corrupt_encoding for those. */
bool alys_forge_fault_is_encoding(alys_block_error_t kind);

typedef struct {
    const alys_genesis_t *genesis;
    const alys_forge_keys_t *keys; /* to re-sign what the fault changes */
    const alys_header_t *parent;   /* needed by non_increasing_slot */
} alys_forge_fault_ctx_t;

/* Make a valid, signed block b invalid in exactly the way `kind` names
 * (table above), re-signing and re-hashing whatever else that change
 * touches. Limits: the header's state root is not recomputed (that needs
 * the state): after wrong_proposer, non_increasing_slot or future_slot the
 * fees go to another authority, so the block would also fail execution; the
 * stateless or link check fails first in any pipeline. Returns 0, or -1 with
 * err (b unchanged) when the kind does not apply (an encoding kind, K = 0
 * for a tx kind, F < 2 for wrong_proposer, no parent, an unknown key).
 * *tx_index (may be NULL) gets the altered tx or -1. */
int alys_forge_corrupt_block(alys_block_t *b, alys_block_error_t kind,
                             const alys_forge_fault_ctx_t *ctx, int32_t *tx_index, char *err,
                             size_t errlen);

/* Encode b as the invalid record bytes of an encoding kind (malformed,
 * oversize). Returns 0 with *out malloc'ed, or -1 with err. */
int alys_forge_corrupt_encoding(const alys_block_t *b, alys_block_error_t kind, uint8_t **out,
                                size_t *len, char *err, size_t errlen);

/* The building blocks, for a generator that signs and hashes later anyway
 * (alys-chaingen applies the change where it belongs in its pipeline). */

/* Set the slot and the proposer and timestamp that follow from it, so that
 * a slot change breaks the slot rule only. */
void alys_forge_set_slot(alys_header_t *h, const alys_genesis_t *g, uint64_t slot);
/* Apply kind's change alone, without re-signing or re-hashing.
 * Preconditions as alys_forge_corrupt_block (unchecked). Returns the
 * altered tx index or -1. */
int32_t alys_forge_fault_mutate(alys_block_t *b, alys_block_error_t kind,
                                const alys_forge_fault_ctx_t *ctx);

#endif
