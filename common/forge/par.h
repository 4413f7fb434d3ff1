/*  forge/par.h: fork-join over independent items, for the CPU-bound parts
 *  of forging (key derivation, signing a batch of blocks). Threads never
 *  change a result: items are independent and written to their own slots.
 */
#ifndef ALYS_FORGE_PAR_H
#define ALYS_FORGE_PAR_H

#include <stddef.h>
#include <stdint.h>

#define ALYS_FORGE_MAX_THREADS 64

/* Online CPUs, 1..ALYS_FORGE_MAX_THREADS. */
uint32_t alys_forge_online_cpus(void);

/* Run fn(ctx, i) for i in [0, n) on up to `threads` threads (the caller is
 * one of them, so threads 0 or 1 means no thread is started) and return
 * when all are done. Items are taken from a shared counter (dynamic
 * balance); a thread that cannot be started leaves its share to the others. */
typedef void (*alys_forge_par_fn)(void *ctx, size_t i);
void alys_forge_parallel_for(size_t n, uint32_t threads, alys_forge_par_fn fn, void *ctx);

#endif
