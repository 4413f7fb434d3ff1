/*  sync_machine.c: lifecycle, the SyncMessage inputs, state transitions and
 *  the action queue. The range window lives in sync_window.c, peers in
 *  sync_peers.c, progress in sync_progress.c.
 *
 *  Every input follows one shape: apply the event, then settle(): re-derive
 *  the state from the facts (head, target, verified headers, peers), hand out
 *  work (dispatch) and report a CanProduceBlocks flip. Deriving the state in
 *  one place keeps the transitions consistent whatever event caused them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_internal.h"

/* ---- config ---------------------------------------------------------- */

/* The machine's own tunables: not keys of the node config (config.c does
 * not know them), so their defaults live here and only here. */
static void machine_tunables(sync_machine_config_t *cfg)
{
    cfg->header_lookahead = 0; /* 0 = 4 * download_window */
    cfg->header_batch = 512;
    cfg->max_range_attempts = 5;
    cfg->stall_floor_ms = 1000;
    cfg->stall_k = 4.0;
    cfg->lost_request_ms = 0; /* 0 = hard bound + request_timeout_ms + 1000 */
    cfg->processing_timeout_ms = 30000;
    cfg->discovery_interval_ms = 1000;
    cfg->max_discovery_attempts = 30;
    cfg->isolation_grace_ms = 2000;
    cfg->genesis_height = 0;
    cfg->random_seed = 1;
    cfg->req_id_base = 1;
}

/* The [sync] keys come from the node config, whose defaults are the one
 * source of theirs (alys_config_defaults): none are repeated here. */
void sync_machine_config_defaults(sync_machine_config_t *cfg)
{
    if (!cfg)
        return;
    alys_config_t node; /* ~15 KB, once per machine */
    alys_config_defaults(&node);
    sync_machine_config_from(cfg, &node);
    /* A default node has no bootstrap peers, but a machine built from the
     * defaults (tests, the simulator) is told its peers: not solo. */
    cfg->solo = false;
}

void sync_machine_config_from(sync_machine_config_t *cfg, const alys_config_t *node)
{
    if (!cfg)
        return;
    if (!node) {
        sync_machine_config_defaults(cfg);
        return;
    }
    memset(cfg, 0, sizeof *cfg);
    machine_tunables(cfg);
    cfg->strategy = strcmp(node->strategy, "sequential") == 0 ? SYNC_STRATEGY_SEQUENTIAL
                                                              : SYNC_STRATEGY_PARALLEL;
    cfg->max_parallel_downloads = node->max_parallel_downloads;
    cfg->adaptive_batch = strcmp(node->batch_size, "fixed") != 0;
    cfg->fixed_batch_size = node->fixed_batch_size;
    cfg->min_batch_size = node->min_batch_size;
    cfg->max_batch_size = node->max_batch_size;
    cfg->checkpoint_interval = node->checkpoint_interval;
    cfg->max_recovery_attempts = node->max_recovery_attempts;
    cfg->recovery_backoff_secs = node->recovery_backoff_secs;
    cfg->auto_recovery = node->auto_recovery;
    cfg->production_threshold = node->production_threshold;
    cfg->production_max_blocks_behind = node->production_max_blocks_behind;
    cfg->download_window = node->download_window;
    cfg->request_timeout_ms = node->request_timeout_ms;
    cfg->min_sync_peers = node->min_sync_peers;
    cfg->solo = node->bootstrap_peer_count == 0;
}

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Bring every knob into a range the machine can work with, so a bad value
 * degrades to a sane one instead of dividing by zero or unbounded memory. */
static void normalise_config(sync_machine_config_t *c)
{
    /* A zero window or timeout (a hand-built config: the node config
     * refuses them) takes the node config's default, not a copy of it. */
    if (c->download_window == 0 || c->request_timeout_ms == 0) {
        sync_machine_config_t d;
        sync_machine_config_defaults(&d);
        if (c->download_window == 0)
            c->download_window = d.download_window;
        if (c->request_timeout_ms == 0)
            c->request_timeout_ms = d.request_timeout_ms;
    }
    c->max_parallel_downloads = clamp_u32(c->max_parallel_downloads, 1, SYNC_MAX_PARALLEL);
    c->max_batch_size = clamp_u32(c->max_batch_size, 1, 1u << 16);
    c->min_batch_size = clamp_u32(c->min_batch_size, 1, c->max_batch_size);
    c->fixed_batch_size = clamp_u32(c->fixed_batch_size, 1, 1u << 16);
    if (c->download_window > (1u << 20))
        c->download_window = 1u << 20;
    if (c->header_lookahead == 0)
        c->header_lookahead = 4 * c->download_window;
    if (c->header_lookahead < c->download_window)
        c->header_lookahead = c->download_window;
    c->header_batch = clamp_u32(c->header_batch, 1, 1u << 16);
    c->stall_floor_ms = clamp_u32(c->stall_floor_ms, 1, c->request_timeout_ms);
    if (c->stall_k <= 0)
        c->stall_k = 4.0;
    /* Lost = no outcome after the longest PeerManager may wait (the hard
     * bound: a bandwidth-bound peer, issue 11) plus as long again as
     * request_timeout_ms and a second for the outcome to reach us. Less,
     * and a slow peer's range would be re-issued while it is still being
     * served. */
    if (c->lost_request_ms == 0) {
        uint64_t lost = (uint64_t) sync_hard_timeout_ms(c) + c->request_timeout_ms + 1000;
        c->lost_request_ms = lost > UINT32_MAX ? UINT32_MAX : (uint32_t) lost;
    }
    if (c->processing_timeout_ms == 0)
        c->processing_timeout_ms = 30000;
    if (c->discovery_interval_ms == 0)
        c->discovery_interval_ms = 1000;
    if (c->max_range_attempts == 0)
        c->max_range_attempts = 1;
    if (c->req_id_base == 0)
        c->req_id_base = 1;
    if (c->strategy == SYNC_STRATEGY_SEQUENTIAL) {
        c->max_parallel_downloads = 1;
        c->auto_recovery = false;
    }
    if (c->solo)
        c->min_sync_peers = 0; /* no bootstrap peers: we are the network */
}

