/*  peer_serve.h: PeerManager's server side of the wire protocol, in the core
 *  (pm.h): the shell binds a ROUTER at [network] listen (tcp) when that is
 *  set and hands each client frame in (pm_core_on_client_frame); answers go
 *  out through the port.
 *
 *  Handshake. A client's first message must be Status. We answer with our
 *  own (genesis, head and checkpoint from StorageActor's cached Head, at
 *  most ~500 ms old); a Status with another genesis gets WireError
 *  WRONG_GENESIS and the client is refused: its later messages are ignored
 *  (for PM_ADMIT_REFUSED_TTL_MS, then it may try again) and it is listed as
 *  "refused" by GetPeers. On a CURVE link (the default) a client is the key
 *  its link proved (the ZAP User-Id the shell hands in): a Status naming
 *  another key, or a listen endpoint with another key, is a violation
 *  charged to that key and the client is refused. A client whose key (node
 *  id) or listen endpoint is
 *  banned is ignored the same way. Before the handshake anything else gets
 *  BAD_REQUEST. A client's Status also tells us its listen endpoint, which
 *  the client side may dial (discovery without a round of GetPeers). Every
 *  one of these decisions is pm_admit.h's (pure, unit-tested); this file
 *  translates and runs the storage reads (tests/unit/peer/test_pm_core.c).
 *
 *  Serving. GetHeaders (count 1..2048) and GetBlocks (count 1..1024) are read
 *  from StorageActor (GetBlocks, headers_only for headers; storage gives at
 *  most 1024 items per read, so a long header range takes two reads). Each
 *  storage read has a deadline (PM_STORE_TIMEOUT_MS): a storage that is
 *  restarting gives UNAVAILABLE, never silence.
 *    - count 0 or above the bound, start 0: BAD_REQUEST (the requester
 *      breaks the protocol; nothing is clamped silently);
 *    - a range that starts above our head: NOT_FOUND;
 *    - a range that runs past our head: a short answer (the items up to the
 *      head, truncated = false) -- the requester sees SHORT;
 *    - an answer that would exceed the frame limit is cut at the last item
 *      that fits, with truncated = true (only then).
 *  A GetHeaders with a block locator (fork choice; at most ALYS_LOCATOR_MAX
 *  hashes, bounded by the decoder) is checked for its count only; its first
 *  storage read carries the locator (GetBlocks.locator: storage answers from
 *  above the first hash on its chain, or from 1) and the answer starts at
 *  storage's Blocks.start, later reads continuing from there; nothing above
 *  it is an empty Headers at that start (not NOT_FOUND, never truncated).
 *  Every request counts against the client's token bucket (rate_limit.h,
 *  [network] serve_rate_limit per second, bursts of twice that); over it:
 *  RATE_LIMITED. At most PS_MAX_JOBS reads are in flight; beyond: UNAVAILABLE.
 *  GetPeers answers with the listen endpoints of our connected peers.
 *  NewBlock from a client goes to block gossip (peer_gossip.c, pm_gossip.h).
 *
 *  Misbehaviour (pm_cost.h): undecodable, over-size, multi-part frames,
 *  responses sent to us, requests past the token bucket and frames past
 *  the byte bucket cost the client in a ledger by its key (the link's,
 *  proved by CURVE; on a plaintext link "in:<routing id>"); at the ban
 *  score it is banned under it in the peer table's ban list and its frames
 *  are dropped unread from then on.
 *
 *  Memory: clients are tracked in a bounded table (PS_MAX_CLIENTS, least
 *  recently seen recycled); header answers are assembled in copies (at most
 *  2048 headers of at most ALYS_WIRE_MAX_HEADER_BYTES), block answers are sent
 *  straight from storage's reply.
 */
#ifndef PEER_SERVE_H
#define PEER_SERVE_H

#include "pm.h"

#define PS_MAX_CLIENTS   1024
#define PS_MAX_JOBS      64
#define PS_STORAGE_CHUNK 1024 /* items per storage read (STORAGE_MAX_GET_BLOCKS) */

#endif
