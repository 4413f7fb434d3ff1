/*  sync_machine.h: the SyncActor's pure logic. Events in, actions out.
 *
 *  No sockets, no clock reads, no I/O: every input takes now_ms (the caller's
 *  clock; a monotonic one is best, the machine only subtracts times) and the
 *  machine answers by queueing actions that the caller drains with
 *  sync_machine_next_action(). The actor's core (sync_core.h: sync_inbox.c
 *  messages in, sync_act.c actions out; no sockets, no clock either) is a
 *  thin translator: message in -> one sync_machine_on_*() call -> drain the
 *  actions -> messages out; main.c (the shell) owns sockets, loop and
 *  clock. The decisions around the machine are pure modules too:
 *  sync_headers.h (header verification), sync_known.h (the peers the
 *  machine was told about), sync_restart.h (restarts of other actors),
 *  sync_rollback.h (the quiet window after a Rollback), sync_pending.h (our
 *  requests awaiting replies), sync_bus.h (message translations).
 *
 *  States are the seed's SyncState: Discovering, DownloadingHeaders,
 *  DownloadingBlocks, CatchingUp, Synced, Failed, plus a Paused flag.
 *
 *  Data path. The machine never sees block bytes. It asks PeerManager for
 *  header ranges (FETCH_HEADERS; the caller verifies them, sync_headers.h, and
 *  reports the verified hashes) and for body ranges (FETCH_BLOCKS with the
 *  expected header hashes; PeerManager delivers the bodies straight to
 *  BlockProcessor). It learns the outcome of every request id from PeerManager
 *  and the committed head from BlockProcessor/Storage.
 *
 *  Who scores what. PeerManager scores the outcomes it reports itself
 *  (timeout, invalid, short, violation), so the machine does NOT emit
 *  PENALISE_PEER for those. It emits PENALISE_PEER only for what PeerManager
 *  cannot know: a staller reassigned by the window logic, an implausible
 *  reported height, headers that failed verification (INVALID from
 *  on_headers), and the server of a header whose matching block broke a
 *  state rule (invalid_chain: on_block_failed). A block that
 *  BlockProcessor refused makes the serving peer a suspect only: the range is
 *  fetched from another peer, and once a copy validates the machine emits
 *  RANGE_VERDICT{valid=false} for the suspect (and valid=true for the peer
 *  whose copy was good), so the peer that really served bad data is blamed and
 *  nobody is blamed for our own failures.
 *
 *  Design rules (details in sync_window.c):
 *  - Headers first, interleaved: one header request (at most header_batch
 *    headers) is in flight whenever the verified header tip is below the
 *    target and fewer than header_lookahead verified hashes are held above
 *    the head, beside up to max_parallel_downloads body ranges (the limit
 *    counts body ranges only). Bodies are fetched only for heights with
 *    verified headers (the sequential strategy fetches without them, and so
 *    does a batch adopted at a restart, or a gap between adopted ones,
 *    until the headers of its heights are verified: sync_machine_adopt).
 *    DownloadingHeaders is entered only from Discovering, far from the
 *    target; once headers are held the state is DownloadingBlocks, and
 *    CatchingUp within one download_window of the target.
 *  - Window: ranges cover (head, head + download_window] at most; a new
 *    range is the batch size (PeerManager's adaptive hint clamped to
 *    [min_batch_size, max_batch_size], or fixed_batch_size) and at most a
 *    window's share (download_window / max_parallel).
 *  - Stalls: only the lowest unfinished range is watched. Timeout =
 *    max(clamp(stall_k * EWMA(ms per block) * count * mult, stall_floor_ms,
 *    request_timeout_ms), min(stall_k * EWMA(ms per block) * count, hard));
 *    mult doubles per reassignment (max 32) and decays x0.85 per completed
 *    range (Bitcoin Core's m_block_stalling_timeout). hard = request_timeout_ms
 *    * ALYS_REQUEST_TIMEOUT_HARD_FACTOR (8): the measured throughput alone
 *    may take the timeout past request_timeout_ms (peers whose upload is the
 *    limit, issue 11), stalls seen never do. No sample: request_timeout_ms.
 *  - Request timeouts: FETCH_* carry timeout_ms = the hard bound, an upper
 *    bound only: PeerManager applies its per-peer timeout (peer_table.h:
 *    request_timeout_ms unless the peer's measured bandwidth needs longer),
 *    so the machine never cuts a request off before PeerManager would.
 *  - A range that fails is retried on another peer (the last
 *    SYNC_EXCLUDE_MAX peers it failed on are avoided) up to
 *    max_range_attempts times, then the sync is Failed (auto_recovery
 *    retries after recovery_backoff_secs, max_recovery_attempts times).
 *  - A peer whose header reply shows it lacks a height it claimed (zero
 *    headers, or invalid ones) is believed only up to what it showed, for
 *    SYNC_HEIGHT_CAP_MS (30 s), so a plausible height lie cannot hold the
 *    target up.
 *
 *  The caller, in short (the SyncActor's shell; tests/unit/sync and the
 *  simulator do the same):
 *    cfg from sync_machine_config_from(&node_cfg) (the loaded config) or
 *    sync_machine_config_defaults(), req_id_base unique per start; new();
 *    at the actor's start, GetInFlight to PeerManager and
 *    await_in_flight(); init(head from Storage); its InFlight answer ->
 *    adopt(); then per message: the matching
 *    sync_machine_on_*() call, per timer (every 100 ms): tick(); after each
 *    call drain next_action() and translate: FETCH_* -> PeerManager,
 *    CANCEL -> nothing is sent (there is no Cancel message: PeerManager
 *    finishes or times the request out and the machine ignores the late
 *    result; the caller forgets its own context), PENALISE_PEER ->
 *    alys.peer.Penalise (stall -> TIMEOUT, invalid_header, lied_height, invalid_chain ->
 *    INVALID, reason = sync_penalty_name()), RANGE_VERDICT ->
 *    alys.peer.RangeVerdict, CREATE_CHECKPOINT/ROLLBACK -> Storage,
 *    STATE_CHANGED/CAN_PRODUCE_CHANGED -> event bus + log + metrics,
 *    RECOVERED -> alys_sync_recoveries_total, LOG -> log. Inputs:
 *    alys.peer.FetchResult -> on_range_outcome (the Outcome values are
 *    sync_outcome_t's), HeadersResult -> verify, then on_headers (or on_headers_fork when
 *    sync_headers_judge says another branch);
 *    BatchOutcome -> on_committed(head) then, if failed, on_block_failed;
 *    PeerDiscovered / PeerSet "connected" entries -> on_peer_status (with
 *    rank and score), PeerDisconnected / entries gone / peers absent from
 *    the sets -> on_peer_disconnected (sync_known.h keeps the two in step),
 *    PeerSet batch_size -> on_batch_size; a restart of PeerManager ->
 *    on_peer_manager_restarted and on_processor_restarted. Queries
 *    (GetSyncStatus, CanProduceBlocks) read get_progress()/get_state()/
 *    can_produce_blocks() directly.
 *
 *  Ownership. sync_machine_new() allocates everything the machine will ever
 *  use (range pool with its header hashes, header hash ring, action queue),
 *  so memory is bounded by the config; sync_machine_destroy() frees it and nulls the pointer. Actions are
 *  copied out by value; the one pointer in an action (FETCH_BLOCKS.expected)
 *  points into the machine and stays valid until the next sync_machine_*()
 *  input call. Drain all actions after every input call.
 */
