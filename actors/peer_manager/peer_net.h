/*  peer_net.h: PeerManager's client side of the wire protocol: the
 *  connections it dials and the requests it has in flight on them.
 *
 *  Connections. One DEALER per remote endpoint (bootstrap_peers, endpoints
 *  learnt by peer exchange and from inbound handshakes), routing id
 *  "<node_name>/<8 hex>" (node names are often left at their default and
 *  must not make two clients steal each other's identity at a server),
 *  ZMQ_IMMEDIATE so nothing queues for a peer that is not there. ZeroMQ
 *  re-makes dropped TCP connections by itself; on top of that:
 *    - the handshake: our Status first; the answer's genesis must be ours,
 *      its node_id becomes the peer id (or "@host:port" when that id is taken
 *      by another connected endpoint);
 *    - a Status every second while connected: reported height and RTT
 *      (peer_table_record_rtt, proximity's distance);
 *    - a peer whose probes go unanswered twice in a row is marked
 *      disconnected (PeerDisconnected to SyncActor) and probed again with
 *      exponential backoff (1 s doubling to 30 s);
 *    - a peer dropped for its score, or banned, is not dialled while
 *      peer_table_may_connect / peer_table_is_banned say no;
 *    - another genesis (its Status, or its WRONG_GENESIS error to ours): the
 *      endpoint is banned as "@host:port" (a self-declared node id could be
 *      an honest peer's) and shown as such;
 *    - GetPeers every 10 s: new endpoints are dialled (up to PN_MAX_CONNS).
 *  Sockets are made once per slot and never destroyed while the actor runs
 *  (re-dialling reconnects the same socket): removing a zloop reader from a
 *  timer is unsafe (zloop may still call it in the same pass).
 *
 *  Requests. FetchHeaders/FetchBlocks from SyncActor become GetHeaders /
 *  GetBlocks with a fresh wire request_id (unique across restarts: see
 *  alys_next_corr_id) and a deadline (the request's timeout_ms, or the
 *  peer's adaptive timeout). A response is matched by id and connection;
 *  unknown ids (late answers to requests that timed out, duplicates) are
 *  counted and ignored. The checks are wire/wire.h's; the outcome is
 *  recorded in the peer table and reported to SyncActor:
 *    HeadersResult: OK (+ header bytes), TIMEOUT, VIOLATION, SHORT (fewer,
 *      not truncated; or a NOT_FOUND answer), INVALID (undecodable or wrong
 *      heights), NO_PEER (unknown, not connected, banned, disconnected while
 *      waiting), BUSY (the peer rate-limited us: not its fault).
 *    FetchResult: as above for blocks; blocks that pass are handed to the
 *      reorder buffer (pm_deliver). A short or truncated answer still
 *      delivers its blocks (delivered = n) and is reported SHORT, so SyncActor
 *      fetches the rest; only a truncated one is not penalised.
 *  The request table is bounded (PN_MAX_REQS); a request beyond it gets BUSY.
 */
#ifndef PEER_NET_H
#define PEER_NET_H

#include "pm.h"

#define PN_MAX_CONNS          64
#define PN_MAX_REQS           512
#define PN_STATUS_EVERY_MS    1000
#define PN_STATUS_TIMEOUT_MS  3000
#define PN_DOWN_AFTER         2        /* unanswered probes in a row */
#define PN_BACKOFF_MAX_MS     30000
#define PN_PEERS_EVERY_MS     10000
#define PN_REFUSED_RETRY_MS   600000   /* another look at a refused endpoint */
#define PN_MAX_TIMEOUT_MS     60000

#endif
