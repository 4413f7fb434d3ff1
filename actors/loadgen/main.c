/*  alys-loadgen: valid signed transfers from a chain's generated accounts
 *  at a given rate, for the devnet and benchmarks: written to a file or
 *  stdout in the chain's tx encoding (see loadgen.h), or submitted to a
 *  node over the wire (--submit: SubmitTx to its [network] listen
 *  endpoint, submit.h), as a peer would. Everything it decides is in
 *  loadgen.c; this file parses arguments, paces with the clock and writes
 *  or sends.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain/export.h"
#include "chain/memstate.h"
#include "chain/state.h"
#include "loadgen.h"
#include "submit.h"
#include "version.h"

#define MAX_ACCOUNTS 100000

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void) sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: alys-loadgen --seed S --accounts A --rate TPS [--count N] [--duration SECONDS]\n"
            "                    [--out FILE] [--format hex|bin] [--genesis FILE [--chain FILE]]\n"
            "                    [--first-nonce N] [--amount-max X] [--fee-min F] [--fee-max F]\n"
            "                    [--rng-seed R] [--submit ENDPOINT [--batch N] [--bad-signatures]]\n"
            "       alys-loadgen --seed S --accounts A --export-key I --out FILE\n"
            "Writes signed transfers between the first A accounts of the chain generated\n"
            "with seed S (alys-chaingen --seed S: the same keys), TPS per second (0: as fast\n"
            "as possible, at most %d), until N txs or SECONDS have passed (whichever comes\n"
            "first; neither: until SIGINT/SIGTERM).\n"
            "  --out FILE       write there (default: stdout, also '-')\n"
            "  --format hex     one hex-encoded alys.chain.Tx per line (default)\n"
            "  --format bin     per tx: u32 little-endian length, then the encoded Tx\n"
            "  --genesis FILE   check the accounts are funded there and never let one spend\n"
            "                   more than its genesis balance\n"
            "  --chain FILE     the chain's export (alys-chaingen's chain.export): replayed\n"
            "                   with the chain's own execution rules to start every account\n"
            "                   at its head nonce and balance (needs --genesis)\n"
            "  --first-nonce N  every account's next nonce when there is no --chain\n"
            "                   (default 0)\n"
            "  --amount-max X   amounts in [1, X] (default 1000)\n"
            "  --fee-min F, --fee-max G  fees in [F, G] (default 1 .. 10)\n"
            "  --rng-seed R     recipient/amount/fee stream (default 1): runs are reproducible\n"
            "  --submit EP      send the txs as SubmitTx messages, as a peer does, to the node\n"
            "                   at EP: alys://KEY@HOST:PORT (`alysctl key show --endpoint` on\n"
            "                   it; CURVE with a fresh key of ours), or tcp://HOST:PORT for a\n"
            "                   node with [network] plaintext (needs --genesis for the\n"
            "                   handshake); a summary of the node's answers goes to stderr\n"
            "  --batch N        txs per SubmitTx (1..256, default 64); a partial batch is\n"
            "                   sent after 100 ms\n"
            "  --bad-signatures every tx's signature broken (tests of a hostile client)\n"
            "  --export-key I   write account I's secret key (64 hex digits, mode 0600) to\n"
            "                   --out and print its public key (for alysctl tx send)\n",
            LOADGEN_MAX_RATE);
}

/* Decimal only, whole string, no sign, at most max. */
static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *s == '-' || *s == '+' || errno || !end || *end) {
        fprintf(stderr, "alys-loadgen: --%s %s: not a non-negative integer\n", opt, s);
        return -1;
    }
    if (v > max) {
        fprintf(stderr, "alys-loadgen: --%s %s exceeds the limit %" PRIu64 "\n", opt, s, max);
        return -1;
    }
    *out = v;
    return 0;
}

typedef struct {
    const char *seed, *out, *genesis, *chain, *submit;
    bool hex, bad_signatures, has_export;
    uint64_t accounts, rate, count, duration, batch, export_key;
    bool has_rate;
    loadgen_params_t p;
} args_t;

