/*  test_chaingen.c: the deterministic chain generator (actors/chaingen) and
 *  the in-memory state store it uses (common/chain/memstate.h).
 *
 *  A generated chain is checked the way a node checks it, with the chain's
 *  own functions: decode, stateless checks, link to the parent, execution on
 *  a fresh state. Every fault kind must fail at exactly its height, with
 *  exactly its reason, and in exactly one of those stages.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chaingen.h"
#include "chain/export.h"
#include "chain/memstate.h"
#include "chain/state.h"

#define BLOCKS   30
#define TXS      4
#define FAULT_AT 17

static void small_config(alys_chaingen_config_t *c, const char *seed)
{
    alys_chaingen_config_default(c);
    c->blocks = BLOCKS;
    c->txs_per_block = TXS;
    c->accounts = 10;
    c->authorities = 3;
    snprintf(c->seed, sizeof c->seed, "%s", seed);
}

static uint64_t now_slot(const alys_genesis_t *g)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return alys_genesis_slot_at(g, (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000);
}

/* ---------------------------------------------------------------- a node-like checker */

typedef enum { ST_DECODE, ST_STATELESS, ST_LINK, ST_EXECUTE, ST_OK } stage_t;

typedef struct {
    const alys_genesis_t *g;
    alys_memstate_t *ms;
    alys_overlay_t *ov;
    alys_state_view_t view;
    alys_header_t parent;
    alys_hash_t parent_hash;
    uint64_t now_slot;
} checker_t;

static void checker_init(checker_t *k, const alys_genesis_t *g)
{
    k->g = g;
    k->ms = alys_memstate_new();
    k->ov = alys_overlay_new();
    cr_assert(k->ms && k->ov);
    cr_assert_eq(alys_memstate_load_genesis(k->ms, g), 0);
    alys_memstate_view_init(k->ms, g, k->ov, &k->view);
    alys_hash_t root;
    alys_lattice_root(&k->view.lattice, root);
    cr_assert_eq(memcmp(root, g->state_root, ALYS_HASH_LEN), 0, "memstate lattice = genesis root");
    alys_genesis_parent(g, &k->parent);
    memcpy(k->parent_hash, g->hash, ALYS_HASH_LEN);
    k->now_slot = now_slot(g);
}

static void checker_fini(checker_t *k)
{
    alys_memstate_destroy(&k->ms);
    alys_overlay_destroy(&k->ov);
}

/* Check one record. Stateless and link checks both run, so a fault that
 * broke two rules would show; execution runs only if both passed. On
 * success the block is committed and becomes the parent. */
static stage_t check_record(checker_t *k, const uint8_t *bytes, size_t len, alys_verdict_t *v)
{
    alys_block_t b;
    if (alys_block_decode(bytes, len, &b, v) != 0)
        return ST_DECODE;
    alys_verdict_t vs, vl;
    bool sl = alys_block_check_stateless(k->g, &b, &vs);
    bool ln = alys_header_check_link(&k->parent, k->parent_hash, &b.header, k->now_slot, &vl);
    stage_t st = ST_OK;
    if (!sl || !ln) {
        cr_assert(sl != ln, "height %" PRIu64 ": both stateless (%s) and link (%s) fail",
                  b.header.height, vs.detail, vl.detail);
        *v = sl ? vl : vs;
        st = sl ? ST_LINK : ST_STATELESS;
    } else if (!alys_execute_block(&k->view, &b, v)) {
        st = ST_EXECUTE;
    } else {
        cr_assert_eq(alys_memstate_commit_overlay(k->ms, k->ov), 0);
        k->parent = b.header;
        alys_header_hash(&b.header, k->parent_hash);
    }
    alys_block_clear(&b);
    return st;
}

/* ---------------------------------------------------------------- file helpers */

static char *make_dir(void)
{
    char *d = strdup("/tmp/test-chaingen-XXXXXX");
    cr_assert(d && mkdtemp(d));
    return d;
}

static void remove_dir(char *d)
{
    const char *names[] = {"genesis", "keys", "chain.export", "chain.export.tmp"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", d, names[i]);
        unlink(p);
    }
    rmdir(d);
    free(d);
}

