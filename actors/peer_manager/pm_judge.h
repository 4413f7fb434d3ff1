/*  pm_judge.h: PeerManager's verdicts on what peers and BlockProcessor send
 *  back, as pure functions (tests/unit/peer/test_judge.c):
 *
 *  Handshakes (pm_judge_status): another genesis -> WRONG_GENESIS (its key
 *  is banned); our own key as its node id -> SELF; a node id that is not
 *  1..64 of [A-Za-z0-9._:@/-] -> BAD_ID (refused); a node id other than the
 *  key of the link (the key CURVE authenticated: the endpoint's key when we
 *  dialled, the ZAP User-Id when it dialled us), or a listen endpoint with
 *  another key -> WRONG_KEY, a protocol violation (charged, refused): a
 *  peer is its key and cannot claim to be another; else OK.
 *
 *  Answers to GetHeaders/GetBlocks (pm_judge_headers / pm_judge_blocks):
 *  the range rules, then the content rules of wire/wire.h. The verdict is
 *  what the peer's record gets; what SyncActor hears differs in two ways:
 *  headers of a short answer are still passed on (SyncActor verifies what
 *  it got), and blocks of an OK or SHORT answer are delivered, a partial
 *  (truncated at the frame limit) or short one reported SHORT so SyncActor
 *  fetches the rest (pm_judge_fetch_report). A block whose only fault is
 *  that it does not match the verified header hash is a conflict, not a
 *  lie yet (pm_verdict_t.conflict): the header came from another peer.
 *
 *  Answers to a locator GetHeaders (pm_judge_locator_headers, fork
 *  choice): the server chooses where its answer starts (above the first
 *  locator hash on its chain, or 1), so any start >= 1 is accepted with
 *  consecutive heights from it (alys_wire_check_headers: INVALID
 *  otherwise). Fewer than asked is OK, zero included: the peer's chain
 *  ends there (no branch of its own above where the chains meet). More
 *  than asked, start 0, an empty answer flagged truncated, or a start
 *  whose heights would wrap: VIOLATION. Whether the first header links to
 *  the locator hash below it is SyncActor's check (it holds the hashes).
 *
 *  Blocks for the requester (FetchBlocks.to_requester) travel back in one
 *  FetchResult on the bus: pm_judge_result_fit says how many of them fit
 *  in ALYS_MAX_MSG_BYTES; the rest is reported SHORT (SyncActor fetches
 *  it), never a frame the bus would refuse.
 *
 *  Refusals by BlockProcessor (pm_judge_refusal): a block refused for its
 *  own bytes (signatures, roots, nonces, balances, size, header mismatch)
 *  is a content fault, and its server is suspected; a linkage failure
 *  (parent, height gap, slot order) is the block's own only inside its
 *  range, at the range's first block it is the previous batch's; anything
 *  else (future slot: our clock; internal errors) suspects no one.
 *
 *  Penalise from SyncActor (pm_judge_penalty): OK, NO_PEER and BUSY are
 *  nobody's fault; TIMEOUT..VIOLATION are recorded as such.
 *
 *  Frames that are no part of an exchange (pm_judge_frame, priced by
 *  pm_cost.h's table): a frame larger than its kind can be (OVERSIZE:
 *  pm_judge_frame_max), a response arriving on our serving socket or a
 *  request on a link where we only ask (WRONG_WAY). Answers nobody is
 *  waiting for are UNSOLICITED unless they are late: pm_late_t remembers
 *  the last PM_LATE_MAX requests that ended unanswered (deadline, lost
 *  link), and the first answer to one of them is free.
 */
#ifndef PM_JUDGE_H
#define PM_JUDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peer_table.h"
#include "wire/wire.h"

typedef enum {
    PM_HS_OK = 0,
    PM_HS_WRONG_GENESIS,
    PM_HS_SELF,
    PM_HS_BAD_ID,
    PM_HS_WRONG_KEY,
} pm_hs_t;

/* genesis: ours; our_key: our public key (hex, "" = unknown); link_key: the
 * link's key (hex; NULL or "" = none known, plaintext inbound). */
pm_hs_t pm_judge_status(const Alys__Wire__Status *st, const uint8_t *genesis, const char *our_key,
                        const char *link_key);

