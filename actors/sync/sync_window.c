/*  sync_window.c: headers first, then bodies in a moving window of ranges.
 *
 *  Headers and bodies are interleaved, not phased: one header request is kept
 *  in flight whenever the verified header tip is below the target and fewer
 *  than header_lookahead hashes are held above the head; at the same time up
 *  to max_parallel_downloads body ranges are in flight, each covering heights
 *  whose headers are already verified (the range carries their hashes, so a
 *  body is checked against its header on arrival). Headers are small and
 *  verify fast, so a lookahead of 4 windows keeps them ahead of the bodies
 *  while bounding memory.
 *
 *  Ranges ("batches") cover (head, sched_tip] without gaps and never reach
 *  beyond head + download_window: a range that cannot be processed yet waits
 *  in the window, and memory in flight is at most the window's blocks.
 *
 *  Stalls (after Bitcoin Core's block stalling logic): only the lowest
 *  unfinished range holds the window up, so only it is watched. Its timeout
 *  adapts: k times the expected time (EWMA of ms per block times its length),
 *  times a multiplier, clamped to [stall_floor_ms, request_timeout_ms]; the
 *  measured expected time alone (k * EWMA * length, no multiplier) may take
 *  it past request_timeout_ms, up to the hard bound (8 x), as PeerManager's
 *  per-peer timeout does for a bandwidth-bound peer (issue 11). Past it, the
 *  range moves to another peer, the slow one is penalised and the
 *  multiplier doubles, so a network that is slow for everyone does not
 *  cascade into disconnecting every peer in turn; each completed range decays
 *  the multiplier by 0.85 back toward 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_internal.h"

/* ---- batch helpers ---------------------------------------------------- */

/* now - since, 0 if the caller's clock stepped back (it should be monotonic). */
static uint64_t elapsed(uint64_t now_ms, uint64_t since)
{
    return now_ms > since ? now_ms - since : 0;
}

static uint64_t batch_end(const sync_batch_t *b) /* last height, inclusive */
{
    return b->start + b->count - 1;
}

static bool delivered(const sync_batch_t *b)
{
    return b->state == SYNC_BATCH_AWAITING_PROCESSING || b->state == SYNC_BATCH_PROCESSING;
}

static bool waiting(const sync_batch_t *b)
{
    return b->state == SYNC_BATCH_AWAITING_DOWNLOAD || b->state == SYNC_BATCH_FAILED;
}

static sync_batch_t *batch_alloc(sync_machine_t *self)
{
    for (size_t i = 0; i < self->batch_cap; i++)
        if (!self->batches[i].used) {
            sync_batch_t *b = &self->batches[i];
            alys_hash_t *keep = b->hashes; /* the slot's buffer outlives batches */
            memset(b, 0, sizeof *b);
            b->hashes = keep;
            b->used = true;
            return b;
        }
    return NULL;
}

static void batch_release(sync_batch_t *b)
{
    b->used = false;
}

static sync_batch_t *batch_by_req(sync_machine_t *self, uint64_t req_id)
{
    for (size_t i = 0; i < self->batch_cap; i++) {
        sync_batch_t *b = &self->batches[i];
        if (b->used && b->state == SYNC_BATCH_DOWNLOADING && b->req_id == req_id)
            return b;
    }
    return NULL;
}

static sync_batch_t *batch_lowest(sync_machine_t *self, bool only_waiting)
{
    sync_batch_t *low = NULL;
    for (size_t i = 0; i < self->batch_cap; i++) {
        sync_batch_t *b = &self->batches[i];
        if (b->used && (!only_waiting || waiting(b)) && (!low || b->start < low->start))
            low = b;
    }
    return low;
}

static void batch_exclude(sync_batch_t *b, const char *peer)
{
    sync_copy_id(b->excluded[b->excluded_count % SYNC_EXCLUDE_MAX], peer);
    b->excluded_count++;
}

static uint32_t excluded_len(const sync_batch_t *b)
{
    return b->excluded_count < SYNC_EXCLUDE_MAX ? b->excluded_count : SYNC_EXCLUDE_MAX;
}

/* ---- who served the verified headers ------------------------------------ */

/* One entry per header reply; the last one grows when the same peer
 * continues its own reply. */
static void segs_add(sync_machine_t *self, uint64_t start, uint64_t end, const char *peer)
{
    sync_hdr_seg_t *last = self->hdr_seg_len ? &self->hdr_segs[self->hdr_seg_len - 1] : NULL;
    if (last && last->end + 1 == start && strcmp(last->peer, peer) == 0) {
        last->end = end;
        return;
    }
    if (self->hdr_seg_len == SYNC_HDR_SEGS) /* request_headers waits for room */
        return;
    sync_hdr_seg_t *s = &self->hdr_segs[self->hdr_seg_len++];
    s->start = start;
    s->end = end;
    sync_copy_id(s->peer, peer);
}

/* Forget what is at or below the head (executed: nobody to convict) and
 * what is at or above from (dropped). */
static void segs_keep(sync_machine_t *self, uint64_t from)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < self->hdr_seg_len; i++) {
        sync_hdr_seg_t s = self->hdr_segs[i];
        if (s.start < self->head + 1)
            s.start = self->head + 1;
        if (s.end >= from)
            s.end = from - 1;
        if (s.start <= s.end)
            self->hdr_segs[n++] = s;
    }
    self->hdr_seg_len = n;
}

/* The peer that served the verified header at height, or NULL. */
static const char *segs_server(const sync_machine_t *self, uint64_t height)
{
    for (uint32_t i = 0; i < self->hdr_seg_len; i++)
        if (self->hdr_segs[i].start <= height && height <= self->hdr_segs[i].end)
            return self->hdr_segs[i].peer;
    return NULL;
}

static void emit_verdict(sync_machine_t *self, const sync_batch_t *b, const char *peer, bool valid)
{
    sync_action_t *a = sync_push(self, SYNC_ACTION_RANGE_VERDICT);
    if (!a)
        return;
    a->range_verdict.start = b->start;
    a->range_verdict.count = b->count;
    sync_copy_id(a->range_verdict.peer, peer);
    a->range_verdict.valid = valid;
    snprintf(a->range_verdict.reason, sizeof a->range_verdict.reason, "%s", b->suspect_reason);
}

