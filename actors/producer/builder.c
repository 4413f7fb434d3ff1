/*  builder.c: see builder.h.
 *
 *  The running state is a small open-addressing table of the accounts the
 *  block touches (key, value at the head, value now), sized for the worst
 *  case (2 accounts per tx plus the proposer) before the first tx, so it
 *  never grows. Slots are found by SHA-256(seed || key): recipients are
 *  arbitrary 32-byte strings, and a key-derived index without a secret seed
 *  could be ground to collide.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aura.h"
#include "builder.h"

typedef struct {
    uint8_t key[ALYS_PUBKEY_LEN];
    alys_account_t before;
    alys_account_t now;
    bool used;
    bool dropped; /* a tx of this sender was skipped: its later ones cannot follow */
} acct_t;

typedef struct {
    acct_t *slots;
    size_t mask;
    uint64_t seed;
    const alys_state_view_t *head;
    bool read_failed;
} table_t;

const char *builder_result_name(builder_result_t r)
{
    switch (r) {
    case BUILD_OK: return "ok";
    case BUILD_BAD_INPUT: return "bad_input";
    case BUILD_NO_MEMORY: return "no_memory";
    case BUILD_STATE_ERROR: return "state_error";
    case BUILD_SELF_CHECK: return "self_check";
    }
    return "unknown";
}

/* ---------------------------------------------------------------- table */

static int table_init(table_t *t, size_t candidates, uint64_t seed, const alys_state_view_t *head)
{
    size_t want = 2 * (2 * candidates + 1), cap = 16;
    while (cap < want)
        cap *= 2;
    t->slots = calloc(cap, sizeof *t->slots);
    t->mask = cap - 1;
    t->seed = seed;
    t->head = head;
    t->read_failed = false;
    return t->slots ? 0 : -1;
}

static size_t table_home(const table_t *t, const uint8_t key[ALYS_PUBKEY_LEN])
{
    uint8_t buf[8 + ALYS_PUBKEY_LEN];
    alys_hash_t h;
    memcpy(buf, &t->seed, 8);
    memcpy(buf + 8, key, ALYS_PUBKEY_LEN);
    alys_sha256(buf, sizeof buf, h);
    uint64_t x;
    memcpy(&x, h, 8);
    return (size_t) x & t->mask;
}

/* The account's entry, read from the head state on first touch; NULL when
 * that read fails (t->read_failed set). The table never fills: see init. */
static acct_t *table_touch(table_t *t, const uint8_t key[ALYS_PUBKEY_LEN])
{
    size_t i = table_home(t, key);
    while (t->slots[i].used) {
        if (memcmp(t->slots[i].key, key, ALYS_PUBKEY_LEN) == 0)
            return &t->slots[i];
        i = (i + 1) & t->mask;
    }
    acct_t *a = &t->slots[i];
    if (alys_state_view_get(t->head, key, &a->before) < 0) {
        t->read_failed = true;
        return NULL;
    }
    a->used = true;
    memcpy(a->key, key, ALYS_PUBKEY_LEN);
    a->now = a->before;
    return a;
}

/* ---------------------------------------------------------------- sizes */

static size_t varint_len(uint64_t x)
{
    size_t n = 1;
    while (x >= 0x80) {
        x >>= 7;
        n++;
    }
    return n;
}

/* A uint64 field: absent when 0 (proto3), else tag + varint. */
static size_t u64_field(uint64_t x)
{
    return x ? 1 + varint_len(x) : 0;
}

size_t builder_tx_encoded_bound(const alys_tx_t *tx)
{
    size_t body = 2 * (2 + ALYS_PUBKEY_LEN) + u64_field(tx->amount) + u64_field(tx->fee) +
                  u64_field(tx->nonce) + 2 + ALYS_SIG_LEN;
    return 1 + varint_len(body) + body;
}

/* ---------------------------------------------------------------- one tx */

/* Apply tx to the running state as state.c does, or leave it unchanged and
 * say why not. 0 applied; 1 skipped, and the sender's later txs cannot
 * follow (nonce gap, cannot pay); 2 skipped alone (nonce already used: the
 * head moved past it, the sender's next txs may still fit); -1 read error. */
