/*  peer_select.c: whom to ask (the seed's selection strategies), how much to
 *  ask for (adaptive batch size) and how long to wait (per-peer timeout).
 */
#include "peer_table_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_BASE     128.0
#define BYTES_PER_MB   1e6
/* Loopback answers in "0 ms"; ratios against it need a floor. */
#define MIN_LATENCY_MS 1.0

typedef struct {
    peer_t *p;
    size_t slot;
    double score;
    double key;    /* higher = preferred */
    bool fallback; /* below the cutoff: after every eligible peer */
} cand_t;

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static bool excluded(const peer_select_req_t *req, const char *peer_id)
{
    for (size_t i = 0; req->exclude && i < req->exclude_count; i++) {
        if (req->exclude[i] && strcmp(req->exclude[i], peer_id) == 0)
            return true;
    }
    return false;
}

/* Not dropped: connected and above the disconnect score (a peer at or below
 * it is being disconnected; one whose score recovered is dialled again
 * first). */
static bool usable(const peer_t *p, double disconnect_score)
{
    return p->info.state == PEER_STATE_CONNECTED && p->score.value > disconnect_score;
}

static bool wanted(const peer_t *p, const peer_select_req_t *req)
{
    return !req || (p->info.reported_height >= req->min_height && !excluded(req, p->info.peer_id));
}

/* Eligible peers in table order. req NULL = ignore height and exclusions.
 *
 * The score cutoff says whom to prefer, not whom to refuse. A connected peer
 * below the cutoff but above the disconnect score is also taken (as a
 * fallback, ordered after every eligible peer) when no eligible peer passes
 * the request, or when it reports more blocks than every eligible peer does:
 * then nobody better can serve what it has. Without this, a few timeouts
 * against honest peers (one bad link, a partition) left nobody to ask, or
 * only a peer far behind (a fork's short chain) whose height the sync took
 * for the tip, and the 10-minute half-life kept it so for minutes while the
 * connected peers that have the blocks sat idle (issue 7: the sync stood
 * still, or called itself Synced). Misbehaviour still excludes: it costs
 * enough to disconnect or ban. */
static size_t gather(peer_table_t *self, const peer_select_req_t *req, uint64_t now_ms, cand_t *out)
{
    bool ok[PEER_TABLE_MAX_PEERS];
    size_t strict = 0;
    uint64_t best = 0;
    for (size_t i = 0; i < PEER_TABLE_MAX_PEERS; i++) {
        peer_t *p = &self->peers[i];
        ok[i] = p->used && pt_eligible(self, p, now_ms) && wanted(p, req); /* refreshes p */
        if (ok[i]) {
            strict++;
            if (p->info.reported_height > best)
                best = p->info.reported_height;
        }
    }
    size_t n = 0;
    for (size_t i = 0; i < PEER_TABLE_MAX_PEERS; i++) {
        peer_t *p = &self->peers[i];
        bool fallback = !ok[i] && p->used && usable(p, self->cfg.disconnect_score) &&
                        wanted(p, req) && (strict == 0 || p->info.reported_height > best);
        if (ok[i] || fallback)
            out[n++] = (cand_t){.p = p, .slot = i, .score = p->score.value, .fallback = fallback};
    }
    return n;
}

/* ---- neutral values for unmeasured peers ---------------------------------- */

typedef struct {
    double latency;   /* ms, mean of the measured; 0 if none */
    double rtt;       /* ms */
    double bandwidth; /* bytes/s */
} neutral_t;

static neutral_t neutral_of(const cand_t *c, size_t n)
{
    double lat = 0, rtt = 0, bw = 0;
    size_t n_lat = 0, n_rtt = 0, n_bw = 0;
    for (size_t i = 0; i < n; i++) {
        const peer_metrics_t *m = &c[i].p->m;
        if (m->has_latency) {
            lat += m->average_latency_ms;
            n_lat++;
        }
        if (m->has_rtt) {
            rtt += m->min_rtt_ms;
            n_rtt++;
        }
        if (m->has_bandwidth) {
            bw += m->bandwidth_bps;
            n_bw++;
        }
    }
    return (neutral_t){
        .latency = n_lat ? lat / (double) n_lat : 0,
        .rtt = n_rtt ? rtt / (double) n_rtt : 0,
        .bandwidth = n_bw ? bw / (double) n_bw : 0,
    };
}

