/*  pm_core.h: the PeerManagerActor without its process: everything between
 *  the bytes main.c receives and the bytes it sends. No sockets, no clock,
 *  no loop: main.c reads the clocks and hands them in (pm_core_clock),
 *  passes every frame, reply and socket event in, and gives the core a port
 *  to send through. tests/unit/peer/test_pm_core*.c drive it with a fake
 *  port.
 *
 *  Inside (pm.h): the client side (peer_net.c), the server side
 *  (peer_serve.c), the hand-off to BlockProcessor (peer_deliver.c), the
 *  StorageActor client (pm_storage.c), records (pm_record.c), messages to
 *  SyncActor (pm_out.c) and the PeerSet (pm_peerset.c), on top of the pure
 *  modules (peer_table.h, pm_conn.h, pm_reqs.h, pm_cost.h, pm_judge.h,
 *  pm_admit.h, pm_bans.h, pm_flow.h, pm_list.h, pm_jobs.h, peer_reorder.h).
 *
 *  Peer connections are slots 0..PM_CONN_MAX-1 (pm_conn.h): the port dials
 *  a slot's endpoint, hangs it up, and sends on it; frames and link events
 *  come back by slot. Inbound clients are known by their routing id.
 *
 *  Ownership: pm_core_new/destroy. The config and metrics are the caller's
 *  and must outlive the core. Messages and envelopes given to the port are
 *  valid during the call only.
 */
#ifndef PM_CORE_H
#define PM_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "metrics_client.h"
#include "pm_zap.h"
#include "wire/wire.h"

/* The other actors the core sends to. */
/* PM_TO_PARK: the reorder buffer's copy at BlockProcessor (pm_park.c:
 * Park, Unpark, ParkRekey, GetParked), on the same socket as
 * PM_TO_PROCESSOR; its own destination so that a port (the simulator)
 * may treat it apart. */
typedef enum { PM_TO_SYNC = 0, PM_TO_STORAGE, PM_TO_PROCESSOR, PM_TO_PARK } pm_dest_t;

/* What peer_dial answers. */
#define PM_DIAL_OK        0
#define PM_DIAL_NO_SOCKET (-1) /* no socket for the slot now: try again later */
#define PM_DIAL_REFUSED   (-2) /* the endpoint cannot be connected to */

/* What client_send answers besides 0. */
#define PM_SEND_GONE (-1) /* no such client (disconnected) */
#define PM_SEND_FULL (-2) /* its pipe is full: the answer is dropped */

/* What the core needs from its process (main.c: sockets and actor). */
typedef struct {
    void *ctx;
    /* env to another actor; -1 when it could not be queued. */
    int (*send)(void *ctx, pm_dest_t to, alys_env_t *env);
    /* Connect slot's socket to endpoint (making the socket if needed). */
    int (*peer_dial)(void *ctx, int slot, const char *endpoint);
    /* Disconnect slot's socket from endpoint. */
    void (*peer_hangup)(void *ctx, int slot, const char *endpoint);
    /* m to the peer on slot; -1 when it could not be queued. */
    int (*peer_send)(void *ctx, int slot, const alys_wire_msg_t *m);
    /* m to the inbound client with routing id (id_len bytes): 0 handed to
     * the socket (then, once the socket has taken its bytes, the shell
     * calls pm_core_on_client_taken with the packed size and range as
     * given), PM_SEND_GONE or PM_SEND_FULL (the pipe is at its high-water
     * mark): nothing handed. */
    int (*client_send)(void *ctx, const uint8_t *id, size_t id_len, const alys_wire_msg_t *m,
                       bool range);
    /* rep as the reply to corr_id, to the mailbox client with routing id
     * route (route_len bytes); may be NULL (no bus replies: tests). */
    int (*mailbox_reply)(void *ctx, const uint8_t *route, size_t route_len, uint64_t corr_id,
                         alys_env_t *rep);
    /* Close the connection of the inbound client with routing id (a
     * stalled client, pm_inbound.h); what was handed for it is then
     * reported taken. May be NULL (nothing closed). */
    void (*client_drop)(void *ctx, const uint8_t *id, size_t id_len);
} pm_port_t;

typedef struct pm pm_t;

/* NULL on a bad [peers] config (err says why) or out of memory. */
pm_t *pm_core_new(const alys_config_t *cfg, alys_metrics_t *metrics, const pm_port_t *port,
                  char *err, size_t errlen);
void pm_core_destroy(pm_t **self_p);
/* Our identity (common/nodekey.h), before pm_core_start: the node id of
 * our Status is this key (hex) and our listen endpoint goes out as
 * alys://<key>@host:port. 0, or -1 when key_hex is not a canonical key. */
int pm_core_set_key(pm_t *self, const char *key_hex);

/* The clocks for the inputs that follow: unix ms (bans, scores) and
 * monotonic ms (deadlines, RTT), read at the same moment. */
