/*  alys-chaingen: command line for the deterministic chain generator.
 *  Parses arguments, runs alys_chaingen_run (chaingen.c), prints the result.
 *  Exit status: 0 done, 1 generation failed, 2 bad arguments.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaingen.h"
#include "version.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: alys-chaingen --blocks N --txs-per-block K --accounts A --authorities F\n"
            "                     --seed S --out DIR [--slot-ms 2000] [--genesis-time 1600000000]\n"
            "                     [--chain-id ID] [--fault KIND --fault-height H] [--threads T]\n"
            "                     [--no-verify]\n"
            "\n"
            "Writes DIR/genesis, DIR/keys (authority secret keys, mode 0600) and\n"
            "DIR/chain.export; the same arguments always give the same bytes.\n"
            "--threads only changes the speed; --no-verify skips re-executing every\n"
            "block with the chain's own rules (faster, same bytes).\n"
            "Fault kinds: bad_proposer_signature wrong_proposer bad_tx_signature\n"
            "  tx_root_mismatch parent_mismatch height_gap non_increasing_slot future_slot\n"
            "  bad_timestamp bad_nonce insufficient_balance state_root_mismatch malformed oversize\n");
}

/* Decimal only, whole string, no sign: "--blocks -1" must not become 2^64-1. */
static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = (s[0] >= '0' && s[0] <= '9') ? strtoull(s, &end, 10) : 0;
    if (!end || *end || errno == ERANGE) {
        fprintf(stderr, "alys-chaingen: --%s %s: not a non-negative integer\n", opt, s);
        return -1;
    }
    if (v > max) {
        fprintf(stderr, "alys-chaingen: --%s %s exceeds the limit %" PRIu64 "\n", opt, s, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_u32(const char *opt, const char *s, uint32_t *out)
{
    uint64_t v;
    if (parse_u64(opt, s, UINT32_MAX, &v) != 0)
        return -1;
    *out = (uint32_t) v;
    return 0;
}

static int copy_str(const char *opt, const char *s, char *out, size_t outlen)
{
    if (strlen(s) >= outlen) {
        fprintf(stderr, "alys-chaingen: --%s is longer than %zu characters\n", opt, outlen - 1);
        return -1;
    }
    snprintf(out, outlen, "%s", s);
    return 0;
}

enum {
    O_BLOCKS = 1,
    O_TXS,
    O_ACCOUNTS,
    O_AUTH,
    O_SEED,
    O_OUT,
    O_SLOT,
    O_GTIME,
    O_CHAIN,
    O_FAULT,
    O_FHEIGHT,
    O_THREADS,
    O_NO_VERIFY,
    O_HELP
};

static const struct option s_opts[] = {
    {"blocks", required_argument, NULL, O_BLOCKS},
    {"txs-per-block", required_argument, NULL, O_TXS},
    {"accounts", required_argument, NULL, O_ACCOUNTS},
    {"authorities", required_argument, NULL, O_AUTH},
    {"seed", required_argument, NULL, O_SEED},
    {"out", required_argument, NULL, O_OUT},
    {"slot-ms", required_argument, NULL, O_SLOT},
    {"genesis-time", required_argument, NULL, O_GTIME},
    {"chain-id", required_argument, NULL, O_CHAIN},
    {"fault", required_argument, NULL, O_FAULT},
    {"fault-height", required_argument, NULL, O_FHEIGHT},
    {"threads", required_argument, NULL, O_THREADS},
    {"no-verify", no_argument, NULL, O_NO_VERIFY},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

/* One option into c. Returns 0, -1 on a bad value. */
static int apply_opt(int o, const char *name, const char *arg, alys_chaingen_config_t *c,
                     const char **out_dir, unsigned *seen)
{
    char err[512];
    *seen |= 1u << o;
    switch (o) {
    case O_BLOCKS: return parse_u64(name, arg, UINT64_MAX, &c->blocks);
    case O_TXS: return parse_u32(name, arg, &c->txs_per_block);
    case O_ACCOUNTS: return parse_u32(name, arg, &c->accounts);
    case O_AUTH: return parse_u32(name, arg, &c->authorities);
    case O_SEED: return copy_str(name, arg, c->seed, sizeof c->seed);
    case O_OUT: *out_dir = arg; return 0;
    case O_SLOT: return parse_u64(name, arg, UINT64_MAX, &c->slot_ms);
    case O_GTIME: return parse_u64(name, arg, UINT64_MAX, &c->genesis_time);
    case O_CHAIN: return copy_str(name, arg, c->chain_id, sizeof c->chain_id);
    case O_FHEIGHT: return parse_u64(name, arg, UINT64_MAX, &c->fault_height);
    case O_THREADS: return parse_u32(name, arg, &c->threads);
    case O_NO_VERIFY: c->no_verify = true; return 0;
    case O_FAULT:
        if (alys_forge_fault_parse(arg, &c->fault, err, sizeof err) != 0) {
            fprintf(stderr, "alys-chaingen: %s\n", err);
            return -1;
        }
        return 0;
    default: return -1;
    }
}

static int parse_args(int argc, char **argv, alys_chaingen_config_t *c, const char **out_dir)
{
    static const struct {
        int opt;
        const char *name;
    } required[] = {
        {O_BLOCKS, "blocks"},    {O_TXS, "txs-per-block"}, {O_ACCOUNTS, "accounts"},
        {O_AUTH, "authorities"}, {O_SEED, "seed"},         {O_OUT, "out"},
    };
    unsigned seen = 0;
    int o, idx = 0;
    while ((o = getopt_long(argc, argv, "", s_opts, &idx)) != -1) {
        if (o == O_HELP) {
            usage(stdout);
            exit(0);
        }
        if (o == '?' || apply_opt(o, s_opts[idx].name, optarg, c, out_dir, &seen) != 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "alys-chaingen: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!(seen & (1u << required[i].opt))) {
            fprintf(stderr, "alys-chaingen: --%s is required\n", required[i].name);
            return -1;
        }
    }
    char err[512];
    if (alys_chaingen_config_check(c, err, sizeof err) != 0) {
        fprintf(stderr, "alys-chaingen: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (alys_cli_asks_version(argc, argv)) {
        alys_print_version("alys-chaingen");
        return 0;
    }
    alys_chaingen_config_t c;
    alys_chaingen_config_default(&c);
    const char *out_dir = NULL;
    if (parse_args(argc, argv, &c, &out_dir) != 0) {
        usage(stderr);
        return 2;
    }
    alys_chaingen_result_t r;
    char err[512];
    if (alys_chaingen_run(&c, out_dir, &r, err, sizeof err) != 0) {
        fprintf(stderr, "alys-chaingen: %s\n", err);
        return 1;
    }
    char head[2 * ALYS_HASH_LEN + 1], root[2 * ALYS_HASH_LEN + 1], gen[2 * ALYS_HASH_LEN + 1];
    alys_hex(r.head_hash, ALYS_HASH_LEN, head);
    alys_hex(r.state_root, ALYS_HASH_LEN, root);
    alys_hex(r.genesis_hash, ALYS_HASH_LEN, gen);
    printf("head_height %" PRIu64 "\nhead_hash %s\nstate_root %s\ngenesis_hash %s\n",
           r.head_height, head, root, gen);
    return fflush(stdout) == 0 ? 0 : 1;
}
