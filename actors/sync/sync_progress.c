/*  sync_progress.c: SyncProgress, SyncState with its fields, blocks/s over a
 *  moving window, and CanProduceBlocks. Read-only except for the rate samples.
 */
#include <stdio.h>
#include <string.h>

#include "sync_internal.h"

/* ---- blocks per second ------------------------------------------------------ */

void sync_rate_reset(sync_machine_t *self, uint64_t now_ms)
{
    self->rate_len = 0;
    self->rate_next = 0;
    sync_rate_sample(self, now_ms);
}

/* One sample per SYNC_RATE_BUCKET_MS at most, so a burst of commits does not
 * push the window's start out of the ring. */
void sync_rate_sample(sync_machine_t *self, uint64_t now_ms)
{
    if (self->rate_len > 0) {
        sync_rate_sample_t *last =
            &self->rate[(self->rate_next + SYNC_RATE_SAMPLES - 1) % SYNC_RATE_SAMPLES];
        if (now_ms - last->t < SYNC_RATE_BUCKET_MS) {
            last->h = self->head;
            return;
        }
    }
    self->rate[self->rate_next] = (sync_rate_sample_t){.t = now_ms, .h = self->head};
    self->rate_next = (self->rate_next + 1) % SYNC_RATE_SAMPLES;
    if (self->rate_len < SYNC_RATE_SAMPLES)
        self->rate_len++;
}

/* Head advance since the newest sample at least SYNC_RATE_WINDOW_MS old (or
 * the oldest one kept), per second. 0 when the head has not moved. */
double sync_rate(const sync_machine_t *self, uint64_t now_ms)
{
    if (self->rate_len == 0)
        return 0;
    size_t oldest = (self->rate_next + SYNC_RATE_SAMPLES - self->rate_len) % SYNC_RATE_SAMPLES;
    sync_rate_sample_t base = self->rate[oldest];
    for (size_t i = 1; i < self->rate_len; i++) {
        sync_rate_sample_t s = self->rate[(oldest + i) % SYNC_RATE_SAMPLES];
        if (s.t + SYNC_RATE_WINDOW_MS > now_ms)
            break;
        base = s;
    }
    if (now_ms <= base.t || self->head <= base.h)
        return 0;
    return (double) (self->head - base.h) * 1000.0 / (double) (now_ms - base.t);
}

/* ---- CanProduceBlocks ------------------------------------------------------------ */

static double percent_of(uint64_t current, uint64_t target)
{
    if (target == 0 || current >= target)
        return 100.0;
    /* current*100/target, not current/target*100: 995*100/1000 is exactly 99.5 */
    return (double) current * 100.0 / (double) target;
}

bool sync_compute_can_produce(const sync_machine_t *self, uint64_t now_ms)
{
    if (!self->initialised)
        return false;
    if (self->state == SYNC_SYNCED)
        return true; /* below min_sync_peers it stops being Synced (isolated()) */
    if (sync_usable_peers(self) < self->cfg.min_sync_peers)
        return false;
    if (self->state != SYNC_CATCHING_UP)
        return false;
    uint64_t target = sync_target(self, now_ms);
    uint64_t behind = target > self->head ? target - self->head : 0;
    return behind <= self->cfg.production_max_blocks_behind &&
           percent_of(self->head, target) >= self->cfg.production_threshold - 1e-9;
}

bool sync_machine_can_produce_blocks(const sync_machine_t *self)
{
    return self && self->can_produce;
}

/* ---- getters ------------------------------------------------------------------------ */

uint32_t sync_machine_request_timeout_ms(const sync_machine_t *self, uint32_t count)
{
    return self ? sync_stall_timeout_ms(self, count) : 0;
}

static void fill_peers(const sync_machine_t *self, sync_progress_t *out)
{
    for (size_t i = 0; i < SYNC_MAX_PEERS; i++) {
        const sync_peer_t *p = &self->peers[i];
        if (!p->used)
            continue;
        out->total_peers++;
        out->active_peers += sync_peer_usable(p);
        if (p->has_score) {
            sync_peer_score_t *s = &out->peer_scores[out->peer_score_count++];
            sync_copy_id(s->peer_id, p->id);
            s->score = p->score;
        }
    }
}

