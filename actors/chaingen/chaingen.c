/*  chaingen.c: the deterministic chain generator (contract in chaingen.h).
 *
 *  Speed. A block costs K+1 signatures (~18 us each with a cached key pair)
 *  and, for its state root, lattice vectors (~1.5 us each, state.c) of the
 *  accounts it changes: one each for the generator to learn the root (the
 *  old vector is cached), two each for alys_execute_block to confirm it.
 *  Blocks are therefore built in batches, in a pipeline:
 *    1. draft  (sequential, cheap): slots, txs, the generator's own account
 *       arithmetic; draft and tx faults
 *    2. txs    (parallel):   sign every tx, tx root, lattice vectors
 *    3. link   (sequential): fold vectors -> state roots, parent and header
 *       hashes; link faults
 *    4. seal   (parallel):   sign headers, encode records
 *    5. fault  (sequential): faults on signed or encoded blocks
 *  while a separate thread executes the previous batch with
 *  alys_execute_block over an alys_memstate (the chain's own rules confirm
 *  every root the generator computed). Nothing here depends on timing or
 *  thread count: every item's output is a pure function of its inputs.
 *
 *  Signing uses libsecp256k1 directly (BIP340, no aux randomness, exactly
 *  what alys_sign does) only to keep each key pair parsed once: alys_sign
 *  re-derives the key pair per call, which doubles the cost. The tests check
 *  every generated signature with alys_verify.
 */
#include "chaingen.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <secp256k1_schnorrsig.h>

#include "chain/export.h"
#include "chain/memstate.h"
#include "chain/state.h"
#include "util.h"

/* An error message into err; chaingen returns its status apart. */
#define cg_err(err, errlen, ...) ((void) alys_set_err((err), (errlen), -1, __VA_ARGS__))

#define RNG_TAG     "alys-chaingen/v1/rng"
#define SKIP_ONE_IN 20 /* 1 slot in 20 is left empty */
#define MAX_AMOUNT  1000
#define MAX_FEE     10
#define BATCH_TXS   4096 /* txs per batch: bounds the pipeline's memory */
#define MAX_BATCH   256
#define VCACHE_MAX  16384 /* accounts whose lattice vector we keep (32 MiB) */
#define POOL        3     /* batches alive: emitting, executing, building */

/* ================================================================ rng */

/* xoshiro256** (Blackman & Vigna): fast, and defined bit for bit, so every
 * platform draws the same chain. */
typedef struct {
    uint64_t s[4];
} rng_t;

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, n), n >= 1: rejection removes the modulo bias. */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = rng_next(r);
    while (x >= limit);
    return x % n;
}

static void rng_seed(rng_t *r, const char *seed)
{
    uint8_t buf[sizeof RNG_TAG + ALYS_CHAINGEN_MAX_SEED];
    size_t sl = strnlen(seed, ALYS_CHAINGEN_MAX_SEED);
    memcpy(buf, RNG_TAG, sizeof RNG_TAG);
    memcpy(buf + sizeof RNG_TAG, seed, sl);
    alys_hash_t h;
    alys_sha256(buf, sizeof RNG_TAG + sl, h);
    for (int w = 0; w < 4; w++) {
        r->s[w] = 0;
        for (int i = 7; i >= 0; i--)
            r->s[w] = (r->s[w] << 8) | h[8 * w + i];
    }
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1; /* the one state xoshiro cannot leave */
}

/* ================================================================ config */

void alys_chaingen_config_default(alys_chaingen_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->slot_ms = ALYS_CHAINGEN_DEFAULT_SLOT_MS;
    c->genesis_time = ALYS_CHAINGEN_DEFAULT_GENESIS_TIME;
    snprintf(c->chain_id, sizeof c->chain_id, "%s", ALYS_CHAINGEN_DEFAULT_CHAIN_ID);
    c->fault = ALYS_BLOCK_OK;
}

static int check_sizes(const alys_chaingen_config_t *c, char *err, size_t errlen)
{
    if (c->blocks > ALYS_CHAINGEN_MAX_BLOCKS)
        return cg_err(err, errlen, "--blocks %" PRIu64 " exceeds the limit %llu", c->blocks,
                      ALYS_CHAINGEN_MAX_BLOCKS),
               -1;
    if (c->txs_per_block > ALYS_MAX_TXS_PER_BLOCK)
        return cg_err(err, errlen, "--txs-per-block %" PRIu32 " exceeds the limit %d",
                      c->txs_per_block, ALYS_MAX_TXS_PER_BLOCK),
               -1;
    if (c->accounts < 1 || c->accounts > ALYS_MAX_GENESIS_ACCOUNTS)
        return cg_err(err, errlen, "--accounts %" PRIu32 " is outside 1..%d", c->accounts,
                      ALYS_MAX_GENESIS_ACCOUNTS),
               -1;
    if (c->txs_per_block > 0 && c->accounts < 2)
        return cg_err(err, errlen,
                      "--accounts %" PRIu32 ": transfers need at least 2 accounts "
                      "(or --txs-per-block 0)",
                      c->accounts),
               -1;
    if (c->authorities < 1 || c->authorities > ALYS_MAX_AUTHORITIES)
        return cg_err(err, errlen, "--authorities %" PRIu32 " is outside 1..%d", c->authorities,
                      ALYS_MAX_AUTHORITIES),
               -1;
    if (c->threads > ALYS_CHAINGEN_MAX_THREADS)
        return cg_err(err, errlen, "--threads %" PRIu32 " exceeds the limit %d", c->threads,
                      ALYS_CHAINGEN_MAX_THREADS),
               -1;
    return 0;
}

