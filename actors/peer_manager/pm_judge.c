/*  pm_judge.c: see pm_judge.h. */
#include "pm_judge.h"

#include <stdio.h>
#include <string.h>

#include "bus.h"
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

/* The range rules of a locator answer (pm_judge.h); NULL when it keeps
 * them. */
static const char *locator_range_problem(uint32_t count, const Alys__Wire__Headers *h)
{
    if (h->n_headers > count)
        return "more headers than asked";
    if (h->start == 0)
        return "answer starts at the genesis (0)";
    if (h->start > UINT64_MAX - h->n_headers)
        return "answer's heights wrap around";
    if (h->n_headers == 0 && h->truncated)
        return "empty answer flagged truncated";
    return NULL;
}

pm_verdict_t pm_judge_locator_headers(uint32_t count, const Alys__Wire__Headers *h)
{
    pm_verdict_t v = {0};
    alys_wire_verdict_t k = ALYS_WIRE_OK;
    const char *why = locator_range_problem(count, h);
    if (why) {
        snprintf(v.detail, sizeof v.detail, "%s (%zu headers from %llu for %u)", why,
                 h->n_headers, (unsigned long long) h->start, count);
        k = ALYS_WIRE_VIOLATION;
    } else {
        k = alys_wire_check_headers(h->headers, h->n_headers, h->start, NULL, v.detail,
                                    sizeof v.detail);
    }
    v.kind = (peer_outcome_kind_t) k;
    v.report = (int) k;
    /* Cut at the frame limit: SyncActor asks again from where it ends. */
    v.partial = k == ALYS_WIRE_OK && h->truncated && h->n_headers < count;
    v.data = k == ALYS_WIRE_OK;
    return v;
}

size_t pm_judge_result_fit(const ProtobufCBinaryData *blocks, size_t n)
{
    /* Same framing as a wire answer's items (a tag and a length each). */
    return alys_wire_fit_items(blocks, n, PM_RESULT_OVERHEAD, ALYS_MAX_MSG_BYTES);
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
    /* chain.h's rule: a linkage reason is the peer's fault inside a range,
     * a content reason always; what is left is linkage. */
    r.linkage = !r.content_fault && alys_refusal_is_peer_fault(reason, 1, 0);
    return r;
}

bool pm_judge_penalty(int outcome, peer_outcome_kind_t *kind)
{
    if (outcome == ALYS__PEER__OUTCOME__OK || outcome < 0 || outcome > ALYS__PEER__OUTCOME__VIOLATION)
        return false; /* NO_PEER, BUSY: nobody's fault */
    *kind = (peer_outcome_kind_t) outcome;
    return true;
}

/* ---- frames outside any exchange -------------------------------------------- */

size_t pm_judge_frame_max(Alys__Wire__WireMsg__BodyCase body)
{
    switch (body) {
    case ALYS__WIRE__WIRE_MSG__BODY_NEW_BLOCK: return ALYS_MAX_BLOCK_BYTES + 64;
    case ALYS__WIRE__WIRE_MSG__BODY_PEERS:
        /* Each endpoint: tag, length (2 bytes) and the text. */
        return ALYS_WIRE_MAX_ENDPOINTS * (ALYS_ENDPOINT_MAX + 3) + 64;
    case ALYS__WIRE__WIRE_MSG__BODY_HEADERS:
        return (size_t) ALYS_WIRE_MAX_HEADERS * (ALYS_WIRE_MAX_HEADER_BYTES + 3) + 64;
    case ALYS__WIRE__WIRE_MSG__BODY_BLOCKS: return ALYS_MAX_MSG_BYTES;
    case ALYS__WIRE__WIRE_MSG__BODY_SUBMIT_TX:
        /* Each tx: tag, length (2 bytes) and its bytes. */
        return (size_t) ALYS_WIRE_MAX_TXS * (ALYS_WIRE_MAX_TX_BYTES + 3) + 64;
    case ALYS__WIRE__WIRE_MSG__BODY_TX_RESULTS:
        /* One short result string per tx: tag, length, text. */
        return (size_t) ALYS_WIRE_MAX_TXS * (ALYS_WIRE_MAX_RESULT + 2) + 64;
    default: return PM_JUDGE_SMALL_FRAME;
    }
}

static bool is_response(Alys__Wire__WireMsg__BodyCase body)
{
    return body == ALYS__WIRE__WIRE_MSG__BODY_HEADERS || body == ALYS__WIRE__WIRE_MSG__BODY_BLOCKS ||
           body == ALYS__WIRE__WIRE_MSG__BODY_PEERS || body == ALYS__WIRE__WIRE_MSG__BODY_ERROR;
}

static bool is_request(Alys__Wire__WireMsg__BodyCase body)
{
    /* Status goes both ways (the handshake and its answer), NewBlock is
     * pushed both ways. */
    return body == ALYS__WIRE__WIRE_MSG__BODY_GET_HEADERS ||
           body == ALYS__WIRE__WIRE_MSG__BODY_GET_BLOCKS ||
           body == ALYS__WIRE__WIRE_MSG__BODY_GET_PEERS;
}

pm_frame_t pm_judge_frame(const alys_wire_msg_t *m, size_t len, bool serving)
{
    if (len > pm_judge_frame_max(m->body_case))
        return PM_FRAME_OVERSIZE;
    if (serving ? is_response(m->body_case) : is_request(m->body_case))
        return PM_FRAME_WRONG_WAY;
    return PM_FRAME_OK;
}

void pm_late_note(pm_late_t *l, int conn, uint64_t request_id)
{
    l->ring[l->next].conn = conn;
    l->ring[l->next].id = request_id;
    l->next = (l->next + 1) % PM_LATE_MAX;
    if (l->used < PM_LATE_MAX)
        l->used++;
}

bool pm_late_take(pm_late_t *l, int conn, uint64_t request_id)
{
    for (size_t i = 0; i < l->used; i++) {
        if (l->ring[i].conn == conn && l->ring[i].id == request_id && request_id != 0) {
            l->ring[i].id = 0; /* 0 is never a request id we send */
            return true;
        }
    }
    return false;
}


void pm_judge_who_id(const uint8_t *who, size_t len, char *out, size_t cap)
{
    if (cap == 0)
        return;
    char raw[62];
    bool plain = len > 0 && len < sizeof raw;
    if (plain) {
        memcpy(raw, who, len);
        raw[len] = '\0';
        plain = strlen(raw) == len && alys_wire_valid_node_id(raw);
    }
    if (plain) {
        snprintf(out, cap, "in:%s", raw);
        return;
    }
    size_t o = (size_t) snprintf(out, cap, "in:x");
    for (size_t i = 0; i < len && i < 29 && o + 2 < cap; i++, o += 2)
        snprintf(out + o, cap - o, "%02x", who[i]);
}
