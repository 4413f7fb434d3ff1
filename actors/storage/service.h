/*  service.h: StorageActor's mailbox protocol (proto/storage.proto) over the
 *  store, without sockets: one request envelope in, one reply envelope out.
 *  main.c receives and sends; tests call storage_serve directly, including
 *  with malformed requests, which get an Error body and never crash.
 *
 *  Replies (see the table at the top of proto/storage.proto): a StorageMsg
 *  body, or an alys.bus.Error with code ALYS_ERR_BAD_REQUEST (malformed or
 *  not a storage request), ALYS_ERR_INVALID (refused: rollback too deep,
 *  checkpoint at genesis, ...) or ALYS_ERR_INTERNAL (RocksDB failed; nothing
 *  was written) and a message naming what was wrong.
 *
 *  What the shell does with the outcome is decided here too: whether to
 *  send the reply at all (rep->answer: not for a reply that arrived as a
 *  request, nor for corr_id 0, which asks for none) and the event to publish
 *  when the head moved (rep->head_event, rep->event_text), and after a
 *  reorg a "reorg" event first (rep->reorged, rep->reorg_text).
 *
 *  Ownership: storage_serve fills a caller-provided storage_reply_t whose
 *  env points into the reply itself and into memory it allocated; send
 *  rep->env if rep->answer, then storage_reply_clear(rep). Nothing of req is
 *  kept.
 */
#ifndef ALYS_STORAGE_SERVICE_H
#define ALYS_STORAGE_SERVICE_H

#include <stdbool.h>

#include "bus.h"
#include "storage.h"
#include "wire/wire.h"

/* Byte budget of a Blocks reply: the frame limit minus room for the
 * envelope around the blocks. */
#define STORAGE_REPLY_BLOCK_BYTES (ALYS_MAX_MSG_BYTES - 64 * 1024)

/* Room for "height=H hash=<64 hex> state_root=<64 hex>". */
#define STORAGE_EVENT_TEXT (64 + 4 * ALYS_HASH_LEN)
/* Room for "depth=D old_height=H old_hash=<64 hex> new_height=N new_hash=<64 hex>". */
#define STORAGE_REORG_TEXT (96 + 4 * ALYS_HASH_LEN)

typedef struct {
    alys_env_t env;                      /* the reply: body_case and body set */
    bool answer;                         /* send env back to the requester */
    bool head_changed;                   /* the head moved: publish an event */
    const char *head_event;              /* "head_advanced" or "rolled_back" */
    char event_text[STORAGE_EVENT_TEXT]; /* its detail: the new head */
    /* A committed reorg (depth > 0): publish a "reorg" event with this
     * detail before the head event. */
    bool reorged;
    char reorg_text[STORAGE_REORG_TEXT];

    /* Storage the env points into. */
    Alys__Bus__Error error;
    char error_text[512];
    Alys__Storage__StorageMsg msg;
    Alys__Storage__BatchResult batch;
    Alys__Storage__Head head;
    Alys__Storage__Blocks blocks;
    Alys__Storage__AccountState account;
    Alys__Storage__Checkpoints checkpoints;
    Alys__Storage__PeerBans bans;
    Alys__Storage__BlockRef ref;
    Alys__Storage__FenceRecorded fence_recorded;
    Alys__Storage__Fence fence;
    alys_hash_t fence_hash; /* the record the reply names */
    uint8_t fence_authority[ALYS_PUBKEY_LEN];
    uint8_t *head_header; /* owned: the encoded head header (GetHead with_state) */
    uint8_t lattice[ALYS_LATTICE_BYTES];
    storage_head_t head_value;
    alys_hash_t failed_hash;
    uint8_t pubkey[ALYS_PUBKEY_LEN];
    alys_hash_t ref_hash;
    char reason[48];
    char detail[sizeof(((alys_verdict_t *) 0)->detail)];
    storage_blobs_t blobs;
    Alys__Chain__BlockCheckpoint **cps; /* owned */
    size_t ncps;
    Alys__Storage__PeerBan **ban_list; /* owned */
    size_t nbans;
    Alys__Storage__AddrBook *addr_book; /* owned (GetAddrBook) */
    Alys__Storage__AddrBook book_ack;   /* PutAddrBook's empty answer */
    /* GetLocator's answer. */
    Alys__Storage__Locator locator;
    uint64_t loc_heights[ALYS_LOCATOR_MAX];
    alys_hash_t loc_hashes[ALYS_LOCATOR_MAX];
    ProtobufCBinaryData loc_items[ALYS_LOCATOR_MAX];
} storage_reply_t;

/* Serve one request. Always fills rep (a reply body or an Error). A reply
 * envelope (req->reply set) is not served: rep->answer false, no body. */
void storage_serve(storage_t *store, const alys_env_t *req, storage_reply_t *rep);
void storage_reply_clear(storage_reply_t *rep);

#endif
