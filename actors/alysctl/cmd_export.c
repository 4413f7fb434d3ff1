/*  alysctl export FILE [--from H] [--to H]: write the node's chain out as an
 *  export stream (common/chain/export.h), read from StorageActor with
 *  GetBlocks. The block records are the stored bytes as they are, so
 *  exporting what was imported gives the same file, byte for byte.
 *
 *  Requests to storage are retried until STORAGE_WAIT_MS passes, so an
 *  export survives a StorageActor restart.
 *
 *  Exit: 0 done, 2 usage, 3 node unreachable, bad range or write error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alysctl.h"
#include "chain/export.h"
#include "cmd_client.h"
#include "log.h"
#include "util.h"

#define STORAGE_WAIT_MS 60000 /* total patience with a restarting storage */
#define REQUEST_MS      5000
#define BLOCKS_PER_CALL 1024

typedef struct {
    uint64_t from;
    uint64_t to;
    bool has_from, has_to;
    const char *path;
} export_args_t;

static int parse_height(const char *opt, const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = (s[0] >= '0' && s[0] <= '9') ? strtoull(s, &end, 10) : 0;
    if (!end || *end || errno == ERANGE || v == 0) {
        fprintf(stderr, "alysctl export: %s %s: not a height >= 1\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, export_args_t *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
            if (parse_height("--from", argv[++i], &a->from) != 0)
                return -1;
            a->has_from = true;
        } else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) {
            if (parse_height("--to", argv[++i], &a->to) != 0)
                return -1;
            a->has_to = true;
        } else if (argv[i][0] != '-' && !a->path) {
            a->path = argv[i];
        } else {
            alysctl_usage_error("export", "unexpected argument '%s'", argv[i]);
            return -1;
        }
    }
    if (!a->path) {
        alysctl_usage_error("export", "no FILE given");
        return -1;
    }
    return 0;
}

/* Ask storage, again and again until STORAGE_WAIT_MS: it may be restarting.
 * *reply is a StorageMsg of the wanted case, the caller frees it. */
static int storage_call(alysctl_client_t *c, Alys__Storage__StorageMsg *msg,
                        Alys__Storage__StorageMsg__MsgCase want, alys_env_t **reply)
{
    int64_t deadline = alys_mono_ms() + STORAGE_WAIT_MS;
    while (alys_mono_ms() < deadline && !zsys_interrupted) {
        if (alysctl_storage_request(c, NULL, msg, REQUEST_MS, reply) != 0) {
            zclock_sleep(100);
            continue;
        }
        if ((*reply)->body_case == ALYS__BUS__ENVELOPE__BODY_STORAGE &&
            (*reply)->storage->msg_case == want)
            return 0;
        const char *e = alysctl_reply_error(*reply);
        fprintf(stderr, "alysctl: storage: %s\n", e ? e : "unexpected reply");
        alys_env_free(reply);
        return -1;
    }
    fprintf(stderr, "alysctl: storage did not answer within %d s\n", STORAGE_WAIT_MS / 1000);
    return -1;
}

static int get_head(alysctl_client_t *c, uint64_t *height, alys_hash_t genesis)
{
    Alys__Storage__GetHead gh = ALYS__STORAGE__GET_HEAD__INIT;
    Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
    msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_HEAD;
    msg.get_head = &gh;
    alys_env_t *rep = NULL;
    if (storage_call(c, &msg, ALYS__STORAGE__STORAGE_MSG__MSG_HEAD, &rep) != 0)
        return -1;
    const Alys__Storage__Head *h = rep->storage->head;
    int rc = h->genesis_hash.len == ALYS_HASH_LEN ? 0 : -1;
    if (rc == 0) {
        *height = h->height;
        memcpy(genesis, h->genesis_hash.data, ALYS_HASH_LEN);
    } else {
        fprintf(stderr, "alysctl: storage reported no genesis hash\n");
    }
    alys_env_free(&rep);
    return rc;
}

/* Write blocks [start, start + want) that one GetBlocks returns; *got is how
 * many it returned (maybe fewer: storage bounds its answers). */
