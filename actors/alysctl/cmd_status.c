/*  alysctl status [--json]: what the supervisor knows about every actor.
 *
 *  One StatusRequest to the supervisor's control socket (ep_supervisor);
 *  no answer within 2 s is "no supervisor answering at ENDPOINT", exit 1.
 *  The text form is a table; --json prints
 *    {"supervisor": {"pid", "uptime_s"},
 *     "actors": [{"name", "pid", "state", "restarts", "uptime_s", "endpoint",
 *                 "last_exit"}, ...]}
 *  and beside it "sync" (the SyncActor's state and SyncProgress), "chain"
 *  (StorageActor's committed head: head_height, head_hash, and
 *  finalized_or_reorg_limit_height, the highest block no rollback or reorg
 *  may undo: head - max_reorg_depth) and "producer".
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "chain/chain.h"

#include "alysctl.h"
#include "cmd_client.h"
#include "cmd_sync.h"

typedef Alys__Control__StatusReply status_t;

/* The "sync" section comes from the SyncActor (cmd_sync.c). It is optional:
 * a node whose SyncActor does not answer still has a status ("sync": null). */
static void status_sync_json(const alys_config_t *cfg, json_t *root)
{
    json_t *sync = NULL;
    if (alysctl_sync_status_json(cfg, &sync) != 0 || !sync)
        sync = json_null();
    json_object_set_new(root, "sync", sync);
}

/* The "chain" section: StorageActor's head (GetHead), or null when storage
 * does not answer. */
static void status_chain_json(const alys_config_t *cfg, json_t *root)
{
    Alys__Storage__GetHead gh = ALYS__STORAGE__GET_HEAD__INIT;
    Alys__Storage__StorageMsg sm = ALYS__STORAGE__STORAGE_MSG__INIT;
    sm.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
    sm.get_head = &gh;
    alys_env_t *rep = NULL;
    json_t *out = NULL;
    if (alysctl_storage_request(NULL, cfg->ep_storage, &sm, ALYSCTL_TIMEOUT_MS, &rep) == 0 &&
        rep->body_case == ALYS__BUS__ENVELOPE__BODY_STORAGE &&
        rep->storage->msg_case == ALYS__STORAGE__STORAGE_MSG__MSG_HEAD &&
        rep->storage->head->hash.len == ALYS_HASH_LEN) {
        const Alys__Storage__Head *h = rep->storage->head;
        char hex[2 * ALYS_HASH_LEN + 1];
        alys_hex(h->hash.data, ALYS_HASH_LEN, hex);
        uint64_t limit = h->height > cfg->max_reorg_depth ? h->height - cfg->max_reorg_depth : 0;
        out = json_pack("{s:I, s:s, s:I, s:I}", "head_height", (json_int_t) h->height,
                        "head_hash", hex, "finalized_or_reorg_limit_height", (json_int_t) limit,
                        "last_checkpoint", (json_int_t) h->last_checkpoint);
    }
    alys_env_free(&rep);
    /* Fork choice is SyncActor's: its counts go beside the head, so that a
     * refused reorg (deeper than max_reorg_depth) shows where operators
     * look for the chain. */
    json_t *sync = json_object_get(root, "sync");
    const char *keys[] = {"reorgs", "reorgs_refused", "last_reorg", "last_reorg_refused"};
    for (size_t i = 0; out && json_is_object(sync) && i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(sync, keys[i]);
        if (v)
            json_object_set(out, keys[i], v);
    }
    json_object_set_new(root, "chain", out ? out : json_null());
}

/* The "producer" section: {"enabled": false} without [producer] enabled;
 * else the ProducerActor's own counters (GetProducerStatus at
 * ipc://<run_dir>/producer.sock, where alys-producer binds its mailbox), or
 * "error" when it does not answer (restarting, or not started yet). */
#define PRODUCER_TIMEOUT_MS 1000

