/* The pending-request table: bounded, exactly-once, deadlines in order. */
#include <criterion/criterion.h>

#include "pending.h"

typedef struct {
    int tag;
    void *ptr;
} ctx_t;

Test(pending, take_completes_exactly_once)
{
    alys_pending_t *p = alys_pending_new(4, sizeof(ctx_t));
    cr_assert_not_null(p);
    ctx_t *c = alys_pending_add(p, 7, 100);
    cr_assert_not_null(c);
    c->tag = 42;
    ctx_t out = {0};
    cr_assert(alys_pending_take(p, 7, &out));
    cr_assert_eq(out.tag, 42);
    cr_assert_not(alys_pending_take(p, 7, &out), "a duplicated reply must find nothing");
    cr_assert_eq(alys_pending_count(p), 0);
    alys_pending_destroy(&p);
    cr_assert_null(p);
}

Test(pending, bounded_and_refuses_bad_ids)
{
    alys_pending_t *p = alys_pending_new(2, sizeof(ctx_t));
    cr_assert_null(alys_pending_add(p, 0, 1), "id 0 marks a free slot");
    cr_assert_not_null(alys_pending_add(p, 1, 1));
    cr_assert_null(alys_pending_add(p, 1, 1), "ids are unique");
    cr_assert_not_null(alys_pending_add(p, 2, 1));
    cr_assert_null(alys_pending_add(p, 3, 1), "full table refuses");
    cr_assert_eq(alys_pending_count(p), 2);
    cr_assert(alys_pending_take(p, 1, NULL));
    cr_assert_not_null(alys_pending_add(p, 3, 1), "a freed slot is reused");
    ctx_t *fresh = alys_pending_find(p, 3);
    cr_assert_eq(fresh->tag, 0, "payload starts zeroed");
    alys_pending_destroy(&p);
    cr_assert_null(alys_pending_new(0, 8));
}

Test(pending, expire_earliest_first_and_only_when_due)
{
    alys_pending_t *p = alys_pending_new(8, sizeof(ctx_t));
    ((ctx_t *) alys_pending_add(p, 10, 300))->tag = 3;
    ((ctx_t *) alys_pending_add(p, 11, 100))->tag = 1;
    ((ctx_t *) alys_pending_add(p, 12, 200))->tag = 2;
    cr_assert_eq(alys_pending_next_deadline(p), 100);
    uint64_t id = 0;
    ctx_t out;
    cr_assert_not(alys_pending_expire(p, 99, &id, &out), "nothing due before 100");
    cr_assert(alys_pending_expire(p, 250, &id, &out));
    cr_assert_eq(id, 11);
    cr_assert_eq(out.tag, 1);
    cr_assert(alys_pending_expire(p, 250, &id, &out));
    cr_assert_eq(id, 12);
    cr_assert_not(alys_pending_expire(p, 250, &id, &out));
    cr_assert_not(alys_pending_take(p, 11, NULL), "an expired request cannot complete");
    cr_assert_eq(alys_pending_next_deadline(p), 300);
    cr_assert(alys_pending_take(p, 10, NULL));
    cr_assert_eq(alys_pending_next_deadline(p), INT64_MAX);
    alys_pending_destroy(&p);
}

static bool s_tag_is(const void *payload, void *arg)
{
    return ((const ctx_t *) payload)->tag == *(int *) arg;
}

static int s_seen;
static void s_count(uint64_t corr_id, void *payload, void *arg)
{
    (void) corr_id;
    (void) payload;
    (void) arg;
    s_seen++;
}

Test(pending, remove_if_ends_matching_entries_once)
{
    alys_pending_t *p = alys_pending_new(8, sizeof(ctx_t));
    for (uint64_t id = 1; id <= 6; id++)
        ((ctx_t *) alys_pending_add(p, id, 0))->tag = (int) (id % 2);
    int odd = 1;
    s_seen = 0;
    cr_assert_eq(alys_pending_remove_if(p, s_tag_is, s_count, &odd), 3);
    cr_assert_eq(s_seen, 3);
    cr_assert_eq(alys_pending_count(p), 3);
    cr_assert_not(alys_pending_take(p, 1, NULL));
    cr_assert(alys_pending_take(p, 2, NULL));
    s_seen = 0;
    alys_pending_each(p, s_count, NULL);
    cr_assert_eq(s_seen, 2);
    alys_pending_destroy(&p);
}

Test(pending, zero_payload_tables_work)
{
    alys_pending_t *p = alys_pending_new(1, 0);
    cr_assert_not_null(alys_pending_add(p, 5, 0));
    cr_assert(alys_pending_expire(p, 0, NULL, NULL));
    alys_pending_destroy(&p);
    alys_pending_destroy(&p); /* safe on NULL */
}
