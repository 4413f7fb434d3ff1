/*  pm_judge.c: see pm_judge.h. */
#include "pm_judge.h"

#include <string.h>

#include "chain/chain.h"
#include "nodeaddr.h"
#include "peer.pb-c.h"

pm_hs_t pm_judge_status(const Alys__Wire__Status *st, const uint8_t *genesis, const char *our_key,
                        const char *link_key)
{
    /* The decoder checked the hash is 32 bytes (wire/wire.h). */
    if (st->genesis_hash.len != ALYS_HASH_LEN ||
        memcmp(st->genesis_hash.data, genesis, ALYS_HASH_LEN) != 0)
        return PM_HS_WRONG_GENESIS;
    const char *node_id = st->node_id ? st->node_id : "";
    if (our_key && our_key[0] && strcmp(node_id, our_key) == 0)
        return PM_HS_SELF;
    if (!alys_wire_valid_node_id(node_id))
        return PM_HS_BAD_ID;
    if (link_key && link_key[0]) {
        char listen_key[ALYS_WIRE_ID_MAX];
        if (strcmp(node_id, link_key) != 0)
            return PM_HS_WRONG_KEY;
        if (st->listen && alys_nodeaddr_key_hex(st->listen, listen_key, sizeof listen_key) == 0 &&
            strcmp(listen_key, link_key) != 0)
            return PM_HS_WRONG_KEY;
    }
    return PM_HS_OK;
}

pm_verdict_t pm_judge_headers(uint64_t start, uint32_t count, const Alys__Wire__Headers *h)
{
    pm_verdict_t v = {0};
    alys_wire_verdict_t k = alys_wire_check_range(start, count, h->start, h->n_headers, h->truncated,
                                                  &v.partial, v.detail, sizeof v.detail);
    if (k == ALYS_WIRE_OK)
        k = alys_wire_check_headers(h->headers, h->n_headers, start, NULL, v.detail, sizeof v.detail);
    v.kind = (peer_outcome_kind_t) k;
    v.report = (int) k;
    /* Headers are only as good as SyncActor's verification: a short answer
     * still carries them, it verifies what it got. */
    v.data = k == ALYS_WIRE_OK || k == ALYS_WIRE_SHORT;
    return v;
}

pm_verdict_t pm_judge_blocks(uint64_t start, uint32_t count,
                             const uint8_t (*expected)[ALYS_HASH_LEN], const Alys__Wire__Blocks *b)
{
    pm_verdict_t v = {0};
    alys_wire_verdict_t k = alys_wire_check_range(start, count, b->start, b->n_blocks, b->truncated,
                                                  &v.partial, v.detail, sizeof v.detail);
    /* A short answer's blocks are checked too: they are delivered. */
    if ((k == ALYS_WIRE_OK || k == ALYS_WIRE_SHORT) &&
        alys_wire_check_blocks(b->blocks, b->n_blocks, start, expected, expected ? count : 0,
                               NULL, v.detail, sizeof v.detail) != ALYS_WIRE_OK) {
        k = ALYS_WIRE_INVALID;
        /* Sound without the expected hashes: only the header match failed. */
        v.conflict = expected && alys_wire_check_blocks(b->blocks, b->n_blocks, start, NULL, 0,
                                                        NULL, NULL, 0) == ALYS_WIRE_OK;
    }
    v.kind = (peer_outcome_kind_t) k;
    v.report = (int) k;
    v.data = (k == ALYS_WIRE_OK || k == ALYS_WIRE_SHORT) && b->n_blocks > 0;
    return v;
}

int pm_judge_fetch_report(const pm_verdict_t *v, int delivered_outcome)
{
    if (!v->data)
        return v->report;
    if (delivered_outcome == ALYS__PEER__OUTCOME__OK && (v->kind == PEER_OUTCOME_SHORT || v->partial))
        return ALYS__PEER__OUTCOME__SHORT; /* SyncActor fetches the rest */
    return delivered_outcome;
}

pm_refusal_t pm_judge_refusal(const char *reason, uint64_t failed_height, uint64_t range_start)
{
    pm_refusal_t r = {.content_fault = alys_refusal_is_content(reason),
                      .suspect = alys_refusal_is_peer_fault(reason, failed_height, range_start)};
    return r;
}

bool pm_judge_penalty(int outcome, peer_outcome_kind_t *kind)
{
    if (outcome == ALYS__PEER__OUTCOME__OK || outcome < 0 || outcome > ALYS__PEER__OUTCOME__VIOLATION)
        return false; /* NO_PEER, BUSY: nobody's fault */
    *kind = (peer_outcome_kind_t) outcome;
    return true;
}
