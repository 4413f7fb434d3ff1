/*  alysctl sync pause|resume|start [--from H] [--target H]|status [--json]|can-produce|head
 *
 *  Each subcommand is one request to the SyncActor's mailbox (cfg->ep_sync)
 *  with a 2 s deadline. Commands print the SyncActor's Ack; `status` prints
 *  the state and progress (--json: the `sync` object of cmd_sync.h);
 *  `can-produce` asks CanProduceBlocks; `head` prints StorageActor's
 *  committed head as "head_height N", "head_hash HEX", "state_root HEX", ...
 *  Exit: 0 done, 1 refused or no answer, 2 usage.
 */
#include "cmd_sync.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alysctl.h"
#include "chain/chain.h"
#include "cmd_client.h"
#include "util.h"

static const char *str(const char *s)
{
    return s ? s : "";
}

static int parse_height(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = (s[0] >= '0' && s[0] <= '9') ? strtoull(s, &end, 10) : 0;
    if (!end || *end || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

/* Send one SyncMsg; the reply's SyncMsg (NULL after printing why). */
static const Alys__Sync__SyncMsg *ask(const alys_config_t *cfg, Alys__Sync__SyncMsg *msg,
                                      alys_env_t **reply, bool quiet)
{
    alys_env_t req = ALYS__BUS__ENVELOPE__INIT;
    req.body_case = ALYS__BUS__ENVELOPE__BODY_SYNC;
    req.sync = msg;
    if (alysctl_request(cfg->ep_sync, &req, ALYSCTL_TIMEOUT_MS, reply) != 0) {
        if (!quiet)
            fprintf(stderr, "alysctl: no SyncActor answering at %s\n", cfg->ep_sync);
        return NULL;
    }
    const char *error = alysctl_reply_error(*reply);
    if (error || (*reply)->body_case != ALYS__BUS__ENVELOPE__BODY_SYNC) {
        if (!quiet)
            fprintf(stderr, "alysctl: the SyncActor refused: %s\n",
                    error ? error : alys_env_body_name(*reply));
        return NULL;
    }
    return (*reply)->sync;
}

/* ---- status ------------------------------------------------------------------------ */

static const Alys__Sync__SyncStatus *get_status(const alys_config_t *cfg, alys_env_t **reply, bool quiet)
{
    Alys__Sync__GetSyncStatus gs = ALYS__SYNC__GET_SYNC_STATUS__INIT;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_GET_SYNC_STATUS;
    msg.get_sync_status = &gs;
    const Alys__Sync__SyncMsg *r = ask(cfg, &msg, reply, quiet);
    if (!r || r->msg_case != ALYS__SYNC__SYNC_MSG__MSG_SYNC_STATUS || !r->sync_status->state ||
        !r->sync_status->progress) {
        if (r && !quiet)
            fprintf(stderr, "alysctl: unexpected reply to GetSyncStatus\n");
        return NULL;
    }
    return r->sync_status;
}

static json_t *state_fields(const Alys__Sync__SyncStateInfo *s)
{
    const char *n = str(s->name);
    if (strcmp(n, "Discovering") == 0)
        return json_pack("{s:I, s:I}", "started_at", (json_int_t) s->started_at, "attempts",
                         (json_int_t) s->attempts);
    if (strcmp(n, "DownloadingHeaders") == 0)
        return json_pack("{s:I, s:I, s:I, s:s}", "start_height", (json_int_t) s->start_height,
                         "target_height", (json_int_t) s->target_height, "current_height",
                         (json_int_t) s->current_height, "peer", str(s->peer));
    if (strcmp(n, "DownloadingBlocks") == 0) {
        json_t *peers = json_array();
        for (size_t i = 0; peers && i < s->n_peers; i++)
            json_array_append_new(peers, json_string(str(s->peers[i])));
        return json_pack("{s:I, s:I, s:I, s:I, s:o}", "start_height", (json_int_t) s->start_height,
                         "target_height", (json_int_t) s->target_height, "current_height",
                         (json_int_t) s->current_height, "batch_size", (json_int_t) s->batch_size,
                         "peers", peers ? peers : json_array());
    }
    if (strcmp(n, "CatchingUp") == 0)
        return json_pack("{s:I, s:f, s:f}", "blocks_behind", (json_int_t) s->blocks_behind,
                         "sync_speed", s->sync_speed, "estimated_time", s->estimated_time);
    if (strcmp(n, "Synced") == 0)
        return json_pack("{s:I, s:I}", "last_check", (json_int_t) s->last_check, "peer_height",
                         (json_int_t) s->peer_height);
    if (strcmp(n, "Failed") == 0)
        return json_pack("{s:s, s:I, s:I, s:I}", "reason", str(s->reason), "last_good_height",
                         (json_int_t) s->last_good_height, "recovery_attempts",
                         (json_int_t) s->recovery_attempts, "next_retry", (json_int_t) s->next_retry);
    return json_object();
}

static double percent(uint64_t cur, uint64_t target)
{
    if (target == 0 || cur >= target)
        return 100.0;
    return (double) cur * 100.0 / (double) target;
}

static json_t *status_json(const Alys__Sync__SyncStatus *st)
{
    const Alys__Progress__SyncProgress *p = st->progress;
    json_t *scores = json_object();
    for (size_t i = 0; scores && i < p->n_peer_scores; i++)
        json_object_set_new(scores, str(p->peer_scores[i]->peer_id),
                            json_real(p->peer_scores[i]->score));
    uint64_t behind = p->target_height > p->current_height ? p->target_height - p->current_height : 0;
    json_t *o = json_pack(
        "{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:o, s:f, s:b,"
        " s:I, s:f, s:I, s:I}",
        "state", str(st->state->name), "paused", st->state->paused, "genesis_height",
        (json_int_t) p->genesis_height, "current_height", (json_int_t) p->current_height,
        "target_height", (json_int_t) p->target_height, "highest_peer_height",
        (json_int_t) p->highest_peer_height, "blocks_processed", (json_int_t) p->blocks_processed,
        "blocks_failed", (json_int_t) p->blocks_failed, "blocks_per_second", p->blocks_per_second,
        "sync_start_time", (json_int_t) p->sync_start_time, "last_checkpoint",
        (json_int_t) p->last_checkpoint, "checkpoint_frequency",
        (json_int_t) p->checkpoint_frequency, "active_peers", (json_int_t) p->active_peers,
        "total_peers", (json_int_t) p->total_peers, "peer_scores", scores ? scores : json_object(),
        "eta_seconds", p->eta_seconds, "can_produce_blocks", p->can_produce_blocks, "blocks_behind",
        (json_int_t) behind, "percent", percent(p->current_height, p->target_height), "retries",
        (json_int_t) st->retries, "production_allowed_at", (json_int_t) st->production_allowed_at);
    if (o) {
        json_object_set_new(o, "state_fields", state_fields(st->state));
        /* Fork choice (SyncStatus 5..8): reorgs done, forks refused. */
        json_object_set_new(o, "reorgs", json_integer((json_int_t) st->reorgs));
        json_object_set_new(o, "reorgs_refused", json_integer((json_int_t) st->reorgs_refused));
        json_object_set_new(o, "last_reorg", json_string(str(st->last_reorg)));
        json_object_set_new(o, "last_reorg_refused", json_string(str(st->last_reorg_refused)));
    }
    return o;
}

int alysctl_sync_status_json(const alys_config_t *cfg, json_t **out)
{
    *out = NULL;
    alys_env_t *reply = NULL;
    const Alys__Sync__SyncStatus *st = get_status(cfg, &reply, true);
    if (st)
        *out = status_json(st);
    alys_env_free(&reply);
    return *out ? 0 : -1;
}

static void format_eta(double secs, char *buf, size_t len)
{
    if (secs < 0)
        snprintf(buf, len, "unknown");
    else if (secs >= 3600)
        snprintf(buf, len, "%dh%02dm", (int) (secs / 3600), (int) secs % 3600 / 60);
    else if (secs >= 60)
        snprintf(buf, len, "%dm%02ds", (int) (secs / 60), (int) secs % 60);
    else
        snprintf(buf, len, "%.0fs", secs);
}

static void print_state_fields(const Alys__Sync__SyncStateInfo *s)
{
    const char *n = str(s->name);
    if (strcmp(n, "Discovering") == 0)
        printf("      discovering: %u attempts\n", s->attempts);
    else if (strcmp(n, "DownloadingHeaders") == 0)
        printf("      headers verified up to %" PRIu64 " (from %" PRIu64 ", target %" PRIu64 ")%s%s\n",
               s->current_height, s->start_height, s->target_height,
               *str(s->peer) ? ", from " : "", str(s->peer));
    else if (strcmp(n, "DownloadingBlocks") == 0) {
        printf("      from %" PRIu64 ", batch %u, downloading from:", s->start_height, s->batch_size);
        for (size_t i = 0; i < s->n_peers; i++)
            printf(" %s", str(s->peers[i]));
        printf("%s\n", s->n_peers ? "" : " -");
    } else if (strcmp(n, "Synced") == 0)
        printf("      best peer height %" PRIu64 "\n", s->peer_height);
    else if (strcmp(n, "Failed") == 0) {
        printf("      reason: %s; last good height %" PRIu64 ", recovery attempts %u",
               str(s->reason), s->last_good_height, s->recovery_attempts);
        if (s->next_retry) {
            long long in = ((long long) s->next_retry - (long long) alys_now_ms()) / 1000;
            printf(", next retry in %llds\n", in > 0 ? in : 0);
        } else
            printf(", waiting for `alysctl sync start`\n");
    }
}

int alysctl_sync_status_print(const alys_config_t *cfg)
{
    alys_env_t *reply = NULL;
    const Alys__Sync__SyncStatus *st = get_status(cfg, &reply, true);
    if (!st) {
        printf("sync: not answering at %s\n", cfg->ep_sync);
        alys_env_free(&reply);
        return -1;
    }
    const Alys__Progress__SyncProgress *p = st->progress;
    char eta[32];
    format_eta(p->eta_seconds, eta, sizeof eta);
    printf("sync: %s%s  height %" PRIu64 "/%" PRIu64 " (%.2f%%)  %.1f blocks/s  ETA %s  peers %u/%u"
           "  can produce blocks: %s\n",
           str(st->state->name), st->state->paused ? " (paused)" : "", p->current_height,
           p->target_height, percent(p->current_height, p->target_height), p->blocks_per_second,
           eta, p->active_peers, p->total_peers, p->can_produce_blocks ? "yes" : "no");
    print_state_fields(st->state);
    printf("      checkpoint %" PRIu64 " (every %" PRIu64 "), processed %" PRIu64
           ", failed %" PRIu64 ", retries %" PRIu64 ", best peer %" PRIu64 "\n",
           p->last_checkpoint, p->checkpoint_frequency, p->blocks_processed, p->blocks_failed,
           st->retries, p->highest_peer_height);
    for (size_t i = 0; i < p->n_peer_scores; i++)
        printf("      peer %-24s score %7.2f\n", str(p->peer_scores[i]->peer_id),
               p->peer_scores[i]->score);
    alys_env_free(&reply);
    return 0;
}

static int cmd_status(const alys_config_t *cfg, int argc, char **argv)
{
    int json = alysctl_json_flag(argc, argv, 2);
    if (json < 0)
        return alysctl_usage_error("sync", "status takes only --json");
    if (!json)
        return alysctl_sync_status_print(cfg) == 0 ? 0 : 1;
    json_t *o = NULL;
    if (alysctl_sync_status_json(cfg, &o) != 0) {
        fprintf(stderr, "alysctl: no SyncActor answering at %s\n", cfg->ep_sync);
        return 1;
    }
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return 1;
    printf("%s\n", text);
    free(text);
    return 0;
}

/* ---- commands ------------------------------------------------------------------------- */

static int print_ack(const Alys__Sync__SyncMsg *r)
{
    if (!r)
        return 1;
    if (r->msg_case != ALYS__SYNC__SYNC_MSG__MSG_ACK) {
        fprintf(stderr, "alysctl: unexpected reply\n");
        return 1;
    }
    if (!r->ack->ok) {
        fprintf(stderr, "alysctl: refused: %s\n", str(r->ack->message));
        return 1;
    }
    printf("%s\n", str(r->ack->message));
    return 0;
}

static int cmd_start(const alys_config_t *cfg, int argc, char **argv)
{
    Alys__Sync__StartSync s = ALYS__SYNC__START_SYNC__INIT;
    for (int i = 2; i < argc; i += 2) { /* OPTION VALUE pairs */
        uint64_t *h = NULL;
        if (strcmp(argv[i], "--from") == 0) {
            s.has_from = true;
            h = &s.from_height;
        } else if (strcmp(argv[i], "--target") == 0) {
            s.has_target = true;
            h = &s.target_height;
        }
        if (!h)
            return alysctl_usage_error("sync", "start: unexpected argument '%s'", argv[i]);
        if (i + 1 >= argc || parse_height(argv[i + 1], h) != 0)
            return alysctl_usage_error("sync", "start: %s needs a height", argv[i]);
    }
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_START_SYNC;
    msg.start_sync = &s;
    alys_env_t *reply = NULL;
    int rc = print_ack(ask(cfg, &msg, &reply, false));
    alys_env_free(&reply);
    return rc;
}

static int cmd_simple(const alys_config_t *cfg, Alys__Sync__SyncMsg *msg)
{
    alys_env_t *reply = NULL;
    int rc = print_ack(ask(cfg, msg, &reply, false));
    alys_env_free(&reply);
    return rc;
}

static int cmd_can_produce(const alys_config_t *cfg)
{
    Alys__Sync__CanProduceBlocks cp = ALYS__SYNC__CAN_PRODUCE_BLOCKS__INIT;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_CAN_PRODUCE_BLOCKS;
    msg.can_produce_blocks = &cp;
    alys_env_t *reply = NULL;
    const Alys__Sync__SyncMsg *r = ask(cfg, &msg, &reply, false);
    int rc = 1;
    if (r && r->msg_case == ALYS__SYNC__SYNC_MSG__MSG_CAN_PRODUCE_REPLY) {
        printf("%s: %s\n", r->can_produce_reply->can_produce ? "yes" : "no",
               str(r->can_produce_reply->reason));
        rc = 0;
    }
    alys_env_free(&reply);
    return rc;
}

/* sync head: StorageActor's committed head, as "key value" lines. */
static void print_hex_line(const char *key, const ProtobufCBinaryData *b)
{
    char hex[2 * 64 + 1];
    if (b->len == 0 || b->len > 64)
        printf("%s -\n", key);
    else {
        alys_hex(b->data, b->len, hex);
        printf("%s %s\n", key, hex);
    }
}

static int cmd_head(const alys_config_t *cfg)
{
    Alys__Storage__GetHead gh = ALYS__STORAGE__GET_HEAD__INIT;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
    sm.get_head = &gh;
    alys_env_t *reply = NULL;
    if (alysctl_storage_request(NULL, cfg->ep_storage, &sm, ALYSCTL_TIMEOUT_MS, &reply) != 0) {
        fprintf(stderr, "alysctl: no StorageActor answering at %s\n", cfg->ep_storage);
        return 1;
    }
    int rc = 1;
    if (reply->body_case == ALYS__BUS__ENVELOPE__BODY_STORAGE &&
        reply->storage->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_HEAD) {
        const Alys__Storage__Head *h = reply->storage->head;
        printf("head_height %" PRIu64 "\n", h->height);
        print_hex_line("head_hash", &h->hash);
        print_hex_line("state_root", &h->state_root);
        printf("slot %" PRIu64 "\n", h->slot);
        print_hex_line("genesis_hash", &h->genesis_hash);
        printf("last_checkpoint %" PRIu64 "\n", h->last_checkpoint);
        rc = 0;
    } else {
        const char *e = alysctl_reply_error(reply);
        fprintf(stderr, "alysctl: storage refused: %s\n", e ? e : alys_env_body_name(reply));
    }
    alys_env_free(&reply);
    return rc;
}

int alysctl_sync(const alys_config_t *cfg, int argc, char **argv)
{
    if (argc < 2)
        return alysctl_usage_error("sync", "a subcommand is needed");
    const char *sub = argv[1];
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    if (strcmp(sub, "status") == 0)
        return cmd_status(cfg, argc, argv);
    if (strcmp(sub, "start") == 0)
        return cmd_start(cfg, argc, argv);
    if (argc != 2)
        return alysctl_usage_error("sync", "%s takes no arguments", sub);
    if (strcmp(sub, "pause") == 0) {
        Alys__Sync__PauseSync p = ALYS__SYNC__PAUSE_SYNC__INIT;
        msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_PAUSE_SYNC;
        msg.pause_sync = &p;
        return cmd_simple(cfg, &msg);
    }
    if (strcmp(sub, "resume") == 0) {
        Alys__Sync__ResumeSync r = ALYS__SYNC__RESUME_SYNC__INIT;
        msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_RESUME_SYNC;
        msg.resume_sync = &r;
        return cmd_simple(cfg, &msg);
    }
    if (strcmp(sub, "can-produce") == 0)
        return cmd_can_produce(cfg);
    if (strcmp(sub, "head") == 0)
        return cmd_head(cfg);
    return alysctl_usage_error("sync", "unknown subcommand '%s'", sub);
}
