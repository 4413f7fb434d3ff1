/*  pm_park.c: the reorder buffer's copy at BlockProcessor (see pm.h,
 *  actors/block_processor/park.h).
 *
 *  Why. A kill -9 of PeerManager loses its reorder buffer: every range
 *  downloaded and not yet committed (512-682 blocks of a 6,000-block sync
 *  in the bench). So every entry is mirrored at BlockProcessor, which a
 *  PeerManager kill does not take down:
 *    - an entry the buffer accepts is sent there (Park, no reply);
 *    - an entry that leaves the buffer (committed, failed, dropped,
 *      superseded, evicted) is forgotten there (Unpark): after every change
 *      the mirror is compared with the buffer (pm_park_sync), so no path
 *      that removes an entry can be missed;
 *    - a re-issued fetch answered from the buffer (reorder_rekey) moves the
 *      parked copy to the new request id (ParkRekey).
 *  At start PeerManager asks for its parked ranges (GetParked) and puts
 *  them back into its buffer under their old request ids. Until the answer
 *  comes and storage has told us our head (or wait_ms passes: a
 *  BlockProcessor that does not answer costs only that), SyncActor's
 *  FetchBlocks are held (no peer is dialled before the head anyway). Then
 *  a held fetch whose range is wholly at or below the head (ours, or the
 *  one BlockProcessor dropped parked ranges by, Parked.head_height, if
 *  newer) was committed meanwhile (BlockProcessor went on with what it
 *  had, and dropped its parked copy): it is answered
 *  FetchResult OK and a BatchOutcome of it committed; one the buffer holds
 *  is answered from the re-adopted copy (FetchResult OK as for a download
 *  that landed in the buffer); only the rest, ranges that were on the
 *  wire, is downloaded again. Fetches that come after the release but
 *  within wait_ms of our start are judged the same way (SyncActor's
 *  re-issues may reach us only once its socket reconnected). Later ones
 *  are downloaded as before parking: a head read before a rollback would
 *  be stale, and a re-fetch of a range we hold then means SyncActor wants
 *  another copy.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pm.h"

#define PARK_MIRROR_MAX 256 /* request ids parked: above reorder_capacity (32) */
#define PARK_HELD_MAX   256 /* FetchBlocks held at start; more go straight on */
/* What an envelope adds to a Park: a parked range must fit one bus message. */
#define PARK_ENV_MARGIN (64 * 1024)

typedef struct {
    uint8_t *data; /* a packed FetchBlocks (owned) */
    size_t len;
} held_t;

struct pm_park {
    bool started;      /* pm_park_start ran (asked_at is our start) */
    bool holding;      /* fetches are held (from start until released) */
    bool waiting;      /* GetParked asked, not answered, not timed out */
    uint64_t ask_corr; /* its corr_id */
    int64_t asked_at;  /* mono ms */
    uint32_t wait_ms;  /* how long fetches are held for the answer */
    /* The head BlockProcessor dropped parked ranges by (Parked.head_*):
     * what it dropped is committed even if our own head read is older. */
    uint64_t bp_head;
    uint8_t bp_head_hash[ALYS_HASH_LEN];
    uint64_t ids[PARK_MIRROR_MAX];
    size_t n_ids;
    held_t held[PARK_HELD_MAX];
    size_t n_held, next_held;
};

pm_park_t *pm_park_new(const alys_config_t *cfg)
{
    pm_park_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    /* A quarter of SyncActor's request timeout: held fetches keep most of
     * theirs, and a BlockProcessor that answers at all answers in ms. */
    self->wait_ms = cfg->request_timeout_ms / 4 ? cfg->request_timeout_ms / 4 : 1;
    return self;
}

void pm_park_destroy(pm_park_t **self_p)
{
    pm_park_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n_held; i++)
        free(self->held[i].data);
    free(self);
    *self_p = NULL;
}