static int check_chain_id(const char *id, char *err, size_t errlen)
{
    size_t n = strnlen(id, 64);
    if (n == 0 || n > 63)
        return cg_err(err, errlen, "--chain-id must be 1..63 characters"), -1;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        if (!ok)
            return cg_err(err, errlen, "--chain-id may hold only letters, digits, '-', '_' and '.'"),
                   -1;
    }
    return 0;
}

static int check_chain(const alys_chaingen_config_t *c, char *err, size_t errlen)
{
    size_t sl = strnlen(c->seed, sizeof c->seed);
    if (sl == 0)
        return cg_err(err, errlen, "--seed is required (any text; it determines every byte)"), -1;
    if (sl > ALYS_CHAINGEN_MAX_SEED)
        return cg_err(err, errlen, "--seed is longer than %d characters", ALYS_CHAINGEN_MAX_SEED), -1;
    if (c->slot_ms < 1 || c->slot_ms > ALYS_CHAINGEN_MAX_SLOT_MS)
        return cg_err(err, errlen, "--slot-ms %" PRIu64 " is outside 1..%llu", c->slot_ms,
                      ALYS_CHAINGEN_MAX_SLOT_MS),
               -1;
    if (c->genesis_time > ALYS_CHAINGEN_MAX_GENESIS_TIME)
        return cg_err(err, errlen, "--genesis-time %" PRIu64 " exceeds the limit %llu",
                      c->genesis_time, ALYS_CHAINGEN_MAX_GENESIS_TIME),
               -1;
    return check_chain_id(c->chain_id, err, errlen);
}

static int check_fault(const alys_chaingen_config_t *c, char *err, size_t errlen)
{
    if (c->fault == ALYS_BLOCK_OK) {
        if (c->fault_height != 0)
            return cg_err(err, errlen, "--fault-height needs --fault"), -1;
        return 0;
    }
    const char *name = alys_block_error_name(c->fault);
    if (!alys_forge_fault_is_kind(c->fault))
        return cg_err(err, errlen, "--fault %s is not a fault kind", name), -1;
    if (c->fault_height == 0)
        return cg_err(err, errlen, "--fault %s needs --fault-height H (1..%" PRIu64 ")", name,
                      c->blocks),
               -1;
    if (c->fault_height > c->blocks)
        return cg_err(err, errlen, "--fault-height %" PRIu64 " is outside 1..%" PRIu64 " (--blocks)",
                      c->fault_height, c->blocks),
               -1;
    if (alys_forge_fault_needs_tx(c->fault) && c->txs_per_block == 0)
        return cg_err(err, errlen, "--fault %s needs --txs-per-block >= 1", name), -1;
    if (c->fault == ALYS_BLOCK_WRONG_PROPOSER && c->authorities < 2)
        return cg_err(err, errlen, "--fault wrong_proposer needs --authorities >= 2"), -1;
    return 0;
}

int alys_chaingen_config_check(const alys_chaingen_config_t *c, char *err, size_t errlen)
{
    if (check_sizes(c, err, errlen) != 0 || check_chain(c, err, errlen) != 0)
        return -1;
    return check_fault(c, err, errlen);
}

/* ================================================================ generator state */

typedef struct {
    uint64_t pos;         /* 1..N: position in the chain */
    alys_block_t block;   /* txs: capacity K, owned */
    alys_tx_t *exec_txs;  /* tx faults only: the valid twin's txs, owned */
    alys_hash_t sim_root; /* the state root the generator computed */
    alys_hash_t hash;     /* header hash (after link faults) */
    uint8_t *bytes;       /* the record, malloc'ed */
    size_t len;
} gblock_t;

typedef struct {
    gblock_t *b;
    size_t count, cap;
    uint32_t *signer; /* cap * K sender account indices */
    /* accounts each block changed, recorded by the draft: entries
     * t_off[j] .. t_off[j+1]-1 belong to block j */
    size_t *t_off;   /* cap + 1 */
    uint32_t *t_idx; /* cap * (2K+1) account indices */
    alys_account_t *t_before, *t_after;
    /* execution status, guarded by the generator's mutex */
    bool queued, done;
    int exec_rc;
    char exec_err[512];
} batch_t;

struct alys_chaingen {
    alys_chaingen_config_t cfg;
    uint32_t threads;
    alys_forge_keys_t keys;
    secp256k1_keypair *kp; /* F authorities then A accounts */
    alys_genesis_t genesis;
    rng_t rng;

    /* the generator's own view of the state: accounts 0..A-1, then the
     * authorities A..A+F-1 (they receive the fees) */
    alys_account_t *acct;
    uint64_t *stamp;   /* last block that touched it */
    uint32_t *touched; /* this block's accounts, first-touch order */
    size_t touched_n;
    alys_account_t *touched_before;
    alys_lattice_t lattice;
    alys_lattice_t *vcache;  /* current vector per account, or NULL */
    alys_lattice_t *scratch; /* per changed account of a batch: its
                                         * new vector (or new - old, no vcache) */

