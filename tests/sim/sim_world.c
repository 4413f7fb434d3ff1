/*  sim_world.c: the event queue, the virtual clock, the trace, the cases
 *  and the invariants. See sim.h.
 *
 *  The queue is a binary heap ordered by (time, sequence number): events
 *  due at the same virtual millisecond run in the order they were posted,
 *  and a channel's messages never overtake each other. Every popped event
 *  is folded into the trace hash (FNV-1a over time, label and two numbers),
 *  so two runs of a seed can be compared by one number.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "peer_reorder.h"
#include "peer_table.h"
#include "sim_internal.h"
#include "sync_machine.h"

#define CHANNELS            (CH_NET_BASE + 2 * SIM_MAX_PEERS)
#define LIVE_MS             120000 /* liveness bound: stuck this long = failure */
#define WATCH_MS            100
#define REORDER_ENTRIES_MAX 32
#define REORDER_BYTES_MAX   ((size_t) 64 << 20)
#define PL_MAX_BATCHES      4 /* pipeline_config_default's max_batches */

typedef struct {
    uint64_t at, seq;
    const char *label;
    uint64_t a, b;
    sim_fn fn;
    void *arg;
    void (*drop)(void *);
} ev_t;

struct sim {
    sim_case_t c;
    sim_rng_t rng;
    sim_chain_cache_t *cache;
    const sim_chain_t *chain;
    const sim_chain_t *fork[SIM_MAX_PEERS];
    uint64_t now, seq;
    ev_t *heap;
    size_t n, cap;
    uint64_t chan_last[CHANNELS];
    uint64_t trace;
    uint64_t events;
    char ring[SIM_TRACE_KEEP][SIM_TEXT_MAX];
    size_t ring_pos, ring_n;
    bool verbose;
    bool failed;
    char invariant[SIM_TEXT_MAX];
    char detail[512];
    uint64_t base_unix_ms;
    uint64_t last_advance;
    uint64_t reach_since[SIM_MAX_PEERS];
    uint64_t reached_at; /* when the head first equalled the final tip */
    bool done;
    uint32_t inc[ACT_COUNT];
    sim_net_t *net;
    sim_pm_t *pm;
    sim_pl_t *pl;
    sim_storage_t *st;
    sim_sync_t *sync;
};

/* ---- faults ------------------------------------------------------------------------ */

static const char *const fault_names[SF_COUNT] = {
    "none",       "delay",           "drop",       "stall",         "corrupt", "truncate",
    "lie_height", "lie_height_near", "disconnect", "wrong_genesis", "silent",  "slow",
    "duplicate",  "wrong_start",     "bad_chain"};

const char *sim_fault_name(sim_fault_t f)
{
    return f < SF_COUNT ? fault_names[f] : "?";
}

int sim_fault_parse(const char *name, sim_fault_t *out)
{
    for (int i = 0; i < SF_COUNT; i++)
        if (strcmp(name, fault_names[i]) == 0) {
            *out = (sim_fault_t) i;
            return 0;
        }
    return -1;
}

bool sim_fault_honest(sim_fault_t f)
{
    switch (f) {
    case SF_NONE:
    case SF_DELAY:
    case SF_DROP:
    case SF_STALL:
    case SF_DISCONNECT:
    case SF_SILENT:
    case SF_SLOW: return true;
    /* SF_DUPLICATE is not: no honest node sends an answer twice, and
     * PeerManager charges the copies (pm_cost.h, UNSOLICITED). */
    default: return false;
    }
}

/* Corrupt kinds a peer can apply to a served block, and the state rules a
 * bad chain can break with every header still valid. */
static const alys_block_error_t corrupt_kinds[] = {ALYS_BLOCK_BAD_PROPOSER_SIG,
                                                   ALYS_BLOCK_WRONG_PROPOSER,
                                                   ALYS_BLOCK_BAD_TX_SIG,
                                                   ALYS_BLOCK_TX_ROOT_MISMATCH,
                                                   ALYS_BLOCK_PARENT_MISMATCH,
                                                   ALYS_BLOCK_HEIGHT_GAP,
                                                   ALYS_BLOCK_NON_INCREASING_SLOT,
                                                   ALYS_BLOCK_FUTURE_SLOT,
                                                   ALYS_BLOCK_BAD_TIMESTAMP,
                                                   ALYS_BLOCK_BAD_NONCE,
                                                   ALYS_BLOCK_INSUFFICIENT_BALANCE,
                                                   ALYS_BLOCK_STATE_ROOT_MISMATCH,
                                                   ALYS_BLOCK_MALFORMED,
                                                   ALYS_BLOCK_OVERSIZE};
