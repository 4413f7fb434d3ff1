/*  sim_main.c: alys-sim's command line. See sim.h and --help. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sim.h"
#include "version.h"

static const char usage[] =
    "usage: alys-sim --seed S [options]      run one case, bit-for-bit reproducible\n"
    "       alys-sim --seeds A..B [options]  sweep seeds A to B (inclusive)\n"
    "       alys-sim --matrix [--seed S]     the fault matrix: one named case per fault kind\n"
    "\n"
    "A case's parameters derive from its seed (height 100..10000, peers 1..10,\n"
    "failure rate 0..0.3, fault kinds, latencies, partitions, checkpoint interval);\n"
    "these options override them:\n"
    "  --height H              chain height when the sync starts (1..19000)\n"
    "  --grow G                blocks the chain grows by while syncing (0..1000)\n"
    "  --block-time-ms T       one new block every T ms of virtual time (100..60000)\n"
    "  --peers P               remote peers (1..16)\n"
    "  --failure-rate F        0..1: faulty peers, loss, partitions\n"
    "  --checkpoint-interval N blocks between checkpoints (1..100000)\n"
    "  --case NAME             a named fault case (see --list)\n"
    "  --inject-bug            storage model accepts a block that fails execution\n"
    "                          (the simulator's self-test: the run must fail)\n"
    "  --no-memo               verify every signature every time (no verdict memo)\n"
    "  --verbose               print every event\n"
    "  --list                  list the named cases\n"
    "  --help                  this text\n"
    "\n"
    "Each case prints its trace hash; a failure prints the seed, the invariant,\n"
    "the last events and the command that replays it. The last line is\n"
    "\"N passed, M failed\"; exit 0 when none failed, 1 otherwise, 2 on usage errors.\n";

typedef struct {
    bool has_height, has_grow, has_bt, has_peers, has_fr, has_cp;
    uint64_t height, grow, cp;
    uint32_t bt, peers;
    double fr;
    char name[48];
    bool inject_bug;
} overrides_t;

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "alys-sim: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (try --help)\n");
    return 2;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void apply(const overrides_t *o, sim_case_t *c)
{
    if (o->has_height)
        c->height = o->height;
    if (o->has_grow)
        c->grow = o->grow;
    if (o->has_bt)
        c->block_time_ms = o->bt;
    if (o->has_peers) {
        for (uint32_t p = c->peers; p < o->peers && p < SIM_MAX_PEERS; p++)
            c->fault[p] = SF_NONE;
        c->peers = o->peers;
    }
    if (o->has_fr && c->name[0]) {
        c->failure_rate = o->fr; /* generated cases drew with it already */
        c->loss = o->fr / 3;
    }
    if (o->has_cp)
        c->checkpoint_interval = o->cp;
    c->inject_bug = o->inject_bug;
}

static void flags(const overrides_t *o, char *out, size_t len)
{
    int n = 0;
    out[0] = 0;
#define ADD(...) n += snprintf(out + n, len - (size_t) n, __VA_ARGS__)
    if (o->name[0])
        ADD(" --case %s", o->name);
    if (o->has_height)
        ADD(" --height %" PRIu64, o->height);
    if (o->has_grow)
        ADD(" --grow %" PRIu64, o->grow);
    if (o->has_bt)
        ADD(" --block-time-ms %u", o->bt);
    if (o->has_peers)
        ADD(" --peers %u", o->peers);
    if (o->has_fr)
        ADD(" --failure-rate %g", o->fr);
    if (o->has_cp)
        ADD(" --checkpoint-interval %" PRIu64, o->cp);
    if (o->inject_bug)
        ADD(" --inject-bug");
#undef ADD
}

