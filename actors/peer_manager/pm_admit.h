/*  pm_admit.h: PeerManager's serving side as a pure core: the inbound
 *  clients (a bounded table, least recently seen recycled) and what is done
 *  with each message a client sends (peer_serve.h states the protocol).
 *  No sockets, no clock: tests/unit/peer/test_admit.c drives it.
 *
 *  Order of the checks for a decoded message (pm_admit):
 *    1. a client refused less than PM_ADMIT_REFUSED_TTL_MS ago: ignored;
 *       after that it may try again (NEW);
 *    2. the client's token bucket (rate_limit.h): over it, RATE_LIMITED;
 *    3. Status: the handshake (pm_admit_status);
 *    4. anything else before the handshake: BAD_REQUEST;
 *    5. GetHeaders/GetBlocks: count 1..max and start >= 1 or BAD_REQUEST;
 *       start above our head NOT_FOUND (a GetHeaders with a locator:
 *       count only, start is storage's choice); no read slot free UNAVAILABLE;
 *       else a read; GetPeers: our peers; NewBlock: to block gossip;
 *       SubmitTx: to the mempool (its own tx budget: pm_txgossip.h);
 *       responses: ignored.
 *  An undecodable frame (m NULL) costs a token too and gets BAD_REQUEST
 *  while within the limit, nothing past it (a flood gets no answers) and
 *  nothing from a refused client.
 *
 *  The handshake (pm_admit_status): no Status of ours yet (storage not
 *  answering): UNAVAILABLE; another genesis: WRONG_GENESIS and refused; on
 *  a CURVE link (the client's key known, pm_client_set_key), a node id
 *  other than that key or a listen endpoint with another key: refused, a
 *  protocol violation (violation: the caller charges the key); a banned
 *  key (node id) or listen endpoint: refused, no answer; else our Status,
 *  and the client's listen endpoint may be dialled (learn). On a CURVE
 *  link the client's node id is its key, whatever it says; on a plaintext
 *  one ([network] plaintext, tests only) it is what its Status says.
 *
 *  Before any of this, peer_serve.c admits the client (pm_inbound.h: slots,
 *  per-address limit, eviction) and checks its budgets; a range request
 *  that passes pm_admit still needs pm_inbound_may_request (else BUSY).
 *
 *  Ownership: pm_clients_new / pm_clients_destroy(&self). Client pointers
 *  are valid until the next pm_clients_get (which may recycle one).
 */
#ifndef PM_ADMIT_H
#define PM_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer_table.h"
#include "pm_inbound.h"
#include "rate_limit.h"
#include "wire/wire.h"

#define PM_CLIENT_ID_MAX        255
#define PM_ADMIT_REFUSED_TTL_MS 600000
#define PM_ADMIT_WHY_MAX        96

typedef enum { PM_CLIENT_NEW = 0, PM_CLIENT_OK, PM_CLIENT_REFUSED } pm_client_state_t;

typedef struct {
    bool used;
    uint8_t id[PM_CLIENT_ID_MAX];
    size_t id_len;
    pm_client_state_t state;
    int64_t last_seen;
    int64_t prev_seen; /* last_seen before the current frame */
    int64_t refused_at;
    char key[ALYS_WIRE_ID_MAX];     /* its public key (hex) from the link; "" = plaintext */
    char node_id[ALYS_WIRE_ID_MAX]; /* its key; plaintext: its claim, "?" when invalid */
    char listen[ALYS_ENDPOINT_MAX]; /* "" = none */
    char reason[PEER_REASON_MAX];
    pm_inbound_t in; /* admission and budgets (pm_inbound.h) */
} pm_client_t;

typedef struct pm_clients pm_clients_t;

pm_clients_t *pm_clients_new(size_t capacity);
void pm_clients_destroy(pm_clients_t **self_p);
/* The client with this routing id (1..PM_CLIENT_ID_MAX bytes), seen now; a
 * new one takes a free slot, else the least recently seen one's. NULL for
 * an id out of bounds. */
pm_client_t *pm_clients_get(pm_clients_t *self, const uint8_t *id, size_t id_len, int64_t now);
pm_client_t *pm_clients_at(pm_clients_t *self, size_t i); /* NULL past the end */
/* The client pm_clients_get(id) would recycle to make room for id (the
 * least recently seen, when id is new and no slot is free), or NULL. The
 * caller closes its connection first: a forgotten client must not keep
 * one. */
pm_client_t *pm_clients_recycled(pm_clients_t *self, const uint8_t *id, size_t id_len);
/* The client with this routing id, or NULL (nothing made, nothing seen). */
pm_client_t *pm_clients_find(pm_clients_t *self, const uint8_t *id, size_t id_len);
/* Refused less than the TTL ago (listings). */
bool pm_client_refused(const pm_client_t *c, int64_t now);
/* The key the link proved for this client (hex; NULL = plaintext). A
 * routing id that comes back with another key is another client: it starts
 * over (NEW). */
void pm_client_set_key(pm_client_t *c, const char *key);

typedef enum {
    PM_SERVE_NOTHING = 0, /* no answer */
    PM_SERVE_ERROR,       /* WireError code, why */
    PM_SERVE_STATUS,      /* the handshake: decide with pm_admit_status */
    PM_SERVE_RANGE,       /* read the range from storage */
    PM_SERVE_PEERS,       /* our connected peers' endpoints */
    PM_SERVE_NEW_BLOCK,   /* to block gossip (peer_gossip.c) */
    PM_SERVE_SUBMIT_TX,   /* transactions: to the mempool (pm_tx.c) */
} pm_serve_do_t;

typedef struct {
    pm_serve_do_t what;
    Alys__Wire__WireError__Code code; /* PM_SERVE_ERROR */
    bool refused;                     /* the client was refused just now */
    bool learn;                       /* dial its listen endpoint */
    bool violation;                   /* its Status contradicts its key: charge it */
    char why[PM_ADMIT_WHY_MAX];
} pm_serve_t;

/* m: the decoded message, or NULL when the frame did not decode (err says
 * why). head: our head height. read_free: a storage read slot is free. */
pm_serve_t pm_admit(pm_client_t *c, serve_limiter_t *limiter, const alys_wire_msg_t *m,
                    const char *err, uint64_t head, bool read_free, int64_t now);
/* The handshake. ours: we have a Status to give (head and genesis known).
 * wall_ms: unix ms for the ban check. */
pm_serve_t pm_admit_status(pm_client_t *c, const Alys__Wire__Status *st, bool ours,
                           const uint8_t *genesis, peer_table_t *table, uint64_t wall_ms,
                           int64_t now);

#endif
