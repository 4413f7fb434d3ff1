/*  alys-validator: a stateless validation worker.
 *
 *  Connects a DEALER to the BlockProcessor's worker socket (ep_validators,
 *  or --connect ENDPOINT for a worker on another host, with --cert FILE for
 *  CURVE), says WorkerReady, and from then on answers every ValidateTask
 *  with a ValidateResult (one verdict per block, stopping at the first
 *  invalid one). It keeps no chain state: the genesis comes from
 *  genesis_file or, when it has none or another one, from the processor's
 *  WorkerWelcome. A WorkerHeartbeat every HEARTBEAT_MS keeps it in the pool
 *  and lets a restarted processor find it again.
 *
 *  Tasks are taken off the socket as they arrive into a local FIFO and
 *  validated one per loop turn, so the worker knows its backlog (reported in
 *  heartbeats) and heartbeats go out between tasks.
 *
 *  CURVE (tcp with --cert): the client certificate is --cert FILE (CZMQ
 *  zcert format; FILE_secret beside it holds the secret key). The server's
 *  public key comes from curve_server_cert of --config when set, else from
 *  "server.cert" in the directory of FILE.
 */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actor.h"
#include "chain/chain.h"
#include "log.h"
#include "util.h"

#define HEARTBEAT_MS 500
#define CAPACITY     2  /* tasks held at once: one running, one ready */
#define MAX_BACKLOG  64 /* more than any processor sends: a safety bound */

typedef struct {
    alys_actor_t *actor;
    const alys_config_t *cfg;
    char id[128];
    zsock_t *work;
    alys_genesis_t genesis;
    bool have_genesis;
    zlistx_t *backlog; /* alys_env_t* holding a ValidateTask */
    bool work_scheduled;
    uint64_t tasks; /* done, for the exit log */
    uint64_t blocks;
} val_t;

/* ---------------------------------------------------------------- sending */

static int send_msg(val_t *v, Alys__Processor__ProcessorMsg *msg)
{
    alys_env_t env = ALYS__BUS__ENVELOPE__INIT;
    env.body_case = ALYS__BUS__ENVELOPE__BODY_PROCESSOR;
    env.processor = msg;
    return alys_send(v->work, &env);
}

static ProtobufCBinaryData genesis_hash(val_t *v)
{
    if (!v->have_genesis)
        return (ProtobufCBinaryData){0, NULL};
    return (ProtobufCBinaryData){ALYS_HASH_LEN, v->genesis.hash};
}

static void send_ready(val_t *v)
{
    Alys__Processor__WorkerReady r = ALYS__PROCESSOR__WORKER_READY__INIT;
    r.name = v->id;
    r.pid = (int32_t) getpid();
    r.capacity = CAPACITY;
    r.genesis_hash = genesis_hash(v);
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_WORKER_READY;
    msg.worker_ready = &r;
    /* Dropped when the processor is not there yet: the heartbeat repeats it. */
    send_msg(v, &msg);
}

static int on_heartbeat(alys_actor_t *actor, void *arg)
{
    (void) actor;
    val_t *v = arg;
    Alys__Processor__WorkerHeartbeat hb = ALYS__PROCESSOR__WORKER_HEARTBEAT__INIT;
    hb.name = v->id;
    hb.pid = (int32_t) getpid();
    hb.capacity = CAPACITY;
    hb.genesis_hash = genesis_hash(v);
    hb.queued = (uint32_t) zlistx_size(v->backlog);
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_WORKER_HEARTBEAT;
    msg.worker_heartbeat = &hb;
    send_msg(v, &msg);
    return 0;
}

/* ---------------------------------------------------------------- work */

/* Validate the task's blocks in order, stopping at the first failure.
 * verdicts/items are caller arrays of at least n_blocks entries. */
static size_t validate_task(val_t *v, const Alys__Processor__ValidateTask *t,
                            Alys__Processor__BlockVerdict *items,
                            Alys__Processor__BlockVerdict **ptrs, alys_verdict_t *verdicts)
{
    size_t n = 0;
    while (n < t->n_blocks) {
        alys_verdict_t *vd = &verdicts[n];
        bool ok = v->have_genesis
                      ? alys_block_decode_check(&v->genesis, t->blocks[n].data, t->blocks[n].len, vd)
                      : (vd->code = ALYS_BLOCK_INTERNAL_ERROR, vd->tx_index = -1,
                         snprintf(vd->detail, sizeof vd->detail, "worker has no genesis"), false);
        alys__processor__block_verdict__init(&items[n]);
        items[n].code = (uint32_t) vd->code;
        items[n].reason = (char *) alys_block_error_name(vd->code);
        items[n].detail = vd->detail;
        items[n].tx_index = vd->tx_index;
        ptrs[n] = &items[n];
        n++;
        if (!ok)
            break;
    }
    return n;
}

