/*  config.h: the node's one config file (deploy/alys-sync.toml).
 *
 *  The file is TOML. Debian 12 packages no C TOML library, so config.c carries
 *  a small strict parser of the subset the file uses (tables, strings, integers,
 *  floats, booleans, arrays of strings, comments). Unknown keys, wrong types and
 *  out-of-range values are errors naming file:line:column and the key; nothing
 *  starts on a bad config.
 *
 *  Ownership: alys_config_t is a plain value (fixed-size fields, no heap), so it
 *  can be copied freely and needs no destroy.
 */
#ifndef ALYS_CONFIG_H
#define ALYS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALYS_PATH_MAX      512
#define ALYS_ENDPOINT_MAX  256
#define ALYS_NAME_MAX      64
#define ALYS_MAX_BOOTSTRAP 32
#define ALYS_ERR_MAX       512
#define ALYS_SET_MAX       64 /* most --set overrides on one command line */

/* Where every binary looks for the config without --config (after the
 * ALYS_CONFIG environment variable). */
#define ALYS_DEFAULT_CONFIG "/etc/alys-sync/alys-sync.toml"

/* EX_CONFIG of sysexits.h: the config or the environment it names is wrong
 * (bad key, unreadable genesis, data_dir not writable, port in use). Every
 * binary exits with it for such errors; the supervisor never restarts an actor
 * that exits with it, and the systemd unit does not restart the node. */
#define ALYS_EXIT_CONFIG  78
/* An actor exiting ALYS_EXIT_CONFIG leaves its message in the file
 * $ALYS_NOTE_DIR/<name>.exit-note (the supervisor sets the variable to
 * run_dir), so the supervisor can repeat it as its own last line. */
#define ALYS_NOTE_DIR_ENV "ALYS_NOTE_DIR"
#define ALYS_NOTE_SUFFIX  ".exit-note"
/* Usage errors (bad option): the problem on stderr, exit 2. */
#define ALYS_EXIT_USAGE   2

/* Request timeouts follow a peer's measured bandwidth past request_timeout_ms
 * (issue 11: an honest peer whose upload is the limit needs longer for a big
 * range), but never past this many times it, so that a peer measured at a
 * trickle cannot hold a range for ever. PeerManager (peer_table.h) and
 * SyncActor (sync_machine.h) both bound their timeouts by it. */
#define ALYS_REQUEST_TIMEOUT_HARD_FACTOR 8
/* With nothing measured yet (the first range of a sync: no bandwidth, no
 * throughput), request_timeout_ms is the time allowed for a range of this
 * many blocks; a bigger one gets proportionally more, up to the hard bound.
 * Without it the first 1,024-block range asked of a bandwidth-bound peer
 * (~10 s at 100 blocks/s) times out at 5 s, and the sequential strategy
 * fails at its first timeout. */
#define ALYS_REQUEST_TIMEOUT_REF_BLOCKS  256

/* The hard bound of a request's timeout: request_timeout_ms times
 * ALYS_REQUEST_TIMEOUT_HARD_FACTOR, without wrapping. */
static inline uint32_t alys_request_timeout_hard_ms(uint32_t request_timeout_ms)
{
    uint64_t hard = (uint64_t) request_timeout_ms * ALYS_REQUEST_TIMEOUT_HARD_FACTOR;
    return hard > UINT32_MAX ? UINT32_MAX : (uint32_t) hard;
}

/* A range of `blocks` blocks with nothing measured: request_timeout_ms per
 * ALYS_REQUEST_TIMEOUT_REF_BLOCKS blocks, at least request_timeout_ms, at
 * most hard_ms. PeerManager and SyncActor apply the same rule, so neither
 * gives up on such a range before the other. */
static inline uint32_t alys_request_timeout_unmeasured_ms(uint32_t request_timeout_ms,
                                                          uint32_t hard_ms, uint32_t blocks)
{
    double t = (double) request_timeout_ms * (double) blocks / ALYS_REQUEST_TIMEOUT_REF_BLOCKS;
    return (uint32_t) (t < request_timeout_ms ? request_timeout_ms : t > hard_ms ? hard_ms : t);
}

