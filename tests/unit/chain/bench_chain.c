/*  bench_chain.c: micro-benchmark of the hot path for one 100-tx block:
 *  decode, stateless check, decode + check, execution. Prints figures; not a
 *  test (timings are machine-dependent). Usage: chain-bench [txs].
 *  Execution is timed twice: "cold" with a new overlay each time (every
 *  account vector computed, as for accounts not changed recently) and
 *  "warm" re-executing the same block on one overlay (every start-of-block
 *  vector comes from the overlay's vector cache, as for an account changed
 *  by a recent block); a real chain sits between the two. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixture.h"

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec * 1e6 + (double) t.tv_nsec / 1e3;
}

static fx_t s_fx;

static void build(uint32_t n, alys_block_t *b)
{
    alys_tx_t *txs = malloc(n * sizeof *txs);
    uint64_t nonce[FX_USERS] = {0};
    for (uint32_t i = 0; i < n; i++) {
        uint8_t to[32];
        memset(to, 0, 32);
        memcpy(to, &i, sizeof i);
        to[31] = 0xab;
        int from = (int) (i % FX_USERS);
        txs[i] = fx_tx(&s_fx, from, to, 10, 1, nonce[from]++);
    }
    alys_header_t parent;
    alys_genesis_parent(&s_fx.g, &parent);
    fx_block(&s_fx, &parent, s_fx.g.hash, 1, txs, n, b);
    free(txs);
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t) atoi(argv[1]) : 100;
    fx_init(&s_fx);
    alys_block_t b;
    build(n, &b);
    uint8_t *buf;
    size_t len;
    if (alys_block_encode(&b, &buf, &len) != 0)
        return 1;
    alys_verdict_t v;
    alys_block_t d;
    int iters = 20000;
    double t = now_us();
    for (int i = 0; i < iters; i++) {
        if (alys_block_decode(buf, len, &d, &v) != 0)
            return 1;
        alys_block_clear(&d);
    }
    double dec = (now_us() - t) / iters;
    iters = 50;
    t = now_us();
    for (int i = 0; i < iters; i++)
        if (!alys_block_check_stateless(&s_fx.g, &b, &v))
            return 1;
    double chk = (now_us() - t) / iters;
    t = now_us();
    for (int i = 0; i < iters; i++) {
        if (alys_block_decode(buf, len, &d, &v) != 0 || !alys_block_check_stateless(&s_fx.g, &d, &v))
            return 1;
        alys_block_clear(&d);
    }
    double both = (now_us() - t) / iters;
    alys_overlay_t *ov = alys_overlay_new();
    alys_state_view_t view;
    fx_view(&s_fx, ov, &view);
    alys_lattice_t start = view.lattice;
    iters = 200;
    t = now_us();
    for (int i = 0; i < iters; i++) {
        if (!alys_execute_block(&view, &b, &v)) {
            fprintf(stderr, "execute: %s\n", v.detail);
            return 1;
        }
        alys_overlay_reset(ov);
        view.lattice = start;
    }
    double exe = (now_us() - t) / iters;
    t = now_us();
    for (int i = 0; i < iters; i++) {
        alys_overlay_t *cold = alys_overlay_new();
        alys_state_view_t cv = view;
        cv.overlay = cold;
        cv.lattice = start;
        if (!cold || !alys_execute_block(&cv, &b, &v))
            return 1;
        alys_overlay_destroy(&cold);
    }
    double exe_cold = (now_us() - t) / iters;
    size_t touched = FX_USERS + n + 1;
    t = now_us();
    alys_lattice_t l = start;
    alys_account_t a = {5, 5};
    for (int i = 0; i < 2000; i++)
        alys_lattice_add_account(&l, s_fx.user_pk[i % FX_USERS], &a);
    double lat = (now_us() - t) / 2000;
    printf("block: %u txs, %zu bytes\n", n, len);
    printf("decode:                 %8.1f us\n", dec);
    printf("stateless check:        %8.1f us  (%.1f us/signature)\n", chk, chk / (n + 1));
    printf("decode + check:         %8.1f us\n", both);
    printf("execute (%zu accounts): %8.1f us cold, %.1f us warm  (%.2f us/lattice vector)\n",
           touched, exe_cold, exe, lat);
    free(buf);
    alys_block_clear(&b);
    alys_overlay_destroy(&ov);
    fx_fini(&s_fx);
    return 0;
}
