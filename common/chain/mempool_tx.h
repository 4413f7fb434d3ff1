/*  mempool_tx.h: one transaction's own wire form, for the mempool's paths
 *  (SubmitTx over the bus and the wire, tx gossip, GetMempoolTxs). A tx
 *  travels as an encoded alys.chain.Tx (proto/chain.proto), the same bytes a
 *  block carries for it; its id (ALYS_TX_ID) is SHA-256 of those bytes, so
 *  two copies of one transfer with different signatures (BIP340 signing is
 *  randomised) are two ids: gossip de-duplicates what travels, the pool
 *  (sender, nonce) decides what counts.
 *
 *  Pure; no allocation (the decode bounds the input before unpacking, with
 *  an allocator on a stack arena).
 */
#ifndef ALYS_MEMPOOL_TX_H
#define ALYS_MEMPOOL_TX_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"

/* An encoded Tx is 134..167 bytes (fixed-size keys and signature, three
 * varints, zeros omitted); anything longer than this is not a tx. */
#define ALYS_TX_MAX_BYTES 200

/* Encode tx into buf (at least ALYS_TX_MAX_BYTES). Returns the length. */
size_t alys_tx_encode(const alys_tx_t *tx, uint8_t buf[ALYS_TX_MAX_BYTES]);
/* Its encoded length, without encoding. */
size_t alys_tx_encoded_size(const alys_tx_t *tx);
/* Decode buf[0..len) into *out: 0, or -1 with a reason in why (a static
 * string: "oversize", "undecodable", "bad_field"). */
int alys_tx_decode(const uint8_t *buf, size_t len, alys_tx_t *out, const char **why);
/* SHA-256 of the encoded bytes (the gossip id). */
void alys_tx_id(const alys_tx_t *tx, alys_hash_t out);

#endif
