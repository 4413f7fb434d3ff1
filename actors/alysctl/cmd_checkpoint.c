/*  alysctl checkpoint list [--json] | create | recover HEIGHT
 *
 *  list     StorageActor's checkpoints, oldest first (ListCheckpoints to
 *           cfg->ep_storage): height, hash, state root, time, verified.
 *  create   CreateCheckpoint to the SyncActor, which has StorageActor write
 *           one at the committed head with the current SyncProgress; prints it.
 *  recover  RecoverFromCheckpoint{HEIGHT} to the SyncActor: storage rolls
 *           back to that checkpoint (within max_reorg_depth) and sync resumes
 *           from it.
 *  Exit: 0 done, 1 refused or no answer, 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alysctl.h"
#include "chain/chain.h"
#include "cmd_client.h"
#include "util.h"

#define CHECKPOINT_TIMEOUT_MS 10000

static void hex(const ProtobufCBinaryData *b, char *out, size_t outlen)
{
    if (b->len == 0 || 2 * b->len + 1 > outlen) {
        snprintf(out, outlen, "-");
        return;
    }
    alys_hex(b->data, b->len, out);
}

static void format_time(uint64_t unix_ms, char *buf, size_t len)
{
    time_t t = (time_t) (unix_ms / 1000);
    struct tm tm;
    if (unix_ms == 0 || !gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
}

static json_t *checkpoint_json(const Alys__Chain__BlockCheckpoint *cp)
{
    char h[2 * ALYS_HASH_LEN + 1], ph[2 * ALYS_HASH_LEN + 1], sr[2 * ALYS_HASH_LEN + 1];
    hex(&cp->hash, h, sizeof h);
    hex(&cp->parent_hash, ph, sizeof ph);
    hex(&cp->state_root, sr, sizeof sr);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:I, s:b}", "height", (json_int_t) cp->height,
                          "hash", h, "parent_hash", ph, "state_root", sr, "timestamp",
                          (json_int_t) cp->timestamp, "verified", cp->verified);
    if (o && cp->sync_progress) {
        const Alys__Progress__SyncProgress *p = cp->sync_progress;
        json_object_set_new(o, "sync_progress",
                            json_pack("{s:I, s:I, s:f, s:I, s:s}", "current_height",
                                      (json_int_t) p->current_height, "target_height",
                                      (json_int_t) p->target_height, "blocks_per_second",
                                      p->blocks_per_second, "blocks_processed",
                                      (json_int_t) p->blocks_processed, "state",
                                      p->state ? p->state : ""));
    }
    return o;
}

static void print_checkpoint(const Alys__Chain__BlockCheckpoint *cp)
{
    char h[2 * ALYS_HASH_LEN + 1], sr[2 * ALYS_HASH_LEN + 1], when[32];
    hex(&cp->hash, h, sizeof h);
    hex(&cp->state_root, sr, sizeof sr);
    format_time(cp->timestamp, when, sizeof when);
    printf("%10" PRIu64 "  %.16s..  %.16s..  %-20s  %s\n", cp->height, h, sr, when,
           cp->verified ? "yes" : "no");
}

static int cmd_list(const alys_config_t *cfg, bool json)
{
    Alys__Storage__ListCheckpoints lc = ALYS__STORAGE__LIST_CHECKPOINTS__INIT;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_LIST_CHECKPOINTS;
    sm.list_checkpoints = &lc;
    alys_env_t *reply = NULL;
    if (alysctl_storage_request(NULL, cfg->ep_storage, &sm, ALYSCTL_TIMEOUT_MS, &reply) != 0) {
        fprintf(stderr, "alysctl: no StorageActor answering at %s\n", cfg->ep_storage);
        return 1;
    }
    int rc = 1;
    const char *error = alysctl_reply_error(reply);
    if (error)
        fprintf(stderr, "alysctl: storage refused: %s\n", error);
    else if (reply->body_case != ALYS__BUS__ENVELOPE__BODY_STORAGE ||
             reply->storage->msg_case != ALYS__STORAGE__STORAGE_MSG__MSG_CHECKPOINTS)
        fprintf(stderr, "alysctl: unexpected %s reply\n", alys_env_body_name(reply));
    else {
        const Alys__Storage__Checkpoints *cps = reply->storage->checkpoints;
        if (json) {
            json_t *arr = json_array();
            for (size_t i = 0; arr && i < cps->n_checkpoints; i++)
                json_array_append_new(arr, checkpoint_json(cps->checkpoints[i]));
            char *text = arr ? json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
            json_decref(arr);
            if (text)
                printf("%s\n", text);
            free(text);
        } else {
            printf("%10s  %-18s  %-18s  %-20s  %s\n", "HEIGHT", "HASH", "STATE ROOT", "TIME",
                   "VERIFIED");
            for (size_t i = 0; i < cps->n_checkpoints; i++)
                print_checkpoint(cps->checkpoints[i]);
            if (cps->n_checkpoints == 0)
                printf("(no checkpoints)\n");
        }
        rc = 0;
    }
    alys_env_free(&reply);
    return rc;
}

static const Alys__Sync__SyncMsg *ask_sync(const alys_config_t *cfg, Alys__Sync__SyncMsg *msg,
                                           alys_env_t **reply)
{
    alys_env_t req = ALYS__BUS__ENVELOPE__INIT;
    req.body_case = ALYS__BUS__ENVELOPE__BODY_SYNC;
    req.sync = msg;
    if (alysctl_request(cfg->ep_sync, &req, CHECKPOINT_TIMEOUT_MS, reply) != 0) {
        fprintf(stderr, "alysctl: no SyncActor answering at %s\n", cfg->ep_sync);
        return NULL;
    }
    const char *error = alysctl_reply_error(*reply);
    if (error || (*reply)->body_case != ALYS__BUS__ENVELOPE__BODY_SYNC) {
        fprintf(stderr, "alysctl: the SyncActor refused: %s\n", error ? error : "unexpected reply");
        return NULL;
    }
    const Alys__Sync__SyncMsg *r = (*reply)->sync;
    if (r->msg_case == ALYS__SYNC__SYNC_MSG__MSG_ACK && !r->ack->ok) {
        fprintf(stderr, "alysctl: refused: %s\n", r->ack->message ? r->ack->message : "");
        return NULL;
    }
    return r;
}

static int cmd_create(const alys_config_t *cfg)
{
    Alys__Sync__CreateCheckpoint cc = ALYS__SYNC__CREATE_CHECKPOINT__INIT;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_CREATE_CHECKPOINT;
    msg.create_checkpoint = &cc;
    alys_env_t *reply = NULL;
    const Alys__Sync__SyncMsg *r = ask_sync(cfg, &msg, &reply);
    int rc = 1;
    if (r && r->msg_case == ALYS__SYNC__SYNC_MSG__MSG_CHECKPOINT && r->checkpoint) {
        char h[2 * ALYS_HASH_LEN + 1];
        hex(&r->checkpoint->hash, h, sizeof h);
        printf("checkpoint at height %" PRIu64 " hash %s\n", r->checkpoint->height, h);
        rc = 0;
    } else if (r) {
        fprintf(stderr, "alysctl: unexpected reply to CreateCheckpoint\n");
    }
    alys_env_free(&reply);
    return rc;
}

static int cmd_recover(const alys_config_t *cfg, const char *arg)
{
    char *end = NULL;
    errno = 0;
    unsigned long long h = (arg[0] >= '0' && arg[0] <= '9') ? strtoull(arg, &end, 10) : 0;
    if (!end || *end || errno == ERANGE)
        return alysctl_usage_error("checkpoint", "recover: '%s' is not a height", arg);
    Alys__Sync__RecoverFromCheckpoint rf = ALYS__SYNC__RECOVER_FROM_CHECKPOINT__INIT;
    rf.height = h;
    Alys__Sync__SyncMsg msg = ALYS__SYNC__SYNC_MSG__INIT;
    msg.msg_case = ALYS__SYNC__SYNC_MSG__MSG_RECOVER_FROM_CHECKPOINT;
    msg.recover_from_checkpoint = &rf;
    alys_env_t *reply = NULL;
    const Alys__Sync__SyncMsg *r = ask_sync(cfg, &msg, &reply);
    int rc = 1;
    if (r && r->msg_case == ALYS__SYNC__SYNC_MSG__MSG_ACK) {
        printf("%s\n", r->ack->message ? r->ack->message : "ok");
        rc = 0;
    }
    alys_env_free(&reply);
    return rc;
}

int alysctl_checkpoint(const alys_config_t *cfg, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        int json = alysctl_json_flag(argc, argv, 2);
        if (json < 0)
            return alysctl_usage_error("checkpoint", "list takes only --json");
        return cmd_list(cfg, json == 1);
    }
    if (argc == 2 && strcmp(argv[1], "create") == 0)
        return cmd_create(cfg);
    if (argc == 3 && strcmp(argv[1], "recover") == 0)
        return cmd_recover(cfg, argv[2]);
    if (argc < 2)
        return alysctl_usage_error("checkpoint", "list, create or recover HEIGHT expected");
    return alysctl_bad_args("checkpoint", argc, argv);
}