#define N_CORRUPT (sizeof corrupt_kinds / sizeof corrupt_kinds[0])
static const alys_block_error_t chain_kinds[] = {ALYS_BLOCK_BAD_NONCE, ALYS_BLOCK_INSUFFICIENT_BALANCE,
                                                 ALYS_BLOCK_STATE_ROOT_MISMATCH};
#define N_CHAIN_KINDS (sizeof chain_kinds / sizeof chain_kinds[0])

/* ---- cases ------------------------------------------------------------------------- */

static void case_defaults(sim_case_t *c, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->seed = seed;
    c->height = 500;
    c->block_time_ms = 2000;
    c->peers = 3;
    c->txs_per_block = 1;
    c->checkpoint_interval = 100;
    c->latency_ms = 20;
    c->jitter_ms = 10;
    c->fault_end_ms = 20000;
    c->download_window = 1024;
    c->max_parallel = 3;
}

void sim_case_from_seed(sim_case_t *c, uint64_t seed, double failure_rate)
{
    sim_rng_t r;
    sim_rng_seed(&r, seed ^ 0x616c79732d73696dULL);
    case_defaults(c, seed);
    /* Log-uniform height: as many short chains as long ones per decade. */
    c->height = (uint64_t) (100.0 * pow(100.0, sim_rng_unit(&r)));
    if (c->height > 10000)
        c->height = 10000;
    c->peers = (uint32_t) sim_rng_range(&r, 1, 10);
    c->failure_rate = 0.3 * sim_rng_unit(&r);
    if (failure_rate >= 0)
        c->failure_rate = failure_rate;
    /* Two chains serve every sweep (generated once per process): the
     * variant and its block time follow the seed's parity. */
    c->block_time_ms = seed % 2 ? 1000 : 2000;
    c->grow = sim_rng_range(&r, 0, 40);
    c->checkpoint_interval = sim_rng_chance(&r, 0.5) ? sim_rng_range(&r, 10, 100)
                                                     : sim_rng_range(&r, 100, 1000);
    c->latency_ms = (uint32_t) sim_rng_range(&r, 1, 100);
    c->jitter_ms = (uint32_t) sim_rng_range(&r, 0, 50);
    c->loss = c->failure_rate / 3;
    c->partitions = sim_rng_chance(&r, c->failure_rate * 2);
    c->fault_end_ms = sim_rng_range(&r, 5000, 60000);
    static const uint32_t win[] = {128, 256, 512, 1024};
    c->download_window = win[sim_rng_range(&r, 0, 3)];
    c->max_parallel = (uint32_t) sim_rng_range(&r, 1, 8);
    /* Peer 0 always serves the honest chain (someone must); the others are
     * faulty with probability 2 x failure rate. */
    static const sim_fault_t live_honest[] = {SF_NONE, SF_NONE, SF_NONE, SF_DELAY,
                                              SF_SLOW, SF_NONE, SF_DROP, SF_DISCONNECT};
    c->fault[0] = sim_rng_chance(&r, c->failure_rate * 2) ? live_honest[sim_rng_range(&r, 0, 7)]
                                                          : SF_NONE;
    for (uint32_t p = 1; p < c->peers; p++) {
        c->fault[p] = sim_rng_chance(&r, c->failure_rate * 2)
                          ? (sim_fault_t) sim_rng_range(&r, 1, SF_COUNT - 1)
                          : SF_NONE;
        if (c->fault[p] == SF_CORRUPT)
            c->corrupt[p] = corrupt_kinds[sim_rng_range(&r, 0, N_CORRUPT - 1)];
        if (c->fault[p] == SF_BAD_CHAIN)
            c->corrupt[p] = chain_kinds[sim_rng_range(&r, 0, N_CHAIN_KINDS - 1)];
    }
    /* Crashes of the node's own actors (kill -9, restart), from a stream of
     * their own so the rest of a seed's case does not depend on them. */
    sim_rng_t k;
    sim_rng_seed(&k, seed ^ 0x6b696c6c2d39ULL);
    if (sim_rng_chance(&k, c->failure_rate)) {
        c->n_restarts = (uint32_t) sim_rng_range(&k, 1, 4);
        for (uint32_t i = 0; i < c->n_restarts; i++) {
            c->restart_at[i] = sim_rng_range(&k, 100, c->fault_end_ms);
            c->restart_actor[i] = (uint32_t) sim_rng_range(&k, 0, ACT_COUNT - 1);
        }
    }
}

