/*  pm_core.c: the core's entry points (see pm_core.h): set-up, the clocks,
 *  and the dispatch of every input to the module that owns it. After every
 *  input that may earn an action, the closes it queued are carried out
 *  (pn_flush_closes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "membudget.h"
#include "nodeaddr.h"
#include "pm.h"
#include "pm_gossip.h"

pm_t *pm_core_new(const alys_config_t *cfg, alys_metrics_t *metrics, const pm_port_t *port,
                  char *err, size_t errlen)
{
    peer_table_config_t tc;
    if (peer_table_config_from_alys(&tc, cfg, err, errlen) != 0)
        return NULL;
    alys_membudget_t mb; /* the reorder buffer's bound */
    if (alys_membudget_derive(&mb, cfg->max_memory_gb, cfg->cache_size_mb, err, errlen) != 0)
        return NULL;
    pm_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->cfg = cfg;
    self->metrics = metrics;
    self->port = *port;
    self->table = peer_table_new(&tc);
    reorder_config_t rc;
    reorder_config_defaults(&rc);
    rc.max_bytes = (size_t) mb.reorder_bytes;
    self->reorder = reorder_new(&rc);
    self->store = pm_storage_new();
    self->gossip = pmg_new();
    if (self->table && self->reorder && self->store && self->gossip) {
        self->net = pn_new(self);
        self->serve = ps_new(self);
        self->txs = pm_tx_new(self);
        self->park = pm_park_new(cfg);
    }
    if (!self->net || !self->serve || !self->txs || !self->park) {
        snprintf(err, errlen, "out of memory");
        pm_core_destroy(&self);
    }
    return self;
}

void pm_core_destroy(pm_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_t *self = *self_p;
    pm_tx_destroy(self, &self->txs);
    ps_destroy(&self->serve);
    pn_destroy(&self->net);
    pm_storage_destroy(&self->store);
    pm_park_destroy(&self->park);
    reorder_destroy(&self->reorder);
    pmg_destroy(&self->gossip);
    pm_stash_clear(self);
    peer_table_destroy(&self->table);
    free(self);
    *self_p = NULL;
}

void pm_core_clock(pm_t *self, uint64_t now_unix_ms, int64_t now_mono_ms)
{
    self->wall = now_unix_ms;
    self->mono = now_mono_ms;
}

void pm_core_start(pm_t *self)
{
    /* Counters exist from the start, so a dashboard shows 0, not "no data". */
    alys_metric_add(self->metrics, "alys_peer_bans_total", NULL, "Peers banned", 0);
    /* Ask at once: peers are dialled only after both answers. */
    pm_deliver_refresh_head(self);
    pm_bans_tick(self);
    pm_book_store_tick(self);
    ps_tick(self);
    pm_park_start(self);
}

/* Fetches held for GetParked's answer and our head, once both are in (or
 * the wait is over): committed already, answered from the re-adopted
 * ranges, or downloaded. */
static void release_held(pm_t *self)
{
    if (!pm_park_release_due(self))
        return;
    Alys__Peer__FetchBlocks *fb;
    while ((fb = pm_park_next_held(self))) {
        if (!pm_park_on_released(self, fb))
            pn_fetch_blocks(self, fb);
        alys__peer__fetch_blocks__free_unpacked(fb, NULL);
    }
}

static void fetch_blocks(pm_t *self, const Alys__Peer__FetchBlocks *fb)
{
    if (!pm_park_on_fetch(self, fb))
        pn_fetch_blocks(self, fb);
}

void pm_core_on_peer_msg(pm_t *self, const Alys__Peer__PeerMsg *m)
{
    switch (m->msg_case) {
    case ALYS__PEER__PEER_MSG__MSG_FETCH_HEADERS: pn_fetch_headers(self, m->fetch_headers); break;
    case ALYS__PEER__PEER_MSG__MSG_FETCH_BLOCKS: fetch_blocks(self, m->fetch_blocks); break;
    case ALYS__PEER__PEER_MSG__MSG_RANGE_VERDICT: pm_range_verdict(self, m->range_verdict); break;
    case ALYS__PEER__PEER_MSG__MSG_PENALISE: pm_penalise(self, m->penalise); break;
    case ALYS__PEER__PEER_MSG__MSG_ANNOUNCE_BLOCK:
        pg_on_announce(self, &m->announce_block->block);
        break;
    default: break;
    }
    pn_flush_closes(self); /* what verdicts and penalties earned */
}

