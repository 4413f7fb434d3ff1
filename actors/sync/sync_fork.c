/*  sync_fork.c: fork choice's resolution steps (see sync_fork.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_fork.h"
#include "util.h"

typedef enum { PH_IDLE, PH_LOCATOR, PH_HEADERS, PH_BLOCKS, PH_PROCESS } phase_t;

typedef struct {
    sync_peer_id_t peer;
    uint64_t until;
} cooldown_t;

struct sync_fork {
    uint32_t max_depth;
    uint32_t timeout_ms;
    phase_t phase;
    uint64_t deadline;
    uint64_t req_id; /* of the HEADERS or BLOCKS step */
    uint64_t next_req;
    sync_peer_id_t peer;
    uint64_t peer_height;
    /* Our locator: heights descending, [0] our head when it was read. */
    uint64_t loc_heights[ALYS_LOCATOR_MAX];
    alys_hash_t loc_hashes[ALYS_LOCATOR_MAX];
    size_t loc_n;
    uint64_t ancestor;
    alys_hash_t ancestor_hash;
    alys_hash_t hashes[SYNC_FORK_MAX_BLOCKS]; /* their headers from ancestor + 1 */
    uint32_t n_hashes;
    uint32_t fetch_count; /* blocks asked, then blocks to process */
    cooldown_t cool[SYNC_FORK_COOLDOWNS];
    struct {
        sync_peer_id_t peer;
        uint64_t height;
    } waiting[SYNC_FORK_WAITING];
    size_t n_waiting;
    sync_fork_status_t st;
};

sync_fork_t *sync_fork_new(uint32_t max_reorg_depth, uint32_t timeout_ms)
{
    sync_fork_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->max_depth = max_reorg_depth;
    self->timeout_ms = timeout_ms ? timeout_ms : 5000;
    self->next_req = 1;
    return self;
}

void sync_fork_destroy(sync_fork_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

static void step(sync_fork_step_t *out, sync_fork_step_kind_t kind)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
}

static void say(sync_fork_step_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(sync_fork_step_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof out->detail, fmt, ap);
    va_end(ap);
}

static bool cooling(const sync_fork_t *self, const char *peer, uint64_t now_ms)
{
    for (size_t i = 0; i < SYNC_FORK_COOLDOWNS; i++)
        if (self->cool[i].until > now_ms && strcmp(self->cool[i].peer, peer) == 0)
            return true;
    return false;
}

/* The resolution ends: the peer cools down unless it ended in a reorg. */
static void finish(sync_fork_t *self, uint64_t now_ms, sync_fork_step_t *out)
{
    out->ancestor = self->ancestor;
    memcpy(out->ancestor_hash, self->ancestor_hash, ALYS_HASH_LEN);
    out->head = self->loc_n ? self->loc_heights[0] : 0;
    out->depth = out->head > self->ancestor ? out->head - self->ancestor : 0;
    snprintf(out->peer, sizeof out->peer, "%s", self->peer);
    if (out->kind != SYNC_FORK_REORGED) {
        size_t oldest = 0;
        for (size_t i = 1; i < SYNC_FORK_COOLDOWNS; i++)
            if (self->cool[i].until < self->cool[oldest].until)
                oldest = i;
        snprintf(self->cool[oldest].peer, sizeof self->cool[oldest].peer, "%s", self->peer);
        self->cool[oldest].until = now_ms + SYNC_FORK_COOLDOWN_MS;
    }
    if (out->kind == SYNC_FORK_REORGED) {
        self->n_waiting = 0;
        self->st.reorgs++;
        snprintf(self->st.last_reorg, sizeof self->st.last_reorg, "%s", out->detail);
    } else if (out->kind == SYNC_FORK_TOO_DEEP) {
        self->st.refused++;
        snprintf(self->st.last_refused, sizeof self->st.last_refused, "%s", out->detail);
    }
    self->phase = PH_IDLE;
    self->loc_n = 0;
    self->n_hashes = 0;
}

static uint64_t new_req(sync_fork_t *self)
{
    return SYNC_FORK_REQ_BIT | self->next_req++;
}

/* A peer found while another resolution runs: it waits its turn (once;
 * the oldest waiting one gives way when full). */
