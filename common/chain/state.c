/*  state.c: the lattice-hash state commitment and sequential execution.
 *
 *  Lattice. An account's vector is the ChaCha20 keystream (zero IV) keyed by
 *  SHA-256("alys/account/v1" || pubkey[32] || balance u64 le || nonce u64 le),
 *  2048 bytes read as 1024 little-endian
 *  uint16 lanes. The state lattice is the lane-wise sum mod 2^16 of all
 *  present accounts' vectors; the state root is SHA-256 of the lattice's
 *  2048 bytes (lanes little-endian). Addition commutes, so the root depends on
 *  the set of accounts only, never on the order of updates. An account with
 *  balance 0 and nonce 0 is absent: adding or subtracting it is a no-op, so
 *  "never seen" and "emptied" commit the same way.
 *
 *  Execution of a block, in order, per tx:
 *    1. nonce == sender's next nonce                  else bad_nonce
 *    2. amount + fee fits in 64 bits and <= balance   else insufficient_balance
 *    3. sender: balance -= amount + fee, nonce += 1
 *    4. recipient: balance += amount    (a self-transfer sees step 3 first)
 *    5. the slot's proposer (genesis authority key): balance += fee, at once,
 *       so a proposer can spend in a later tx a fee earned earlier in the block
 *  A credit that overflows 64 bits is malformed (no honest chain gets there).
 *  Then the lattice is updated once per touched account (sub its value at
 *  block start, add its value at block end) and the root compared with the
 *  header's state_root.
 *
 *  Atomicity: every account a block touches is recorded once in an undo list
 *  (its overlay slot, whether the block inserted it, its value at block
 *  start). The lattice is updated in a copy. Any failure restores the values,
 *  removes inserted entries (newest first) and drops the copy, so the view is
 *  bit-for-bit what it was. Capacity for the worst case (2 accounts per tx
 *  plus the proposer) is reserved before the first change, so nothing is
 *  allocated, and nothing can fail to allocate, half-way through a block.
 *
 *  Vector cache. Each changed account costs two vectors per block: its
 *  value at block start (subtracted) and at block end (added). The start
 *  value is, most often, the end value of the last block that changed the
 *  account, whose vector was just computed. The overlay keeps a bounded
 *  memo of vectors (VCACHE_SETS x 2 ways, 4 MiB, allocated on the overlay's
 *  second block; keyed by the full account, checked on every hit) so that second
 *  computation is mostly a copy (accounts a block creates are not cached:
 *  most are one-shot recipients). It is a pure function's memo: rollback and
 *  reset leave it valid, and a miss only costs the computation.
 *
 *  Overlay. Entries live in a dense array in first-touch order (deterministic
 *  iteration, cheap reset) indexed by an open-addressing table (linear
 *  probing, load <= 1/2). The table is keyed by a keyed SipHash of the full
 *  key, not by the key's first bytes: recipients are arbitrary 32-byte
 *  strings chosen by whoever writes txs, and a fixed hash would let them
 *  build blocks whose accounts all collide.
 */
#include <stdlib.h>
#include <string.h>

#include "chain_internal.h"
#include "state.h"

#define ACCOUNT_TAG     "alys/account/v1"
#define ACCOUNT_TAG_LEN (sizeof(ACCOUNT_TAG) - 1)
#define MIN_SLOTS       1024
#define VCACHE_SETS     1024 /* x 2 ways x 2 KiB vectors */

/* On a little-endian host the lanes' in-memory bytes are the serialized
 * form: the keystream lands in the lanes directly, no conversion. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LANES_ARE_LE 1
#else
#define LANES_ARE_LE 0
#endif

/* ---- lattice ---- */

void alys_lattice_zero(alys_lattice_t *l)
{
    memset(l, 0, sizeof *l);
}

static bool account_is_zero(const alys_account_t *a)
{
    return a->balance == 0 && a->nonce == 0;
}