    /* chain position */
    uint64_t built;        /* blocks drafted so far */
    alys_header_t prev;    /* last drafted header (draft fields) */
    alys_hash_t prev_hash; /* last linked header hash */

    /* pipeline */
    batch_t pool[POOL];
    batch_t *cur, *ahead;
    size_t cur_pos;
    size_t batch_blocks;

    /* execution thread */
    pthread_t exec_tid;
    bool exec_started, exec_stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch_t *exec_queue[POOL];
    size_t exec_head, exec_len;
    alys_memstate_t *ms;
    alys_overlay_t *ov;
    alys_state_view_t view;

    alys_chaingen_result_t result;
    char err[512]; /* sticky */
};

const alys_genesis_t *alys_chaingen_genesis(const alys_chaingen_t *self)
{
    return &self->genesis;
}

const alys_forge_keys_t *alys_chaingen_keys(const alys_chaingen_t *self)
{
    return &self->keys;
}

void alys_chaingen_result(const alys_chaingen_t *self, alys_chaingen_result_t *out)
{
    *out = self->result;
}

/* ================================================================ genesis and the generator's state */

static const uint8_t *pub_of(const alys_chaingen_t *self, uint32_t idx)
{
    uint32_t a = self->cfg.accounts;
    return idx < a ? self->keys.account_pub[idx] : self->keys.authority_pub[idx - a];
}

static int build_genesis(alys_chaingen_t *self)
{
    const alys_chaingen_config_t *c = &self->cfg;
    alys_genesis_t *g = &self->genesis;
    memset(g, 0, sizeof *g);
    snprintf(g->chain_id, sizeof g->chain_id, "%s", c->chain_id);
    g->authorities = malloc((size_t) c->authorities * ALYS_PUBKEY_LEN);
    g->balances = malloc((size_t) c->accounts * sizeof *g->balances);
    if (!g->authorities || !g->balances)
        return -1;
    g->authority_count = c->authorities;
    memcpy(g->authorities, self->keys.authority_pub, (size_t) c->authorities * ALYS_PUBKEY_LEN);
    g->slot_duration_ms = c->slot_ms;
    g->genesis_time = c->genesis_time;
    g->balance_count = c->accounts;
    for (uint32_t i = 0; i < c->accounts; i++) {
        memcpy(g->balances[i].pubkey, self->keys.account_pub[i], ALYS_PUBKEY_LEN);
        g->balances[i].balance = ALYS_CHAINGEN_FUNDING;
    }
    alys_genesis_finalize(g);
    return 0;
}

static void lattice_add(alys_lattice_t *l, const alys_lattice_t *v)
{
    for (int i = 0; i < ALYS_LATTICE_LANES; i++)
        l->lane[i] = (uint16_t) (l->lane[i] + v->lane[i]);
}

static void lattice_sub(alys_lattice_t *l, const alys_lattice_t *v)
{
    for (int i = 0; i < ALYS_LATTICE_LANES; i++)
        l->lane[i] = (uint16_t) (l->lane[i] - v->lane[i]);
}

/* The account's vector alone: the lattice of a state holding only it. */
static void account_vector(alys_lattice_t *out, const uint8_t *pub, const alys_account_t *a)
{
    alys_lattice_zero(out);
    alys_lattice_add_account(out, pub, a);
}

static void genesis_vector(void *arg, size_t i)
{
    alys_chaingen_t *self = arg;
    account_vector(&self->vcache[i], pub_of(self, (uint32_t) i), &self->acct[i]);
}

/* Accounts funded, authorities empty; the lattice of that state, and the
 * per-account vector cache when it fits (it halves the vector work: an
 * account's old vector is the one computed at its previous change). */
static int sim_init(alys_chaingen_t *self)
{
    uint32_t a = self->cfg.accounts, n = a + self->cfg.authorities;
    size_t t = 2 * (size_t) self->cfg.txs_per_block + 1;
    self->acct = calloc(n, sizeof *self->acct);
    self->stamp = calloc(n, sizeof *self->stamp);
    self->touched = calloc(t, sizeof *self->touched);
    self->touched_before = calloc(t, sizeof *self->touched_before);
    self->scratch = calloc(self->batch_blocks * t, sizeof *self->scratch);
    if (!self->acct || !self->stamp || !self->touched || !self->touched_before || !self->scratch)
        return -1;
    for (uint32_t i = 0; i < a; i++)
        self->acct[i].balance = ALYS_CHAINGEN_FUNDING;
    if (n <= VCACHE_MAX && (self->vcache = calloc(n, sizeof *self->vcache)) != NULL) {
        alys_forge_parallel_for(a, self->threads, genesis_vector, self);
        alys_lattice_zero(&self->lattice);
        for (uint32_t i = 0; i < a; i++)
            lattice_add(&self->lattice, &self->vcache[i]);
    } else {
        alys_lattice_from_genesis(&self->lattice, &self->genesis);
    }
    alys_hash_t root;
    alys_lattice_root(&self->lattice, root);
    if (memcmp(root, self->genesis.state_root, ALYS_HASH_LEN) != 0) {
        snprintf(self->err, sizeof self->err,
                 "chaingen: internal: genesis state root disagrees with alys_genesis_finalize");
        return -1;
    }
    alys_genesis_parent(&self->genesis, &self->prev);
    memcpy(self->prev_hash, self->genesis.hash, ALYS_HASH_LEN);
    return 0;
}