const char *sim_actor_name(uint32_t a)
{
    static const char *const n[ACT_COUNT] = {"peer_manager", "processor", "sync"};
    return a < ACT_COUNT ? n[a] : "?";
}

/* ---- the fault matrix: one named case per fault kind and corrupt kind ----------- */

typedef struct {
    char name[48];
    sim_fault_t fault;
    alys_block_error_t kind;
} named_t;

static size_t named_list(named_t *out, size_t cap)
{
    size_t n = 0;
    for (int f = 1; f < SF_COUNT; f++) {
        if (f == SF_CORRUPT) {
            for (size_t k = 0; k < N_CORRUPT && n < cap; k++, n++) {
                out[n] = (named_t){.fault = SF_CORRUPT, .kind = corrupt_kinds[k]};
                snprintf(out[n].name, sizeof out[n].name, "corrupt:%s",
                         alys_block_error_name(corrupt_kinds[k]));
            }
        } else if (f == SF_BAD_CHAIN) {
            for (size_t k = 0; k < N_CHAIN_KINDS && n < cap; k++, n++) {
                out[n] = (named_t){.fault = SF_BAD_CHAIN, .kind = chain_kinds[k]};
                snprintf(out[n].name, sizeof out[n].name, "bad_chain:%s",
                         alys_block_error_name(chain_kinds[k]));
            }
        } else if (n < cap) {
            out[n] = (named_t){.fault = (sim_fault_t) f};
            snprintf(out[n].name, sizeof out[n].name, "%s", fault_names[f]);
            n++;
        }
    }
    if (n < cap) {
        out[n] = (named_t){.fault = SF_NONE};
        snprintf(out[n].name, sizeof out[n].name, "partition");
        n++;
    }
    for (uint32_t a = 0; a < ACT_COUNT && n < cap; a++, n++) {
        out[n] = (named_t){.fault = SF_NONE};
        snprintf(out[n].name, sizeof out[n].name, "restart:%s", sim_actor_name(a));
    }
    return n;
}

#define NAMED_MAX 64

size_t sim_named_count(void)
{
    named_t l[NAMED_MAX];
    return named_list(l, NAMED_MAX);
}

const char *sim_named_name(size_t i)
{
    static named_t l[NAMED_MAX];
    size_t n = named_list(l, NAMED_MAX);
    return i < n ? l[i].name : NULL;
}

/* A faulty peer (peer-0) beside two honest ones (the integration test's
 * shape: the node, an honest server, a proxy in front of another), over a
 * chain long enough for several windows. With --peers 1 only the faulty
 * peer is left (the self-test's shape). */
int sim_named_case(size_t i, uint64_t seed, sim_case_t *c)
{
    named_t l[NAMED_MAX];
    size_t n = named_list(l, NAMED_MAX);
    if (i >= n)
        return -1;
    case_defaults(c, seed);
    c->height = 600;
    c->grow = 5;
    c->peers = 3;
    c->fault[0] = l[i].fault;
    c->corrupt[0] = l[i].kind;
    c->fault_end_ms = 30000;
    if (strcmp(l[i].name, "partition") == 0) {
        c->partitions = true;
        c->loss = 0.05;
    }
    for (uint32_t a = 0; a < ACT_COUNT; a++) {
        char name[48];
        snprintf(name, sizeof name, "restart:%s", sim_actor_name(a));
        if (strcmp(l[i].name, name) == 0) {
            /* twice: mid-download, and again right after the first restart */
            c->n_restarts = 2;
            c->restart_at[0] = 300;
            c->restart_at[1] = 1500;
            c->restart_actor[0] = c->restart_actor[1] = a;
        }
    }
    snprintf(c->name, sizeof c->name, "%s", l[i].name);
    return 0;
}

int sim_named_find(const char *name, uint64_t seed, sim_case_t *c)
{
    named_t l[NAMED_MAX];
    size_t n = named_list(l, NAMED_MAX);
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0)
            return sim_named_case(i, seed, c);
    return -1;
}