#ifndef SYNC_MACHINE_H
#define SYNC_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/chain.h" /* alys_hash_t */
#include "config.h"      /* alys_config_t */

#define SYNC_PEER_ID_MAX      64  /* bytes, without the NUL */
#define SYNC_MAX_PEERS        128 /* peers the machine tracks at once */
#define SYNC_MAX_PARALLEL     32  /* cap on max_parallel_downloads */
#define SYNC_REASON_MAX       160
#define SYNC_LOG_MAX          200
#define SYNC_SEQUENTIAL_BATCH 1024 /* the old code's fixed batch */

typedef char sync_peer_id_t[SYNC_PEER_ID_MAX + 1];

/* The seed's SyncState. The numbers are alys_sync_state's gauge values. */
typedef enum {
    SYNC_DISCOVERING = 0,
    SYNC_DOWNLOADING_HEADERS = 1,
    SYNC_DOWNLOADING_BLOCKS = 2,
    SYNC_CATCHING_UP = 3,
    SYNC_SYNCED = 4,
    SYNC_FAILED = 5,
} sync_state_kind_t;

typedef enum { SYNC_STRATEGY_PARALLEL, SYNC_STRATEGY_SEQUENTIAL } sync_strategy_t;

/* Outcome of one request id, as PeerManager (or the header verification,
 * sync_headers.h) reports it. The values are alys.peer.Outcome's (proto/peer.proto). */
