/*  pool_txs.c: see pool_txs.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/mempool_tx.h"
#include "pool_txs.h"

void pool_txs_clear(pool_txs_t *pt)
{
    free(pt->txs);
    free(pt->accounts);
    memset(pt, 0, sizeof *pt);
}

static int bad(pool_txs_t *pt, char *err, size_t errlen, const char *why, size_t i)
{
    pool_txs_clear(pt);
    snprintf(err, errlen, "mempool reply: %s (item %zu)", why, i);
    return -1;
}

static const pool_account_t *find(const pool_txs_t *pt, const uint8_t key[ALYS_PUBKEY_LEN])
{
    size_t lo = 0, hi = pt->account_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(pt->accounts[mid].key, key, ALYS_PUBKEY_LEN);
        if (c == 0)
            return &pt->accounts[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int take_accounts(pool_txs_t *pt, const Alys__Mempool__MempoolTxs *m, char *err, size_t errlen)
{
    pt->accounts = calloc(m->n_accounts ? m->n_accounts : 1, sizeof *pt->accounts);
    if (!pt->accounts)
        return bad(pt, err, errlen, "out of memory for the accounts", 0);
    for (size_t i = 0; i < m->n_accounts; i++) {
        const Alys__Storage__AccountState *a = m->accounts[i];
        if (a->pubkey.len != ALYS_PUBKEY_LEN)
            return bad(pt, err, errlen, "an account key is not 32 bytes", i);
        if (!a->found && (a->balance || a->nonce))
            return bad(pt, err, errlen, "an absent account with a balance or nonce", i);
        if (i && memcmp(pt->accounts[i - 1].key, a->pubkey.data, ALYS_PUBKEY_LEN) >= 0)
            return bad(pt, err, errlen, "accounts not in strictly ascending key order", i);
        memcpy(pt->accounts[i].key, a->pubkey.data, ALYS_PUBKEY_LEN);
        pt->accounts[i].account = (alys_account_t){.balance = a->balance, .nonce = a->nonce};
        pt->account_count++;
    }
    return 0;
}

static int take_txs(pool_txs_t *pt, const Alys__Mempool__MempoolTxs *m, char *err, size_t errlen)
{
    pt->txs = calloc(m->n_txs ? m->n_txs : 1, sizeof *pt->txs);
    if (!pt->txs)
        return bad(pt, err, errlen, "out of memory for the txs", 0);
    for (size_t i = 0; i < m->n_txs; i++) {
        if (m->txs[i].len > ALYS_TX_MAX_BYTES ||
            alys_tx_decode(m->txs[i].data, m->txs[i].len, &pt->txs[i], NULL) != 0)
            return bad(pt, err, errlen, "a tx does not decode", i);
        if (!find(pt, pt->txs[i].from) || !find(pt, pt->txs[i].to))
            return bad(pt, err, errlen, "a tx's sender or recipient is not among the accounts", i);
        pt->tx_count++;
    }
    return 0;
}

int pool_txs_take(pool_txs_t *pt, const Alys__Mempool__MempoolTxs *m, uint32_t max_txs,
                  const uint8_t proposer[ALYS_PUBKEY_LEN], char *err, size_t errlen)
{
    memset(pt, 0, sizeof *pt);
    if (m->head_hash.len != ALYS_HASH_LEN)
        return bad(pt, err, errlen, "head hash not 32 bytes", 0);
    if (m->n_txs > max_txs)
        return bad(pt, err, errlen, "more txs than asked for", m->n_txs);
    if (m->n_accounts > 2 * m->n_txs + 1)
        return bad(pt, err, errlen, "more accounts than the txs and proposer touch", m->n_accounts);
    if (take_accounts(pt, m, err, errlen) != 0)
        return -1;
    if (!find(pt, proposer))
        return bad(pt, err, errlen, "the proposer's account is missing", 0);
    if (take_txs(pt, m, err, errlen) != 0)
        return -1;
    pt->head_height = m->head_height;
    memcpy(pt->head_hash, m->head_hash.data, ALYS_HASH_LEN);
    pt->valid = true;
    return 0;
}

bool pool_txs_for_head(const pool_txs_t *pt, const alys_hash_t hash)
{
    return pt->valid && memcmp(pt->head_hash, hash, ALYS_HASH_LEN) == 0;
}

int pool_txs_read(void *ctx, const uint8_t pubkey[ALYS_PUBKEY_LEN], alys_account_t *out)
{
    const pool_account_t *a = find(ctx, pubkey);
    if (!a)
        return -1;
    *out = a->account;
    return a->account.balance || a->account.nonce ? 1 : 0;
}
