/*  peer_net.h: PeerManager's client side of the wire protocol, in the core
 *  (pm.h): the translation between wire frames, SyncActor's messages and
 *  the pure modules; the peer DEALER sockets and their monitors are the
 *  shell's (main.c), reached through the port by slot. Every decision is in
 *  a pure module:
 *    pm_conn.h   the endpoint book and the connection state machine (dial,
 *                handshake, Status probes, down, backoff, re-dial; the
 *                socket monitor's disconnects are one of its inputs)
 *    pm_cost.h   what each way a request ends costs the peer, and the
 *                outcome SyncActor hears
 *    pm_reqs.h   the requests in flight (common/pending.h), admission and
 *                deadlines
 *    wire/wire.h the bounded codec and the checks an answer must pass
 *
 *  Connections. One DEALER per remote endpoint (bootstrap_peers, endpoints
 *  learnt by peer exchange and from inbound handshakes, all alys://KEY@HOST:
 *  PORT; the key is the peer's id from the moment it is learnt, and the
 *  shell makes the DEALER a CURVE client with that key as server key, so
 *  only the key's owner can answer), routing id
 *  "<node_name>/<8 hex>" (node names are often left at their default and
 *  must not make two clients steal each other's identity at a server),
 *  ZMQ_IMMEDIATE so nothing queues for a peer that is not there, and a
 *  socket monitor whose CONNECTED/DISCONNECTED events go to pm_conn. ZeroMQ
 *  re-makes dropped TCP connections by itself; on top of that (pm_conn.h):
 *    - the handshake: our Status first; the answer's genesis must be ours and
 *      its node_id the endpoint's key (another key, or a listen endpoint
 *      with another key, is a violation: charged, refused); one connection
 *      per key;
 *    - a Status every second while connected: reported height and RTT
 *      (peer_table_record_rtt, proximity's distance); a probe unanswered
 *      within 3 s costs a ready peer a timeout, two in a row and it is down;
 *    - a dropped link under a ready peer (monitor DISCONNECTED, or a send
 *      that fails because nothing is connected) takes it down at once: one
 *      timeout charged, its requests in flight end as timeouts (charged),
 *      PeerDisconnected to SyncActor; it is probed again with backoff
 *      (100 ms doubling to 30 s; at once when the monitor says the link is
 *      back) and is ready again when a probe is answered;
 *    - a peer dropped for its score, or banned, is not dialled while
 *      peer_table_may_connect / peer_table_is_banned say no;
 *    - another genesis (its Status, or its WRONG_GENESIS error to ours): its
 *      key is banned (CURVE proved the key; a self-declared node id could be
 *      an honest peer's) and shown as such;
 *    - GetPeers every 10 s: new endpoints are dialled (up to PM_CONN_MAX).
 *  Sockets are made once per slot and never destroyed while the actor runs
 *  (re-dialling reconnects the same socket): removing a zloop reader from a
 *  timer is unsafe (zloop may still call it in the same pass).
 *
 *  Requests. FetchHeaders/FetchBlocks from SyncActor become GetHeaders /
 *  GetBlocks with a fresh wire request_id and a deadline (pm_reqs.h). A
 *  response is matched by id and connection; an answer to a request that
 *  ended unanswered (deadline, lost link) is late, counted
 *  (alys_peer_late_responses_total) and free; any other unknown id is
 *  unsolicited and costs the peer (pm_cost.h's misbehaviour table, like
 *  undecodable, over-size, multi-part frames and requests sent to us). The outcome is recorded in
 *  the peer table and reported to SyncActor (pm_cost.h):
 *    HeadersResult: OK (+ header bytes), TIMEOUT, VIOLATION, SHORT (fewer,
 *      not truncated; or a NOT_FOUND answer), INVALID (undecodable or wrong
 *      heights), NO_PEER (unknown, not connected, banned, closed while
 *      waiting, or not sent because the link failed: then the peer was
 *      charged for the link), BUSY (the peer rate-limited us, or our table
 *      is full: not its fault).
 *    FetchResult: as above for blocks; blocks that pass are handed to the
 *      reorder buffer (pm_deliver). A short or truncated answer still
 *      delivers its blocks (delivered = n) and is reported SHORT, so SyncActor
 *      fetches the rest; only a truncated one is not penalised.
 */
#ifndef PEER_NET_H
#define PEER_NET_H

#include "pm.h"
#include "pm_conn.h"
#include "pm_cost.h"
#include "pm_reqs.h"

#endif