static int send_park_msg(pm_t *pm, Alys__Processor__ProcessorMsg *msg, uint64_t corr_id)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = msg;
    env.corr_id = corr_id;
    return pm->port.send(pm->port.ctx, PM_TO_PARK, &env);
}

static void count(pm_t *pm, const char *what)
{
    char labels[64];
    snprintf(labels, sizeof labels, "event=\"%s\"", what);
    alys_metric_add(pm->metrics, "alys_peer_park_total", labels,
                    "Reorder buffer copies at BlockProcessor: parked, skipped (too big, mirror "
                    "full), re-adopted at start, fetches answered from the buffer",
                    1);
}

/* ---- the mirror ------------------------------------------------------------------ */

static bool mirrored(const pm_park_t *self, uint64_t id, size_t *at)
{
    for (size_t i = 0; i < self->n_ids; i++) {
        if (self->ids[i] == id) {
            if (at)
                *at = i;
            return true;
        }
    }
    return false;
}

static bool mirror_add(pm_park_t *self, uint64_t id)
{
    if (mirrored(self, id, NULL))
        return true;
    if (self->n_ids >= PARK_MIRROR_MAX)
        return false;
    self->ids[self->n_ids++] = id;
    return true;
}

/* Hashes as the wire's repeated bytes, pointing into expected (n items). */
static ProtobufCBinaryData *hashes_of(const uint8_t (*expected)[ALYS_HASH_LEN], size_t n)
{
    ProtobufCBinaryData *h = calloc(n, sizeof *h);
    for (size_t i = 0; h && i < n; i++)
        h[i] = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) expected[i]};
    return h;
}

void pm_park_added(pm_t *pm, const reorder_batch_t *b)
{
    pm_park_t *self = pm->park;
    if (self->n_ids >= PARK_MIRROR_MAX && !mirrored(self, b->request_id, NULL)) {
        count(pm, "skipped");
        return;
    }
    Alys__Processor__Park p = ALYS__PROCESSOR__PARK__INIT;
    p.request_id = b->request_id;
    p.peer_id = (char *) b->peer_id;
    p.start = b->start;
    p.n_blocks = b->n;
    p.blocks = (ProtobufCBinaryData *) b->blocks;
    ProtobufCBinaryData *hashes = b->expected ? hashes_of(b->expected, b->n) : NULL;
    if (b->expected && !hashes)
        return; /* out of memory: not parked, only a saving lost */
    p.n_expected_hashes = hashes ? b->n : 0;
    p.expected_hashes = hashes;
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PARK;
    msg.park = &p;
    if (alys__processor__processor_msg__get_packed_size(&msg) > ALYS_MAX_MSG_BYTES - PARK_ENV_MARGIN) {
        count(pm, "skipped"); /* a full 8 MiB download: re-downloaded if we die */
    } else if (send_park_msg(pm, &msg, 0) == 0) {
        mirror_add(self, b->request_id);
        count(pm, "parked");
    }
    free(hashes);
}

static void send_unpark(pm_t *pm, uint64_t *ids, size_t n)
{
    Alys__Processor__Unpark u = ALYS__PROCESSOR__UNPARK__INIT;
    u.n_request_ids = n;
    u.request_ids = ids;
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_UNPARK;
    msg.unpark = &u;
    if (send_park_msg(pm, &msg, 0) != 0)
        log_debug("cannot unpark %zu ranges (BlockProcessor drops them when committed)", n);
}

void pm_park_sync(pm_t *pm)
{
    pm_park_t *self = pm->park;
    if (self->n_ids == 0)
        return;
    size_t cap = reorder_capacity(pm->reorder);
    reorder_ref_t *held = calloc(cap, sizeof *held);
    if (!held)
        return; /* out of memory: compared again at the next change */
    size_t n = reorder_list(pm->reorder, held, cap);
    uint64_t gone[PARK_MIRROR_MAX];
    size_t n_gone = 0;
    for (size_t i = 0; i < self->n_ids;) {
        bool kept = false;
        for (size_t k = 0; k < n && k < cap && !kept; k++)
            kept = held[k].request_id == self->ids[i];
        if (kept) {
            i++;
            continue;
        }
        gone[n_gone++] = self->ids[i];
        self->ids[i] = self->ids[--self->n_ids];
    }
    free(held);
    if (n_gone)
        send_unpark(pm, gone, n_gone);
}