/* ---- accessors ------------------------------------------------------------------------ */

uint64_t sim_now(const sim_t *sim)
{
    return sim->now;
}
uint32_t sim_incarnation(const sim_t *sim, sim_actor_t a)
{
    return sim->inc[a];
}
sim_rng_t *sim_rng(sim_t *sim)
{
    return &sim->rng;
}
const sim_case_t *sim_case(const sim_t *sim)
{
    return &sim->c;
}
const sim_chain_t *sim_honest_chain(const sim_t *sim)
{
    return sim->chain;
}
const sim_chain_t *sim_fork_chain(const sim_t *sim, uint32_t peer)
{
    return sim->fork[peer];
}
const alys_genesis_t *sim_genesis(const sim_t *sim)
{
    return sim_chain_genesis(sim->chain);
}
sim_chain_cache_t *sim_cache(sim_t *sim)
{
    return sim->cache;
}
sim_pm_t *sim_get_pm(sim_t *sim)
{
    return sim->pm;
}
sim_pl_t *sim_get_pl(sim_t *sim)
{
    return sim->pl;
}
sim_storage_t *sim_get_storage(sim_t *sim)
{
    return sim->st;
}
sim_sync_t *sim_get_sync(sim_t *sim)
{
    return sim->sync;
}
sim_net_t *sim_get_net(sim_t *sim)
{
    return sim->net;
}
const sim_pm_t *sim_get_pm_c(const sim_t *sim)
{
    return sim->pm;
}
const sim_storage_t *sim_get_storage_c(const sim_t *sim)
{
    return sim->st;
}
const sim_sync_t *sim_get_sync_c(const sim_t *sim)
{
    return sim->sync;
}
const sim_net_t *sim_get_net_c(const sim_t *sim)
{
    return sim->net;
}
bool sim_failed(const sim_t *sim)
{
    return sim->failed;
}

uint64_t sim_final_tip(const sim_t *sim)
{
    return sim->c.height + sim->c.grow;
}

uint64_t sim_tip(const sim_t *sim)
{
    uint64_t grown = sim->now / sim->c.block_time_ms;
    return sim->c.height + (grown < sim->c.grow ? grown : sim->c.grow);
}

uint64_t sim_unix_ms(const sim_t *sim)
{
    return sim->base_unix_ms + sim->now;
}

uint64_t sim_now_slot(const sim_t *sim)
{
    return alys_genesis_slot_at(sim_genesis(sim), sim_unix_ms(sim));
}

/* A peer is its key (common/nodeaddr.h): sim peer p's is 60 '5's and p in
 * four hex digits, so a trace still shows which peer it is. */
#define SIM_KEY_PREFIX "555555555555555555555555555555555555555555555555555555555555"

const char *sim_peer_id(uint32_t peer)
{
    static char ids[SIM_MAX_PEERS][65];
    if (peer >= SIM_MAX_PEERS)
        return "peer-?";
    if (!ids[peer][0])
        snprintf(ids[peer], sizeof ids[peer], SIM_KEY_PREFIX "%04x", peer);
    return ids[peer];
}

int sim_peer_index(const char *id)
{
    size_t n = strlen(SIM_KEY_PREFIX);
    if (!id || strlen(id) != n + 4 || strncmp(id, SIM_KEY_PREFIX, n) != 0)
        return -1;
    char *end;
    long v = strtol(id + n, &end, 16);
    return *end || v < 0 || v >= SIM_MAX_PEERS ? -1 : (int) v;
}

bool sim_peer_honest(const sim_t *sim, uint32_t peer)
{
    return peer < sim->c.peers && sim_fault_honest(sim->c.fault[peer]);
}

/* ---- trace ----------------------------------------------------------------------------- */

static void ring_add(sim_t *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ring_add(sim_t *sim, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sim->ring[sim->ring_pos], SIM_TEXT_MAX, fmt, ap);
    va_end(ap);
    if (sim->verbose)
        printf("%s\n", sim->ring[sim->ring_pos]);
    sim->ring_pos = (sim->ring_pos + 1) % SIM_TRACE_KEEP;
    if (sim->ring_n < SIM_TRACE_KEEP)
        sim->ring_n++;
}

static void fold(sim_t *sim, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        sim->trace ^= (v >> (8 * i)) & 0xff;
        sim->trace *= 0x100000001b3ULL;
    }
}

