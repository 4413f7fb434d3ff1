/*  sim_net.c: the remote peers and the network between them and the node.
 *
 *  Every message (request or response) has a latency (base + jitter, plus
 *  per block for a slow link) on its own FIFO channel, and during the fault
 *  window (until fault_end_ms) may be lost, or find the peer partitioned
 *  away, down (disconnect fault) or silent. A peer serves the honest chain
 *  up to the chain's current tip, misbehaving as its fault kind says (the
 *  faultproxy kinds: delay, drop, stall, corrupt:<kind>, truncate,
 *  lie_height, lie_height_near, disconnect, wrong_genesis; and silent,
 *  slow, duplicate, wrong_start, bad_chain). Block corruption uses the
 *  block-forging library (common/forge: alys_forge_corrupt_block /
 *  _corrupt_encoding), as
 *  alys-faultproxy does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaingen.h"
#include "sim_internal.h"

#define DROP_EVERY       3
#define STALL_AFTER      64
#define DISCONNECT_EVERY 20
#define DISCONNECT_MS    2000
#define LIE_NEAR         1000
#define LIE_FAR          (1ULL << 40)

typedef struct {
    uint64_t responses;     /* Headers/Blocks answered (drop) */
    uint64_t requests;      /* every request (disconnect) */
    uint64_t served_blocks; /* stall */
    uint64_t down_until;
    uint64_t partition_until;
    uint64_t silent_at; /* UINT64_MAX = never */
    uint32_t delay_ms;
    uint32_t ms_per_block;
} peer_t;

struct sim_net {
    peer_t peer[SIM_MAX_PEERS];
};

void sim_msg_free(sim_msg_t **m_p)
{
    if (!m_p || !*m_p)
        return;
    sim_msg_t *m = *m_p;
    for (size_t i = 0; m->owned && i < m->n; i++)
        if (m->owned[i])
            free(m->items[i].data);
    free(m->items);
    free(m->owned);
    free(m);
    *m_p = NULL;
}

static void msg_drop(void *arg)
{
    sim_msg_t *m = arg;
    sim_msg_free(&m);
}

sim_net_t *sim_net_new(sim_t *sim)
{
    sim_net_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    const sim_case_t *c = sim_case(sim);
    sim_rng_t *r = sim_rng(sim);
    for (uint32_t p = 0; p < c->peers; p++) {
        peer_t *pe = &self->peer[p];
        pe->silent_at = c->fault[p] == SF_SILENT ? sim_rng_range(r, 0, c->fault_end_ms) : UINT64_MAX;
        pe->delay_ms = c->fault[p] == SF_DELAY ? (uint32_t) sim_rng_range(r, 50, 800) : 0;
        pe->ms_per_block = c->fault[p] == SF_SLOW ? (uint32_t) sim_rng_range(r, 2, 20) : 0;
    }
    return self;
}

