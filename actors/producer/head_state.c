/*  head_state.c: see head_state.h. */
#include <stdio.h>
#include <string.h>

#include "head_state.h"

static int refuse_read(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out)
{
    (void) ctx, (void) pubkey, (void) out;
    return -1; /* no mempool reply for this head: a block reads no account */
}

static int bad(head_state_t *hs, char *err, size_t errlen, const char *why)
{
    hs->valid = false;
    snprintf(err, errlen, "head reply: %s", why);
    return -1;
}

/* The head's header: decoded and matching the reply, or the genesis parent. */
static int take_header(head_state_t *hs, const alys_genesis_t *g, const Alys__Storage__Head *m,
                       char *err, size_t errlen)
{
    if (m->height == 0) {
        if (m->header.len != 0)
            return bad(hs, err, errlen, "a header at height 0");
        if (memcmp(m->hash.data, g->hash, ALYS_HASH_LEN) != 0)
            return bad(hs, err, errlen, "height 0 but not the genesis hash");
        alys_genesis_parent(g, &hs->header);
        return 0;
    }
    alys_verdict_t v;
    if (m->header.len == 0 || alys_header_decode(m->header.data, m->header.len, &hs->header, &v) != 0)
        return bad(hs, err, errlen, "no head header, or it does not decode");
    alys_hash_t h;
    alys_header_hash(&hs->header, h);
    if (hs->header.height != m->height || memcmp(h, m->hash.data, ALYS_HASH_LEN) != 0 ||
        memcmp(hs->header.state_root, m->state_root.data, ALYS_HASH_LEN) != 0)
        return bad(hs, err, errlen, "the header is not the head's (height, hash or state root)");
    return 0;
}

int head_state_take(head_state_t *hs, const alys_genesis_t *g, const Alys__Storage__Head *m,
                    char *err, size_t errlen)
{
    memset(hs, 0, sizeof *hs);
    if (m->hash.len != ALYS_HASH_LEN || m->state_root.len != ALYS_HASH_LEN)
        return bad(hs, err, errlen, "hash or state root not 32 bytes");
    if (m->lattice.len != ALYS_LATTICE_BYTES)
        return bad(hs, err, errlen, "no lattice (GetHead without with_state?)");
    if (take_header(hs, g, m, err, errlen) != 0)
        return -1;
    alys_lattice_from_bytes(&hs->view.lattice, m->lattice.data);
    alys_hash_t root;
    alys_lattice_root(&hs->view.lattice, root);
    if (memcmp(root, m->state_root.data, ALYS_HASH_LEN) != 0)
        return bad(hs, err, errlen, "the lattice's root is not the state root");
    hs->height = m->height;
    memcpy(hs->hash, m->hash.data, ALYS_HASH_LEN);
    hs->view.genesis = g;
    hs->view.read = refuse_read;
    hs->valid = true;
    return 0;
}

bool head_state_input(head_state_t *hs, const alys_genesis_t *g, uint64_t slot, uint64_t hash_seed,
                      const pool_txs_t *pt, uint32_t max_txs, builder_input_t *in)
{
    bool with_txs = pt && pool_txs_for_head(pt, hs->hash);
    hs->view.read = with_txs ? pool_txs_read : refuse_read;
    hs->view.read_ctx = with_txs ? (void *) pt : NULL;
    memset(in, 0, sizeof *in);
    in->genesis = g;
    in->head_state = &hs->view;
    in->head = hs->header;
    memcpy(in->head_hash, hs->hash, ALYS_HASH_LEN);
    in->slot = slot;
    in->txs = with_txs ? pt->txs : NULL;
    in->tx_count = with_txs ? pt->tx_count : 0;
    in->max_txs = with_txs ? max_txs : 0;
    in->max_bytes = ALYS_MAX_BLOCK_BYTES;
    in->hash_seed = hash_seed;
    return with_txs;
}
