/*  config_keys.c: the key schema, the one source of every default.
 *
 *  Each row of s_keys names a key, its table, its field in alys_config_t,
 *  its type and range, and its default. cfg_set_defaults fills a config from
 *  these rows alone; no other file repeats a default (callers that need one
 *  take it from alys_config_defaults).
 *
 *  Keys of the design seed's [sync] section that this node keeps in other
 *  tables (log_level, metrics_enabled, metrics_port) carry `.also = "sync"`:
 *  the seed's section pasted as is loads, and setting one key in both places
 *  is a duplicate.
 */
#include "config_schema.h"

#include <string.h>

#define NAME(t, k)            .table = t, .key = k, .name = t "." k
#define FIELD(m)              .off = offsetof(alys_config_t, m), .size = sizeof(((alys_config_t *) 0)->m)
#define KSTR(t, k, m, ne, d)  NAME(t, k), .kind = CFG_K_STR, FIELD(m), .nonempty = ne, .sdef = d
#define KPATH(t, k, m, ne, d) KSTR(t, k, m, ne, d), .resolve = true
#define KENUM(t, k, m, c, d)  NAME(t, k), .kind = CFG_K_ENUM, FIELD(m), .choices = c, .sdef = d
#define KEP(t, k, m)          NAME(t, k), .kind = CFG_K_ENDPOINT, FIELD(m), .sdef = ""
#define KINT(t, k, m, lo, hi, d) \
    NAME(t, k), .kind = CFG_K_INT, FIELD(m), .imin = lo, .imax = hi, .idef = d
#define KF64(t, k, m, lo, hi, d) \
    NAME(t, k), .kind = CFG_K_F64, FIELD(m), .fmin = lo, .fmax = hi, .fdef = d
#define KBOOL(t, k, m, d) NAME(t, k), .kind = CFG_K_BOOL, FIELD(m), .idef = d

static const char *const strategy_choices[] = {"parallel", "sequential", NULL};
static const char *const batch_choices[] = {"adaptive", "fixed", NULL};
static const char *const log_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_format_choices[] = {"text", "json", NULL};
static const char *const peer_choices[] = {"weighted",      "round_robin", "lowest_latency",
                                           "most_reliable", "proximity",   NULL};

#define MS_MAX   600000 /* 10 minutes: any longer timeout is a typo */
#define SECS_DAY 86400

/* The SyncActor runs at most this many ranges at once (SYNC_MAX_PARALLEL in
 * actors/sync): a larger value would be silently capped, so it is refused. */
#define MAX_PARALLEL_DOWNLOADS 32

/* Why a key is accepted but does nothing yet. The loader tells the operator
 * (alys_config_t.notes); remove the note when the key takes effect. */
#define INERT_CHECKPOINT_STORAGE                                                        \
    "checkpoints are kept in the node's database under data_dir, written in the same "  \
    "atomic batch as the blocks they cover; a separate directory would break that, so " \
    "this key has no effect"
#define INERT_SYNC_PEERS                                                   \
    "not yet used by the SyncActor: it syncs from every ready peer above " \
    "peer_score_threshold"