static uint8_t *slurp(const char *dir, const char *name, size_t *len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    cr_assert(f, "%s missing", p);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t) n + 1);
    cr_assert(buf);
    cr_assert_eq(fread(buf, 1, (size_t) n, f), (size_t) n);
    fclose(f);
    *len = (size_t) n;
    return buf;
}

static void assert_same_file(const char *d1, const char *d2, const char *name)
{
    size_t l1, l2;
    uint8_t *a = slurp(d1, name, &l1), *b = slurp(d2, name, &l2);
    cr_assert_eq(l1, l2, "%s: sizes differ", name);
    cr_assert_eq(memcmp(a, b, l1), 0, "%s: bytes differ", name);
    free(a);
    free(b);
}

/* ---------------------------------------------------------------- tests */

Test(chaingen, same_arguments_same_bytes)
{
    alys_chaingen_config_t c;
    small_config(&c, "determinism");
    char *d1 = make_dir(), *d2 = make_dir(), err[512];
    alys_chaingen_result_t r1, r2;
    c.threads = 1;
    cr_assert_eq(alys_chaingen_run(&c, d1, &r1, err, sizeof err), 0, "%s", err);
    c.threads = 4; /* the thread count must not show in the output */
    cr_assert_eq(alys_chaingen_run(&c, d2, &r2, err, sizeof err), 0, "%s", err);
    assert_same_file(d1, d2, "genesis");
    assert_same_file(d1, d2, "keys");
    assert_same_file(d1, d2, "chain.export");
    cr_assert_eq(memcmp(&r1, &r2, sizeof r1), 0);
    cr_assert_eq(r1.head_height, BLOCKS);
    cr_assert_eq(r1.blocks, BLOCKS);
    cr_assert_eq(r1.txs, (uint64_t) BLOCKS * TXS);

    small_config(&c, "determinism!");
    char *d3 = make_dir();
    alys_chaingen_result_t r3;
    cr_assert_eq(alys_chaingen_run(&c, d3, &r3, err, sizeof err), 0, "%s", err);
    cr_assert_neq(memcmp(r1.head_hash, r3.head_hash, ALYS_HASH_LEN), 0, "another seed, another chain");
    cr_assert_neq(memcmp(r1.genesis_hash, r3.genesis_hash, ALYS_HASH_LEN), 0);
    remove_dir(d1);
    remove_dir(d2);
    remove_dir(d3);
}

Test(chaingen, files_are_what_they_say)
{
    alys_chaingen_config_t c;
    small_config(&c, "files");
    char *d = make_dir(), err[512], p[512];
    alys_chaingen_result_t r;
    cr_assert_eq(alys_chaingen_run(&c, d, &r, err, sizeof err), 0, "%s", err);

    alys_genesis_t g;
    snprintf(p, sizeof p, "%s/genesis", d);
    cr_assert_eq(alys_genesis_load(p, &g, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(g.hash, r.genesis_hash, ALYS_HASH_LEN), 0);
    cr_assert_eq(g.authority_count, 3);
    cr_assert_eq(g.balance_count, 10);
    cr_assert_eq(g.genesis_time, ALYS_CHAINGEN_DEFAULT_GENESIS_TIME);
    cr_assert_eq(g.slot_duration_ms, ALYS_CHAINGEN_DEFAULT_SLOT_MS);

    /* keys: owner-only, one hex secret per authority, matching the genesis */
    struct stat st;
    snprintf(p, sizeof p, "%s/keys", d);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    FILE *f = fopen(p, "r");
    cr_assert(f);
    char line[128];
    uint32_t n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        uint8_t sk[ALYS_SECKEY_LEN], pk[ALYS_PUBKEY_LEN];
        cr_assert_eq(alys_unhex(line, sk, sizeof sk), 0, "line %u: %s", n, line);
        cr_assert_eq(alys_keypair_pubkey(sk, pk), 0);
        cr_assert(n < g.authority_count);
        cr_assert_eq(memcmp(pk, g.authorities[n], ALYS_PUBKEY_LEN), 0, "key %u", n);
        n++;
    }
    fclose(f);
    cr_assert_eq(n, 3);

    /* the export names the genesis and holds every block */
    snprintf(p, sizeof p, "%s/chain.export", d);
    alys_export_reader_t *rd = alys_export_reader_new(p, err, sizeof err);
    cr_assert(rd, "%s", err);
    const alys_export_header_t *h = alys_export_reader_header(rd);
    cr_assert_eq(memcmp(h->genesis_hash, g.hash, ALYS_HASH_LEN), 0);
    cr_assert_eq(h->first_height, 1);
    cr_assert_eq(h->block_count, BLOCKS);
    checker_t k;
    checker_init(&k, &g);
    uint8_t *bytes;
    size_t len;
    int rc;
    while ((rc = alys_export_reader_next(rd, &bytes, &len, err, sizeof err)) == 1) {
        alys_verdict_t v;
        cr_assert_eq(check_record(&k, bytes, len, &v), ST_OK, "%s: %s",
                     alys_block_error_name(v.code), v.detail);
        free(bytes);
    }
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(k.parent.height, r.head_height);
    cr_assert_eq(memcmp(k.parent_hash, r.head_hash, ALYS_HASH_LEN), 0);
    cr_assert_eq(memcmp(k.parent.state_root, r.state_root, ALYS_HASH_LEN), 0);
    checker_fini(&k);
    alys_export_reader_destroy(&rd);
    alys_genesis_clear(&g);
    remove_dir(d);
}

