/*  pm_zap.h: who may open a link to our [network] listen socket, as a pure
 *  function (tests/unit/peer/test_zap.c). The shell (main.c) runs a ZAP
 *  handler (RFC 27, a ROUTER at inproc://zeromq.zap.01) and asks
 *  pm_zap_decide for each request ZeroMQ makes during a CURVE handshake.
 *
 *  Allowed: the CURVE mechanism in our domain (PM_ZAP_DOMAIN) with a
 *  32-byte client key that is not banned (peer_table_is_banned: a peer is
 *  its key, bans attach to keys). The answer's User-Id is the key in hex:
 *  ZeroMQ puts it on every message of that link ("User-Id" property), and
 *  that, never a name the peer declares, is the inbound peer's id.
 *  Refused (400): any other mechanism (a plaintext or PLAIN client on a
 *  CURVE socket), another domain, a key of the wrong size, a banned key.
 *  ZeroMQ has by then checked the client proved the key (CURVE), so a
 *  refusal costs the client its connection, never someone else theirs.
 *
 *  Strings in pm_zap_t are the caller's (copies); nothing is allocated.
 */
#ifndef PM_ZAP_H
#define PM_ZAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer_table.h"
#include "wire/wire.h"

#define PM_ZAP_DOMAIN   "alys-peers"
#define PM_ZAP_ENDPOINT "inproc://zeromq.zap.01"

typedef struct {
    bool allow;
    const char *status;             /* "200" or "400" */
    char text[96];                  /* why, for the client's log and ours */
    char user_id[ALYS_WIRE_ID_MAX]; /* the key, hex ("" when refused, but for a ban) */
} pm_zap_t;

/* table may be NULL (no bans known yet); wall_ms: unix ms. */
pm_zap_t pm_zap_decide(const char *domain, const char *mechanism, const uint8_t *key,
                       size_t key_len, peer_table_t *table, uint64_t wall_ms);

#endif