/* A range is committed. If copies of it failed processing before, the peers
 * that served them lied (this copy validated): convict them, and clear the
 * one whose copy was good. A suspect whose own later copy validated is
 * cleared: the first failure was not its data. */
static void batch_done(sync_machine_t *self, sync_batch_t *b)
{
    for (uint32_t i = 0; i < b->suspect_count; i++)
        if (strcmp(b->suspects[i], b->peer) != 0)
            emit_verdict(self, b, b->suspects[i], false);
    if (b->suspect_count)
        emit_verdict(self, b, b->peer, true);
    batch_release(b);
}

static void batch_suspect(sync_batch_t *b, const char *reason)
{
    for (uint32_t i = 0; i < b->suspect_count; i++)
        if (strcmp(b->suspects[i], b->peer) == 0)
            return;
    if (b->suspect_count < SYNC_EXCLUDE_MAX)
        sync_copy_id(b->suspects[b->suspect_count++], b->peer);
    snprintf(b->suspect_reason, sizeof b->suspect_reason, "%s", reason);
}

/* Back to the queue without blame: the request was lost, not failed. */
static void batch_unassign(sync_machine_t *self, sync_batch_t *b)
{
    sync_peer_t *p = b->peer[0] ? sync_peer_find(self, b->peer) : NULL;
    if (p && b->state == SYNC_BATCH_DOWNLOADING && p->in_flight)
        p->in_flight--;
    b->state = SYNC_BATCH_AWAITING_DOWNLOAD;
    b->req_id = 0;
}

/* Forget a range, cancelling its download if one is still out. */
static void batch_drop(sync_machine_t *self, sync_batch_t *b)
{
    if (b->state == SYNC_BATCH_DOWNLOADING) {
        sync_cancel(self, b->req_id, b->peer);
        batch_unassign(self, b);
    }
    batch_release(b);
}

uint32_t sync_in_flight(const sync_machine_t *self)
{
    uint32_t n = 0;
    for (size_t i = 0; i < self->batch_cap; i++)
        n += self->batches[i].used && self->batches[i].state == SYNC_BATCH_DOWNLOADING;
    return n;
}

/* Adaptive (PeerManager's hint, clamped) or fixed, and never more than a
 * window's share per parallel range. */
uint32_t sync_batch_size(const sync_machine_t *self)
{
    const sync_machine_config_t *c = &self->cfg;
    if (sync_is_sequential(self))
        return SYNC_SEQUENTIAL_BATCH;
    uint32_t b = c->fixed_batch_size;
    if (c->adaptive_batch) {
        if (self->batch_size_hint)
            b = self->batch_size_hint;
        b = b < c->min_batch_size   ? c->min_batch_size
            : b > c->max_batch_size ? c->max_batch_size
                                    : b;
    }
    if (b > self->batch_hash_cap)
        b = self->batch_hash_cap;
    return b ? b : 1;
}

uint32_t sync_hard_timeout_ms(const sync_machine_config_t *c)
{
    return alys_request_timeout_hard_ms(c->request_timeout_ms);
}

/* Two parts (sync_machine.h):
 *   adaptive = clamp(k * EWMA(ms per block) * count * mult, floor, request_timeout_ms)
 *   measured = min(k * EWMA(ms per block) * count, hard bound)
 *   timeout  = max(adaptive, measured)
 * The multiplier (stalls seen) stays under request_timeout_ms as before;
 * only the throughput actually measured takes the timeout past it, so that
 * a range from peers whose upload is the limit is not called a stall for
 * taking the time such a range takes (issue 11). Without a sample:
 * request_timeout_ms for ALYS_REQUEST_TIMEOUT_REF_BLOCKS blocks,
 * proportionally more for a bigger range, up to the hard bound, as
 * PeerManager allows an unmeasured range (common/config.h). */
uint32_t sync_stall_timeout_ms(const sync_machine_t *self, uint32_t count)
{
    const sync_machine_config_t *c = &self->cfg;
    if (self->ewma_ms_per_block <= 0)
        return alys_request_timeout_unmeasured_ms(c->request_timeout_ms, sync_hard_timeout_ms(c),
                                                  count);
    double expected = c->stall_k * self->ewma_ms_per_block * (double) count;
    double t = expected * self->stall_mult;
    if (t < c->stall_floor_ms)
        t = c->stall_floor_ms;
    if (t > c->request_timeout_ms)
        t = c->request_timeout_ms;
    if (expected > t) {
        double hard = (double) sync_hard_timeout_ms(c);
        t = expected < hard ? expected : hard;
    }
    return (uint32_t) t;
}

/* ---- requests out -------------------------------------------------------- */

/* A batch without hashes (adopted, or a gap between adopted ones) takes
 * them from the verified headers once these cover it. false: none known. */
static bool fill_hashes(sync_machine_t *self, sync_batch_t *b)
{
    if (!b->no_hashes)
        return true;
    if (b->start <= self->head || batch_end(b) > self->hdr_tip || b->count > self->batch_hash_cap)
        return false;
    for (uint32_t i = 0; i < b->count; i++)
        memcpy(b->hashes[i], self->hdr_ring[(b->start + i) % self->hdr_cap], sizeof(alys_hash_t));
    b->no_hashes = false;
    return true;
}

static void assign(sync_machine_t *self, uint64_t now_ms, sync_batch_t *b, sync_peer_t *p)
{
    b->req_id = self->next_req_id++;
    b->state = SYNC_BATCH_DOWNLOADING;
    sync_copy_id(b->peer, p->id);
    b->since = now_ms;
    p->in_flight++;
    p->last_assigned = now_ms;
    sync_action_t *a = sync_push(self, SYNC_ACTION_FETCH_BLOCKS);
    if (!a)
        return;
    a->fetch_blocks.req_id = b->req_id;
    sync_copy_id(a->fetch_blocks.peer, p->id);
    a->fetch_blocks.start = b->start;
    a->fetch_blocks.count = b->count;
    bool with_hashes = !sync_is_sequential(self) && fill_hashes(self, b);
    a->fetch_blocks.expected = with_hashes ? (const alys_hash_t *) b->hashes : NULL;
    a->fetch_blocks.expected_count = with_hashes ? b->count : 0;
    a->fetch_blocks.deliver_to_processor = true;
    /* An upper bound only: PeerManager waits for its per-peer timeout when
     * shorter, which is request_timeout_ms at most unless the peer's
     * measured bandwidth says the range takes longer (issue 11). Sending
     * request_timeout_ms here would cut that peer off at it again. */
    a->fetch_blocks.timeout_ms = sync_hard_timeout_ms(&self->cfg);
}

