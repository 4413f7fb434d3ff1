/*  sync_internal.h: the machine's private state, shared by its .c files.
 *
 *  sync_machine.c   lifecycle, inputs, state transitions, action queue
 *  sync_peers.c     peer table, plausibility, peer choice
 *  sync_window.c    header lookahead, range batches, dispatch, stallers
 *  sync_progress.c  blocks/s window, progress and state getters, CanProduceBlocks
 *
 *  Not installed, not for the actor: the core and main.c use sync_machine.h only.
 */
#ifndef SYNC_INTERNAL_H
#define SYNC_INTERNAL_H

#include "sync_machine.h"

#define SYNC_EXCLUDE_MAX      4   /* peers a range last failed on, avoided on retry */
#define SYNC_RATE_SAMPLES     128 /* head samples for blocks/s */
#define SYNC_RATE_WINDOW_MS   10000
#define SYNC_RATE_BUCKET_MS   100  /* at most one sample per bucket */
#define SYNC_STALL_MULT_MAX   32.0 /* like Core's 2 s -> 64 s */
#define SYNC_STALL_DECAY      0.85 /* per completed range, like Core per block */
#define SYNC_EWMA_ALPHA       0.2
#define SYNC_COOLDOWN_BASE_MS 500
#define SYNC_COOLDOWN_MAX_MS  30000
#define SYNC_HEIGHT_CAP_MS    30000 /* how long a peer's disproved height stays capped */
#define SYNC_BUSY_BACKOFF_MS  250   /* BlockProcessor said BUSY: hold new bodies back */

typedef struct {
    bool used;
    sync_peer_id_t id;
    uint64_t reported_height; /* last plausible claim */
    uint64_t served_cap;      /* UINT64_MAX, or the tip it proved when it fell short */
    uint64_t cap_until;       /* when served_cap expires */
    bool lying;               /* last claim was above the wall-clock slot */
    bool has_score;
    double score;
    uint32_t in_flight;
    uint32_t consecutive_failures;
    uint64_t cooldown_until;
    uint64_t last_assigned;
    uint32_t rank; /* PeerSet order, UINT32_MAX = unranked */
} sync_peer_t;

typedef struct {
    bool used;
    sync_batch_state_t state;
    uint64_t start;
    uint32_t count;
    uint64_t req_id;     /* of the current download; 0 = none */
    sync_peer_id_t peer; /* downloading from / served by */
    uint64_t since;      /* now_ms when it entered its state */
    uint32_t attempts;   /* failed attempts so far */
    sync_peer_id_t excluded[SYNC_EXCLUDE_MAX];
    uint32_t excluded_count;                   /* ring: the last SYNC_EXCLUDE_MAX failures */
    sync_peer_id_t suspects[SYNC_EXCLUDE_MAX]; /* served copies that failed processing */
    uint32_t suspect_count;
    char suspect_reason[SYNC_LOG_MAX / 2];
    alys_hash_t *hashes;   /* expected header hashes, batch_hash_cap each */
    sync_peer_id_t prefer; /* ask this peer next: the server of the range's
                                     headers, after a body did not match them */
    bool no_hashes;        /* adopted (sync_machine_adopt) or a gap between
                              adopted ranges: hashes[] is not filled; the next
                              fetch takes them from the verified headers if
                              these cover the range, else fetches without */
} sync_batch_t;

/* Who served the verified headers of (start, end]: one entry per header
 * reply, so the server of a header whose block breaks a state rule can be
 * convicted. Entries cover (head, hdr_tip] in order; at most SYNC_HDR_SEGS
 * (no more headers are asked for until the head frees one). */
#define SYNC_HDR_SEGS 64
typedef struct {
    uint64_t start, end; /* inclusive */
    sync_peer_id_t peer;
} sync_hdr_seg_t;

