/*  test_pool_txs.c: the producer's mempool reply (pool_txs.h): taken only
 *  when whole and consistent; a block built from a reply on its own head
 *  includes the txs and executes on an independent replica; a reply about
 *  another head adds nothing; an account the reply lacks is never guessed. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "aura.h"
#include "builder.h"
#include "chain/mempool_tx.h"
#include "head_state.h"
#include "mp_fixture.h"
#include "pool_txs.h"

#define NTX 3

static mpf_t f;
static uint8_t lattice[ALYS_LATTICE_BYTES];
/* A MempoolTxs as StorageActor builds it, with its storage. */
static struct {
    Alys__Mempool__MempoolTxs m;
    uint8_t tx_bytes[NTX][ALYS_TX_MAX_BYTES];
    ProtobufCBinaryData items[NTX];
    uint8_t keys[2 * NTX + 1][ALYS_PUBKEY_LEN];
    Alys__Storage__AccountState accts[2 * NTX + 1];
    Alys__Storage__AccountState *acct_ptrs[2 * NTX + 1];
    alys_hash_t head_hash;
} r;
static alys_tx_t txs[NTX];
static const uint8_t *proposer; /* slot 1's author */

static void setup(void)
{
    mpf_init(&f, 6, 1000);
    alys_lattice_to_bytes(&f.view.lattice, lattice);
    proposer = f.g.authorities[aura_author(&f.g, 1)];
}

static void teardown(void)
{
    mpf_fini(&f);
}
TestSuite(pool_txs, .init = setup, .fini = teardown);

static int key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, ALYS_PUBKEY_LEN);
}

/* The reply for txs[0..n) on the genesis head: accounts sorted, each once,
 * read from the fixture's state as storage reads its own. */
static const Alys__Mempool__MempoolTxs *reply(size_t n)
{
    memset(&r, 0, sizeof r);
    r.m = (Alys__Mempool__MempoolTxs) ALYS__MEMPOOL__MEMPOOL_TXS__INIT;
    size_t k = 0;
    memcpy(r.keys[k++], proposer, ALYS_PUBKEY_LEN);
    for (size_t i = 0; i < n; i++) {
        r.items[i] = (ProtobufCBinaryData){alys_tx_encode(&txs[i], r.tx_bytes[i]), r.tx_bytes[i]};
        memcpy(r.keys[k++], txs[i].from, ALYS_PUBKEY_LEN);
        memcpy(r.keys[k++], txs[i].to, ALYS_PUBKEY_LEN);
    }
    qsort(r.keys, k, ALYS_PUBKEY_LEN, key_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u && memcmp(r.keys[u - 1], r.keys[i], ALYS_PUBKEY_LEN) == 0)
            continue;
        memmove(r.keys[u], r.keys[i], ALYS_PUBKEY_LEN);
        alys_account_t a;
        int rc = alys_state_view_get(&f.view, r.keys[u], &a);
        cr_assert_geq(rc, 0);
        r.accts[u] = (Alys__Storage__AccountState) ALYS__STORAGE__ACCOUNT_STATE__INIT;
        r.accts[u].pubkey = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, r.keys[u]};
        r.accts[u].balance = a.balance;
        r.accts[u].nonce = a.nonce;
        r.accts[u].found = rc == 1;
        r.acct_ptrs[u] = &r.accts[u];
        u++;
    }
    memcpy(r.head_hash, f.g.hash, ALYS_HASH_LEN);
    r.m.n_txs = n;
    r.m.txs = r.items;
    r.m.n_accounts = u;
    r.m.accounts = r.acct_ptrs;
    r.m.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, r.head_hash};
    return &r.m;
}

static void make_txs(void)
{
    txs[0] = mpf_tx(&f, 0, 1, 10, 3, 0);
    txs[1] = mpf_tx(&f, 0, 2, 20, 2, 1); /* the same sender's next nonce */
    txs[2] = mpf_tx(&f, 3, 0, 5, 1, 0);
}

static void genesis_head(head_state_t *hs)
{
    Alys__Storage__Head m = ALYS__STORAGE__HEAD__INIT;
    m.hash = (ProtobufCBinaryData){ALYS_HASH_LEN, f.g.hash};
    m.state_root = (ProtobufCBinaryData){ALYS_HASH_LEN, f.g.state_root};
    m.lattice = (ProtobufCBinaryData){sizeof lattice, lattice};
    char err[256] = "";
    cr_assert_eq(head_state_take(hs, &f.g, &m, err, sizeof err), 0, "%s", err);
}

Test(pool_txs, a_block_built_from_a_reply_on_its_head_includes_the_txs_and_executes_on_a_replica)
{
    make_txs();
    pool_txs_t pt;
    char err[256] = "";
    cr_assert_eq(pool_txs_take(&pt, reply(NTX), 16, proposer, err, sizeof err), 0, "%s", err);
    cr_assert_eq(pt.tx_count, NTX);
    head_state_t hs;
    genesis_head(&hs);
    builder_input_t in;
    cr_assert(head_state_input(&hs, &f.g, 1, 7, &pt, 16, &in));
    alys_block_t b;
    builder_stats_t st;
    cr_assert_eq(builder_assemble(&in, &b, &st, err, sizeof err), BUILD_OK, "%s", err);
    cr_assert_eq(b.tx_count, NTX);
    cr_assert_eq(st.included, NTX);
    /* The chain's own execution on the fixture's state (a replica that
     * never saw the reply) reaches the header's state root. */
    alys_verdict_t v;
    cr_assert(alys_execute_block(&f.view, &b, &v), "replica: %s", v.detail);
    alys_block_clear(&b);
    pool_txs_clear(&pt);
}