static const uint8_t *header_hash(const sync_machine_t *self, uint64_t height)
{
    if (height <= self->head)
        return self->head_hash; /* only ever asked for the head itself */
    return self->hdr_ring[height % self->hdr_cap];
}

static void request_headers(sync_machine_t *self, uint64_t now_ms)
{
    if (self->hreq.active || self->hdr_seg_len == SYNC_HDR_SEGS)
        return;
    if (self->hdr_fork_hold && self->hdr_tip > self->head)
        return; /* another branch was offered: execution decides first */
    self->hdr_fork_hold = false;
    uint64_t target = sync_target(self, now_ms);
    uint64_t held = self->hdr_tip - self->head;
    if (self->hdr_tip >= target || held >= self->hdr_cap)
        return;
    uint64_t count = target - self->hdr_tip;
    if (count > self->cfg.header_batch)
        count = self->cfg.header_batch;
    if (count > self->hdr_cap - held)
        count = self->hdr_cap - held;
    sync_peer_t *p = sync_pick_peer(self, now_ms, self->hdr_tip + count,
                                    (const sync_peer_id_t *) &self->hdr_last_failed, 1);
    if (!p) /* nobody has them all: take what one has */
        p = sync_pick_peer(self, now_ms, self->hdr_tip + 1,
                           (const sync_peer_id_t *) &self->hdr_last_failed, 1);
    if (!p)
        return;
    uint64_t has = sync_peer_height(p, now_ms);
    if (self->hdr_tip + count > has)
        count = has - self->hdr_tip;
    self->hreq = (sync_header_req_t){.active = true,
                                     .req_id = self->next_req_id++,
                                     .start = self->hdr_tip + 1,
                                     .count = (uint32_t) count,
                                     .sent_at = now_ms};
    sync_copy_id(self->hreq.peer, p->id);
    /* Not counted in p->in_flight: headers are light, and bodies should
     * spread over all peers, the header peer included. */
    sync_action_t *a = sync_push(self, SYNC_ACTION_FETCH_HEADERS);
    if (!a)
        return;
    a->fetch_headers.req_id = self->hreq.req_id;
    sync_copy_id(a->fetch_headers.peer, p->id);
    a->fetch_headers.start = self->hreq.start;
    a->fetch_headers.count = self->hreq.count;
    memcpy(a->fetch_headers.parent_hash, header_hash(self, self->hdr_tip), sizeof(alys_hash_t));
    a->fetch_headers.timeout_ms = sync_hard_timeout_ms(&self->cfg); /* as for bodies */
}

static void header_req_drop(sync_machine_t *self, bool cancel)
{
    if (!self->hreq.active)
        return;
    if (cancel)
        sync_cancel(self, self->hreq.req_id, self->hreq.peer);
    self->hreq.active = false;
}

/* Drop the part of a waiting range that got committed meanwhile (a partly
 * processed range that failed above its start). false: nothing is left. */
static bool trim_to_head(sync_machine_t *self, sync_batch_t *b)
{
    if (b->start > self->head)
        return true;
    if (batch_end(b) <= self->head) {
        batch_release(b);
        return false;
    }
    uint32_t cut = (uint32_t) (self->head + 1 - b->start);
    if (b->hashes)
        memmove(b->hashes, b->hashes + cut, (size_t) (b->count - cut) * sizeof(alys_hash_t));
    b->start += cut;
    b->count -= cut;
    return true;
}

/* A new range above sched_tip, if the window, the verified headers and a
 * peer allow it. Partial ranges only at the target, when at least half a
 * batch fits, or when the headers cannot grow before these are executed,
 * so the window does not fragment into slivers. */
static bool new_batch(sync_machine_t *self, uint64_t now_ms)
{
    uint64_t target = sync_target(self, now_ms);
    uint64_t limit = self->head + self->cfg.download_window;
    if (self->hdr_tip < limit)
        limit = self->hdr_tip;
    if (target < limit)
        limit = target;
    if (limit <= self->sched_tip)
        return false;
    uint32_t bsize = sync_batch_size(self);
    uint64_t room = limit - self->sched_tip;
    uint32_t count = room < bsize ? (uint32_t) room : bsize;
    /* No more headers until these are executed (another branch was offered,
     * or the reply log is full): the sliver is all there is to fetch. */
    bool hdr_held = limit == self->hdr_tip &&
                    (self->hdr_fork_hold || self->hdr_seg_len == SYNC_HDR_SEGS);
    if (count < bsize && limit != target && 2 * (uint64_t) count < bsize && !hdr_held)
        return false;
    sync_peer_t *p = sync_pick_peer(self, now_ms, self->sched_tip + count, NULL, 0);
    sync_batch_t *b = p ? batch_alloc(self) : NULL;
    if (!b)
        return false;
    b->start = self->sched_tip + 1;
    b->count = count;
    for (uint32_t i = 0; i < count; i++)
        memcpy(b->hashes[i], self->hdr_ring[(b->start + i) % self->hdr_cap], sizeof(alys_hash_t));
    self->sched_tip += count;
    assign(self, now_ms, b, p);
    return true;
}

/* Lowest first: a retried range is always nearer the window head than a new one. */
static void dispatch_parallel(sync_machine_t *self, uint64_t now_ms)
{
    request_headers(self, now_ms);
    if (self->adopt_until) { /* bodies wait for what PeerManager still holds */
        if (now_ms < self->adopt_until)
            return;
        self->adopt_until = 0;
        sync_log(self, SYNC_LOG_INFO, "no InFlight from PeerManager in time: fetching afresh");
    }
    if (now_ms < self->busy_until)
        return;
    while (sync_in_flight(self) < self->cfg.max_parallel_downloads) {
        sync_batch_t *b = batch_lowest(self, true);
        if (b) {
            if (!trim_to_head(self, b))
                continue;
            sync_peer_t *p = b->prefer[0] ? sync_peer_find(self, b->prefer) : NULL;
            if (!p || !sync_peer_usable(p) || sync_peer_height(p, now_ms) < batch_end(b))
                p = sync_pick_peer(self, now_ms, batch_end(b),
                                   (const sync_peer_id_t *) b->excluded, excluded_len(b));
            if (!p)
                break;
            b->prefer[0] = '\0';
            assign(self, now_ms, b, p);
        } else if (!new_batch(self, now_ms)) {
            break;
        }
    }
}