void pm_core_clock(pm_t *self, uint64_t now_unix_ms, int64_t now_mono_ms);

/* At start, once the sockets are up: ask storage for our head and bans,
 * and BlockProcessor for the ranges parked there (pm_park.c: SyncActor's
 * FetchBlocks are held until it answers or a quarter of
 * request_timeout_ms has passed). */
void pm_core_start(pm_t *self);

/* A message to our mailbox: FetchHeaders, FetchBlocks, RangeVerdict,
 * Penalise (GetPeers and GetInFlight: pm_core_on_mailbox_request). */
void pm_core_on_peer_msg(pm_t *self, const Alys__Peer__PeerMsg *m);
/* A MempoolMsg on our mailbox (SubmitTx from alysctl and tools) from the
 * client with routing id route. */
void pm_core_on_mempool(pm_t *self, const uint8_t *route, size_t route_len, const alys_env_t *env);
/* A reply on the StorageActor / BlockProcessor sockets (BlockProcessor's
 * include Parked, the answer to GetParked). */
void pm_core_on_storage(pm_t *self, const alys_env_t *env);
void pm_core_on_processor(pm_t *self, const alys_env_t *env);
/* The BlockProcessor socket connected (true) or disconnected (false). */
void pm_core_on_processor_link(pm_t *self, bool up);

/* One frame (len bytes) from the peer on slot; n_frames: how many the
 * message had (only single-frame messages are read; for others len is the
 * bytes of all the frames, and data is not read). */
void pm_core_on_peer_frame(pm_t *self, int slot, const uint8_t *data, size_t len, size_t n_frames);
/* The link under slot's socket dropped (false) or is back (true). */
void pm_core_on_peer_link(pm_t *self, int slot, bool up);
/* One frame from the inbound client with this routing id, connected from
 * the remote address addr (ZeroMQ's "Peer-Address"; NULL = unknown); key:
 * the client's public key (hex) that CURVE proved (the ZAP User-Id), NULL
 * on a plaintext link. */
void pm_core_on_client_frame(pm_t *self, const uint8_t *id, size_t id_len, const char *addr,
                             const char *key, const uint8_t *data, size_t len);
/* A message of other than one frame from that client (len: its bytes after
 * the routing id): not read, only priced (pm_cost.h, SHAPE). */
void pm_core_on_client_parts(pm_t *self, const uint8_t *id, size_t id_len, const char *key,
                             size_t len);
/* The listen socket has taken (written out, or dropped with its client's
 * connection) an answer handed through client_send: bytes is its packed
 * size, range as given. */
void pm_core_on_client_taken(pm_t *self, const uint8_t *id, size_t id_len, uint64_t bytes, bool range);

/* A ZAP request for our listen socket (pm_zap.h), with the bans as of the
 * current clock. */
pm_zap_t pm_core_zap(pm_t *self, const char *domain, const char *mechanism, const uint8_t *key,
                     size_t key_len);

/* Every 100 ms (deadlines, probes, retries, PeerSet push), 500 ms (our
 * head), 1000 ms (score decay, bans). */
void pm_core_tick_fast(pm_t *self);
void pm_core_tick_head(pm_t *self);
void pm_core_tick_slow(pm_t *self);

/* GetInFlight's answer: every FetchBlocks of SyncActor's (not gossip's)
 * that we still hold, outstanding at a peer (delivered false) or in the
 * reorder buffer, waiting or at BlockProcessor (delivered true: start and
 * count of the blocks held). At most the request table's and the reorder
 * buffer's sizes together. Free with pm_in_flight_free. NULL: out of
 * memory. */
Alys__Peer__InFlight *pm_in_flight_new(pm_t *pm);
void pm_in_flight_free(Alys__Peer__InFlight **p);
/* SyncActor's GetInFlight (corr_id): the answer goes to SyncActor through
 * send(PM_TO_SYNC) as a reply to corr_id, on the same pipe as its
 * FetchResults and BatchOutcomes, so it never overtakes a result sent
 * before it. 0, or -1 (out of memory, or not queued). */
int pm_core_on_get_in_flight(pm_t *self, uint64_t corr_id);
/* GetPeers (the PeerSet, every entry) and GetInFlight from the mailbox
 * client at route: answered through the port's mailbox_reply (a
 * SyncActor's GetInFlight through pm_core_on_get_in_flight). */
void pm_core_on_mailbox_request(pm_t *self, const uint8_t *route, size_t route_len,
                                const alys_env_t *req);

/* The ordered PeerSet (pm_list.h); all = the alysctl listing. Free with
 * pm_peerset_free. */
Alys__Peer__PeerSet *pm_peerset_new(pm_t *pm, bool all);
void pm_peerset_free(Alys__Peer__PeerSet **set_p);

#endif
