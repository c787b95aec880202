/* backoff.c: exponential backoff with full jitter and a cap (see backoff.h).
 * Pure arithmetic: no clock, no timers, no global random state. */
#include "backoff.h"

#define BACKOFF_DEFAULT_INITIAL_MS 100u
#define BACKOFF_DEFAULT_MAX_MS     5000u

void backoff_init(backoff *b, unsigned initial_ms, unsigned max_ms, backoff_rand_fn rand,
                  void *rand_state)
{
    b->initial_ms = initial_ms ? initial_ms : BACKOFF_DEFAULT_INITIAL_MS;
    b->max_ms = max_ms ? max_ms : BACKOFF_DEFAULT_MAX_MS;
    if (b->max_ms < b->initial_ms)
        b->max_ms = b->initial_ms;
    b->attempt = 0;
    b->rand = rand;
    b->rand_state = rand_state;
}

unsigned backoff_ceiling_ms(const backoff *b)
{
    uint64_t c = b->initial_ms;
    /* Stop doubling once at the cap: after ~32 failures a shift would overflow. */
    for (unsigned i = 0; i < b->attempt && c < b->max_ms; i++)
        c *= 2;
    return c > b->max_ms ? b->max_ms : (unsigned)c;
}

unsigned backoff_next_ms(backoff *b)
{
    unsigned ceiling = backoff_ceiling_ms(b);
    if (b->attempt < 64)
        b->attempt++;
    if (!b->rand)
        return ceiling;
    /* Uniform in [0, ceiling]; the modulo bias is irrelevant at these sizes. */
    uint64_t r = b->rand(b->rand_state);
    return (unsigned)(r % ((uint64_t)ceiling + 1));
}

void backoff_reset(backoff *b)
{
    b->attempt = 0;
}

uint32_t backoff_xorshift(void *state)
{
    uint64_t *s = state;
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return (uint32_t)(x >> 32);
}
