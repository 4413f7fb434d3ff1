/*  peer_score.c: request outcomes -> PeerMetrics and PeerScore; decay;
 *  disconnect and ban thresholds.
 */
#include "peer_table_private.h"

#include <math.h>
#include <stdio.h>

/* EWMA gains. Latency uses TCP's (RFC 6298) so the timeout derived from it
 * behaves like a well-understood RTO; error rate and bandwidth are smoothed
 * a little less, so that a peer turning bad shows within ~10 requests. */
#define SRTT_GAIN      0.125
#define RTTVAR_GAIN    0.25
#define ERROR_GAIN     0.1
#define BANDWIDTH_GAIN 0.2
#define BLOCKS_GAIN    0.2
#define MAX_BACKOFF    8u
/* Below this a decayed score is 0: exponential decay never gets there alone. */
#define SCORE_EPSILON  0.01

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void peer_score_decay(peer_score_t *s, uint64_t now_ms, uint64_t half_life_ms)
{
    /* Clock stepped back: no decay now, and re-anchor so that from here on
     * only time that really passes decays the score. */
    if (now_ms <= s->as_of_ms || half_life_ms == 0) {
        s->as_of_ms = now_ms;
        return;
    }
    double halves = (double) (now_ms - s->as_of_ms) / (double) half_life_ms;
    s->value *= exp2(-halves);
    if (fabs(s->value) < SCORE_EPSILON)
        s->value = 0.0;
    s->as_of_ms = now_ms;
}

const char *peer_outcome_name(peer_outcome_kind_t k)
{
    switch (k) {
    case PEER_OUTCOME_OK: return "ok";
    case PEER_OUTCOME_TIMEOUT: return "timeout";
    case PEER_OUTCOME_INVALID: return "invalid";
    case PEER_OUTCOME_SHORT: return "short";
    case PEER_OUTCOME_VIOLATION: return "violation";
    }
    return "unknown";
}

double pt_score_cutoff(const peer_table_config_t *cfg)
{
    return cfg->disconnect_score * (1.0 - cfg->score_threshold);
}

/* Lift an expired ban. The peer comes back disconnected (main.c may dial it)
 * and on probation: no better than its decayed score, no worse than half-way
 * to the disconnect threshold, so one more invalid response drops it again. */
static void lift_expired_ban(peer_table_t *self, peer_t *p, uint64_t now_ms)
{
    if (p->info.state != PEER_STATE_BANNED || p->info.ban_until > now_ms)
        return;
    p->info.state = PEER_STATE_DISCONNECTED;
    p->info.ban_until = 0;
    p->disconnected_at = now_ms;
    p->dropped_for_score = false;
    double probation = self->cfg.disconnect_score / 2.0;
    if (p->score.value < probation)
        p->score.value = probation;
}

void pt_refresh(peer_table_t *self, peer_t *p, uint64_t now_ms)
{
    peer_score_decay(&p->score, now_ms, self->cfg.half_life_ms);
    lift_expired_ban(self, p, now_ms);
}

bool pt_eligible(peer_table_t *self, peer_t *p, uint64_t now_ms)
{
    pt_refresh(self, p, now_ms);
    return p->info.state == PEER_STATE_CONNECTED && p->score.value >= pt_score_cutoff(&self->cfg);
}

/* ---- metrics -------------------------------------------------------------- */

static double ewma(double avg, double sample, double gain)
{
    return avg + gain * (sample - avg);
}

static void note_rtt(peer_metrics_t *m, double ms)
{
    if (!m->has_rtt || ms < m->min_rtt_ms)
        m->min_rtt_ms = ms;
    m->has_rtt = true;
}

/* A response that carried data: latency (RFC 6298 srtt/rttvar), bandwidth,
 * request size. Shared by OK and SHORT: a short answer is still a real
 * measurement of how fast this peer is. */
