/*  pm.h: the PeerManagerActor's core, shared by its modules (private to
 *  actors/peer_manager; the public face is pm_core.h). No sockets, no
 *  clock, no loop: main.c (the shell) hands in the clocks (pm_core_clock)
 *  and every decoded input, and the core sends through pm_port_t. The
 *  modules translate between messages and the pure decision modules:
 *  peer_table.h (scores, bans, blame, selection, batch size, timeouts),
 *  pm_conn.h (connections), pm_cost.h (what an outcome costs), pm_reqs.h
 *  (requests in flight), pm_admit.h (serving admission), pm_judge.h
 *  (verdicts), pm_flow.h (discovery, another genesis, drops, busy, stale
 *  heads), pm_list.h (PeerSet, listings, push interval), pm_bans.h,
 *  peer_reorder.h, rate_limit.h, and the common wire/wire.h.
 *
 *  Layers: a module calls only modules below it (no cycles).
 *    pm_core.c       entry points: set-up, clocks, dispatch of every input;
 *                    after every input that may earn one, pn_flush_closes
 *    pm_peerset.c    the PeerSet for SyncActor and alysctl; peer gauges
 *    peer_gossip.c   block gossip: pushed blocks (stashed by peer_net.c and
 *                    peer_serve.c, taken after each frame), ProcessBatch of
 *                    one, relay after commit, orphans (pm_gossip.h decides)
 *    peer_serve.c    server side: inbound clients, handshake, range reads
 *    pm_tx.c         transactions: SubmitTx (wire and bus) to StorageActor's
 *                    mempool, relay of what it admits (pm_txgossip.h)
 *    peer_net.c      client side: one slot per remote peer (the port dials
 *                    it), handshake, probes, peer exchange, fetches
 *    peer_deliver.c  downloaded ranges -> reorder buffer -> BlockProcessor,
 *                    BatchProcessed -> SyncActor, blame; our head
 *    pm_park.c       the reorder buffer's copy at BlockProcessor (Park,
 *                    Unpark, ParkRekey), taken back at start (GetParked);
 *                    SyncActor's fetches held until then, and answered
 *                    from the buffer when it holds them
 *    pm_record.c     outcomes on a peer's record and the action they earn
 *                    (a close is queued: pm_close_later)
 *    pm_storage.c    the StorageActor client: requests with deadlines
 *                    (common/pending.h), our Status, ban load and save
 *    pm_out.c        messages to SyncActor
 *
 *  Everything runs on the actor's one zloop thread; no locks.
 *
 *  Clocks: peer_table takes unix ms (bans are persisted), everything else
 *  (deadlines, RTT) the monotonic clock; pm_now(pm) / pm_mono(pm) are the
 *  values the shell handed in for the current input.
 *
 *  Ownership: pm_t is made and freed by pm_core_new/destroy; each module's
 *  state hangs off it (store, net, serve, reorder) and is freed by its
 *  *_destroy.
 */
#ifndef PM_H
#define PM_H

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "metrics_client.h"
#include "chain/chain.h"
#include "peer_reorder.h"
#include "pm_core.h"
#include "pm_bans.h"
#include "pm_list.h"
#include "peer_table.h"
#include "util.h"
#include "wire/wire.h"

#define PM_STORE_TIMEOUT_MS 2000 /* a storage request unanswered this long failed */
#define PM_MAX_STORE_REQS   128  /* storage requests in flight */

#define PM_CLOSING_MAX 64 /* connections to close after this event */

typedef struct pm_store pm_store_t; /* pm_storage.c */
typedef struct pn pn_t;             /* peer_net.c */
typedef struct ps ps_t;             /* peer_serve.c */
typedef struct pm_txs pm_txs_t;     /* pm_tx.c */
typedef struct pm_park pm_park_t;   /* pm_park.c */

typedef struct {
    char peer_id[ALYS_WIRE_ID_MAX];
    char why[PEER_REASON_MAX + 32];
} pm_closing_t;

#define PM_BOOK_LOAD_TRIES    3     /* unanswered loads before starting with an empty book */
#define PM_BOOK_SAVE_EVERY_MS 30000 /* at most one address book save this often */

