/*  mp_fixture.h: a generated chain for the mempool and producer tests.
 *
 *  Keys from common/forge (seed "mempool-test"): MPF_AUTHS authorities and
 *  n funded accounts; the genesis built from them; the committed state in
 *  an alys_memstate with its view (overlay empty between blocks).
 *  Plain asserts: a broken fixture stops the run loudly.
 */
#ifndef MP_FIXTURE_H
#define MP_FIXTURE_H

#include "chain/chain.h"
#include "chain/memstate.h"
#include "chain/state.h"
#include "forge/keys.h"

#define MPF_AUTHS        3
#define MPF_SLOT_MS      2000
#define MPF_GENESIS_TIME 1700000000ULL

typedef struct {
    alys_genesis_t g;
    alys_forge_keys_t keys;
    alys_memstate_t *ms;
    alys_overlay_t *ov;
    alys_state_view_t view;
} mpf_t;

void mpf_init(mpf_t *f, uint32_t accounts, uint64_t balance);
void mpf_fini(mpf_t *f);
/* A signed transfer from account `from` to account `to`. */
alys_tx_t mpf_tx(const mpf_t *f, uint32_t from, uint32_t to, uint64_t amount, uint64_t fee,
                 uint64_t nonce);
/* Set an account's committed value (and refresh the view's lattice). */
void mpf_set(mpf_t *f, uint32_t account, uint64_t balance, uint64_t nonce);

#endif