typedef enum {
    SYNC_OUTCOME_OK = 0, /* bodies delivered to BlockProcessor / headers verified */
    SYNC_OUTCOME_TIMEOUT = 1,
    SYNC_OUTCOME_INVALID = 2,   /* data did not verify (body vs header, bad header) */
    SYNC_OUTCOME_SHORT = 3,     /* fewer items than asked */
    SYNC_OUTCOME_VIOLATION = 4, /* protocol violation (PeerManager drops the peer) */
    SYNC_OUTCOME_NO_PEER = 5,   /* peer unknown or gone: re-issued, nobody blamed */
    SYNC_OUTCOME_BUSY = 6,      /* BlockProcessor full: re-issued a little later */
} sync_outcome_t;

typedef enum {
    SYNC_PENALTY_STALL = 0,      /* held up the download window past its timeout */
    SYNC_PENALTY_INVALID_HEADER, /* header verification failed (INVALID from on_headers) */
    SYNC_PENALTY_LIED_HEIGHT,    /* reported a height above the wall-clock slot */
    SYNC_PENALTY_INVALID_CHAIN,  /* served a validly signed header whose block broke a
                                  state rule (bad_nonce, insufficient_balance,
                                  state_root_mismatch): the header commits to an
                                  invalid block, so its server lied */
} sync_penalty_t;

/* Range ("batch") states, as the issue names them. DONE batches are freed at
 * once; FAILED ones wait to be retried on another peer. */
typedef enum {
    SYNC_BATCH_AWAITING_DOWNLOAD = 0,
    SYNC_BATCH_DOWNLOADING,
    SYNC_BATCH_AWAITING_PROCESSING,
    SYNC_BATCH_PROCESSING,
    SYNC_BATCH_DONE,
    SYNC_BATCH_FAILED,
} sync_batch_state_t;

typedef enum { SYNC_LOG_DEBUG, SYNC_LOG_INFO, SYNC_LOG_WARN, SYNC_LOG_ERROR } sync_log_level_t;

typedef enum {
    SYNC_ACTION_FETCH_HEADERS,
    SYNC_ACTION_FETCH_BLOCKS,
    SYNC_ACTION_CANCEL,
    SYNC_ACTION_PENALISE_PEER,
    SYNC_ACTION_STATE_CHANGED,
    SYNC_ACTION_CAN_PRODUCE_CHANGED,
    SYNC_ACTION_CREATE_CHECKPOINT,
    SYNC_ACTION_ROLLBACK,
    SYNC_ACTION_RECOVERED,
    SYNC_ACTION_LOG,
    SYNC_ACTION_RANGE_VERDICT,
    SYNC_ACTION_FORK_FOUND,
} sync_action_kind_t;