static const cfg_key_t s_keys[] = {
    {KSTR("node", "name", node_name, true, "node")},
    {KPATH("node", "data_dir", data_dir, true, "./data")},
    {KPATH("node", "run_dir", run_dir, true, "./run")},
    {KPATH("node", "genesis_file", genesis_file, false, "")},
    {KENUM("node", "log_level", log_level, log_choices, "info"), .also = "sync"},
    {KENUM("node", "log_format", log_format, log_format_choices, "text")},

    {KENUM("sync", "strategy", strategy, strategy_choices, "parallel")},
    {KINT("sync", "max_parallel_downloads", max_parallel_downloads, 1, MAX_PARALLEL_DOWNLOADS, 3)},
    {KENUM("sync", "batch_size", batch_size, batch_choices, "adaptive")},
    {KINT("sync", "fixed_batch_size", fixed_batch_size, 1, 65536, 256)},
    {KINT("sync", "min_batch_size", min_batch_size, 1, 65536, 16)},
    {KINT("sync", "max_batch_size", max_batch_size, 1, 65536, 1024)},
    {KINT("sync", "checkpoint_interval", checkpoint_interval, 1, 1000000, 100)},
    {KINT("sync", "max_checkpoints", max_checkpoints, 1, 10000, 10)},
    {KSTR("sync", "checkpoint_storage", checkpoint_storage, true, "checkpoints"),
     .inert = INERT_CHECKPOINT_STORAGE},
    {KINT("sync", "max_recovery_attempts", max_recovery_attempts, 0, 1000, 5)},
    {KINT("sync", "recovery_backoff_secs", recovery_backoff_secs, 0, SECS_DAY, 60)},
    {KBOOL("sync", "auto_recovery", auto_recovery, true)},
    {KENUM("sync", "peer_selection", peer_selection, peer_choices, "weighted")},
    {KF64("sync", "latency_weight", latency_weight, 0, 1000, 0.4)},
    {KF64("sync", "reliability_weight", reliability_weight, 0, 1000, 0.4)},
    {KF64("sync", "bandwidth_weight", bandwidth_weight, 0, 1000, 0.2)},
    {KINT("sync", "min_sync_peers", min_sync_peers, 0, 1000, 1)},
    {KINT("sync", "max_sync_peers", max_sync_peers, 1, 1000, 10), .inert = INERT_SYNC_PEERS},
    {KF64("sync", "peer_score_threshold", peer_score_threshold, 0, 1, 0.5)},
    {KINT("sync", "validation_workers", validation_workers, 0, 64, 4)},
    /* The budget the cache, write buffers and reorder buffer are sized
     * from (common/membudget.h); cache_size_mb 0 = 1/16 of it, else that
     * size, at most half the budget. */
    {KINT("sync", "max_memory_gb", max_memory_gb, 1, 4096, 8)},
    {KINT("sync", "cache_size_mb", cache_size_mb, 0, 1048576, 0)},
    {KF64("sync", "production_threshold", production_threshold, 0, 100, 99.5)},
    {KINT("sync", "production_max_blocks_behind", production_max_blocks_behind, 0, 1000000, 10)},
    {KINT("sync", "download_window", download_window, 1, 1000000, 1024)},
    {KINT("sync", "request_timeout_ms", request_timeout_ms, 1, MS_MAX, 5000)},

    {KINT("storage", "max_reorg_depth", max_reorg_depth, 1, 100000, 64)},
    {KBOOL("storage", "wal_sync", wal_sync, true)},

    {KEP("network", "listen", listen)},
    {NAME("network", "bootstrap_peers"), .kind = CFG_K_LIST,
     .off = offsetof(alys_config_t, bootstrap_peers),
     .size = sizeof(((alys_config_t *) 0)->bootstrap_peers[0]), .imax = ALYS_MAX_BOOTSTRAP,
     .count_off = offsetof(alys_config_t, bootstrap_peer_count)},
    {KINT("network", "serve_rate_limit", serve_rate_limit, 1, 1000000, 200)},
    /* Bytes count as well as requests (rate_limit.h): an honest peer sends
     * small requests and at most a block per slot; bursts hold one whole
     * frame whatever the rate. */
    {KINT("network", "serve_byte_rate_kb", serve_byte_rate_kb, 1, 4194304, 4096)},
    /* Serving budgets (actors/peer_manager/pm_inbound.h). One answer is at
     * most 8 MiB (ALYS_MAX_MSG_BYTES), so no budget may be smaller; the
     * peer manager tracks at most 1024 inbound clients (PS_MAX_CLIENTS). */
    {KINT("network", "serve_max_requests", serve_max_requests, 1, 64, 4)},
    {KINT("network", "serve_client_mb", serve_client_mb, 8, 1024, 16)},
    {KINT("network", "serve_memory_mb", serve_memory_mb, 8, 65536, 128)},
    {KINT("network", "max_inbound_peers", max_inbound_peers, 1, 1024, 64)},
    {KINT("network", "max_inbound_per_address", max_inbound_per_address, 1, 1024, 8)},
    /* Node-to-node links without CURVE: no encryption, and an inbound peer
     * is whoever its Status says it is. For tests and for measuring what
     * CURVE costs (scripts/bench.sh), never for a network with strangers.
     * Endpoints still carry keys (they name the peers). */
    {KBOOL("network", "plaintext", plaintext, false)},

    {KINT("mempool", "max_txs", mempool_max_txs, 1, 1048576, 10000)},
    {KINT("mempool", "max_bytes", mempool_max_bytes, 256, 1ULL << 30, 2097152)},
    {KINT("mempool", "max_per_sender", mempool_max_per_sender, 1, 4096, 64)},
    {KINT("mempool", "max_sender_bytes", mempool_max_sender_bytes, 256, 1048576, 16384)},
    {KINT("mempool", "gossip_rate", tx_gossip_rate, 1, 100000, 20)},
    {KINT("mempool", "gossip_bytes", tx_gossip_bytes, 1024, 1U << 30, 262144)},

    {KEP("validation", "worker_listen", worker_listen)},
    {KBOOL("validation", "curve_enabled", curve_enabled, false)},
    {KPATH("validation", "curve_server_cert", curve_server_cert, false, "")},
    {KPATH("validation", "curve_allowed_dir", curve_allowed_dir, false, "")},
    {KINT("validation", "task_timeout_ms", task_timeout_ms, 1, MS_MAX, 2000)},

    {KEP("endpoints", "supervisor", ep_supervisor)},
    {KEP("endpoints", "events_in", ep_events_in)},
    {KEP("endpoints", "events", ep_events)},
    {KEP("endpoints", "storage", ep_storage)},
    {KEP("endpoints", "peer_manager", ep_peer_manager)},
    {KEP("endpoints", "block_processor", ep_block_processor)},
    {KEP("endpoints", "validators", ep_validators)},
    {KEP("endpoints", "sync", ep_sync)},

    /* The ProducerActor (issue 9). Off by default: only an authority
     * produces, and it needs its key. key_file holds one authority secret
     * key as 64 hex digits (a line of alys-chaingen's keys file), mode 0600;
     * the supervisor's preflight refuses (exit 78) a key that is not one of
     * the genesis authorities or a file others may read. */
    {KBOOL("producer", "enabled", producer_enabled, false)},
    {KPATH("producer", "key_file", producer_key_file, false, "")},
    /* Txs per produced block at most (the chain allows 4096): what the
     * producer asks the mempool for. Validators check every signature of a
     * block before it commits, so this bounds the work a block costs the
     * network within a slot. 0: empty blocks. */
    {KINT("producer", "max_block_txs", producer_max_block_txs, 0, 4096, 1024)},

    {KINT("supervisor", "start_timeout_ms", start_timeout_ms, 1, MS_MAX, 5000)},
    {KINT("supervisor", "heartbeat_interval_ms", heartbeat_interval_ms, 1, MS_MAX, 500)},
    {KINT("supervisor", "heartbeat_timeout_ms", heartbeat_timeout_ms, 1, MS_MAX, 3000)},
    {KINT("supervisor", "restart_backoff_min_ms", restart_backoff_min_ms, 0, MS_MAX, 100)},
    {KINT("supervisor", "restart_backoff_max_ms", restart_backoff_max_ms, 0, MS_MAX, 5000)},
    {KINT("supervisor", "max_restarts", max_restarts, 0, 10000, 5)},
    {KINT("supervisor", "restart_window_secs", restart_window_secs, 1, SECS_DAY, 60)},
    {KINT("supervisor", "shutdown_timeout_ms", shutdown_timeout_ms, 1, MS_MAX, 3000)},
    {KBOOL("supervisor", "warm_standby", warm_standby, true)},

    {KBOOL("metrics", "metrics_enabled", metrics_enabled, true), .also = "sync"},
    {KINT("metrics", "metrics_port", metrics_port, 1, 65535, 9091), .also = "sync"},
    {KSTR("metrics", "metrics_bind", metrics_bind, true, "127.0.0.1")},
};
#define NKEYS (sizeof s_keys / sizeof s_keys[0])
_Static_assert(NKEYS <= CFG_MAX_KEYS, "raise CFG_MAX_KEYS");