void sim_net_destroy(sim_net_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

bool sim_net_reachable(const sim_t *sim, uint32_t peer)
{
    const peer_t *pe = &sim_get_net_c(sim)->peer[peer];
    uint64_t now = sim_now(sim);
    return now >= pe->partition_until && now >= pe->down_until && now < pe->silent_at;
}

bool sim_net_link_ok(const sim_t *sim, uint32_t peer)
{
    return sim_now(sim) >= sim_get_net_c(sim)->peer[peer].down_until;
}

/* ---- partitions ------------------------------------------------------------------- */

static void partition(sim_t *sim, void *arg)
{
    (void) arg;
    sim_net_t *self = sim_get_net(sim);
    const sim_case_t *c = sim_case(sim);
    sim_rng_t *r = sim_rng(sim);
    uint64_t mask = sim_rng_range(r, 1, (1ULL << c->peers) - 1);
    uint64_t until = sim_now(sim) + sim_rng_range(r, 500, 30000);
    for (uint32_t p = 0; p < c->peers; p++)
        if (mask & (1ULL << p) && self->peer[p].partition_until < until)
            self->peer[p].partition_until = until;
    sim_note(sim, "partition of peers %#llx until %llu", (unsigned long long) mask,
             (unsigned long long) until);
}

void sim_net_start(sim_t *sim)
{
    const sim_case_t *c = sim_case(sim);
    if (!c->partitions)
        return;
    sim_rng_t *r = sim_rng(sim);
    uint64_t n = sim_rng_range(r, 1, 4);
    for (uint64_t i = 0; i < n; i++)
        sim_post(sim, -1, sim_rng_range(r, 0, c->fault_end_ms), "partition", i, 0, partition, NULL);
}

/* ---- delivery ------------------------------------------------------------------------ */

static bool lost(sim_t *sim, uint32_t peer)
{
    const sim_case_t *c = sim_case(sim);
    if (!sim_net_reachable(sim, peer))
        return true;
    return sim_now(sim) < c->fault_end_ms && sim_rng_chance(sim_rng(sim), c->loss);
}

static uint64_t latency(sim_t *sim, const sim_msg_t *m)
{
    const sim_case_t *c = sim_case(sim);
    const peer_t *pe = &sim_get_net(sim)->peer[m->peer];
    uint64_t ms = c->latency_ms + sim_rng_range(sim_rng(sim), 0, c->jitter_ms);
    if (m->kind == M_BLOCKS || m->kind == M_HEADERS)
        ms += pe->delay_ms + (uint64_t) pe->ms_per_block * m->n / (m->kind == M_HEADERS ? 8 : 1);
    return ms;
}

static void to_node(sim_t *sim, void *arg)
{
    sim_msg_t *m = arg;
    if (!sim_net_reachable(sim, m->peer)) { /* it went away while in flight */
        sim_msg_free(&m);
        return;
    }
    sim_pm_on_net(sim, m);
}

static void reply(sim_t *sim, sim_msg_t *m)
{
    if (lost(sim, m->peer)) {
        sim_msg_free(&m);
        return;
    }
    static const char *const names[] = {"status_req", "status", "get_headers", "headers",
                                        "get_blocks", "blocks", "not_found"};
    sim_post_d(sim, CH_NET_BASE + 2 * (int) m->peer + 1, latency(sim, m), names[m->kind], m->peer,
               m->n, to_node, m, msg_drop);
}

/* ---- serving ---------------------------------------------------------------------------- */

static const sim_chain_t *served_chain(sim_t *sim, uint32_t peer, uint64_t *height)
{
    const sim_chain_t *fork = sim_fork_chain(sim, peer);
    uint64_t tip = sim_tip(sim);
    if (fork) {
        *height = fork->n < tip ? fork->n : tip;
        return fork;
    }
    *height = tip;
    return sim_honest_chain(sim);
}

static sim_msg_t *answer(const sim_msg_t *q, sim_msg_kind_t kind)
{
    sim_msg_t *m = calloc(1, sizeof *m);
    if (m) {
        m->kind = kind;
        m->peer = q->peer;
        m->wire_id = q->wire_id;
        m->start = q->start;
    }
    return m;
}

/* The middle block made invalid as the corrupt kind says (faultproxy's way). */
static int corrupt(sim_t *sim, const sim_chain_t *chain, sim_msg_t *m, alys_block_error_t kind)
{
    size_t i = m->n / 2;
    uint64_t h = m->start + i;
    alys_block_t b;
    alys_verdict_t v;
    char err[160];
    memset(&b, 0, sizeof b);
    if (alys_block_decode(m->items[i].data, m->items[i].len, &b, &v) != 0)
        return -1;
    uint8_t *out = NULL;
    size_t len = 0;
    int rc;
    if (alys_forge_fault_is_encoding(kind)) {
        rc = alys_forge_corrupt_encoding(&b, kind, &out, &len, err, sizeof err);
    } else {
        alys_header_t parent;
        if (h > 1)
            rc = alys_header_decode(chain->header[h - 2].data, chain->header[h - 2].len, &parent, &v);
        else {
            alys_genesis_parent(sim_genesis(sim), &parent);
            rc = 0;
        }
        alys_forge_fault_ctx_t ctx = {.genesis = sim_genesis(sim),
                                      .keys = sim_chain_keys(chain),
                                      .parent = &parent};
        if (rc == 0)
            rc = alys_forge_corrupt_block(&b, kind, &ctx, NULL, err, sizeof err);
        if (rc == 0)
            rc = alys_block_encode(&b, &out, &len);
    }
    alys_block_clear(&b);
    if (rc != 0)
        return -1;
    m->items[i] = (ProtobufCBinaryData){len, out};
    m->owned[i] = true;
    return 0;
}

static void serve_range(sim_t *sim, sim_net_t *self, const sim_msg_t *q)
{
    const sim_case_t *c = sim_case(sim);
    peer_t *pe = &self->peer[q->peer];
    sim_fault_t f = c->fault[q->peer];
    bool blocks = q->kind == M_GET_BLOCKS;
    uint64_t height;
    const sim_chain_t *chain = served_chain(sim, q->peer, &height);
    if (blocks && f == SF_STALL && pe->served_blocks >= STALL_AFTER)
        return;
    if (f == SF_DROP && pe->responses++ % DROP_EVERY == 0)
        return;
    if (q->start == 0 || q->start > height) {
        sim_msg_t *m = answer(q, M_NOT_FOUND);
        if (m)
            reply(sim, m);
        return;
    }
    uint64_t n = height - q->start + 1;
    if (n > q->count)
        n = q->count;
    if (f == SF_TRUNCATE && n >= 2)
        n /= 2;
    sim_msg_t *m = answer(q, blocks ? M_BLOCKS : M_HEADERS);
    if (!m)
        return;
    m->items = calloc(n, sizeof *m->items);
    m->owned = calloc(n, sizeof *m->owned);
    if (!m->items || !m->owned) {
        sim_msg_free(&m);
        return;
    }
    uint64_t first = q->start;
    if (f == SF_WRONG_START && blocks && first + n <= height)
        first++; /* the right count from the wrong place */
    m->start = first;
    m->n = n;
    for (uint64_t i = 0; i < n; i++)
        m->items[i] = blocks ? chain->block[first + i - 1] : chain->header[first + i - 1];
    if (blocks)
        pe->served_blocks += n;
    if (blocks && f == SF_CORRUPT && corrupt(sim, chain, m, c->corrupt[q->peer]) != 0)
        sim_note(sim, "peer-%u: corruption %s not applicable", q->peer,
                 alys_block_error_name(c->corrupt[q->peer]));
    if (f == SF_DUPLICATE) {
        sim_msg_t *d = answer(q, m->kind);
        if (d) {
            d->start = m->start;
            d->n = m->n;
            d->items = calloc(n, sizeof *d->items);
            d->owned = calloc(n, sizeof *d->owned);
            if (d->items && d->owned) {
                memcpy(d->items, m->items, n * sizeof *d->items);
                reply(sim, d);
            } else {
                sim_msg_free(&d);
            }
        }
    }
    reply(sim, m);
}

static void at_peer(sim_t *sim, void *arg)
{
    sim_msg_t *q = arg;
    sim_net_t *self = sim_get_net(sim);
    const sim_case_t *c = sim_case(sim);
    peer_t *pe = &self->peer[q->peer];
    sim_fault_t f = c->fault[q->peer];
    if (!sim_net_reachable(sim, q->peer))
        goto done;
    pe->requests++;
    if (f == SF_DISCONNECT && pe->requests % DISCONNECT_EVERY == 0) {
        pe->down_until = sim_now(sim) + DISCONNECT_MS; /* swallowed, and gone a while */
        sim_note(sim, "peer-%u goes down", q->peer);
        goto done;
    }
    if (q->kind == M_STATUS_REQ) {
        sim_msg_t *m = answer(q, M_STATUS);
        if (!m)
            goto done;
        uint64_t height;
        served_chain(sim, q->peer, &height);
        m->height = f == SF_LIE_HEIGHT        ? LIE_FAR
                    : f == SF_LIE_HEIGHT_NEAR ? height + LIE_NEAR
                                              : height;
        m->genesis_ok = f != SF_WRONG_GENESIS;
        reply(sim, m);
    } else {
        serve_range(sim, self, q);
    }
done:
    sim_msg_free(&q);
}

void sim_net_send(sim_t *sim, sim_msg_t *m)
{
    if (lost(sim, m->peer)) {
        sim_msg_free(&m);
        return;
    }
    static const char *const names[] = {"status_req", "status", "get_headers", "headers",
                                        "get_blocks", "blocks", "not_found"};
    sim_post_d(sim, CH_NET_BASE + 2 * (int) m->peer, latency(sim, m), names[m->kind], m->peer,
               m->start, at_peer, m, msg_drop);
}