typedef struct {
    sync_action_kind_t kind;
    union {
        struct { /* GetHeaders [start, start+count) */
            uint64_t req_id;
            sync_peer_id_t peer;
            uint64_t start;
            uint32_t count;
            alys_hash_t parent_hash; /* hash of height start-1: verify linkage */
            uint32_t timeout_ms;     /* upper bound; PeerManager may use less */
        } fetch_headers;
        struct { /* GetBlocks [start, start+count) */
            uint64_t req_id;
            sync_peer_id_t peer;
            uint64_t start;
            uint32_t count;
            const alys_hash_t *expected; /* header hash per height, or NULL */
            uint32_t expected_count;     /* == count, or 0 (sequential) */
            bool deliver_to_processor;   /* always true today */
            uint32_t timeout_ms;         /* upper bound; PeerManager may use less */
        } fetch_blocks;
        struct {
            uint64_t req_id;
            sync_peer_id_t peer;
        } cancel;
        struct {
            sync_peer_id_t peer;
            sync_penalty_t kind;
        } penalise;
        struct { /* from == to when only paused flips */
            sync_state_kind_t from, to;
            bool paused;
            char reason[SYNC_REASON_MAX];
        } state_changed;
        struct {
            bool value;
        } can_produce;
        struct {
            uint64_t height;
        } create_checkpoint; /* at the head, now */
        struct {
            uint64_t height;
        } rollback; /* roll storage back to height */
        struct {
            uint64_t from_height;
            uint32_t attempt;
        } recovered;
        struct {
            sync_log_level_t level;
            char text[SYNC_LOG_MAX];
        } log;
        struct { /* alys.peer.RangeVerdict: sent when a range
                                          that failed processing from one peer later
                                          validated from another (or the same) peer */
            uint64_t start;
            uint32_t count;
            sync_peer_id_t peer;
            bool valid; /* false: this peer served bad data */
            char reason[SYNC_LOG_MAX / 2];
        } range_verdict;
        struct { /* the peer's headers do not link to our committed head:
                    fork choice's question (sync_fork.h) */
            sync_peer_id_t peer;
            uint64_t peer_height;
        } fork_found;
    };
} sync_action_t;

/* Everything the machine is tuned by. Fill with sync_machine_config_from()
 * (from the loaded node config) or sync_machine_config_defaults() (the node
 * config's defaults), then adjust. The [sync] keys' defaults live in the
 * node config only (alys_config_defaults); the machine tunables below have
 * theirs in sync_machine.c. Out-of-range values are clamped by new(). */
typedef struct {
    sync_strategy_t strategy;
    uint32_t max_parallel_downloads; /* ranges in flight, [1, SYNC_MAX_PARALLEL] */
    bool adaptive_batch;             /* batch size from PeerManager, else fixed */
    uint32_t fixed_batch_size;
    uint32_t min_batch_size, max_batch_size;
    uint64_t checkpoint_interval;
    uint32_t max_recovery_attempts;
    uint32_t recovery_backoff_secs;
    bool auto_recovery;
    double production_threshold; /* percent, 99.5 */
    uint64_t production_max_blocks_behind;
    uint64_t download_window;    /* blocks ahead of the committed head */
    uint32_t request_timeout_ms; /* bound of the adaptive timeouts unless the
                                    measured throughput needs longer; 8x it
                                    is the hard bound (ALYS_REQUEST_TIMEOUT_
                                    HARD_FACTOR) */
    uint32_t min_sync_peers;     /* fewer usable peers: not Synced, may not
                                    produce; 0 lets a lone node be Synced */
    /* Machine tunables (not in the TOML; defaults are sound). */
    uint64_t header_lookahead;       /* verified header hashes kept above the head;
                                          0 = 4 * download_window, at least the window */
    uint32_t header_batch;           /* headers per GetHeaders, 512 */
    uint32_t max_range_attempts;     /* attempts per range before Failed, 5 */
    uint32_t stall_floor_ms;         /* adaptive timeout floor, 1000 */
    double stall_k;                  /* timeout = k * expected time, 4 */
    uint32_t lost_request_ms;        /* no outcome at all: request lost;
                                          0 = 9 * request_timeout_ms + 1000
                                          (hard bound + request_timeout_ms + 1 s) */
    uint32_t processing_timeout_ms;  /* delivered but head still: processor lost them, 30000 */
    uint32_t discovery_interval_ms;  /* one Discovering attempt per interval, 1000 */
    uint32_t max_discovery_attempts; /* then Failed; 0 = keep discovering, 30 */
    uint32_t isolation_grace_ms;     /* Synced stays Synced this long below
                                          min_sync_peers (a PeerManager restart,
                                          a peer blip), 2000 */
    bool solo;                       /* no bootstrap peers: we are the network */
    uint64_t genesis_height;         /* 0 */
    uint64_t random_seed;            /* sequential peer choice; deterministic */
    uint64_t req_id_base;            /* first request id; make it unique per
                                          incarnation (e.g. unix ms << 16) so a
                                          restarted actor never matches a stale one */
} sync_machine_config_t;