static void run_task(val_t *v, const Alys__Processor__ValidateTask *t)
{
    size_t cap = t->n_blocks ? t->n_blocks : 1;
    Alys__Processor__BlockVerdict *items = calloc(cap, sizeof *items);
    Alys__Processor__BlockVerdict **ptrs = calloc(cap, sizeof *ptrs);
    alys_verdict_t *verdicts = calloc(cap, sizeof *verdicts);
    if (!items || !ptrs || !verdicts) {
        log_error("out of memory for task %llu: the processor will re-dispatch it",
                  (unsigned long long) t->task_id);
        free(items), free(ptrs), free(verdicts);
        return;
    }
    int64_t t0 = alys_mono_us();
    size_t n = validate_task(v, t, items, ptrs, verdicts);
    int64_t us = alys_mono_us() - t0;
    Alys__Processor__ValidateResult r = ALYS__PROCESSOR__VALIDATE_RESULT__INIT;
    r.task_id = t->task_id;
    r.n_verdicts = n;
    r.verdicts = ptrs;
    r.elapsed_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t) us;
    Alys__Processor__ProcessorMsg msg = ALYS__PROCESSOR__PROCESSOR_MSG__INIT;
    msg.msg_case = ALYS__PROCESSOR__PROCESSOR_MSG__MSG_VALIDATE_RESULT;
    msg.validate_result = &r;
    if (send_msg(v, &msg) != 0)
        log_warn("cannot send the result of task %llu", (unsigned long long) t->task_id);
    v->tasks++;
    v->blocks += n;
    alys_metrics_t *m = alys_actor_metrics(v->actor);
    alys_metric_add(m, "alys_validator_tasks_total", NULL, "Validation tasks done by this worker", 1);
    alys_metric_add(m, "alys_validator_blocks_total", NULL, "Blocks checked by this worker",
                    (double) n);
    free(items), free(ptrs), free(verdicts);
}

static int on_work(alys_actor_t *actor, void *arg);

static void schedule_work(val_t *v)
{
    if (!v->work_scheduled && zlistx_size(v->backlog) > 0 &&
        alys_actor_add_timer(v->actor, 0, 1, on_work, v) >= 0)
        v->work_scheduled = true;
}

static int on_work(alys_actor_t *actor, void *arg)
{
    (void) actor;
    val_t *v = arg;
    v->work_scheduled = false;
    alys_env_t *env = zlistx_detach(v->backlog, NULL);
    if (env) {
        run_task(v, env->processor->validate_task);
        alys_env_free(&env);
    }
    schedule_work(v);
    return 0;
}

/* ---------------------------------------------------------------- receiving */

static void adopt_genesis(val_t *v, const Alys__Processor__WorkerWelcome *w)
{
    alys_genesis_t g;
    char err[256];
    /* Light: a validator never executes, so it needs no state root. */
    if (alys_genesis_decode_light(w->genesis.data, w->genesis.len, &g, err, sizeof err) != 0) {
        log_error("the processor's genesis does not decode: %s", err);
        return;
    }
    if (w->genesis_hash.len != ALYS_HASH_LEN ||
        memcmp(g.hash, w->genesis_hash.data, ALYS_HASH_LEN) != 0) {
        log_error("the processor's genesis does not match its announced hash");
        alys_genesis_clear(&g);
        return;
    }
    if (v->have_genesis && memcmp(v->genesis.hash, g.hash, ALYS_HASH_LEN) == 0) {
        alys_genesis_clear(&g); /* a repeated welcome: already have it */
        send_ready(v);
        return;
    }
    if (v->have_genesis) {
        log_warn("genesis_file differs from the processor's genesis: using the processor's");
        alys_genesis_clear(&v->genesis);
    }
    v->genesis = g;
    v->have_genesis = true;
    char hex[2 * ALYS_HASH_LEN + 1];
    alys_hex(g.hash, ALYS_HASH_LEN, hex);
    log_info("genesis %.16s.. received from the processor", hex);
    send_ready(v);
}

/* Take one message; tasks queue up, the rest is handled now. Returns 1
 * when a message was taken, 0 when none was waiting. */
static int take_message(val_t *v)
{
    if (!(zsock_events(v->work) & ZMQ_POLLIN))
        return 0;
    alys_env_t *env = NULL;
    if (alys_recv(v->work, &env) != 0)
        return 1;
    Alys__Processor__ProcessorMsg *m = env->body_case == ALYS__BUS__ENVELOPE__BODY_PROCESSOR
                                           ? env->processor
                                           : NULL;
    if (m && m->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_VALIDATE_TASK &&
        zlistx_size(v->backlog) < MAX_BACKLOG) {
        zlistx_add_end(v->backlog, env);
        return 1;
    }
    if (m && m->msg_case == ALYS__PROCESSOR__PROCESSOR_MSG__MSG_WORKER_WELCOME)
        adopt_genesis(v, m->worker_welcome);
    else
        log_warn("dropped a %s message from the processor", alys_env_body_name(env));
    alys_env_free(&env);
    return 1;
}