void sim_note(sim_t *sim, const char *fmt, ...)
{
    char text[SIM_TEXT_MAX - 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ring_add(sim, "%8llu  # %s", (unsigned long long) sim->now, text);
}

void sim_fail(sim_t *sim, const char *invariant, const char *fmt, ...)
{
    if (sim->failed)
        return;
    sim->failed = true;
    snprintf(sim->invariant, sizeof sim->invariant, "%s", invariant);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sim->detail, sizeof sim->detail, fmt, ap);
    va_end(ap);
    ring_add(sim, "%8llu  !! %s: %s", (unsigned long long) sim->now, invariant, sim->detail);
}

/* ---- the queue ---------------------------------------------------------------------------- */

static bool ev_less(const ev_t *x, const ev_t *y)
{
    return x->at < y->at || (x->at == y->at && x->seq < y->seq);
}

void sim_post_d(sim_t *sim, int chan, uint64_t delay_ms, const char *label, uint64_t a,
                uint64_t b, sim_fn fn, void *arg, void (*drop)(void *arg))
{
    uint64_t at = sim->now + delay_ms;
    if (chan >= 0 && chan < CHANNELS) {
        if (at < sim->chan_last[chan])
            at = sim->chan_last[chan];
        sim->chan_last[chan] = at;
    }
    if (sim->n == sim->cap) {
        size_t cap = sim->cap ? sim->cap * 2 : 1024;
        ev_t *h = realloc(sim->heap, cap * sizeof *h);
        if (!h) {
            if (drop && arg)
                drop(arg);
            sim_fail(sim, "simulator", "out of memory for the event queue");
            return;
        }
        sim->heap = h;
        sim->cap = cap;
    }
    ev_t e = {.at = at, .seq = sim->seq++, .label = label, .a = a, .b = b, .fn = fn, .arg = arg, .drop = drop};
    size_t i = sim->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_less(&e, &sim->heap[parent]))
            break;
        sim->heap[i] = sim->heap[parent];
        i = parent;
    }
    sim->heap[i] = e;
}

static ev_t pop(sim_t *sim)
{
    ev_t top = sim->heap[0];
    ev_t last = sim->heap[--sim->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const ev_t *best = &last;
        if (l < sim->n && ev_less(&sim->heap[l], best)) {
            m = l;
            best = &sim->heap[l];
        }
        if (r < sim->n && ev_less(&sim->heap[r], best))
            m = r;
        if (m == i)
            break;
        sim->heap[i] = sim->heap[m];
        i = m;
    }
    if (sim->n)
        sim->heap[i] = last;
    return top;
}

/* ---- invariants --------------------------------------------------------------------------- */

void sim_check_penalty(sim_t *sim, const char *peer, const char *what)
{
    int idx = sim_peer_index(peer);
    if (idx >= 0 && sim_peer_honest(sim, (uint32_t) idx))
        sim_fail(sim, "no honest peer penalised for another's fault",
                 "%s (%s: serves only the honest chain) charged: %s", peer,
                 sim_fault_name(sim->c.fault[idx]), what);
}

void sim_check_commit(sim_t *sim, uint64_t height, const alys_hash_t hash)
{
    if (height == 0 || height > sim->chain->n ||
        memcmp(sim->chain->hash[height - 1], hash, ALYS_HASH_LEN) != 0) {
        char hex[2 * ALYS_HASH_LEN + 1];
        alys_hex(hash, 8, hex);
        sim_fail(sim, "no invalid block committed",
                 "block %s.. committed at height %llu is not the valid chain's", hex,
                 (unsigned long long) height);
    }
}

void sim_head_advanced(sim_t *sim, uint64_t head)
{
    (void) head;
    sim->last_advance = sim->now;
}

static bool useful(const sim_t *sim, uint32_t p)
{
    sim_fault_t f = sim->c.fault[p];
    return sim_fault_honest(f) && f != SF_STALL && f != SF_SILENT;
}