/* ---- lifecycle ------------------------------------------------------- */

/* Largest range the machine will ever hand out: the window is split so that
 * max_parallel ranges fit in it (otherwise one big range would fill the
 * window and there would be nothing to parallelise). */
static uint32_t largest_batch(const sync_machine_config_t *c)
{
    if (c->strategy == SYNC_STRATEGY_SEQUENTIAL)
        return SYNC_SEQUENTIAL_BATCH;
    uint64_t per = c->download_window / c->max_parallel_downloads;
    uint32_t hi = c->adaptive_batch ? c->max_batch_size : c->fixed_batch_size;
    if (per < hi)
        hi = per ? (uint32_t) per : 1;
    return hi;
}

static size_t batch_slots(const sync_machine_config_t *c)
{
    if (c->strategy == SYNC_STRATEGY_SEQUENTIAL)
        return 1;
    uint32_t lo = c->adaptive_batch ? c->min_batch_size : c->fixed_batch_size;
    uint32_t hi = largest_batch(c);
    if (lo > hi)
        lo = hi;
    uint64_t n = c->download_window / lo + c->max_parallel_downloads + 2;
    return n > 1024 ? 1024 : (size_t) n;
}

static int alloc_pools(sync_machine_t *self)
{
    const sync_machine_config_t *c = &self->cfg;
    bool seq = c->strategy == SYNC_STRATEGY_SEQUENTIAL;
    self->batch_cap = batch_slots(c);
    self->batch_hash_cap = seq ? 0 : largest_batch(c);
    self->batches = calloc(self->batch_cap, sizeof *self->batches);
    if (!self->batches)
        return -1;
    /* One block for every slot's hashes (~0.75 MB by default): big enough
     * for the allocator to map it, zeroed pages touched only when used, so
     * a restarted SyncActor is not slowed by 69 heap allocations. */
    if (self->batch_hash_cap) {
        self->hash_pool = calloc(self->batch_cap * self->batch_hash_cap, sizeof(alys_hash_t));
        if (!self->hash_pool)
            return -1;
        for (size_t i = 0; i < self->batch_cap; i++)
            self->batches[i].hashes = self->hash_pool + i * self->batch_hash_cap;
    }
    self->hdr_cap = seq ? 1 : c->header_lookahead;
    self->hdr_ring = calloc(self->hdr_cap, sizeof(alys_hash_t));
    /* Worst case per call: a cancel and a fetch per range, plus state noise. */
    self->act_cap = 4 * (size_t) c->max_parallel_downloads + 4 * self->batch_cap + 64;
    self->actions = calloc(self->act_cap, sizeof *self->actions);
    return self->hdr_ring && self->actions ? 0 : -1;
}

sync_machine_t *sync_machine_new(const sync_machine_config_t *cfg)
{
    if (!cfg)
        return NULL;
    sync_machine_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    normalise_config(&self->cfg);
    if (alloc_pools(self) != 0) {
        sync_machine_destroy(&self);
        return NULL;
    }
    self->state = SYNC_DISCOVERING;
    self->stall_mult = 1.0;
    self->next_req_id = self->cfg.req_id_base;
    self->rng = self->cfg.random_seed ? self->cfg.random_seed : 0x9e3779b97f4a7c15ull;
    return self;
}

void sync_machine_destroy(sync_machine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sync_machine_t *self = *self_p;
    free(self->hash_pool);
    free(self->batches);
    free(self->hdr_ring);
    free(self->actions);
    free(self);
    *self_p = NULL;
}

/* ---- actions --------------------------------------------------------- */