static void wait_turn(sync_fork_t *self, const char *peer, uint64_t height)
{
    if (strcmp(peer, self->peer) == 0)
        return;
    for (size_t i = 0; i < self->n_waiting; i++)
        if (strcmp(self->waiting[i].peer, peer) == 0) {
            self->waiting[i].height = height;
            return;
        }
    if (self->n_waiting == SYNC_FORK_WAITING) {
        memmove(&self->waiting[0], &self->waiting[1],
                (SYNC_FORK_WAITING - 1) * sizeof self->waiting[0]);
        self->n_waiting--;
    }
    snprintf(self->waiting[self->n_waiting].peer, sizeof self->waiting[0].peer, "%s", peer);
    self->waiting[self->n_waiting++].height = height;
}

void sync_fork_next(sync_fork_t *self, uint64_t now_ms, sync_fork_step_t *out)
{
    step(out, SYNC_FORK_NONE);
    while (self->phase == PH_IDLE && self->n_waiting > 0 && out->kind == SYNC_FORK_NONE) {
        sync_peer_id_t peer;
        snprintf(peer, sizeof peer, "%s", self->waiting[0].peer);
        uint64_t height = self->waiting[0].height;
        memmove(&self->waiting[0], &self->waiting[1],
                (SYNC_FORK_WAITING - 1) * sizeof self->waiting[0]);
        self->n_waiting--;
        sync_fork_found(self, now_ms, peer, height, out);
    }
}

void sync_fork_found(sync_fork_t *self, uint64_t now_ms, const char *peer, uint64_t peer_height,
                     sync_fork_step_t *out)
{
    step(out, SYNC_FORK_NONE);
    if (!peer || !*peer || cooling(self, peer, now_ms))
        return;
    if (self->phase != PH_IDLE) {
        wait_turn(self, peer, peer_height);
        return;
    }
    snprintf(self->peer, sizeof self->peer, "%s", peer);
    self->peer_height = peer_height;
    self->ancestor = 0;
    memset(self->ancestor_hash, 0, ALYS_HASH_LEN);
    self->phase = PH_LOCATOR;
    self->deadline = now_ms + self->timeout_ms;
    step(out, SYNC_FORK_GET_LOCATOR);
    snprintf(out->peer, sizeof out->peer, "%s", peer);
}

static bool locator_ok(const uint64_t *heights, size_t n)
{
    if (n == 0 || n > ALYS_LOCATOR_MAX || heights[n - 1] != 0)
        return false;
    for (size_t i = 1; i < n; i++)
        if (heights[i] >= heights[i - 1])
            return false;
    return true;
}

void sync_fork_on_locator(sync_fork_t *self, uint64_t now_ms, const uint64_t *heights,
                          const alys_hash_t *hashes, size_t n, sync_fork_step_t *out)
{
    step(out, SYNC_FORK_NONE);
    if (self->phase != PH_LOCATOR)
        return;
    if (!locator_ok(heights, n)) {
        step(out, SYNC_FORK_ABANDONED);
        say(out, "storage's locator is malformed (%zu heights)", n);
        finish(self, now_ms, out);
        return;
    }
    memcpy(self->loc_heights, heights, n * sizeof *heights);
    memcpy(self->loc_hashes, hashes, n * sizeof *hashes);
    self->loc_n = n;
    self->phase = PH_HEADERS;
    self->req_id = new_req(self);
    self->deadline = now_ms + self->timeout_ms;
    step(out, SYNC_FORK_FETCH_HEADERS);
    out->req_id = self->req_id;
    out->count = SYNC_FORK_HEADERS;
    out->head = heights[0];
    snprintf(out->peer, sizeof out->peer, "%s", self->peer);
}

const alys_hash_t *sync_fork_locator(const sync_fork_t *self, size_t *n)
{
    *n = self->loc_n;
    return (const alys_hash_t *) self->loc_hashes;
}

bool sync_fork_parent(const sync_fork_t *self, uint64_t req_id, uint64_t start, alys_hash_t out)
{
    if (self->phase != PH_HEADERS || req_id != self->req_id || start == 0)
        return false;
    for (size_t i = 0; i < self->loc_n; i++)
        if (self->loc_heights[i] == start - 1) {
            memcpy(out, self->loc_hashes[i], ALYS_HASH_LEN);
            return true;
        }
    return false;
}