/* Every WATCH_MS: bounds, liveness, the end. */
static void watch(sim_t *sim, void *arg)
{
    (void) arg;
    if (sim_pm_reorder_entries(sim) > REORDER_ENTRIES_MAX ||
        sim_pm_reorder_bytes(sim) > REORDER_BYTES_MAX)
        sim_fail(sim, "bounded tables", "reorder buffer holds %zu entries, %zu bytes",
                 sim_pm_reorder_entries(sim), sim_pm_reorder_bytes(sim));
    if (sim_pm_table_size(sim) > PEER_TABLE_MAX_PEERS ||
        sim_pm_suspects(sim) > PEER_MAX_SUSPECTS || sim_pl_batches(sim) > PL_MAX_BATCHES)
        sim_fail(sim, "bounded tables", "peer table %zu, suspects %zu, processor batches %zu",
                 sim_pm_table_size(sim), sim_pm_suspects(sim), sim_pl_batches(sim));
    uint64_t head = sim_storage_head(sim, NULL, NULL);
    int reach = -1;
    for (uint32_t p = 0; p < sim->c.peers; p++) {
        if (!sim_net_reachable(sim, p) || !useful(sim, p))
            sim->reach_since[p] = sim->now;
        else if (sim->now - sim->reach_since[p] >= LIVE_MS && reach < 0)
            reach = (int) p;
    }
    if (head < sim_tip(sim) && reach >= 0 && sim->now - sim->last_advance >= LIVE_MS) {
        double score = 0;
        bool banned = false;
        sim_pm_score(sim, sim_peer_id((uint32_t) reach), &score, &banned);
        sim_fail(sim, "liveness",
                 "head %llu stood still for %llu ms while an honest peer with the blocks (tip %llu) "
                 "was reachable all along (%s, %s, score %.1f%s); sync state %s",
                 (unsigned long long) head, (unsigned long long) (sim->now - sim->last_advance),
                 (unsigned long long) sim_tip(sim), sim_peer_id((uint32_t) reach),
                 sim_fault_name(sim->c.fault[reach]), score, banned ? ", banned" : "",
                 sync_state_name(sim_sync_state(sim)));
    }
    if (head >= sim_final_tip(sim) && sim_tip(sim) == sim_final_tip(sim)) {
        if (!sim->reached_at)
            sim->reached_at = sim->now;
        /* Give the machine a few ticks to say Synced. */
        if (sim_sync_state(sim) == SYNC_SYNCED || sim->now - sim->reached_at >= 5000)
            sim->done = true;
    }
    if (!sim->done && !sim->failed)
        sim_post(sim, -1, WATCH_MS, "watch", head, 0, watch, NULL);
}

/* A named case with a lying peer-0 (the integration tests' assertion):
 * the liar ends up penalised or banned. */
static void check_liar_penalised(sim_t *sim)
{
    if (!sim->c.name[0] || sim_fault_honest(sim->c.fault[0]))
        return;
    double score = 0;
    bool banned = false;
    if (sim_pm_score(sim, sim_peer_id(0), &score, &banned) != 0 || (!banned && score >= 0))
        sim_fail(sim, "the faulty peer is penalised", "peer-0 (%s) ends with score %.1f%s",
                 sim_fault_name(sim->c.fault[0]), score, banned ? ", banned" : ", not banned");
}

static void end_checks(sim_t *sim)
{
    check_liar_penalised(sim);
    alys_hash_t hash, root, full;
    uint64_t head = sim_storage_head(sim, hash, root);
    uint64_t final = sim_final_tip(sim);
    if (head != final) {
        sim_fail(sim, "sync completes", "head %llu, the chain's tip is %llu (sync state %s)",
                 (unsigned long long) head, (unsigned long long) final,
                 sync_state_name(sim_sync_state(sim)));
        return;
    }
    if (memcmp(hash, sim->chain->hash[final - 1], ALYS_HASH_LEN) != 0)
        sim_fail(sim, "right head", "head hash differs from the chain's at %llu",
                 (unsigned long long) final);
    sim_storage_recompute_root(sim, full);
    if (memcmp(root, sim->chain->state_root[final - 1], ALYS_HASH_LEN) != 0 ||
        memcmp(full, root, ALYS_HASH_LEN) != 0)
        sim_fail(sim, "right state root", "state root at %llu differs from the chain's",
                 (unsigned long long) final);
    if (sim_sync_state(sim) != SYNC_SYNCED)
        sim_fail(sim, "sync completes", "at the tip but the state is %s",
                 sync_state_name(sim_sync_state(sim)));
    size_t cap = 4096;
    uint64_t *hs = malloc(cap * sizeof *hs);
    alys_hash_t *hh = malloc(cap * sizeof *hh), *rr = malloc(cap * sizeof *rr);
    if (!hs || !hh || !rr) {
        free(hs);
        free(hh);
        free(rr);
        sim_fail(sim, "simulator", "out of memory");
        return;
    }
    size_t n = sim_storage_checkpoints(sim, hs, hh, rr, cap);
    for (size_t i = 0; i < n; i++) {
        if (hs[i] == 0 || hs[i] % sim->c.checkpoint_interval != 0)
            sim_fail(sim, "checkpoint consistency", "checkpoint at %llu, interval %llu",
                     (unsigned long long) hs[i], (unsigned long long) sim->c.checkpoint_interval);
        else if (memcmp(hh[i], sim->chain->hash[hs[i] - 1], ALYS_HASH_LEN) != 0 ||
                 memcmp(rr[i], sim->chain->state_root[hs[i] - 1], ALYS_HASH_LEN) != 0)
            sim_fail(sim, "checkpoint consistency", "checkpoint at %llu does not verify",
                     (unsigned long long) hs[i]);
    }
    uint64_t expect = final / sim->c.checkpoint_interval;
    if (expect <= cap && n != expect)
        sim_fail(sim, "checkpoint consistency", "%zu checkpoints, expected %llu", n,
                 (unsigned long long) expect);
    free(hs);
    free(hh);
    free(rr);
}