static double eff_latency(const peer_metrics_t *m, const neutral_t *nv)
{
    return m->has_latency ? m->average_latency_ms : nv->latency;
}

static double eff_rtt(const peer_metrics_t *m, const neutral_t *nv)
{
    return m->has_rtt ? m->min_rtt_ms : nv->rtt;
}

static double eff_bandwidth(const peer_metrics_t *m, const neutral_t *nv)
{
    return m->has_bandwidth ? m->bandwidth_bps : nv->bandwidth;
}

/* ---- keys ----------------------------------------------------------------- */

/* Weighted: each metric normalised against the best candidate, so the
 * weights compare like with like: latency best/own, bandwidth own/best,
 * reliability already 0..1. */
static void weighted_keys(const peer_table_config_t *cfg, cand_t *c, size_t n, const neutral_t *nv)
{
    double best_lat = INFINITY, best_bw = 0;
    for (size_t i = 0; i < n; i++) {
        double lat = fmax(eff_latency(&c[i].p->m, nv), MIN_LATENCY_MS);
        best_lat = fmin(best_lat, lat);
        best_bw = fmax(best_bw, eff_bandwidth(&c[i].p->m, nv));
    }
    for (size_t i = 0; i < n; i++) {
        const peer_metrics_t *m = &c[i].p->m;
        double lat_n = best_lat / fmax(eff_latency(m, nv), MIN_LATENCY_MS);
        double bw_n = best_bw > 0 ? eff_bandwidth(m, nv) / best_bw : 0;
        c[i].key = cfg->latency_weight * lat_n + cfg->reliability_weight * m->reliability_score +
                   cfg->bandwidth_weight * bw_n;
    }
}

static void assign_keys(const peer_table_config_t *cfg, peer_strategy_t strategy, cand_t *c, size_t n)
{
    neutral_t nv = neutral_of(c, n);
    if (strategy == PEER_SELECT_WEIGHTED) {
        weighted_keys(cfg, c, n, &nv);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const peer_metrics_t *m = &c[i].p->m;
        switch (strategy) {
        case PEER_SELECT_LOWEST_LATENCY: c[i].key = -eff_latency(m, &nv); break;
        case PEER_SELECT_MOST_RELIABLE: c[i].key = m->reliability_score; break;
        case PEER_SELECT_PROXIMITY: c[i].key = -eff_rtt(m, &nv); break;
        default: c[i].key = 0; break;
        }
    }
}

/* Eligible before fallback, then key, then score, then table order: a total
 * order, so results are deterministic whatever qsort does with equal
 * elements. */
static int cand_cmp(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->fallback != y->fallback)
        return x->fallback ? 1 : -1;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* ---- selection ------------------------------------------------------------ */

/* Round robin: continue in table order after the last peer handed out, so
 * consecutive calls spread load over every eligible peer. */
static size_t round_robin(peer_table_t *self, const cand_t *c, size_t n, size_t want, peer_ref_t *out)
{
    size_t first = 0;
    while (first < n && c[first].slot < self->rr_cursor)
        first++;
    size_t k = want < n ? want : n;
    for (size_t i = 0; i < k; i++) {
        const cand_t *pick = &c[(first + i) % n];
        memcpy(out[i].id, pick->p->info.peer_id, PEER_ID_MAX);
        self->rr_cursor = (pick->slot + 1) % PEER_TABLE_MAX_PEERS;
    }
    return k;
}

