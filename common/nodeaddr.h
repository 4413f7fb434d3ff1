/*  nodeaddr.h: a peer's endpoint with its key, enode-style:
 *
 *      alys://<public key>@<host>:<port>
 *
 *  The key is 64 hex digits (the canonical form, printed everywhere) or 40
 *  z85 characters (accepted on input: it is what ZeroMQ tools print). z85
 *  may itself contain '@' and ':', so the key is everything between
 *  "alys://" and the last '@' and must be exactly one of those lengths.
 *  host: a name or IPv4 address of [A-Za-z0-9._-], or an IPv6 address in
 *  brackets; port 1..65535. The whole text is shorter than ALYS_ENDPOINT_MAX.
 *  Anything else is refused (bootstrap_peers, GetPeers answers and Status
 *  come from strangers: parse, never trust).
 *
 *  Dialling one means: CURVE with the key as the server key, to the
 *  tcp://host:port that alys_nodeaddr_tcp gives. The key names the peer
 *  (pm_conn.h), so the same host:port with another key is another peer.
 *
 *  Pure functions on caller-owned buffers; no allocation.
 */
#ifndef ALYS_NODEADDR_H
#define ALYS_NODEADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "nodekey.h"

#define ALYS_NODEADDR_SCHEME "alys://"

typedef struct {
    uint8_t key[ALYS_KEY_LEN];
    char host[ALYS_ENDPOINT_MAX];
    uint16_t port;
} alys_nodeaddr_t;

/* 0 and *out filled, or -1 when text is not a valid alys:// endpoint. */
int alys_nodeaddr_parse(const char *text, alys_nodeaddr_t *out);
/* "alys://<hex>@host:port". 0, or -1 when it does not fit. */
int alys_nodeaddr_format(const alys_nodeaddr_t *a, char *out, size_t outlen);
/* "tcp://host:port" to dial. 0, or -1 when it does not fit. */
int alys_nodeaddr_tcp(const alys_nodeaddr_t *a, char *out, size_t outlen);
/* text in its canonical form (hex key), or -1 when it does not parse. */
int alys_nodeaddr_canonical(const char *text, char *out, size_t outlen);
/* Whether text is an alys:// endpoint (any accepted key form). */
bool alys_nodeaddr_valid(const char *text);
/* The key of an alys:// endpoint as canonical hex into out
 * (ALYS_KEY_HEX_LEN + 1 bytes); -1 when text does not parse. */
int alys_nodeaddr_key_hex(const char *text, char *out, size_t outlen);
/* Our own endpoint: key + a tcp://host:port we listen on (a wildcard host
 * keeps '*', which no peer can dial: say so where it is shown). 0, or -1
 * when listen is not tcp://HOST:PORT or out is too small. */
int alys_nodeaddr_from_listen(const uint8_t key[ALYS_KEY_LEN], const char *listen, char *out,
                              size_t outlen);

#endif