static void choose_sequential_peer(sync_machine_t *self, uint64_t now_ms)
{
    sync_peer_t *cand[SYNC_MAX_PEERS];
    size_t n = 0;
    for (size_t i = 0; i < SYNC_MAX_PEERS; i++)
        if (sync_peer_usable(&self->peers[i]) && sync_peer_height(&self->peers[i], now_ms) > self->head)
            cand[n++] = &self->peers[i];
    if (n == 0)
        return;
    sync_copy_id(self->seq_peer, cand[sync_rand(self) % n]->id);
    sync_log(self, SYNC_LOG_INFO, "sequential sync from peer %s", self->seq_peer);
}

/* The old behaviour: one peer, 1024 blocks, the next request only once the
 * previous range is committed. */
static void dispatch_sequential(sync_machine_t *self, uint64_t now_ms)
{
    sync_batch_t *b = batch_lowest(self, false);
    if ((b && !waiting(b)) || now_ms < self->busy_until)
        return;
    uint64_t target = sync_target(self, now_ms);
    if (!b && self->head >= target)
        return;
    sync_peer_t *p = self->seq_peer[0] ? sync_peer_find(self, self->seq_peer) : NULL;
    if (!p) {
        choose_sequential_peer(self, now_ms);
        p = self->seq_peer[0] ? sync_peer_find(self, self->seq_peer) : NULL;
    }
    if (!p)
        return;
    if (b) { /* re-issue a lost or refused request: not an error */
        if (trim_to_head(self, b))
            assign(self, now_ms, b, p);
        return;
    }
    b = batch_alloc(self);
    if (!b)
        return;
    uint64_t left = target - self->head;
    b->start = self->head + 1;
    b->count = left < SYNC_SEQUENTIAL_BATCH ? (uint32_t) left : SYNC_SEQUENTIAL_BATCH;
    self->sched_tip = batch_end(b);
    assign(self, now_ms, b, p);
}

void sync_dispatch(sync_machine_t *self, uint64_t now_ms)
{
    if (sync_is_sequential(self))
        dispatch_sequential(self, now_ms);
    else
        dispatch_parallel(self, now_ms);
}

/* ---- resets ---------------------------------------------------------------- */

void sync_window_reset(sync_machine_t *self, bool keep_headers)
{
    for (size_t i = 0; i < self->batch_cap; i++) {
        sync_batch_t *b = &self->batches[i];
        if (b->used && b->state == SYNC_BATCH_DOWNLOADING)
            sync_cancel(self, b->req_id, b->peer);
        batch_release(b);
    }
    header_req_drop(self, true);
    for (size_t i = 0; i < SYNC_MAX_PEERS; i++)
        self->peers[i].in_flight = 0;
    self->sched_tip = self->head;
    if (!keep_headers) {
        self->hdr_tip = self->head;
        self->hdr_seg_len = 0;
        self->hdr_fork_hold = false;
    }
    self->hdr_failures = 0;
}

void sync_window_on_commit(sync_machine_t *self, uint64_t now_ms)
{
    (void) now_ms;
    for (size_t i = 0; i < self->batch_cap; i++) {
        sync_batch_t *b = &self->batches[i];
        if (!b->used)
            continue;
        if (batch_end(b) <= self->head) { /* DONE */
            if (b->state != SYNC_BATCH_DOWNLOADING)
                batch_done(self, b);
            else if (!b->suspect_count) /* someone else's copy won */
                batch_drop(self, b);
            /* else a retry of a range that failed: most likely its own copy
             * just committed, its FetchResult (another socket) not yet
             * here. That outcome settles it (sync_window_on_outcome):
             * released here, the liar would go unconvicted. */
        } else if (b->state == SYNC_BATCH_AWAITING_PROCESSING && b->start <= self->head + 1) {
            b->state = SYNC_BATCH_PROCESSING;
            b->since = now_ms;
        }
    }
    if (self->sched_tip < self->head)
        self->sched_tip = self->head;
    if (self->hdr_tip < self->head) { /* the head overtook the headers */
        self->hdr_tip = self->head;
        header_req_drop(self, true);
    }
    segs_keep(self, UINT64_MAX);
}

/* StartSync{target}: nothing above the cap is fetched. */
void sync_window_on_cap(sync_machine_t *self, uint64_t cap)
{
    uint64_t tip = self->head;
    for (size_t i = 0; i < self->batch_cap; i++) {
        sync_batch_t *b = &self->batches[i];
        if (!b->used)
            continue;
        if (b->start > cap) {
            batch_drop(self, b);
        } else if (batch_end(b) > tip) {
            tip = batch_end(b);
        }
    }
    self->sched_tip = tip;
}

void sync_window_peer_gone(sync_machine_t *self, uint64_t now_ms, const char *peer)
{
    (void) now_ms;
    for (size_t i = 0; i < self->batch_cap; i++) {
        sync_batch_t *b = &self->batches[i];
        if (b->used && b->state == SYNC_BATCH_DOWNLOADING && strcmp(b->peer, peer) == 0)
            batch_unassign(self, b);
    }
    if (self->hreq.active && strcmp(self->hreq.peer, peer) == 0)
        header_req_drop(self, false);
}

/* Ranges BlockProcessor no longer holds go back to the queue, no blame. */
void sync_window_requeue_delivered(sync_machine_t *self, uint64_t from_height)
{
    for (size_t i = 0; i < self->batch_cap; i++) {
        sync_batch_t *b = &self->batches[i];
        if (b->used && delivered(b) && b->start >= from_height)
            batch_unassign(self, b);
    }
}

void sync_window_requeue_downloads(sync_machine_t *self)
{
    for (size_t i = 0; i < self->batch_cap; i++) {
        sync_batch_t *b = &self->batches[i];
        if (b->used && b->state == SYNC_BATCH_DOWNLOADING)
            batch_unassign(self, b);
    }
    header_req_drop(self, false);
    for (size_t i = 0; i < SYNC_MAX_PEERS; i++)
        self->peers[i].in_flight = 0;
}