/* The address book's load and save (pm_book_store.c). */
typedef struct {
    bool loaded;  /* answered, or given up: dialling may start */
    bool loading; /* a GetAddrBook in flight */
    bool saving;  /* a PutAddrBook in flight */
    bool retry;   /* the last save failed */
    unsigned load_tries;
    int64_t saved_at; /* mono ms of the last save sent */
} pm_book_io_t;

struct pm {
    const alys_config_t *cfg;
    /* Who we are (pm_core_set_key): our public key, hex, the node id of our
     * Status; our alys:// endpoint for [network] listen ("" = none). */
    char key_hex[ALYS_WIRE_ID_MAX];
    char our_endpoint[ALYS_ENDPOINT_MAX];
    alys_metrics_t *metrics;
    pm_port_t port;
    uint64_t wall; /* unix ms of the current input (pm_core_clock) */
    int64_t mono;  /* monotonic ms of the current input */
    peer_table_t *table;
    reorder_t *reorder;
    pm_store_t *store;
    pn_t *net;
    ps_t *serve;
    pm_txs_t *txs;      /* transactions: SubmitTx, gossip (pm_tx.c) */
    pm_park_t *park;    /* the reorder buffer's copy at BlockProcessor */
    struct pmg *gossip; /* pm_gossip.h */
    /* A NewBlock of the frame being handled (pm_stash_new_block), taken by
     * the core for block gossip once the frame is done. Owned: bytes. */
    struct {
        char peer[ALYS_WIRE_ID_MAX];
        uint8_t *bytes;
        size_t len;
    } stash;

    /* Our Status, from StorageActor's Head (refreshed every 500 ms). */
    bool have_head;
    uint64_t head_height;
    uint8_t head_hash[ALYS_HASH_LEN];
    uint8_t genesis_hash[ALYS_HASH_LEN];
    uint64_t checkpoint;
    int64_t head_at;     /* mono ms of the last Head */
    bool head_asking;    /* a GetHead is in flight */
    bool genesis_warned; /* "storage has no genesis" said once */

    /* Bans: loaded once from storage before any peer is dialled, saved on change. */
    pm_bans_t bans;
    /* The address book: loaded once before any peer is dialled, saved on change. */
    pm_book_io_t book_io;

    /* PeerSet push to SyncActor: on change, and at least every 2 s. */
    bool peerset_dirty;
    int64_t peerset_at;
    uint64_t batches_sent; /* ProcessBatch messages sent */
    int64_t bp_reply_at;   /* mono ms of the last BatchProcessed */
    uint64_t head_ask_seq; /* reorder_seq() when GetHead was sent */
    bool bp_was_down;      /* the processor's socket disconnected */

    /* Connections to close once the current event is handled (pm_record.c
     * queues, peer_net.c closes): see pm_close_later. */
    pm_closing_t closing[PM_CLOSING_MAX];
    size_t n_closing;
};

/* The clocks of the current input (pm_core_clock): never read here. */
static inline uint64_t pm_now(const pm_t *pm)
{
    return pm->wall;
} /* unix ms */
static inline int64_t pm_mono(const pm_t *pm)
{
    return pm->mono;
} /* monotonic ms */

/* ---- pm_out.c --------------------------------------------------------------- */

int pm_send_sync_peer(pm_t *pm, Alys__Peer__PeerMsg *msg);
int pm_send_sync_msg(pm_t *pm, Alys__Sync__SyncMsg *msg);
void pm_peer_discovered(pm_t *pm, const char *peer_id, uint64_t height, const uint8_t *head_hash);
void pm_peer_disconnected(pm_t *pm, const char *peer_id, const char *reason);
/* Keep a pushed block (copied) for the core to hand to block gossip after
 * the current frame: peer_net.c and peer_serve.c are below peer_gossip.c. */
void pm_stash_new_block(pm_t *pm, const char *peer, const ProtobufCBinaryData *block);
void pm_stash_clear(pm_t *pm);

/* One result for SyncActor's request_id: HeadersResult (headers) or
 * FetchResult (delivered, bytes; blocks for a to_requester fetch). Fields
 * borrowed for the call. */
typedef struct {
    int outcome; /* Alys__Peer__Outcome */
    const ProtobufCBinaryData *headers;
    size_t n_headers;
    const ProtobufCBinaryData *blocks; /* FetchResult.blocks (to_requester) */
    size_t n_blocks;
    uint32_t delivered;
    uint64_t bytes;
    uint32_t latency_ms;
    const char *detail;
} pm_result_t;
/* headers: a HeadersResult, else a FetchResult; ours: our own request
 * (GetPeers), nobody to tell. Counted in alys_peer_requests_total. */
