/*  loadgen.c: see loadgen.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.pb-c.h"
#include "loadgen.h"

struct loadgen {
    const alys_forge_keys_t *keys;
    loadgen_params_t p;
    uint64_t *nonce;  /* per account: next nonce */
    uint64_t *budget; /* per account: what it may still spend; NULL = unbounded */
    uint32_t next_sender;
    uint64_t rng;
};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A uniform-enough value in [lo, hi] (test load, not cryptography). */
static uint64_t pick(uint64_t *s, uint64_t lo, uint64_t hi)
{
    uint64_t span = hi - lo;
    return span == UINT64_MAX ? splitmix(s) : lo + splitmix(s) % (span + 1);
}

static int set_budgets(loadgen_t *self, const alys_genesis_t *g, char *err, size_t errlen)
{
    uint32_t n = self->keys->account_count;
    self->budget = calloc(n, sizeof *self->budget);
    if (!self->budget) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        bool found = false;
        for (uint32_t j = 0; j < g->balance_count; j++)
            if (memcmp(g->balances[j].pubkey, self->keys->account_pub[i], ALYS_PUBKEY_LEN) == 0) {
                self->budget[i] += g->balances[j].balance;
                found = true;
            }
        if (!found) {
            snprintf(err, errlen,
                     "account %u of the seed is not funded in the genesis: "
                     "is --seed the chain's, and --accounts at most its account count?",
                     i);
            return -1;
        }
    }
    return 0;
}

loadgen_t *loadgen_new(const alys_forge_keys_t *keys, const alys_genesis_t *genesis,
                       const loadgen_params_t *p, char *err, size_t errlen)
{
    if (!keys || keys->account_count == 0 || p->amount_max == 0 || p->fee_min > p->fee_max) {
        snprintf(err, errlen, "need accounts, amount_max >= 1 and fee_min <= fee_max");
        return NULL;
    }
    loadgen_t *self = calloc(1, sizeof *self);
    if (!self || !(self->nonce = calloc(keys->account_count, sizeof *self->nonce))) {
        free(self);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->keys = keys;
    self->p = *p;
    self->rng = p->rng_seed;
    for (uint32_t i = 0; i < keys->account_count; i++)
        self->nonce[i] = p->first_nonce;
    if (genesis && set_budgets(self, genesis, err, errlen) != 0) {
        loadgen_destroy(&self);
        return NULL;
    }
    return self;
}

void loadgen_destroy(loadgen_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->nonce);
    free((*self_p)->budget);
    free(*self_p);
    *self_p = NULL;
}

int loadgen_set_account(loadgen_t *self, uint32_t i, uint64_t nonce, uint64_t balance)
{
    if (i >= self->keys->account_count || !self->budget)
        return -1;
    self->nonce[i] = nonce;
    self->budget[i] = balance;
    return 0;
}

/* Fill tx from sender i if it can pay (amount shrinks to fit the budget). */
static bool draft(loadgen_t *self, uint32_t i, alys_tx_t *tx)
{
    uint32_t n = self->keys->account_count;
    uint64_t fee = pick(&self->rng, self->p.fee_min, self->p.fee_max);
    uint64_t amount = pick(&self->rng, 1, self->p.amount_max);
    if (self->budget) {
        uint64_t b = self->budget[i];
        if (b <= fee)
            return false;
        if (amount > b - fee)
            amount = b - fee;
    }
    uint32_t to = n == 1 ? i : (uint32_t) ((i + 1 + pick(&self->rng, 0, n - 2)) % n);
    memset(tx, 0, sizeof *tx);
    memcpy(tx->from, self->keys->account_pub[i], ALYS_PUBKEY_LEN);
    memcpy(tx->to, self->keys->account_pub[to], ALYS_PUBKEY_LEN);
    tx->amount = amount;
    tx->fee = fee;
    tx->nonce = self->nonce[i];
    return true;
}

int loadgen_next(loadgen_t *self, alys_tx_t *out)
{
    uint32_t n = self->keys->account_count;
    for (uint32_t tries = 0; tries < n; tries++) {
        uint32_t i = self->next_sender;
        self->next_sender = (i + 1) % n;
        if (self->nonce[i] == UINT64_MAX || !draft(self, i, out))
            continue;
        alys_hash_t h;
        alys_tx_hash(out, h);
        if (alys_sign(self->keys->account_sec[i], h, out->signature) != 0)
            return -1;
        self->nonce[i]++;
        if (self->budget)
            self->budget[i] -= out->amount + out->fee;
        return 1;
    }
    return 0;
}

size_t loadgen_encode_tx(const alys_tx_t *tx, uint8_t *buf, size_t cap)
{
    Alys__Chain__Tx m = ALYS__CHAIN__TX__INIT;
    m.from = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, (uint8_t *) tx->from};
    m.to = (ProtobufCBinaryData){ALYS_PUBKEY_LEN, (uint8_t *) tx->to};
    m.amount = tx->amount;
    m.fee = tx->fee;
    m.nonce = tx->nonce;
    m.signature = (ProtobufCBinaryData){ALYS_SIG_LEN, (uint8_t *) tx->signature};
    size_t len = alys__chain__tx__get_packed_size(&m);
    if (len > cap)
        return 0;
    return alys__chain__tx__pack(&m, buf);
}

uint64_t loadgen_due(uint64_t rate, uint64_t start_ms, uint64_t now_ms, uint64_t sent)
{
    if (rate == 0)
        return 1;
    if (now_ms < start_ms)
        return 0;
    /* elapsed * rate / 1000 without overflow for any run shorter than ~5800 years */
    uint64_t elapsed = now_ms - start_ms;
    uint64_t target = elapsed / 1000 * rate + (elapsed % 1000) * rate / 1000 + 1;
    return target > sent ? target - sent : 0;
}

uint64_t loadgen_wait_ms(uint64_t rate, uint64_t start_ms, uint64_t now_ms, uint64_t sent)
{
    if (rate == 0 || loadgen_due(rate, start_ms, now_ms, sent) > 0)
        return 0;
    /* tx number `sent` (0-based) is due at start + sent * 1000 / rate (rounded up) */
    uint64_t at = start_ms + (sent / rate) * 1000 + ((sent % rate) * 1000 + rate - 1) / rate;
    return at > now_ms ? at - now_ms : 0;
}
