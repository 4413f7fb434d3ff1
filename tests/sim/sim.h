/*  sim.h: alys-sim, a deterministic simulator of the whole sync.
 *
 *  One process, virtual time, one seeded PRNG (the FoundationDB/TigerBeetle
 *  way): every choice, every latency, every fault is drawn from the case's
 *  seed, nothing reads a clock or the OS's randomness, so a seed replays
 *  bit for bit. Time only moves when the event queue pops the next event.
 *
 *  What runs is the real code: the sync machine (actors/sync sync_logic),
 *  PeerManager's core (actors/peer_manager pm_core.h: connections, probes,
 *  requests, scores, blame, selection, wire checks, reorder buffer), the processor
 *  pipeline (actors/block_processor processor_logic, with the validators'
 *  own block check) and the chain rules (common/chain) over an in-memory
 *  state (memstate). Around each core sits a small adapter that does what
 *  the actor's shell does with sockets (one file per core: sim_sync.c,
 *  sim_peer.c, sim_pipeline.c; sim_storage.c is the storage model), and
 *  sim_net.c simulates the remote peers and the network between them.
 *
 *  Ownership: sim_t owns everything; sim_run() builds and destroys one case.
 */
#ifndef ALYS_SIM_H
#define ALYS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h"
#include "sim_chain.h"
#include "sim_rng.h"

#define SIM_MAX_PEERS  16
#define SIM_TRACE_KEEP 24 /* events kept for a failure report */
#define SIM_TEXT_MAX   160

/* What a remote peer does wrong (the faultproxy kinds, plus what only a
 * simulated network can do cheaply). */
typedef enum {
    SF_NONE = 0,
    SF_DELAY,           /* every response held delay_ms more */
    SF_DROP,            /* 1 in N Headers/Blocks responses dropped */
    SF_STALL,           /* after K blocks served, GetBlocks never answered */
    SF_CORRUPT,         /* one block per Blocks response invalid (corrupt kind) */
    SF_TRUNCATE,        /* responses of 2+ items cut to half, truncated=false */
    SF_LIE_HEIGHT,      /* Status height 2^40 */
    SF_LIE_HEIGHT_NEAR, /* Status height + 1000 */
    SF_DISCONNECT,      /* every N-th request swallowed, then down a while */
    SF_WRONG_GENESIS,   /* Status genesis hash flipped */
    SF_SILENT,          /* stops answering anything at silent_at */
    SF_SLOW,            /* a slow link: ms per block on top of latency */
    SF_DUPLICATE,       /* every response sent twice */
    SF_WRONG_START,     /* Blocks from another start than asked */
    SF_BAD_CHAIN,       /* serves a fork whose block at fork_height breaks a
                            state rule (headers signed: only execution sees it) */
    SF_COUNT
} sim_fault_t;

const char *sim_fault_name(sim_fault_t f);
int sim_fault_parse(const char *name, sim_fault_t *out);
/* Serves only data of the honest chain (may be slow, lossy, absent). */
bool sim_fault_honest(sim_fault_t f);

/* One case: everything derives from these (sim_case_from_seed fills them). */
typedef struct {
    uint64_t seed;
    uint64_t height;        /* chain height when the sync starts */
    uint64_t grow;          /* blocks the chain grows by while syncing */
    uint32_t block_time_ms; /* one new block per block_time_ms of growth */
    uint32_t peers;
    double failure_rate; /* 0..0.3: share of faulty peers, loss, partitions */
    uint32_t txs_per_block;
    uint64_t checkpoint_interval;
    uint32_t latency_ms, jitter_ms;
    double loss; /* per message, during the fault window */
    bool partitions;
    uint64_t fault_end_ms; /* network faults heal at this virtual time */
    sim_fault_t fault[SIM_MAX_PEERS];
    alys_block_error_t corrupt[SIM_MAX_PEERS]; /* SF_CORRUPT / SF_BAD_CHAIN kind */
    uint32_t download_window;
    uint32_t max_parallel;
    bool inject_bug;     /* storage model accepts a block that fails execution */
    uint32_t n_restarts; /* actor crashes (kill -9 and restart) during the fault window */
    uint64_t restart_at[4];
    uint32_t restart_actor[4]; /* sim_actor_t */
    char name[48];             /* named case ("" = generated) */
} sim_case_t;

/* failure_rate < 0: drawn from the seed; else this rate drives the draws of
 * faulty peers, loss, partitions and crashes. */
void sim_case_from_seed(sim_case_t *c, uint64_t seed, double failure_rate);
/* The fault matrix: named cases, one per fault kind (and corrupt kind). */
size_t sim_named_count(void);
int sim_named_case(size_t i, uint64_t seed, sim_case_t *c);
int sim_named_find(const char *name, uint64_t seed, sim_case_t *c);
const char *sim_named_name(size_t i);

/* The node's actors that the simulator can crash and restart. */
typedef enum { ACT_PEER_MANAGER = 0, ACT_PROCESSOR, ACT_SYNC, ACT_COUNT } sim_actor_t;
const char *sim_actor_name(uint32_t a);

typedef struct sim sim_t;
typedef void (*sim_fn)(sim_t *sim, void *arg);

/* Result of one case. */
typedef struct {
    bool ok;
    char invariant[SIM_TEXT_MAX]; /* which broke ("" when ok) */
    char detail[512];
    uint64_t trace_hash;
    uint64_t events;
    uint64_t end_ms; /* virtual time at the end */
    uint64_t head;
    char last[SIM_TRACE_KEEP][SIM_TEXT_MAX];
    size_t n_last;
} sim_result_t;

int sim_run(const sim_case_t *c, sim_chain_cache_t *cache, bool verbose, sim_result_t *res);

/* ---- the world, for the modules (sim_world.c) ---------------------------- */
uint64_t sim_now(const sim_t *sim);
sim_rng_t *sim_rng(sim_t *sim);
const sim_case_t *sim_case(const sim_t *sim);
/* Run fn(sim, arg) at now + delay_ms; label and a, b go into the trace.
 * chan >= 0 keeps the messages of one channel in order (FIFO, as a ZeroMQ
 * pipe). arg belongs to fn (it frees it). */
void sim_post_d(sim_t *sim, int chan, uint64_t delay_ms, const char *label, uint64_t a,
                uint64_t b, sim_fn fn, void *arg, void (*drop)(void *arg));
/* drop frees an arg whose event never ran (the case ended first); plain
 * sim_post args are freed with free(). */
#define sim_post(sim, chan, delay, label, a, b, fn, arg) \
    sim_post_d(sim, chan, delay, label, a, b, fn, arg, free)
/* Record an invariant failure (the first one wins; the run stops). */
void sim_fail(sim_t *sim, const char *invariant, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool sim_failed(const sim_t *sim);
void sim_note(sim_t *sim, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Channels (FIFO pairs). */
enum {
    CH_SYNC_PM = 0,
    CH_PM_SYNC,
    CH_PM_PL,
    CH_PL_PM,
    CH_PL_ST,
    CH_ST_PL,
    CH_ST_SYNC,
    CH_PL_W,
    CH_W_PL,
    CH_NET_BASE
}; /* CH_NET_BASE + 2*peer (+1 back) */

#endif