/* ---- outcomes -------------------------------------------------------------- */

/* The verified headers from height up are not to be trusted (their block
 * broke a state rule, or nobody can back them with a matching body): forget
 * them, and every range that was built on them, and ask for headers again.
 * BlockProcessor holds nothing at or above height (it failed there, or the
 * bodies never matched), so the ranges are simply released. */
static void drop_headers_from(sync_machine_t *self, uint64_t height)
{
    if (height <= self->head)
        height = self->head + 1;
    uint64_t tip = self->head;
    for (size_t i = 0; i < self->batch_cap; i++) {
        sync_batch_t *b = &self->batches[i];
        if (!b->used)
            continue;
        if (batch_end(b) >= height) {
            batch_drop(self, b);
        } else if (batch_end(b) > tip) {
            tip = batch_end(b);
        }
    }
    self->sched_tip = tip;
    if (self->hdr_tip >= height)
        self->hdr_tip = height - 1;
    header_req_drop(self, true);
    segs_keep(self, height);
    self->hdr_fork_hold = false;
    self->hdr_failures = 0;
}

/* Reasons of a block that matched its header and still broke a state rule:
 * the header itself commits to the invalid block (its tx root names these
 * transactions, its state root this result). Other refusals (a body that
 * is not the one the header names: tx_root_mismatch, malformed, ...) are
 * the body's server's. */
static bool state_rule(const char *reason)
{
    static const char *const k[] = {"bad_nonce", "insufficient_balance", "state_root_mismatch"};
    for (size_t i = 0; reason && i < sizeof k / sizeof k[0]; i++)
        if (strcmp(reason, k[i]) == 0)
            return true;
    return false;
}

/* One failed attempt of a range: retried elsewhere, unless it is the
 * sequential baseline (stops on the first error) or out of attempts.
 * blame: the peer is cooled down and the range avoids it next time. */
static void range_failed(sync_machine_t *self, uint64_t now_ms, sync_batch_t *b, bool blame,
                         const char *why)
{
    sync_peer_t *p = b->peer[0] ? sync_peer_find(self, b->peer) : NULL;
    unsigned long long s = b->start, e = b->start + b->count;
    self->retries++;
    b->attempts++;
    if (blame) {
        batch_exclude(b, b->peer);
        if (p)
            sync_peer_failed(self, p, now_ms);
    }
    b->state = SYNC_BATCH_FAILED;
    b->req_id = 0;
    if (sync_is_sequential(self)) {
        sync_fail(self, now_ms, "sequential: range [%llu,%llu) %s from %s", s, e, why, b->peer);
        return;
    }
    if (b->attempts >= self->cfg.max_range_attempts) {
        sync_fail(self, now_ms, "range [%llu,%llu) failed %u times (last: %s from %s)", s, e,
                  b->attempts, why, b->peer);
        return;
    }
    sync_log(self, SYNC_LOG_WARN, "range [%llu,%llu) %s from %s: retry %u/%u on another peer", s,
             e, why, b->peer, b->attempts, self->cfg.max_range_attempts);
}

static void learn_speed(sync_machine_t *self, const sync_batch_t *b, uint64_t now_ms)
{
    double per_block = (double) elapsed(now_ms, b->since) / (double) b->count;
    self->ewma_ms_per_block = self->ewma_ms_per_block > 0
                                  ? (1 - SYNC_EWMA_ALPHA) * self->ewma_ms_per_block +
                                        SYNC_EWMA_ALPHA * per_block
                                  : per_block;
    self->stall_mult *= SYNC_STALL_DECAY;
    if (self->stall_mult < 1.0)
        self->stall_mult = 1.0;
}

/* NO_PEER / BUSY: nobody served anything wrong. Re-issue; after BUSY hold
 * new bodies back briefly so a full BlockProcessor is not hammered. */
static void not_served(sync_machine_t *self, uint64_t now_ms, sync_batch_t *b, sync_outcome_t outcome)
{
    sync_peer_t *p = sync_peer_find(self, b->peer);
    sync_log(self, SYNC_LOG_DEBUG, "range [%llu,%llu) %s: re-issuing", (unsigned long long) b->start,
             (unsigned long long) (b->start + b->count), sync_outcome_name(outcome));
    batch_unassign(self, b);
    if (outcome == SYNC_OUTCOME_BUSY)
        self->busy_until = now_ms + SYNC_BUSY_BACKOFF_MS;
    else if (p)
        sync_peer_failed(self, p, now_ms); /* PeerDisconnected usually follows */
}

/* A body that PeerManager found INVALID (it does not match the header hash
 * we sent, or does not decode): either its server or the server of our
 * header lies, and one body cannot say which. So the body's server is only a
 * suspect (convicted by RANGE_VERDICT once a copy validates against the same
 * headers), and the range goes next to the header's server, who must be
 * able to back its own header with a body. Once the header's server has
 * failed the range too (or is gone) and another peer's body still does not
 * match, nobody backs those headers: they are dropped and fetched again
 * elsewhere, and the suspicions built on them go with them. true: the range
 * was dropped with its headers. */
static bool body_mismatch(sync_machine_t *self, sync_batch_t *b)
{
    if (sync_is_sequential(self))
        return false;
    const char *srv = segs_server(self, b->start);
    if (!srv)
        return false;
    bool own = strcmp(srv, b->peer) == 0;
    sync_peer_t *hp = sync_peer_find(self, srv);
    bool failed_it = false;
    for (uint32_t i = 0; i < excluded_len(b); i++)
        failed_it = failed_it || strcmp(b->excluded[i], srv) == 0;
    if (!own && (!hp || !sync_peer_usable(hp) || failed_it)) {
        sync_log(self, SYNC_LOG_WARN,
                 "range [%llu,%llu): no body matches the headers %s served "
                 "(last from %s): fetching headers again",
                 (unsigned long long) b->start, (unsigned long long) (b->start + b->count), srv,
                 b->peer);
        sync_copy_id(self->hdr_last_failed, srv);
        drop_headers_from(self, b->start);
        return true;
    }
    batch_suspect(b, "body does not match its verified header");
    if (!own)
        sync_copy_id(b->prefer, srv);
    return false;
}