static void note_delivery(peer_metrics_t *m, const peer_outcome_t *o)
{
    double lat = (double) o->latency_ms;
    if (!m->has_latency) {
        m->average_latency_ms = lat;
        m->latency_dev_ms = lat / 2.0;
        m->has_latency = true;
    } else {
        m->latency_dev_ms = ewma(m->latency_dev_ms, fabs(m->average_latency_ms - lat), RTTVAR_GAIN);
        m->average_latency_ms = ewma(m->average_latency_ms, lat, SRTT_GAIN);
    }
    note_rtt(m, lat);
    if (o->bytes > 0) {
        /* 0 ms on loopback is below the clock's resolution, not infinitely fast. */
        double bps = (double) o->bytes * 1000.0 / (lat < 1.0 ? 1.0 : lat);
        m->bandwidth_bps = m->has_bandwidth ? ewma(m->bandwidth_bps, bps, BANDWIDTH_GAIN) : bps;
        m->has_bandwidth = true;
    }
    if (o->blocks > 0) {
        m->avg_request_blocks = m->avg_request_blocks > 0
                                    ? ewma(m->avg_request_blocks, o->blocks, BLOCKS_GAIN)
                                    : o->blocks;
        m->blocks_served += o->blocks;
    }
    if (o->bytes > 0 && o->blocks > 0) {
        /* Bytes per block: with bandwidth_bps, the time a range of n blocks
         * takes to arrive (peer_table_request_timeout). Smoothed like the
         * bandwidth it goes with. */
        double per = (double) o->bytes / (double) o->blocks;
        m->avg_block_bytes = m->avg_block_bytes > 0 ? ewma(m->avg_block_bytes, per, BANDWIDTH_GAIN)
                                                    : per;
    }
}

static void count_outcome(peer_metrics_t *m, peer_outcome_kind_t k)
{
    switch (k) {
    case PEER_OUTCOME_OK: m->requests_ok++; break;
    case PEER_OUTCOME_TIMEOUT: m->requests_timeout++; break;
    case PEER_OUTCOME_INVALID: m->requests_invalid++; break;
    case PEER_OUTCOME_SHORT: m->requests_short++; break;
    case PEER_OUTCOME_VIOLATION: m->requests_violation++; break;
    }
    uint64_t total = m->requests_ok + m->requests_timeout + m->requests_invalid +
                     m->requests_short + m->requests_violation;
    /* Laplace's rule: an unmeasured peer is 0.5, and one lucky answer does
     * not make a peer perfectly reliable. */
    m->reliability_score = (double) (m->requests_ok + 1) / (double) (total + 2);
    m->error_rate = ewma(m->error_rate, k == PEER_OUTCOME_OK ? 0.0 : 1.0, ERROR_GAIN);
}

static void update_metrics(peer_t *p, const peer_outcome_t *o, uint64_t now_ms)
{
    peer_metrics_t *m = &p->m;
    count_outcome(m, o->kind);
    if (o->kind == PEER_OUTCOME_TIMEOUT) {
        /* Karn: a timed-out request says nothing about latency, but the next
         * wait should be longer, so one slow moment does not cascade into
         * timeouts and disconnects. */
        m->timeout_backoff = m->timeout_backoff >= MAX_BACKOFF ? MAX_BACKOFF : m->timeout_backoff * 2;
        return;
    }
    /* An empty short answer says nothing about speed; an OK is always a
     * sample (0 ms is a real loopback reading). Invalid and violation are
     * verdicts, possibly reached long after the response: no sample. */
    bool delivered = o->kind == PEER_OUTCOME_OK ||
                     (o->kind == PEER_OUTCOME_SHORT && (o->blocks > 0 || o->bytes > 0));
    if (delivered) {
        p->info.last_response = now_ms;
        note_delivery(m, o);
        m->timeout_backoff = 1;
    }
}

/* ---- bans on table entries ------------------------------------------------ */

static void ban_peer(peer_table_t *self, peer_t *p, uint64_t duration_ms, const char *reason,
                     uint64_t now_ms)
{
    uint64_t until = now_ms + duration_ms;
    if (until < now_ms)
        until = UINT64_MAX; /* absurd duration: ban "forever" */
    if (until > p->info.ban_until)
        p->info.ban_until = until;
    p->info.state = PEER_STATE_BANNED;
    p->dropped_for_score = false;
    pt_ban_list_put(self, p->info.peer_id, p->info.endpoint, p->info.ban_until, reason);
}