/* Drive the generator in memory; check every block as a node would. */
Test(chaingen, generated_chain_validates)
{
    alys_chaingen_config_t c;
    small_config(&c, "valid");
    c.blocks = 120;
    char err[512];
    alys_chaingen_t *gen = alys_chaingen_new(&c, err, sizeof err);
    cr_assert(gen, "%s", err);
    const alys_genesis_t *g = alys_chaingen_genesis(gen);
    checker_t k;
    checker_init(&k, g);
    const uint8_t *bytes;
    size_t len;
    const alys_block_t *b;
    uint64_t skipped = 0, count = 0;
    int rc;
    while ((rc = alys_chaingen_next(gen, &bytes, &len, &b, err, sizeof err)) == 1) {
        count++;
        uint64_t prev_slot = k.parent.slot;
        alys_verdict_t v;
        cr_assert_eq(check_record(&k, bytes, len, &v), ST_OK, "block %" PRIu64 ": %s: %s", count,
                     alys_block_error_name(v.code), v.detail);
        cr_assert_eq(b->header.height, count);
        cr_assert_eq(b->header.proposer, b->header.slot % 3);
        cr_assert_eq(b->tx_count, TXS);
        skipped += b->header.slot - prev_slot - 1;
    }
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(count, 120);
    cr_assert(skipped > 0 && skipped < 20, "about 1 slot in 20 is skipped, got %" PRIu64, skipped);
    /* the incremental root the checker reached equals a full recomputation */
    alys_lattice_t full;
    alys_hash_t root;
    alys_memstate_lattice(k.ms, &full);
    alys_lattice_root(&full, root);
    cr_assert_eq(memcmp(root, k.parent.state_root, ALYS_HASH_LEN), 0);
    checker_fini(&k);
    alys_chaingen_destroy(&gen);
    cr_assert_null(gen);
}

Test(chaingen, no_txs_and_big_batches)
{
    /* K = 0: empty blocks, state never changes; several batches */
    alys_chaingen_config_t c;
    small_config(&c, "empty");
    c.blocks = 600;
    c.txs_per_block = 0;
    c.accounts = 1;
    c.authorities = 1;
    char err[512];
    alys_chaingen_t *gen = alys_chaingen_new(&c, err, sizeof err);
    cr_assert(gen, "%s", err);
    checker_t k;
    checker_init(&k, alys_chaingen_genesis(gen));
    const uint8_t *bytes;
    size_t len;
    int rc;
    while ((rc = alys_chaingen_next(gen, &bytes, &len, NULL, err, sizeof err)) == 1) {
        alys_verdict_t v;
        cr_assert_eq(check_record(&k, bytes, len, &v), ST_OK, "%s", v.detail);
        cr_assert_eq(memcmp(k.parent.state_root, alys_chaingen_genesis(gen)->state_root, ALYS_HASH_LEN),
                     0);
    }
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(k.parent.height, 600);
    checker_fini(&k);
    alys_chaingen_destroy(&gen);
}

/* ---------------------------------------------------------------- faults */

typedef struct {
    alys_block_error_t kind;
    stage_t stage;
} fault_case_t;