typedef struct {
    sync_peer_id_t peer_id;
    double score; /* PeerManager's, [-100, 100] */
} sync_peer_score_t;

/* The seed's SyncProgress, as a plain struct. */
typedef struct {
    sync_state_kind_t state;
    bool paused;
    uint64_t genesis_height;
    uint64_t current_height;      /* committed head */
    uint64_t target_height;       /* max plausible peer height, capped by StartSync */
    uint64_t highest_peer_height; /* uncapped */
    uint64_t blocks_behind;
    double percent; /* current/target*100, 100 when target is 0 */
    uint64_t blocks_processed;
    uint64_t blocks_failed;
    uint64_t sync_start_time; /* now_ms of the sync's start */
    double blocks_per_second; /* head advance over the last 10 s */
    double eta_seconds;       /* -1 when unknown */
    uint64_t last_checkpoint; /* height, 0 = none */
    uint64_t checkpoint_frequency;
    uint32_t active_peers; /* connected and usable for sync */
    uint32_t total_peers;  /* connected */
    uint32_t peer_score_count;
    sync_peer_score_t peer_scores[SYNC_MAX_PEERS];
    bool can_produce_blocks;
    /* Diagnostics */
    uint64_t header_height; /* highest verified header */
    uint32_t ranges_in_flight;
    uint64_t retries;          /* range attempts that failed */
    uint64_t reassignments;    /* stalls moved to another peer */
    uint32_t stall_timeout_ms; /* current adaptive timeout for a full batch */
    uint32_t batch_size;       /* effective size of new ranges */
} sync_progress_t;

/* The seed's SyncState with its fields, filled at query time. */
typedef struct {
    sync_state_kind_t kind;
    bool paused;
    union {
        struct {
            uint64_t started_at;
            uint32_t attempts;
        } discovering;
        struct {
            uint64_t start_height, target_height, current_height;
            sync_peer_id_t peer; /* "" when no request in flight */
        } downloading_headers;
        struct {
            uint64_t start_height, target_height, current_height;
            uint32_t batch_size;
            uint32_t peer_count;
            sync_peer_id_t peers[SYNC_MAX_PARALLEL];
        } downloading_blocks;
        struct {
            uint64_t blocks_behind;
            double sync_speed;
            double estimated_time;
        } catching_up;
        struct {
            uint64_t last_check;
            uint64_t peer_height;
        } synced;
        struct {
            char reason[SYNC_REASON_MAX];
            uint64_t last_good_height;
            uint32_t recovery_attempts;
            uint64_t next_retry; /* 0 = none: waits for StartSync */
        } failed;
    };
} sync_state_t;

