/* backoff.h: reconnect delays for one upstream connection.
 *
 * Exponential growth (initial, x2, capped) with "full jitter": each delay is
 * drawn uniformly from [0, min(cap, initial * 2^attempt)], so N proxies that
 * lost the same server do not reconnect in lock-step. The random source is
 * injected (no global state), which makes the sequence testable.
 */
#ifndef PROXY_BACKOFF_H
#define PROXY_BACKOFF_H

#include <stdint.h>

/* Returns 32 random bits; `state` is the source's own. */
typedef uint32_t (*backoff_rand_fn)(void *state);

typedef struct backoff {
    unsigned initial_ms; /* ceiling of the first delay (>= 1) */
    unsigned max_ms;     /* cap of every ceiling (>= initial_ms) */
    unsigned attempt;    /* delays handed out since the last reset */
    backoff_rand_fn rand;
    void *rand_state;
} backoff;

/* Embedded struct, never allocates. 0 values get the defaults 100 / 5000 ms;
 * max below initial is raised to initial. `rand` NULL: the delay is the
 * ceiling itself (no jitter). */
void backoff_init(backoff *b, unsigned initial_ms, unsigned max_ms, backoff_rand_fn rand,
                  void *rand_state);
/* The ceiling the next delay is drawn under: min(max, initial * 2^attempt). */
unsigned backoff_ceiling_ms(const backoff *b);
/* The next delay in [0, ceiling]; advances the attempt counter. */
unsigned backoff_next_ms(backoff *b);
/* After a success: the next delay starts from `initial` again. */
void backoff_reset(backoff *b);

/* A small xorshift generator usable as a backoff_rand_fn (state: uint64_t,
 * seeded non-zero by the owner). Not for cryptography. */
uint32_t backoff_xorshift(void *state);

#endif
