/*  test_records.c: the on-disk encodings of the store (storage_schema.c)
 *  byte for byte against the layouts documented in storage.h. A change here
 *  is a change of the database format (STORAGE_FORMAT must move with it).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "storage_internal.h"

/* Column family names are part of the format: RocksDB opens them by name. */
Test(records, column_family_names)
{
    const char *want[CF_COUNT] = {"default", "headers", "bodies",      "hash_index", "state",
                                  "undo",    "meta",    "checkpoints", "peers"};
    for (int i = 0; i < CF_COUNT; i++)
        cr_assert_str_eq(storage_cf_names[i], want[i], "column family %d", i);
    cr_assert_str_eq(STORAGE_FORMAT, "alys-storage/1");
}

/* Heights are big-endian keys so that byte order is height order. */
Test(records, height_keys_sort_by_height)
{
    uint8_t a[HEIGHT_KEY_LEN], b[HEIGHT_KEY_LEN];
    put_be64(a, 255);
    put_be64(b, 256);
    const uint8_t want[HEIGHT_KEY_LEN] = {0, 0, 0, 0, 0, 0, 0, 0xff};
    cr_assert_arr_eq(a, want, sizeof want);
    cr_assert_lt(memcmp(a, b, sizeof a), 0);
    cr_assert_eq(get_be64(b), 256);
}

/* balance LE64 || nonce LE64 */
Test(records, account_layout)
{
    alys_account_t a = {.balance = 0x0102030405060708ULL, .nonce = 0x1122};
    uint8_t out[ACCOUNT_LEN];
    storage_account_encode(&a, out);
    const uint8_t want[ACCOUNT_LEN] = {8, 7, 6, 5, 4, 3, 2, 1, 0x22, 0x11, 0, 0, 0, 0, 0, 0};
    cr_assert_arr_eq(out, want, sizeof want);
    alys_account_t back;
    storage_account_decode(out, &back);
    cr_assert_eq(back.balance, a.balance);
    cr_assert_eq(back.nonce, a.nonce);
    cr_assert(account_is_zero(&(alys_account_t){0}));
    cr_assert_not(account_is_zero(&(alys_account_t){.nonce = 1}));
}

/* height BE64 || hash[32] || state_root[32] || slot BE64 (80 bytes) */
Test(records, head_layout)
{
    cr_assert_eq(HEAD_RECORD_LEN, 80);
    storage_head_t h = {.height = 0x0a0b, .slot = 0x0c0d, .last_checkpoint = 99};
    memset(h.hash, 0xaa, ALYS_HASH_LEN);
    memset(h.state_root, 0xbb, ALYS_HASH_LEN);
    memset(h.genesis_hash, 0xcc, ALYS_HASH_LEN);
    uint8_t rec[HEAD_RECORD_LEN];
    storage_head_encode(&h, rec);
    uint8_t want[HEAD_RECORD_LEN] = {0};
    want[6] = 0x0a;
    want[7] = 0x0b;
    memset(want + 8, 0xaa, ALYS_HASH_LEN);
    memset(want + 40, 0xbb, ALYS_HASH_LEN);
    want[78] = 0x0c;
    want[79] = 0x0d;
    cr_assert_arr_eq(rec, want, sizeof want);
    /* Decoding keeps what the record does not carry. */
    storage_head_t back = {.last_checkpoint = 7};
    memset(back.genesis_hash, 0x11, ALYS_HASH_LEN);
    storage_head_decode(rec, &back);
    cr_assert_eq(back.height, h.height);
    cr_assert_eq(back.slot, h.slot);
    cr_assert_arr_eq(back.hash, h.hash, ALYS_HASH_LEN);
    cr_assert_arr_eq(back.state_root, h.state_root, ALYS_HASH_LEN);
    cr_assert_eq(back.last_checkpoint, 7);
    cr_assert_eq(back.genesis_hash[0], 0x11);
}

/* version u8 = 1 || count u32 LE || count x (pubkey[32] || balance LE64 ||
 * nonce LE64) */