/* ---- at start: take the parked ranges back ---------------------------------------- */

void pm_park_start(pm_t *pm)
{
    pm_park_t *self = pm->park;
    Alys__Processor__GetParked g = ALYS__PROCESSOR__GET_PARKED__INIT;
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_GET_PARKED;
    msg.get_parked = &g;
    self->ask_corr = alys_next_corr_id();
    self->asked_at = pm_mono(pm);
    self->waiting = send_park_msg(pm, &msg, self->ask_corr) == 0;
    self->holding = true;
    self->started = true;
}

bool pm_park_waiting(const pm_t *pm)
{
    return pm->park->holding;
}

bool pm_park_release_due(pm_t *pm)
{
    pm_park_t *self = pm->park;
    if (!self->holding)
        return false;
    bool late = pm_mono(pm) - self->asked_at >= (int64_t) self->wait_ms;
    if (late && self->waiting) {
        self->waiting = false; /* ask_corr stays: a late answer is unparked */
        log_warn("block processor did not answer GetParked in %u ms: downloading again",
                 self->wait_ms);
    }
    if (self->waiting || (!pm->have_head && !late))
        return false;
    self->holding = false;
    return true;
}

/* n hashes, contiguous, for a range of count blocks (NULL and *ok when
 * n == 0; !*ok when they are not one 32-byte hash per block, or out of
 * memory). Free with free(). */
static uint8_t (*contiguous_hashes(const ProtobufCBinaryData *h, size_t n, size_t count,
                                   bool *ok))[ALYS_HASH_LEN]
{
    *ok = true;
    if (n == 0)
        return NULL;
    *ok = false;
    if (n != count)
        return NULL;
    uint8_t(*out)[ALYS_HASH_LEN] = calloc(count, ALYS_HASH_LEN);
    for (size_t i = 0; out && i < count; i++) {
        if (h[i].len != ALYS_HASH_LEN) {
            free(out);
            return NULL;
        }
        memcpy(out[i], h[i].data, ALYS_HASH_LEN);
    }
    *ok = out != NULL;
    return out;
}

/* One parked range back into the buffer: true if it was taken. */
static bool adopt(pm_t *pm, const Alys__Processor__Park *p)
{
    bool ok = false;
    uint8_t(*expected)[ALYS_HASH_LEN] = contiguous_hashes(p->expected_hashes,
                                                          p->n_expected_hashes, p->n_blocks, &ok);
    if (!ok || p->n_blocks == 0)
        return false;
    reorder_batch_t b = {.request_id = p->request_id,
                         .peer_id = p->peer_id ? p->peer_id : "",
                         .start = p->start,
                         .blocks = p->blocks,
                         .n = p->n_blocks,
                         .expected = (const uint8_t(*)[ALYS_HASH_LEN]) expected};
    /* Drops here are other parked ranges (no one waits on them): the
     * mirror forgets them at the next pm_park_sync. */
    reorder_ref_t drops[8];
    size_t nd = 0;
    bool taken = reorder_insert(pm->reorder, &b, drops, 8, &nd) == REORDER_ACCEPTED &&
                 mirror_add(pm->park, p->request_id);
    free(expected);
    return taken;
}