int sync_window_on_outcome(sync_machine_t *self, uint64_t now_ms, uint64_t req_id,
                           sync_outcome_t outcome)
{
    sync_batch_t *b = batch_by_req(self, req_id);
    if (!b) { /* reassigned, cancelled or duplicate: nothing to do */
        sync_log(self, SYNC_LOG_DEBUG, "late %s outcome for request %llu ignored",
                 sync_outcome_name(outcome), (unsigned long long) req_id);
        return 0;
    }
    if (batch_end(b) <= self->head && outcome != SYNC_OUTCOME_OK) {
        /* Kept past the head for its verdict (sync_window_on_commit), and
         * this copy failed: it proves nothing, and nothing is left to get. */
        batch_unassign(self, b);
        batch_release(b);
        return 0;
    }
    if (outcome == SYNC_OUTCOME_NO_PEER || outcome == SYNC_OUTCOME_BUSY) {
        not_served(self, now_ms, b, outcome);
        return 0;
    }
    sync_peer_t *p = sync_peer_find(self, b->peer);
    if (p && p->in_flight)
        p->in_flight--;
    if (outcome == SYNC_OUTCOME_INVALID && body_mismatch(self, b))
        return 0;
    if (outcome != SYNC_OUTCOME_OK) {
        /* No height cap here: one truncated body reply from a lone honest
         * peer must not lower the target and make us "Synced" early. Only a
         * header reply disproves a claimed height (headers_failed). */
        range_failed(self, now_ms, b, true, sync_outcome_name(outcome));
        return 0;
    }
    learn_speed(self, b, now_ms);
    if (p)
        sync_peer_succeeded(p);
    b->state = b->start <= self->head + 1 ? SYNC_BATCH_PROCESSING : SYNC_BATCH_AWAITING_PROCESSING;
    b->since = now_ms;
    if (batch_end(b) <= self->head)
        batch_done(self, b);
    return 0;
}

static int headers_failed(sync_machine_t *self, uint64_t now_ms, sync_peer_t *p, sync_outcome_t outcome)
{
    self->hdr_failures++;
    self->retries++;
    sync_copy_id(self->hdr_last_failed, self->hreq.peer);
    if (p) {
        if (outcome == SYNC_OUTCOME_INVALID)
            sync_penalise(self, p->id, SYNC_PENALTY_INVALID_HEADER);
        if (outcome != SYNC_OUTCOME_TIMEOUT) /* it could not show the next header */
            sync_peer_cap_height(p, self->hreq.start - 1, now_ms);
        sync_peer_failed(self, p, now_ms);
    }
    unsigned long long s = self->hreq.start;
    if (self->hdr_failures >= self->cfg.max_range_attempts) {
        sync_fail(self, now_ms, "headers from %llu failed %u times (last: %s from %s)", s,
                  self->hdr_failures, sync_outcome_name(outcome), self->hdr_last_failed);
        return 0;
    }
    sync_log(self, SYNC_LOG_WARN, "headers from %llu: %s from %s, retrying elsewhere", s,
             sync_outcome_name(outcome), self->hdr_last_failed);
    return 0;
}

int sync_window_on_headers(sync_machine_t *self, uint64_t now_ms, uint64_t req_id,
                           sync_outcome_t outcome, uint64_t start, uint32_t count,
                           const alys_hash_t *hashes)
{
    if (!self->hreq.active || self->hreq.req_id != req_id) {
        sync_log(self, SYNC_LOG_DEBUG, "late header reply %llu ignored", (unsigned long long) req_id);
        return 0;
    }
    sync_peer_t *p = sync_peer_find(self, self->hreq.peer);
    header_req_drop(self, false);
    if (outcome == SYNC_OUTCOME_NO_PEER || outcome == SYNC_OUTCOME_BUSY) {
        if (p) /* not a failure of the headers */
            sync_peer_failed(self, p, now_ms);
        return 0;
    }
    bool fits = start == self->hreq.start && count <= self->hreq.count;
    if (outcome != SYNC_OUTCOME_OK || count == 0 || !fits)
        return headers_failed(self, now_ms, p,
                              outcome == SYNC_OUTCOME_OK
                                  ? (fits ? SYNC_OUTCOME_SHORT : SYNC_OUTCOME_VIOLATION)
                                  : outcome);
    for (uint32_t i = 0; i < count; i++)
        memcpy(self->hdr_ring[(start + i) % self->hdr_cap], hashes[i], sizeof(alys_hash_t));
    self->hdr_tip = start + count - 1;
    segs_add(self, start, self->hdr_tip, p ? p->id : "");
    self->hdr_failures = 0;
    self->hdr_last_failed[0] = '\0';
    /* A partial reply is normal (PeerManager bounds bytes per message): the
     * next request simply continues from the new tip. */
    if (p)
        sync_peer_succeeded(p);
    return 0;
}

/* The peer's headers do not link to our committed head: its branch left
 * ours at or below it. Which chain is longer is fork choice's question
 * (sync_fork.h); nobody pays for another branch. Until it is answered the
 * peer is believed only up to our head, so the target does not chase a
 * branch range sync cannot follow. */
static int fork_found(sync_machine_t *self, uint64_t now_ms)
{
    sync_peer_t *p = sync_peer_find(self, self->hreq.peer);
    sync_action_t *a = sync_push(self, SYNC_ACTION_FORK_FOUND);
    if (a) {
        sync_copy_id(a->fork_found.peer, self->hreq.peer);
        a->fork_found.peer_height = p ? p->reported_height : 0;
    }
    sync_log(self, SYNC_LOG_WARN,
             "headers from %llu by %s do not link to our head %llu: another branch; "
             "fork choice decides",
             (unsigned long long) self->hreq.start, self->hreq.peer, (unsigned long long) self->head);
    if (p)
        sync_peer_cap_height(p, self->head, now_ms);
    sync_copy_id(self->hdr_last_failed, self->hreq.peer);
    header_req_drop(self, false);
    return 0;
}

