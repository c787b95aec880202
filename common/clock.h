/* clock.h: the monotonic clock and the millisecond <-> timeval conversion,
 * written once for the client, the daemon and rstmdb-testd. */
#ifndef RSTMDB_COMMON_CLOCK_H
#define RSTMDB_COMMON_CLOCK_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

static inline uint64_t clock_mono_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static inline uint64_t clock_mono_ms(void)
{
    return clock_mono_us() / 1000u;
}

static inline struct timeval clock_tv_ms(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)((ms % 1000u) * 1000u)};
    return tv;
}

#endif
