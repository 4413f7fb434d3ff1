/*  alysctl import FILE [--batch N] [--window N]: stream an export file
 *  (common/chain/export.h) into the running node through BlockProcessor.
 *
 *  The file is read forward once. Blocks go out in ProcessBatch messages of
 *  up to --batch blocks (256) and BATCH_BYTES_MAX bytes, with up to --window
 *  batches (3) awaiting their BatchProcessed; a batch stays in memory until
 *  it is acknowledged, so memory is bounded by window x batch.
 *
 *  Surviving restarts. Anything that may have lost batches in flight (the
 *  processor's socket reconnects after a restart, no answer for
 *  REPLY_TIMEOUT_MS, a busy or transient refusal, a failure that only says
 *  earlier blocks are missing) triggers a resync: read the head from
 *  StorageActor, drop what is already committed, resend the rest in order.
 *  Resends of an unchanged batch keep its batch_id, so a processor that
 *  still has it answers once. Storage restarts are the processor's business.
 *
 *  Output: a progress bar on a terminal (blocks, blocks/s, ETA), plain lines
 *  every PLAIN_EVERY_MS otherwise; then a summary, with machine-readable
 *  lines "head_height N", "head_hash HEX", "state_root HEX" (and
 *  "failed_height N", "reason NAME" after an invalid block) on stdout.
 *
 *  Exit: 0 imported, 1 the file has an invalid block (nothing after it was
 *  committed), 2 usage, 3 anything else (file, node unreachable, genesis).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alysctl.h"
#include "chain/export.h"
#include "cmd_client.h"
#include "log.h"
#include "sockmon.h"
#include "util.h"

#define BATCH_BLOCKS_DEFAULT 256
#define BATCH_BYTES_MAX      (4u * 1024 * 1024)
#define WINDOW_DEFAULT       3
#define WINDOW_MAX           16
#define REPLY_TIMEOUT_MS     30000
#define BUSY_BACKOFF_MS      100
#define RETRY_BACKOFF_MS     500
#define STORAGE_WAIT_MS      60000
#define NO_PROGRESS_MS       180000 /* give up when the head has not moved this long */
#define TTY_EVERY_MS         200
#define PLAIN_EVERY_MS       2000

enum { IMPORT_OK = 0, IMPORT_INVALID = 1, IMPORT_USAGE = 2, IMPORT_ERROR = 3 };

/* One ProcessBatch: the blocks it holds until acknowledged. */
typedef struct {
    uint64_t id;
    uint64_t first; /* height of blocks[0] */
    size_t n;
    ProtobufCBinaryData *blocks; /* owned */
    size_t bytes;
    uint64_t corr_id; /* of the last send; 0 = (re)send it */
    int64_t sent_ms;
    bool done;
} ibatch_t;

typedef struct {
    uint64_t height;
    uint8_t hash[ALYS_HASH_LEN];
    bool has_hash;
    char reason[48];
    char detail[200];
    int32_t tx_index;
} failure_t;

typedef struct {
    const alys_config_t *cfg;
    const char *path;
    uint32_t batch_blocks;
    uint32_t window;
    alys_export_reader_t *reader;
    uint64_t next_height;      /* height of the next record */
    ProtobufCBinaryData carry; /* a record read but not yet batched */
    bool eof;
    bool read_failed;
    char read_err[256];
    alysctl_client_t *storage;
    zsock_t *proc;
    zsock_t *proc_mon;
    zpoller_t *poller;
    ibatch_t *win[WINDOW_MAX];
    size_t nwin;
    uint64_t next_id;
    bool proc_lost;    /* disconnected since the last connect */
    int64_t resync_at; /* 0 = none due */
    uint64_t start_head;
    int64_t progress_ms; /* when the head last moved */
    uint64_t head;
    uint8_t head_hash[ALYS_HASH_LEN];
    uint8_t state_root[ALYS_HASH_LEN];
    uint64_t target; /* last height in the file, 0 = unknown */
    int64_t t0;
    int64_t last_print;
    bool tty;
    bool invalid;
    failure_t fail;
} import_t;

/* ---------------------------------------------------------------- batches */