static json_t *producer_json(const Alys__Producer__ProducerStatus *p)
{
    json_t *by = json_object();
    for (size_t i = 0; by && i < p->n_missed_by_reason; i++)
        json_object_set_new(by, p->missed_by_reason[i]->reason ? p->missed_by_reason[i]->reason : "",
                            json_integer((json_int_t) p->missed_by_reason[i]->count));
    return json_pack("{s:b, s:I, s:I, s:I, s:s, s:I, s:I, s:I, s:o*}", "enabled", 1,
                     "authority_index", (json_int_t) p->authority_index, "produced",
                     (json_int_t) p->produced, "missed_slots", (json_int_t) p->missed_slots,
                     "last_missed_reason", p->last_missed_reason ? p->last_missed_reason : "",
                     "last_missed_slot", (json_int_t) p->last_missed_slot, "signed_up_to_slot",
                     (json_int_t) p->signed_up_to_slot, "next_own_slot",
                     (json_int_t) p->next_own_slot, "missed_by_reason", by);
}

static void status_producer_json(const alys_config_t *cfg, json_t *root)
{
    json_t *out = NULL;
    char ep[ALYS_PATH_MAX + 32];
    int n = snprintf(ep, sizeof ep, "ipc://%s/producer.sock", cfg->run_dir);
    if (!cfg->producer_enabled || n < 0 || (size_t) n >= sizeof ep) {
        json_object_set_new(root, "producer", json_pack("{s:b}", "enabled", 0));
        return;
    }
    Alys__Producer__GetProducerStatus q = ALYS__PRODUCER__GET_PRODUCER_STATUS__INIT;
    Alys__Producer__ProducerMsg pm = ALYS__PRODUCER__PRODUCER_MSG__INIT;
    pm.msg_case = ALYS__PRODUCER__PRODUCER_MSG__MSG_GET_PRODUCER_STATUS;
    pm.get_producer_status = &q;
    alys_env_t req = ALYS__BUS__ENVELOPE__INIT;
    req.body_case = ALYS__BUS__ENVELOPE__BODY_PRODUCER;
    req.producer = &pm;
    alys_env_t *rep = NULL;
    if (alysctl_request(ep, &req, PRODUCER_TIMEOUT_MS, &rep) == 0 &&
        rep->body_case == ALYS__BUS__ENVELOPE__BODY_PRODUCER &&
        rep->producer->msg_case == ALYS__PRODUCER__PRODUCER_MSG__MSG_PRODUCER_STATUS)
        out = producer_json(rep->producer->producer_status);
    alys_env_free(&rep);
    if (!out)
        out = json_pack("{s:b, s:s}", "enabled", 1, "error", "the producer does not answer");
    json_object_set_new(root, "producer", out);
}

static void status_sync_text(const alys_config_t *cfg)
{
    (void) alysctl_sync_status_print(cfg);
}

static const char *str(const char *s)
{
    return s ? s : "";
}

/* "3d04h", "2h05m", "1m02s", "7s"; "-" when not running. */
static void format_uptime(double secs, char *buf, size_t len)
{
    long s = (long) secs;
    if (secs <= 0)
        snprintf(buf, len, "-");
    else if (s >= 86400)
        snprintf(buf, len, "%ldd%02ldh", s / 86400, (s % 86400) / 3600);
    else if (s >= 3600)
        snprintf(buf, len, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60)
        snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, len, "%lds", s);
}

static void print_table(const status_t *st)
{
    char up[32];
    format_uptime(st->uptime_s, up, sizeof up);
    printf("supervisor pid %d, up %s\n", (int) st->supervisor_pid, up);
    printf("%-20s %8s  %-10s %8s  %-8s  %-40s %s\n", "NAME", "PID", "STATE", "RESTARTS", "UPTIME",
           "ENDPOINT", "LAST EXIT");
    for (size_t i = 0; i < st->n_actors; i++) {
        const Alys__Control__ActorStatus *a = st->actors[i];
        char pid[16];
        snprintf(pid, sizeof pid, a->pid > 0 ? "%d" : "-", (int) a->pid);
        format_uptime(a->uptime_s, up, sizeof up);
        printf("%-20s %8s  %-10s %8u  %-8s  %-40s %s\n", str(a->name), pid, str(a->state),
               a->restarts, up, *str(a->endpoint) ? a->endpoint : "-", str(a->last_exit));
    }
}

