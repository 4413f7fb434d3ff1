/*  fixture.h: what the store's unit tests share (test_storage.c,
 *  test_reorg.c): a temporary data directory with a testchain genesis, the
 *  store opened on it, batches of the chain's blocks, the checks every test
 *  makes of a head, and requests served through the mailbox protocol.
 *
 *  Each Criterion test runs in its own process; fx_remove_test_dir (a
 *  suite's .fini) removes the running test's directory even when an
 *  assertion ended it early.
 */
#ifndef STORAGE_TEST_FIXTURE_H
#define STORAGE_TEST_FIXTURE_H

#include "service.h"
#include "storage.h"
#include "testchain.h"

typedef struct {
    char dir[64];
    char genesis[128];
    alys_config_t cfg;
    tchain_t *chain; /* seed 42, chain id "storage-test" */
} fx_t;

void fx_remove_test_dir(void);
void fx_init(fx_t *f, uint32_t accounts);
void fx_fini(fx_t *f);
storage_t *fx_open(fx_t *f);

/* Execute chain blocks [from, to] (heights) as one batch (asserts OK). */
void run_batch(storage_t *s, const tchain_t *c, uint64_t from, uint64_t to, storage_batch_result_t *r);
/* The head is c's block at height (hash, state root, genesis). */
void expect_head(storage_t *s, const tchain_t *c, uint64_t height);
/* storage_check(full) passes. */
void expect_consistent(storage_t *s);
/* Every account of c's state equals the store's, and the store has no others. */
void expect_state_equals_chain(storage_t *s, const tchain_t *c);

/* Serve m as a request with corr_id 7. */
void serve(storage_t *s, Alys__Storage__StorageMsg *m, storage_reply_t *rep);
void expect_error(storage_reply_t *rep, uint32_t code, const char *text);

#endif