static void batch_free(ibatch_t **b_p)
{
    ibatch_t *b = *b_p;
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->blocks[i].data);
    free(b->blocks);
    free(b);
    *b_p = NULL;
}

/* Next record, or the carried one. 1 = got one, 0 = end, -1 = read error. */
static int next_record(import_t *im, ProtobufCBinaryData *out)
{
    if (im->carry.data) {
        *out = im->carry;
        im->carry = (ProtobufCBinaryData){0, NULL};
        return 1;
    }
    for (;;) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        int rc = alys_export_reader_next(im->reader, &bytes, &len, im->read_err, sizeof im->read_err);
        if (rc <= 0)
            return rc;
        /* Already in the chain (a resumed import): skip. */
        if (im->next_height++ <= im->head) {
            free(bytes);
            continue;
        }
        *out = (ProtobufCBinaryData){len, bytes};
        return 1;
    }
}

/* Read up to batch_blocks records (and BATCH_BYTES_MAX bytes). NULL at the
 * end of the file or on an error (then im->eof / read_failed say which). */
static ibatch_t *read_batch(import_t *im)
{
    ibatch_t *b = calloc(1, sizeof *b);
    if (!b || !(b->blocks = calloc(im->batch_blocks, sizeof *b->blocks))) {
        free(b);
        snprintf(im->read_err, sizeof im->read_err, "out of memory");
        im->read_failed = true;
        return NULL;
    }
    while (b->n < im->batch_blocks) {
        ProtobufCBinaryData rec;
        int rc = next_record(im, &rec);
        if (rc <= 0) {
            im->eof = rc == 0;
            im->read_failed = rc < 0;
            break;
        }
        if (b->n > 0 && b->bytes + rec.len > BATCH_BYTES_MAX) {
            im->carry = rec; /* starts the next batch */
            break;
        }
        if (b->n == 0)
            b->first = im->next_height - 1; /* rec is the last record read */
        b->blocks[b->n++] = rec;
        b->bytes += rec.len;
    }
    if (b->n == 0) {
        batch_free(&b);
        return NULL;
    }
    b->id = ++im->next_id;
    return b;
}

static void fill_window(import_t *im)
{
    while (im->nwin < im->window && !im->eof && !im->read_failed) {
        ibatch_t *b = read_batch(im);
        if (!b)
            return;
        im->win[im->nwin++] = b;
    }
}

static int send_batch(import_t *im, ibatch_t *b)
{
    Alys__Processor__ProcessBatch pb = ALYS__PROCESSOR__PROCESS_BATCH__INIT;
    pb.batch_id = b->id;
    pb.n_blocks = b->n;
    pb.blocks = b->blocks;
    pb.origin = "import";
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_PROCESS_BATCH;
    msg.process_batch = &pb;
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.corr_id = alys_next_corr_id();
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = &msg;
    if (alys_send(im->proc, &env) != 0)
        return -1;
    b->corr_id = env.corr_id;
    b->sent_ms = alys_mono_ms();
    return 0;
}

/* Send what is unsent, in order; stop at the first that cannot go. */
static void send_pending(import_t *im)
{
    if (im->resync_at)
        return;
    for (size_t i = 0; i < im->nwin; i++)
        if (!im->win[i]->done && im->win[i]->corr_id == 0 && send_batch(im, im->win[i]) != 0)
            return;
}

static void pop_done(import_t *im)
{
    while (im->nwin > 0 && im->win[0]->done) {
        batch_free(&im->win[0]);
        memmove(im->win, im->win + 1, (im->nwin - 1) * sizeof *im->win);
        im->nwin--;
    }
}

/* ---------------------------------------------------------------- storage */

