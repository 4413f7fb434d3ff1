/*  alys-storage: StorageActor. Binds its mailbox, opens the store and moves
 *  bytes: every request goes to storage_serve (service.c) and its reply goes
 *  back to the requester. When the head moves it publishes an event (topic
 *  "storage", kind head_advanced or rolled_back) so SyncActor and tools see
 *  progress without polling; a reorg is published first as kind reorg. It
 *  also holds the node's mempool
 *  (mempool_svc.h says why): MempoolMsg requests go there, and the pool
 *  follows the head around every StorageMsg served.
 */
#include <czmq.h>
#include <malloc.h>
#include <unistd.h>

#include "actor.h"
#include "log.h"
#include "mempool_svc.h"
#include "service.h"
#include "util.h"

typedef struct {
    storage_t *store;
    mempool_svc_t *mempool;
} shell_t;

static void on_mempool(alys_actor_t *actor, zframe_t *from, alys_env_t *env, mempool_svc_t *mp)
{
    mempool_reply_t rep;
    mempool_svc_serve(mp, env, &rep);
    if (rep.answer && alys_reply(alys_actor_mailbox(actor), from, env, &rep.env) != 0)
        log_warn("reply to %s failed", env->sender);
    mempool_reply_clear(&rep);
}

/* What to answer and what to publish is decided by storage_serve. */
static int on_message(alys_actor_t *actor, zframe_t *from, alys_env_t *env, void *arg)
{
    shell_t *sh = arg;
    if (mempool_svc_wants(env)) {
        on_mempool(actor, from, env, sh->mempool);
        return 0;
    }
    storage_reply_t rep;
    mempool_svc_before(sh->mempool, env);
    storage_serve(sh->store, env, &rep);
    mempool_svc_after(sh->mempool);
    if (rep.answer && alys_reply(alys_actor_mailbox(actor), from, env, &rep.env) != 0)
        log_warn("reply to %s failed", env->sender);
    /* A reorg is told before the head it leads to, so a reader of the
     * events sees the old branch end before the new head. */
    if (rep.reorged)
        alys_actor_event(actor, "storage", "reorg", "%s", rep.reorg_text);
    if (rep.head_changed)
        alys_actor_event(actor, "storage", rep.head_event, "%s", rep.event_text);
    storage_reply_clear(&rep);
    return 0;
}

/* Memory that stays flat however long the chain: RocksDB allocates memtable
 * arena blocks (512 KiB) and compaction buffers from its background threads
 * and frees them after each flush. With glibc's defaults the freed blocks
 * stay in per-thread arenas and the dynamic mmap threshold moves them into
 * the heap, so RSS creeps up with the number of flushes (measured: 44 MB
 * after 10k blocks, 53 MB after 100k). A fixed mmap threshold returns them to
 * the OS on free and two arenas bound the per-thread caches (39 / 43 MB). */
static void tune_malloc(void)
{
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

/* RocksDB's memory by part, for the metrics (storage_publish_memory). */
#define MEMORY_GAUGES_MS 2000

static int on_memory_gauges(alys_actor_t *actor, void *arg)
{
    (void) actor;
    storage_publish_memory(arg);
    return 0;
}

int main(int argc, char **argv)
{
    tune_malloc();
    alys_actor_t *actor = alys_actor_new("storage", argc, argv);
    if (!actor)
        return 2;
    const alys_config_t *cfg = alys_actor_config(actor);
    char err[512];
    storage_t *store = storage_open(cfg, err, sizeof err);
    if (!store) {
        log_error("cannot start: %s", err);
        alys_actor_destroy(&actor);
        return 1;
    }
    storage_set_metrics(store, alys_actor_metrics(actor));
    storage_publish_memory(store);
    if (alys_actor_add_timer(actor, MEMORY_GAUGES_MS, 0, on_memory_gauges, store) < 0)
        log_warn("no timer for the RocksDB memory gauges: they stay at their first values");
    /* The pool's epoch: this process (pid) at this start (ms). */
    uint64_t epoch = ((uint64_t) getpid() << 32) ^ (uint64_t) alys_now_ms();
    shell_t sh = {.store = store,
                  .mempool = mempool_svc_new(cfg, store, alys_actor_metrics(actor), epoch)};
    int rc = 1;
    if (!sh.mempool)
        log_error("cannot make the mempool (out of memory)");
    else if (alys_actor_bind(actor, cfg->ep_storage, on_message, &sh) == 0 &&
             alys_actor_ready(actor) == 0)
        rc = alys_actor_run(actor) == 0 ? 0 : 1;
    else
        log_error("cannot bind the mailbox %s", cfg->ep_storage);
    mempool_svc_destroy(&sh.mempool);
    storage_destroy(&store);
    alys_actor_destroy(&actor);
    return rc;
}