static int parse_args(int argc, char **argv, args_t *a)
{
    static const struct option opts[] = {{"seed", required_argument, 0, 's'},
                                         {"accounts", required_argument, 0, 'a'},
                                         {"rate", required_argument, 0, 'r'},
                                         {"count", required_argument, 0, 'n'},
                                         {"duration", required_argument, 0, 'd'},
                                         {"out", required_argument, 0, 'o'},
                                         {"format", required_argument, 0, 'f'},
                                         {"genesis", required_argument, 0, 'g'},
                                         {"first-nonce", required_argument, 0, 'N'},
                                         {"amount-max", required_argument, 0, 'A'},
                                         {"fee-min", required_argument, 0, 'm'},
                                         {"fee-max", required_argument, 0, 'M'},
                                         {"rng-seed", required_argument, 0, 'R'},
                                         {"chain", required_argument, 0, 'c'},
                                         {"submit", required_argument, 0, 'S'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"bad-signatures", no_argument, 0, 'B'},
                                         {"export-key", required_argument, 0, 'K'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    *a = (args_t){.hex = true,
                  .batch = 64,
                  .p = {.amount_max = 1000, .fee_min = 1, .fee_max = 10, .rng_seed = 1}};
    int c, rc = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': a->seed = optarg; break;
        case 'a': rc = parse_u64("accounts", optarg, MAX_ACCOUNTS, &a->accounts); break;
        case 'r':
            rc = parse_u64("rate", optarg, LOADGEN_MAX_RATE, &a->rate);
            a->has_rate = true;
            break;
        case 'n': rc = parse_u64("count", optarg, UINT64_MAX, &a->count); break;
        case 'd': rc = parse_u64("duration", optarg, 365ULL * 24 * 3600, &a->duration); break;
        case 'o': a->out = optarg; break;
        case 'g': a->genesis = optarg; break;
        case 'c': a->chain = optarg; break;
        case 'S': a->submit = optarg; break;
        case 'b': rc = parse_u64("batch", optarg, SUBMIT_MAX_BATCH, &a->batch); break;
        case 'B': a->bad_signatures = true; break;
        case 'K':
            rc = parse_u64("export-key", optarg, MAX_ACCOUNTS - 1, &a->export_key);
            a->has_export = true;
            break;
        case 'N': rc = parse_u64("first-nonce", optarg, UINT64_MAX - 1, &a->p.first_nonce); break;
        case 'A': rc = parse_u64("amount-max", optarg, UINT64_MAX / 2, &a->p.amount_max); break;
        case 'm': rc = parse_u64("fee-min", optarg, UINT64_MAX / 2, &a->p.fee_min); break;
        case 'M': rc = parse_u64("fee-max", optarg, UINT64_MAX / 2, &a->p.fee_max); break;
        case 'R': rc = parse_u64("rng-seed", optarg, UINT64_MAX, &a->p.rng_seed); break;
        case 'f':
            if (strcmp(optarg, "hex") == 0 || strcmp(optarg, "bin") == 0) {
                a->hex = strcmp(optarg, "hex") == 0;
            } else {
                fprintf(stderr, "alys-loadgen: --format %s: hex or bin\n", optarg);
                rc = -1;
            }
            break;
        case 'h': usage(stdout); exit(0);
        default: rc = -1; break;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "alys-loadgen: unexpected argument '%s'\n", argv[optind]);
        rc = -1;
    }
    if (rc == 0 && a->has_export) {
        if (!a->seed || a->export_key >= a->accounts || !a->out) {
            fprintf(stderr, "alys-loadgen: --export-key I needs --seed, --accounts > I and --out\n");
            rc = -1;
        }
        if (rc != 0)
            usage(stderr);
        return rc;
    }
    if (rc == 0 && a->submit && (!a->genesis || a->batch == 0)) {
        fprintf(stderr, "alys-loadgen: --submit needs --genesis (the handshake) and --batch >= 1\n");
        rc = -1;
    }
    if (rc == 0 && (!a->seed || a->accounts == 0 || !a->has_rate)) {
        fprintf(stderr, "alys-loadgen: --seed, --accounts (>= 1) and --rate are required\n");
        rc = -1;
    }
    if (rc == 0 && a->chain && !a->genesis) {
        fprintf(stderr, "alys-loadgen: --chain needs --genesis (the chain's genesis file)\n");
        rc = -1;
    }
    if (rc == 0 && (a->p.amount_max == 0 || a->p.fee_min > a->p.fee_max)) {
        fprintf(stderr, "alys-loadgen: need --amount-max >= 1 and --fee-min <= --fee-max\n");
        rc = -1;
    }
    if (rc != 0)
        usage(stderr);
    return rc;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t) (ms / 1000), .tv_nsec = (long) (ms % 1000) * 1000000};
    nanosleep(&ts, NULL); /* EINTR: the loop re-checks stop_requested */
}