static int read_head(import_t *im, uint8_t genesis[ALYS_HASH_LEN])
{
    int64_t deadline = alys_mono_ms() + STORAGE_WAIT_MS;
    while (alys_mono_ms() < deadline && !zsys_interrupted) {
        Alys__Storage__GetHead gh = ALYS__STORAGE__GET_HEAD__INIT;
        Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
        msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
        msg.get_head = &gh;
        alys_env_t *rep = NULL;
        if (alysctl_storage_request(im->storage, NULL, &msg, 2000, &rep) != 0)
            continue;
        const Alys__Storage__Head *h = rep->body_case == ALYS__BUS__ENVELOPE__BODY_STORAGE &&
                                               rep->storage->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_HEAD
                                           ? rep->storage->head
                                           : NULL;
        int rc = h && h->hash.len == ALYS_HASH_LEN && h->genesis_hash.len == ALYS_HASH_LEN ? 0 : -1;
        if (rc == 0) {
            im->head = h->height;
            memcpy(im->head_hash, h->hash.data, ALYS_HASH_LEN);
            if (h->state_root.len == ALYS_HASH_LEN)
                memcpy(im->state_root, h->state_root.data, ALYS_HASH_LEN);
            if (genesis)
                memcpy(genesis, h->genesis_hash.data, ALYS_HASH_LEN);
        }
        alys_env_free(&rep);
        if (rc == 0)
            return 0;
        zclock_sleep(200);
    }
    fprintf(stderr, "\nalysctl: storage (%s) did not tell its head within %d s\n",
            im->cfg->ep_storage, STORAGE_WAIT_MS / 1000);
    return -1;
}

/* Drop from b what the chain already has. Returns true if nothing is left. */
static bool trim(import_t *im, ibatch_t *b)
{
    b->corr_id = 0;
    if (b->first > im->head)
        return false;
    uint64_t k = im->head - b->first + 1;
    if (k >= b->n)
        return true;
    for (size_t i = 0; i < k; i++)
        free(b->blocks[i].data);
    memmove(b->blocks, b->blocks + k, (b->n - k) * sizeof *b->blocks);
    b->n -= k;
    b->first += k;
    b->id = ++im->next_id; /* new content, new id */
    return false;
}

/* Forget every send; from storage's head, resend what is not committed. */
static int resync(import_t *im)
{
    im->resync_at = 0;
    if (read_head(im, NULL) != 0)
        return -1;
    size_t kept = 0;
    for (size_t i = 0; i < im->nwin; i++) {
        if (trim(im, im->win[i]))
            batch_free(&im->win[i]);
        else
            im->win[kept++] = im->win[i];
    }
    im->nwin = kept;
    if (im->nwin > 0 && im->win[0]->first > im->head + 1) {
        fprintf(stderr,
                "\nalysctl: the node's head %" PRIu64 " is below block %" PRIu64
                ", which it had acknowledged\n",
                im->head, im->win[0]->first - 1);
        return -1;
    }
    return 0;
}

static void resync_later(import_t *im, int delay_ms)
{
    int64_t at = alys_mono_ms() + delay_ms;
    if (!im->resync_at || at < im->resync_at)
        im->resync_at = at;
}

/* ---------------------------------------------------------------- replies */

static ibatch_t *batch_of(import_t *im, uint64_t corr_id)
{
    for (size_t i = 0; i < im->nwin; i++)
        if (im->win[i]->corr_id == corr_id && !im->win[i]->done)
            return im->win[i];
    return NULL;
}

static void note_head(import_t *im, const Alys__Processor__BatchProcessed *r)
{
    if (r->head_height < im->head || r->head_hash.len != ALYS_HASH_LEN)
        return;
    if (r->head_height > im->head)
        im->progress_ms = alys_mono_ms();
    im->head = r->head_height;
    memcpy(im->head_hash, r->head_hash.data, ALYS_HASH_LEN);
    if (r->state_root.len == ALYS_HASH_LEN)
        memcpy(im->state_root, r->state_root.data, ALYS_HASH_LEN);
}

static void record_failure(import_t *im, const Alys__Processor__BatchProcessed *r)
{
    failure_t *f = &im->fail;
    im->invalid = true;
    f->height = r->failed_height;
    f->has_hash = r->failed_hash.len == ALYS_HASH_LEN;
    if (f->has_hash)
        memcpy(f->hash, r->failed_hash.data, ALYS_HASH_LEN);
    snprintf(f->reason, sizeof f->reason, "%s", r->reason);
    snprintf(f->detail, sizeof f->detail, "%s", r->detail);
    f->tx_index = r->tx_index;
}