static void describe(const sim_case_t *c, char *out, size_t len)
{
    int n = snprintf(out, len, "height %" PRIu64 "+%" PRIu64 ", peers %u [", c->height, c->grow,
                     c->peers);
    for (uint32_t p = 0; p < c->peers && n > 0 && (size_t) n < len; p++)
        n += snprintf(out + n, len - (size_t) n, "%s%s%s%s", p ? " " : "",
                      sim_fault_name(c->fault[p]),
                      c->fault[p] == SF_CORRUPT || c->fault[p] == SF_BAD_CHAIN ? ":" : "",
                      c->fault[p] == SF_CORRUPT || c->fault[p] == SF_BAD_CHAIN
                          ? alys_block_error_name(c->corrupt[p])
                          : "");
    for (uint32_t i = 0; i < c->n_restarts && i < 4 && n > 0 && (size_t) n < len; i++)
        n += snprintf(out + n, len - (size_t) n, "%s%s@%" PRIu64, i ? " " : "] [kill ",
                      sim_actor_name(c->restart_actor[i]), c->restart_at[i]);
    if (n > 0 && (size_t) n < len)
        snprintf(out + n, len - (size_t) n,
                 "], failure rate %.3f, loss %.3f%s, latency %u+%u ms, block time %u ms, "
                 "window %u x%u, checkpoints every %" PRIu64,
                 c->failure_rate, c->loss, c->partitions ? ", partitions" : "", c->latency_ms,
                 c->jitter_ms, c->block_time_ms, c->download_window, c->max_parallel,
                 c->checkpoint_interval);
}

static bool run_one(const char *argv0, const sim_case_t *c, const overrides_t *o,
                    sim_chain_cache_t *cache, bool verbose, bool quiet_ok)
{
    sim_result_t res;
    char desc[512], fl[256];
    describe(c, desc, sizeof desc);
    flags(o, fl, sizeof fl);
    if (sim_run(c, cache, verbose, &res) != 0) {
        printf("FAIL seed %" PRIu64 ": out of memory\n", c->seed);
        return false;
    }
    if (res.ok) {
        if (!quiet_ok)
            printf("ok   seed %" PRIu64 "%s%s: head %" PRIu64 ", %" PRIu64 " events, %.1f s virtual, "
                   "trace %016" PRIx64 " (%s)\n",
                   c->seed, c->name[0] ? " " : "", c->name, res.head, res.events,
                   res.end_ms / 1000.0, res.trace_hash, desc);
        return true;
    }
    printf("FAIL seed %" PRIu64 "%s%s: %s: %s\n", c->seed, c->name[0] ? " " : "", c->name,
           res.invariant, res.detail);
    printf("  case: %s\n", desc);
    printf("  last events (virtual ms):\n");
    for (size_t i = 0; i < res.n_last; i++)
        printf("    %s\n", res.last[i]);
    printf("  trace %016" PRIx64 " after %" PRIu64 " events\n", res.trace_hash, res.events);
    printf("  replay: %s --seed %" PRIu64 "%s\n", argv0, c->seed, fl);
    return false;
}