/* ================================================================ phase 1: draft */

static void touch(alys_chaingen_t *self, uint32_t idx, uint64_t epoch)
{
    if (self->stamp[idx] == epoch)
        return;
    self->stamp[idx] = epoch;
    self->touched[self->touched_n] = idx;
    self->touched_before[self->touched_n] = self->acct[idx];
    self->touched_n++;
}

/* A random funded account that can pay cost (scanning on from a random
 * start, so a drained account is skipped deterministically). */
static int pick_sender(alys_chaingen_t *self, uint64_t cost, uint32_t *out)
{
    uint32_t a = self->cfg.accounts;
    uint32_t from = (uint32_t) rng_below(&self->rng, a);
    for (uint32_t k = 0; k < a; k++, from = (from + 1) % a) {
        if (self->acct[from].balance >= cost) {
            *out = from;
            return 0;
        }
    }
    return -1;
}

static int draft_txs(alys_chaingen_t *self, batch_t *bt, size_t j, uint64_t epoch)
{
    alys_block_t *b = &bt->b[j].block;
    uint32_t k = self->cfg.txs_per_block, a = self->cfg.accounts;
    uint32_t prop = a + b->header.proposer;
    self->touched_n = 0;
    b->tx_count = k;
    for (uint32_t i = 0; i < k; i++) {
        alys_tx_t *tx = &b->txs[i];
        uint64_t amount = 1 + rng_below(&self->rng, MAX_AMOUNT);
        uint64_t fee = 1 + rng_below(&self->rng, MAX_FEE);
        uint32_t from;
        if (pick_sender(self, amount + fee, &from) != 0) {
            snprintf(self->err, sizeof self->err,
                     "chaingen: block %" PRIu64 ": every account ran dry (use more --accounts)",
                     epoch);
            return -1;
        }
        uint32_t to = (uint32_t) rng_below(&self->rng, a - 1);
        to += to >= from;
        touch(self, from, epoch);
        touch(self, to, epoch);
        touch(self, prop, epoch);
        memcpy(tx->from, pub_of(self, from), ALYS_PUBKEY_LEN);
        memcpy(tx->to, pub_of(self, to), ALYS_PUBKEY_LEN);
        tx->amount = amount;
        tx->fee = fee;
        tx->nonce = self->acct[from].nonce++;
        self->acct[from].balance -= amount + fee;
        self->acct[to].balance += amount;
        self->acct[prop].balance += fee;
        bt->signer[j * k + i] = from;
    }
    return 0;
}

/* Record the accounts this block changed, with their values before and
 * after it, for the lattice work of phases 2 and 3. */
static void record_changes(alys_chaingen_t *self, batch_t *bt, size_t j)
{
    size_t e = bt->t_off[j];
    for (size_t k = 0; k < self->touched_n; k++) {
        uint32_t idx = self->touched[k];
        const alys_account_t *before = &self->touched_before[k], *after = &self->acct[idx];
        if (before->balance == after->balance && before->nonce == after->nonce)
            continue;
        bt->t_idx[e] = idx;
        bt->t_before[e] = *before;
        bt->t_after[e] = *after;
        e++;
    }
    bt->t_off[j + 1] = e;
}

/* When the generator applies each kind (see the file comment): draft kinds
 * before execution, because they may change the fee recipient; tx kinds
 * after it, because the state goes on as if the tx were valid; link kinds
 * once hashes exist; signature kinds once signatures exist. */
typedef enum { PH_NONE, PH_DRAFT, PH_TXS, PH_LINK, PH_SIGNED, PH_ENCODING } phase_t;

static phase_t fault_phase(alys_block_error_t k)
{
    switch (k) {
    case ALYS_BLOCK_WRONG_PROPOSER:
    case ALYS_BLOCK_HEIGHT_GAP:
    case ALYS_BLOCK_NON_INCREASING_SLOT:
    case ALYS_BLOCK_FUTURE_SLOT:
    case ALYS_BLOCK_BAD_TIMESTAMP: return PH_DRAFT;
    case ALYS_BLOCK_BAD_NONCE:
    case ALYS_BLOCK_INSUFFICIENT_BALANCE: return PH_TXS;
    case ALYS_BLOCK_PARENT_MISMATCH:
    case ALYS_BLOCK_TX_ROOT_MISMATCH:
    case ALYS_BLOCK_STATE_ROOT_MISMATCH: return PH_LINK;
    case ALYS_BLOCK_BAD_PROPOSER_SIG:
    case ALYS_BLOCK_BAD_TX_SIG: return PH_SIGNED;
    case ALYS_BLOCK_MALFORMED:
    case ALYS_BLOCK_OVERSIZE: return PH_ENCODING;
    default: return PH_NONE;
    }
}

/* The fault's phase if block position pos is the faulty one, else PH_NONE. */
static phase_t fault_here(const alys_chaingen_t *self, uint64_t pos)
{
    if (self->cfg.fault == ALYS_BLOCK_OK || self->cfg.fault_height != pos)
        return PH_NONE;
    return fault_phase(self->cfg.fault);
}