/* Queue an action. LOG actions give way first: when the queue is three
 * quarters full they are dropped so that real work always fits. */
sync_action_t *sync_push(sync_machine_t *self, sync_action_kind_t kind)
{
    bool is_log = kind == SYNC_ACTION_LOG;
    if (self->act_len >= self->act_cap || (is_log && self->act_len * 4 >= self->act_cap * 3)) {
        if (!is_log)
            self->act_dropped++;
        return NULL;
    }
    sync_action_t *a = &self->actions[(self->act_head + self->act_len) % self->act_cap];
    self->act_len++;
    memset(a, 0, sizeof *a);
    a->kind = kind;
    return a;
}

bool sync_machine_next_action(sync_machine_t *self, sync_action_t *out)
{
    if (!self || !out || self->act_len == 0)
        return false;
    *out = self->actions[self->act_head];
    self->act_head = (self->act_head + 1) % self->act_cap;
    self->act_len--;
    return true;
}

size_t sync_machine_pending_actions(const sync_machine_t *self)
{
    return self ? self->act_len : 0;
}

uint64_t sync_machine_dropped_actions(const sync_machine_t *self)
{
    return self ? self->act_dropped : 0;
}

void sync_copy_id(sync_peer_id_t dst, const char *src)
{
    snprintf(dst, sizeof(sync_peer_id_t), "%s", src ? src : "");
}

void sync_log(sync_machine_t *self, sync_log_level_t level, const char *fmt, ...)
{
    sync_action_t *a = sync_push(self, SYNC_ACTION_LOG);
    if (!a)
        return;
    a->log.level = level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->log.text, sizeof a->log.text, fmt, ap);
    va_end(ap);
}

void sync_penalise(sync_machine_t *self, const char *peer, sync_penalty_t kind)
{
    sync_action_t *a = sync_push(self, SYNC_ACTION_PENALISE_PEER);
    if (!a)
        return;
    sync_copy_id(a->penalise.peer, peer);
    a->penalise.kind = kind;
}

void sync_cancel(sync_machine_t *self, uint64_t req_id, const char *peer)
{
    sync_action_t *a = sync_push(self, SYNC_ACTION_CANCEL);
    if (!a)
        return;
    a->cancel.req_id = req_id;
    sync_copy_id(a->cancel.peer, peer);
}

/* ---- state transitions ----------------------------------------------- */

bool sync_is_sequential(const sync_machine_t *self)
{
    return self->cfg.strategy == SYNC_STRATEGY_SEQUENTIAL;
}

bool sync_is_downloading(const sync_machine_t *self)
{
    return self->state == SYNC_DOWNLOADING_HEADERS || self->state == SYNC_DOWNLOADING_BLOCKS ||
           self->state == SYNC_CATCHING_UP;
}

static void emit_state(sync_machine_t *self, sync_state_kind_t from, const char *reason)
{
    sync_action_t *a = sync_push(self, SYNC_ACTION_STATE_CHANGED);
    if (!a)
        return;
    a->state_changed.from = from;
    a->state_changed.to = self->state;
    a->state_changed.paused = self->paused;
    snprintf(a->state_changed.reason, sizeof a->state_changed.reason, "%s", reason);
}

static void enter_state(sync_machine_t *self, uint64_t now_ms, sync_state_kind_t to)
{
    bool was_downloading = sync_is_downloading(self);
    self->state = to;
    switch (to) {
    case SYNC_DISCOVERING:
        self->disc_started_at = now_ms;
        self->disc_last_attempt = now_ms;
        self->disc_attempts = 0;
        break;
    case SYNC_SYNCED:
        self->synced_last_check = now_ms;
        self->recovery_attempts = 0; /* a full sync ends a run of failures */
        break;
    default:
        if (!was_downloading)
            self->phase_start_height = self->head;
        break;
    }
}

