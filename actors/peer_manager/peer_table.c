/*  peer_table.c: lifecycle, config, membership, connection state, views.
 *  Scoring is in peer_score.c, bans in peer_ban.c, blame in peer_blame.c,
 *  selection/batch/timeout in peer_select.c.
 */
#include "peer_table_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---------------------------------------------------------------- */

const char *peer_err_name(int err)
{
    switch (err) {
    case PEER_OK: return "ok";
    case PEER_ERR_INVALID: return "invalid argument";
    case PEER_ERR_FULL: return "peer table full";
    case PEER_ERR_BANNED: return "peer is banned";
    case PEER_ERR_EXISTS: return "peer already known";
    case PEER_ERR_UNKNOWN: return "unknown peer";
    default: return "unknown error";
    }
}

const char *peer_state_name(peer_state_t s)
{
    switch (s) {
    case PEER_STATE_CONNECTING: return "connecting";
    case PEER_STATE_CONNECTED: return "connected";
    case PEER_STATE_DISCONNECTED: return "disconnected";
    case PEER_STATE_BANNED: return "banned";
    }
    return "unknown";
}

const char *peer_action_name(peer_action_t a)
{
    switch (a) {
    case PEER_ACTION_NONE: return "none";
    case PEER_ACTION_DISCONNECT: return "disconnect";
    case PEER_ACTION_BAN: return "ban";
    }
    return "unknown";
}

static const char *const strategy_names[] = {
    [PEER_SELECT_LOWEST_LATENCY] = "lowest_latency",
    [PEER_SELECT_MOST_RELIABLE] = "most_reliable",
    [PEER_SELECT_ROUND_ROBIN] = "round_robin",
    [PEER_SELECT_WEIGHTED] = "weighted",
    [PEER_SELECT_PROXIMITY] = "proximity",
};
#define STRATEGY_COUNT (sizeof strategy_names / sizeof strategy_names[0])

int peer_strategy_parse(const char *name, peer_strategy_t *out)
{
    if (!name || !out)
        return -1;
    for (size_t i = 0; i < STRATEGY_COUNT; i++) {
        if (strcmp(name, strategy_names[i]) == 0) {
            *out = (peer_strategy_t) i;
            return 0;
        }
    }
    return -1;
}

const char *peer_strategy_name(peer_strategy_t s)
{
    return (size_t) s < STRATEGY_COUNT ? strategy_names[s] : "unknown";
}

/* ---- strings ---------------------------------------------------------------- */