static void on_processed(import_t *im, ibatch_t *b, const Alys__Processor__BatchProcessed *r)
{
    note_head(im, r);
    if (!r->failed) {
        b->done = true;
        pop_done(im);
        return;
    }
    /* An earlier batch of ours is not in yet (this one overtook it, e.g.
     * after a restart lost it), or the node had a problem of its own: not
     * the block's fault. Resend from the head. */
    bool overtook = b != im->win[0] && r->head_height + 1 < b->first;
    if (strcmp(r->reason, "internal_error") == 0 || overtook) {
        resync_later(im, RETRY_BACKOFF_MS);
        return;
    }
    record_failure(im, r);
}

/* An Error reply. Returns -1 when importing cannot go on. */
static int on_error(import_t *im, const Alys__Bus__Error *e)
{
    if (e->code == ALYS_ERR_BUSY) {
        resync_later(im, BUSY_BACKOFF_MS);
        return 0;
    }
    if (e->code == ALYS_ERR_BAD_REQUEST || e->code == ALYS_ERR_INVALID) {
        fprintf(stderr, "\nalysctl: the processor refused a batch: %s\n", e->message);
        return -1;
    }
    log_warn("the processor could not take a batch now (%s): retrying", e->message);
    resync_later(im, RETRY_BACKOFF_MS);
    return 0;
}

static int on_reply(import_t *im)
{
    alys_env_t *env = NULL;
    if (alys_recv(im->proc, &env) != 0)
        return 0;
    ibatch_t *b = env->reply ? batch_of(im, env->corr_id) : NULL;
    int rc = 0;
    if (!b)
        ; /* an answer to a send forgotten by a resync */
    else if (env->body_case == ALYS__BUS__ENVELOPE__BODY_ERROR)
        rc = on_error(im, env->error);
    else if (env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR &&
             env->processor->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_BATCH_PROCESSED)
        on_processed(im, b, env->processor->batch_processed);
    alys_env_free(&env);
    return rc;
}

static void on_proc_event(import_t *im)
{
    int ev = sockmon_read(im->proc_mon, NULL, 0);
    if (ev == ZMQ_EVENT_DISCONNECTED) {
        im->proc_lost = true;
    } else if (ev == ZMQ_EVENT_CONNECTED && im->proc_lost) {
        /* A restarted processor lost whatever it had of ours. */
        im->proc_lost = false;
        resync_later(im, 0);
    }
}

/* Returns -1 when the node has made no progress for NO_PROGRESS_MS. */
static int check_timeouts(import_t *im)
{
    int64_t now = alys_mono_ms();
    if (now - im->progress_ms > NO_PROGRESS_MS) {
        fprintf(stderr, "\nalysctl: no block committed for %d s: giving up at head %" PRIu64 "\n",
                NO_PROGRESS_MS / 1000, im->head);
        return -1;
    }
    for (size_t i = 0; i < im->nwin; i++) {
        ibatch_t *b = im->win[i];
        if (b->done || !b->corr_id)
            continue;
        if (now - b->sent_ms > REPLY_TIMEOUT_MS) {
            log_warn("no answer for blocks %" PRIu64 ".. in %d s: resending", b->first,
                     REPLY_TIMEOUT_MS / 1000);
            resync_later(im, 0);
        }
        return 0; /* only the oldest outstanding one matters */
    }
    return 0;
}

/* ---------------------------------------------------------------- output */

static void fmt_eta(double secs, char *out, size_t n)
{
    if (secs < 0 || secs > 359999)
        snprintf(out, n, "--:--");
    else
        snprintf(out, n, "%d:%02d:%02d", (int) secs / 3600, ((int) secs / 60) % 60, (int) secs % 60);
}