typedef struct {
    /* [node] */
    char node_name[ALYS_NAME_MAX];    /* "node" */
    char data_dir[ALYS_PATH_MAX];     /* "./data": RocksDB and everything durable */
    char run_dir[ALYS_PATH_MAX];      /* "./run": ipc sockets, pid files */
    char genesis_file[ALYS_PATH_MAX]; /* "" = none yet */
    char log_level[16];               /* debug, info, warn, error (also accepted in [sync]) */
    char log_format[8];               /* text | json (one JSON object a line) */

    /* [sync]: every key of the seed's [sync] section, with its defaults */
    char strategy[16];                      /* parallel | sequential */
    uint32_t max_parallel_downloads;        /* 3 */
    char batch_size[16];                    /* adaptive | fixed */
    uint32_t fixed_batch_size;              /* 256 */
    uint32_t min_batch_size;                /* 16 (adaptive clamp) */
    uint32_t max_batch_size;                /* 1024 (adaptive clamp) */
    uint64_t checkpoint_interval;           /* 100 blocks */
    uint32_t max_checkpoints;               /* 10 */
    char checkpoint_storage[ALYS_PATH_MAX]; /* "checkpoints", relative to data_dir */
    uint32_t max_recovery_attempts;         /* 5 */
    uint32_t recovery_backoff_secs;         /* 60 */
    bool auto_recovery;                     /* true */
    char peer_selection[32]; /* weighted | round_robin | lowest_latency | most_reliable | proximity */
    double latency_weight;                 /* 0.4 */
    double reliability_weight;             /* 0.4 */
    double bandwidth_weight;               /* 0.2 */
    uint32_t min_sync_peers;               /* 1 */
    uint32_t max_sync_peers;               /* 10 */
    double peer_score_threshold;           /* 0.5 */
    uint32_t validation_workers;           /* 4 */
    uint32_t max_memory_gb;                /* 8 */
    uint32_t cache_size_mb;                /* 0: 1/16 of the budget (membudget.h) */
    double production_threshold;           /* 99.5 (percent) */
    uint64_t production_max_blocks_behind; /* 10 */
    uint64_t download_window;              /* 1024 blocks ahead of the head */
    uint32_t request_timeout_ms;           /* 5000: bound of the adaptive timeout, unless
                                              a peer's measured bandwidth needs longer
                                              (then up to ALYS_REQUEST_TIMEOUT_HARD_FACTOR
                                              times this) */

    /* [storage] */
    uint32_t max_reorg_depth; /* 64 */
    bool wal_sync;            /* true: fsync the WAL on every batch commit */

    /* [network] */
    char listen[ALYS_ENDPOINT_MAX]; /* "" = do not serve (default); e.g. "tcp://127.0.0.1:30303" */
    char bootstrap_peers[ALYS_MAX_BOOTSTRAP][ALYS_ENDPOINT_MAX]; /* alys://KEY@HOST:PORT */
    uint32_t bootstrap_peer_count;
    uint32_t serve_rate_limit;        /* requests per second per peer, 200 */
    uint32_t serve_byte_rate_kb;      /* KiB per second one peer may send us, 4096 */
    uint32_t serve_max_requests;      /* 4: range requests per client read or owed */
    uint32_t serve_client_mb;         /* 16: bytes owed to one client, MiB */
    uint32_t serve_memory_mb;         /* 128: bytes owed to all clients, MiB */
    uint32_t max_inbound_peers;       /* 64: inbound clients admitted at once */
    uint32_t max_inbound_per_address; /* 8: of them from one remote address */
    bool plaintext; /* false; true: node links without CURVE (tests and benchmarks only) */

    /* [mempool] (issue 9: StorageActor's pool, PeerManager's tx gossip) */
    uint32_t mempool_max_txs;          /* 10000 txs in all */
    uint64_t mempool_max_bytes;        /* 2 MiB of encoded txs in all */
    uint32_t mempool_max_per_sender;   /* 64 txs of one sender */
    uint32_t mempool_max_sender_bytes; /* 16 KiB of one sender */
    uint32_t tx_gossip_rate;           /* tx messages per second per peer or client, 20 */
    uint32_t tx_gossip_bytes;          /* tx bytes per second per peer or client, 256 KiB */

    /* [validation] remote validator access */
    char worker_listen[ALYS_ENDPOINT_MAX]; /* "" = ipc only; tcp://0.0.0.0:7701 for remote workers */
    bool curve_enabled; /* false; CURVE on tcp worker links (needs the two below) */
    char curve_server_cert[ALYS_PATH_MAX]; /* server secret cert file */
    char curve_allowed_dir[ALYS_PATH_MAX]; /* directory of allowed worker public certs */
    uint32_t task_timeout_ms;              /* 2000: re-dispatch work held by a silent worker */

    /* [endpoints]: "" = ipc://<run_dir>/<name>.sock */
    char ep_supervisor[ALYS_ENDPOINT_MAX];
    char ep_events_in[ALYS_ENDPOINT_MAX]; /* actors' PUB connect here (XSUB) */
    char ep_events[ALYS_ENDPOINT_MAX];    /* tools SUB here (XPUB) */
    char ep_storage[ALYS_ENDPOINT_MAX];
    char ep_peer_manager[ALYS_ENDPOINT_MAX];
    char ep_block_processor[ALYS_ENDPOINT_MAX];
    char ep_validators[ALYS_ENDPOINT_MAX]; /* BlockProcessor's worker ROUTER */
    char ep_sync[ALYS_ENDPOINT_MAX];

    /* [producer] */
    bool producer_enabled; /* false: the supervisor starts alys-producer when true */
    char producer_key_file[ALYS_PATH_MAX]; /* "": the authority secret key (authkey.h) */
    uint32_t producer_max_block_txs;       /* 1024: txs per produced block at most */

    /* [supervisor] */
    uint32_t start_timeout_ms;       /* 5000 */
    uint32_t heartbeat_interval_ms;  /* 500 */
    uint32_t heartbeat_timeout_ms;   /* 3000 */
    uint32_t restart_backoff_min_ms; /* 100 */
    uint32_t restart_backoff_max_ms; /* 5000 */
    uint32_t max_restarts;           /* 5 */
    uint32_t restart_window_secs;    /* 60 */
    uint32_t shutdown_timeout_ms;    /* 3000 */
    bool warm_standby;               /* true */

    /* [metrics] */
    bool metrics_enabled;  /* true */
    uint16_t metrics_port; /* 9091 */
    char metrics_bind[64]; /* "127.0.0.1" */

    char path[ALYS_PATH_MAX]; /* the file this was loaded from */
    /* Keys set in the file that are accepted but have no effect, one line
     * each saying why ("" if none). Loading succeeds; the supervisor logs
     * them at start so the operator is told. */
    char notes[1024];
} alys_config_t;