static int on_socket(alys_actor_t *actor, zsock_t *sock, void *arg)
{
    (void) actor;
    (void) sock;
    val_t *v = arg;
    while (take_message(v))
        ;
    schedule_work(v);
    return 0;
}

/* ---------------------------------------------------------------- setup */

static void backlog_free(void **item)
{
    alys_env_t *env = *item;
    alys_env_free(&env);
    *item = NULL;
}

static int server_key(val_t *v, const char *client_cert, char *key, size_t keylen)
{
    char path[ALYS_PATH_MAX + 16];
    if (*v->cfg->curve_server_cert) {
        snprintf(path, sizeof path, "%s", v->cfg->curve_server_cert);
    } else {
        char copy[ALYS_PATH_MAX];
        snprintf(copy, sizeof copy, "%s", client_cert);
        snprintf(path, sizeof path, "%s/server.cert", dirname(copy));
    }
    zcert_t *cert = zcert_load(path);
    if (!cert) {
        log_error("cannot load the server's public certificate %s", path);
        return -1;
    }
    snprintf(key, keylen, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return 0;
}

static int apply_curve(val_t *v, const char *cert_path)
{
    zcert_t *cert = zcert_load(cert_path);
    if (!cert) {
        log_error("cannot load --cert %s", cert_path);
        return -1;
    }
    char key[64];
    int rc = server_key(v, cert_path, key, sizeof key);
    if (rc == 0) {
        zcert_apply(cert, v->work);
        zsock_set_curve_serverkey(v->work, key);
    }
    zcert_destroy(&cert);
    return rc;
}

static int connect_work(val_t *v)
{
    const char *endpoint = alys_actor_arg(v->actor, "connect");
    const char *cert = alys_actor_arg(v->actor, "cert");
    if (!endpoint)
        endpoint = v->cfg->ep_validators;
    v->work = zsock_new(ZMQ_DEALER);
    if (!v->work)
        return -1;
    alys_sock_limits(v->work);
    zsock_set_identity(v->work, v->id);
    zsock_set_reconnect_ivl(v->work, 10);
    zsock_set_reconnect_ivl_max(v->work, 1000);
    if (cert && apply_curve(v, cert) != 0)
        return -1;
    if (zsock_connect(v->work, "%s", endpoint) < 0) {
        log_error("cannot connect %s: %s", endpoint, zmq_strerror(zmq_errno()));
        return -1;
    }
    log_info("worker %s connecting to %s%s", v->id, endpoint, cert ? " (CURVE)" : "");
    return 0;
}

static void load_genesis(val_t *v)
{
    if (!*v->cfg->genesis_file)
        return;
    char err[256];
    /* Light (no state root: never executed here): keeps the start, before
     * Ready, from costing one lattice vector per genesis account. */
    if (alys_genesis_load_light(v->cfg->genesis_file, &v->genesis, err, sizeof err) == 0)
        v->have_genesis = true;
    else
        log_warn("%s: the processor will send its genesis", err);
}

static int setup(val_t *v)
{
    v->cfg = alys_actor_config(v->actor);
    v->backlog = zlistx_new();
    if (!v->backlog)
        return -1;
    zlistx_set_destructor(v->backlog, backlog_free);
    /* The routing id is the actor name: validator-N under the supervisor,
     * validator-ext-PID (or --name) when started by hand. */
    snprintf(v->id, sizeof v->id, "%s", alys_actor_name(v->actor));
    load_genesis(v);
    if (connect_work(v) != 0 || alys_actor_add_reader(v->actor, v->work, on_socket, v) != 0 ||
        alys_actor_add_timer(v->actor, HEARTBEAT_MS, 0, on_heartbeat, v) < 0)
        return -1;
    send_ready(v);
    return 0;
}

int main(int argc, char **argv)
{
    val_t v;
    memset(&v, 0, sizeof v);
    v.actor = alys_actor_new("validator", argc, argv);
    if (!v.actor)
        return 2;
    int rc = setup(&v);
    if (rc == 0) {
        alys_actor_ready(v.actor);
        rc = alys_actor_run(v.actor);
        log_info("stopping: %llu tasks, %llu blocks validated", (unsigned long long) v.tasks,
                 (unsigned long long) v.blocks);
    } else {
        log_error("cannot start");
    }
    alys_actor_destroy(&v.actor);
    zsock_destroy(&v.work);
    zlistx_destroy(&v.backlog);
    if (v.have_genesis)
        alys_genesis_clear(&v.genesis);
    return rc == 0 ? 0 : 1;
}