static void mutate_here(alys_chaingen_t *self, alys_block_t *b, const alys_header_t *parent)
{
    alys_forge_fault_ctx_t ctx = {&self->genesis, &self->keys, parent};
    (void) alys_forge_fault_mutate(b, self->cfg.fault, &ctx);
}

static int draft_block(alys_chaingen_t *self, batch_t *bt, size_t j)
{
    gblock_t *gb = &bt->b[j];
    alys_header_t *h = &gb->block.header;
    uint64_t pos = gb->pos = self->built + 1;
    phase_t ph = fault_here(self, pos);
    memset(h, 0, sizeof *h);
    h->height = self->prev.height + 1;
    alys_forge_set_slot(h, &self->genesis,
                        self->prev.slot + 1 + (rng_below(&self->rng, SKIP_ONE_IN) == 0));
    if (ph == PH_DRAFT)
        mutate_here(self, &gb->block, &self->prev);
    if (draft_txs(self, bt, j, pos) != 0)
        return -1;
    record_changes(self, bt, j);
    if (ph == PH_TXS) {
        size_t n = (size_t) gb->block.tx_count * sizeof *gb->exec_txs;
        if (!(gb->exec_txs = malloc(n)))
            return -1;
        memcpy(gb->exec_txs, gb->block.txs, n);
        mutate_here(self, &gb->block, &self->prev);
    }
    self->prev = *h;
    self->built++;
    return 0;
}

/* ================================================================ phases 2-5 */

typedef struct {
    alys_chaingen_t *self;
    batch_t *bt;
    atomic_int failed;
} phase_job_t;

static void seal_txs(void *arg, size_t j)
{
    phase_job_t *p = arg;
    alys_chaingen_t *self = p->self;
    alys_block_t *b = &p->bt->b[j].block;
    uint32_t k = self->cfg.txs_per_block, f = self->cfg.authorities;
    for (uint32_t i = 0; i < b->tx_count; i++) {
        alys_hash_t hh;
        alys_tx_hash(&b->txs[i], hh);
        const secp256k1_keypair *kp = &self->kp[f + p->bt->signer[j * k + i]];
        if (!secp256k1_schnorrsig_sign32(alys_forge_secp(), b->txs[i].signature, hh, kp, NULL))
            atomic_store(&p->failed, 1);
    }
    alys_tx_root(b->txs, b->tx_count, b->header.tx_root);
    /* The lattice vectors of the accounts the block changed: the hashing
     * work, done here in parallel; phase 3 only adds them up in order. */
    for (size_t e = p->bt->t_off[j]; e < p->bt->t_off[j + 1]; e++) {
        const uint8_t *pub = pub_of(self, p->bt->t_idx[e]);
        account_vector(&self->scratch[e], pub, &p->bt->t_after[e]);
        if (!self->vcache) {
            alys_lattice_t old;
            account_vector(&old, pub, &p->bt->t_before[e]);
            lattice_sub(&self->scratch[e], &old);
        }
    }
}

/* The state root after block j: the lattice moves by each changed
 * account's new vector minus its old one (from the cache, or already
 * subtracted in phase 2). */
static void fold_root(alys_chaingen_t *self, batch_t *bt, size_t j, alys_hash_t out)
{
    for (size_t e = bt->t_off[j]; e < bt->t_off[j + 1]; e++) {
        if (self->vcache) {
            alys_lattice_t *cached = &self->vcache[bt->t_idx[e]];
            lattice_sub(&self->lattice, cached);
            *cached = self->scratch[e];
        }
        lattice_add(&self->lattice, &self->scratch[e]);
    }
    alys_lattice_root(&self->lattice, out);
}

static void link_batch(alys_chaingen_t *self, batch_t *bt)
{
    for (size_t j = 0; j < bt->count; j++) {
        gblock_t *gb = &bt->b[j];
        fold_root(self, bt, j, gb->sim_root);
        memcpy(gb->block.header.state_root, gb->sim_root, ALYS_HASH_LEN);
        memcpy(gb->block.header.parent_hash, self->prev_hash, ALYS_HASH_LEN);
        if (fault_here(self, gb->pos) == PH_LINK)
            mutate_here(self, &gb->block, NULL);
        alys_header_hash(&gb->block.header, gb->hash);
        memcpy(self->prev_hash, gb->hash, ALYS_HASH_LEN);
    }
}

static void seal_header(void *arg, size_t j)
{
    phase_job_t *p = arg;
    alys_chaingen_t *self = p->self;
    gblock_t *gb = &p->bt->b[j];
    alys_header_t *h = &gb->block.header;
    if (!secp256k1_schnorrsig_sign32(alys_forge_secp(), h->signature, gb->hash,
                                     &self->kp[h->proposer], NULL))
        atomic_store(&p->failed, 1);
    phase_t ph = fault_here(self, gb->pos);
    if (ph == PH_SIGNED || ph == PH_ENCODING)
        return; /* encoded by fault_batch, after its change */
    if (alys_block_encode(&gb->block, &gb->bytes, &gb->len) != 0)
        atomic_store(&p->failed, 1);
}