size_t peer_table_select_with(peer_table_t *self, peer_strategy_t strategy,
                              const peer_select_req_t *req, uint64_t now_ms, peer_ref_t *out,
                              size_t cap)
{
    static const peer_select_req_t any = {.count = PEER_TABLE_MAX_PEERS};
    if (!req)
        req = &any;
    cand_t c[PEER_TABLE_MAX_PEERS];
    size_t n = gather(self, req, now_ms, c);
    size_t want = req->count < cap ? req->count : cap;
    if (strategy == PEER_SELECT_ROUND_ROBIN)
        return round_robin(self, c, n, want, out);
    assign_keys(&self->cfg, strategy, c, n);
    qsort(c, n, sizeof c[0], cand_cmp);
    size_t k = want < n ? want : n;
    for (size_t i = 0; i < k; i++)
        memcpy(out[i].id, c[i].p->info.peer_id, PEER_ID_MAX);
    return k;
}

size_t peer_table_select(peer_table_t *self, const peer_select_req_t *req, uint64_t now_ms,
                         peer_ref_t *out, size_t cap)
{
    return peer_table_select_with(self, self->cfg.strategy, req, now_ms, out, cap);
}

size_t peer_table_eligible_count(peer_table_t *self, uint64_t now_ms)
{
    cand_t c[PEER_TABLE_MAX_PEERS];
    return gather(self, NULL, now_ms, c);
}

/* ---- batch size ----------------------------------------------------------- */

uint32_t peer_batch_size_formula(double avg_bandwidth_bps, double avg_latency_ms, size_t peers,
                                 uint32_t min_batch, uint32_t max_batch)
{
    if (max_batch < min_batch)
        max_batch = min_batch;
    double size = BATCH_BASE;
    if (avg_latency_ms > 0) {
        double bw_f = avg_bandwidth_bps > 0
                          ? clamp(avg_bandwidth_bps / BYTES_PER_MB / 10.0, 1.0, 8.0)
                          : 1.0;
        double lat_f = clamp(100.0 / avg_latency_ms, 0.5, 4.0);
        double peer_f = clamp((double) peers / 5.0, 0.5, 2.0);
        size = BATCH_BASE * bw_f * lat_f * peer_f;
    }
    return (uint32_t) clamp(size, (double) min_batch, (double) max_batch);
}

uint32_t peer_table_batch_size(peer_table_t *self, uint64_t now_ms)
{
    const peer_table_config_t *cfg = &self->cfg;
    if (!cfg->adaptive_batch)
        return cfg->fixed_batch_size;
    cand_t c[PEER_TABLE_MAX_PEERS];
    size_t n = gather(self, NULL, now_ms, c);
    double lat = 0, bw = 0;
    size_t n_lat = 0, n_bw = 0;
    for (size_t i = 0; i < n; i++) {
        const peer_metrics_t *m = &c[i].p->m;
        if (m->has_latency) {
            lat += fmax(m->average_latency_ms, MIN_LATENCY_MS);
            n_lat++;
        }
        if (m->has_bandwidth) {
            bw += m->bandwidth_bps;
            n_bw++;
        }
    }
    return peer_batch_size_formula(n_bw ? bw / (double) n_bw : 0, n_lat ? lat / (double) n_lat : 0,
                                   n, cfg->min_batch_size, cfg->max_batch_size);
}

/* ---- per-peer request timeout --------------------------------------------- */

/* Margin on the expected transfer time (peer_table.h gives the formula).
 * 2x covers a request queued behind another on the same connection (a
 * header request, or a second range when there are more parallel ranges
 * than peers: both timers start at send), and a bandwidth that halves
 * before the EWMA has followed it. */
#define TRANSFER_MARGIN 2.0

/* Bandwidth and bytes per block to predict a transfer with: the peer's own,
 * or, while it has answered no block range yet, the mean of the peers that
 * have (the neutral value selection gives unmeasured peers too). Without
 * that, the first range asked of each bandwidth-bound peer would be held to
 * request_timeout_ms: with the sequential strategy, one such range per peer
 * that times out fails the sync. false: nothing measured anywhere. */