static int write_tx(FILE *f, bool hex, const alys_tx_t *tx)
{
    uint8_t buf[LOADGEN_TX_MAX_BYTES];
    size_t len = loadgen_encode_tx(tx, buf, sizeof buf);
    if (len == 0)
        return -1;
    if (hex) {
        char line[2 * LOADGEN_TX_MAX_BYTES + 2];
        alys_hex(buf, len, line);
        return fprintf(f, "%s\n", line) < 0 ? -1 : 0;
    }
    uint8_t hdr[4] = {(uint8_t) len, (uint8_t) (len >> 8), (uint8_t) (len >> 16),
                      (uint8_t) (len >> 24)};
    return fwrite(hdr, 1, 4, f) == 4 && fwrite(buf, 1, len, f) == len ? 0 : -1;
}

/* Generate and write until a bound, the accounts' funds or a signal. */
static int run(const args_t *a, loadgen_t *gen, FILE *out, uint64_t *sent)
{
    uint64_t start = now_ms();
    for (;;) {
        if (stop_requested || (a->count && *sent >= a->count) ||
            (a->duration && now_ms() - start >= a->duration * 1000))
            return 0;
        uint64_t wait = loadgen_wait_ms(a->rate, start, now_ms(), *sent);
        if (wait) {
            fflush(out);
            sleep_ms(wait > 100 ? 100 : wait);
            continue;
        }
        alys_tx_t tx;
        int rc = loadgen_next(gen, &tx);
        if (rc == 0) {
            fprintf(stderr, "alys-loadgen: every account has spent its genesis balance\n");
            return 0;
        }
        if (rc < 0 || write_tx(out, a->hex, &tx) != 0) {
            fprintf(stderr, "alys-loadgen: %s\n", rc < 0 ? "signing failed" : strerror(errno));
            return -1;
        }
        (*sent)++;
    }
}

/* Send the txs to a node (--submit): batches of a->batch, a partial batch
 * after SUBMIT_FLUSH_MS, answers tallied as they come. */
#define SUBMIT_FLUSH_MS 100

static int run_submit(const args_t *a, loadgen_t *gen, submit_t *sub, uint64_t *sent)
{
    alys_tx_t batch[SUBMIT_MAX_BATCH];
    size_t n = 0;
    uint64_t start = now_ms(), first_at = 0;
    bool exhausted = false; /* no account can pay any more */
    for (;;) {
        bool done = exhausted || stop_requested || (a->count && *sent >= a->count) ||
                    (a->duration && now_ms() - start >= a->duration * 1000);
        bool flush = n == a->batch || (n > 0 && (done || now_ms() - first_at >= SUBMIT_FLUSH_MS));
        if (flush) {
            if (submit_send(sub, batch, n) != 0) {
                fprintf(stderr, "alys-loadgen: cannot send to the node\n");
                return -1;
            }
            n = 0;
        }
        if (done)
            return 0;
        uint64_t wait = loadgen_wait_ms(a->rate, start, now_ms(), *sent);
        if (wait) {
            submit_poll(sub, 0);
            sleep_ms(wait > 10 ? 10 : wait);
            continue;
        }
        int g = loadgen_next(gen, &batch[n]);
        if (g == 0) {
            fprintf(stderr, "alys-loadgen: every account has spent its genesis balance\n");
            exhausted = true; /* flush what is pending, then stop */
            continue;
        }
        if (g < 0) {
            fprintf(stderr, "alys-loadgen: signing failed\n");
            return -1;
        }
        if (a->bad_signatures)
            batch[n].signature[0] ^= 1;
        if (n++ == 0)
            first_at = now_ms();
        (*sent)++;
    }
}