static fault_case_t s_cases[] = {
    {ALYS_BLOCK_BAD_PROPOSER_SIG, ST_STATELESS},
    {ALYS_BLOCK_WRONG_PROPOSER, ST_STATELESS},
    {ALYS_BLOCK_BAD_TX_SIG, ST_STATELESS},
    {ALYS_BLOCK_TX_ROOT_MISMATCH, ST_STATELESS},
    {ALYS_BLOCK_PARENT_MISMATCH, ST_LINK},
    {ALYS_BLOCK_HEIGHT_GAP, ST_LINK},
    {ALYS_BLOCK_NON_INCREASING_SLOT, ST_LINK},
    {ALYS_BLOCK_FUTURE_SLOT, ST_LINK},
    {ALYS_BLOCK_BAD_TIMESTAMP, ST_STATELESS},
    {ALYS_BLOCK_BAD_NONCE, ST_EXECUTE},
    {ALYS_BLOCK_INSUFFICIENT_BALANCE, ST_EXECUTE},
    {ALYS_BLOCK_STATE_ROOT_MISMATCH, ST_EXECUTE},
    {ALYS_BLOCK_MALFORMED, ST_DECODE},
    {ALYS_BLOCK_OVERSIZE, ST_DECODE},
};

ParameterizedTestParameters(chaingen, fault_at_exact_height)
{
    return cr_make_param_array(fault_case_t, s_cases, sizeof s_cases / sizeof s_cases[0]);
}

/* Blocks after the faulty one are built on it as if it were valid: they
 * pass the stateless checks and link to it. */
static void check_after_fault(const alys_genesis_t *g, const alys_block_t *faulty,
                              alys_chaingen_t *gen, uint64_t slot_now)
{
    alys_header_t parent = faulty->header;
    alys_hash_t parent_hash;
    alys_header_hash(&parent, parent_hash);
    const uint8_t *bytes;
    size_t len;
    const alys_block_t *b;
    char err[512];
    int rc;
    while ((rc = alys_chaingen_next(gen, &bytes, &len, &b, err, sizeof err)) == 1) {
        alys_verdict_t v;
        cr_assert(alys_block_check_stateless(g, b, &v), "after the fault: %s", v.detail);
        bool far = faulty->header.slot > slot_now; /* future_slot: so are its children */
        cr_assert(alys_header_check_link(&parent, parent_hash, &b->header,
                                         far ? UINT64_MAX : slot_now, &v),
                  "after the fault: %s", v.detail);
        parent = b->header;
        alys_header_hash(&parent, parent_hash);
    }
    cr_assert_eq(rc, 0, "%s", err);
}

ParameterizedTest(fault_case_t *fc, chaingen, fault_at_exact_height)
{
    const char *name = alys_block_error_name(fc->kind);
    alys_chaingen_config_t c;
    small_config(&c, "faults");
    c.fault = fc->kind;
    c.fault_height = FAULT_AT;
    char err[512];
    alys_chaingen_t *gen = alys_chaingen_new(&c, err, sizeof err);
    cr_assert(gen, "%s: %s", name, err);
    const alys_genesis_t *g = alys_chaingen_genesis(gen);
    checker_t k;
    checker_init(&k, g);
    const uint8_t *bytes;
    size_t len;
    const alys_block_t *b;
    for (uint64_t pos = 1; pos <= FAULT_AT; pos++) {
        cr_assert_eq(alys_chaingen_next(gen, &bytes, &len, &b, err, sizeof err), 1, "%s", err);
        alys_verdict_t v;
        stage_t st = check_record(&k, bytes, len, &v);
        if (pos < FAULT_AT) {
            cr_assert_eq(st, ST_OK, "%s: block %" PRIu64 " fails early: %s", name, pos, v.detail);
            continue;
        }
        cr_assert_eq(st, fc->stage, "%s: failed in stage %d, want %d (%s)", name, st, fc->stage,
                     v.detail);
        cr_assert_eq(v.code, fc->kind, "%s: got %s (%s)", name, alys_block_error_name(v.code),
                     v.detail);
        if (fc->kind == ALYS_BLOCK_BAD_TX_SIG || fc->kind == ALYS_BLOCK_BAD_NONCE ||
            fc->kind == ALYS_BLOCK_INSUFFICIENT_BALANCE)
            cr_assert_eq(v.tx_index, TXS / 2, "%s: tx index %d", name, v.tx_index);
        cr_assert(len <= ALYS_MAX_BLOCK_BYTES, "%s: the record must still fit the stream", name);
    }
    check_after_fault(g, b, gen, k.now_slot);
    checker_fini(&k);
    alys_chaingen_destroy(&gen);
}