typedef struct {
    bool active;
    uint64_t req_id;
    sync_peer_id_t peer;
    uint64_t start;
    uint32_t count;
    uint64_t sent_at;
} sync_header_req_t;

typedef struct {
    uint64_t t;
    uint64_t h;
} sync_rate_sample_t;

#define SYNC_EARLY_MAX 64 /* outcomes kept while awaiting InFlight */
typedef struct {
    uint64_t req_id;
    sync_outcome_t outcome;
} sync_early_t;

struct _sync_machine_t {
    sync_machine_config_t cfg;
    bool initialised;

    /* SyncState */
    sync_state_kind_t state;
    bool paused;
    uint64_t phase_start_height; /* start_height of the download states */
    uint64_t disc_started_at;
    uint32_t disc_attempts;
    uint64_t disc_last_attempt;
    char fail_reason[SYNC_REASON_MAX];
    uint64_t fail_last_good;
    uint32_t recovery_attempts;
    uint64_t next_retry;
    uint64_t synced_last_check;
    uint64_t below_min_since; /* Synced with fewer than min_sync_peers since; 0: not */
    bool can_produce;

    /* Chain position */
    uint64_t head;
    alys_hash_t head_hash;
    uint64_t last_checkpoint;
    bool has_target_cap;
    uint64_t target_cap;
    uint64_t last_head_advance; /* now_ms of the last head move */

    /* Header lookahead: hashes of (head, hdr_tip] at ring[h % hdr_cap] */
    alys_hash_t *hdr_ring;
    uint64_t hdr_cap;
    uint64_t hdr_tip;
    sync_header_req_t hreq;
    uint32_t hdr_failures;          /* consecutive */
    sync_peer_id_t hdr_last_failed; /* avoided for the next header request */
    sync_hdr_seg_t hdr_segs[SYNC_HDR_SEGS];
    uint32_t hdr_seg_len;
    bool hdr_fork_hold; /* a peer's headers did not link to ours: ask no
                                      more until ours are executed or dropped */

    /* Range window: batches cover (head, sched_tip] without gaps */
    sync_batch_t *batches;
    size_t batch_cap;
    uint32_t batch_hash_cap; /* hashes per batch slot = largest batch */
    alys_hash_t *hash_pool;  /* every slot's hashes, one block (owned) */
    uint64_t sched_tip;
    uint32_t batch_size_hint;           /* PeerManager's adaptive size */
    uint64_t busy_until;                /* BlockProcessor BUSY: no new bodies before */
    uint64_t adopt_until;               /* awaiting PeerManager's InFlight: no body
                                 dispatched before this (0: not awaiting) */
    sync_early_t early[SYNC_EARLY_MAX]; /* unknown ids' outcomes meanwhile */
    uint32_t early_n;

    /* Adaptive timeout */
    double ewma_ms_per_block; /* 0 until the first completed range */
    double stall_mult;        /* x2 per reassignment, x0.85 per success */

    sync_peer_t peers[SYNC_MAX_PEERS];
    sync_peer_id_t seq_peer; /* sequential strategy's one peer */
    uint64_t rng;

    /* Progress */
    uint64_t blocks_processed;
    uint64_t blocks_failed;
    uint64_t sync_start_time;
    uint64_t retries;
    uint64_t reassignments;
    sync_rate_sample_t rate[SYNC_RATE_SAMPLES];
    size_t rate_len, rate_next;

    uint64_t next_req_id;

    /* Action queue (ring) */
    sync_action_t *actions;
    size_t act_cap, act_head, act_len;
    uint64_t act_dropped;
};

