/*  sync_bus.c: see sync_bus.h. */
#include "sync_bus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- time ------------------------------------------------------------------ */

uint64_t sync_bus_unix(uint64_t mono_ms, uint64_t now_ms, uint64_t now_unix_ms)
{
    if (mono_ms == 0)
        return 0;
    int64_t unix_ms = (int64_t) now_unix_ms - (int64_t) now_ms + (int64_t) mono_ms;
    return unix_ms > 0 ? (uint64_t) unix_ms : 0;
}

/* ---- outcomes ----------------------------------------------------------------------- */

sync_outcome_t sync_bus_outcome(uint32_t outcome)
{
    return outcome <= SYNC_OUTCOME_BUSY ? (sync_outcome_t) outcome : SYNC_OUTCOME_NO_PEER;
}

/* The split PeerManager judges with too (alys_refusal_is_peer_fault). */
bool sync_bus_reason_is_peer_fault(const char *reason, uint64_t failed_height, uint64_t range_start)
{
    return alys_refusal_is_peer_fault(reason, failed_height, range_start);
}

uint32_t sync_bus_penalty_outcome(sync_penalty_t p)
{
    return p == SYNC_PENALTY_STALL ? ALYS__PEER__OUTCOME__TIMEOUT : ALYS__PEER__OUTCOME__INVALID;
}

sync_refusal_t sync_bus_refusal(const char *reason, const char *detail, uint64_t failed_height,
                                uint64_t range_start)
{
    if (reason && detail && strcmp(reason, "dropped") == 0 && strcmp(detail, "after_failure") == 0)
        return SYNC_REFUSAL_REPEAT;
    return sync_bus_reason_is_peer_fault(reason, failed_height, range_start) ? SYNC_REFUSAL_PEER_FAULT
                                                                             : SYNC_REFUSAL_OURS;
}

sync_outcome_t sync_bus_error_outcome(uint32_t code)
{
    return code == ALYS_ERR_BUSY ? SYNC_OUTCOME_BUSY : SYNC_OUTCOME_NO_PEER;
}

/* ---- Storage -------------------------------------------------------------------------- */

bool sync_bus_head_resets(bool initialised, uint64_t height, uint64_t asked_at_head)
{
    return !initialised || height < asked_at_head;
}

bool sync_bus_parse_head_advanced(const char *detail, uint64_t *height, alys_hash_t hash)
{
    unsigned long long h = 0;
    char hex[2 * ALYS_HASH_LEN + 1];
    if (!detail || sscanf(detail, "height=%llu hash=%64s", &h, hex) != 2 ||
        alys_unhex(hex, hash, ALYS_HASH_LEN) != 0)
        return false;
    *height = h;
    return true;
}

uint64_t sync_bus_checkpoints_passed(uint64_t last_seen, uint64_t height, uint64_t interval)
{
    if (height <= last_seen)
        return 0;
    uint64_t n = (height - last_seen) / (interval ? interval : 1);
    return n ? n : 1;
}

const Alys__Chain__BlockCheckpoint *sync_bus_find_checkpoint(const Alys__Storage__Checkpoints *cps,
                                                             uint64_t height)
{
    const Alys__Chain__BlockCheckpoint *found = NULL;
    for (size_t i = 0; cps && i < cps->n_checkpoints; i++)
        if (cps->checkpoints[i]->height == height && cps->checkpoints[i]->hash.len == ALYS_HASH_LEN)
            found = cps->checkpoints[i];
    return found;
}

/* ---- SyncProgress / SyncStatus --------------------------------------------------------- */

void sync_bus_progress(sync_progress_buf_t *buf, const sync_machine_t *m, uint64_t now_ms,
                       uint64_t now_unix_ms)
{
    sync_machine_get_progress(m, now_ms, &buf->p);
    const sync_progress_t *p = &buf->p;
    Alys__Progress__SyncProgress *msg = &buf->msg;
    alys__progress__sync_progress__init(msg);
    msg->genesis_height = p->genesis_height;
    msg->current_height = p->current_height;
    msg->target_height = p->target_height;
    msg->highest_peer_height = p->highest_peer_height;
    msg->blocks_processed = p->blocks_processed;
    msg->blocks_failed = p->blocks_failed;
    msg->sync_start_time = sync_bus_unix(p->sync_start_time, now_ms, now_unix_ms);
    msg->blocks_per_second = p->blocks_per_second;
    msg->last_checkpoint = p->last_checkpoint;
    msg->checkpoint_frequency = p->checkpoint_frequency;
    msg->active_peers = p->active_peers;
    msg->total_peers = p->total_peers;
    for (uint32_t i = 0; i < p->peer_score_count && i < SYNC_MAX_PEERS; i++) {
        alys__progress__peer_score__init(&buf->scores[i]);
        buf->scores[i].peer_id = (char *) p->peer_scores[i].peer_id;
        buf->scores[i].score = p->peer_scores[i].score;
        buf->score_ptrs[i] = &buf->scores[i];
    }
    msg->n_peer_scores = p->peer_score_count;
    msg->peer_scores = buf->score_ptrs;
    msg->state = (char *) sync_state_name(p->state);
    msg->eta_seconds = p->eta_seconds;
    msg->can_produce_blocks = p->can_produce_blocks;
}