static int fault_batch(alys_chaingen_t *self, batch_t *bt)
{
    uint64_t first = bt->b[0].pos;
    if (self->cfg.fault == ALYS_BLOCK_OK || self->cfg.fault_height < first ||
        self->cfg.fault_height >= first + bt->count)
        return 0;
    gblock_t *gb = &bt->b[self->cfg.fault_height - first];
    phase_t ph = fault_phase(self->cfg.fault);
    if (ph == PH_ENCODING)
        return alys_forge_corrupt_encoding(&gb->block, self->cfg.fault, &gb->bytes, &gb->len,
                                           self->err, sizeof self->err);
    if (ph == PH_SIGNED) {
        mutate_here(self, &gb->block, NULL);
        if (alys_block_encode(&gb->block, &gb->bytes, &gb->len) != 0)
            return -1;
    }
    return 0;
}

/* ================================================================ batches */

static void batch_release(batch_t *bt)
{
    for (size_t j = 0; j < bt->count; j++) {
        free(bt->b[j].bytes);
        free(bt->b[j].exec_txs);
        bt->b[j].bytes = NULL;
        bt->b[j].exec_txs = NULL;
    }
    bt->count = 0;
    bt->queued = bt->done = false;
    bt->exec_rc = 0;
    bt->exec_err[0] = '\0';
}

static void batch_free(batch_t *bt)
{
    if (!bt->b)
        return;
    batch_release(bt);
    for (size_t j = 0; j < bt->cap; j++)
        free(bt->b[j].block.txs);
    free(bt->b);
    free(bt->signer);
    free(bt->t_off);
    free(bt->t_idx);
    free(bt->t_before);
    free(bt->t_after);
    memset(bt, 0, sizeof *bt);
}

static int batch_alloc(batch_t *bt, size_t cap, uint32_t k)
{
    size_t t = cap * (2 * (size_t) k + 1);
    bt->b = calloc(cap, sizeof *bt->b);
    bt->signer = calloc(cap * (k ? k : 1), sizeof *bt->signer);
    bt->t_off = calloc(cap + 1, sizeof *bt->t_off);
    bt->t_idx = calloc(t, sizeof *bt->t_idx);
    bt->t_before = calloc(t, sizeof *bt->t_before);
    bt->t_after = calloc(t, sizeof *bt->t_after);
    if (!bt->b || !bt->signer || !bt->t_off || !bt->t_idx || !bt->t_before || !bt->t_after)
        return -1;
    bt->cap = cap;
    for (size_t j = 0; j < cap; j++)
        if (!(bt->b[j].block.txs = calloc(k ? k : 1, sizeof(alys_tx_t))))
            return -1;
    return 0;
}

static batch_t *batch_get(alys_chaingen_t *self)
{
    for (int i = 0; i < POOL; i++) {
        batch_t *bt = &self->pool[i];
        if (bt != self->cur && bt != self->ahead && !bt->queued) {
            if (!bt->b && batch_alloc(bt, self->batch_blocks, self->cfg.txs_per_block) != 0) {
                batch_free(bt);
                return NULL;
            }
            return bt;
        }
    }
    return NULL;
}

/* Build the next batch through phases 1-5. NULL with self->err on error. */
static batch_t *build_batch(alys_chaingen_t *self)
{
    batch_t *bt = batch_get(self);
    if (!bt) {
        snprintf(self->err, sizeof self->err, "chaingen: out of memory for a batch");
        return NULL;
    }
    uint64_t left = self->cfg.blocks - self->built;
    bt->count = left < self->batch_blocks ? (size_t) left : self->batch_blocks;
    for (size_t j = 0; j < bt->count; j++) {
        if (draft_block(self, bt, j) != 0) {
            if (!self->err[0])
                snprintf(self->err, sizeof self->err, "chaingen: out of memory");
            return NULL;
        }
    }
    phase_job_t job = {.self = self, .bt = bt};
    atomic_init(&job.failed, 0);
    alys_forge_parallel_for(bt->count, self->threads, seal_txs, &job);
    link_batch(self, bt);
    alys_forge_parallel_for(bt->count, self->threads, seal_header, &job);
    if (atomic_load(&job.failed) || fault_batch(self, bt) != 0) {
        if (!self->err[0])
            snprintf(self->err, sizeof self->err, "chaingen: signing or encoding failed");
        return NULL;
    }
    return bt;
}

/* ================================================================ execution thread */

/* Execute the batch with the chain's own rules over the memstate; a block
 * that does not execute to the root the generator computed means the two
 * disagree, which is a bug to report, never a chain to write. */
static int exec_batch(alys_chaingen_t *self, batch_t *bt)
{
    for (size_t j = 0; j < bt->count; j++) {
        gblock_t *gb = &bt->b[j];
        alys_block_t eb = gb->block; /* shallow: same txs */
        memcpy(eb.header.state_root, gb->sim_root, ALYS_HASH_LEN);
        if (gb->exec_txs)
            eb.txs = gb->exec_txs;
        alys_verdict_t v;
        if (!alys_execute_block(&self->view, &eb, &v)) {
            snprintf(bt->exec_err, sizeof bt->exec_err,
                     "chaingen: internal: block at height %" PRIu64 " does not execute (%s: %s); "
                     "the generator and the chain's rules disagree",
                     eb.header.height, alys_block_error_name(v.code), v.detail);
            return -1;
        }
        if (alys_memstate_commit_overlay(self->ms, self->ov) != 0) {
            snprintf(bt->exec_err, sizeof bt->exec_err, "chaingen: out of memory in the state");
            return -1;
        }
    }
    return 0;
}