static int parse_range(const char *s, uint64_t *a, uint64_t *b)
{
    const char *dots = strstr(s, "..");
    if (!dots || dots == s)
        return -1;
    char left[32];
    size_t n = (size_t) (dots - s);
    if (n >= sizeof left)
        return -1;
    memcpy(left, s, n);
    left[n] = 0;
    if (parse_u64(left, 0, UINT64_MAX, a) != 0 || parse_u64(dots + 2, 0, UINT64_MAX, b) != 0 ||
        *b < *a)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    if (alys_cli_asks_version(argc, argv)) {
        alys_print_version("alys-sim");
        return 0;
    }
    overrides_t o = {0};
    bool has_seed = false, has_seeds = false, matrix = false, verbose = false, no_memo = false;
    uint64_t seed = 1, a = 0, b = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        if (strcmp(k, "--help") == 0 || strcmp(k, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(k, "--list") == 0) {
            for (size_t j = 0; j < sim_named_count(); j++)
                printf("%s\n", sim_named_name(j));
            return 0;
        } else if (strcmp(k, "--verbose") == 0) {
            verbose = true;
            continue;
        } else if (strcmp(k, "--inject-bug") == 0) {
            o.inject_bug = true;
            continue;
        } else if (strcmp(k, "--no-memo") == 0) {
            no_memo = true;
            continue;
        } else if (strcmp(k, "--matrix") == 0) {
            matrix = true;
            continue;
        }
        if (strncmp(k, "--", 2) != 0)
            return usage_error("unexpected argument %s", k);
        if (!v)
            return usage_error("%s needs a value", k);
        i++;
        if (strcmp(k, "--seed") == 0) {
            if (parse_u64(v, 0, UINT64_MAX, &seed) != 0)
                return usage_error("--seed %s: not a number", v);
            has_seed = true;
        } else if (strcmp(k, "--seeds") == 0) {
            if (parse_range(v, &a, &b) != 0)
                return usage_error("--seeds %s: expected A..B with A <= B", v);
            has_seeds = true;
        } else if (strcmp(k, "--height") == 0) {
            if (parse_u64(v, 1, 19000, &o.height) != 0)
                return usage_error("--height %s: expected 1..19000", v);
            o.has_height = true;
        } else if (strcmp(k, "--grow") == 0) {
            if (parse_u64(v, 0, 1000, &o.grow) != 0)
                return usage_error("--grow %s: expected 0..1000", v);
            o.has_grow = true;
        } else if (strcmp(k, "--block-time-ms") == 0) {
            if (parse_u64(v, 100, 60000, &x) != 0)
                return usage_error("--block-time-ms %s: expected 100..60000", v);
            o.bt = (uint32_t) x;
            o.has_bt = true;
        } else if (strcmp(k, "--peers") == 0) {
            if (parse_u64(v, 1, SIM_MAX_PEERS, &x) != 0)
                return usage_error("--peers %s: expected 1..16", v);
            o.peers = (uint32_t) x;
            o.has_peers = true;
        } else if (strcmp(k, "--failure-rate") == 0) {
            char *end;
            o.fr = strtod(v, &end);
            if (*end || !(o.fr >= 0 && o.fr <= 1))
                return usage_error("--failure-rate %s: expected 0..1", v);
            o.has_fr = true;
        } else if (strcmp(k, "--checkpoint-interval") == 0) {
            if (parse_u64(v, 1, 100000, &o.cp) != 0)
                return usage_error("--checkpoint-interval %s: expected 1..100000", v);
            o.has_cp = true;
        } else if (strcmp(k, "--case") == 0) {
            sim_case_t tmp;
            if (sim_named_find(v, 1, &tmp) != 0)
                return usage_error("--case %s: unknown (see --list)", v);
            snprintf(o.name, sizeof o.name, "%s", v);
        } else {
            return usage_error("unknown option %s", k);
        }
    }
    if (has_seed + has_seeds + 0 > 1 || (has_seeds && matrix))
        return usage_error("%s", "give one of --seed, --seeds, --matrix");
    if (!has_seed && !has_seeds && !matrix)
        return usage_error("%s", "nothing to run: give --seed S, --seeds A..B or --matrix");
    alys_log_init("alys-sim", "error");
    sim_chain_cache_t *cache = sim_chain_cache_new();
    if (!cache) {
        fprintf(stderr, "alys-sim: out of memory\n");
        return 1;
    }
    if (no_memo)
        sim_chain_memo_off(cache);
    uint64_t passed = 0, failed = 0;
    if (matrix) {
        for (size_t j = 0; j < sim_named_count(); j++) {
            sim_case_t c;
            sim_named_case(j, seed, &c);
            overrides_t oo = o;
            snprintf(oo.name, sizeof oo.name, "%s", c.name);
            apply(&o, &c);
            if (run_one(argv[0], &c, &oo, cache, verbose, false))
                passed++;
            else
                failed++;
        }
    } else {
        uint64_t first = has_seeds ? a : seed, last = has_seeds ? b : seed;
        for (uint64_t s = first;; s++) {
            sim_case_t c;
            if (o.name[0])
                sim_named_find(o.name, s, &c);
            else
                sim_case_from_seed(&c, s, o.has_fr ? o.fr : -1);
            apply(&o, &c);
            if (run_one(argv[0], &c, &o, cache, verbose, has_seeds))
                passed++;
            else
                failed++;
            fflush(stdout);
            if (s == last)
                break;
        }
    }
    sim_chain_cache_destroy(&cache);
    printf("%" PRIu64 " passed, %" PRIu64 " failed\n", passed, failed);
    return failed ? 1 : 0;
}