/* One range, for status and tests. */
typedef struct {
    uint64_t start;
    uint32_t count;
    sync_batch_state_t state;
    uint64_t req_id;
    sync_peer_id_t peer; /* downloading from / served by */
    uint32_t attempts;
} sync_batch_info_t;

/* A body range PeerManager still holds for us after our restart
 * (alys.peer.InFlightRange): outstanding at peer, or downloaded (delivered)
 * and waiting in its reorder buffer or at BlockProcessor. */
typedef struct {
    uint64_t req_id; /* the request id an earlier incarnation gave it */
    sync_peer_id_t peer;
    uint64_t start;
    uint32_t count;
    bool delivered;
} sync_adopt_range_t;

#define SYNC_ADOPT_MAX 1024 /* ranges sync_machine_adopt looks at */

typedef struct _sync_machine_t sync_machine_t;

/* ---- config ---------------------------------------------------------- */
/* The node config's defaults (alys_config_defaults) through config_from,
 * with solo false (a machine built from defaults is told its peers). */
void sync_machine_config_defaults(sync_machine_config_t *cfg);
/* The [sync] keys of the loaded node config, plus solo = no bootstrap
 * peers, plus the machine tunables' defaults. node NULL: the defaults. */
void sync_machine_config_from(sync_machine_config_t *cfg, const alys_config_t *node);

/* ---- lifecycle ------------------------------------------------------- */
/* NULL on allocation failure or a NULL config. Values out of range are clamped. */
sync_machine_t *sync_machine_new(const sync_machine_config_t *cfg);
void sync_machine_destroy(sync_machine_t **self_p);

/* Start (or restart) from the committed head that Storage reports. Sync
 * always resumes from here, never from genesis. Until init, peer reports are
 * recorded but nothing is fetched. */
int sync_machine_init(sync_machine_t *self, uint64_t now_ms, uint64_t head_height,
                      const alys_hash_t head_hash, uint64_t checkpoint_height);

/* Restart without re-downloading. After init (at the actor's start) the
 * caller asks PeerManager what it still holds for us (GetInFlight) and
 * calls await_in_flight: no body range is dispatched (headers are) until
 * adopt is called or timeout_ms has passed. Sequential: nothing (no hold).
 *
 * adopt: ranges (any order, at most SYNC_ADOPT_MAX looked at) become the
 * machine's own batches with their request ids and peers: delivered ->
 * awaiting processing, else downloading (counted in flight; the stall and
 * lost-request timers apply as to any range; at most
 * max_parallel_downloads of them). Ranges wholly at or below the head are
 * ignored, one starting at or below it is trimmed; one that overlaps an
 * adopted range, lies beyond head + download_window or is longer than the
 * largest batch is not adopted (its result comes for an
 * unknown id and is ignored; a gap re-fetches its heights). Gaps between
 * adopted ranges (and between the head and the first) become waiting
 * batches. Adopted and gap batches have no verified header hashes: a fetch
 * of one takes them from the verified headers when the header download
 * has reached its end, else goes without (BlockProcessor and Storage
 * validate bodies fully either way). The machine's later request ids are
 * above every adopted one. A range outcome for an unknown id that comes
 * while awaiting is kept (the last 64) and replayed after adopting, so the
 * machine does not depend on the answer never overtaking a result (the
 * actor's PeerManager sends both on one pipe; the machine does not assume
 * it). adopt only acts while awaiting (called late, or
 * twice, it does nothing and returns 0); n = 0 just ends the wait.
 * A PeerManager restart ends the wait too (the new one holds nothing). */
int sync_machine_await_in_flight(sync_machine_t *self, uint64_t now_ms, uint32_t timeout_ms);
int sync_machine_adopt(sync_machine_t *self, uint64_t now_ms, const sync_adopt_range_t *ranges,
                       size_t n);
bool sync_machine_awaiting_in_flight(const sync_machine_t *self, uint64_t now_ms);