/* The reusable corrupter: take a valid block off a clean chain, corrupt a
 * copy of it as a fault-injecting peer would, and check it as a node. */
Test(chaingen, corrupt_block_on_served_blocks)
{
    alys_chaingen_config_t c;
    small_config(&c, "peer");
    c.blocks = 6;
    char err[512];
    for (size_t i = 0; i < sizeof s_cases / sizeof s_cases[0]; i++) {
        alys_block_error_t kind = s_cases[i].kind;
        alys_chaingen_t *gen = alys_chaingen_new(&c, err, sizeof err);
        cr_assert(gen, "%s", err);
        const alys_genesis_t *g = alys_chaingen_genesis(gen);
        checker_t k;
        checker_init(&k, g);
        const uint8_t *bytes;
        size_t len;
        const alys_block_t *b;
        for (int pos = 1; pos < 5; pos++) {
            alys_verdict_t v;
            cr_assert_eq(alys_chaingen_next(gen, &bytes, &len, &b, err, sizeof err), 1);
            cr_assert_eq(check_record(&k, bytes, len, &v), ST_OK, "%s", v.detail);
        }
        cr_assert_eq(alys_chaingen_next(gen, &bytes, &len, &b, err, sizeof err), 1);
        alys_block_t copy = *b;
        copy.txs = malloc(b->tx_count * sizeof *b->txs);
        memcpy(copy.txs, b->txs, b->tx_count * sizeof *b->txs);
        uint8_t *enc = NULL;
        size_t enc_len = 0;
        if (alys_forge_fault_is_encoding(kind)) {
            cr_assert_eq(alys_forge_corrupt_encoding(&copy, kind, &enc, &enc_len, err, sizeof err),
                         0, "%s", err);
        } else {
            alys_forge_fault_ctx_t ctx = {g, alys_chaingen_keys(gen), &k.parent};
            int32_t txi = -2;
            cr_assert_eq(alys_forge_corrupt_block(&copy, kind, &ctx, &txi, err, sizeof err), 0,
                         "%s: %s", alys_block_error_name(kind), err);
            cr_assert_eq(alys_block_encode(&copy, &enc, &enc_len), 0);
        }
        alys_verdict_t v;
        stage_t st = check_record(&k, enc, enc_len, &v);
        /* A peer cannot recompute the state root, so a proposer change also
         * breaks execution; the earlier stage still names the fault. */
        cr_assert_eq(v.code, kind, "%s: got %s (%s)", alys_block_error_name(kind),
                     alys_block_error_name(v.code), v.detail);
        cr_assert_eq(st, s_cases[i].stage, "%s", alys_block_error_name(kind));
        free(enc);
        free(copy.txs);
        checker_fini(&k);
        alys_chaingen_destroy(&gen);
    }
}

