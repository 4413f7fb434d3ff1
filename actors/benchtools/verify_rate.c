/*  alys-verify-bench: the raw BIP340 verification rate of this machine, on
 *  1 thread and on N threads (default 2), through the project's own
 *  alys_verify (x-only key parsing included, as the validators pay it).
 *  scripts/bench_import.sh divides end-to-end import tx/s by the 2-thread
 *  figure measured in the same run.
 *
 *  Output, one "key value" per line:
 *      verify_1core_per_s 22000
 *      verify_2core_per_s 43000
 *      verify_per_cpu_s 22500
 *  The last is verifications per CPU-second of the verifying threads (their
 *  CLOCK_THREAD_CPUTIME_ID), which other load on the machine barely moves:
 *  bench_import.sh divides import tx per CPU-second of the node by it.
 *  usage: alys-verify-bench [--seconds S] [--threads N]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain/chain.h"
#include "util.h"
#include "version.h"

#define NSIGS       1024 /* distinct keys, messages, signatures */
#define MAX_THREADS 64

typedef struct {
    uint8_t pub[ALYS_PUBKEY_LEN];
    alys_hash_t msg;
    uint8_t sig[ALYS_SIG_LEN];
} item_t;

static item_t s_items[NSIGS];
static atomic_bool s_stop;

typedef struct {
    int offset;
    uint64_t done;
    uint64_t bad;
    double cpu_s; /* CPU time the thread used */
} worker_t;

static double thread_cpu_s(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0)
        return 0;
    return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static int make_items(void)
{
    for (int i = 0; i < NSIGS; i++) {
        uint8_t sk[ALYS_SECKEY_LEN];
        char label[32];
        snprintf(label, sizeof label, "verify-bench-%d", i);
        alys_sha256(label, strlen(label), sk);
        alys_sha256(sk, sizeof sk, s_items[i].msg);
        if (alys_keypair_pubkey(sk, s_items[i].pub) != 0 ||
            alys_sign(sk, s_items[i].msg, s_items[i].sig) != 0)
            return -1;
    }
    return 0;
}

static void *verify_loop(void *arg)
{
    worker_t *w = arg;
    double c0 = thread_cpu_s();
    for (int i = w->offset; !atomic_load_explicit(&s_stop, memory_order_relaxed); i++) {
        const item_t *it = &s_items[i % NSIGS];
        if (!alys_verify(it->pub, it->msg, it->sig))
            w->bad++;
        w->done++;
    }
    w->cpu_s = thread_cpu_s() - c0;
    return NULL;
}

/* Verifications per second with n threads for about ms milliseconds;
 * *per_cpu_s (if not NULL): per CPU-second of those threads. */
static double rate(int n, int ms, double *per_cpu_s)
{
    pthread_t th[MAX_THREADS];
    worker_t w[MAX_THREADS];
    atomic_store(&s_stop, false);
    int64_t t0 = alys_mono_us();
    for (int i = 0; i < n; i++) {
        w[i] = (worker_t){.offset = i * (NSIGS / n)};
        if (pthread_create(&th[i], NULL, verify_loop, &w[i]) != 0)
            return -1;
    }
    while (alys_mono_us() - t0 < (int64_t) ms * 1000)
        usleep(10000);
    atomic_store(&s_stop, true);
    uint64_t total = 0, bad = 0;
    double cpu = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += w[i].done;
        bad += w[i].bad;
        cpu += w[i].cpu_s;
    }
    if (per_cpu_s)
        *per_cpu_s = cpu > 0 ? (double) total / cpu : 0;
    double secs = (double) (alys_mono_us() - t0) / 1e6;
    if (bad) {
        fprintf(stderr, "alys-verify-bench: %llu signatures did not verify\n",
                (unsigned long long) bad);
        return -1;
    }
    return (double) total / secs;
}

int main(int argc, char **argv)
{
    if (alys_cli_asks_version(argc, argv)) {
        alys_print_version("alys-verify-bench");
        return 0;
    }
    if (alys_cli_asks_help(argc, argv)) {
        printf("usage: alys-verify-bench [--seconds S] [--threads N]\n"
               "Raw BIP340 verification rate of libsecp256k1 on 1 and N threads.\n");
        return 0;
    }
    double seconds = 2;
    int threads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "alys-verify-bench: unknown option or missing value '%s'\n", argv[i]);
            fprintf(stderr, "usage: alys-verify-bench [--seconds S] [--threads N]\n");
            return 2;
        }
    }
    if (seconds <= 0 || seconds > 600 || threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "alys-verify-bench: --seconds 0..600, --threads 1..%d\n", MAX_THREADS);
        return 2;
    }
    if (make_items() != 0) {
        fprintf(stderr, "alys-verify-bench: cannot make test signatures\n");
        return 1;
    }
    double per_cpu = 0;
    double r1 = rate(1, (int) (seconds * 1000), &per_cpu);
    double rn = threads > 1 ? rate(threads, (int) (seconds * 1000), NULL) : r1;
    if (r1 < 0 || rn < 0)
        return 1;
    printf("verify_1core_per_s %.0f\n", r1);
    if (threads > 1)
        printf("verify_%dcore_per_s %.0f\n", threads, rn);
    printf("verify_per_cpu_s %.0f\n", per_cpu);
    return 0;
}