static void fill_state_info(sync_status_buf_t *buf, uint64_t now_ms, uint64_t now_unix_ms)
{
    const sync_state_t *s = &buf->s;
    Alys__Sync__SyncStateInfo *i = &buf->info;
    alys__sync__sync_state_info__init(i);
    i->name = (char *) sync_state_name(s->kind);
    i->paused = s->paused;
    switch (s->kind) {
    case SYNC_DISCOVERING:
        i->started_at = sync_bus_unix(s->discovering.started_at, now_ms, now_unix_ms);
        i->attempts = s->discovering.attempts;
        break;
    case SYNC_DOWNLOADING_HEADERS:
        i->start_height = s->downloading_headers.start_height;
        i->target_height = s->downloading_headers.target_height;
        i->current_height = s->downloading_headers.current_height;
        i->peer = (char *) s->downloading_headers.peer;
        break;
    case SYNC_DOWNLOADING_BLOCKS:
        i->start_height = s->downloading_blocks.start_height;
        i->target_height = s->downloading_blocks.target_height;
        i->current_height = s->downloading_blocks.current_height;
        i->batch_size = s->downloading_blocks.batch_size;
        for (uint32_t k = 0; k < s->downloading_blocks.peer_count && k < SYNC_MAX_PARALLEL; k++)
            buf->peer_ptrs[k] = (char *) s->downloading_blocks.peers[k];
        i->n_peers = s->downloading_blocks.peer_count;
        i->peers = buf->peer_ptrs;
        break;
    case SYNC_CATCHING_UP:
        i->blocks_behind = s->catching_up.blocks_behind;
        i->sync_speed = s->catching_up.sync_speed;
        i->estimated_time = s->catching_up.estimated_time;
        break;
    case SYNC_SYNCED:
        i->last_check = sync_bus_unix(s->synced.last_check, now_ms, now_unix_ms);
        i->peer_height = s->synced.peer_height;
        break;
    case SYNC_FAILED:
        i->reason = (char *) s->failed.reason;
        i->last_good_height = s->failed.last_good_height;
        i->recovery_attempts = s->failed.recovery_attempts;
        i->next_retry = sync_bus_unix(s->failed.next_retry, now_ms, now_unix_ms);
        break;
    }
    if (!i->peer)
        i->peer = "";
    if (!i->reason)
        i->reason = "";
}

void sync_bus_status(sync_status_buf_t *buf, const sync_machine_t *m, uint64_t now_ms,
                     uint64_t now_unix_ms, uint64_t production_allowed_at)
{
    sync_machine_get_state(m, now_ms, &buf->s);
    fill_state_info(buf, now_ms, now_unix_ms);
    sync_bus_progress(&buf->progress, m, now_ms, now_unix_ms);
    alys__sync__sync_status__init(&buf->msg);
    buf->msg.state = &buf->info;
    buf->msg.progress = &buf->progress.msg;
    buf->msg.retries = buf->progress.p.retries;
    buf->msg.production_allowed_at = production_allowed_at;
}

void sync_bus_can_produce_reason(const sync_machine_t *m, uint64_t now_ms, char *out, size_t len)
{
    sync_progress_t p;
    sync_machine_get_progress(m, now_ms, &p);
    const char *name = sync_state_name(p.state);
    unsigned long long behind = p.blocks_behind, cur = p.current_height, tgt = p.target_height;
    if (p.can_produce_blocks && p.state == SYNC_SYNCED)
        snprintf(out, len, "Synced at height %llu", cur);
    else if (p.can_produce_blocks)
        snprintf(out, len, "%s: %llu blocks behind target %llu (%.2f%%), within the production limits",
                 name, behind, tgt, p.percent);
    else if (p.state == SYNC_FAILED) {
        sync_state_t s;
        sync_machine_get_state(m, now_ms, &s);
        snprintf(out, len, "Failed: %s", s.failed.reason);
    } else if (p.state == SYNC_DISCOVERING)
        snprintf(out, len, "Discovering: no usable peer yet (head %llu)", cur);
    else
        snprintf(out, len, "%s: %llu blocks behind target %llu (%.2f%%)%s", name, behind, tgt,
                 p.percent, p.paused ? ", paused" : "");
}

void sync_bus_progress_line(const sync_progress_t *p, char *out, size_t len)
{
    snprintf(out, len,
             "state=%s height=%llu target=%llu behind=%llu bps=%.1f eta=%.1f peers=%u/%u "
             "percent=%.2f can_produce=%s paused=%s headers=%llu in_flight=%u retries=%llu",
             sync_state_name(p->state), (unsigned long long) p->current_height,
             (unsigned long long) p->target_height, (unsigned long long) p->blocks_behind,
             p->blocks_per_second, p->eta_seconds, p->active_peers, p->total_peers, p->percent,
             p->can_produce_blocks ? "true" : "false", p->paused ? "true" : "false",
             (unsigned long long) p->header_height, p->ranges_in_flight,
             (unsigned long long) p->retries);
}