static bool transfer_basis(const peer_table_t *self, const peer_metrics_t *m, double *bps,
                           double *per_block)
{
    if (m->has_bandwidth && m->bandwidth_bps > 0 && m->avg_block_bytes > 0) {
        *bps = m->bandwidth_bps;
        *per_block = m->avg_block_bytes;
        return true;
    }
    double bw = 0, bb = 0;
    size_t n = 0;
    for (size_t i = 0; i < PEER_TABLE_MAX_PEERS; i++) {
        const peer_metrics_t *o = &self->peers[i].m;
        if (self->peers[i].used && o->has_bandwidth && o->bandwidth_bps > 0 && o->avg_block_bytes > 0) {
            bw += o->bandwidth_bps;
            bb += o->avg_block_bytes;
            n++;
        }
    }
    if (!n)
        return false;
    *bps = bw / (double) n;
    *per_block = bb / (double) n;
    return true;
}

/* The transfer term of the timeout: what the measured bandwidth (bps) and
 * bytes per item say a response of `items` items takes, with the margin,
 * in ms. The bandwidth samples are bytes over the whole response time, so
 * they already carry the peer's latency and queueing. */
static double transfer_ms(double bps, double item_bytes, uint32_t items)
{
    return TRANSFER_MARGIN * (double) items * item_bytes * 1000.0 / bps;
}

/* items of item_bytes each (0: the measured bytes per block). */
static uint32_t request_timeout(peer_table_t *self, const char *peer_id, uint32_t items,
                                double item_bytes)
{
    const peer_table_config_t *cfg = &self->cfg;
    const peer_t *p = pt_find(self, peer_id);
    if (!p)
        return cfg->timeout_ceiling_ms; /* nothing known: the most patient */
    const peer_metrics_t *m = &p->m;
    double bps = 0, per_block = 0;
    bool measured = transfer_basis(self, m, &bps, &per_block);
    /* A block range bigger than ALYS_REQUEST_TIMEOUT_REF_BLOCKS with no
     * peer's bandwidth measured yet: latency from Status answers says
     * nothing of a range's transfer (smaller ranges keep the latency RTO). */
    if (!measured && item_bytes <= 0 && items > ALYS_REQUEST_TIMEOUT_REF_BLOCKS)
        return alys_request_timeout_unmeasured_ms(cfg->timeout_ceiling_ms, cfg->timeout_hard_ms,
                                                  items);
    /* Only a measured transfer time longer than request_timeout_ms takes a
     * request past it; below it the latency RTO, which tracks the peer more
     * tightly, rules.
     * The backoff stays on the RTO: a peer is given more than the ceiling
     * only for what the measured bandwidth shows, never for its timeouts
     * alone. */
    double xfer = measured ? transfer_ms(bps, item_bytes > 0 ? item_bytes : per_block, items) : 0;
    if (xfer > (double) cfg->timeout_ceiling_ms) {
        /* min_rtt: one bare round trip on top, the part that does not
         * shrink with the size. It only adds: latency alone never takes a
         * request past the ceiling. */
        double need = xfer + (m->has_rtt ? m->min_rtt_ms : 0);
        return (uint32_t) fmin(need, (double) cfg->timeout_hard_ms);
    }
    if (!m->has_latency)
        return cfg->timeout_ceiling_ms; /* no latency measured: the ceiling */
    double rto = m->average_latency_ms + 4.0 * m->latency_dev_ms;
    /* Bigger request than this peer usually answers: proportionally longer. */
    if (m->avg_request_blocks > 0 && items > m->avg_request_blocks)
        rto *= (double) items / m->avg_request_blocks;
    rto *= (double) (m->timeout_backoff ? m->timeout_backoff : 1);
    return (uint32_t) clamp(rto, (double) cfg->timeout_floor_ms, (double) cfg->timeout_ceiling_ms);
}

uint32_t peer_table_request_timeout(peer_table_t *self, const char *peer_id, uint32_t blocks)
{
    return request_timeout(self, peer_id, blocks, 0);
}

uint32_t peer_table_headers_timeout(peer_table_t *self, const char *peer_id, uint32_t headers)
{
    return request_timeout(self, peer_id, headers, PEER_HEADER_WIRE_BYTES);
}
