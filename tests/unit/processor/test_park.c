/*  test_park.c: the parked copies of PeerManager's reorder buffer
 *  (actors/block_processor/park.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "park.h"

#define OWNER "peer_manager"

static uint8_t s_bytes[64][100];
static ProtobufCBinaryData s_blocks[64];
static uint8_t s_hash[PARK_HASH_LEN] = {7};
static ProtobufCBinaryData s_hashes[64];

static void setup_blocks(void)
{
    for (size_t i = 0; i < 64; i++) {
        memset(s_bytes[i], (int) i + 1, sizeof s_bytes[i]);
        s_blocks[i] = (ProtobufCBinaryData){sizeof s_bytes[i], s_bytes[i]};
        s_hashes[i] = (ProtobufCBinaryData){PARK_HASH_LEN, s_hash};
    }
}

static park_t *small(uint32_t entries, size_t bytes)
{
    park_config_t cfg = {.max_entries = entries, .max_bytes = bytes};
    park_t *p = park_new(&cfg);
    cr_assert_not_null(p);
    return p;
}

static park_put_t put(park_t *p, uint64_t id, uint64_t start, size_t n)
{
    return park_put(p, OWNER, id, "peer-a", start, s_blocks, n, NULL, 0, 1000);
}

TestSuite(park, .init = setup_blocks);

Test(park, keeps_a_copy_and_lists_it)
{
    park_t *p = small(8, 1 << 20);
    cr_assert_eq(park_put(p, OWNER, 5, "peer-a", 11, s_blocks, 3, s_hashes, 3, 1000), PARK_OK);
    s_bytes[0][0] = 0xee; /* the caller's buffer changes: the copy does not */
    const park_entry_t *e[4];
    size_t total = 0;
    cr_assert_eq(park_list(p, OWNER, 1 << 20, e, 4, &total), 1);
    cr_assert_eq(total, 1);
    cr_assert_eq(e[0]->request_id, 5);
    cr_assert_eq(e[0]->start, 11);
    cr_assert_eq(e[0]->n, 3);
    cr_assert_str_eq(e[0]->peer_id, "peer-a");
    cr_assert_eq(e[0]->blocks[0].data[0], 1);
    cr_assert_not_null(e[0]->hashes);
    cr_assert_eq(e[0]->hashes[2].data[0], 7);
    cr_assert_eq(park_bytes(p), 3 * 100 + 3 * PARK_HASH_LEN);
    park_destroy(&p);
    cr_assert_null(p);
}

Test(park, owners_see_only_their_own)
{
    park_t *p = small(8, 1 << 20);
    cr_assert_eq(put(p, 1, 10, 2), PARK_OK);
    cr_assert_eq(park_put(p, "other", 1, "peer-b", 20, s_blocks, 2, NULL, 0, 0), PARK_OK);
    const park_entry_t *e[4];
    size_t total = 0;
    cr_assert_eq(park_list(p, "other", 1 << 20, e, 4, &total), 1);
    cr_assert_eq(e[0]->start, 20);
    cr_assert_eq(park_unpark(p, "other", (uint64_t[]){1}, 1), 1);
    cr_assert_eq(park_list(p, OWNER, 1 << 20, e, 4, &total), 1, "another owner's unpark took ours");
    park_destroy(&p);
}

Test(park, refuses_when_full_and_counts_without_evicting)
{
    park_t *p = small(2, 1 << 20);
    cr_assert_eq(put(p, 1, 10, 2), PARK_OK);
    cr_assert_eq(put(p, 2, 12, 2), PARK_OK);
    cr_assert_eq(put(p, 3, 14, 2), PARK_FULL);
    cr_assert_eq(park_refused(p), 1);
    cr_assert_eq(park_entries(p), 2);
    park_destroy(&p);

    p = small(8, 250); /* bytes: two blocks of 100 fit, three do not */
    cr_assert_eq(put(p, 1, 10, 2), PARK_OK);
    cr_assert_eq(put(p, 2, 12, 1), PARK_FULL);
    cr_assert_eq(park_refused(p), 1);
    cr_assert_eq(park_entries(p), 1);
    cr_assert_eq(park_bytes(p), 200);
    park_destroy(&p);
}