int sync_window_on_headers_fork(sync_machine_t *self, uint64_t now_ms, uint64_t req_id)
{
    if (!self->hreq.active || self->hreq.req_id != req_id)
        return 0;
    if (self->hdr_tip <= self->head)
        return fork_found(self, now_ms);
    sync_copy_id(self->hdr_last_failed, self->hreq.peer);
    sync_log(self, SYNC_LOG_WARN,
             "headers from %llu by %s do not link to ours (from %s): "
             "another branch; executing ours first",
             (unsigned long long) self->hreq.start, self->hreq.peer,
             segs_server(self, self->hdr_tip) ? segs_server(self, self->hdr_tip) : "?");
    header_req_drop(self, false);
    self->hdr_fork_hold = true;
    return 0;
}

static sync_batch_t *delivered_covering(sync_machine_t *self, uint64_t height)
{
    for (size_t i = 0; i < self->batch_cap; i++) {
        sync_batch_t *b = &self->batches[i];
        if (b->used && delivered(b) && b->start <= height && height <= batch_end(b))
            return b;
    }
    return NULL;
}

/* The block at height matched its verified header and broke a state rule:
 * the peer that served the header is convicted, the headers from height up
 * are dropped and fetched from someone else. */
static void header_lied(sync_machine_t *self, uint64_t now_ms, uint64_t height, const char *reason)
{
    const char *srv = segs_server(self, height);
    sync_peer_id_t liar = "";
    if (srv)
        sync_copy_id(liar, srv);
    sync_log(self, SYNC_LOG_WARN,
             "block %llu broke a state rule (%s) yet matched the header %s "
             "served: dropping the headers from %llu",
             (unsigned long long) height, reason, liar[0] ? liar : "(unknown)",
             (unsigned long long) height);
    if (liar[0]) {
        sync_peer_t *p = sync_peer_find(self, liar);
        if (p) /* it cannot show a valid block at height */
            sync_peer_cap_height(p, height - 1, now_ms);
        sync_penalise(self, liar, SYNC_PENALTY_INVALID_CHAIN);
        sync_copy_id(self->hdr_last_failed, liar);
    }
    drop_headers_from(self, height);
}

int sync_window_on_failed(sync_machine_t *self, uint64_t now_ms, uint64_t height,
                          bool peer_at_fault, const char *reason)
{
    sync_batch_t *b = delivered_covering(self, height);
    self->blocks_failed++;
    if (b && peer_at_fault && state_rule(reason) && !sync_is_sequential(self) &&
        height <= self->hdr_tip) {
        header_lied(self, now_ms, height, reason);
        return 0;
    }
    if (!b) {
        sync_log(self, SYNC_LOG_INFO, "block %llu failed (%s): no delivered range holds it, ignored",
                 (unsigned long long) height, reason);
        return 0;
    }
    if (peer_at_fault) {
        /* Suspect, not convicted: the verdict comes when another copy validates. */
        batch_suspect(b, reason);
        sync_log(self, SYNC_LOG_WARN,
                 "block %llu refused (%s): %s served [%llu,%llu), "
                 "fetching it elsewhere",
                 (unsigned long long) height, reason, b->peer, (unsigned long long) b->start,
                 (unsigned long long) (b->start + b->count));
    }
    /* BlockProcessor dropped what it held above the failure: fetch it again. */
    sync_window_requeue_delivered(self, b->start + b->count);
    range_failed(self, now_ms, b, peer_at_fault, reason);
    return 0;
}

/* ---- timers ------------------------------------------------------------------ */

/* No outcome at all long after PeerManager's own timeout: the request died
 * with a PeerManager restart. Re-issue it, blaming nobody. */
static void lost_requests(sync_machine_t *self, uint64_t now_ms)
{
    uint64_t lost = self->cfg.lost_request_ms;
    for (size_t i = 0; i < self->batch_cap; i++) {
        sync_batch_t *b = &self->batches[i];
        if (!b->used || b->state != SYNC_BATCH_DOWNLOADING || elapsed(now_ms, b->since) < lost)
            continue;
        if (batch_end(b) <= self->head) { /* kept for a verdict that never came */
            batch_drop(self, b);
            continue;
        }
        sync_log(self, SYNC_LOG_WARN, "request %llu for [%llu,%llu) lost: re-issuing",
                 (unsigned long long) b->req_id, (unsigned long long) b->start,
                 (unsigned long long) (b->start + b->count));
        sync_cancel(self, b->req_id, b->peer);
        batch_unassign(self, b);
    }
    if (self->hreq.active && elapsed(now_ms, self->hreq.sent_at) >= lost) {
        sync_log(self, SYNC_LOG_WARN, "header request %llu lost: re-issuing",
                 (unsigned long long) self->hreq.req_id);
        header_req_drop(self, true);
    }
}

/* The window head was delivered but the head has not moved for a long time:
 * BlockProcessor lost it (crash between our restart notices). */
static void lost_processing(sync_machine_t *self, uint64_t now_ms)
{
    sync_batch_t *low = batch_lowest(self, false);
    uint64_t limit = self->cfg.processing_timeout_ms;
    if (!low || !delivered(low) || elapsed(now_ms, low->since) < limit ||
        elapsed(now_ms, self->last_head_advance) < limit)
        return;
    sync_log(self, SYNC_LOG_WARN, "no commit for %llu ms with [%llu,...) delivered: re-fetching",
             (unsigned long long) elapsed(now_ms, self->last_head_advance),
             (unsigned long long) low->start);
    sync_window_requeue_delivered(self, 0);
    self->last_head_advance = now_ms;
}

static void stall_check(sync_machine_t *self, uint64_t now_ms)
{
    sync_batch_t *b = batch_lowest(self, false);
    if (!b || b->state != SYNC_BATCH_DOWNLOADING ||
        elapsed(now_ms, b->since) < sync_stall_timeout_ms(self, b->count))
        return;
    if (batch_end(b) <= self->head) { /* kept for its verdict: nothing to move */
        batch_drop(self, b);
        return;
    }
    sync_peer_t *slow = sync_peer_find(self, b->peer);
    sync_peer_id_t avoid[SYNC_EXCLUDE_MAX + 1];
    uint32_t n = excluded_len(b);
    memcpy(avoid, b->excluded, n * sizeof(sync_peer_id_t));
    sync_copy_id(avoid[n++], b->peer);
    sync_peer_t *alt = sync_pick_peer(self, now_ms, batch_end(b), (const sync_peer_id_t *) avoid, n);
    if (!alt || alt == slow)
        return; /* nobody else: PeerManager's own timeout decides */
    sync_cancel(self, b->req_id, b->peer);
    sync_penalise(self, b->peer, SYNC_PENALTY_STALL);
    sync_log(self, SYNC_LOG_WARN,
             "peer %s stalled the window at [%llu,%llu) for %llu ms: "
             "moving it to %s",
             b->peer, (unsigned long long) b->start, (unsigned long long) (b->start + b->count),
             (unsigned long long) elapsed(now_ms, b->since), alt->id);
    if (slow && slow->in_flight)
        slow->in_flight--;
    self->reassignments++;
    self->stall_mult *= 2;
    if (self->stall_mult > SYNC_STALL_MULT_MAX)
        self->stall_mult = SYNC_STALL_MULT_MAX;
    range_failed(self, now_ms, b, true, "stalled");
    if (self->state != SYNC_FAILED)
        assign(self, now_ms, b, alt);
}