static void account_vector(const uint8_t pubkey[ALYS_PUBKEY_LEN], const alys_account_t *a,
                           uint16_t lanes[ALYS_LATTICE_LANES])
{
    uint8_t in[ACCOUNT_TAG_LEN + ALYS_PUBKEY_LEN + 16];
    memcpy(in, ACCOUNT_TAG, ACCOUNT_TAG_LEN);
    memcpy(in + ACCOUNT_TAG_LEN, pubkey, ALYS_PUBKEY_LEN);
    achain_put_le64(in + ACCOUNT_TAG_LEN + ALYS_PUBKEY_LEN, a->balance);
    achain_put_le64(in + ACCOUNT_TAG_LEN + ALYS_PUBKEY_LEN + 8, a->nonce);
#if LANES_ARE_LE
    achain_expand(in, sizeof in, (uint8_t *) lanes, ALYS_LATTICE_BYTES);
#else
    uint8_t out[ALYS_LATTICE_BYTES];
    achain_expand(in, sizeof in, out, sizeof out);
    for (int i = 0; i < ALYS_LATTICE_LANES; i++)
        lanes[i] = (uint16_t) (out[2 * i] | out[2 * i + 1] << 8);
#endif
}

/* restrict: a vector never is the lattice; it lets -O2 vectorize these
 * (one 2 KiB pass per changed account and block). */
static void lanes_add(alys_lattice_t *restrict l, const uint16_t *restrict v)
{
    for (int i = 0; i < ALYS_LATTICE_LANES; i++)
        l->lane[i] = (uint16_t) (l->lane[i] + v[i]);
}

static void lanes_sub(alys_lattice_t *restrict l, const uint16_t *restrict v)
{
    for (int i = 0; i < ALYS_LATTICE_LANES; i++)
        l->lane[i] = (uint16_t) (l->lane[i] - v[i]);
}

void alys_lattice_add_account(alys_lattice_t *l, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                              const alys_account_t *a)
{
    if (account_is_zero(a))
        return;
    uint16_t v[ALYS_LATTICE_LANES];
    account_vector(pubkey, a, v);
    lanes_add(l, v);
}

void alys_lattice_sub_account(alys_lattice_t *l, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                              const alys_account_t *a)
{
    if (account_is_zero(a))
        return;
    uint16_t v[ALYS_LATTICE_LANES];
    account_vector(pubkey, a, v);
    lanes_sub(l, v);
}

void alys_lattice_to_bytes(const alys_lattice_t *l, uint8_t out[ALYS_LATTICE_BYTES])
{
#if LANES_ARE_LE
    memcpy(out, l->lane, ALYS_LATTICE_BYTES);
#else
    for (int i = 0; i < ALYS_LATTICE_LANES; i++) {
        out[2 * i] = (uint8_t) l->lane[i];
        out[2 * i + 1] = (uint8_t) (l->lane[i] >> 8);
    }
#endif
}

void alys_lattice_from_bytes(alys_lattice_t *l, const uint8_t in[ALYS_LATTICE_BYTES])
{
#if LANES_ARE_LE
    memcpy(l->lane, in, ALYS_LATTICE_BYTES);
#else
    for (int i = 0; i < ALYS_LATTICE_LANES; i++)
        l->lane[i] = (uint16_t) (in[2 * i] | in[2 * i + 1] << 8);
#endif
}

void alys_lattice_root(const alys_lattice_t *l, alys_hash_t out)
{
#if LANES_ARE_LE
    alys_sha256(l->lane, ALYS_LATTICE_BYTES, out);
#else
    uint8_t bytes[ALYS_LATTICE_BYTES];
    alys_lattice_to_bytes(l, bytes);
    alys_sha256(bytes, sizeof bytes, out);
#endif
}

void alys_lattice_from_genesis(alys_lattice_t *l, const alys_genesis_t *g)
{
    alys_lattice_zero(l);
    for (uint32_t i = 0; i < g->balance_count; i++) {
        alys_account_t a = {.balance = g->balances[i].balance, .nonce = 0};
        alys_lattice_add_account(l, g->balances[i].pubkey, &a);
    }
}

/* ---- overlay ---- */

typedef struct {
    uint8_t key[ALYS_PUBKEY_LEN];
    alys_account_t now;
    alys_account_t before; /* committed value when first touched */
    uint64_t epoch;        /* block that last recorded it in the undo list */
    uint64_t hash;
} entry_t;