/* Verified headers from ancestor + 1: refuse, keep ours, or fetch. */
static void decide(sync_fork_t *self, uint64_t now_ms, uint32_t n, sync_fork_step_t *out)
{
    uint64_t head = self->loc_heights[0];
    uint64_t depth = head - self->ancestor;
    if (depth > self->max_depth) {
        step(out, SYNC_FORK_TOO_DEEP);
        say(out,
            "peer %s's branch leaves ours at %llu, %llu blocks below our head %llu; "
            "max_reorg_depth is %u: not adopted",
            self->peer, (unsigned long long) self->ancestor, (unsigned long long) depth,
            (unsigned long long) head, self->max_depth);
        finish(self, now_ms, out);
        return;
    }
    if (depth + 1 > SYNC_FORK_MAX_BLOCKS) {
        step(out, SYNC_FORK_TOO_DEEP);
        say(out,
            "peer %s's branch leaves ours %llu blocks below our head %llu: more than "
            "one reorg batch (%d blocks) can replace: not adopted",
            self->peer, (unsigned long long) depth, (unsigned long long) head, SYNC_FORK_MAX_BLOCKS);
        finish(self, now_ms, out);
        return;
    }
    if (self->ancestor + n <= head) {
        step(out, SYNC_FORK_KEEP_OURS);
        say(out, "peer %s's branch from %llu shows %u blocks, not above our head %llu: ours kept",
            self->peer, (unsigned long long) self->ancestor, n, (unsigned long long) head);
        finish(self, now_ms, out);
        return;
    }
    uint64_t want = depth + 1 + SYNC_FORK_EXTRA;
    self->fetch_count = (uint32_t) (n < want ? n : want);
    if (self->fetch_count > SYNC_FORK_MAX_BLOCKS)
        self->fetch_count = SYNC_FORK_MAX_BLOCKS;
    self->phase = PH_BLOCKS;
    self->req_id = new_req(self);
    self->deadline = now_ms + self->timeout_ms;
    step(out, SYNC_FORK_FETCH_BLOCKS);
    out->req_id = self->req_id;
    out->start = self->ancestor + 1;
    out->count = self->fetch_count;
    out->ancestor = self->ancestor;
    out->head = head;
    out->depth = depth;
    snprintf(out->peer, sizeof out->peer, "%s", self->peer);
}

void sync_fork_on_headers(sync_fork_t *self, uint64_t now_ms, uint64_t req_id, sync_outcome_t outcome,
                          bool verified, uint64_t start, const alys_hash_t *hashes, uint32_t n,
                          const char *why, sync_fork_step_t *out)
{
    step(out, SYNC_FORK_NONE);
    if (self->phase != PH_HEADERS || req_id != self->req_id)
        return;
    if (outcome != SYNC_OUTCOME_OK) { /* PeerManager scored it */
        step(out, SYNC_FORK_ABANDONED);
        say(out, "peer %s did not answer the locator: %s", self->peer, sync_outcome_name(outcome));
        finish(self, now_ms, out);
        return;
    }
    alys_hash_t parent;
    if (n > 0 && (!verified || !sync_fork_parent(self, req_id, start, parent))) {
        step(out, SYNC_FORK_INVALID);
        say(out, "peer %s's headers after our locator do not verify: %s", self->peer,
            why && *why ? why : "start is not a locator height");
        finish(self, now_ms, out);
        return;
    }
    if (n == 0) { /* nothing above where the chains meet */
        step(out, SYNC_FORK_KEEP_OURS);
        say(out, "peer %s has nothing above where our chains meet: ours kept", self->peer);
        finish(self, now_ms, out);
        return;
    }
    self->ancestor = start - 1;
    memcpy(self->ancestor_hash, parent, ALYS_HASH_LEN);
    self->n_hashes = n < SYNC_FORK_MAX_BLOCKS ? n : SYNC_FORK_MAX_BLOCKS;
    memcpy(self->hashes, hashes, self->n_hashes * sizeof *hashes);
    decide(self, now_ms, n, out);
}