void pm_core_on_mempool(pm_t *self, const uint8_t *route, size_t route_len, const alys_env_t *env)
{
    if (env->reply || env->body_case != ALYS__BUS__ENVELOPE__BODY_MEMPOOL || !env->mempool)
        return;
    if (env->mempool->msg_case == ALYS__MEMPOOL__MEMPOOL_MSG__MSG_SUBMIT_TX && env->mempool->submit_tx)
        pm_tx_on_bus(self, route, route_len, env->corr_id, env->sender, env->mempool->submit_tx);
    else
        pm_tx_bus_error(self, route, route_len, env->corr_id, ALYS_ERR_BAD_REQUEST,
                        "peer_manager takes SubmitTx; ask storage for the rest of the mempool");
}

void pm_core_on_storage(pm_t *self, const alys_env_t *env)
{
    pm_storage_on_env(self, env);
    release_held(self); /* our head may be what held fetches waited for */
}

/* BatchProcessed: blame may close connections. */
void pm_core_on_processor(pm_t *self, const alys_env_t *env)
{
    if (pm_park_on_reply(self, env)) {
        release_held(self);
        pm_deliver_pump(self); /* the re-adopted ranges */
    } else if (env->reply && pg_on_processor(self, env))
        pm_deliver_pump(self); /* one of gossip's pushed blocks */
    else
        pm_bp_on_env(self, env);
    pg_head_moved(self); /* an orphan's ancestors may have just committed */
    pn_flush_closes(self);
}

int pm_core_set_key(pm_t *self, const char *key_hex)
{
    uint8_t key[ALYS_KEY_LEN];
    if (!alys_key_is_hex(key_hex) || alys_key_parse(key_hex, ALYS_KEY_HEX_LEN, key) != 0)
        return -1;
    snprintf(self->key_hex, sizeof self->key_hex, "%s", key_hex);
    if (alys_nodeaddr_from_listen(key, self->cfg->listen, self->our_endpoint,
                                  sizeof self->our_endpoint) != 0)
        self->our_endpoint[0] = '\0'; /* not serving over tcp: nothing to announce */
    pn_set_key(self, key_hex);
    return 0;
}

void pm_core_on_processor_link(pm_t *self, bool up)
{
    pm_bp_on_link(self, up);
}

void pm_core_on_peer_frame(pm_t *self, int slot, const uint8_t *data, size_t len, size_t n_frames)
{
    pn_on_frame(self, slot, data, len, n_frames);
    pg_take_stash(self); /* a NewBlock of this frame */
    pn_flush_closes(self);
}

void pm_core_on_peer_link(pm_t *self, int slot, bool up)
{
    pn_on_link(self, slot, up);
}

void pm_core_on_client_frame(pm_t *self, const uint8_t *id, size_t id_len, const char *addr,
                             const char *key, const uint8_t *data, size_t len)
{
    ps_on_frame(self, id, id_len, addr, key, data, len);
    pg_take_stash(self); /* a NewBlock of this frame */
    pn_flush_closes(self);
}

void pm_core_on_client_parts(pm_t *self, const uint8_t *id, size_t id_len, const char *key, size_t len)
{
    ps_on_parts(self, id, id_len, key, len);
}

void pm_core_on_client_taken(pm_t *self, const uint8_t *id, size_t id_len, uint64_t bytes, bool range)
{
    ps_on_taken(self, id, id_len, bytes, range);
}

pm_zap_t pm_core_zap(pm_t *self, const char *domain, const char *mechanism, const uint8_t *key,
                     size_t key_len)
{
    return pm_zap_decide(domain, mechanism, key, key_len, self->table, pm_now(self));
}

void pm_core_tick_fast(pm_t *self)
{
    pm_storage_tick(self);
    pn_tick(self);
    pm_deliver_tick(self);
    release_held(self); /* the wait for GetParked may be over */
    pm_tx_flush(self);
    pm_push_peerset(self, false);
}

void pm_core_tick_head(pm_t *self)
{
    pm_deliver_refresh_head(self);
}

void pm_core_tick_slow(pm_t *self)
{
    if (peer_table_tick(self->table, pm_now(self)) > 0)
        self->peerset_dirty = true; /* a ban ran out */
    pm_bans_tick(self);
    pm_book_store_tick(self);
    ps_tick(self);
}