static int try_tx(table_t *t, const uint8_t *proposer, const alys_tx_t *tx, builder_stats_t *st)
{
    acct_t *s = table_touch(t, tx->from);
    acct_t *r = s ? table_touch(t, tx->to) : NULL;
    acct_t *p = r ? table_touch(t, proposer) : NULL;
    if (!p)
        return -1;
    if (tx->nonce < s->now.nonce) {
        st->skipped_nonce++;
        return 2;
    }
    if (tx->nonce != s->now.nonce || s->now.nonce == UINT64_MAX) {
        st->skipped_nonce++;
        return 1;
    }
    if (tx->amount > UINT64_MAX - tx->fee || s->now.balance < tx->amount + tx->fee) {
        st->skipped_balance++;
        return 1;
    }
    alys_account_t s0 = s->now, r0 = r->now;
    s->now.balance -= tx->amount + tx->fee;
    s->now.nonce++;
    if (r->now.balance > UINT64_MAX - tx->amount)
        goto overflow;
    r->now.balance += tx->amount;
    if (p->now.balance > UINT64_MAX - tx->fee)
        goto overflow;
    p->now.balance += tx->fee;
    return 0;
overflow:
    /* Restore in reverse order of the changes (s, r may be one entry). */
    r->now = r0;
    s->now = s0;
    st->skipped_balance++;
    return 1;
}

/* ---------------------------------------------------------------- assembly */

static builder_result_t fail(char *err, size_t errlen, builder_result_t r, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return r;
}

static builder_result_t check_input(const builder_input_t *in, char *err, size_t errlen)
{
    const alys_genesis_t *g = in->genesis;
    if (!g || !in->head_state || g->authority_count == 0 || g->slot_duration_ms == 0)
        return fail(err, errlen, BUILD_BAD_INPUT, "no genesis, head state or authorities");
    if (in->max_txs > ALYS_MAX_TXS_PER_BLOCK || in->max_bytes > ALYS_MAX_BLOCK_BYTES ||
        in->max_bytes < BUILDER_HEADER_BOUND || in->tx_count > ALYS_MAX_TXS_PER_BLOCK)
        return fail(err, errlen, BUILD_BAD_INPUT, "block bounds outside the chain's limits");
    if (in->slot <= in->head.slot || in->head.height == UINT64_MAX)
        return fail(err, errlen, BUILD_BAD_INPUT, "slot not after the head's slot");
    uint64_t start;
    if (!aura_slot_start_ms(g, in->slot, &start))
        return fail(err, errlen, BUILD_BAD_INPUT, "slot start overflows");
    alys_hash_t root;
    alys_lattice_root(&in->head_state->lattice, root);
    if (memcmp(root, in->head.state_root, ALYS_HASH_LEN) != 0)
        return fail(err, errlen, BUILD_BAD_INPUT, "head state's lattice is not the head's state root");
    return BUILD_OK;
}

static void fill_header(const builder_input_t *in, const table_t *t, alys_block_t *b)
{
    const alys_genesis_t *g = in->genesis;
    alys_header_t *h = &b->header;
    memset(h, 0, sizeof *h);
    h->height = in->head.height + 1;
    memcpy(h->parent_hash, in->head_hash, ALYS_HASH_LEN);
    h->slot = in->slot;
    /* chain.c's timestamp rule: the second in which the slot starts
     * (check_input made sure slot * duration fits). */
    h->timestamp = g->genesis_time + in->slot * g->slot_duration_ms / 1000;
    h->proposer = aura_author(g, in->slot);
    alys_tx_root(b->txs, b->tx_count, h->tx_root);
    alys_lattice_t l = in->head_state->lattice;
    for (size_t i = 0; i <= t->mask; i++) {
        const acct_t *a = &t->slots[i];
        if (!a->used || memcmp(&a->before, &a->now, sizeof a->now) == 0)
            continue;
        alys_lattice_sub_account(&l, a->key, &a->before);
        alys_lattice_add_account(&l, a->key, &a->now);
    }
    alys_lattice_root(&l, h->state_root);
}

static int read_head(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out)
{
    return alys_state_view_get(ctx, pubkey, out);
}

