#include "check.h"

#include <string.h>

bool validator_check_block(const alys_genesis_t *g, const uint8_t *buf, size_t len,
                           alys_verdict_t *v)
{
    alys_block_t b;
    memset(&b, 0, sizeof b);
    if (alys_block_decode(buf, len, &b, v) != 0)
        return false;
    bool ok = alys_block_check_stateless(g, &b, v);
    alys_block_clear(&b);
    return ok;
}
