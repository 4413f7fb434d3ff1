/*  memstate.h: an in-memory committed account store (pubkey -> account).
 *
 *  The committed state behind an alys_state_view_t where there is no RocksDB:
 *  alys-chaingen, tests, benchmarks. An open-addressing hash map keyed by the
 *  32-byte public key (keys are hash outputs, so their first bytes are already
 *  uniform and serve as the hash). A zero account (balance 0, nonce 0) is
 *  absent, as in state.h.
 *
 *  Typical use, one block at a time:
 *      alys_memstate_t *ms = alys_memstate_new();
 *      alys_memstate_load_genesis(ms, &g);
 *      alys_overlay_t *ov = alys_overlay_new();
 *      alys_state_view_t view;
 *      alys_memstate_view_init(ms, &g, ov, &view);
 *      for each block b:
 *          alys_execute_block(&view, &b, &v);   // on success:
 *          alys_memstate_commit_overlay(ms, ov); // also resets ov
 *
 *  The unkeyed hash is for trusted key sets (generated, or test data): keys
 *  chosen by a remote party could be picked to collide. StorageActor keeps
 *  such state in RocksDB, not here.
 *
 *  Ownership: the store owns its entries; destroy with alys_memstate_destroy,
 *  which sets the pointer to NULL. Not thread-safe.
 */
#ifndef ALYS_MEMSTATE_H
#define ALYS_MEMSTATE_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "state.h"

typedef struct alys_memstate alys_memstate_t;

/* NULL on out of memory. */
alys_memstate_t *alys_memstate_new(void);
void alys_memstate_destroy(alys_memstate_t **self_p);

/* Set pubkey's account; a zero account removes it. Returns 0, -1 on ENOMEM. */
int alys_memstate_put(alys_memstate_t *self, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                      const alys_account_t *a);
/* 1 found, 0 absent (*out zeroed). */
int alys_memstate_get(const alys_memstate_t *self, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                      alys_account_t *out);
/* Number of non-zero accounts. */
size_t alys_memstate_size(const alys_memstate_t *self);

/* alys_state_read_fn-compatible reader; ctx is the alys_memstate_t *.
 * Never fails (never returns -1). */
int alys_memstate_read(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out);

/* Put every genesis balance (nonce 0). Duplicated pubkeys add up.
 * Returns 0 or -1 (out of memory, or a balance sum overflowing). */
int alys_memstate_load_genesis(alys_memstate_t *self, const alys_genesis_t *g);

/* Write every account of the overlay into the store, then reset the overlay.
 * Returns 0 or -1 (out of memory; the store may then be partly updated). */
int alys_memstate_commit_overlay(alys_memstate_t *self, alys_overlay_t *ov);

/* Visit every account (in no particular order); stops early and returns the
 * callback's value if it returns non-zero. */
typedef int (*alys_memstate_visit_fn)(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                                      const alys_account_t *a);
int alys_memstate_foreach(const alys_memstate_t *self, alys_memstate_visit_fn fn, void *ctx);

/* Full recomputation of the lattice over all accounts: O(accounts). Used to
 * start a view and by tests comparing against the incremental root. */
void alys_memstate_lattice(const alys_memstate_t *self, alys_lattice_t *out);

/* Fill view: read callback to self, the given overlay (borrowed), and the
 * lattice of the store's current content. No change callback. */
void alys_memstate_view_init(alys_memstate_t *self, const alys_genesis_t *g, alys_overlay_t *ov,
                             alys_state_view_t *view);

#endif