static void progress(import_t *im, bool final)
{
    int64_t now = alys_mono_ms();
    if (!final && now - im->last_print < (im->tty ? TTY_EVERY_MS : PLAIN_EVERY_MS))
        return;
    im->last_print = now;
    uint64_t done = im->head > im->start_head ? im->head - im->start_head : 0;
    uint64_t total = im->target > im->start_head ? im->target - im->start_head : 0;
    double secs = (double) (now - im->t0) / 1000.0;
    double rate = secs > 0 ? (double) done / secs : 0;
    char eta[32];
    fmt_eta(rate > 0 && total >= done ? (double) (total - done) / rate : -1, eta, sizeof eta);
    if (!im->tty) {
        printf("import: %" PRIu64 "/%" PRIu64 " blocks, head %" PRIu64 ", %.0f blocks/s, ETA %s\n",
               done, total, im->head, rate, eta);
        fflush(stdout);
        return;
    }
    char bar[31];
    int filled = total ? (int) (30 * (done > total ? total : done) / total) : 0;
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    printf("\r[%s] %" PRIu64 "/%" PRIu64 " blocks  %.0f blocks/s  ETA %s\033[K%s", bar, done,
           total, rate, eta, final ? "\n" : "");
    fflush(stdout);
}

static void print_state(const import_t *im)
{
    char hash[2 * ALYS_HASH_LEN + 1], root[2 * ALYS_HASH_LEN + 1];
    alys_hex(im->head_hash, ALYS_HASH_LEN, hash);
    alys_hex(im->state_root, ALYS_HASH_LEN, root);
    printf("head_height %" PRIu64 "\nhead_hash %s\nstate_root %s\n", im->head, hash, root);
}

static void summary(const import_t *im)
{
    double secs = (double) (alys_mono_ms() - im->t0) / 1000.0;
    uint64_t done = im->head > im->start_head ? im->head - im->start_head : 0;
    char range[64] = "";
    if (done > 0)
        snprintf(range, sizeof range, " (%" PRIu64 "..%" PRIu64 ")", im->start_head + 1, im->head);
    printf("imported %" PRIu64 " blocks%s in %.2f s: %.0f blocks/s\n", done, range, secs,
           secs > 0 ? (double) done / secs : 0);
    print_state(im);
    if (!im->invalid)
        return;
    const failure_t *f = &im->fail;
    char hash[2 * ALYS_HASH_LEN + 1] = "-";
    if (f->has_hash)
        alys_hex(f->hash, ALYS_HASH_LEN, hash);
    char tx[32] = "";
    if (f->tx_index >= 0)
        snprintf(tx, sizeof tx, " (tx %d)", f->tx_index);
    fprintf(stderr,
            "alysctl: import failed at height %" PRIu64 " (block %s): %s%s: %s\n"
            "alysctl: blocks up to %" PRIu64 " are committed, nothing after\n",
            f->height, hash, f->reason, tx, f->detail, im->head);
    printf("failed_height %" PRIu64 "\nreason %s\n", f->height, f->reason);
}

/* ---------------------------------------------------------------- setup */

static int parse_count(const char *opt, const char *s, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = (s[0] >= '0' && s[0] <= '9') ? strtoul(s, &end, 10) : 0;
    if (!end || *end || errno == ERANGE || v == 0 || v > max) {
        fprintf(stderr, "alysctl import: %s %s: want 1..%u\n", opt, s, max);
        return -1;
    }
    *out = (uint32_t) v;
    return 0;
}

static int parse_args(import_t *im, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int rc = 0;
        if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            rc = parse_count("--batch", argv[++i], 1024, &im->batch_blocks);
        else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc)
            rc = parse_count("--window", argv[++i], WINDOW_MAX, &im->window);
        else if ((argv[i][0] != '-' || strcmp(argv[i], "-") == 0) && !im->path)
            im->path = argv[i];
        else
            rc = -1;
        if (rc != 0)
            return -1;
    }
    return im->path ? 0 : -1;
}

static int open_file(import_t *im)
{
    char err[256];
    im->reader = alys_export_reader_new(im->path, err, sizeof err);
    if (!im->reader) {
        fprintf(stderr, "alysctl: %s\n", err);
        return -1;
    }
    const alys_export_header_t *h = alys_export_reader_header(im->reader);
    im->next_height = h->first_height;
    im->target = h->block_count ? h->first_height + h->block_count - 1 : 0;
    return 0;
}