/* sync_machine.c */
sync_action_t *sync_push(sync_machine_t *self, sync_action_kind_t kind);
void sync_log(sync_machine_t *self, sync_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sync_penalise(sync_machine_t *self, const char *peer, sync_penalty_t kind);
void sync_cancel(sync_machine_t *self, uint64_t req_id, const char *peer);
void sync_fail(sync_machine_t *self, uint64_t now_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool sync_is_sequential(const sync_machine_t *self);
bool sync_is_downloading(const sync_machine_t *self);
void sync_copy_id(sync_peer_id_t dst, const char *src);

/* sync_peers.c */
sync_peer_t *sync_peer_find(sync_machine_t *self, const char *id);
sync_peer_t *sync_peer_add(sync_machine_t *self, const char *id);
void sync_peer_remove(sync_machine_t *self, sync_peer_t *p);
uint64_t sync_peer_height(const sync_peer_t *p, uint64_t now_ms);
bool sync_peer_usable(const sync_peer_t *p);
uint32_t sync_usable_peers(const sync_machine_t *self);
uint32_t sync_connected_peers(const sync_machine_t *self);
uint64_t sync_best_peer_height(const sync_machine_t *self, uint64_t now_ms);
uint64_t sync_target(const sync_machine_t *self, uint64_t now_ms);
sync_peer_t *sync_pick_peer(sync_machine_t *self, uint64_t now_ms, uint64_t need_height,
                            const sync_peer_id_t *avoid, uint32_t avoid_count);
void sync_peer_failed(sync_machine_t *self, sync_peer_t *p, uint64_t now_ms);
void sync_peer_succeeded(sync_peer_t *p);
void sync_peer_cap_height(sync_peer_t *p, uint64_t proven, uint64_t now_ms);
uint64_t sync_rand(sync_machine_t *self);

/* sync_window.c */
uint32_t sync_batch_size(const sync_machine_t *self);
uint32_t sync_in_flight(const sync_machine_t *self);
void sync_dispatch(sync_machine_t *self, uint64_t now_ms);
void sync_window_reset(sync_machine_t *self, bool keep_headers);
void sync_window_on_commit(sync_machine_t *self, uint64_t now_ms);
void sync_window_on_cap(sync_machine_t *self, uint64_t cap);
void sync_window_peer_gone(sync_machine_t *self, uint64_t now_ms, const char *peer);
void sync_window_requeue_delivered(sync_machine_t *self, uint64_t from_height);
void sync_window_requeue_downloads(sync_machine_t *self);
void sync_window_timers(sync_machine_t *self, uint64_t now_ms);
int sync_window_on_headers(sync_machine_t *self, uint64_t now_ms, uint64_t req_id,
                           sync_outcome_t outcome, uint64_t start, uint32_t count,
                           const alys_hash_t *hashes);
int sync_window_on_headers_fork(sync_machine_t *self, uint64_t now_ms, uint64_t req_id);
int sync_window_on_outcome(sync_machine_t *self, uint64_t now_ms, uint64_t req_id,
                           sync_outcome_t outcome);
int sync_window_on_failed(sync_machine_t *self, uint64_t now_ms, uint64_t height,
                          bool peer_at_fault, const char *reason);
uint32_t sync_stall_timeout_ms(const sync_machine_t *self, uint32_t count);
/* request_timeout_ms * ALYS_REQUEST_TIMEOUT_HARD_FACTOR: no request of ours
 * is given longer (FETCH_* timeout_ms, the stall timeout). */
uint32_t sync_hard_timeout_ms(const sync_machine_config_t *c);
/* Ranges PeerManager holds for us become batches (sync_machine_adopt). */
void sync_window_adopt(sync_machine_t *self, uint64_t now_ms, const sync_adopt_range_t *ranges,
                       size_t n);
/* Body ranges downloading from peer id (its in_flight when it is added). */
uint32_t sync_window_peer_load(const sync_machine_t *self, const char *id);

/* sync_progress.c */
void sync_rate_reset(sync_machine_t *self, uint64_t now_ms);
void sync_rate_sample(sync_machine_t *self, uint64_t now_ms);
double sync_rate(const sync_machine_t *self, uint64_t now_ms);
bool sync_compute_can_produce(const sync_machine_t *self, uint64_t now_ms);

#endif