static void adopt_all(pm_t *pm, const Alys__Processor__Parked *parked, bool late)
{
    uint64_t refused[PARK_MIRROR_MAX];
    size_t n_refused = 0, n_taken = 0, blocks = 0;
    for (size_t i = 0; i < parked->n_ranges; i++) {
        const Alys__Processor__Park *p = parked->ranges[i];
        if (!late && adopt(pm, p)) {
            n_taken++;
            blocks += p->n_blocks;
            count(pm, "readopted");
        } else if (n_refused < PARK_MIRROR_MAX) {
            refused[n_refused++] = p->request_id;
        }
    }
    if (n_refused)
        send_unpark(pm, refused, n_refused);
    log_info("%zu parked ranges (%zu blocks) taken back from the block processor%s%s", n_taken,
             blocks, late ? " (answer came after the wait: none taken)" : "",
             parked->truncated ? "; more were parked than one message holds" : "");
}

bool pm_park_on_reply(pm_t *pm, const alys_env_t *env)
{
    pm_park_t *self = pm->park;
    if (!env->reply || env->corr_id != self->ask_corr || self->ask_corr == 0)
        return false;
    bool late = !self->waiting;
    self->waiting = false;
    self->ask_corr = 0;
    if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR &&
        env->processor->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PARKED) {
        const Alys__Processor__Parked *p = env->processor->parked;
        if (!late && p->head_hash.len == ALYS_HASH_LEN) {
            self->bp_head = p->head_height;
            memcpy(self->bp_head_hash, p->head_hash.data, ALYS_HASH_LEN);
        }
        adopt_all(pm, p, late);
    } else
        log_info("block processor has no parked ranges for us (%s)", alys_env_body_name(env));
    return true;
}

/* ---- SyncActor's fetches ------------------------------------------------------------ */

/* fb is held in the buffer already: it takes that entry. */
static bool from_buffer(pm_t *pm, const Alys__Peer__FetchBlocks *fb)
{
    bool ok = false;
    uint8_t(*expected)[ALYS_HASH_LEN] = contiguous_hashes(fb->expected_hashes,
                                                          fb->n_expected_hashes, fb->count, &ok);
    reorder_ref_t old;
    bool hit = ok && reorder_rekey(pm->reorder, fb->start, fb->count,
                                   (const uint8_t(*)[ALYS_HASH_LEN]) expected, fb->request_id, &old);
    free(expected);
    if (!hit)
        return false;
    pm_park_t *self = pm->park;
    size_t at = 0;
    if (mirrored(self, old.request_id, &at) && old.request_id != fb->request_id) {
        Alys__Processor__ParkRekey rk = ALYS__PROCESSOR__PARK_REKEY__INIT;
        rk.old_request_id = old.request_id;
        rk.new_request_id = fb->request_id;
        Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
        msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PARK_REKEY;
        msg.park_rekey = &rk;
        if (send_park_msg(pm, &msg, 0) == 0)
            self->ids[at] = fb->request_id;
        /* else: the mirror keeps the old id, unparked at the next sync */
    }
    log_info("range [%llu,+%u) for request %llu held already (request %llu from %s): not downloaded",
             (unsigned long long) fb->start, fb->count, (unsigned long long) fb->request_id,
             (unsigned long long) old.request_id, old.peer_id);
    count(pm, "answered_from_buffer");
    pm_result_t res = {.outcome = ALYS__PEER__OUTCOME__OK,
                       .delivered = fb->count,
                       .detail = "held in the reorder buffer"};
    pm_report(pm, false, false, fb->request_id, old.peer_id, fb->start, &res);
    return true;
}

static bool hold(pm_park_t *self, const Alys__Peer__FetchBlocks *fb)
{
    if (self->n_held >= PARK_HELD_MAX)
        return false;
    size_t len = alys__peer__fetch_blocks__get_packed_size(fb);
    uint8_t *data = malloc(len ? len : 1);
    if (!data)
        return false;
    alys__peer__fetch_blocks__pack(fb, data);
    self->held[self->n_held++] = (held_t){data, len};
    return true;
}


/* Within wait_ms of our start: SyncActor's re-issues of what it had in
 * flight when we died are still coming. */
static bool starting(const pm_t *pm)
{
    const pm_park_t *self = pm->park;
    return self->started && pm_mono(pm) - self->asked_at < (int64_t) self->wait_ms;
}