typedef struct {
    uint32_t idx1;    /* entry index + 1; 0 = empty */
    uint32_t hash_lo; /* skips most key compares on collisions */
} slot_t;

typedef struct {
    uint32_t idx;
    bool inserted;        /* the block created the entry */
    alys_account_t start; /* value at block start */
} undo_t;

typedef struct {
    uint8_t key[ALYS_PUBKEY_LEN];
    alys_account_t a;
    bool used;
    uint16_t lanes[ALYS_LATTICE_LANES];
} vslot_t;

typedef struct {
    vslot_t way[2];
    uint8_t victim; /* the way the next miss overwrites */
} vset_t;

struct alys_overlay {
    vset_t *vcache;     /* VCACHE_SETS; NULL until the first block */
    bool vcache_failed; /* could not allocate: compute every vector */
    entry_t *entries;
    size_t count, entry_cap;
    slot_t *slots;
    size_t mask; /* slot count - 1, slot count a power of two */
    undo_t *undo;
    size_t undo_len, undo_cap;
    uint64_t epoch;
};

alys_overlay_t *alys_overlay_new(void)
{
    alys_overlay_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->slots = calloc(MIN_SLOTS, sizeof *self->slots);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    self->mask = MIN_SLOTS - 1;
    return self;
}

void alys_overlay_destroy(alys_overlay_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    alys_overlay_t *self = *self_p;
    free(self->vcache);
    free(self->entries);
    free(self->slots);
    free(self->undo);
    free(self);
    *self_p = NULL;
}

/* Keeps the capacity: the next batch will need about as much. */
void alys_overlay_reset(alys_overlay_t *self)
{
    memset(self->slots, 0, (self->mask + 1) * sizeof *self->slots);
    self->count = 0;
    self->undo_len = 0;
}

size_t alys_overlay_size(const alys_overlay_t *self)
{
    return self->count;
}