static void *exec_main(void *arg)
{
    alys_chaingen_t *self = arg;
    bool failed = false;
    pthread_mutex_lock(&self->mu);
    for (;;) {
        while (!self->exec_stop && self->exec_len == 0)
            pthread_cond_wait(&self->cv, &self->mu);
        if (self->exec_stop)
            break;
        batch_t *bt = self->exec_queue[self->exec_head];
        self->exec_head = (self->exec_head + 1) % POOL;
        self->exec_len--;
        pthread_mutex_unlock(&self->mu);
        int rc = -1;
        if (failed) /* the state is no longer the chain's: refuse the rest */
            snprintf(bt->exec_err, sizeof bt->exec_err, "chaingen: an earlier batch failed");
        else
            rc = exec_batch(self, bt);
        failed = failed || rc != 0;
        pthread_mutex_lock(&self->mu);
        bt->exec_rc = rc;
        bt->done = true;
        pthread_cond_broadcast(&self->cv);
    }
    pthread_mutex_unlock(&self->mu);
    return NULL;
}

static void exec_enqueue(alys_chaingen_t *self, batch_t *bt)
{
    if (!self->exec_started) { /* no_verify: nothing to confirm */
        bt->queued = bt->done = true;
        return;
    }
    pthread_mutex_lock(&self->mu);
    bt->queued = true;
    self->exec_queue[(self->exec_head + self->exec_len) % POOL] = bt;
    self->exec_len++;
    pthread_cond_broadcast(&self->cv);
    pthread_mutex_unlock(&self->mu);
}

static int exec_wait(alys_chaingen_t *self, batch_t *bt)
{
    if (self->exec_started) {
        pthread_mutex_lock(&self->mu);
        while (!bt->done)
            pthread_cond_wait(&self->cv, &self->mu);
        pthread_mutex_unlock(&self->mu);
    }
    if (bt->exec_rc != 0)
        snprintf(self->err, sizeof self->err, "%s", bt->exec_err);
    return bt->exec_rc;
}

static int exec_start(alys_chaingen_t *self)
{
    if (self->cfg.no_verify)
        return 0;
    self->ms = alys_memstate_new();
    self->ov = alys_overlay_new();
    if (!self->ms || !self->ov || alys_memstate_load_genesis(self->ms, &self->genesis) != 0)
        return -1;
    /* Not alys_memstate_view_init: that recomputes the lattice over every
     * account, and sim_init has just checked this one against the genesis. */
    memset(&self->view, 0, sizeof self->view);
    self->view.genesis = &self->genesis;
    self->view.read = alys_memstate_read;
    self->view.read_ctx = self->ms;
    self->view.overlay = self->ov;
    self->view.lattice = self->lattice;
    if (pthread_mutex_init(&self->mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&self->cv, NULL) != 0) {
        pthread_mutex_destroy(&self->mu);
        return -1;
    }
    if (pthread_create(&self->exec_tid, NULL, exec_main, self) != 0) {
        pthread_cond_destroy(&self->cv);
        pthread_mutex_destroy(&self->mu);
        return -1;
    }
    self->exec_started = true;
    return 0;
}

/* ================================================================ public generator */

alys_chaingen_t *alys_chaingen_new(const alys_chaingen_config_t *c, char *err, size_t errlen)
{
    if (alys_chaingen_config_check(c, err, errlen) != 0)
        return NULL;
    alys_chaingen_t *self = calloc(1, sizeof *self);
    if (!self) {
        cg_err(err, errlen, "chaingen: out of memory");
        return NULL;
    }
    self->cfg = *c;
    self->threads = c->threads ? c->threads : alys_forge_online_cpus();
    uint32_t k = c->txs_per_block;
    size_t per = BATCH_TXS / (k ? k : 1);
    self->batch_blocks = per < 1 ? 1 : per > MAX_BATCH ? MAX_BATCH : per;
    self->kp = calloc((size_t) c->authorities + c->accounts, sizeof *self->kp);
    rng_seed(&self->rng, c->seed);
    if (!self->kp ||
        alys_forge_keys_derive_par(c->seed, c->authorities, c->accounts, self->threads,
                                   &self->keys, self->kp) != 0 ||
        build_genesis(self) != 0 || sim_init(self) != 0 || exec_start(self) != 0) {
        cg_err(err, errlen, "%s",
               self->err[0] ? self->err : "chaingen: out of memory or no secp256k1 context");
        alys_chaingen_destroy(&self);
        return NULL;
    }
    memcpy(self->result.genesis_hash, self->genesis.hash, ALYS_HASH_LEN);
    return self;
}

void alys_chaingen_destroy(alys_chaingen_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    alys_chaingen_t *self = *self_p;
    if (self->exec_started) {
        pthread_mutex_lock(&self->mu);
        self->exec_stop = true;
        pthread_cond_broadcast(&self->cv);
        pthread_mutex_unlock(&self->mu);
        pthread_join(self->exec_tid, NULL);
        pthread_cond_destroy(&self->cv);
        pthread_mutex_destroy(&self->mu);
    }
    for (int i = 0; i < POOL; i++)
        batch_free(&self->pool[i]);
    alys_memstate_destroy(&self->ms);
    alys_overlay_destroy(&self->ov);
    if (self->kp)
        explicit_bzero(self->kp,
                       ((size_t) self->cfg.authorities + self->cfg.accounts) * sizeof *self->kp);
    free(self->kp);
    alys_forge_keys_clear(&self->keys);
    alys_genesis_clear(&self->genesis);
    free(self->acct);
    free(self->stamp);
    free(self->touched);
    free(self->touched_before);
    free(self->vcache);
    free(self->scratch);
    free(self);
    *self_p = NULL;
}