/* ---- SyncMessage inputs (0 = ok, -1 = bad argument) ------------------- */
/* StartSync{from?, target?}: leaves Failed, resets recovery attempts, sets
 * the target cap (has_target false = no cap). from_height is advisory: the
 * machine never redoes committed work (use RecoverFromCheckpoint to roll back)
 * and cannot skip blocks, so a from other than head+1 only logs. */
int sync_machine_start(sync_machine_t *self, uint64_t now_ms, bool has_from, uint64_t from_height,
                       bool has_target, uint64_t target_height);
int sync_machine_pause(sync_machine_t *self, uint64_t now_ms);
int sync_machine_resume(sync_machine_t *self, uint64_t now_ms);

/* PeerDiscovered and every later status/NewBlock height. max_plausible_height
 * is the current wall-clock slot (0 = unknown): a higher claim is a lie, is
 * ignored and penalised. */
int sync_machine_on_peer_status(sync_machine_t *self, uint64_t now_ms, const char *peer_id,
                                uint64_t reported_height, uint64_t max_plausible_height);
int sync_machine_on_peer_disconnected(sync_machine_t *self, uint64_t now_ms, const char *peer_id,
                                      const char *reason);
/* PeerManager's current score for a peer (reported in SyncProgress). */
int sync_machine_on_peer_score(sync_machine_t *self, const char *peer_id, double score);
/* The peer's place in PeerManager's PeerSet order (0 = preferred by the
 * configured selection strategy). Among peers with equally many ranges in
 * flight, lower rank wins, then higher score. */
int sync_machine_on_peer_rank(sync_machine_t *self, const char *peer_id, uint32_t rank);
/* PeerManager's adaptive batch size (ignored when the batch size is fixed). */
int sync_machine_on_batch_size(sync_machine_t *self, uint32_t batch_size);

/* Headers for a FETCH_HEADERS request. OK: hashes[0..count) are the verified
 * header hashes of [start, start+count) (count may be less than asked).
 * INVALID: the caller's verification failed (the machine penalises the peer).
 * Other outcomes: PeerManager's report (it scored them). */
int sync_machine_on_headers(sync_machine_t *self, uint64_t now_ms, uint64_t req_id,
                            sync_outcome_t outcome, uint64_t start, uint32_t count,
                            const alys_hash_t *hashes);
/* Headers for a FETCH_HEADERS request that verified in themselves but whose
 * first header does not link to the parent the request named: the peer is on
 * another branch than the headers we hold. Which branch is the lie cannot be
 * told from headers (both are validly signed), only by executing the blocks,
 * so nobody is penalised: the peer is avoided for headers and no further
 * headers are asked for until the held ones are executed (then the other
 * branch was the lie) or dropped because their block broke a state rule
 * (then their server is convicted, see sync_machine_on_block_failed). When
 * the named parent is the committed head itself, the peer's branch left
 * ours at or below the head: FORK_FOUND (fork choice, sync_fork.h, decides
 * which chain is longer), nobody penalised, and the peer is believed only
 * up to our head until fork choice is done (sync_machine_on_reorg) or
 * SYNC_HEIGHT_CAP_MS passes. */
int sync_machine_on_headers_fork(sync_machine_t *self, uint64_t now_ms, uint64_t req_id);
/* Fork choice moved the head to another branch (a reorg committed): the
 * machine restarts from the new head (as init does) and believes every
 * peer's claimed height again (caps proven against the old branch are
 * void). */
int sync_machine_on_reorg(sync_machine_t *self, uint64_t now_ms, uint64_t head_height,
                          const alys_hash_t head_hash);
/* Outcome of a FETCH_BLOCKS request. Unknown, late or duplicate ids are
 * ignored (returns 0). */
int sync_machine_on_range_outcome(sync_machine_t *self, uint64_t now_ms, uint64_t req_id,
                                  sync_outcome_t outcome);