/* ---- restarts (kill -9 of one of the node's actors) ------------------------- */

static void tell_sync_restarted(sim_t *sim, void *arg)
{
    sim_sync_on_restarted(sim, (sim_actor_t) (uintptr_t) arg);
}

static void processor_back(sim_t *sim, void *arg)
{
    (void) arg;
    sim_pm_processor_restarted(sim);
}

static void restart(sim_t *sim, void *arg)
{
    sim_actor_t a = (sim_actor_t) (uintptr_t) arg;
    sim->inc[a]++;
    sim_note(sim, "kill -9 %s, restarted (incarnation %u)", sim_actor_name(a), sim->inc[a]);
    bool ok = true;
    if (a == ACT_PROCESSOR) {
        sim_pl_destroy(&sim->pl);
        sim->pl = sim_pl_new(sim);
        ok = sim->pl != NULL;
        if (ok) {
            sim_pl_start(sim);
            /* PeerManager's socket monitor sees the reconnect; SyncActor the
             * lifecycle event. */
            sim_post_d(sim, CH_PL_PM, 200, "processor_reconnected", 0, 0, processor_back, NULL, NULL);
            sim_post_d(sim, CH_ST_SYNC, 100, "lifecycle_restarted", a, 0, tell_sync_restarted,
                       arg, NULL);
        }
    } else if (a == ACT_PEER_MANAGER) {
        /* What StorageActor keeps for it (bans, address book) survives. */
        sim_pm_t *old = sim->pm;
        sim->pm = sim_pm_new(sim);
        ok = sim->pm != NULL;
        if (ok) {
            sim_pm_inherit(sim->pm, old);
            sim_pm_start(sim);
            sim_post_d(sim, CH_ST_SYNC, 100, "lifecycle_restarted", a, 0, tell_sync_restarted,
                       arg, NULL);
        }
        sim_pm_destroy(&old);
    } else {
        sim_sync_destroy(&sim->sync);
        sim->sync = sim_sync_new(sim);
        ok = sim->sync != NULL;
        if (ok)
            sim_sync_start(sim);
    }
    if (!ok)
        sim_fail(sim, "simulator", "out of memory restarting %s", sim_actor_name(a));
}

/* ---- one case ------------------------------------------------------------------------------- */