void pm_report(pm_t *pm, bool headers, bool ours, uint64_t request_id, const char *peer_id,
               uint64_t start, const pm_result_t *res);

/* ---- pm_storage.c ---------------------------------------------------------- */

pm_store_t *pm_storage_new(void);
void pm_storage_destroy(pm_store_t **self_p);

/* reply is the storage answer (a StorageMsg or an Error body), or NULL when
 * the request timed out or could not be sent. Borrowed for the call. */
typedef void(pm_store_cb)(pm_t *pm, void *arg, uint64_t tag, const alys_env_t *reply);

/* Send msg to StorageActor; cb runs exactly once (reply or timeout). -1 when
 * the request cannot be sent (table full, socket): cb is then NOT called. */
int pm_storage_request(pm_t *pm, Alys__Storage__StorageMsg *msg, uint32_t timeout_ms,
                       pm_store_cb *cb, void *arg, uint64_t tag);
/* The same for an envelope whose body is set (another area's message to
 * StorageActor, e.g. the mempool's); its corr_id is chosen here. */
int pm_storage_request_env(pm_t *pm, alys_env_t *env, uint32_t timeout_ms, pm_store_cb *cb,
                           void *arg, uint64_t tag);
/* Forget pending requests whose arg is arg (its owner is going away): their
 * callbacks will not run. */
void pm_storage_cancel(pm_t *pm, void *arg);
void pm_storage_on_env(pm_t *pm, const alys_env_t *env);
void pm_storage_tick(pm_t *pm); /* deadlines */
/* reply's StorageMsg if it is one of kind want, else NULL. */
const Alys__Storage__StorageMsg *pm_storage_body(const alys_env_t *reply,
                                                 Alys__Storage__StorageMsg__MsgCase want);
void pm_bans_tick(pm_t *pm); /* load once, then save when dirty */
/* Our Status as a wire message (fields borrowed from pm). false until the
 * head and genesis are known. */
bool pm_status(pm_t *pm, Alys__Wire__Status *out);

/* ---- pm_book_store.c ------------------------------------------------------ */

/* Load the address book once, then save it when changed (every 1 s tick
 * and at start). */
void pm_book_store_tick(pm_t *pm);
bool pm_book_store_ready(const pm_t *pm);

/* ---- pm_record.c --------------------------------------------------------- */

/* Record an outcome against a peer and carry out the action it earns
 * (close: queued, ban: + save). kind OK/SHORT/TIMEOUT use peer_table_record,
 * INVALID/VIOLATION blame at once. */
void pm_record(pm_t *pm, const char *peer_id, const peer_outcome_t *o);
void pm_apply_action(pm_t *pm, const char *peer_id, peer_action_t action, const char *reason);
/* Queue the close of peer_id's connection (pn_flush_closes carries it out). */
void pm_close_later(pm_t *pm, const char *peer_id, const char *why);

/* ---- pm_park.c: the reorder buffer's copy at BlockProcessor ------------------ */

pm_park_t *pm_park_new(const alys_config_t *cfg);
void pm_park_destroy(pm_park_t **self_p);
/* The buffer accepted b: park a copy (Park). */
void pm_park_added(pm_t *pm, const reorder_batch_t *b);
/* After any change of the buffer: Unpark what left it. */
void pm_park_sync(pm_t *pm);
/* At start: GetParked (fetches are held until its answer and our head, or
 * the wait). */
void pm_park_start(pm_t *pm);
/* Fetches are held. */
bool pm_park_waiting(const pm_t *pm);
/* A BlockProcessor reply: true if it was GetParked's answer (the parked
 * ranges are back in the buffer). */
bool pm_park_on_reply(pm_t *pm, const alys_env_t *env);
/* After any input that may end the hold (GetParked's answer, our head,
 * a tick: the wait): true once, when the held fetches may go. */
bool pm_park_release_due(pm_t *pm);
/* SyncActor's FetchBlocks: true if taken here (held; or, within the wait
 * after our start, committed already or answered from the buffer:
 * FetchResult OK, nothing downloaded); false: download it
 * (pn_fetch_blocks). */