/* Move on to the next executed batch, building the one after it meanwhile
 * (the execution thread works on `ahead` while this thread builds). Returns
 * 1, 0 when the chain is complete, -1 on error. */
static int advance(alys_chaingen_t *self)
{
    if (self->cur) {
        batch_release(self->cur);
        self->cur = NULL;
    }
    if (!self->ahead) {
        if (self->built == self->cfg.blocks)
            return 0;
        if (!(self->ahead = build_batch(self)))
            return -1;
        exec_enqueue(self, self->ahead);
    }
    batch_t *behind = NULL;
    if (self->built < self->cfg.blocks) {
        if (!(behind = build_batch(self)))
            return -1;
        exec_enqueue(self, behind);
    }
    if (exec_wait(self, self->ahead) != 0)
        return -1;
    self->cur = self->ahead;
    self->cur_pos = 0;
    self->ahead = behind;
    return 1;
}

int alys_chaingen_next(alys_chaingen_t *self, const uint8_t **bytes, size_t *len,
                       const alys_block_t **block, char *err, size_t errlen)
{
    if (!self->err[0] && (!self->cur || self->cur_pos >= self->cur->count)) {
        int rc = advance(self);
        if (rc == 0)
            return 0;
    }
    if (self->err[0]) {
        cg_err(err, errlen, "%s", self->err);
        return -1;
    }
    gblock_t *gb = &self->cur->b[self->cur_pos++];
    *bytes = gb->bytes;
    *len = gb->len;
    if (block)
        *block = &gb->block;
    alys_chaingen_result_t *r = &self->result;
    r->blocks++;
    r->txs += gb->block.tx_count;
    r->head_height = gb->block.header.height;
    memcpy(r->head_hash, gb->hash, ALYS_HASH_LEN);
    memcpy(r->state_root, gb->block.header.state_root, ALYS_HASH_LEN);
    return 1;
}

/* ================================================================ files */

static int join_path(char *out, size_t outlen, const char *dir, const char *name)
{
    int n = snprintf(out, outlen, "%s/%s", dir, name);
    return n > 0 && (size_t) n < outlen ? 0 : -1;
}

/* mkdir -p: every missing component, 0755. */
static int make_dirs(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int) sizeof buf)
        return errno = ENAMETOOLONG, -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -1;
    return S_ISDIR(st.st_mode) ? 0 : (errno = ENOTDIR, -1);
}

static int write_export(alys_chaingen_t *gen, const char *tmp, const char *final, char *err,
                        size_t errlen)
{
    const alys_genesis_t *g = alys_chaingen_genesis(gen);
    alys_export_writer_t *w = alys_export_writer_new(tmp, g->hash, 1, gen->cfg.blocks, err, errlen);
    if (!w)
        return -1;
    const uint8_t *bytes;
    size_t len;
    int rc;
    while ((rc = alys_chaingen_next(gen, &bytes, &len, NULL, err, errlen)) == 1) {
        if (alys_export_writer_write_block(w, bytes, len) != 0) {
            cg_err(err, errlen, "%s", alys_export_writer_error(w));
            rc = -1;
            break;
        }
    }
    if (rc == 0 && alys_export_writer_close(w) != 0) {
        cg_err(err, errlen, "%s", alys_export_writer_error(w));
        rc = -1;
    }
    alys_export_writer_destroy(&w);
    if (rc == 0 && rename(tmp, final) != 0) {
        cg_err(err, errlen, "chaingen: rename %s -> %s: %s", tmp, final, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        (void) unlink(tmp);
    return rc;
}

int alys_chaingen_run(const alys_chaingen_config_t *c, const char *out_dir,
                      alys_chaingen_result_t *res, char *err, size_t errlen)
{
    char gpath[4096], kpath[4096], tmp[4096], epath[4096];
    if (join_path(gpath, sizeof gpath, out_dir, "genesis") ||
        join_path(kpath, sizeof kpath, out_dir, "keys") ||
        join_path(tmp, sizeof tmp, out_dir, "chain.export.tmp") ||
        join_path(epath, sizeof epath, out_dir, "chain.export")) {
        cg_err(err, errlen, "--out %s: path too long", out_dir);
        return -1;
    }
    alys_chaingen_t *gen = alys_chaingen_new(c, err, errlen);
    if (!gen)
        return -1;
    int rc = -1;
    if (make_dirs(out_dir) != 0)
        cg_err(err, errlen, "--out %s: %s", out_dir, strerror(errno));
    else if (alys_genesis_save(gpath, alys_chaingen_genesis(gen)) != 0)
        cg_err(err, errlen, "chaingen: cannot write %s: %s", gpath, strerror(errno));
    else if (alys_forge_keys_save(kpath, alys_chaingen_keys(gen), err, errlen) == 0)
        rc = write_export(gen, tmp, epath, err, errlen);
    if (rc == 0 && res)
        alys_chaingen_result(gen, res);
    alys_chaingen_destroy(&gen);
    return rc;
}