/* ---- score ---------------------------------------------------------------- */

static double penalty_for(const peer_table_config_t *c, peer_outcome_kind_t k)
{
    switch (k) {
    case PEER_OUTCOME_TIMEOUT: return c->timeout_penalty;
    case PEER_OUTCOME_INVALID: return c->invalid_penalty;
    case PEER_OUTCOME_SHORT: return c->short_penalty;
    case PEER_OUTCOME_VIOLATION: return PEER_SCORE_MIN * 2; /* fatal whatever the score */
    case PEER_OUTCOME_OK: return 0.0;
    }
    return 0.0;
}

/* Lowest score timeouts alone can give: just above the disconnect score. */
#define TIMEOUT_FLOOR_MARGIN 1.0

static void change_score(const peer_table_config_t *c, peer_t *p, peer_outcome_kind_t k)
{
    double v = p->score.value;
    if (k == PEER_OUTCOME_OK) {
        /* Good service earns a little credit, capped so that a long-serving
         * peer cannot bank enough to absorb repeated invalid data. */
        if (v < c->ok_cap)
            v = v + c->ok_reward > c->ok_cap ? c->ok_cap : v + c->ok_reward;
    } else if (k == PEER_OUTCOME_TIMEOUT) {
        /* Slowness is not misbehaviour: an honest peer behind a lossy link or
         * a partition times out too. Timeouts push a peer below the selection
         * cutoff (others are preferred) but never to the disconnect score, so
         * they alone do not drop it: a peer is disconnected for what it sent
         * (invalid data, violations), as Bitcoin Core and Lighthouse do, and
         * slowness is answered by choosing other peers (peer_select.c falls
         * back to below-cutoff peers only when nobody else is eligible). A
         * peer that stops answering at all is dropped by the connection
         * machine (probes), not by its score. */
        double floor = c->disconnect_score + TIMEOUT_FLOOR_MARGIN;
        double nv = v + penalty_for(c, k);
        v = nv >= floor ? nv : v < floor ? v : floor;
    } else {
        v += penalty_for(c, k);
    }
    p->score.value = clamp(v, PEER_SCORE_MIN, PEER_SCORE_MAX);
}

static peer_action_t apply_thresholds(peer_table_t *self, peer_t *p, const peer_outcome_t *o,
                                      uint64_t now_ms)
{
    const peer_table_config_t *c = &self->cfg;
    if (p->info.state == PEER_STATE_BANNED)
        return PEER_ACTION_NONE; /* late news about a peer already gone */
    if (o->kind == PEER_OUTCOME_VIOLATION || p->score.value <= c->ban_score) {
        char why[PEER_REASON_MAX];
        int n = snprintf(why, sizeof why, "%s (score %.0f)%s%s", peer_outcome_name(o->kind),
                         p->score.value, o->reason ? ": " : "", o->reason ? o->reason : "");
        (void) n; /* truncation of a reason is fine */
        ban_peer(self, p, c->ban_ms, why, now_ms);
        return PEER_ACTION_BAN;
    }
    if (p->score.value > c->disconnect_score)
        return PEER_ACTION_NONE;
    /* Also when already disconnected: no redial until the score recovers. */
    p->dropped_for_score = true;
    if (p->info.state == PEER_STATE_DISCONNECTED)
        return PEER_ACTION_NONE;
    p->info.state = PEER_STATE_DISCONNECTED;
    p->disconnected_at = now_ms;
    return PEER_ACTION_DISCONNECT;
}

peer_action_t pt_apply(peer_table_t *self, peer_t *p, const peer_outcome_t *o, uint64_t now_ms)
{
    pt_refresh(self, p, now_ms);
    update_metrics(p, o, now_ms);
    change_score(&self->cfg, p, o->kind);
    return apply_thresholds(self, p, o, now_ms);
}