/* The chain's own execution and linkage rules on the result. */
static builder_result_t self_check(const builder_input_t *in, const alys_block_t *b,
                                   builder_stats_t *st, char *err, size_t errlen)
{
    alys_verdict_t v;
    if (!alys_header_check_link(&in->head, in->head_hash, &b->header, in->slot, &v))
        return fail(err, errlen, BUILD_SELF_CHECK, v.detail);
    alys_overlay_t *ov = alys_overlay_new();
    if (!ov)
        return fail(err, errlen, BUILD_NO_MEMORY, "out of memory for the self-check");
    alys_state_view_t view = {.genesis = in->genesis,
                              .read = read_head,
                              .read_ctx = (void *) in->head_state,
                              .overlay = ov,
                              .lattice = in->head_state->lattice};
    bool ok = alys_execute_block(&view, b, &v);
    alys_overlay_destroy(&ov);
    if (!ok)
        return fail(err, errlen,
                    v.code == ALYS_BLOCK_INTERNAL_ERROR ? BUILD_STATE_ERROR : BUILD_SELF_CHECK,
                    v.detail);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (alys_block_encode(b, &buf, &len) != 0)
        return fail(err, errlen, BUILD_NO_MEMORY, "cannot encode the block");
    free(buf);
    st->encoded_bytes = len;
    if (len > in->max_bytes)
        return fail(err, errlen, BUILD_SELF_CHECK, "encoded block over max_bytes");
    return BUILD_OK;
}

/* Walk the candidates into b->txs (capacity in->max_txs). */
static builder_result_t select_txs(const builder_input_t *in, table_t *t, alys_block_t *b,
                                   builder_stats_t *st)
{
    const uint8_t *proposer = in->genesis->authorities[aura_author(in->genesis, in->slot)];
    size_t bytes = BUILDER_HEADER_BOUND;
    for (size_t i = 0; i < in->tx_count && b->tx_count < in->max_txs; i++) {
        const alys_tx_t *tx = &in->txs[i];
        st->considered++;
        acct_t *s = table_touch(t, tx->from);
        if (!s)
            break;
        if (s->dropped) {
            st->skipped_sender++;
            continue;
        }
        size_t need = builder_tx_encoded_bound(tx);
        if (need > in->max_bytes - bytes) {
            st->skipped_size++;
            s->dropped = true;
            continue;
        }
        int rc = try_tx(t, proposer, tx, st);
        if (rc < 0)
            break;
        if (rc == 1)
            s->dropped = true;
        if (rc > 0)
            continue;
        b->txs[b->tx_count++] = *tx;
        bytes += need;
    }
    st->included = b->tx_count;
    return t->read_failed ? BUILD_STATE_ERROR : BUILD_OK;
}

builder_result_t builder_assemble(const builder_input_t *in, alys_block_t *out,
                                  builder_stats_t *st_out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    builder_stats_t st_local;
    builder_stats_t *st = st_out ? st_out : &st_local;
    memset(st, 0, sizeof *st);
    builder_result_t r = check_input(in, err, errlen);
    if (r != BUILD_OK)
        return r;
    table_t t;
    if (table_init(&t, in->txs ? in->tx_count : 0, in->hash_seed, in->head_state) != 0)
        return fail(err, errlen, BUILD_NO_MEMORY, "out of memory for the account table");
    out->txs = calloc(in->max_txs ? in->max_txs : 1, sizeof *out->txs);
    if (!out->txs) {
        free(t.slots);
        return fail(err, errlen, BUILD_NO_MEMORY, "out of memory for the txs");
    }
    r = in->txs ? select_txs(in, &t, out, st) : BUILD_OK;
    if (r == BUILD_OK) {
        fill_header(in, &t, out);
        r = self_check(in, out, st, err, errlen);
    } else {
        fail(err, errlen, r,
             r == BUILD_NO_MEMORY ? "out of memory selecting txs" : "head state read failed");
    }
    free(t.slots);
    if (r != BUILD_OK)
        alys_block_clear(out);
    return r;
}

int builder_sign(const alys_genesis_t *g, const alys_fence_record_t *durable, alys_block_t *b,
                 const uint8_t seckey[ALYS_SECKEY_LEN])
{
    memset(b->header.signature, 0, ALYS_SIG_LEN);
    alys_hash_t h;
    alys_header_hash(&b->header, h);
    if (!durable || !durable->any || durable->slot != b->header.slot ||
        memcmp(durable->hash, h, ALYS_HASH_LEN) != 0)
        return -1;
    uint8_t pub[ALYS_PUBKEY_LEN];
    if (b->header.proposer >= g->authority_count || alys_keypair_pubkey(seckey, pub) != 0 ||
        memcmp(pub, g->authorities[b->header.proposer], ALYS_PUBKEY_LEN) != 0)
        return -1;
    if (alys_sign(seckey, h, b->header.signature) != 0) {
        memset(b->header.signature, 0, ALYS_SIG_LEN);
        return -1;
    }
    return 0;
}