Test(records, undo_layout_and_parse)
{
    storage_undo_t u = {0};
    cr_assert_eq(storage_undo_reserve(&u, 1), 0); /* room for 3 entries */
    uint8_t pk[ALYS_PUBKEY_LEN];
    for (int i = 0; i < 3; i++) {
        memset(pk, 0x10 + i, sizeof pk);
        storage_undo_append(&u, pk, &(alys_account_t){.balance = (uint64_t) i + 1, .nonce = 2});
    }
    storage_undo_append(&u, pk, &(alys_account_t){0}); /* beyond the reservation: dropped */
    storage_undo_finish(&u);
    cr_assert_eq(u.len, UNDO_HEADER_LEN + 3 * UNDO_ENTRY_LEN);
    const uint8_t head[UNDO_HEADER_LEN] = {1, 3, 0, 0, 0};
    cr_assert_arr_eq(u.bytes, head, sizeof head);
    const uint8_t *e1 = u.bytes + UNDO_HEADER_LEN + UNDO_ENTRY_LEN;
    cr_assert_eq(e1[0], 0x11);
    cr_assert_eq(e1[ALYS_PUBKEY_LEN], 2, "balance LE64");
    cr_assert_eq(e1[ALYS_PUBKEY_LEN + 8], 2, "nonce LE64");
    uint32_t count = 0;
    cr_assert_eq(storage_undo_count(u.bytes, u.len, &count), 0);
    cr_assert_eq(count, 3);
    cr_assert_eq(storage_undo_count(u.bytes, u.len - 1, &count), -2, "torn entry");
    cr_assert_eq(storage_undo_count(u.bytes, 4, &count), -1, "short header");
    u.bytes[0] = 2;
    cr_assert_eq(storage_undo_count(u.bytes, u.len, &count), -1, "unknown version");
    u.bytes[0] = 1;
    u.bytes[1] = 4;
    cr_assert_eq(storage_undo_count(u.bytes, u.len, &count), -2, "count disagrees");
    /* A new block starts a new record in the same buffer. */
    cr_assert_eq(storage_undo_reserve(&u, 0), 0);
    storage_undo_finish(&u);
    cr_assert_eq(u.len, UNDO_HEADER_LEN);
    cr_assert_eq(storage_undo_count(u.bytes, u.len, &count), 0);
    cr_assert_eq(count, 0);
    storage_undo_free(&u);
    cr_assert_null(u.bytes);
}

/* A BlockCheckpoint record names the block; without progress the store
 * fills a minimal SyncProgress. */
Test(records, checkpoint_record)
{
    alys_header_t h = {.height = 40};
    memset(h.parent_hash, 0x39, ALYS_HASH_LEN);
    memset(h.state_root, 0x5e, ALYS_HASH_LEN);
    alys_hash_t hash;
    memset(hash, 0x40, sizeof hash);
    uint8_t *buf;
    size_t len;
    cr_assert_eq(storage_checkpoint_pack(&h, hash, NULL, 20, 1234, &buf, &len), 0);
    Alys__Chain__BlockCheckpoint *cp = alys__chain__block_checkpoint__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(cp);
    cr_assert_eq(cp->height, 40);
    cr_assert_arr_eq(cp->hash.data, hash, ALYS_HASH_LEN);
    cr_assert_arr_eq(cp->parent_hash.data, h.parent_hash, ALYS_HASH_LEN);
    cr_assert_arr_eq(cp->state_root.data, h.state_root, ALYS_HASH_LEN);
    cr_assert_eq(cp->timestamp, 1234);
    cr_assert(cp->verified);
    cr_assert_eq(cp->sync_progress->current_height, 40);
    cr_assert_eq(cp->sync_progress->last_checkpoint, 40);
    cr_assert_eq(cp->sync_progress->checkpoint_frequency, 20);
    cr_assert_eq(cp->sync_progress->eta_seconds, -1);
    alys__chain__block_checkpoint__free_unpacked(cp, NULL);

    Alys__Progress__SyncProgress p = ALYS__PROGRESS__SYNC_PROGRESS__INIT;
    p.target_height = 500;
    cr_assert_eq(storage_checkpoint_pack(&h, hash, &p, 20, 1234, &buf, &len), 0);
    cp = alys__chain__block_checkpoint__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(cp);
    cr_assert_eq(cp->sync_progress->target_height, 500, "the caller's progress as given");
    cr_assert_eq(cp->sync_progress->current_height, 0);
    alys__chain__block_checkpoint__free_unpacked(cp, NULL);
}

/* Fence record: key "fence/" || authority[32] in meta; value slot BE64 ||
 * header hash[32] (40 bytes). */
Test(records, fence_layout)
{
    cr_assert_eq(FENCE_KEY_LEN, 38);
    cr_assert_eq(FENCE_RECORD_LEN, 40);
    uint8_t authority[ALYS_PUBKEY_LEN];
    memset(authority, 0xa1, sizeof authority);
    uint8_t key[FENCE_KEY_LEN];
    storage_fence_key(authority, key);
    cr_assert_arr_eq(key, "fence/", 6);
    cr_assert_arr_eq(key + 6, authority, ALYS_PUBKEY_LEN);

    alys_hash_t hash;
    memset(hash, 0x5c, sizeof hash);
    uint8_t rec[FENCE_RECORD_LEN];
    storage_fence_encode(0x0102030405060708ULL, hash, rec);
    const uint8_t slot_be[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    cr_assert_arr_eq(rec, slot_be, sizeof slot_be);
    cr_assert_arr_eq(rec + 8, hash, ALYS_HASH_LEN);
    alys_fence_record_t back = {0};
    storage_fence_decode(rec, &back);
    cr_assert(back.any);
    cr_assert_eq(back.slot, 0x0102030405060708ULL);
    cr_assert_arr_eq(back.hash, hash, ALYS_HASH_LEN);
}