static int connect_node(import_t *im)
{
    uint8_t genesis[ALYS_HASH_LEN];
    im->storage = alysctl_client_new(im->cfg->ep_storage);
    if (!im->storage || read_head(im, genesis) != 0)
        return -1;
    const alys_export_header_t *h = alys_export_reader_header(im->reader);
    if (memcmp(genesis, h->genesis_hash, ALYS_HASH_LEN) != 0) {
        char a[2 * ALYS_HASH_LEN + 1], b[2 * ALYS_HASH_LEN + 1];
        alys_hex(h->genesis_hash, ALYS_HASH_LEN, a);
        alys_hex(genesis, ALYS_HASH_LEN, b);
        fprintf(stderr, "alysctl: %s belongs to genesis %.16s.., the node runs genesis %.16s..\n",
                im->path, a, b);
        return -1;
    }
    if (h->first_height > im->head + 1) {
        fprintf(stderr,
                "alysctl: %s starts at height %" PRIu64 " but the node's head is %" PRIu64
                ": blocks %" PRIu64 "..%" PRIu64 " are missing\n",
                im->path, h->first_height, im->head, im->head + 1, h->first_height - 1);
        return -1;
    }
    char id[64];
    snprintf(id, sizeof id, "alysctl-import-%d", (int) getpid());
    im->proc = alys_dealer_connect(im->cfg->ep_block_processor, id);
    if (!im->proc)
        return -1;
    im->proc_mon = sockmon_new(im->proc, "import", ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    im->poller = im->proc_mon ? zpoller_new(im->proc, im->proc_mon, NULL) : NULL;
    return im->poller ? 0 : -1;
}

static void cleanup(import_t *im)
{
    for (size_t i = 0; i < im->nwin; i++)
        batch_free(&im->win[i]);
    free(im->carry.data);
    zpoller_destroy(&im->poller);
    zsock_destroy(&im->proc_mon);
    zsock_destroy(&im->proc);
    alysctl_client_destroy(&im->storage);
    alys_export_reader_destroy(&im->reader);
}

/* ---------------------------------------------------------------- loop */

static int step(import_t *im)
{
    void *which = zpoller_wait(im->poller, 100);
    if (which == im->proc && on_reply(im) != 0)
        return -1;
    if (which == im->proc_mon)
        on_proc_event(im);
    if (check_timeouts(im) != 0)
        return -1;
    if (im->resync_at && alys_mono_ms() >= im->resync_at && resync(im) != 0)
        return -1;
    progress(im, false);
    return 0;
}

static int run(import_t *im)
{
    while (!zsys_interrupted) {
        fill_window(im);
        send_pending(im);
        if (im->invalid || (im->nwin == 0 && (im->eof || im->read_failed)))
            break;
        if (step(im) != 0)
            return IMPORT_ERROR;
    }
    progress(im, true);
    if (zsys_interrupted) {
        fprintf(stderr, "alysctl: interrupted at head %" PRIu64 "\n", im->head);
        return IMPORT_ERROR;
    }
    summary(im);
    if (im->invalid)
        return IMPORT_INVALID;
    if (im->read_failed) {
        fprintf(stderr, "alysctl: %s\n", im->read_err);
        return IMPORT_ERROR;
    }
    return IMPORT_OK;
}

int alysctl_import(const alys_config_t *cfg, int argc, char **argv)
{
    import_t im;
    memset(&im, 0, sizeof im);
    im.cfg = cfg;
    im.batch_blocks = BATCH_BLOCKS_DEFAULT;
    im.window = WINDOW_DEFAULT;
    if (parse_args(&im, argc, argv) != 0) {
        alysctl_bad_args("import", argc, argv);
        return IMPORT_USAGE;
    }
    im.tty = isatty(STDOUT_FILENO);
    int rc = IMPORT_ERROR;
    if (open_file(&im) == 0 && connect_node(&im) == 0) {
        im.start_head = im.head;
        im.t0 = im.last_print = im.progress_ms = alys_mono_ms();
        rc = run(&im);
    }
    cleanup(&im);
    return rc;
}