Test(pool_txs, max_txs_bounds_the_block_not_the_reply)
{
    make_txs();
    pool_txs_t pt;
    char err[256] = "";
    cr_assert_eq(pool_txs_take(&pt, reply(NTX), 16, proposer, err, sizeof err), 0, "%s", err);
    head_state_t hs;
    genesis_head(&hs);
    builder_input_t in;
    cr_assert(head_state_input(&hs, &f.g, 1, 7, &pt, 2, &in));
    alys_block_t b;
    cr_assert_eq(builder_assemble(&in, &b, NULL, err, sizeof err), BUILD_OK, "%s", err);
    cr_assert_eq(b.tx_count, 2);
    alys_block_clear(&b);
    pool_txs_clear(&pt);
}

Test(pool_txs, a_reply_selected_on_another_head_adds_no_txs)
{
    make_txs();
    const Alys__Mempool__MempoolTxs *m = reply(NTX);
    r.head_hash[0] ^= 1;
    pool_txs_t pt;
    char err[256] = "";
    cr_assert_eq(pool_txs_take(&pt, m, 16, proposer, err, sizeof err), 0, "%s", err);
    head_state_t hs;
    genesis_head(&hs);
    builder_input_t in;
    cr_assert_not(head_state_input(&hs, &f.g, 1, 7, &pt, 16, &in));
    alys_block_t b;
    cr_assert_eq(builder_assemble(&in, &b, NULL, err, sizeof err), BUILD_OK, "%s", err);
    cr_assert_eq(b.tx_count, 0);
    alys_block_clear(&b);
    pool_txs_clear(&pt);
}

/* take must refuse the reply r describes now, naming what; returns err. */
static void refused(const char *what)
{
    pool_txs_t pt;
    char err[256] = "";
    cr_assert_eq(pool_txs_take(&pt, &r.m, NTX, proposer, err, sizeof err), -1, "taken: %s", what);
    cr_assert_not(pt.valid);
    cr_assert(strstr(err, what), "'%s' does not name '%s'", err, what);
    pool_txs_clear(&pt);
}

Test(pool_txs, a_reply_that_disagrees_with_itself_is_not_taken)
{
    make_txs();
    reply(NTX);
    r.m.head_hash.len = 31;
    refused("head hash");

    reply(NTX); /* NTX txs where only NTX - 1 were asked for */
    pool_txs_t pt;
    char err[256] = "";
    cr_assert_eq(pool_txs_take(&pt, &r.m, NTX - 1, proposer, err, sizeof err), -1);
    cr_assert(strstr(err, "more txs"), "%s", err);

    reply(1);
    r.m.n_accounts = 2 * 1 + 2; /* one more than a tx and the proposer touch */
    refused("more accounts");

    reply(NTX);
    Alys__Storage__AccountState *t = r.acct_ptrs[0];
    r.acct_ptrs[0] = r.acct_ptrs[1];
    r.acct_ptrs[1] = t;
    refused("ascending");

    reply(NTX);
    r.acct_ptrs[1] = r.acct_ptrs[0]; /* a key twice */
    refused("ascending");

    reply(NTX);
    r.accts[0].pubkey.len = 16;
    refused("32 bytes");

    reply(NTX);
    r.accts[0].found = false;
    r.accts[0].balance = 5;
    refused("absent account");

    reply(NTX);
    r.items[1].len = 3;
    refused("does not decode");

    /* Without the proposer's account, and without a sender's. */
    reply(0);
    r.m.n_accounts = 0;
    refused("proposer");
    reply(1);
    for (size_t i = 0; i < r.m.n_accounts; i++)
        if (memcmp(r.accts[i].pubkey.data, txs[0].to, ALYS_PUBKEY_LEN) == 0) {
            memmove(&r.acct_ptrs[i], &r.acct_ptrs[i + 1],
                    (r.m.n_accounts - i - 1) * sizeof r.acct_ptrs[0]);
            r.m.n_accounts--;
            break;
        }
    refused("sender or recipient");
}

Test(pool_txs, an_account_the_reply_does_not_hold_is_never_guessed)
{
    make_txs();
    pool_txs_t pt;
    char err[256] = "";
    cr_assert_eq(pool_txs_take(&pt, reply(1), 16, proposer, err, sizeof err), 0, "%s", err);
    alys_account_t a;
    cr_assert_eq(pool_txs_read(&pt, txs[0].from, &a), 1);
    cr_assert_eq(a.nonce, 0);
    cr_assert_eq(a.balance, 1000);
    cr_assert_eq(pool_txs_read(&pt, f.keys.account_pub[5], &a), -1, "not in the reply");
    pool_txs_clear(&pt);
    pool_txs_clear(&pt); /* safe twice */
}
