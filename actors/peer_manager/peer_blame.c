/*  peer_blame.c: blame the peer that served the bad data, and no one else.
 *
 *  A range that fails validation does not by itself prove its server lied:
 *  the failure may be ours (a parent we have not committed yet, a clock
 *  behind the slot) or the range may be disputed. So its server is only
 *  suspected. When another peer later serves a range covering the suspected
 *  one and it validates, the suspect served data that differs from valid
 *  data for the same heights: it lied, and gets the invalid-data penalty.
 *  A suspect whose own re-served range validates is cleared: it was not its
 *  data's fault. Unproven suspicions expire after suspect_ttl_ms unpunished.
 *
 *  Conviction needs the validated range to cover the whole suspected range:
 *  a partial overlap might leave the bad block outside what was checked.
 */
#include "peer_table_private.h"

#include <string.h>

static void drop_suspect(peer_table_t *self, size_t i)
{
    memmove(&self->suspects[i], &self->suspects[i + 1],
            (self->suspect_count - i - 1) * sizeof self->suspects[0]);
    self->suspect_count--;
}

/* A slot for a new suspicion; when full, the oldest one goes (the oldest is
 * the closest to expiring unproven anyway). */
static peer_suspect_t *suspect_slot(peer_table_t *self)
{
    if (self->suspect_count == PEER_MAX_SUSPECTS)
        drop_suspect(self, 0); /* compact and in time order */
    return &self->suspects[self->suspect_count++];
}

int peer_table_suspect(peer_table_t *self, const char *peer_id, uint64_t start, uint64_t end,
                       const char *reason, uint64_t now_ms)
{
    if (start >= end)
        return PEER_ERR_INVALID;
    if (!pt_find(self, peer_id))
        return PEER_ERR_UNKNOWN;
    pt_suspects_expire(self, now_ms);
    /* The same failure reported twice is one suspicion, not two. */
    for (size_t i = 0; i < self->suspect_count; i++) {
        peer_suspect_t *s = &self->suspects[i];
        if (s->start == start && s->end == end && strcmp(s->peer_id, peer_id) == 0)
            return PEER_OK;
    }
    peer_suspect_t *s = suspect_slot(self);
    *s = (peer_suspect_t){.start = start, .end = end, .at_ms = now_ms};
    pt_copy_trunc(s->peer_id, sizeof s->peer_id, peer_id);
    pt_copy_trunc(s->reason, sizeof s->reason, reason);
    return PEER_OK;
}

static bool already_listed(const peer_ref_t *ids, size_t n, const char *peer_id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ids[i].id, peer_id) == 0)
            return true;
    }
    return false;
}

/* Penalise one convicted peer (once per call, however many of its
 * suspicions the range covers). Returns its action. */
static peer_action_t convict(peer_table_t *self, const peer_suspect_t *s, uint64_t now_ms)
{
    peer_t *p = pt_find(self, s->peer_id);
    if (!p)
        return PEER_ACTION_NONE; /* gone from the table */
    peer_outcome_t o = {
        .kind = PEER_OUTCOME_INVALID,
        .reason = s->reason[0] ? s->reason : "served a range that validated from another peer",
    };
    return pt_apply(self, p, &o, now_ms);
}

size_t peer_table_range_validated(peer_table_t *self, const char *peer_id, uint64_t start,
                                  uint64_t end, uint64_t now_ms, peer_ref_t *blamed,
                                  peer_action_t *actions, size_t cap)
{
    peer_ref_t done[PEER_MAX_SUSPECTS]; /* convicted in this call */
    size_t n_done = 0;
    if (!peer_id)
        return 0;
    pt_suspects_expire(self, now_ms); /* stale suspicions prove nothing */
    size_t i = 0;
    while (i < self->suspect_count) {
        peer_suspect_t s = self->suspects[i];
        if (s.start < start || s.end > end) {
            i++;
            continue;
        }
        drop_suspect(self, i); /* settled either way */
        if (strcmp(s.peer_id, peer_id) == 0 || already_listed(done, n_done, s.peer_id) ||
            !pt_find(self, s.peer_id))
            continue;
        peer_action_t a = convict(self, &s, now_ms);
        memcpy(done[n_done].id, s.peer_id, sizeof s.peer_id);
        if (blamed && n_done < cap)
            blamed[n_done] = done[n_done];
        if (actions && n_done < cap)
            actions[n_done] = a;
        n_done++;
    }
    return n_done;
}

void pt_suspects_expire(peer_table_t *self, uint64_t now_ms)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->suspect_count; i++) {
        const peer_suspect_t *s = &self->suspects[i];
        bool live = now_ms < s->at_ms || now_ms - s->at_ms < self->cfg.suspect_ttl_ms;
        if (live)
            self->suspects[kept++] = *s;
    }
    self->suspect_count = kept;
}

size_t peer_table_suspect_count(const peer_table_t *self)
{
    return self->suspect_count;
}