void sync_window_timers(sync_machine_t *self, uint64_t now_ms)
{
    lost_requests(self, now_ms);
    lost_processing(self, now_ms);
    if (!sync_is_sequential(self) && !self->paused && sync_is_downloading(self))
        stall_check(self, now_ms);
}

/* ---- adoption (a restart that re-downloads nothing) ---------------------- */

uint32_t sync_window_peer_load(const sync_machine_t *self, const char *id)
{
    uint32_t n = 0;
    for (size_t i = 0; i < self->batch_cap; i++) {
        const sync_batch_t *b = &self->batches[i];
        n += b->used && b->state == SYNC_BATCH_DOWNLOADING && strcmp(b->peer, id) == 0;
    }
    return n;
}

/* Lowest start first; on a tie the delivered copy (further along), then
 * the newest request. */
static int adopt_order(const void *x, const void *y)
{
    const sync_adopt_range_t *a = x, *b = y;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    if (a->delivered != b->delivered)
        return a->delivered ? -1 : 1;
    return a->req_id > b->req_id ? -1 : a->req_id < b->req_id;
}

/* Waiting batches without hashes over [from, to], at most a batch each.
 * false: out of batch slots (sched_tip then ends where they end). */
static bool adopt_gap(sync_machine_t *self, uint64_t from, uint64_t to)
{
    uint32_t size = sync_batch_size(self);
    while (from <= to) {
        sync_batch_t *b = batch_alloc(self);
        if (!b)
            return false;
        uint64_t left = to - from + 1;
        b->start = from;
        b->count = left < size ? (uint32_t) left : size;
        b->state = SYNC_BATCH_AWAITING_DOWNLOAD;
        b->no_hashes = true;
        from += b->count;
        self->sched_tip = batch_end(b);
    }
    return true;
}

/* One range as a batch of ours, at sched_tip + 1 (the caller saw to it). */
static void adopt_one(sync_machine_t *self, uint64_t now_ms, sync_batch_t *b,
                      const sync_adopt_range_t *r, uint64_t start, uint32_t count)
{
    b->start = start;
    b->count = count;
    b->req_id = r->req_id;
    sync_copy_id(b->peer, r->peer);
    b->since = now_ms;
    b->no_hashes = true;
    if (r->delivered) {
        b->state = start <= self->head + 1 ? SYNC_BATCH_PROCESSING : SYNC_BATCH_AWAITING_PROCESSING;
    } else {
        b->state = SYNC_BATCH_DOWNLOADING;
        sync_peer_t *p = sync_peer_find(self, r->peer);
        if (p) {
            p->in_flight++;
            p->last_assigned = now_ms;
        }
    }
    self->sched_tip = batch_end(b);
    if (r->req_id >= self->next_req_id)
        self->next_req_id = r->req_id + 1;
}

/* ranges: sorted (adopt_order). Batches cover (head, sched_tip] without
 * gaps at every step, so a stop anywhere leaves the window sound. */
static size_t adopt_sorted(sync_machine_t *self, uint64_t now_ms,
                           const sync_adopt_range_t *ranges, size_t n)
{
    uint64_t limit = self->head + self->cfg.download_window;
    uint32_t downloading = sync_in_flight(self);
    size_t adopted = 0;
    for (size_t i = 0; i < n; i++) {
        const sync_adopt_range_t *r = &ranges[i];
        if (r->count == 0 || r->start + r->count - 1 <= self->head || !r->peer[0])
            continue; /* committed already (or nothing) */
        uint64_t start = r->start > self->head ? r->start : self->head + 1;
        uint32_t count = (uint32_t) (r->start + r->count - start);
        uint64_t end = start + count - 1;
        if (start <= self->sched_tip || count > self->batch_hash_cap)
            continue; /* overlaps one adopted, or longer than our batches */
        if (end > limit || (!r->delivered && downloading >= self->cfg.max_parallel_downloads))
            break; /* beyond the window, or more in flight than we run */
        if (start > self->sched_tip + 1 && !adopt_gap(self, self->sched_tip + 1, start - 1))
            break;
        sync_batch_t *b = batch_alloc(self);
        if (!b)
            break;
        adopt_one(self, now_ms, b, r, start, count);
        downloading += !r->delivered;
        adopted++;
    }
    return adopted;
}

void sync_window_adopt(sync_machine_t *self, uint64_t now_ms, const sync_adopt_range_t *ranges,
                       size_t n)
{
    if (n > SYNC_ADOPT_MAX)
        n = SYNC_ADOPT_MAX;
    sync_adopt_range_t *sorted = n ? malloc(n * sizeof *sorted) : NULL;
    if (n && !sorted) {
        sync_log(self, SYNC_LOG_WARN, "cannot adopt %zu ranges (out of memory): fetching afresh", n);
        return;
    }
    if (n)
        memcpy(sorted, ranges, n * sizeof *sorted);
    for (size_t i = 0; i < n; i++)
        sorted[i].peer[SYNC_PEER_ID_MAX] = '\0';
    if (n > 1)
        qsort(sorted, n, sizeof *sorted, adopt_order);
    size_t adopted = adopt_sorted(self, now_ms, sorted, n);
    free(sorted);
    sync_log(self, SYNC_LOG_INFO,
             "adopted %zu of %zu ranges PeerManager holds for us: scheduled up to %llu", adopted,
             n, (unsigned long long) self->sched_tip);
}