/* A fetch at our start wholly at or below our head, or the head BlockProcessor
 * dropped parked ranges by (it may be newer than our read): committed
 * while we were down. */
static bool committed(pm_t *pm, const Alys__Peer__FetchBlocks *fb)
{
    const pm_park_t *self = pm->park;
    bool bp_newer = self->bp_head > (pm->have_head ? pm->head_height : 0);
    uint64_t head = bp_newer ? self->bp_head : pm->head_height;
    const uint8_t *hash = bp_newer ? self->bp_head_hash : pm->head_hash;
    if ((!pm->have_head && !bp_newer) || fb->count == 0 || fb->start + fb->count - 1 > head)
        return false;
    log_info("range [%llu,+%u) for request %llu is committed already (head %llu): not downloaded",
             (unsigned long long) fb->start, fb->count, (unsigned long long) fb->request_id,
             (unsigned long long) head);
    count(pm, "committed_already");
    const char *peer = fb->peer_id ? fb->peer_id : "";
    pm_result_t res = {.outcome = ALYS__PEER__OUTCOME__OK,
                       .delivered = fb->count,
                       .detail = "committed already"};
    pm_report(pm, false, false, fb->request_id, peer, fb->start, &res);
    Alys__Peer__BatchOutcome bo = ALYS__PEER__BATCH_OUTCOME__INIT;
    bo.request_id = fb->request_id;
    bo.peer_id = (char *) peer;
    bo.start = fb->start;
    bo.committed = fb->count;
    bo.head_height = head;
    bo.head_hash = (ProtobufCBinaryData){ALYS_HASH_LEN, (uint8_t *) hash};
    Alys__Peer__PeerMsg msg = ALYS__PEER__PEER_MSG__INIT;
    msg.msg_case = ALYS__PEER__PEER_MSG__MSG_BATCH_OUTCOME;
    msg.batch_outcome = &bo;
    if (pm_send_sync_peer(pm, &msg) != 0)
        log_warn("cannot report request %llu to sync", (unsigned long long) fb->request_id);
    return true;
}

bool pm_park_on_fetch(pm_t *pm, const Alys__Peer__FetchBlocks *fb)
{
    if (fb->to_requester || (fb->request_id & PM_GOSSIP_REQ_BIT))
        return false; /* its blocks never enter the buffer / not SyncActor's */
    if (pm->park->holding && hold(pm->park, fb))
        return true;
    /* Only SyncActor's re-issues after our restart: in steady state a
     * re-fetch of a range we hold means SyncActor wants another copy (the
     * simulator's seed 164, one dropping peer, stalled for good when such
     * re-fetches were answered with the copy held). */
    if (!starting(pm))
        return false;
    return pm_park_on_released(pm, fb); /* judged as a held one */
}

bool pm_park_on_released(pm_t *pm, const Alys__Peer__FetchBlocks *fb)
{
    if (fb->to_requester || (fb->request_id & PM_GOSSIP_REQ_BIT))
        return false;
    if (committed(pm, fb) || from_buffer(pm, fb))
        return true;
    /* What a restart costs: ranges that were on the wire (or whose copy
     * never reached BlockProcessor) are downloaded again. */
    log_info("range [%llu,+%u) for request %llu was neither held nor committed: downloading it again",
             (unsigned long long) fb->start, fb->count, (unsigned long long) fb->request_id);
    count(pm, "downloaded_again");
    return false;
}

Alys__Peer__FetchBlocks *pm_park_next_held(pm_t *pm)
{
    pm_park_t *self = pm->park;
    if (self->holding)
        return NULL;
    while (self->next_held < self->n_held) {
        held_t *h = &self->held[self->next_held++];
        Alys__Peer__FetchBlocks *fb = alys__peer__fetch_blocks__unpack(NULL, h->len, h->data);
        free(h->data);
        h->data = NULL;
        if (fb)
            return fb;
    }
    self->n_held = self->next_held = 0;
    return NULL;
}