const alys_hash_t *sync_fork_expected(const sync_fork_t *self, uint32_t *count)
{
    *count = self->fetch_count < self->n_hashes ? self->fetch_count : self->n_hashes;
    return (const alys_hash_t *) self->hashes;
}

void sync_fork_on_blocks(sync_fork_t *self, uint64_t now_ms, uint64_t req_id,
                         sync_outcome_t outcome, uint32_t n, sync_fork_step_t *out)
{
    step(out, SYNC_FORK_NONE);
    if (self->phase != PH_BLOCKS || req_id != self->req_id)
        return;
    uint64_t head = self->loc_heights[0];
    bool got = outcome == SYNC_OUTCOME_OK || outcome == SYNC_OUTCOME_SHORT; /* SHORT: a cut answer */
    if (!got || n == 0 || n > self->fetch_count || self->ancestor + n <= head) {
        step(out, SYNC_FORK_ABANDONED);
        say(out, "peer %s's branch blocks: %s, %u of %u (not above our head %llu)", self->peer,
            sync_outcome_name(outcome), n, self->fetch_count, (unsigned long long) head);
        finish(self, now_ms, out);
        return;
    }
    self->fetch_count = n;
    self->phase = PH_PROCESS;
    self->deadline = now_ms + 6 * (uint64_t) self->timeout_ms; /* validation + execution */
    step(out, SYNC_FORK_PROCESS);
    out->count = n;
    out->ancestor = self->ancestor;
    memcpy(out->ancestor_hash, self->ancestor_hash, ALYS_HASH_LEN);
    out->head = head;
    out->depth = head - self->ancestor;
    snprintf(out->peer, sizeof out->peer, "%s", self->peer);
}

void sync_fork_on_processed(sync_fork_t *self, uint64_t now_ms, bool answered,
                            uint32_t reorg_depth, uint64_t head_height, bool failed,
                            bool content_fault, const char *reason, sync_fork_step_t *out)
{
    step(out, SYNC_FORK_NONE);
    if (self->phase != PH_PROCESS)
        return;
    uint64_t head = self->loc_heights[0];
    if (answered && reorg_depth > 0 && head_height > head) {
        step(out, SYNC_FORK_REORGED);
        say(out, "reorg to peer %s's branch: %u blocks undone above %llu, head %llu -> %llu",
            self->peer, reorg_depth, (unsigned long long) self->ancestor,
            (unsigned long long) head, (unsigned long long) head_height);
    } else if (answered && failed && content_fault) {
        step(out, SYNC_FORK_INVALID);
        say(out, "peer %s's branch has an invalid block: %s", self->peer, reason ? reason : "");
    } else if (answered) {
        step(out, SYNC_FORK_KEEP_OURS);
        say(out, "peer %s's branch not adopted: %s", self->peer,
            reason && *reason ? reason : "storage kept ours");
    } else {
        step(out, SYNC_FORK_ABANDONED);
        say(out, "the reorg batch from %s was not processed: %s", self->peer,
            reason && *reason ? reason : "no answer");
    }
    finish(self, now_ms, out);
    out->head = head_height; /* finish named the head we started from */
}

void sync_fork_tick(sync_fork_t *self, uint64_t now_ms, sync_fork_step_t *out)
{
    step(out, SYNC_FORK_NONE);
    if (self->phase == PH_IDLE || now_ms < self->deadline)
        return;
    static const char *const names[] = {"idle", "locator", "headers", "blocks", "processing"};
    step(out, SYNC_FORK_ABANDONED);
    say(out, "fork resolution with %s timed out (%s)", self->peer, names[self->phase]);
    finish(self, now_ms, out);
}

void sync_fork_get_status(const sync_fork_t *self, sync_fork_status_t *out)
{
    *out = self->st;
    out->busy = self->phase != PH_IDLE;
}

const char *sync_fork_step_name(sync_fork_step_kind_t k)
{
    static const char *const names[] = {"none",    "get_locator", "fetch_headers", "fetch_blocks",
                                        "process", "reorged",     "too_deep",      "keep_ours",
                                        "invalid", "abandoned"};
    return (unsigned) k < sizeof names / sizeof names[0] ? names[k] : "?";
}