/* Optimal string alignment distance of a and b (99 past 63 bytes): for
 * "did you mean" of keys and commands. */
size_t alys_edit_distance(const char *a, const char *b);

/* $ALYS_CONFIG if set and not empty, else ALYS_DEFAULT_CONFIG. */
const char *alys_config_default_path(void);

/* Fill every field with its default; endpoints are derived from run_dir. */
void alys_config_defaults(alys_config_t *cfg);

/* Load and validate FILE over the defaults (it starts from
 * alys_config_defaults itself). Relative data_dir, run_dir, genesis_file and
 * curve paths (and the defaults "./data", "./run") are made absolute relative
 * to the directory of FILE. On error returns -1, leaves cfg untouched and
 * writes "file:line:col: message naming the key" into err (errlen bytes). */
int alys_config_load(alys_config_t *cfg, const char *file, char *err, size_t errlen);

/* alys_config_load, then each of sets[0..nsets) applied over the file, in
 * order: "KEY=VALUE" with KEY the full name (sync.max_parallel_downloads)
 * and VALUE written as in the file (strings may leave out their quotes).
 * Same validation as the file, including the cross-key checks; an error
 * names the --set. The supervisor's --set. */
int alys_config_load_set(alys_config_t *cfg, const char *file, const char *const *sets,
                         size_t nsets, char *err, size_t errlen);

/* Same, from a string (name is used in messages, and its directory, against
 * the cwd, anchors relative paths). For tests and tools. */
int alys_config_parse(alys_config_t *cfg, const char *text, const char *name, char *err,
                      size_t errlen);

/* Fill empty endpoints with ipc://<run_dir>/<name>.sock. Called by load/parse;
 * public so tools that change run_dir can re-derive (clear the endpoints
 * first). Returns -1 if some ipc path would exceed the 107-byte unix socket
 * path limit (that endpoint is left empty; load/parse report it as an error
 * naming run_dir), else 0. */
int alys_config_derive_endpoints(alys_config_t *cfg);

#endif