int alys_overlay_foreach(const alys_overlay_t *self, alys_overlay_visit_fn fn, void *ctx)
{
    for (size_t i = 0; i < self->count; i++) {
        const entry_t *e = &self->entries[i];
        int rc = fn(ctx, e->key, &e->now, &e->before);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Slot holding key, or the empty slot where it would go. */
static slot_t *probe(const alys_overlay_t *self, const uint8_t *key, uint64_t h)
{
    size_t i = (size_t) h & self->mask;
    for (;; i = (i + 1) & self->mask) {
        slot_t *s = &self->slots[i];
        if (s->idx1 == 0)
            return s;
        const entry_t *e = &self->entries[s->idx1 - 1];
        if (s->hash_lo == (uint32_t) h && memcmp(e->key, key, ALYS_PUBKEY_LEN) == 0)
            return s;
    }
}

static entry_t *find(const alys_overlay_t *self, const uint8_t *key, uint64_t h)
{
    slot_t *s = probe(self, key, h);
    return s->idx1 ? &self->entries[s->idx1 - 1] : NULL;
}

int alys_overlay_get(const alys_overlay_t *self, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                     alys_account_t *now)
{
    const entry_t *e = find(self, pubkey, achain_key_hash(pubkey));
    if (!e)
        return 0;
    *now = e->now;
    return 1;
}

static int grow_slots(alys_overlay_t *self, size_t want_entries)
{
    size_t n = self->mask + 1;
    if (want_entries <= n / 2)
        return 0;
    while (want_entries > n / 2)
        n *= 2;
    slot_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    free(self->slots);
    self->slots = slots;
    self->mask = n - 1;
    for (size_t i = 0; i < self->count; i++) {
        slot_t *s = probe(self, self->entries[i].key, self->entries[i].hash);
        s->idx1 = (uint32_t) (i + 1);
        s->hash_lo = (uint32_t) self->entries[i].hash;
    }
    return 0;
}

static int grow_array(void **p, size_t *cap, size_t want, size_t elem)
{
    if (want <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < want)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Room for `extra` more entries and undo records without allocating. */
static int reserve(alys_overlay_t *self, size_t extra)
{
    size_t want = self->count + extra;
    if (want > UINT32_MAX - 1)
        return -1;
    if (grow_array((void **) &self->entries, &self->entry_cap, want, sizeof(entry_t)) != 0 ||
        grow_array((void **) &self->undo, &self->undo_cap, extra, sizeof(undo_t)) != 0)
        return -1;
    return grow_slots(self, want);
}

static entry_t *insert(alys_overlay_t *self, slot_t *s, const uint8_t *key, uint64_t h,
                       const alys_account_t *committed)
{
    entry_t *e = &self->entries[self->count++];
    memcpy(e->key, key, ALYS_PUBKEY_LEN);
    e->now = e->before = *committed;
    e->hash = h;
    e->epoch = self->epoch;
    s->idx1 = (uint32_t) self->count;
    s->hash_lo = (uint32_t) h;
    return e;
}

/* Removes the newest entry. Backward-shift deletion keeps every other key
 * reachable from its home slot without tombstones. (While entries go newest
 * first and no rehash happened since they came, simply clearing the slot
 * would do too; the shift keeps this correct without relying on that.) */
static void pop_newest(alys_overlay_t *self)
{
    entry_t *e = &self->entries[self->count - 1];
    size_t i = (size_t) (probe(self, e->key, e->hash) - self->slots);
    self->count--;
    for (size_t j = (i + 1) & self->mask; self->slots[j].idx1; j = (j + 1) & self->mask) {
        size_t home = (size_t) self->entries[self->slots[j].idx1 - 1].hash & self->mask;
        bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        self->slots[i] = self->slots[j];
        i = j;
    }
    self->slots[i].idx1 = 0;
}

/* ---- execution ---- */

typedef struct {
    alys_state_view_t *view;
    alys_overlay_t *o;
    alys_verdict_t *v;
    const uint8_t *proposer_key;
} exec_t;

static int read_committed(const alys_state_view_t *view, const uint8_t *key, alys_account_t *out)
{
    memset(out, 0, sizeof *out);
    if (!view->read)
        return 0;
    int rc = view->read(view->read_ctx, key, out);
    if (rc == 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int alys_state_view_get(const alys_state_view_t *view, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                        alys_account_t *out)
{
    if (view->overlay && alys_overlay_get(view->overlay, pubkey, out))
        return account_is_zero(out) ? 0 : 1;
    int rc = read_committed(view, pubkey, out);
    if (rc == 1 && account_is_zero(out))
        return 0;
    return rc;
}

int alys_state_view_restore(alys_state_view_t *view, const uint8_t pubkey[ALYS_PUBKEY_LEN],
                            const alys_account_t *value)
{
    alys_overlay_t *o = view->overlay;
    if (!o || reserve(o, 1) != 0)
        return -1;
    uint64_t h = achain_key_hash(pubkey);
    slot_t *s = probe(o, pubkey, h);
    entry_t *e;
    if (s->idx1) {
        e = &o->entries[s->idx1 - 1];
    } else {
        alys_account_t committed;
        if (read_committed(view, pubkey, &committed) < 0)
            return -1;
        /* Not in the block undo list: no block is running, and the next
         * block's first touch records the restored value as its start. */
        e = insert(o, s, pubkey, h, &committed);
    }
    alys_lattice_sub_account(&view->lattice, pubkey, &e->now);
    alys_lattice_add_account(&view->lattice, pubkey, value);
    e->now = *value;
    return 0;
}

/* The account's overlay entry, recording it in the undo list the first time
 * this block touches it. NULL (verdict set) if the committed read fails. */
static entry_t *touch(exec_t *x, const uint8_t *key, uint32_t txi)
{
    alys_overlay_t *o = x->o;
    uint64_t h = achain_key_hash(key);
    slot_t *s = probe(o, key, h);
    if (s->idx1) {
        entry_t *e = &o->entries[s->idx1 - 1];
        if (e->epoch != o->epoch) {
            o->undo[o->undo_len++] = (undo_t){.idx = s->idx1 - 1, .start = e->now};
            e->epoch = o->epoch;
        }
        return e;
    }
    alys_account_t committed;
    if (read_committed(x->view, key, &committed) < 0) {
        char hex[17];
        alys_hex(key, 8, hex);
        achain_fail(x->v, ALYS_BLOCK_INTERNAL_ERROR, (int32_t) txi,
                    "tx %u: state read failed for account %s..", txi, hex);
        return NULL;
    }
    entry_t *e = insert(o, s, key, h, &committed);
    o->undo[o->undo_len++] =
        (undo_t){.idx = (uint32_t) o->count - 1, .inserted = true, .start = committed};
    return e;
}

static bool credit(exec_t *x, entry_t *e, uint64_t amount, uint32_t txi, const char *who)
{
    if (e->now.balance > UINT64_MAX - amount)
        return achain_fail(x->v, ALYS_BLOCK_MALFORMED, (int32_t) txi,
                           "tx %u: %s balance overflow", txi, who);
    e->now.balance += amount;
    return true;
}

static bool debit_sender(exec_t *x, const alys_tx_t *tx, uint32_t i)
{
    entry_t *s = touch(x, tx->from, i);
    if (!s)
        return false;
    if (tx->nonce != s->now.nonce)
        return achain_fail(x->v, ALYS_BLOCK_BAD_NONCE, (int32_t) i,
                           "tx %u: nonce %llu != account next nonce %llu", i,
                           (unsigned long long) tx->nonce, (unsigned long long) s->now.nonce);
    if (tx->amount > UINT64_MAX - tx->fee)
        return achain_fail(x->v, ALYS_BLOCK_INSUFFICIENT_BALANCE, (int32_t) i,
                           "tx %u: amount + fee overflows 64 bits", i);
    uint64_t cost = tx->amount + tx->fee;
    if (s->now.balance < cost)
        return achain_fail(x->v, ALYS_BLOCK_INSUFFICIENT_BALANCE, (int32_t) i,
                           "tx %u: balance %llu < amount %llu + fee %llu", i,
                           (unsigned long long) s->now.balance, (unsigned long long) tx->amount,
                           (unsigned long long) tx->fee);
    if (s->now.nonce == UINT64_MAX)
        return achain_fail(x->v, ALYS_BLOCK_MALFORMED, (int32_t) i, "tx %u: nonce overflow", i);
    s->now.balance -= cost;
    s->now.nonce++;
    return true;
}

static bool apply_tx(exec_t *x, const alys_tx_t *tx, uint32_t i)
{
    if (!debit_sender(x, tx, i))
        return false;
    entry_t *r = touch(x, tx->to, i);
    if (!r || !credit(x, r, tx->amount, i, "recipient"))
        return false;
    entry_t *p = touch(x, x->proposer_key, i);
    return p && credit(x, p, tx->fee, i, "proposer");
}

static void rollback(alys_overlay_t *o)
{
    for (size_t k = o->undo_len; k-- > 0;) {
        const undo_t *u = &o->undo[k];
        if (u->inserted)
            pop_newest(o);
        else
            o->entries[u->idx].now = u->start;
    }
    o->undo_len = 0;
}

/* The account's vector, from the cache when it holds it, else computed
 * and, if keep, cached. The pointer is valid until the next call. */
static const uint16_t *cached_vector(alys_overlay_t *o, const entry_t *e, const alys_account_t *a,
                                     bool keep, uint16_t scratch[ALYS_LATTICE_LANES])
{
    /* From an overlay's second block on: one block's start vectors never
     * come from its own end vectors, so one-shot overlays (a producer's
     * self-check) would pay the 4 MiB for nothing. */
    if (!o->vcache && !o->vcache_failed && o->epoch > 1) {
        o->vcache = calloc(VCACHE_SETS, sizeof *o->vcache);
        o->vcache_failed = !o->vcache;
    }
    if (!o->vcache) {
        account_vector(e->key, a, scratch);
        return scratch;
    }
    /* e->hash is keyed (SipHash): nobody can aim accounts at one set. */
    uint64_t x = e->hash ^ (a->balance * 0x9e3779b97f4a7c15ull) ^ (a->nonce * 0xc2b2ae3d27d4eb4full);
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    vset_t *set = &o->vcache[x & (VCACHE_SETS - 1)];
    for (int w = 0; w < 2; w++) {
        vslot_t *v = &set->way[w];
        if (v->used && v->a.balance == a->balance && v->a.nonce == a->nonce &&
            memcmp(v->key, e->key, ALYS_PUBKEY_LEN) == 0) {
            set->victim = (uint8_t) (1 - w);
            return v->lanes;
        }
    }
    if (!keep) {
        account_vector(e->key, a, scratch);
        return scratch;
    }
    vslot_t *v = &set->way[set->victim];
    set->victim = (uint8_t) (1 - set->victim);
    account_vector(e->key, a, v->lanes);
    memcpy(v->key, e->key, ALYS_PUBKEY_LEN);
    v->a = *a;
    v->used = true;
    return v->lanes;
}

static void update_lattice(alys_overlay_t *o, alys_lattice_t *l)
{
    uint16_t scratch[ALYS_LATTICE_LANES];
    for (size_t k = 0; k < o->undo_len; k++) {
        const undo_t *u = &o->undo[k];
        const entry_t *e = &o->entries[u->idx];
        if (memcmp(&u->start, &e->now, sizeof e->now) == 0)
            continue;
        /* An account this block created (absent before) is not cached:
         * one-shot recipients would push out the vectors of accounts that
         * do come back. */
        bool existed = !account_is_zero(&u->start);
        if (existed)
            lanes_sub(l, cached_vector(o, e, &u->start, true, scratch));
        if (!account_is_zero(&e->now))
            lanes_add(l, cached_vector(o, e, &e->now, existed, scratch));
    }
}

static void notify(const alys_state_view_t *view, const alys_overlay_t *o)
{
    if (!view->on_change)
        return;
    for (size_t k = 0; k < o->undo_len; k++) {
        const undo_t *u = &o->undo[k];
        const entry_t *e = &o->entries[u->idx];
        view->on_change(view->change_ctx, e->key, &u->start, &e->now);
    }
}

static bool check_root(const alys_lattice_t *l, const alys_header_t *h, alys_verdict_t *v)
{
    alys_hash_t root;
    alys_lattice_root(l, root);
    if (memcmp(root, h->state_root, ALYS_HASH_LEN) == 0)
        return true;
    char got[17], want[17];
    alys_hex(h->state_root, 8, got);
    alys_hex(root, 8, want);
    return achain_fail(v, ALYS_BLOCK_STATE_ROOT_MISMATCH, -1,
                       "state root %s.. != computed %s.. after %llu", got, want,
                       (unsigned long long) h->height);
}

static bool precheck(const alys_state_view_t *view, const alys_block_t *b, alys_verdict_t *v)
{
    const alys_genesis_t *g = view->genesis;
    if (!g || !view->overlay)
        return achain_fail(v, ALYS_BLOCK_INTERNAL_ERROR, -1, "state view has no genesis/overlay");
    if (b->tx_count > ALYS_MAX_TXS_PER_BLOCK)
        return achain_fail(v, ALYS_BLOCK_OVERSIZE, -1, "%u txs, max %u", b->tx_count,
                           (unsigned) ALYS_MAX_TXS_PER_BLOCK);
    if (b->header.proposer >= g->authority_count)
        return achain_fail(v, ALYS_BLOCK_WRONG_PROPOSER, -1, "proposer index %u >= authority count %u",
                           b->header.proposer, g->authority_count);
    if (reserve(view->overlay, 2 * (size_t) b->tx_count + 1) != 0)
        return achain_fail(v, ALYS_BLOCK_INTERNAL_ERROR, -1, "out of memory for %u txs", b->tx_count);
    return true;
}

bool alys_execute_block(alys_state_view_t *view, const alys_block_t *b, alys_verdict_t *v)
{
    if (!precheck(view, b, v))
        return false;
    alys_overlay_t *o = view->overlay;
    o->epoch++;
    o->undo_len = 0;
    exec_t x = {.view = view,
                .o = o,
                .v = v,
                .proposer_key = view->genesis->authorities[b->header.proposer]};
    for (uint32_t i = 0; i < b->tx_count; i++) {
        if (!apply_tx(&x, &b->txs[i], i)) {
            rollback(o);
            return false;
        }
    }
    alys_lattice_t next = view->lattice;
    update_lattice(o, &next);
    if (!check_root(&next, &b->header, v)) {
        rollback(o);
        return false;
    }
    view->lattice = next;
    notify(view, o);
    o->undo_len = 0;
    achain_ok(v);
    return true;
}