static int copy_range(alysctl_client_t *c, alys_export_writer_t *w, uint64_t start, uint32_t want,
                      uint32_t *got)
{
    Alys__Storage__GetBlocks gb = ALYS__STORAGE__GET_BLOCKS__INIT;
    gb.start = start;
    gb.count = want;
    Alys__Storage__StorageMsg msg = ALYS__STORAGE__STORAGE_MSG__INIT;
    msg.msg_case = ALYS__STORAGE__STORAGE_MSG__MSG_GET_BLOCKS;
    msg.get_blocks = &gb;
    alys_env_t *rep = NULL;
    if (storage_call(c, &msg, ALYS__STORAGE__STORAGE_MSG__MSG_BLOCKS, &rep) != 0)
        return -1;
    const Alys__Storage__Blocks *b = rep->storage->blocks;
    int rc = 0;
    if (b->n_blocks == 0 || b->start != start || b->n_blocks > want) {
        fprintf(stderr,
                "alysctl: storage answered %zu blocks from %" PRIu64 " for %u from %" PRIu64 "\n",
                b->n_blocks, b->start, want, start);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < b->n_blocks; i++) {
        if (alys_export_writer_write_block(w, b->blocks[i].data, b->blocks[i].len) != 0) {
            fprintf(stderr, "alysctl: %s\n", alys_export_writer_error(w));
            rc = -1;
        }
    }
    *got = (uint32_t) b->n_blocks;
    alys_env_free(&rep);
    return rc;
}

static int check_range(export_args_t *a, uint64_t head)
{
    if (!a->has_from)
        a->from = 1;
    if (!a->has_to)
        a->to = head;
    if (head == 0) {
        fprintf(stderr, "alysctl export: the chain is empty (head 0)\n");
        return -1;
    }
    if (a->from > a->to || a->to > head) {
        fprintf(stderr,
                "alysctl export: range %" PRIu64 "..%" PRIu64 " is not within 1..%" PRIu64 "\n",
                a->from, a->to, head);
        return -1;
    }
    return 0;
}

static int write_export(alysctl_client_t *c, const export_args_t *a, const alys_hash_t genesis)
{
    char err[256];
    alys_export_writer_t *w = alys_export_writer_new(a->path, genesis, a->from,
                                                     a->to - a->from + 1, err, sizeof err);
    if (!w) {
        fprintf(stderr, "alysctl: %s\n", err);
        return -1;
    }
    int rc = 0;
    for (uint64_t h = a->from; rc == 0 && h <= a->to;) {
        uint64_t left = a->to - h + 1;
        uint32_t got = 0;
        rc = copy_range(c, w, h, left < BLOCKS_PER_CALL ? (uint32_t) left : BLOCKS_PER_CALL, &got);
        h += got;
    }
    if (rc == 0 && alys_export_writer_close(w) != 0) {
        fprintf(stderr, "alysctl: %s\n", alys_export_writer_error(w));
        rc = -1;
    }
    alys_export_writer_destroy(&w);
    return rc;
}

int alysctl_export(const alys_config_t *cfg, int argc, char **argv)
{
    export_args_t a;
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    alysctl_client_t *c = alysctl_client_new(cfg->ep_storage);
    if (!c) {
        fprintf(stderr, "alysctl: cannot connect %s\n", cfg->ep_storage);
        return 3;
    }
    uint64_t head = 0;
    alys_hash_t genesis;
    int64_t t0 = alys_mono_ms();
    int rc = get_head(c, &head, genesis) == 0 && check_range(&a, head) == 0 &&
                     write_export(c, &a, genesis) == 0
                 ? 0
                 : 3;
    alysctl_client_destroy(&c);
    /* The summary must not end up inside a stream written to stdout. */
    if (rc == 0)
        fprintf(strcmp(a.path, "-") == 0 ? stderr : stdout,
                "exported %" PRIu64 " blocks (%" PRIu64 "..%" PRIu64 ") to %s in %.1f s\n",
                a.to - a.from + 1, a.from, a.to, a.path, (double) (alys_mono_ms() - t0) / 1000.0);
    return rc;
}