void sync_machine_get_progress(const sync_machine_t *self, uint64_t now_ms, sync_progress_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!self)
        return;
    uint64_t target = sync_target(self, now_ms);
    out->state = self->state;
    out->paused = self->paused;
    out->genesis_height = self->cfg.genesis_height;
    out->current_height = self->head;
    out->target_height = target;
    out->highest_peer_height = sync_best_peer_height(self, now_ms);
    out->blocks_behind = target > self->head ? target - self->head : 0;
    out->percent = percent_of(self->head, target);
    out->blocks_processed = self->blocks_processed;
    out->blocks_failed = self->blocks_failed;
    out->sync_start_time = self->sync_start_time;
    out->blocks_per_second = sync_rate(self, now_ms);
    out->eta_seconds = out->blocks_behind == 0 ? 0
                       : out->blocks_per_second > 0
                           ? (double) out->blocks_behind / out->blocks_per_second
                           : -1;
    out->last_checkpoint = self->last_checkpoint;
    out->checkpoint_frequency = self->cfg.checkpoint_interval;
    fill_peers(self, out);
    out->can_produce_blocks = self->can_produce;
    out->header_height = self->hdr_tip;
    out->ranges_in_flight = sync_in_flight(self);
    out->retries = self->retries;
    out->reassignments = self->reassignments;
    out->stall_timeout_ms = sync_stall_timeout_ms(self, sync_batch_size(self));
    out->batch_size = sync_batch_size(self);
}

static void fill_block_peers(const sync_machine_t *self, sync_state_t *out)
{
    uint32_t *n = &out->downloading_blocks.peer_count;
    for (size_t i = 0; i < self->batch_cap && *n < SYNC_MAX_PARALLEL; i++) {
        const sync_batch_t *b = &self->batches[i];
        if (!b->used || b->state != SYNC_BATCH_DOWNLOADING)
            continue;
        bool seen = false;
        for (uint32_t j = 0; j < *n && !seen; j++)
            seen = strcmp(out->downloading_blocks.peers[j], b->peer) == 0;
        if (!seen)
            sync_copy_id(out->downloading_blocks.peers[(*n)++], b->peer);
    }
}

void sync_machine_get_state(const sync_machine_t *self, uint64_t now_ms, sync_state_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!self)
        return;
    uint64_t target = sync_target(self, now_ms);
    out->kind = self->state;
    out->paused = self->paused;
    switch (self->state) {
    case SYNC_DISCOVERING:
        out->discovering.started_at = self->disc_started_at;
        out->discovering.attempts = self->disc_attempts;
        break;
    case SYNC_DOWNLOADING_HEADERS:
        out->downloading_headers.start_height = self->phase_start_height;
        out->downloading_headers.target_height = target;
        out->downloading_headers.current_height = self->hdr_tip;
        if (self->hreq.active)
            sync_copy_id(out->downloading_headers.peer, self->hreq.peer);
        break;
    case SYNC_DOWNLOADING_BLOCKS:
        out->downloading_blocks.start_height = self->phase_start_height;
        out->downloading_blocks.target_height = target;
        out->downloading_blocks.current_height = self->head;
        out->downloading_blocks.batch_size = sync_batch_size(self);
        fill_block_peers(self, out);
        break;
    case SYNC_CATCHING_UP: {
        double bps = sync_rate(self, now_ms);
        uint64_t behind = target > self->head ? target - self->head : 0;
        out->catching_up.blocks_behind = behind;
        out->catching_up.sync_speed = bps;
        out->catching_up.estimated_time = behind == 0 ? 0 : bps > 0 ? (double) behind / bps : -1;
        break;
    }
    case SYNC_SYNCED:
        out->synced.last_check = self->synced_last_check;
        out->synced.peer_height = sync_best_peer_height(self, now_ms);
        break;
    case SYNC_FAILED:
        snprintf(out->failed.reason, sizeof out->failed.reason, "%s", self->fail_reason);
        out->failed.last_good_height = self->fail_last_good;
        out->failed.recovery_attempts = self->recovery_attempts;
        out->failed.next_retry = self->next_retry;
        break;
    }
}

size_t sync_machine_get_batches(const sync_machine_t *self, sync_batch_info_t *out, size_t cap)
{
    if (!self)
        return 0;
    size_t total = 0;
    for (size_t i = 0; i < self->batch_cap; i++) {
        const sync_batch_t *b = &self->batches[i];
        if (!b->used)
            continue;
        total++;
        if (!out)
            continue;
        /* insertion by start, keeping the lowest cap ranges */
        size_t n = total - 1 < cap ? total - 1 : cap;
        size_t j = n;
        while (j > 0 && out[j - 1].start > b->start)
            j--;
        if (j >= cap)
            continue;
        size_t move = (n < cap ? n : cap - 1) - j;
        memmove(&out[j + 1], &out[j], move * sizeof *out);
        out[j] = (sync_batch_info_t){.start = b->start,
                                     .count = b->count,
                                     .state = b->state,
                                     .req_id = b->req_id,
                                     .attempts = b->attempts};
        sync_copy_id(out[j].peer, b->peer);
    }
    return total;
}