bool pm_park_on_fetch(pm_t *pm, const Alys__Peer__FetchBlocks *fb);
/* A held fetch, released: true if answered here (committed already while
 * we were down: FetchResult OK and a BatchOutcome; or from the buffer). */
bool pm_park_on_released(pm_t *pm, const Alys__Peer__FetchBlocks *fb);
/* The next held fetch once the wait is over (caller frees it with
 * alys__peer__fetch_blocks__free_unpacked(fb, NULL)); NULL: none. */
Alys__Peer__FetchBlocks *pm_park_next_held(pm_t *pm);

/* ---- peer_deliver.c -------------------------------------------------------- */

/* A checked download [start, start + n) from peer_id for SyncActor's
 * request_id: into the reorder buffer, then to BlockProcessor in order.
 * Returns the outcome to report in FetchResult (OK, or BUSY when the buffer
 * is full) and sets *delivered. */
int pm_deliver(pm_t *pm, uint64_t request_id, const char *peer_id, uint64_t start,
               const ProtobufCBinaryData *blocks, size_t n,
               const uint8_t (*expected)[ALYS_HASH_LEN], uint32_t *delivered);
void pm_deliver_pump(pm_t *pm);
void pm_deliver_tick(pm_t *pm);
/* Ask StorageActor for our head (every 500 ms): our Status, and the reorder
 * buffer's floor (a Head older than the last BatchProcessed is ignored). */
void pm_deliver_refresh_head(pm_t *pm);
/* A reply from BlockProcessor; its socket connected (up) or not. */
void pm_bp_on_env(pm_t *pm, const alys_env_t *env);
void pm_bp_on_link(pm_t *pm, bool up);
void pm_range_verdict(pm_t *pm, const Alys__Peer__RangeVerdict *v);
void pm_penalise(pm_t *pm, const Alys__Peer__Penalise *p);

/* ---- peer_net.c ------------------------------------------------------------ */

pn_t *pn_new(pm_t *pm);
void pn_destroy(pn_t **self_p);
void pn_tick(pm_t *pm); /* every 100 ms */
void pn_fetch_headers(pm_t *pm, const Alys__Peer__FetchHeaders *req);
void pn_fetch_blocks(pm_t *pm, const Alys__Peer__FetchBlocks *req);
/* An endpoint heard of, into the address book (pm_addrbook.h), which
 * decides if and when it is dialled. _from: heard from source (the
 * endpoint of the peer that told us); pn_learn_endpoint: from an inbound
 * client (source group PM_BOOK_SOURCE_INBOUND). */
void pn_learn_from(pm_t *pm, const char *endpoint, const char *source);
void pn_learn_endpoint(pm_t *pm, const char *endpoint);
/* The address book (pm_book_store.c loads and saves it). */
struct pm_addrbook *pn_addrbook(pm_t *pm);
/* Our key (hex): endpoints with it are ours, never dialled. */
void pn_set_key(pm_t *pm, const char *key_hex);
/* Close the connections queued by pm_close_later (actions, bans); each is
 * re-dialled later only if peer_table_may_connect allows. */
void pn_flush_closes(pm_t *pm);
/* Endpoints of connected peers (for GetPeers answers): up to cap. */
size_t pn_endpoints(pm_t *pm, const char **out, size_t cap);
/* Endpoints known but not (or no longer) in the peer table, for listings
 * (pm_list_conns): refused at the handshake, or dialled and never answered. */
size_t pn_refused(pm_t *pm, pm_unlisted_t *out, size_t cap);
size_t pn_connected_count(pm_t *pm);
/* SyncActor's body requests outstanding at peers (not gossip's own, not
 * headers, not to_requester ones): up to cap, as (request id, peer, start, count); returns how
 * many there are. */
typedef struct {
    uint64_t request_id;
    char peer_id[PEER_ID_MAX];
    uint64_t start;
    uint32_t count;
} pn_block_req_t;
size_t pn_block_requests(pm_t *pm, pn_block_req_t *out, size_t cap);
/* Ready peer connections: their slots and peer ids (valid until the next
 * input), up to cap. */