static int build(sim_t *sim, char *err, size_t errlen)
{
    sim_chain_key_t key = {.variant = (uint32_t) (sim->c.seed % 2),
                           .slot_ms = sim->c.block_time_ms,
                           .txs = sim->c.txs_per_block};
    sim->chain = sim_chain_need(sim->cache, &key, sim_final_tip(sim), err, errlen);
    if (!sim->chain)
        return -1;
    for (uint32_t p = 0; p < sim->c.peers; p++) {
        if (sim->c.fault[p] != SF_BAD_CHAIN)
            continue;
        sim_chain_key_t fk = key;
        fk.fault = sim->c.corrupt[p];
        uint64_t top = sim->c.height < 300 ? sim->c.height : 300;
        fk.fault_height = sim_rng_range(&sim->rng, 1, top);
        sim->fork[p] = sim_chain_need(sim->cache, &fk, fk.fault_height + 64, err, errlen);
        if (!sim->fork[p])
            return -1;
        /* the fork may have evicted it */
        sim->chain = sim_chain_need(sim->cache, &key, sim_final_tip(sim), err, errlen);
        if (!sim->chain)
            return -1;
    }
    const alys_genesis_t *g = sim_genesis(sim);
    uint64_t last_slot = sim->chain->slot[sim_final_tip(sim) - 1];
    sim->base_unix_ms = g->genesis_time * 1000 + (last_slot + 1) * g->slot_duration_ms;
    sim->net = sim_net_new(sim);
    sim->st = sim_storage_new(sim);
    sim->pl = sim_pl_new(sim);
    sim->pm = sim_pm_new(sim);
    sim->sync = sim_sync_new(sim);
    if (!sim->net || !sim->st || !sim->pl || !sim->pm || !sim->sync) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static void teardown(sim_t *sim)
{
    while (sim->n) {
        ev_t e = pop(sim);
        if (e.drop && e.arg)
            e.drop(e.arg);
    }
    free(sim->heap);
    sim_sync_destroy(&sim->sync);
    sim_pm_destroy(&sim->pm);
    sim_pl_destroy(&sim->pl);
    sim_storage_destroy(&sim->st);
    sim_net_destroy(&sim->net);
}

int sim_run(const sim_case_t *c, sim_chain_cache_t *cache, bool verbose, sim_result_t *res)
{
    sim_t *sim = calloc(1, sizeof *sim);
    if (!sim)
        return -1;
    memset(res, 0, sizeof *res);
    sim->c = *c;
    sim->cache = cache;
    sim->verbose = verbose;
    sim->trace = 0xcbf29ce484222325ULL;
    sim_rng_seed(&sim->rng, c->seed);
    char err[256];
    if (build(sim, err, sizeof err) != 0) {
        sim_fail(sim, "simulator", "cannot build the case: %s", err);
    } else {
        sim_net_start(sim);
        sim_pl_start(sim);
        sim_pm_start(sim);
        sim_sync_start(sim);
        sim_post(sim, -1, WATCH_MS, "watch", 0, 0, watch, NULL);
        for (uint32_t i = 0; i < c->n_restarts && i < 4; i++)
            sim_post_d(sim, -1, c->restart_at[i], "restart", c->restart_actor[i], 0, restart,
                       SIM_INC_ARG(c->restart_actor[i]), NULL);
    }
    uint64_t limit = c->fault_end_ms + LIVE_MS * 3 + (c->height + c->grow) * 50 +
                     c->grow * c->block_time_ms;
    while (!sim->failed && !sim->done && sim->n) {
        ev_t e = pop(sim);
        if (e.at > limit) {
            if (e.drop && e.arg)
                e.drop(e.arg);
            break;
        }
        sim->now = e.at;
        sim->events++;
        fold(sim, e.at);
        for (const char *p = e.label; *p; p++)
            fold(sim, (uint8_t) *p);
        fold(sim, e.a);
        fold(sim, e.b);
        if (verbose || strcmp(e.label, "pm_tick") != 0)
            ring_add(sim, "%8llu  %s %llu %llu", (unsigned long long) e.at, e.label,
                     (unsigned long long) e.a, (unsigned long long) e.b);
        e.fn(sim, e.arg);
    }
    if (!sim->failed)
        end_checks(sim);
    res->ok = !sim->failed;
    snprintf(res->invariant, sizeof res->invariant, "%s", sim->invariant);
    snprintf(res->detail, sizeof res->detail, "%s", sim->detail);
    res->trace_hash = sim->trace;
    res->events = sim->events;
    res->end_ms = sim->now;
    res->head = sim->st ? sim_storage_head(sim, NULL, NULL) : 0;
    for (size_t i = 0; i < sim->ring_n; i++) {
        size_t k = (sim->ring_pos + SIM_TRACE_KEEP - sim->ring_n + i) % SIM_TRACE_KEEP;
        snprintf(res->last[i], SIM_TEXT_MAX, "%s", sim->ring[k]);
    }
    res->n_last = sim->ring_n;
    teardown(sim);
    free(sim);
    return 0;
}
