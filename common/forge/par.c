/*  forge/par.c: see par.h. */
#include "forge/par.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

uint32_t alys_forge_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > ALYS_FORGE_MAX_THREADS ? ALYS_FORGE_MAX_THREADS : (uint32_t) n;
}

typedef struct {
    alys_forge_par_fn fn;
    void *ctx;
    size_t n;
    atomic_size_t next;
} par_t;

static void *par_worker(void *arg)
{
    par_t *p = arg;
    for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->n;)
        p->fn(p->ctx, i);
    return NULL;
}

void alys_forge_parallel_for(size_t n, uint32_t threads, alys_forge_par_fn fn, void *ctx)
{
    par_t p = {.fn = fn, .ctx = ctx, .n = n};
    atomic_init(&p.next, 0);
    pthread_t tid[ALYS_FORGE_MAX_THREADS];
    uint32_t started = 0;
    for (uint32_t k = 1; k < threads && k < n && k < ALYS_FORGE_MAX_THREADS; k++)
        if (pthread_create(&tid[started], NULL, par_worker, &p) == 0)
            started++;
    par_worker(&p);
    for (uint32_t k = 0; k < started; k++)
        pthread_join(tid[k], NULL);
}