Test(chaingen, corrupt_block_refuses_what_does_not_apply)
{
    alys_chaingen_config_t c;
    small_config(&c, "refuse");
    c.blocks = 1;
    c.txs_per_block = 0;
    c.authorities = 1;
    char err[512];
    alys_chaingen_t *gen = alys_chaingen_new(&c, err, sizeof err);
    cr_assert(gen, "%s", err);
    const uint8_t *bytes;
    size_t len;
    const alys_block_t *b;
    cr_assert_eq(alys_chaingen_next(gen, &bytes, &len, &b, err, sizeof err), 1);
    alys_block_t copy = *b;
    alys_forge_fault_ctx_t ctx = {alys_chaingen_genesis(gen), alys_chaingen_keys(gen), NULL};
    cr_assert_eq(alys_forge_corrupt_block(&copy, ALYS_BLOCK_BAD_NONCE, &ctx, NULL, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "needs a block with txs"), "%s", err);
    cr_assert_eq(alys_forge_corrupt_block(&copy, ALYS_BLOCK_WRONG_PROPOSER, &ctx, NULL, err, sizeof err),
                 -1);
    cr_assert_eq(alys_forge_corrupt_block(&copy, ALYS_BLOCK_NON_INCREASING_SLOT, &ctx, NULL, err,
                                          sizeof err),
                 -1);
    cr_assert_eq(alys_forge_corrupt_block(&copy, ALYS_BLOCK_MALFORMED, &ctx, NULL, err, sizeof err),
                 -1);
    cr_assert_eq(alys_forge_corrupt_block(&copy, ALYS_BLOCK_OK, &ctx, NULL, err, sizeof err), -1);
    cr_assert_eq(memcmp(&copy, b, sizeof copy), 0, "a refused fault changes nothing");
    alys_chaingen_destroy(&gen);

    /* without the keys to re-sign, the block is left exactly as it was */
    c.txs_per_block = 3;
    c.authorities = 2;
    gen = alys_chaingen_new(&c, err, sizeof err);
    cr_assert(gen, "%s", err);
    cr_assert_eq(alys_chaingen_next(gen, &bytes, &len, &b, err, sizeof err), 1);
    alys_tx_t txs[3];
    memcpy(txs, b->txs, sizeof txs);
    copy = *b;
    copy.txs = txs;
    alys_forge_keys_t none = {0};
    ctx = (alys_forge_fault_ctx_t){alys_chaingen_genesis(gen), &none, NULL};
    cr_assert_eq(alys_forge_corrupt_block(&copy, ALYS_BLOCK_BAD_NONCE, &ctx, NULL, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "no secret key for the sender"), "%s", err);
    cr_assert_eq(alys_forge_corrupt_block(&copy, ALYS_BLOCK_PARENT_MISMATCH, &ctx, NULL, err,
                                          sizeof err),
                 -1);
    cr_assert(strstr(err, "no secret key for authority"), "%s", err);
    cr_assert_eq(memcmp(&copy.header, &b->header, sizeof copy.header), 0);
    cr_assert_eq(memcmp(txs, b->txs, sizeof txs), 0);
    alys_chaingen_destroy(&gen);
}

/* ---------------------------------------------------------------- arguments */

static void expect_config_error(alys_chaingen_config_t *c, const char *want)
{
    char err[512] = "";
    cr_assert_eq(alys_chaingen_config_check(c, err, sizeof err), -1, "accepted; want '%s'", want);
    cr_assert(strstr(err, want), "got '%s', want '%s'", err, want);
}

Test(chaingen, arguments_validated)
{
    alys_chaingen_config_t c;
    small_config(&c, "args");
    char err[512];
    cr_assert_eq(alys_chaingen_config_check(&c, err, sizeof err), 0, "%s", err);

    c.txs_per_block = 5000;
    expect_config_error(&c, "--txs-per-block 5000 exceeds the limit 4096");
    small_config(&c, "args");
    c.blocks = ALYS_CHAINGEN_MAX_BLOCKS + 1;
    expect_config_error(&c, "--blocks 1000000001 exceeds the limit");
    small_config(&c, "args");
    c.accounts = 0;
    expect_config_error(&c, "--accounts 0 is outside 1..100000");
    c.accounts = 1;
    expect_config_error(&c, "transfers need at least 2 accounts");
    small_config(&c, "args");
    c.authorities = 65;
    expect_config_error(&c, "--authorities 65 is outside 1..64");
    small_config(&c, "args");
    c.seed[0] = '\0';
    expect_config_error(&c, "--seed is required");
    small_config(&c, "args");
    c.slot_ms = 0;
    expect_config_error(&c, "--slot-ms 0 is outside");
    small_config(&c, "args");
    snprintf(c.chain_id, sizeof c.chain_id, "bad id");
    expect_config_error(&c, "--chain-id may hold only");
    small_config(&c, "args");
    c.fault = ALYS_BLOCK_BAD_NONCE;
    expect_config_error(&c, "--fault bad_nonce needs --fault-height H (1..30)");
    c.fault_height = 31;
    expect_config_error(&c, "--fault-height 31 is outside 1..30");
    c.fault_height = 30;
    c.txs_per_block = 0;
    expect_config_error(&c, "--fault bad_nonce needs --txs-per-block >= 1");
    small_config(&c, "args");
    c.fault = ALYS_BLOCK_WRONG_PROPOSER;
    c.fault_height = 1;
    c.authorities = 1;
    expect_config_error(&c, "--fault wrong_proposer needs --authorities >= 2");
    small_config(&c, "args");
    c.fault_height = 3;
    expect_config_error(&c, "--fault-height needs --fault");

    alys_block_error_t k;
    cr_assert_eq(alys_forge_fault_parse("height_gap", &k, err, sizeof err), 0);
    cr_assert_eq(k, ALYS_BLOCK_HEIGHT_GAP);
    cr_assert_eq(alys_forge_fault_parse("ok", &k, err, sizeof err), -1);
    cr_assert_eq(alys_forge_fault_parse("internal_error", &k, err, sizeof err), -1);
    cr_assert_eq(alys_forge_fault_parse("nope", &k, err, sizeof err), -1);
    cr_assert(strstr(err, "--fault nope: unknown kind (one of: malformed, oversize,"), "%s", err);

    /* new() checks too, and an error leaves nothing behind */
    small_config(&c, "args");
    c.txs_per_block = 4097;
    cr_assert_null(alys_chaingen_new(&c, err, sizeof err));
}

