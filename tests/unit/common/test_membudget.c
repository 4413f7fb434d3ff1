/*  test_membudget.c: the memory budget split (common/membudget.h): shares,
 *  floors, caps, the explicit cache, the refusal, and the start line. */
#include <criterion/criterion.h>
#include <string.h>

#include "membudget.h"

#define MIB ((uint64_t) 1 << 20)
#define GIB ((uint64_t) 1 << 30)

static alys_membudget_t derive_ok(uint32_t gb, uint32_t cache_mb)
{
    alys_membudget_t b;
    char err[512] = "";
    cr_assert_eq(alys_membudget_derive(&b, gb, cache_mb, err, sizeof err), 0, "%s", err);
    return b;
}

/* The default budget gives the sizes the node had before the budget. */
Test(membudget, default_budget_keeps_todays_sizes)
{
    alys_membudget_t b = derive_ok(8, 0);
    cr_assert_eq(b.budget_bytes, 8 * GIB);
    cr_assert_eq(b.cache_bytes, 512 * MIB);
    cr_assert_not(b.cache_explicit);
    cr_assert_eq(b.write_buffer_bytes, 16 * MIB);
    cr_assert_eq(b.cf_write_buffer_bytes, 4 * MIB);
    cr_assert_eq(b.reorder_bytes, 64 * MIB);
}

Test(membudget, shares_scale_with_budget)
{
    alys_membudget_t b = derive_ok(32, 0);
    cr_assert_eq(b.cache_bytes, 2 * GIB);
    cr_assert_eq(b.write_buffer_bytes, 64 * MIB);
    cr_assert_eq(b.cf_write_buffer_bytes, 16 * MIB);
    cr_assert_eq(b.reorder_bytes, 256 * MIB);
}

Test(membudget, smallest_budget_gets_floors)
{
    alys_membudget_t b = derive_ok(1, 0);
    cr_assert_eq(b.cache_bytes, 64 * MIB);
    cr_assert_eq(b.write_buffer_bytes, 8 * MIB);
    cr_assert_eq(b.cf_write_buffer_bytes, 2 * MIB);
    cr_assert_eq(b.reorder_bytes, 16 * MIB);
}

Test(membudget, largest_budget_is_capped)
{
    alys_membudget_t b = derive_ok(4096, 0);
    cr_assert_eq(b.write_buffer_bytes, 256 * MIB);
    cr_assert_eq(b.cf_write_buffer_bytes, 64 * MIB);
    cr_assert_eq(b.reorder_bytes, 256 * MIB);
    cr_assert_eq(b.cache_bytes, 256 * GIB); /* 1/16: the cache has no cap */
}

Test(membudget, explicit_cache_wins)
{
    alys_membudget_t b = derive_ok(8, 1024);
    cr_assert_eq(b.cache_bytes, 1024 * MIB);
    cr_assert(b.cache_explicit);
    cr_assert_eq(b.reorder_bytes, 64 * MIB); /* the rest is unchanged */
    /* Below the floor, raised to it. */
    cr_assert_eq(derive_ok(8, 1).cache_bytes, 8 * MIB);
    /* Exactly half the budget is allowed. */
    cr_assert_eq(derive_ok(1, 512).cache_bytes, 512 * MIB);
}

Test(membudget, budget_too_small_for_cache_is_refused)
{
    alys_membudget_t b;
    memset(&b, 0xab, sizeof b);
    alys_membudget_t before = b;
    char err[512] = "";
    cr_assert_eq(alys_membudget_derive(&b, 1, 513, err, sizeof err), -1);
    cr_assert_str_eq(err, "sync.cache_size_mb (513 MiB) must be at most half of "
                          "sync.max_memory_gb (1 GiB): the rest of the budget is for the "
                          "download window, the validators and the database's write buffers");
    cr_assert_eq(memcmp(&b, &before, sizeof b), 0, "out untouched on refusal");
    cr_assert_eq(alys_membudget_derive(&b, 0, 0, err, sizeof err), -1);
    cr_assert_str_eq(err, "sync.max_memory_gb must be at least 1 GiB");
}

Test(membudget, describe_names_every_part)
{
    alys_membudget_t b = derive_ok(8, 0);
    char line[512];
    alys_membudget_describe(&b, line, sizeof line);
    cr_assert_str_eq(line, "memory budget 8 GiB (sync.max_memory_gb): rocksdb cache 512 MiB "
                           "(1/16 of the budget), write buffers 16 MiB (4 MiB per column "
                           "family), reorder buffer 64 MiB");
}
