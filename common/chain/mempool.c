/*  mempool.c: see mempool.h for the rules.
 *
 *  Layout: a czmq zhashx from the sender key's hex form to a sender_t that
 *  holds the sender's pooled txs as one array in nonce order (always a
 *  contiguous run, so "the next nonce" is first + count and eviction takes
 *  the tail) and their summed cost (amount + fee), which the balance rule
 *  needs on every admission.
 */
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#include "mempool.h"

#define KEY_HEX_LEN (2 * ALYS_PUBKEY_LEN + 1)

typedef struct {
    uint8_t key[ALYS_PUBKEY_LEN];
    alys_tx_t *txs; /* nonce order, contiguous */
    uint32_t count;
    uint32_t cap;
    uint64_t cost;  /* sum of amount + fee; admission keeps it <= a balance */
    uint64_t bytes; /* sum of encoded sizes */
    bool gathered;  /* readmit: already counted */
} sender_t;

struct alys_mempool {
    alys_mempool_limits_t limits;
    zhashx_t *senders; /* hex key -> sender_t*, owned */
    size_t total;
    uint64_t bytes; /* sum of encoded sizes */
};

static const char *result_names[ALYS_MEMPOOL_RESULT_COUNT] = {
    [ALYS_MEMPOOL_ADDED] = "added",
    [ALYS_MEMPOOL_ADDED_EVICTED] = "added_evicted",
    [ALYS_MEMPOOL_DUPLICATE] = "duplicate",
    [ALYS_MEMPOOL_NONCE_TAKEN] = "nonce_taken",
    [ALYS_MEMPOOL_BAD_SIGNATURE] = "bad_signature",
    [ALYS_MEMPOOL_NONCE_TOO_LOW] = "nonce_too_low",
    [ALYS_MEMPOOL_NONCE_GAP] = "nonce_gap",
    [ALYS_MEMPOOL_INSUFFICIENT_BALANCE] = "insufficient_balance",
    [ALYS_MEMPOOL_SENDER_FULL] = "sender_full",
    [ALYS_MEMPOOL_POOL_FULL] = "pool_full",
    [ALYS_MEMPOOL_STATE_ERROR] = "state_error",
    [ALYS_MEMPOOL_NO_MEMORY] = "no_memory",
};

const char *alys_mempool_result_name(alys_mempool_result_t r)
{
    if ((unsigned) r >= ALYS_MEMPOOL_RESULT_COUNT)
        return "unknown";
    return result_names[r];
}

/* ---------------------------------------------------------------- senders */

static void sender_free(void **item)
{
    sender_t *s = *item;
    if (s) {
        free(s->txs);
        free(s);
    }
    *item = NULL;
}

static void key_hex(const uint8_t key[ALYS_PUBKEY_LEN], char out[KEY_HEX_LEN])
{
    alys_hex(key, ALYS_PUBKEY_LEN, out);
}

static sender_t *sender_find(const alys_mempool_t *self, const uint8_t key[ALYS_PUBKEY_LEN])
{
    char hex[KEY_HEX_LEN];
    key_hex(key, hex);
    return zhashx_lookup(self->senders, hex);
}