static json_t *actor_json(const Alys__Control__ActorStatus *a)
{
    return json_pack("{s:s, s:I, s:s, s:I, s:f, s:s, s:s}", "name", str(a->name), "pid",
                     (json_int_t) a->pid, "state", str(a->state), "restarts",
                     (json_int_t) a->restarts, "uptime_s", a->uptime_s, "endpoint",
                     str(a->endpoint), "last_exit", str(a->last_exit));
}

static int print_json(const alys_config_t *cfg, const status_t *st)
{
    json_t *actors = json_array();
    json_t *root = json_pack("{s:{s:I, s:f}}", "supervisor", "pid",
                             (json_int_t) st->supervisor_pid, "uptime_s", st->uptime_s);
    if (!actors || !root) {
        json_decref(actors);
        json_decref(root);
        return -1;
    }
    for (size_t i = 0; i < st->n_actors; i++) {
        json_t *a = actor_json(st->actors[i]);
        if (!a || json_array_append_new(actors, a) != 0) {
            json_decref(actors);
            json_decref(root);
            return -1;
        }
    }
    json_object_set_new(root, "actors", actors);
    status_sync_json(cfg, root);
    status_chain_json(cfg, root);
    status_producer_json(cfg, root);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return -1;
    printf("%s\n", text);
    free(text);
    return 0;
}

/* The supervisor's StatusReply, or NULL after printing why. Caller frees env. */
static const status_t *ask(const alys_config_t *cfg, alys_env_t **env)
{
    Alys__Control__StatusRequest req_body = ALYS__CONTROL__STATUS_REQUEST__INIT;
    Alys__Control__Control ctl = ALYS__CONTROL__CONTROL__INIT;
    ctl.msg_case = ALYS__CONTROL__CONTROL__MSG_STATUS_REQUEST;
    ctl.status_request = &req_body;
    alys_env_t req = ALYS__BUS__ENVELOPE__INIT;
    req.body_case = ALYS__BUS__ENVELOPE__BODY_CONTROL;
    req.control = &ctl;
    if (alysctl_request(cfg->ep_supervisor, &req, ALYSCTL_TIMEOUT_MS, env) != 0) {
        fprintf(stderr, "alysctl: no supervisor answering at %s\n", cfg->ep_supervisor);
        return NULL;
    }
    const char *error = alysctl_reply_error(*env);
    if (error) {
        fprintf(stderr, "alysctl: the supervisor refused: %s\n", error);
        return NULL;
    }
    if ((*env)->body_case != ALYS__BUS__ENVELOPE__BODY_CONTROL ||
        (*env)->control->msg_case != ALYS__CONTROL__CONTROL__MSG_STATUS_REPLY) {
        fprintf(stderr, "alysctl: unexpected %s reply from %s\n", alys_env_body_name(*env),
                cfg->ep_supervisor);
        return NULL;
    }
    return (*env)->control->status_reply;
}

int alysctl_status(const alys_config_t *cfg, int argc, char **argv)
{
    int json = alysctl_json_flag(argc, argv, 1);
    if (json < 0) {
        return alysctl_usage_error("status", "takes only --json");
    }
    alys_env_t *env = NULL;
    const status_t *st = ask(cfg, &env);
    int rc = 1;
    if (st) {
        if (json)
            rc = print_json(cfg, st) == 0 ? 0 : 1;
        else {
            print_table(st);
            status_sync_text(cfg);
            rc = 0;
        }
    }
    alys_env_free(&env);
    return rc;
}