size_t pn_ready_peers(pm_t *pm, int *slots, const char **ids, size_t cap);
/* One frame from slot's socket (n_frames in its message); its link. */
void pn_on_frame(pm_t *pm, int slot, const uint8_t *data, size_t len, size_t n_frames);
void pn_on_link(pm_t *pm, int slot, bool up);
int pn_push(pm_t *pm, int slot, const alys_wire_msg_t *m);

/* ---- pm_tx.c --------------------------------------------------------------- */

pm_txs_t *pm_tx_new(pm_t *pm);
void pm_tx_destroy(pm_t *pm, pm_txs_t **self_p);
/* A SubmitTx from the inbound client with routing id route (origin: its
 * node id): budget, seen set, to the mempool; answered with TxResults when
 * m->request_id is not 0. */
void pm_tx_on_wire(pm_t *pm, const uint8_t *route, size_t route_len, const char *origin,
                   const alys_wire_msg_t *m);
/* A SubmitTx on our mailbox from route (the requester's routing id). */
void pm_tx_on_bus(pm_t *pm, const uint8_t *route, size_t route_len, uint64_t corr_id,
                  const char *sender, const Alys__Mempool__SubmitTx *st);
void pm_tx_bus_error(pm_t *pm, const uint8_t *route, size_t route_len, uint64_t corr_id,
                     uint32_t code, const char *why);
/* Relay what the mempool admitted since the last flush (every fast tick). */
void pm_tx_flush(pm_t *pm);
/* r as one of our static result names ("unknown" if it is none). */
const char *pm_tx_result_name(const char *r);

/* ---- peer_serve.c ---------------------------------------------------------- */

ps_t *ps_new(pm_t *pm); /* serving state when [network] listen is set; NULL on error */
void ps_destroy(ps_t **self_p);
/* One frame from the inbound client with this routing id, from the remote
 * address addr (NULL or "" = unknown), with the key CURVE proved for its
 * link (hex; NULL = plaintext link). */
void ps_on_frame(pm_t *pm, const uint8_t *id, size_t id_len, const char *addr, const char *key,
                 const uint8_t *data, size_t len);
/* A message of other than one frame from that client: priced, not read. */
void ps_on_parts(pm_t *pm, const uint8_t *id, size_t id_len, const char *key, size_t len);
/* The listen socket has taken bytes handed for this client (range: an
 * answer to a range request). */
void ps_on_taken(pm_t *pm, const uint8_t *id, size_t id_len, uint64_t bytes, bool range);
void ps_tick(pm_t *pm);           /* gauges: bytes owed, inbound clients */
uint64_t ps_bytes_owed(pm_t *pm); /* all clients */
/* Clients past the handshake: their table indices and node ids. */
size_t ps_ready_clients(pm_t *pm, size_t *idx, const char **ids, size_t cap);
int ps_push(pm_t *pm, size_t idx, const alys_wire_msg_t *m);
/* m to the inbound client with this routing id, within its serving budget
 * (bytes owed counted): 0, or -1 (unknown, over budget, pipe full). */
int ps_send(pm_t *pm, const uint8_t *id, size_t id_len, const alys_wire_msg_t *m);

/* ---- peer_gossip.c: block gossip (pm_gossip.h decides) ------------------------- */

/* Request ids of gossip's own ancestor fetches carry this bit: their
 * results are not SyncActor's (pm_report, BatchOutcome skip them). */
#define PM_GOSSIP_REQ_BIT (1ULL << 62)
/* A NewBlock pushed by peer (outbound or inbound connection). */
void pg_on_new_block(pm_t *pm, const char *peer, const ProtobufCBinaryData *block);
/* AnnounceBlock from our producer: committed, push it. */
void pg_on_announce(pm_t *pm, const ProtobufCBinaryData *block);
/* A BlockProcessor reply: true if it answered one of gossip's blocks. */
bool pg_on_processor(pm_t *pm, const alys_env_t *env);
/* Our head may have moved: orphans that now link go to BlockProcessor. */
void pg_head_moved(pm_t *pm);
/* The block pm_stash_new_block kept, if any, to pg_on_new_block. */
void pg_take_stash(pm_t *pm);
/* Inbound peers refused at the handshake, for listings. */
size_t ps_refused(pm_t *pm, pm_unlisted_t *out, size_t cap);

/* ---- pm_peerset.c ---------------------------------------------------------- */

void pm_push_peerset(pm_t *pm, bool force);

#endif
