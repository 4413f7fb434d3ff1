/*  pending.c: see pending.h. Slots live in one array (id, deadline, then the
    payload bytes), so the whole table is one allocation made at creation. */
#include "pending.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t corr_id; /* 0 = free */
    int64_t deadline;
} slot_head_t;

struct alys_pending {
    size_t capacity;
    size_t payload_size;
    size_t stride; /* slot_head_t + payload, rounded for alignment */
    size_t count;
    uint8_t *slots;
};

static slot_head_t *s_slot(const alys_pending_t *self, size_t i)
{
    return (slot_head_t *) (self->slots + i * self->stride);
}

static void *s_payload(slot_head_t *slot)
{
    return (uint8_t *) slot + sizeof(slot_head_t);
}

alys_pending_t *alys_pending_new(size_t capacity, size_t payload_size)
{
    if (capacity == 0)
        return NULL;
    /* Payloads hold pointers and 64-bit fields: keep every slot 16-aligned. */
    size_t stride = (sizeof(slot_head_t) + payload_size + 15) & ~(size_t) 15;
    if (stride == 0 || capacity > SIZE_MAX / stride)
        return NULL;
    alys_pending_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->slots = calloc(capacity, stride);
    if (!self->slots) {
        free(self);
        return NULL;
    }
    self->capacity = capacity;
    self->payload_size = payload_size;
    self->stride = stride;
    return self;
}

void alys_pending_destroy(alys_pending_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

static slot_head_t *s_lookup(const alys_pending_t *self, uint64_t corr_id)
{
    if (corr_id == 0)
        return NULL;
    for (size_t i = 0; i < self->capacity; i++) {
        slot_head_t *slot = s_slot(self, i);
        if (slot->corr_id == corr_id)
            return slot;
    }
    return NULL;
}

void *alys_pending_add(alys_pending_t *self, uint64_t corr_id, int64_t deadline)
{
    if (corr_id == 0 || self->count == self->capacity || s_lookup(self, corr_id))
        return NULL;
    for (size_t i = 0; i < self->capacity; i++) {
        slot_head_t *slot = s_slot(self, i);
        if (slot->corr_id != 0)
            continue;
        slot->corr_id = corr_id;
        slot->deadline = deadline;
        memset(s_payload(slot), 0, self->payload_size);
        self->count++;
        return s_payload(slot);
    }
    return NULL; /* unreachable while count is right */
}

void *alys_pending_find(alys_pending_t *self, uint64_t corr_id)
{
    slot_head_t *slot = s_lookup(self, corr_id);
    return slot ? s_payload(slot) : NULL;
}

static void s_end(alys_pending_t *self, slot_head_t *slot, uint64_t *corr_id, void *out)
{
    if (corr_id)
        *corr_id = slot->corr_id;
    if (out && self->payload_size)
        memcpy(out, s_payload(slot), self->payload_size);
    slot->corr_id = 0;
    self->count--;
}

bool alys_pending_take(alys_pending_t *self, uint64_t corr_id, void *out)
{
    slot_head_t *slot = s_lookup(self, corr_id);
    if (!slot)
        return false;
    s_end(self, slot, NULL, out);
    return true;
}

bool alys_pending_expire(alys_pending_t *self, int64_t now, uint64_t *corr_id, void *out)
{
    slot_head_t *earliest = NULL;
    for (size_t i = 0; i < self->capacity; i++) {
        slot_head_t *slot = s_slot(self, i);
        if (slot->corr_id != 0 && slot->deadline <= now &&
            (!earliest || slot->deadline < earliest->deadline))
            earliest = slot;
    }
    if (!earliest)
        return false;
    s_end(self, earliest, corr_id, out);
    return true;
}

size_t alys_pending_remove_if(alys_pending_t *self, alys_pending_pred_fn pred,
                              alys_pending_each_fn on_removed, void *arg)
{
    size_t removed = 0;
    for (size_t i = 0; i < self->capacity; i++) {
        slot_head_t *slot = s_slot(self, i);
        if (slot->corr_id == 0 || !pred(s_payload(slot), arg))
            continue;
        if (on_removed)
            on_removed(slot->corr_id, s_payload(slot), arg);
        slot->corr_id = 0;
        self->count--;
        removed++;
    }
    return removed;
}

void alys_pending_each(alys_pending_t *self, alys_pending_each_fn fn, void *arg)
{
    for (size_t i = 0; i < self->capacity; i++) {
        slot_head_t *slot = s_slot(self, i);
        if (slot->corr_id != 0)
            fn(slot->corr_id, s_payload(slot), arg);
    }
}

int64_t alys_pending_next_deadline(const alys_pending_t *self)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < self->capacity && self->count; i++) {
        slot_head_t *slot = s_slot(self, i);
        if (slot->corr_id != 0 && slot->deadline < next)
            next = slot->deadline;
    }
    return next;
}

size_t alys_pending_count(const alys_pending_t *self)
{
    return self->count;
}

size_t alys_pending_capacity(const alys_pending_t *self)
{
    return self->capacity;
}
