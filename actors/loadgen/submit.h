/*  submit.h: alys-loadgen's wire client: it submits txs to a node the way
 *  a peer does (proto/wire.proto): a ZeroMQ DEALER to the node's [network]
 *  listen endpoint, Status first (the chain's genesis hash), then SubmitTx
 *  messages of up to `batch` txs, each answered with TxResults (one result
 *  per tx: the mempool's reason names) or WireError RATE_LIMITED (over the
 *  node's per-peer tx budget: the whole message is dropped).
 *
 *  Answers are tallied as they come (submit_poll) and at the end
 *  (submit_drain); nothing blocks the sender except the handshake.
 *
 *  Ownership: submit_new / submit_destroy(&self).
 */
#ifndef ALYS_LOADGEN_SUBMIT_H
#define ALYS_LOADGEN_SUBMIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "chain/chain.h"

#define SUBMIT_MAX_BATCH 256 /* ALYS_WIRE_MAX_TXS */
#define SUBMIT_REASONS   24

typedef struct {
    uint64_t messages, txs; /* sent */
    uint64_t answered;      /* TxResults received */
    uint64_t rate_limited;  /* messages answered RATE_LIMITED */
    uint64_t other_errors;  /* other WireErrors */
    uint64_t accepted;      /* txs answered added / added_evicted */
    char reason[SUBMIT_REASONS][32];
    uint64_t count[SUBMIT_REASONS]; /* txs per refusal reason */
} submit_tally_t;

typedef struct submit submit_t;

/* Connect and handshake within timeout_ms; NULL with err on failure. */
submit_t *submit_new(const char *endpoint, const alys_hash_t genesis_hash, int timeout_ms,
                     char *err, size_t errlen);
void submit_destroy(submit_t **self_p);

/* Send txs[0..n) (n <= SUBMIT_MAX_BATCH) as one SubmitTx. 0 or -1. */
int submit_send(submit_t *self, const alys_tx_t *txs, size_t n);
/* Read the answers that arrived (waiting up to wait_ms for the first). */
void submit_poll(submit_t *self, int wait_ms);
/* Wait up to timeout_ms for every sent message to be answered. */
void submit_drain(submit_t *self, int timeout_ms);
const submit_tally_t *submit_tally(const submit_t *self);

/* Count one tx result by name (pure; exposed for tests). */
void submit_tally_result(submit_tally_t *t, const char *result);
/* "accepted A, refused: r=n ..., rate-limited messages R" on f. */
void submit_tally_print(const submit_tally_t *t, FILE *f);

#endif