typedef struct {
    peer_outcome_kind_t kind; /* for the peer's record */
    int report;               /* Alys__Peer__Outcome for SyncActor */
    bool partial;             /* OK but fewer than asked (frame limit) */
    bool data;                /* items to pass on (headers) / deliver (blocks) */
    bool conflict;            /* blocks: sound in themselves, but one does not match
                                 the header hash SyncActor verified (from another
                                 peer): this peer or the header's server lies, one
                                 body cannot say which. Suspect it for the range
                                 (peer_table_suspect), do not charge it; SyncActor
                                 hears INVALID, asks the header's server next and a
                                 copy that validates convicts the liar
                                 (RangeVerdict) */
    char detail[ALYS_WIRE_DETAIL_MAX];
} pm_verdict_t;

pm_verdict_t pm_judge_headers(uint64_t start, uint32_t count, const Alys__Wire__Headers *h);
/* expected: count hashes or NULL. */
pm_verdict_t pm_judge_blocks(uint64_t start, uint32_t count,
                             const uint8_t (*expected)[ALYS_HASH_LEN], const Alys__Wire__Blocks *b);
/* A locator GetHeaders for count headers answered with h (see above). */
pm_verdict_t pm_judge_locator_headers(uint32_t count, const Alys__Wire__Headers *h);
/* What a FetchResult holds besides its blocks, at most (envelope with its
 * sender name, request id, peer id, detail, counters): a generous bound. */
#define PM_RESULT_OVERHEAD 4096
/* How many of blocks[0..n) fit in one FetchResult on the bus. */
size_t pm_judge_result_fit(const ProtobufCBinaryData *blocks, size_t n);
/* What SyncActor hears for blocks, once the reorder buffer answered
 * delivered_outcome (OK, or BUSY when full) for the delivered ones. */
int pm_judge_fetch_report(const pm_verdict_t *v, int delivered_outcome);

typedef struct {
    bool content_fault; /* for the reorder buffer */
    bool suspect;       /* suspect the server for the failed block */
    bool linkage;       /* parent, height gap or slot order: at a block that
                           should sit on our head, another branch */
} pm_refusal_t;

pm_refusal_t pm_judge_refusal(const char *reason, uint64_t failed_height, uint64_t range_start);

/* Penalise: false = nobody's fault; else *kind for the record. */
bool pm_judge_penalty(int outcome, peer_outcome_kind_t *kind);

/* ---- frames outside any exchange ------------------------------------------- */

#define PM_JUDGE_SMALL_FRAME 4096 /* Status, Get*, WireError: ~1.2 KiB at most */

/* The largest frame a message of this body can honestly be. */
size_t pm_judge_frame_max(Alys__Wire__WireMsg__BodyCase body);

typedef enum {
    PM_FRAME_OK = 0,
    PM_FRAME_OVERSIZE,  /* larger than its kind can be */
    PM_FRAME_WRONG_WAY, /* a response to a server, a request to a client */
} pm_frame_t;

/* serving: it came in on our serving socket (from an inbound client), else
 * on an outbound link (from a server we dialled). len: the frame's bytes. */
pm_frame_t pm_judge_frame(const alys_wire_msg_t *m, size_t len, bool serving);

#define PM_LATE_MAX 256

/* Requests that ended without an answer, newest over oldest. Plain value:
 * embed it, zero it to start. */
typedef struct {
    struct {
        int conn;
        uint64_t id;
    } ring[PM_LATE_MAX];
    size_t next;
    size_t used;
} pm_late_t;

void pm_late_note(pm_late_t *l, int conn, uint64_t request_id);
/* A late answer to one of them (forgotten: a second answer is not late). */
bool pm_late_take(pm_late_t *l, int conn, uint64_t request_id);

/* The peer id an inbound client on a plaintext link (no key) is known (and
 * banned) by: "in:" + its routing id when that is a valid node id of at
 * most 61 chars, else
 * "in:x" + hex of its first 29 bytes. out: ALYS_WIRE_ID_MAX bytes. */
void pm_judge_who_id(const uint8_t *who, size_t len, char *out, size_t cap);

#endif