static const char *const s_tables[] = {
    "node",       "sync",      "storage",  "network",    "mempool",
    "validation", "endpoints", "producer", "supervisor", "metrics",
};
#define NTABLES (sizeof s_tables / sizeof s_tables[0])
_Static_assert(NTABLES <= CFG_MAX_TABLES, "raise CFG_MAX_TABLES");

static const cfg_order_rule_t s_order_rules[] = {
    {"sync.min_batch_size", "sync.fixed_batch_size", false},
    {"sync.fixed_batch_size", "sync.max_batch_size", false},
    {"sync.min_sync_peers", "sync.max_sync_peers", false},
    {"supervisor.restart_backoff_min_ms", "supervisor.restart_backoff_max_ms", false},
    {"supervisor.heartbeat_interval_ms", "supervisor.heartbeat_timeout_ms", true},
};

/* Endpoints derived from run_dir when left empty, in config.h's order. */
static const struct {
    const char *name;
    size_t off;
} s_endpoints[] = {
    {"supervisor", offsetof(alys_config_t, ep_supervisor)},
    {"events_in", offsetof(alys_config_t, ep_events_in)},
    {"events", offsetof(alys_config_t, ep_events)},
    {"storage", offsetof(alys_config_t, ep_storage)},
    {"peer_manager", offsetof(alys_config_t, ep_peer_manager)},
    {"block_processor", offsetof(alys_config_t, ep_block_processor)},
    {"validators", offsetof(alys_config_t, ep_validators)},
    {"sync", offsetof(alys_config_t, ep_sync)},
};
#define NENDPOINTS (sizeof s_endpoints / sizeof s_endpoints[0])