static sender_t *sender_get_or_add(alys_mempool_t *self, const uint8_t key[ALYS_PUBKEY_LEN])
{
    sender_t *s = sender_find(self, key);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    memcpy(s->key, key, ALYS_PUBKEY_LEN);
    char hex[KEY_HEX_LEN];
    key_hex(key, hex);
    if (zhashx_insert(self->senders, hex, s) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

static void sender_remove(alys_mempool_t *self, sender_t *s)
{
    char hex[KEY_HEX_LEN];
    key_hex(s->key, hex);
    self->total -= s->count;
    self->bytes -= s->bytes;
    zhashx_delete(self->senders, hex); /* frees s */
}

static uint64_t tx_cost(const alys_tx_t *tx)
{
    /* Admission refuses amount + fee overflowing, so this never saturates
     * for a pooled tx. */
    return tx->amount > UINT64_MAX - tx->fee ? UINT64_MAX : tx->amount + tx->fee;
}

/* Drop the tail tx of s (eviction); frees s when it empties. */
static void sender_pop_tail(alys_mempool_t *self, sender_t *s)
{
    s->count--;
    s->cost -= tx_cost(&s->txs[s->count]);
    uint64_t size = alys_tx_encoded_size(&s->txs[s->count]);
    s->bytes -= size;
    self->bytes -= size;
    self->total--;
    if (s->count == 0)
        sender_remove(self, s); /* subtracts s->count, now 0 */
}

/* Drop the first k txs of s; frees s when it empties. */
static void sender_drop_head(alys_mempool_t *self, sender_t *s, uint32_t k)
{
    for (uint32_t i = 0; i < k; i++) {
        uint64_t size = alys_tx_encoded_size(&s->txs[i]);
        s->cost -= tx_cost(&s->txs[i]);
        s->bytes -= size;
        self->bytes -= size;
    }
    memmove(s->txs, s->txs + k, (size_t) (s->count - k) * sizeof *s->txs);
    s->count -= k;
    self->total -= k;
    if (s->count == 0)
        sender_remove(self, s);
}

/* Room for one more tx (so the append after an eviction cannot fail). */
static int sender_reserve(sender_t *s)
{
    if (s->count < s->cap)
        return 0;
    uint32_t cap = s->cap ? 2 * s->cap : 4;
    alys_tx_t *txs = realloc(s->txs, (size_t) cap * sizeof *txs);
    if (!txs)
        return -1;
    s->txs = txs;
    s->cap = cap;
    return 0;
}

static void sender_append(alys_mempool_t *self, sender_t *s, const alys_tx_t *tx, uint64_t size)
{
    s->txs[s->count++] = *tx;
    s->cost += tx_cost(tx);
    s->bytes += size;
    self->bytes += size;
    self->total++;
}

/* ---------------------------------------------------------------- life */

alys_mempool_t *alys_mempool_new(const alys_mempool_limits_t *limits)
{
    if (!limits || limits->max_txs == 0 || limits->max_txs > ALYS_MEMPOOL_MAX_TXS ||
        limits->max_per_sender == 0 || limits->max_per_sender > ALYS_MEMPOOL_MAX_PER_SENDER)
        return NULL;
    alys_mempool_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->limits = *limits;
    if (self->limits.max_bytes == 0)
        self->limits.max_bytes = (uint64_t) limits->max_txs * ALYS_TX_MAX_BYTES;
    if (self->limits.max_sender_bytes == 0)
        self->limits.max_sender_bytes = (uint64_t) limits->max_per_sender * ALYS_TX_MAX_BYTES;
    self->senders = zhashx_new();
    if (!self->senders) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->senders, sender_free);
    return self;
}

void alys_mempool_destroy(alys_mempool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    alys_mempool_t *self = *self_p;
    zhashx_destroy(&self->senders);
    free(self);
    *self_p = NULL;
}

size_t alys_mempool_size(const alys_mempool_t *self)
{
    return self->total;
}

uint64_t alys_mempool_bytes(const alys_mempool_t *self)
{
    return self->bytes;
}

size_t alys_mempool_senders(const alys_mempool_t *self)
{
    return zhashx_size(self->senders);
}

size_t alys_mempool_sender_count(const alys_mempool_t *self, const uint8_t from[ALYS_PUBKEY_LEN])
{
    const sender_t *s = sender_find(self, from);
    return s ? s->count : 0;
}

static const alys_tx_t *sender_tx(const sender_t *s, uint64_t nonce)
{
    if (!s || s->count == 0 || nonce < s->txs[0].nonce || nonce - s->txs[0].nonce >= s->count)
        return NULL;
    return &s->txs[nonce - s->txs[0].nonce];
}

bool alys_mempool_get(const alys_mempool_t *self, const uint8_t from[ALYS_PUBKEY_LEN],
                      uint64_t nonce, alys_tx_t *out)
{
    const alys_tx_t *tx = sender_tx(sender_find(self, from), nonce);
    if (tx && out)
        *out = *tx;
    return tx != NULL;
}

/* ---------------------------------------------------------------- admission */

static bool same_tx(const alys_tx_t *a, const alys_tx_t *b)
{
    return memcmp(a->from, b->from, ALYS_PUBKEY_LEN) == 0 &&
           memcmp(a->to, b->to, ALYS_PUBKEY_LEN) == 0 && a->amount == b->amount && a->fee == b->fee &&
           a->nonce == b->nonce && memcmp(a->signature, b->signature, ALYS_SIG_LEN) == 0;
}

static bool signature_ok(const alys_tx_t *tx)
{
    alys_hash_t h;
    alys_tx_hash(tx, h);
    return alys_verify(tx->from, h, tx->signature);
}

/* Nonce and balance against the view and what the sender already pools. */
static alys_mempool_result_t check_account(const sender_t *s, const alys_tx_t *tx,
                                           const alys_state_view_t *view)
{
    alys_account_t acct;
    if (alys_state_view_get(view, tx->from, &acct) < 0)
        return ALYS_MEMPOOL_STATE_ERROR;
    if (tx->nonce < acct.nonce)
        return ALYS_MEMPOOL_NONCE_TOO_LOW;
    uint64_t next = (s && s->count) ? s->txs[0].nonce + s->count : acct.nonce;
    if (tx->nonce < next)
        return ALYS_MEMPOOL_NONCE_TOO_LOW; /* unreachable: taken/duplicate caught first */
    if (tx->nonce > next)
        return ALYS_MEMPOOL_NONCE_GAP;
    uint64_t pooled = s ? s->cost : 0;
    if (tx->amount > UINT64_MAX - tx->fee)
        return ALYS_MEMPOOL_INSUFFICIENT_BALANCE;
    uint64_t cost = tx->amount + tx->fee;
    if (pooled > acct.balance || cost > acct.balance - pooled)
        return ALYS_MEMPOOL_INSUFFICIENT_BALANCE;
    return ALYS_MEMPOOL_ADDED;
}

/* Is tail tx a a better eviction victim than b? Lowest fee, then highest
 * nonce, then greatest sender key. */
static bool worse(const alys_tx_t *a, const alys_tx_t *b)
{
    if (a->fee != b->fee)
        return a->fee < b->fee;
    if (a->nonce != b->nonce)
        return a->nonce > b->nonce;
    return memcmp(a->from, b->from, ALYS_PUBKEY_LEN) > 0;
}

/* The tail tx of the eviction victim, other than except's, as if skip_n
 * txs of skip had gone already; NULL if none. *who gets its sender. */
static const alys_tx_t *find_victim(alys_mempool_t *self, const uint8_t except[ALYS_PUBKEY_LEN],
                                    const sender_t *skip, uint32_t skip_n, sender_t **who)
{
    const alys_tx_t *best = NULL;
    for (sender_t *s = zhashx_first(self->senders); s; s = zhashx_next(self->senders)) {
        uint32_t c = s->count - (s == skip ? skip_n : 0);
        if (c == 0 || memcmp(s->key, except, ALYS_PUBKEY_LEN) == 0)
            continue;
        if (!best || worse(&s->txs[c - 1], best)) {
            best = &s->txs[c - 1];
            *who = s;
        }
    }
    return best;
}

static bool fits(const alys_mempool_t *self, size_t txs, uint64_t bytes, uint64_t size)
{
    return txs < self->limits.max_txs && bytes + size <= self->limits.max_bytes;
}

/* Plan the evictions that make room for tx (size bytes) without changing
 * anything: up to ALYS_MEMPOOL_MAX_VICTIMS tails, each cheaper than tx.
 * Returns how many (0: room already), or -1 when the pool stays full. */
static int plan_victims(alys_mempool_t *self, const alys_tx_t *tx, uint64_t size,
                        sender_t *who[ALYS_MEMPOOL_MAX_VICTIMS])
{
    size_t txs = self->total;
    uint64_t bytes = self->bytes;
    int n = 0;
    while (!fits(self, txs, bytes, size)) {
        if (n == ALYS_MEMPOOL_MAX_VICTIMS)
            return -1;
        /* Only the first victim's sender can have a tail planned already. */
        const alys_tx_t *v = find_victim(self, tx->from, n ? who[0] : NULL, n ? 1 : 0, &who[n]);
        if (!v || v->fee >= tx->fee)
            return -1;
        txs--;
        bytes -= alys_tx_encoded_size(v);
        n++;
    }
    return n;
}

alys_mempool_result_t alys_mempool_add(alys_mempool_t *self, const alys_tx_t *tx,
                                       const alys_state_view_t *view, alys_tx_t *evicted)
{
    sender_t *s = sender_find(self, tx->from);
    const alys_tx_t *have = sender_tx(s, tx->nonce);
    if (have)
        return same_tx(have, tx) ? ALYS_MEMPOOL_DUPLICATE : ALYS_MEMPOOL_NONCE_TAKEN;
    if (!signature_ok(tx))
        return ALYS_MEMPOOL_BAD_SIGNATURE;
    alys_mempool_result_t r = check_account(s, tx, view);
    if (r != ALYS_MEMPOOL_ADDED)
        return r;
    uint64_t size = alys_tx_encoded_size(tx);
    if ((s && s->count >= self->limits.max_per_sender) ||
        (s ? s->bytes : 0) + size > self->limits.max_sender_bytes)
        return ALYS_MEMPOOL_SENDER_FULL;
    sender_t *victims[ALYS_MEMPOOL_MAX_VICTIMS];
    int nv = plan_victims(self, tx, size, victims);
    if (nv < 0)
        return ALYS_MEMPOOL_POOL_FULL;
    /* Allocate before evicting: out of memory must not cost the victims. */
    s = sender_get_or_add(self, tx->from);
    if (!s || sender_reserve(s) != 0) {
        if (s && s->count == 0)
            sender_remove(self, s);
        return ALYS_MEMPOOL_NO_MEMORY;
    }
    for (int i = 0; i < nv; i++) {
        /* Never s (find_victim skipped tx->from); a victim sender freed by
         * its pop is not used again: only victims[0] can repeat, and then
         * it had two txs. */
        if (i == 0 && evicted)
            *evicted = victims[i]->txs[victims[i]->count - 1];
        sender_pop_tail(self, victims[i]);
        r = ALYS_MEMPOOL_ADDED_EVICTED;
    }
    sender_append(self, s, tx, size);
    return r;
}

/* ---------------------------------------------------------------- commit, undo */

/* Keep the longest prefix of s's txs that still starts at the account's
 * nonce and that its balance covers; drop the rest (frees s if emptied).
 * Returns the number dropped. A read error keeps everything (the builder
 * checks again against the head). */
static size_t sender_revalidate(alys_mempool_t *self, sender_t *s, const alys_state_view_t *view)
{
    alys_account_t a;
    if (alys_state_view_get(view, s->key, &a) < 0)
        return 0;
    uint32_t keep = 0;
    uint64_t cost = 0;
    if (s->txs[0].nonce == a.nonce)
        for (; keep < s->count; keep++) {
            uint64_t c = tx_cost(&s->txs[keep]);
            if (cost > a.balance || c > a.balance - cost)
                break;
            cost += c;
        }
    size_t dropped = s->count - keep;
    if (keep == 0) {
        sender_remove(self, s); /* frees s, subtracts its count */
        return dropped;
    }
    while (s->count > keep)
        sender_pop_tail(self, s); /* keep > 0: s stays */
    return dropped;
}

size_t alys_mempool_on_block(alys_mempool_t *self, const alys_block_t *b, const alys_state_view_t *view)
{
    size_t removed = 0;
    for (uint32_t i = 0; i < b->tx_count; i++) {
        const alys_tx_t *tx = &b->txs[i];
        sender_t *s = sender_find(self, tx->from);
        if (!s || tx->nonce < s->txs[0].nonce)
            continue;
        uint64_t upto = tx->nonce - s->txs[0].nonce + 1;
        uint32_t k = upto >= s->count ? s->count : (uint32_t) upto;
        removed += k;
        sender_drop_head(self, s, k);
    }
    if (!view)
        return removed;
    for (uint32_t i = 0; i < b->tx_count; i++) {
        sender_t *s = sender_find(self, b->txs[i].from);
        if (s)
            removed += sender_revalidate(self, s, view);
    }
    return removed;
}

size_t alys_mempool_revalidate(alys_mempool_t *self, const alys_state_view_t *view)
{
    /* Collect first: revalidation may delete senders, which a zhashx
     * iteration must not see. */
    size_t n = zhashx_size(self->senders), k = 0, removed = 0;
    sender_t **all = calloc(n ? n : 1, sizeof *all);
    if (!all)
        return 0;
    for (sender_t *s = zhashx_first(self->senders); s; s = zhashx_next(self->senders))
        all[k++] = s;
    for (size_t i = 0; i < k; i++)
        removed += sender_revalidate(self, all[i], view);
    free(all);
    return removed;
}

typedef struct {
    alys_tx_t tx;
    bool undone; /* came from an undone block (counts in the result) */
} readmit_t;

static int readmit_cmp(const void *pa, const void *pb)
{
    const readmit_t *a = pa, *b = pb;
    int c = memcmp(a->tx.from, b->tx.from, ALYS_PUBKEY_LEN);
    if (c)
        return c;
    if (a->tx.nonce != b->tx.nonce)
        return a->tx.nonce < b->tx.nonce ? -1 : 1;
    return (int) b->undone - (int) a->undone; /* the undone copy first */
}

/* Mark (or unmark) the pooled senders of the undone txs; returns the
 * undone txs plus those senders' pooled txs, each sender counted once. */
static size_t mark_senders(alys_mempool_t *self, const alys_block_t *blocks, size_t nb, bool mark)
{
    size_t n = 0;
    for (size_t i = 0; i < nb; i++) {
        n += blocks[i].tx_count;
        for (uint32_t j = 0; j < blocks[i].tx_count; j++) {
            sender_t *s = sender_find(self, blocks[i].txs[j].from);
            if (s && s->gathered != mark) {
                s->gathered = mark;
                n += s->count;
            }
        }
    }
    return n;
}

/* Undone txs plus the pooled txs of their senders (whose senders are then
 * removed from the pool), into a malloc'ed array; *n its length. The
 * caller bounds the undone blocks (max_reorg_depth); the pooled part is
 * bounded by the pool's own bound. */
static readmit_t *gather(alys_mempool_t *self, const alys_block_t *blocks, size_t nb, size_t *n)
{
    size_t cap = mark_senders(self, blocks, nb, true);
    readmit_t *all = calloc(cap ? cap : 1, sizeof *all);
    if (!all) {
        mark_senders(self, blocks, nb, false);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < nb; i++)
        for (uint32_t j = 0; j < blocks[i].tx_count; j++) {
            const alys_tx_t *tx = &blocks[i].txs[j];
            all[k++] = (readmit_t){.tx = *tx, .undone = true};
            sender_t *s = sender_find(self, tx->from);
            if (!s)
                continue;
            for (uint32_t t = 0; t < s->count; t++)
                all[k++] = (readmit_t){.tx = s->txs[t], .undone = false};
            sender_remove(self, s);
        }
    *n = k;
    return all;
}

long alys_mempool_readmit(alys_mempool_t *self, const alys_block_t *blocks, size_t n,
                          const alys_state_view_t *view)
{
    size_t count = 0;
    readmit_t *all = gather(self, blocks, n, &count);
    if (!all)
        return -1;
    qsort(all, count, sizeof *all, readmit_cmp);
    long back = 0;
    bool oom = false;
    for (size_t i = 0; i < count; i++) {
        alys_mempool_result_t r = alys_mempool_add(self, &all[i].tx, view, NULL);
        if (r == ALYS_MEMPOOL_NO_MEMORY)
            oom = true;
        if (alys_mempool_admitted(r) && all[i].undone)
            back++;
    }
    free(all);
    return oom ? -1 : back;
}

/* ---------------------------------------------------------------- selection */

typedef struct {
    const sender_t *s;
    uint32_t cur;
} cursor_t;

struct alys_mempool_iter {
    cursor_t *heap; /* max-heap by the fee of each cursor's tx */
    size_t n;
    cursor_t pending; /* last returned; pushed back (cur + 1) on next() */
    bool has_pending;
};

static bool before(const cursor_t *a, const cursor_t *b)
{
    const alys_tx_t *x = &a->s->txs[a->cur], *y = &b->s->txs[b->cur];
    if (x->fee != y->fee)
        return x->fee > y->fee;
    return memcmp(a->s->key, b->s->key, ALYS_PUBKEY_LEN) < 0;
}

static void heap_swap(cursor_t *h, size_t i, size_t j)
{
    cursor_t t = h[i];
    h[i] = h[j];
    h[j] = t;
}

static void heap_up(cursor_t *h, size_t i)
{
    while (i > 0 && before(&h[i], &h[(i - 1) / 2])) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(cursor_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && before(&h[l], &h[m]))
            m = l;
        if (r < n && before(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

alys_mempool_iter_t *alys_mempool_iter_new(const alys_mempool_t *self)
{
    alys_mempool_iter_t *it = calloc(1, sizeof *it);
    size_t ns = zhashx_size(self->senders);
    if (!it || !(it->heap = calloc(ns ? ns : 1, sizeof *it->heap))) {
        free(it);
        return NULL;
    }
    /* zhashx iteration needs a non-const table; it moves only its cursor. */
    zhashx_t *senders = self->senders;
    for (sender_t *s = zhashx_first(senders); s; s = zhashx_next(senders)) {
        it->heap[it->n] = (cursor_t){.s = s, .cur = 0};
        heap_up(it->heap, it->n++);
    }
    return it;
}

void alys_mempool_iter_destroy(alys_mempool_iter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->heap);
    free(*self_p);
    *self_p = NULL;
}

const alys_tx_t *alys_mempool_iter_next(alys_mempool_iter_t *self)
{
    if (self->has_pending) {
        self->has_pending = false;
        cursor_t c = self->pending;
        if (++c.cur < c.s->count) {
            self->heap[self->n] = c;
            heap_up(self->heap, self->n++);
        }
    }
    if (self->n == 0)
        return NULL;
    cursor_t top = self->heap[0];
    self->heap[0] = self->heap[--self->n];
    heap_down(self->heap, self->n, 0);
    self->pending = top;
    self->has_pending = true;
    return &top.s->txs[top.cur];
}

void alys_mempool_iter_drop_sender(alys_mempool_iter_t *self)
{
    self->has_pending = false;
}

size_t alys_mempool_select_bounded(const alys_mempool_t *self, alys_tx_t *out, size_t max_txs,
                                   uint64_t max_bytes, uint64_t *bytes)
{
    uint64_t used = 0;
    size_t n = 0;
    alys_mempool_iter_t *it = alys_mempool_iter_new(self);
    const alys_tx_t *tx;
    while (it && n < max_txs && (tx = alys_mempool_iter_next(it))) {
        uint64_t size = alys_tx_encoded_size(tx);
        if (size > max_bytes - used) {
            alys_mempool_iter_drop_sender(it);
            continue;
        }
        used += size;
        out[n++] = *tx;
    }
    alys_mempool_iter_destroy(&it);
    if (bytes)
        *bytes = used;
    return n;
}

size_t alys_mempool_select(const alys_mempool_t *self, alys_tx_t *out, size_t max)
{
    alys_mempool_iter_t *it = alys_mempool_iter_new(self);
    if (!it)
        return 0;
    size_t n = 0;
    const alys_tx_t *tx;
    while (n < max && (tx = alys_mempool_iter_next(it)))
        out[n++] = *tx;
    alys_mempool_iter_destroy(&it);
    return n;
}
