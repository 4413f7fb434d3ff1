/*  check.h: the per-block work of a validator, shared with the
 *  BlockProcessor's in-process path (sequential mode and the no-worker
 *  fallback), so both check exactly the same things.
 */
#ifndef ALYS_VALIDATOR_CHECK_H
#define ALYS_VALIDATOR_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"

/* Decode one encoded alys.chain.Block (bounded) and run the stateless checks
 * (sizes, proposer for the slot, timestamp, tx root, proposer and every tx
 * signature). Returns true if valid, else false with v filled. */
bool validator_check_block(const alys_genesis_t *g, const uint8_t *buf, size_t len,
                           alys_verdict_t *v);

#endif