_Static_assert(6 + CFG_IPC_PATH_MAX + 1 <= ALYS_ENDPOINT_MAX, "ipc endpoint must fit");

/* ------------------------------------------------------------------ lookups */

size_t cfg_key_count(void)
{
    return NKEYS;
}
const cfg_key_t *cfg_key_at(size_t index)
{
    return index < NKEYS ? &s_keys[index] : NULL;
}
size_t cfg_table_count(void)
{
    return NTABLES;
}
const char *cfg_table_at(size_t index)
{
    return index < NTABLES ? s_tables[index] : NULL;
}

const cfg_order_rule_t *cfg_order_rules(size_t *count)
{
    *count = sizeof s_order_rules / sizeof s_order_rules[0];
    return s_order_rules;
}

int cfg_find_table(const char *name)
{
    for (size_t t = 0; t < NTABLES; t++)
        if (strcmp(s_tables[t], name) == 0)
            return (int) t;
    return -1;
}

int cfg_find_key(const char *table, const char *key)
{
    for (size_t k = 0; k < NKEYS; k++) {
        const cfg_key_t *d = &s_keys[k];
        bool here = !table || strcmp(d->table, table) == 0 ||
                    (d->also && strcmp(d->also, table) == 0);
        if (here && strcmp(d->key, key) == 0)
            return (int) k;
    }
    return -1;
}

int cfg_find_key_name(const char *name)
{
    for (size_t k = 0; k < NKEYS; k++)
        if (strcmp(s_keys[k].name, name) == 0)
            return (int) k;
    return -1;
}