Test(park, replacing_a_key_counts_its_old_bytes_as_room)
{
    park_t *p = small(1, 300);
    cr_assert_eq(put(p, 1, 10, 3), PARK_OK);
    cr_assert_eq(put(p, 1, 10, 2), PARK_OK);
    cr_assert_eq(park_entries(p), 1);
    cr_assert_eq(park_bytes(p), 200);
    park_destroy(&p);
}

Test(park, invalid_ranges_are_refused_before_allocating)
{
    park_t *p = small(8, 1 << 20);
    cr_assert_eq(put(p, 1, 10, 0), PARK_INVALID);
    cr_assert_eq(park_put(p, OWNER, 1, "x", 10, s_blocks, 3, s_hashes, 2, 0), PARK_INVALID);
    ProtobufCBinaryData short_hash = {5, s_hash};
    ProtobufCBinaryData hashes[1] = {short_hash};
    cr_assert_eq(park_put(p, OWNER, 1, "x", 10, s_blocks, 1, hashes, 1, 0), PARK_INVALID);
    cr_assert_eq(park_put(p, OWNER, 1, "x", 10, s_blocks, PARK_MAX_BLOCKS + 1, NULL, 0, 0),
                 PARK_INVALID);
    cr_assert_eq(park_put(p, "", 1, "x", 10, s_blocks, 1, NULL, 0, 0), PARK_INVALID);
    cr_assert_eq(park_entries(p), 0);
    cr_assert_eq(park_refused(p), 0, "an invalid range counted as refused for room");
    park_destroy(&p);
}

Test(park, unpark_and_head_drop_entries)
{
    park_t *p = small(8, 1 << 20);
    cr_assert_eq(put(p, 1, 10, 5), PARK_OK); /* [10,14] */
    cr_assert_eq(put(p, 2, 15, 5), PARK_OK); /* [15,19] */
    cr_assert_eq(put(p, 3, 20, 5), PARK_OK); /* [20,24] */
    cr_assert_eq(park_set_head(p, 13), 0, "a range partly above the head was dropped");
    cr_assert_eq(park_set_head(p, 19), 2);
    cr_assert_eq(park_committed(p), 2);
    cr_assert_eq(park_entries(p), 1);
    cr_assert_eq(park_unpark(p, OWNER, (uint64_t[]){1, 3, 99}, 3), 1);
    cr_assert_eq(park_entries(p), 0);
    cr_assert_eq(park_bytes(p), 0);
    park_destroy(&p);
}

Test(park, rekey_moves_an_entry_to_its_new_request)
{
    park_t *p = small(8, 1 << 20);
    cr_assert_eq(put(p, 1, 10, 2), PARK_OK);
    cr_assert(park_rekey(p, OWNER, 1, 40));
    cr_assert_not(park_rekey(p, OWNER, 1, 41), "the old id is still parked");
    cr_assert_eq(park_unpark(p, OWNER, (uint64_t[]){1}, 1), 0);
    cr_assert_eq(park_unpark(p, OWNER, (uint64_t[]){40}, 1), 1);
    park_destroy(&p);
}

Test(park, lists_the_lowest_ones_that_fit_and_says_so)
{
    park_t *p = small(8, 1 << 20);
    cr_assert_eq(put(p, 3, 30, 2), PARK_OK);
    cr_assert_eq(put(p, 1, 10, 2), PARK_OK);
    cr_assert_eq(put(p, 2, 20, 2), PARK_OK);
    const park_entry_t *e[8];
    size_t total = 0;
    size_t one = park_wire_bytes(&(park_entry_t){.n = 2, .bytes = 200, .peer_id = "peer-a"});
    cr_assert_gt(one, 200, "the wire estimate is below the bytes it carries");
    cr_assert_eq(park_list(p, OWNER, 2 * one, e, 8, &total), 2);
    cr_assert_eq(total, 3);
    cr_assert_eq(e[0]->start, 10);
    cr_assert_eq(e[1]->start, 20);
    cr_assert_eq(park_list(p, OWNER, 100 * one, e, 1, &total), 1, "cap not kept");
    park_destroy(&p);
}