Test(chaingen, keys_are_derived_from_the_seed)
{
    alys_forge_keys_t a, b;
    cr_assert_eq(alys_forge_keys_derive("s", 2, 3, &a), 0);
    cr_assert_eq(alys_forge_keys_derive("s", 2, 3, &b), 0);
    cr_assert_eq(memcmp(a.account_sec, b.account_sec, 3 * ALYS_SECKEY_LEN), 0);
    cr_assert_neq(memcmp(a.account_sec[0], a.authority_sec[0], ALYS_SECKEY_LEN), 0);
    for (uint32_t i = 0; i < 3; i++) {
        uint8_t pk[ALYS_PUBKEY_LEN];
        cr_assert_eq(alys_keypair_pubkey(a.account_sec[i], pk), 0);
        cr_assert_eq(memcmp(pk, a.account_pub[i], ALYS_PUBKEY_LEN), 0);
        cr_assert_eq(alys_forge_keys_secret(&a, pk), a.account_sec[i]);
    }
    uint8_t unknown[ALYS_PUBKEY_LEN] = {0};
    cr_assert_null(alys_forge_keys_secret(&a, unknown));
    alys_forge_keys_clear(&a);
    alys_forge_keys_clear(&b);
    cr_assert_null(a.account_sec);
}

/* ---------------------------------------------------------------- memstate */

Test(memstate, put_get_remove_grow)
{
    alys_memstate_t *ms = alys_memstate_new();
    cr_assert(ms);
    enum { N = 5000 };
    uint8_t pk[ALYS_PUBKEY_LEN];
    for (uint32_t i = 0; i < N; i++) {
        alys_sha256(&i, sizeof i, pk);
        /* same first bytes for a third of the keys: long probe runs */
        if (i % 3 == 0)
            memset(pk, 0, 8);
        alys_account_t a = {.balance = i + 1, .nonce = i};
        cr_assert_eq(alys_memstate_put(ms, pk, &a), 0);
    }
    cr_assert_eq(alys_memstate_size(ms), N);
    for (uint32_t i = 0; i < N; i += 2) { /* remove every other one */
        alys_sha256(&i, sizeof i, pk);
        if (i % 3 == 0)
            memset(pk, 0, 8);
        alys_account_t zero = {0, 0};
        cr_assert_eq(alys_memstate_put(ms, pk, &zero), 0);
    }
    cr_assert_eq(alys_memstate_size(ms), N / 2);
    for (uint32_t i = 0; i < N; i++) {
        alys_sha256(&i, sizeof i, pk);
        if (i % 3 == 0)
            memset(pk, 0, 8);
        alys_account_t a;
        int found = alys_memstate_read(ms, pk, &a);
        cr_assert_eq(found, i % 2, "key %u", i);
        cr_assert_eq(a.balance, found ? i + 1 : 0, "key %u", i);
        cr_assert_eq(a.nonce, found ? i : 0);
    }
    alys_memstate_destroy(&ms);
    cr_assert_null(ms);
    alys_memstate_destroy(&ms);
}