/* --export-key: account I's secret to a 0600 file, its public key on stdout. */
static int export_key(const args_t *a)
{
    alys_forge_keys_t keys;
    memset(&keys, 0, sizeof keys);
    if (alys_forge_keys_derive(a->seed, 0, (uint32_t) a->accounts, &keys) != 0) {
        fprintf(stderr, "alys-loadgen: cannot derive the accounts' keys\n");
        return 1;
    }
    char sec[2 * ALYS_SECKEY_LEN + 1], pub[2 * ALYS_PUBKEY_LEN + 1];
    alys_hex(keys.account_sec[a->export_key], ALYS_SECKEY_LEN, sec);
    alys_hex(keys.account_pub[a->export_key], ALYS_PUBKEY_LEN, pub);
    alys_forge_keys_clear(&keys);
    int fd = open(a->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    int rc = f && fprintf(f, "%s\n", sec) > 0 ? 0 : 1;
    if (f ? fclose(f) != 0 : (fd >= 0 && close(fd) != 0))
        rc = 1;
    memset(sec, 0, sizeof sec);
    if (rc != 0) {
        fprintf(stderr, "alys-loadgen: %s: %s\n", a->out, strerror(errno));
        return 1;
    }
    printf("%s\n", pub);
    return 0;
}

/* Execute every block of the export on st (checks every state root). */
static int replay_blocks(alys_export_reader_t *r, const alys_genesis_t *g, alys_memstate_t *st,
                         uint64_t *blocks)
{
    alys_overlay_t *ov = alys_overlay_new();
    if (!ov)
        return -1;
    alys_state_view_t view;
    alys_memstate_view_init(st, g, ov, &view);
    char err[256];
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc, out = 0;
    while (out == 0 && (rc = alys_export_reader_next(r, &bytes, &len, err, sizeof err)) == 1) {
        alys_block_t b;
        alys_verdict_t v;
        memset(&b, 0, sizeof b);
        if (alys_block_decode(bytes, len, &b, &v) != 0 || !alys_execute_block(&view, &b, &v)) {
            fprintf(stderr, "alys-loadgen: --chain block %" PRIu64 ": %s\n", *blocks + 1, v.detail);
            out = -1;
        } else if (alys_memstate_commit_overlay(st, ov) != 0) {
            fprintf(stderr, "alys-loadgen: out of memory replaying --chain\n");
            out = -1;
        }
        alys_block_clear(&b);
        free(bytes);
        (*blocks)++;
    }
    if (out == 0 && rc < 0) {
        fprintf(stderr, "alys-loadgen: %s\n", err);
        out = -1;
    }
    alys_overlay_destroy(&ov);
    return out;
}

/* Start every account at its state after the chain's last block. The
 * state is an alys_memstate (unkeyed hash: for trusted, generated chains;
 * see memstate.h). */
static int replay_chain(const char *path, const alys_genesis_t *g, const alys_forge_keys_t *keys,
                        loadgen_t *gen)
{
    char err[512];
    alys_export_reader_t *r = alys_export_reader_new(path, err, sizeof err);
    if (!r) {
        fprintf(stderr, "alys-loadgen: %s\n", err);
        return -1;
    }
    alys_memstate_t *st = alys_memstate_new();
    uint64_t blocks = 0;
    int rc = -1;
    const alys_export_header_t *h = alys_export_reader_header(r);
    if (memcmp(h->genesis_hash, g->hash, ALYS_HASH_LEN) != 0)
        fprintf(stderr, "alys-loadgen: %s is not a chain of this genesis\n", path);
    else if (h->first_height != 1)
        fprintf(stderr,
                "alys-loadgen: %s starts at height %" PRIu64 ": a replay needs the "
                "whole chain from height 1\n",
                path, h->first_height);
    else if (st && alys_memstate_load_genesis(st, g) == 0 && replay_blocks(r, g, st, &blocks) == 0)
        rc = 0;
    for (uint32_t i = 0; rc == 0 && i < keys->account_count; i++) {
        alys_account_t a;
        alys_memstate_get(st, keys->account_pub[i], &a);
        rc = loadgen_set_account(gen, i, a.nonce, a.balance);
    }
    if (rc == 0)
        fprintf(stderr, "alys-loadgen: replayed %" PRIu64 " blocks: accounts start at the head\n",
                blocks);
    alys_memstate_destroy(&st);
    alys_export_reader_destroy(&r);
    return rc;
}

static int load_inputs(const args_t *a, alys_forge_keys_t *keys, alys_genesis_t *g, bool *have_g)
{
    char err[512];
    if (a->genesis) {
        if (alys_genesis_load(a->genesis, g, err, sizeof err) != 0) {
            fprintf(stderr, "alys-loadgen: %s\n", err);
            return -1;
        }
        *have_g = true;
    }
    if (alys_forge_keys_derive(a->seed, 0, (uint32_t) a->accounts, keys) != 0) {
        fprintf(stderr, "alys-loadgen: cannot derive the accounts' keys\n");
        return -1;
    }
    return 0;
}

/* Handshake, send, drain the answers, print the tally. */
static int submit_all(const args_t *a, loadgen_t *gen, const alys_genesis_t *g)
{
    char err[256];
    submit_t *sub = submit_new(a->submit, g->hash, 5000, err, sizeof err);
    if (!sub) {
        fprintf(stderr, "alys-loadgen: %s\n", err);
        return -1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    uint64_t sent = 0;
    int rc = run_submit(a, gen, sub, &sent);
    submit_drain(sub, 5000);
    submit_tally_print(submit_tally(sub), stderr);
    submit_destroy(&sub);
    return rc;
}

static int finish_submit(const args_t *a, loadgen_t *gen, alys_genesis_t *g,
                         alys_forge_keys_t *keys, int rc)
{
    (void) a;
    loadgen_destroy(&gen);
    alys_forge_keys_clear(keys);
    alys_genesis_clear(g);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (alys_cli_asks_version(argc, argv)) {
        alys_print_version("alys-loadgen");
        return 0;
    }
    args_t a;
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    if (a.has_export)
        return export_key(&a);
    alys_forge_keys_t keys;
    memset(&keys, 0, sizeof keys);
    alys_genesis_t g;
    memset(&g, 0, sizeof g);
    bool have_g = false;
    int rc = load_inputs(&a, &keys, &g, &have_g);
    char err[512];
    loadgen_t *gen = rc == 0 ? loadgen_new(&keys, have_g ? &g : NULL, &a.p, err, sizeof err) : NULL;
    if (rc == 0 && !gen) {
        fprintf(stderr, "alys-loadgen: %s\n", err);
        rc = -1;
    }
    if (rc == 0 && a.chain && replay_chain(a.chain, &g, &keys, gen) != 0)
        rc = -1;
    if (rc == 0 && a.submit)
        return finish_submit(&a, gen, &g, &keys, submit_all(&a, gen, &g));
    FILE *out = NULL;
    if (rc == 0) {
        out = (!a.out || strcmp(a.out, "-") == 0) ? stdout : fopen(a.out, a.hex ? "w" : "wb");
        if (!out) {
            fprintf(stderr, "alys-loadgen: %s: %s\n", a.out, strerror(errno));
            rc = -1;
        }
    }
    uint64_t sent = 0;
    if (rc == 0) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, SIG_IGN);
        rc = run(&a, gen, out, &sent);
        if ((out != stdout ? fclose(out) : fflush(out)) != 0 && rc == 0) {
            fprintf(stderr, "alys-loadgen: write: %s\n", strerror(errno));
            rc = -1;
        }
        fprintf(stderr, "alys-loadgen: %" PRIu64 " txs written\n", sent);
    }
    loadgen_destroy(&gen);
    alys_forge_keys_clear(&keys);
    if (have_g)
        alys_genesis_clear(&g);
    return rc == 0 ? 0 : 1;
}
