/*  test_head_state.c: the head a producer builds on, from StorageActor's
 *  Head reply: taken only when it agrees with itself; a block built on it
 *  links to the head and is signed only under the fence record naming it. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "builder.h"
#include "chain/fence.h"
#include "head_state.h"
#include "mp_fixture.h"

static mpf_t f;
static uint8_t lattice[ALYS_LATTICE_BYTES];

static void setup(void)
{
    mpf_init(&f, 4, 1000);
    alys_lattice_to_bytes(&f.view.lattice, lattice);
}

static void teardown(void)
{
    mpf_fini(&f);
}
TestSuite(head_state, .init = setup, .fini = teardown);

static ProtobufCBinaryData bin(const uint8_t *p, size_t n)
{
    return (ProtobufCBinaryData){n, (uint8_t *) p};
}

/* The reply at the genesis: height 0, no header. */
static Alys__Storage__Head genesis_head(void)
{
    Alys__Storage__Head m = ALYS__STORAGE__HEAD__INIT;
    m.hash = bin(f.g.hash, ALYS_HASH_LEN);
    m.state_root = bin(f.g.state_root, ALYS_HASH_LEN);
    m.lattice = bin(lattice, sizeof lattice);
    return m;
}

/* Build and fence-sign the block of slot on hs; returns its header hash. */
static void build_signed(head_state_t *hs, uint64_t slot, alys_block_t *b, alys_hash_t hash)
{
    builder_input_t in;
    cr_assert_not(head_state_input(hs, &f.g, slot, 7, NULL, 0, &in));
    char err[256] = "";
    cr_assert_eq(builder_assemble(&in, b, NULL, err, sizeof err), BUILD_OK, "%s", err);
    cr_assert_eq(b->header.height, hs->height + 1);
    cr_assert_arr_eq(b->header.parent_hash, hs->hash, ALYS_HASH_LEN);
    alys_header_hash(&b->header, hash);
    const uint8_t *sec = f.keys.authority_sec[b->header.proposer];
    alys_fence_record_t none = {.any = false};
    cr_assert_neq(builder_sign(&f.g, &none, b, sec), 0, "no signature without the record");
    alys_fence_record_t durable = {.any = true, .slot = slot};
    memcpy(durable.hash, hash, ALYS_HASH_LEN);
    cr_assert_eq(builder_sign(&f.g, &durable, b, sec), 0);
}

Test(head_state, genesis_then_a_block_head)
{
    Alys__Storage__Head m = genesis_head();
    head_state_t hs;
    char err[256] = "";
    cr_assert_eq(head_state_take(&hs, &f.g, &m, err, sizeof err), 0, "%s", err);
    cr_assert(hs.valid);
    alys_block_t b1;
    alys_hash_t h1;
    build_signed(&hs, 1, &b1, h1);

    /* The reply once block 1 (no txs: same state) is the head. */
    uint8_t *enc;
    size_t len;
    cr_assert_eq(alys_header_encode(&b1.header, &enc, &len), 0);
    m.height = 1;
    m.slot = 1;
    m.hash = bin(h1, ALYS_HASH_LEN);
    m.header = bin(enc, len);
    cr_assert_eq(head_state_take(&hs, &f.g, &m, err, sizeof err), 0, "%s", err);
    alys_block_t b2;
    alys_hash_t h2;
    build_signed(&hs, 2, &b2, h2);
    cr_assert_eq(b2.header.height, 2);
    free(enc);
    alys_block_clear(&b1);
    alys_block_clear(&b2);
}

Test(head_state, a_reply_that_disagrees_with_itself_is_not_taken)
{
    head_state_t hs;
    char err[256] = "";
    Alys__Storage__Head m = genesis_head();
    m.lattice.len = 0; /* GetHead without with_state */
    cr_assert_eq(head_state_take(&hs, &f.g, &m, err, sizeof err), -1);
    cr_assert_not(hs.valid);
    cr_assert(strstr(err, "lattice"), "%s", err);

    uint8_t other[ALYS_LATTICE_BYTES];
    memcpy(other, lattice, sizeof other);
    other[5] ^= 1;
    m = genesis_head();
    m.lattice = bin(other, sizeof other);
    cr_assert_eq(head_state_take(&hs, &f.g, &m, err, sizeof err), -1);
    cr_assert(strstr(err, "root"), "%s", err);

    alys_hash_t wrong;
    memset(wrong, 9, sizeof wrong);
    m = genesis_head();
    m.hash = bin(wrong, ALYS_HASH_LEN);
    cr_assert_eq(head_state_take(&hs, &f.g, &m, err, sizeof err), -1);
    cr_assert(strstr(err, "genesis hash"), "%s", err);

    /* Height 1 whose header does not hash to the head hash. */
    alys_header_t h;
    alys_genesis_parent(&f.g, &h);
    h.height = 1;
    memcpy(h.state_root, f.g.state_root, ALYS_HASH_LEN);
    uint8_t *enc;
    size_t len;
    cr_assert_eq(alys_header_encode(&h, &enc, &len), 0);
    m = genesis_head();
    m.height = 1;
    m.hash = bin(wrong, ALYS_HASH_LEN);
    m.header = bin(enc, len);
    cr_assert_eq(head_state_take(&hs, &f.g, &m, err, sizeof err), -1);
    cr_assert(strstr(err, "not the head's"), "%s", err);
    m.header.len = 3; /* does not decode */
    cr_assert_eq(head_state_take(&hs, &f.g, &m, err, sizeof err), -1);
    free(enc);
}