int pt_copy_exact(char *dst, size_t cap, const char *src)
{
    size_t len = src ? strnlen(src, cap) : cap;
    if (len >= cap) {
        dst[0] = '\0';
        return -1;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

void pt_copy_trunc(char *dst, size_t cap, const char *src)
{
    size_t len = src ? strnlen(src, cap - 1) : 0;
    if (len)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

/* ---- config --------------------------------------------------------------- */

void peer_table_config_defaults(peer_table_config_t *cfg)
{
    *cfg = (peer_table_config_t){
        .ok_reward = 1.0,
        .ok_cap = 20.0,
        .short_penalty = -3.0,
        .timeout_penalty = -5.0,
        .invalid_penalty = -40.0,
        .disconnect_score = -30.0,
        .ban_score = -60.0,
        .half_life_ms = 10 * 60 * 1000,
        .ban_ms = 60 * 60 * 1000,
        .suspect_ttl_ms = 10 * 60 * 1000,
        .score_threshold = 0.5,
        .strategy = PEER_SELECT_WEIGHTED,
        .latency_weight = 0.4,
        .reliability_weight = 0.4,
        .bandwidth_weight = 0.2,
        .adaptive_batch = true,
        .fixed_batch_size = 256,
        .min_batch_size = 16,
        .max_batch_size = 1024,
        .timeout_floor_ms = 500,
        .timeout_ceiling_ms = 5000,
        .timeout_hard_ms = 5000 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR,
    };
}

/* Reasons a config cannot work; NULL if it can. */
static const char *config_problem(const peer_table_config_t *c)
{
    if (!(c->ban_score < c->disconnect_score && c->disconnect_score < 0 &&
          c->ban_score > PEER_SCORE_MIN - 1))
        return "need -100 <= ban_score < disconnect_score < 0";
    if (c->half_life_ms == 0 || c->ban_ms == 0)
        return "half_life_ms and ban_ms must be > 0";
    if (c->ok_reward < 0 || c->ok_cap < 0 || c->short_penalty > 0 || c->timeout_penalty > 0 ||
        c->invalid_penalty > 0)
        return "rewards must be >= 0 and penalties <= 0";
    if (!(c->score_threshold >= 0.0 && c->score_threshold <= 1.0))
        return "peer_score_threshold must be in [0, 1]";
    if ((size_t) c->strategy >= STRATEGY_COUNT)
        return "unknown peer_selection";
    if (c->latency_weight < 0 || c->reliability_weight < 0 || c->bandwidth_weight < 0)
        return "selection weights must be >= 0";
    if (c->min_batch_size == 0 || c->min_batch_size > c->max_batch_size)
        return "need 0 < min_batch_size <= max_batch_size";
    if (c->fixed_batch_size == 0)
        return "fixed_batch_size must be > 0";
    if (c->timeout_floor_ms == 0 || c->timeout_floor_ms > c->timeout_ceiling_ms)
        return "need 0 < timeout floor <= request_timeout_ms";
    if (c->timeout_hard_ms < c->timeout_ceiling_ms)
        return "need the hard timeout bound >= request_timeout_ms";
    return NULL;
}

static int fail(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

int peer_table_config_from_alys(peer_table_config_t *cfg, const alys_config_t *ac, char *err,
                                size_t errlen)
{
    peer_table_config_defaults(cfg);
    if (peer_strategy_parse(ac->peer_selection, &cfg->strategy) != 0)
        return fail(err, errlen, "sync.peer_selection: unknown strategy");
    if (strcmp(ac->batch_size, "adaptive") == 0)
        cfg->adaptive_batch = true;
    else if (strcmp(ac->batch_size, "fixed") == 0)
        cfg->adaptive_batch = false;
    else
        return fail(err, errlen, "sync.batch_size: want adaptive or fixed");
    cfg->latency_weight = ac->latency_weight;
    cfg->reliability_weight = ac->reliability_weight;
    cfg->bandwidth_weight = ac->bandwidth_weight;
    cfg->score_threshold = ac->peer_score_threshold;
    cfg->fixed_batch_size = ac->fixed_batch_size;
    cfg->min_batch_size = ac->min_batch_size;
    cfg->max_batch_size = ac->max_batch_size;
    cfg->timeout_ceiling_ms = ac->request_timeout_ms;
    cfg->timeout_hard_ms = alys_request_timeout_hard_ms(ac->request_timeout_ms);
    /* A ceiling under the default floor (tiny test configs) lowers the floor
     * rather than refusing: the ceiling is what the operator asked for. */
    if (cfg->timeout_floor_ms > cfg->timeout_ceiling_ms)
        cfg->timeout_floor_ms = cfg->timeout_ceiling_ms;
    const char *problem = config_problem(cfg);
    return problem ? fail(err, errlen, problem) : 0;
}

/* ---- lifecycle ------------------------------------------------------------ */

peer_table_t *peer_table_new(const peer_table_config_t *cfg)
{
    peer_table_config_t defaults;
    if (!cfg) {
        peer_table_config_defaults(&defaults);
        cfg = &defaults;
    }
    if (config_problem(cfg))
        return NULL;
    peer_table_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    return self;
}

void peer_table_destroy(peer_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

const peer_table_config_t *peer_table_config(const peer_table_t *self)
{
    return &self->cfg;
}

/* ---- membership ----------------------------------------------------------- */

peer_t *pt_find(peer_table_t *self, const char *peer_id)
{
    if (!peer_id)
        return NULL;
    for (size_t i = 0; i < PEER_TABLE_MAX_PEERS; i++) {
        peer_t *p = &self->peers[i];
        if (p->used && strcmp(p->info.peer_id, peer_id) == 0)
            return p;
    }
    return NULL;
}

bool peer_table_contains(const peer_table_t *self, const char *peer_id)
{
    return pt_find((peer_table_t *) self, peer_id) != NULL;
}

size_t peer_table_size(const peer_table_t *self)
{
    return self->peer_count;
}

/* A slot for a new peer: a free one, else the longest-disconnected peer with
 * no outstanding penalty. Penalised or banned entries are never recycled, so
 * flooding the table with new names cannot wash a bad score away. */
static peer_t *free_slot(peer_table_t *self, uint64_t now_ms)
{
    peer_t *victim = NULL;
    for (size_t i = 0; i < PEER_TABLE_MAX_PEERS; i++) {
        peer_t *p = &self->peers[i];
        if (!p->used)
            return p;
        pt_refresh(self, p, now_ms);
        if (p->info.state != PEER_STATE_DISCONNECTED || p->score.value < 0)
            continue;
        if (!victim || p->disconnected_at < victim->disconnected_at)
            victim = p;
    }
    if (victim) {
        victim->used = false;
        self->peer_count--;
    }
    return victim;
}

int peer_table_add(peer_table_t *self, const char *peer_id, const char *endpoint, uint64_t now_ms)
{
    peer_info_t info = {.state = PEER_STATE_CONNECTING};
    if (!peer_id || !peer_id[0] || pt_copy_exact(info.peer_id, sizeof info.peer_id, peer_id) != 0 ||
        pt_copy_exact(info.endpoint, sizeof info.endpoint, endpoint ? endpoint : "") != 0)
        return PEER_ERR_INVALID;
    if (pt_find(self, peer_id))
        return PEER_ERR_EXISTS;
    if (peer_table_is_banned(self, peer_id, info.endpoint, now_ms))
        return PEER_ERR_BANNED;
    peer_t *p = free_slot(self, now_ms);
    if (!p)
        return PEER_ERR_FULL;
    *p = (peer_t){
        .used = true,
        .info = info,
        .score = {.value = 0.0, .as_of_ms = now_ms},
    };
    p->m.reliability_score = 0.5; /* the (0 + 1) / (0 + 2) prior */
    p->m.timeout_backoff = 1;
    self->peer_count++;
    return PEER_OK;
}

int peer_table_remove(peer_table_t *self, const char *peer_id)
{
    peer_t *p = pt_find(self, peer_id);
    if (!p)
        return PEER_ERR_UNKNOWN;
    /* A ban lives on in the ban list; only the table entry goes. */
    p->used = false;
    self->peer_count--;
    return PEER_OK;
}

/* ---- connection state ----------------------------------------------------- */

int peer_table_on_status(peer_table_t *self, const char *peer_id, uint64_t height,
                         const uint8_t *head_hash, const char *version, uint64_t now_ms)
{
    peer_t *p = pt_find(self, peer_id);
    if (!p)
        return PEER_ERR_UNKNOWN;
    pt_refresh(self, p, now_ms);
    if (p->info.state == PEER_STATE_BANNED)
        return PEER_ERR_BANNED;
    if (p->info.state != PEER_STATE_CONNECTED)
        p->info.connected_at = now_ms;
    p->info.state = PEER_STATE_CONNECTED;
    p->info.reported_height = height;
    p->info.last_response = now_ms;
    if (head_hash)
        memcpy(p->info.head_hash, head_hash, PEER_HASH_LEN);
    if (version)
        pt_copy_trunc(p->info.protocol_version, sizeof p->info.protocol_version, version);
    return PEER_OK;
}

int peer_table_set_connecting(peer_table_t *self, const char *peer_id, uint64_t now_ms)
{
    peer_t *p = pt_find(self, peer_id);
    if (!p)
        return PEER_ERR_UNKNOWN;
    pt_refresh(self, p, now_ms);
    if (p->info.state == PEER_STATE_BANNED)
        return PEER_ERR_BANNED;
    p->info.state = PEER_STATE_CONNECTING;
    return PEER_OK;
}

int peer_table_set_disconnected(peer_table_t *self, const char *peer_id, uint64_t now_ms)
{
    peer_t *p = pt_find(self, peer_id);
    if (!p)
        return PEER_ERR_UNKNOWN;
    pt_refresh(self, p, now_ms);
    if (p->info.state == PEER_STATE_BANNED)
        return PEER_OK; /* stays banned; already not connected */
    if (p->info.state != PEER_STATE_DISCONNECTED)
        p->disconnected_at = now_ms;
    p->info.state = PEER_STATE_DISCONNECTED;
    return PEER_OK;
}

bool peer_table_may_connect(peer_table_t *self, const char *peer_id, uint64_t now_ms)
{
    peer_t *p = pt_find(self, peer_id);
    if (!p)
        return false;
    pt_refresh(self, p, now_ms);
    if (p->info.state == PEER_STATE_BANNED)
        return false;
    return !p->dropped_for_score || p->score.value > self->cfg.disconnect_score;
}

/* ---- views ---------------------------------------------------------------- */

static void fill_view(peer_table_t *self, peer_t *p, uint64_t now_ms, peer_view_t *out)
{
    out->eligible = pt_eligible(self, p, now_ms); /* refreshes p first */
    out->info = p->info;
    out->metrics = p->m;
    out->score = p->score.value;
    const char *why = p->info.state == PEER_STATE_BANNED
                          ? pt_ban_reason(self, p->info.peer_id, p->info.endpoint, now_ms)
                          : NULL;
    pt_copy_trunc(out->ban_reason, sizeof out->ban_reason, why);
    uint32_t blocks = p->m.avg_request_blocks > 0 ? (uint32_t) p->m.avg_request_blocks : 1;
    out->timeout_ms = peer_table_request_timeout(self, p->info.peer_id, blocks);
}

int peer_table_get(peer_table_t *self, const char *peer_id, uint64_t now_ms, peer_view_t *out)
{
    peer_t *p = pt_find(self, peer_id);
    if (!p)
        return PEER_ERR_UNKNOWN;
    fill_view(self, p, now_ms, out);
    return PEER_OK;
}

size_t peer_table_list(peer_table_t *self, uint64_t now_ms, peer_view_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < PEER_TABLE_MAX_PEERS && n < cap; i++) {
        if (self->peers[i].used)
            fill_view(self, &self->peers[i], now_ms, &out[n++]);
    }
    return n;
}