static bool outcome_valid(const peer_outcome_t *o)
{
    return o && (unsigned) o->kind <= (unsigned) PEER_OUTCOME_VIOLATION;
}

int peer_table_record(peer_table_t *self, const char *peer_id, const peer_outcome_t *o,
                      uint64_t now_ms, peer_action_t *action)
{
    if (action)
        *action = PEER_ACTION_NONE;
    if (!outcome_valid(o))
        return PEER_ERR_INVALID;
    peer_t *p = pt_find(self, peer_id);
    if (!p)
        return PEER_ERR_UNKNOWN;
    peer_action_t a = pt_apply(self, p, o, now_ms);
    if (action)
        *action = a;
    return PEER_OK;
}

int peer_table_penalise(peer_table_t *self, const char *peer_id, double points,
                        const char *reason, uint64_t now_ms, peer_action_t *action)
{
    if (action)
        *action = PEER_ACTION_NONE;
    if (!(points > 0.0))
        return PEER_ERR_INVALID;
    peer_t *p = pt_find(self, peer_id);
    if (!p)
        return PEER_ERR_UNKNOWN;
    pt_refresh(self, p, now_ms);
    if (p->info.state == PEER_STATE_BANNED)
        return PEER_OK; /* late news about a peer already gone */
    p->score.value = clamp(p->score.value - points, PEER_SCORE_MIN, PEER_SCORE_MAX);
    if (p->score.value > self->cfg.ban_score)
        return PEER_OK;
    char why[PEER_REASON_MAX];
    snprintf(why, sizeof why, "misbehaviour (score %.0f)%s%s", p->score.value, reason ? ": " : "",
             reason ? reason : "");
    ban_peer(self, p, self->cfg.ban_ms, why, now_ms);
    if (action)
        *action = PEER_ACTION_BAN;
    return PEER_OK;
}

int peer_table_record_rtt(peer_table_t *self, const char *peer_id, uint32_t rtt_ms, uint64_t now_ms)
{
    peer_t *p = pt_find(self, peer_id);
    if (!p)
        return PEER_ERR_UNKNOWN;
    note_rtt(&p->m, (double) rtt_ms);
    p->info.last_response = now_ms;
    return PEER_OK;
}

int peer_table_score(peer_table_t *self, const char *peer_id, uint64_t now_ms, double *score)
{
    peer_t *p = pt_find(self, peer_id);
    if (!p)
        return PEER_ERR_UNKNOWN;
    pt_refresh(self, p, now_ms);
    *score = p->score.value;
    return PEER_OK;
}

int peer_table_blame_now(peer_table_t *self, const char *peer_id, peer_outcome_kind_t kind,
                         const char *reason, uint64_t now_ms, peer_action_t *action)
{
    if (kind != PEER_OUTCOME_INVALID && kind != PEER_OUTCOME_VIOLATION) {
        if (action)
            *action = PEER_ACTION_NONE;
        return PEER_ERR_INVALID;
    }
    peer_outcome_t o = {.kind = kind, .reason = reason};
    return peer_table_record(self, peer_id, &o, now_ms, action);
}

/* ---- bans and housekeeping ------------------------------------------------ */

void pt_ban_entry(peer_table_t *self, peer_t *p, uint64_t duration_ms, const char *reason,
                  uint64_t now_ms)
{
    pt_refresh(self, p, now_ms);
    ban_peer(self, p, duration_ms, reason, now_ms);
}

size_t peer_table_tick(peer_table_t *self, uint64_t now_ms)
{
    size_t lifted = 0;
    for (size_t i = 0; i < PEER_TABLE_MAX_PEERS; i++) {
        peer_t *p = &self->peers[i];
        if (!p->used)
            continue;
        bool was_banned = p->info.state == PEER_STATE_BANNED;
        pt_refresh(self, p, now_ms);
        if (was_banned && p->info.state != PEER_STATE_BANNED)
            lifted++;
    }
    pt_ban_list_expire(self, now_ms);
    pt_suspects_expire(self, now_ms);
    return lifted;
}
