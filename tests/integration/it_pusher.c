/*  it_pusher: a misbehaving peer for tests/integration/test_live.sh. It
 *  connects to a node's alys:// endpoint as a CURVE client with the key in
 *  KEY_FILE (alysctl key new), does the Status handshake as that key, and
 *  pushes one NewBlock that links to
 *  the node's head (height head+1, parent its head hash, the wall clock's
 *  slot, the slot's proposer) but carries no valid signature: a block that
 *  fails the stateless checks. Exit 0 once pushed, 1 on any failure.
 *
 *  usage: it_pusher GENESIS_FILE ENDPOINT KEY_FILE
 */
#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "chain/chain.h"
#include "nodekey.h"
#include "peerlink.h"
#include "util.h"
#include "wire/wire.h"

#define REPLY_WAIT_MS 10000

static int send_msg(zsock_t *s, const alys_wire_msg_t *m)
{
    zframe_t *f = alys_wire_encode(m);
    return f ? zframe_send(&f, s, 0) : -1;
}

/* The node's Status answer to ours: its head. */
static int handshake(zsock_t *s, const alys_genesis_t *g, const char *name, uint64_t *height,
                     alys_hash_t hash)
{
    Alys__Wire__Status st = ALYS__WIRE__STATUS__INIT;
    st.protocol_version = 1;
    st.genesis_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) g->hash};
    st.node_id = (char *) name;
    alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
    m.request_id = 1;
    m.body_case = ALYS__WIRE__WIRE_MSG__BODY_STATUS;
    m.status = &st;
    if (send_msg(s, &m) != 0)
        return -1;
    zsock_set_rcvtimeo(s, REPLY_WAIT_MS);
    zframe_t *f = zframe_recv(s);
    if (!f)
        return -1;
    char err[160];
    alys_wire_msg_t *r = alys_wire_decode(zframe_data(f), zframe_size(f), err, sizeof err);
    zframe_destroy(&f);
    int rc = -1;
    if (r && r->body_case == ALYS__WIRE__WIRE_MSG__BODY_STATUS &&
        r->status->head_hash.len == ALYS_HASH_LEN) {
        *height = r->status->head_height;
        memcpy(hash, r->status->head_hash.data, ALYS_HASH_LEN);
        rc = 0;
    }
    alys_wire_free(&r);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: it_pusher GENESIS_FILE ENDPOINT KEY_FILE\n");
        return 1;
    }
    alys_genesis_t g;
    memset(&g, 0, sizeof g);
    char err[256];
    if (alys_genesis_load(argv[1], &g, err, sizeof err) != 0) {
        fprintf(stderr, "it_pusher: %s\n", err);
        return 1;
    }
    alys_nodekey_t *key = alys_nodekey_load(argv[3], err, sizeof err);
    if (!key) {
        fprintf(stderr, "it_pusher: %s\n", err);
        alys_genesis_clear(&g);
        return 1;
    }
    zsock_t *s = zsock_new(ZMQ_DEALER);
    if (s && alys_peerlink_connect(s, argv[2], key) != 0)
        zsock_destroy(&s);
    uint64_t height = 0;
    alys_hash_t head;
    int rc = 1;
    if (s && handshake(s, &g, alys_nodekey_public_hex(key), &height, head) == 0) {
        uint64_t now = (uint64_t) alys_now_ms();
        alys_block_t b;
        memset(&b, 0, sizeof b);
        b.header.height = height + 1;
        memcpy(b.header.parent_hash, head, ALYS_HASH_LEN);
        b.header.slot = alys_genesis_slot_at(&g, now);
        b.header.timestamp = now / 1000;
        b.header.proposer = (uint32_t) (b.header.slot % g.authority_count);
        memset(b.header.signature, 0x5a, ALYS_SIG_LEN); /* not a signature */
        uint8_t *bytes = NULL;
        size_t len = 0;
        if (alys_block_encode(&b, &bytes, &len) == 0) {
            Alys__Wire__NewBlock nb = ALYS__WIRE__NEW_BLOCK__INIT;
            nb.block = (ProtobufCBinaryData){len, bytes};
            alys_wire_msg_t m = ALYS__WIRE__WIRE_MSG__INIT;
            m.body_case = ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK;
            m.new_block = &nb;
            if (send_msg(s, &m) == 0) {
                printf("pushed an unsigned block at height %llu\n", (unsigned long long) (height + 1));
                rc = 0;
            }
            free(bytes);
        }
    } else {
        fprintf(stderr, "it_pusher: no handshake with %s\n", argv[2]);
    }
    /* Linger so the frame leaves before the socket closes. */
    if (s)
        zsock_set_linger(s, 2000);
    zsock_destroy(&s);
    alys_nodekey_destroy(&key);
    alys_genesis_clear(&g);
    return rc;
}