/* Processing results (alys.peer.BatchOutcome / alys.processor.BatchProcessed):
 * committed: the head is now height/hash (call it first, with head_height).
 * failed: the block at height was refused; BlockProcessor is assumed to have
 * dropped what it held at and above height, so those ranges are fetched
 * again. peer_at_fault false (e.g. a storage error) retries without suspicion.
 * A block whose body matched its verified header (PeerManager checks every
 * body against the header hash) and then broke a state rule (reason
 * bad_nonce, insufficient_balance or state_root_mismatch) convicts the peer
 * that served that HEADER (PENALISE_PEER invalid_chain): the signed header
 * commits to an invalid block. The verified headers from that height up are
 * dropped and fetched again from another peer; the body's server is not
 * blamed by the machine (it served exactly what the header named). */
int sync_machine_on_committed(sync_machine_t *self, uint64_t now_ms, uint64_t height,
                              const alys_hash_t hash);
int sync_machine_on_block_failed(sync_machine_t *self, uint64_t now_ms, uint64_t height,
                                 bool peer_at_fault, const char *reason);
/* An actor restarted (the caller sees it on the lifecycle events and its
 * sockets; sync_restart.h decides, once per process instance): what it held
 * is lost, so the machine re-issues it without blaming anyone. */
int sync_machine_on_processor_restarted(sync_machine_t *self, uint64_t now_ms);
int sync_machine_on_peer_manager_restarted(sync_machine_t *self, uint64_t now_ms);

/* CreateCheckpoint: queues CREATE_CHECKPOINT at the head. Storage also writes
 * one every checkpoint_interval blocks and reports it: on_checkpoint_written. */
int sync_machine_create_checkpoint(sync_machine_t *self, uint64_t now_ms);
int sync_machine_on_checkpoint_written(sync_machine_t *self, uint64_t now_ms, uint64_t height);
/* RecoverFromCheckpoint: queues ROLLBACK{height} and resumes from there.
 * -1 when height is above the head (nothing to roll back to). */
int sync_machine_recover_from_checkpoint(sync_machine_t *self, uint64_t now_ms, uint64_t height,
                                         const alys_hash_t hash);

/* Timers: staller detection, lost requests, discovery attempts, recovery. */
int sync_machine_tick(sync_machine_t *self, uint64_t now_ms);

/* ---- queries ----------------------------------------------------------- */
bool sync_machine_can_produce_blocks(const sync_machine_t *self);
void sync_machine_get_state(const sync_machine_t *self, uint64_t now_ms, sync_state_t *out);
void sync_machine_get_progress(const sync_machine_t *self, uint64_t now_ms, sync_progress_t *out);
/* Fills up to cap ranges, lowest first; returns how many exist. */
size_t sync_machine_get_batches(const sync_machine_t *self, sync_batch_info_t *out, size_t cap);
/* Current adaptive request timeout for a range of count blocks. */
uint32_t sync_machine_request_timeout_ms(const sync_machine_t *self, uint32_t count);

/* ---- actions ----------------------------------------------------------- */
/* Copies the oldest queued action into out; false when none is left. */
bool sync_machine_next_action(sync_machine_t *self, sync_action_t *out);
size_t sync_machine_pending_actions(const sync_machine_t *self);
/* Actions lost because the queue was full (0 unless a bug). */
uint64_t sync_machine_dropped_actions(const sync_machine_t *self);

/* ---- names (stable, for logs, events and metric labels) ---------------- */
const char *sync_state_name(sync_state_kind_t s);        /* "Discovering", ... */
const char *sync_outcome_name(sync_outcome_t o);         /* "ok", "timeout", ... */
const char *sync_penalty_name(sync_penalty_t p);         /* "stall", ... */
const char *sync_batch_state_name(sync_batch_state_t s); /* "awaiting_download", ... */
const char *sync_action_name(sync_action_kind_t k);

#endif