/* The one place the state changes: every change is reported with its reason. */
static void transition(sync_machine_t *self, uint64_t now_ms, sync_state_kind_t to,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void transition(sync_machine_t *self, uint64_t now_ms, sync_state_kind_t to,
                       const char *fmt, ...)
{
    char reason[SYNC_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    sync_state_kind_t from = self->state;
    enter_state(self, now_ms, to);
    emit_state(self, from, reason);
}

static bool retry_allowed(const sync_machine_t *self)
{
    return self->cfg.auto_recovery && !sync_is_sequential(self) &&
           self->recovery_attempts < self->cfg.max_recovery_attempts;
}

/* Past max_recovery_attempts the machine does not give up for good while
 * peers may come back (a partition, a network outage): it retries every
 * recovery_backoff_secs (at least 1 s), and at once when a usable peer
 * appears after none (sync_machine_on_peer_status). Failed stays visible
 * meanwhile. Only auto_recovery = false (the operator's choice) and the
 * sequential baseline wait for StartSync. */
static bool keeps_trying(const sync_machine_t *self)
{
    return self->cfg.auto_recovery && !sync_is_sequential(self);
}

void sync_fail(sync_machine_t *self, uint64_t now_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->fail_reason, sizeof self->fail_reason, fmt, ap);
    va_end(ap);
    /* Everything in flight is abandoned: recovery restarts from the head. */
    sync_window_reset(self, false);
    self->fail_last_good = self->head;
    uint64_t backoff_ms = (uint64_t) self->cfg.recovery_backoff_secs * 1000;
    if (!retry_allowed(self) && backoff_ms < 1000)
        backoff_ms = 1000; /* retrying for ever: never a busy loop */
    self->next_retry = keeps_trying(self) ? now_ms + backoff_ms : 0;
    self->seq_peer[0] = '\0';
    transition(self, now_ms, SYNC_FAILED, "%s", self->fail_reason);
    if (retry_allowed(self))
        sync_log(self, SYNC_LOG_WARN, "sync failed at height %llu: %s; recovery %u/%u in %u s",
                 (unsigned long long) self->head, self->fail_reason, self->recovery_attempts + 1,
                 self->cfg.max_recovery_attempts, self->cfg.recovery_backoff_secs);
    else if (keeps_trying(self))
        sync_log(self, SYNC_LOG_ERROR,
                 "sync failed at height %llu: %s; recovery attempts used up (%u): "
                 "retrying every %llu s, and as soon as a peer appears",
                 (unsigned long long) self->head, self->fail_reason,
                 self->cfg.max_recovery_attempts, (unsigned long long) (backoff_ms / 1000));
    else
        sync_log(self, SYNC_LOG_ERROR, "sync failed at height %llu: %s; waiting for StartSync",
                 (unsigned long long) self->head, self->fail_reason);
}

/* Below min_sync_peers a Synced node is Synced no more (so it may not
 * produce: an isolated authority must not build its own chain), once it has
 * been below for isolation_grace_ms: a PeerManager restart or a peer blip is
 * not isolation. With no usable peer at all there is nothing to download:
 * Discovering. true: evaluate stops here. */
static bool isolated(sync_machine_t *self, uint64_t now_ms, uint32_t usable)
{
    bool below = usable < self->cfg.min_sync_peers;
    if (!below)
        self->below_min_since = 0;
    if (below && self->state == SYNC_SYNCED) {
        if (!self->below_min_since)
            self->below_min_since = now_ms;
        if (now_ms - self->below_min_since < self->cfg.isolation_grace_ms)
            return true;
        transition(self, now_ms, SYNC_DISCOVERING,
                   "only %u usable peers for %llu ms, min_sync_peers %u: not Synced, "
                   "may not produce",
                   usable, (unsigned long long) (now_ms - self->below_min_since),
                   self->cfg.min_sync_peers);
        self->below_min_since = 0;
        return true;
    }
    if (usable > 0 || !below)
        return false; /* below with some peers: keep downloading, not Synced */
    if (self->state != SYNC_DISCOVERING)
        transition(self, now_ms, SYNC_DISCOVERING, "no usable peers left");
    return true;
}

/* Re-derive the state from the facts. DownloadingHeaders is only the opening
 * phase of a long sync: once bodies flow, waiting for the next header batch
 * stays DownloadingBlocks instead of flapping between the two. */
static void evaluate(sync_machine_t *self, uint64_t now_ms)
{
    if (!self->initialised || self->state == SYNC_FAILED)
        return;
    uint32_t usable = sync_usable_peers(self);
    if (isolated(self, now_ms, usable))
        return;
    uint64_t target = sync_target(self, now_ms);
    uint64_t behind = target > self->head ? target - self->head : 0;
    if (behind == 0) {
        if (usable < self->cfg.min_sync_peers) {
            if (self->state != SYNC_DISCOVERING && self->state != SYNC_SYNCED)
                transition(self, now_ms, SYNC_DISCOVERING,
                           "at target height %llu with %u usable peers: waiting for "
                           "min_sync_peers %u",
                           (unsigned long long) target, usable, self->cfg.min_sync_peers);
            return;
        }
        if (self->state != SYNC_SYNCED)
            transition(self, now_ms, SYNC_SYNCED, "reached target height %llu",
                       (unsigned long long) target);
        return;
    }
    bool near = behind <= self->cfg.download_window;
    bool have_headers = self->hdr_tip > self->head || sync_is_sequential(self);
    unsigned long long b = behind, t = target;
    switch (self->state) {
    case SYNC_DISCOVERING:
    case SYNC_SYNCED:
        if (near)
            transition(self, now_ms, SYNC_CATCHING_UP, "%llu blocks behind target %llu", b, t);
        else if (self->state == SYNC_DISCOVERING && !have_headers)
            transition(self, now_ms, SYNC_DOWNLOADING_HEADERS,
                       "peers ahead: %llu blocks behind target %llu", b, t);
        else
            transition(self, now_ms, SYNC_DOWNLOADING_BLOCKS, "%llu blocks behind target %llu", b, t);
        break;
    case SYNC_DOWNLOADING_HEADERS:
        if (near)
            transition(self, now_ms, SYNC_CATCHING_UP, "within the last window: %llu behind", b);
        else if (have_headers)
            transition(self, now_ms, SYNC_DOWNLOADING_BLOCKS, "headers verified up to %llu",
                       (unsigned long long) self->hdr_tip);
        break;
    case SYNC_DOWNLOADING_BLOCKS:
        if (near)
            transition(self, now_ms, SYNC_CATCHING_UP, "within the last window: %llu behind", b);
        break;
    case SYNC_CATCHING_UP:
        if (!near)
            transition(self, now_ms, SYNC_DOWNLOADING_BLOCKS, "target moved: %llu behind", b);
        break;
    case SYNC_FAILED: break;
    }
}

static void settle(sync_machine_t *self, uint64_t now_ms)
{
    evaluate(self, now_ms);
    if (self->initialised && sync_is_downloading(self) && !self->paused)
        sync_dispatch(self, now_ms);
    bool can = sync_compute_can_produce(self, now_ms);
    if (can != self->can_produce) {
        self->can_produce = can;
        sync_action_t *a = sync_push(self, SYNC_ACTION_CAN_PRODUCE_CHANGED);
        if (a)
            a->can_produce.value = can;
    }
}

/* ---- inputs ----------------------------------------------------------- */

static bool valid_id(const char *id)
{
    return id && id[0] && strlen(id) <= SYNC_PEER_ID_MAX;
}

int sync_machine_init(sync_machine_t *self, uint64_t now_ms, uint64_t head_height,
                      const alys_hash_t head_hash, uint64_t checkpoint_height)
{
    if (!self || !head_hash)
        return -1;
    /* A second init (Storage restarted, say) drops whatever was in flight. */
    sync_window_reset(self, false);
    self->initialised = true;
    self->head = head_height;
    memcpy(self->head_hash, head_hash, sizeof(alys_hash_t));
    self->hdr_tip = self->sched_tip = head_height;
    self->last_checkpoint = checkpoint_height;
    self->last_head_advance = now_ms;
    self->sync_start_time = now_ms;
    sync_rate_reset(self, now_ms);
    if (self->cfg.solo)
        transition(self, now_ms, SYNC_SYNCED, "solo node (no bootstrap peers) at height %llu",
                   (unsigned long long) head_height);
    else
        transition(self, now_ms, SYNC_DISCOVERING, "resuming from committed head %llu",
                   (unsigned long long) head_height);
    settle(self, now_ms);
    return 0;
}

int sync_machine_on_reorg(sync_machine_t *self, uint64_t now_ms, uint64_t head_height,
                          const alys_hash_t head_hash)
{
    if (!self || !head_hash || !self->initialised)
        return -1;
    for (size_t i = 0; i < SYNC_MAX_PEERS; i++) {
        self->peers[i].served_cap = UINT64_MAX;
        self->peers[i].cap_until = 0;
    }
    self->hdr_last_failed[0] = '\0';
    return sync_machine_init(self, now_ms, head_height, head_hash, self->last_checkpoint);
}

static void set_paused(sync_machine_t *self, bool paused, const char *reason)
{
    if (self->paused == paused)
        return;
    self->paused = paused;
    emit_state(self, self->state, reason);
}

int sync_machine_start(sync_machine_t *self, uint64_t now_ms, bool has_from, uint64_t from_height,
                       bool has_target, uint64_t target_height)
{
    if (!self)
        return -1;
    if (has_from && from_height != self->head + 1)
        sync_log(self, SYNC_LOG_INFO,
                 "StartSync from %llu: resuming from committed head %llu "
                 "instead (RecoverFromCheckpoint rolls back)",
                 (unsigned long long) from_height, (unsigned long long) self->head);
    self->has_target_cap = has_target;
    self->target_cap = target_height;
    if (has_target)
        sync_window_on_cap(self, target_height);
    self->recovery_attempts = 0;
    set_paused(self, false, "resumed by StartSync");
    if (self->initialised && self->state == SYNC_FAILED)
        transition(self, now_ms, SYNC_DISCOVERING, "StartSync from committed head %llu",
                   (unsigned long long) self->head);
    settle(self, now_ms);
    return 0;
}

int sync_machine_pause(sync_machine_t *self, uint64_t now_ms)
{
    if (!self)
        return -1;
    set_paused(self, true, "paused: no new requests");
    settle(self, now_ms);
    return 0;
}

int sync_machine_resume(sync_machine_t *self, uint64_t now_ms)
{
    if (!self)
        return -1;
    set_paused(self, false, "resumed");
    settle(self, now_ms);
    return 0;
}

int sync_machine_on_peer_status(sync_machine_t *self, uint64_t now_ms, const char *peer_id,
                                uint64_t reported_height, uint64_t max_plausible_height)
{
    if (!self || !valid_id(peer_id))
        return -1;
    uint32_t usable_before = sync_usable_peers(self);
    sync_peer_t *p = sync_peer_find(self, peer_id);
    if (!p)
        p = sync_peer_add(self, peer_id);
    if (!p) {
        sync_log(self, SYNC_LOG_WARN, "peer table full (%d): ignoring %s", SYNC_MAX_PEERS, peer_id);
        return -1;
    }
    if (max_plausible_height && reported_height > max_plausible_height) {
        /* No valid chain is longer than the slots since genesis. */
        p->lying = true;
        sync_penalise(self, peer_id, SYNC_PENALTY_LIED_HEIGHT);
        sync_log(self, SYNC_LOG_WARN,
                 "peer %s claims height %llu above the wall-clock slot %llu: "
                 "ignored",
                 peer_id, (unsigned long long) reported_height,
                 (unsigned long long) max_plausible_height);
    } else {
        p->lying = false;
        p->reported_height = reported_height;
    }
    if (self->state == SYNC_SYNCED)
        self->synced_last_check = now_ms;
    if (self->state == SYNC_FAILED && self->next_retry > now_ms && usable_before == 0 &&
        sync_usable_peers(self) > 0) {
        /* A partition heals: no reason to sit out the backoff. */
        sync_log(self, SYNC_LOG_INFO,
                 "peer %s appeared while Failed with no peers: recovering now", peer_id);
        self->next_retry = now_ms;
    }
    settle(self, now_ms);
    return 0;
}

int sync_machine_on_peer_disconnected(sync_machine_t *self, uint64_t now_ms, const char *peer_id,
                                      const char *reason)
{
    if (!self || !valid_id(peer_id))
        return -1;
    sync_peer_t *p = sync_peer_find(self, peer_id);
    if (!p)
        return 0;
    bool was_seq = sync_is_sequential(self) && strcmp(self->seq_peer, peer_id) == 0;
    bool busy = p->in_flight > 0;
    sync_window_peer_gone(self, now_ms, peer_id);
    sync_peer_remove(self, p);
    if (was_seq && busy && sync_is_downloading(self))
        sync_fail(self, now_ms, "sequential: peer %s disconnected (%s)", peer_id,
                  reason ? reason : "");
    settle(self, now_ms);
    return 0;
}

int sync_machine_on_peer_score(sync_machine_t *self, const char *peer_id, double score)
{
    if (!self || !valid_id(peer_id))
        return -1;
    sync_peer_t *p = sync_peer_find(self, peer_id);
    if (p) {
        p->has_score = true;
        p->score = score;
    }
    return 0;
}

int sync_machine_on_peer_rank(sync_machine_t *self, const char *peer_id, uint32_t rank)
{
    if (!self || !valid_id(peer_id))
        return -1;
    sync_peer_t *p = sync_peer_find(self, peer_id);
    if (p)
        p->rank = rank;
    return 0;
}

int sync_machine_on_batch_size(sync_machine_t *self, uint32_t batch_size)
{
    if (!self)
        return -1;
    self->batch_size_hint = batch_size;
    return 0;
}

int sync_machine_on_headers(sync_machine_t *self, uint64_t now_ms, uint64_t req_id,
                            sync_outcome_t outcome, uint64_t start, uint32_t count,
                            const alys_hash_t *hashes)
{
    if (!self || (outcome == SYNC_OUTCOME_OK && count && !hashes))
        return -1;
    int rc = sync_window_on_headers(self, now_ms, req_id, outcome, start, count, hashes);
    settle(self, now_ms);
    return rc;
}

int sync_machine_on_headers_fork(sync_machine_t *self, uint64_t now_ms, uint64_t req_id)
{
    if (!self)
        return -1;
    int rc = sync_window_on_headers_fork(self, now_ms, req_id);
    settle(self, now_ms);
    return rc;
}

static bool early_outcome(sync_machine_t *self, uint64_t req_id, sync_outcome_t outcome);

int sync_machine_on_range_outcome(sync_machine_t *self, uint64_t now_ms, uint64_t req_id,
                                  sync_outcome_t outcome)
{
    if (!self)
        return -1;
    if (sync_machine_awaiting_in_flight(self, now_ms) && early_outcome(self, req_id, outcome))
        return 0; /* perhaps a range InFlight will name: replayed by adopt */
    int rc = sync_window_on_outcome(self, now_ms, req_id, outcome);
    settle(self, now_ms);
    return rc;
}

int sync_machine_on_committed(sync_machine_t *self, uint64_t now_ms, uint64_t height,
                              const alys_hash_t hash)
{
    if (!self || !hash)
        return -1;
    if (!self->initialised || height <= self->head)
        return 0; /* stale or duplicate: storage only moves forward here */
    self->blocks_processed += height - self->head;
    self->head = height;
    memcpy(self->head_hash, hash, sizeof(alys_hash_t));
    self->last_head_advance = now_ms;
    sync_rate_sample(self, now_ms);
    sync_window_on_commit(self, now_ms);
    settle(self, now_ms);
    return 0;
}

int sync_machine_on_block_failed(sync_machine_t *self, uint64_t now_ms, uint64_t height,
                                 bool peer_at_fault, const char *reason)
{
    if (!self)
        return -1;
    int rc = sync_window_on_failed(self, now_ms, height, peer_at_fault, reason ? reason : "");
    settle(self, now_ms);
    return rc;
}

int sync_machine_on_processor_restarted(sync_machine_t *self, uint64_t now_ms)
{
    if (!self)
        return -1;
    sync_window_requeue_delivered(self, 0);
    sync_log(self, SYNC_LOG_WARN, "BlockProcessor restarted: re-fetching delivered ranges");
    settle(self, now_ms);
    return 0;
}

int sync_machine_on_peer_manager_restarted(sync_machine_t *self, uint64_t now_ms)
{
    if (!self)
        return -1;
    sync_window_requeue_downloads(self);
    self->adopt_until = 0; /* the new PeerManager holds nothing of ours */
    self->early_n = 0;
    sync_log(self, SYNC_LOG_WARN, "PeerManager restarted: re-issuing requests in flight");
    settle(self, now_ms);
    return 0;
}

int sync_machine_await_in_flight(sync_machine_t *self, uint64_t now_ms, uint32_t timeout_ms)
{
    if (!self)
        return -1;
    if (sync_is_sequential(self))
        return 0;
    self->adopt_until = now_ms + (timeout_ms ? timeout_ms : 1);
    return 0;
}

bool sync_machine_awaiting_in_flight(const sync_machine_t *self, uint64_t now_ms)
{
    return self && self->adopt_until && now_ms < self->adopt_until;
}

/* An outcome while awaiting InFlight for an id we do not know: it may be
 * for a range the answer will list as outstanding, should a result ever
 * overtake the answer (PeerManager sends both on one pipe today; the
 * machine does not rely on it). Kept (the last SYNC_EARLY_MAX) and
 * replayed once the ranges are adopted. */
static bool early_outcome(sync_machine_t *self, uint64_t req_id, sync_outcome_t outcome)
{
    for (size_t i = 0; i < self->batch_cap; i++)
        if (self->batches[i].used && self->batches[i].req_id == req_id)
            return false; /* one of ours: now */
    self->early[self->early_n % SYNC_EARLY_MAX] = (sync_early_t){.req_id = req_id, .outcome = outcome};
    self->early_n++;
    return true;
}

static void replay_early(sync_machine_t *self, uint64_t now_ms)
{
    uint32_t n = self->early_n < SYNC_EARLY_MAX ? self->early_n : SYNC_EARLY_MAX;
    uint32_t first = self->early_n - n;
    for (uint32_t i = 0; i < n; i++) {
        sync_early_t e = self->early[(first + i) % SYNC_EARLY_MAX];
        sync_window_on_outcome(self, now_ms, e.req_id, e.outcome);
    }
    self->early_n = 0;
}

int sync_machine_adopt(sync_machine_t *self, uint64_t now_ms, const sync_adopt_range_t *ranges,
                       size_t n)
{
    if (!self || (n && !ranges))
        return -1;
    if (!sync_machine_awaiting_in_flight(self, now_ms)) {
        if (n)
            sync_log(self, SYNC_LOG_INFO,
                     "InFlight from PeerManager too late: %zu ranges not adopted", n);
        return 0;
    }
    self->adopt_until = 0;
    if (self->initialised)
        sync_window_adopt(self, now_ms, ranges, n);
    replay_early(self, now_ms);
    settle(self, now_ms);
    return 0;
}

int sync_machine_create_checkpoint(sync_machine_t *self, uint64_t now_ms)
{
    if (!self)
        return -1;
    sync_action_t *a = sync_push(self, SYNC_ACTION_CREATE_CHECKPOINT);
    if (a)
        a->create_checkpoint.height = self->head;
    settle(self, now_ms);
    return a ? 0 : -1;
}

int sync_machine_on_checkpoint_written(sync_machine_t *self, uint64_t now_ms, uint64_t height)
{
    if (!self)
        return -1;
    if (height > self->last_checkpoint)
        self->last_checkpoint = height;
    settle(self, now_ms);
    return 0;
}

int sync_machine_recover_from_checkpoint(sync_machine_t *self, uint64_t now_ms, uint64_t height,
                                         const alys_hash_t hash)
{
    if (!self || !hash || !self->initialised || height > self->head)
        return -1;
    sync_action_t *a = sync_push(self, SYNC_ACTION_ROLLBACK);
    if (!a)
        return -1;
    a->rollback.height = height;
    sync_window_reset(self, false);
    self->head = self->hdr_tip = self->sched_tip = height;
    memcpy(self->head_hash, hash, sizeof(alys_hash_t));
    if (self->last_checkpoint > height)
        self->last_checkpoint = height;
    self->recovery_attempts = 0;
    self->last_head_advance = now_ms;
    sync_rate_reset(self, now_ms);
    transition(self, now_ms, SYNC_DISCOVERING, "recovering from checkpoint at height %llu",
               (unsigned long long) height);
    settle(self, now_ms);
    return 0;
}

/* Failed -> recovery at next_retry: restart from the committed head. */
static void recover(sync_machine_t *self, uint64_t now_ms)
{
    self->recovery_attempts++;
    sync_action_t *a = sync_push(self, SYNC_ACTION_RECOVERED);
    if (a) {
        a->recovered.from_height = self->head;
        a->recovered.attempt = self->recovery_attempts;
    }
    self->hdr_failures = 0;
    if (self->recovery_attempts <= self->cfg.max_recovery_attempts)
        transition(self, now_ms, SYNC_DISCOVERING, "auto recovery %u/%u from committed head %llu",
                   self->recovery_attempts, self->cfg.max_recovery_attempts,
                   (unsigned long long) self->head);
    else
        transition(self, now_ms, SYNC_DISCOVERING,
                   "auto recovery %u (past %u: retrying while peers may come back) "
                   "from committed head %llu",
                   self->recovery_attempts, self->cfg.max_recovery_attempts,
                   (unsigned long long) self->head);
}

/* Discovering counts its attempts only while no usable peer is known, and
 * fails after max_discovery_attempts. It does not fail while PeerManager has
 * connected peers that can serve: PeerManager offers every connected peer
 * above its disconnect score, below-cutoff ones after the rest (peer_select.c),
 * and timeouts alone never take a peer to the disconnect score (peer_score.c),
 * so "no usable peer" means nobody connected, not "everybody was slow"
 * (issue 7: an honest peer's timeouts left the machine with nobody, Failed,
 * and a 60 s recovery wait while the peer sat connected). */
static void discovery_timer(sync_machine_t *self, uint64_t now_ms)
{
    if (now_ms < self->disc_last_attempt + self->cfg.discovery_interval_ms)
        return;
    self->disc_last_attempt = now_ms;
    self->disc_attempts++;
    /* The old code waited for peers forever; the sequential baseline does too. */
    if (self->cfg.max_discovery_attempts && !sync_is_sequential(self) &&
        self->disc_attempts >= self->cfg.max_discovery_attempts)
        sync_fail(self, now_ms, "no usable peers after %u attempts", self->disc_attempts);
}

int sync_machine_tick(sync_machine_t *self, uint64_t now_ms)
{
    if (!self)
        return -1;
    if (!self->initialised)
        return 0;
    if (self->state == SYNC_FAILED && self->next_retry && now_ms >= self->next_retry && !self->paused)
        recover(self, now_ms);
    if (self->state == SYNC_DISCOVERING && sync_usable_peers(self) == 0)
        discovery_timer(self, now_ms);
    if (self->state == SYNC_SYNCED)
        self->synced_last_check = now_ms;
    sync_window_timers(self, now_ms);
    settle(self, now_ms);
    return 0;
}

/* ---- names ------------------------------------------------------------ */

const char *sync_state_name(sync_state_kind_t s)
{
    static const char *names[] = {
        "Discovering", "DownloadingHeaders", "DownloadingBlocks", "CatchingUp", "Synced",
        "Failed"};
    return (unsigned) s < sizeof names / sizeof names[0] ? names[s] : "Unknown";
}

const char *sync_outcome_name(sync_outcome_t o)
{
    static const char *names[] = {"ok",        "timeout", "invalid", "short",
                                  "violation", "no_peer", "busy"};
    return (unsigned) o < sizeof names / sizeof names[0] ? names[o] : "unknown";
}

const char *sync_penalty_name(sync_penalty_t p)
{
    static const char *names[] = {"stall", "invalid_header", "lied_height", "invalid_chain"};
    return (unsigned) p < sizeof names / sizeof names[0] ? names[p] : "unknown";
}

const char *sync_batch_state_name(sync_batch_state_t s)
{
    static const char *names[] = {"awaiting_download", "downloading", "awaiting_processing",
                                  "processing",        "done",        "failed"};
    return (unsigned) s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

const char *sync_action_name(sync_action_kind_t k)
{
    static const char *names[] = {
        "fetch_headers",       "fetch_blocks",      "cancel",   "penalise_peer", "state_changed",
        "can_produce_changed", "create_checkpoint", "rollback", "recovered",     "log",
        "range_verdict",       "fork_found"};
    return (unsigned) k < sizeof names / sizeof names[0] ? names[k] : "unknown";
}