size_t alys_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

static const char *closest(const char *word, const char *(*at)(size_t), size_t n)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < n; i++) {
        size_t dist = alys_edit_distance(word, at(i));
        if (dist < best_d) {
            best_d = dist;
            best = at(i);
        }
    }
    return best;
}

static const char *key_word(size_t i)
{
    return s_keys[i].key;
}

const char *cfg_suggest_key(const char *word)
{
    return closest(word, key_word, NKEYS);
}
const char *cfg_suggest_table(const char *word)
{
    return closest(word, cfg_table_at, NTABLES);
}

/* ----------------------------------------------------------------- defaults */

void cfg_store_int(alys_config_t *c, const cfg_key_t *k, int64_t v)
{
    char *f = (char *) c + k->off;
    if (k->size == sizeof(uint16_t))
        *(uint16_t *) f = (uint16_t) v;
    else if (k->size == sizeof(uint32_t))
        *(uint32_t *) f = (uint32_t) v;
    else
        *(uint64_t *) f = (uint64_t) v;
}

int64_t cfg_load_int(const alys_config_t *c, const cfg_key_t *k)
{
    const char *f = (const char *) c + k->off;
    if (k->size == sizeof(uint16_t))
        return *(const uint16_t *) f;
    if (k->size == sizeof(uint32_t))
        return *(const uint32_t *) f;
    return (int64_t) * (const uint64_t *) f;
}

/* A string default longer than its field is cut to fit; the config unit test
 * checks every default loads back unchanged, so that cannot ship. */
static void default_string(alys_config_t *c, const cfg_key_t *k)
{
    char *f = (char *) c + k->off;
    const char *v = k->sdef ? k->sdef : "";
    size_t len = strnlen(v, k->size - 1);
    memcpy(f, v, len);
    f[len] = '\0';
}

void cfg_set_defaults(alys_config_t *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++) {
        const cfg_key_t *k = &s_keys[i];
        switch (k->kind) {
        case CFG_K_INT: cfg_store_int(c, k, k->idef); break;
        case CFG_K_F64: *(double *) ((char *) c + k->off) = k->fdef; break;
        case CFG_K_BOOL: *(bool *) ((char *) c + k->off) = k->idef != 0; break;
        case CFG_K_LIST: break; /* empty: memset */
        default: default_string(c, k); break;
        }
    }
}

/* ---------------------------------------------------------------- endpoints */

/* ipc://<run_dir>/<name>.sock into endpoint i if it is empty. Returns the
 * socket path's length when that exceeds a unix socket path (the endpoint
 * stays empty), else 0. */
static size_t derive_one(alys_config_t *c, size_t i)
{
    char *f = (char *) c + s_endpoints[i].off;
    if (f[0] != '\0')
        return 0;
    const char *name = s_endpoints[i].name;
    size_t dirlen = strnlen(c->run_dir, sizeof c->run_dir);
    size_t namelen = strlen(name);
    size_t need = dirlen + 1 + namelen + strlen(".sock");
    if (need > CFG_IPC_PATH_MAX)
        return need;
    /* Lengths are checked: "ipc://" + 107 + NUL always fits ALYS_ENDPOINT_MAX. */
    memcpy(f, "ipc://", 6);
    memcpy(f + 6, c->run_dir, dirlen);
    f[6 + dirlen] = '/';
    memcpy(f + 7 + dirlen, name, namelen);
    memcpy(f + 7 + dirlen + namelen, ".sock", sizeof ".sock");
    return 0;
}

int cfg_derive_all(alys_config_t *c, const char **bad, size_t *badlen)
{
    int rc = 0;
    for (size_t i = 0; i < NENDPOINTS; i++) {
        size_t need = derive_one(c, i);
        if (need == 0)
            continue;
        if (bad && !*bad) {
            *bad = s_endpoints[i].name;
            *badlen = need;
        }
        rc = -1;
    }
    return rc;
}
