/*  status.h: the producer's status as the ProducerStatus message
 *  (proto/producer.proto), filled from its slot session. Pure.
 *
 *  Ownership: everything lives in the caller's producer_status_t; strings
 *  point at the session's static reason names. Valid while ss is unchanged.
 */
#ifndef ALYS_PRODUCER_STATUS_H
#define ALYS_PRODUCER_STATUS_H

#include "producer.pb-c.h"
#include "slot_session.h"

typedef struct {
    Alys__Producer__ProducerStatus msg;
    Alys__Producer__MissedSlots items[SS_REASONS_MAX];
    Alys__Producer__MissedSlots *ptrs[SS_REASONS_MAX];
} producer_status_t;

void producer_status_fill(producer_status_t *out, const slot_session_t *ss, bool enabled,
                          uint64_t next_own_slot);

#endif
