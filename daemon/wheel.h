/* wheel.h: a hashed timer wheel for many timers of one kind.
 *
 * 100,000 SSE streams each need a heartbeat deadline that moves whenever the
 * stream is written to. A wheel makes adding, moving and removing a timer
 * O(1) with no allocation, and fires each tick only the timers of that
 * tick's slot: a timer may fire up to one tick late, never early. The
 * owner embeds a wheel_node in its object.
 */
#ifndef PROXY_WHEEL_H
#define PROXY_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct event;

typedef struct wheel_node {
    struct wheel_node *prev, *next;
    uint64_t due_ms;
    bool linked;
} wheel_node;

typedef struct wheel wheel;
/* Called for each timer that is due; the node is already unlinked and may
 * be added again (or its owner freed) from inside. */
typedef void (*wheel_fire_fn)(wheel_node *n, void *arg);

/* `tick_ms` >= 1; `span_ms`: the longest delay usually asked for (longer
 * ones still work, checked once per turn of the wheel). */
wheel *wheel_new(struct event_base *base, unsigned tick_ms, unsigned span_ms, wheel_fire_fn fire,
                 void *arg);
/* Nodes still linked are simply forgotten (their owners free them). */
void wheel_free(wheel *w);
/* Schedule (or move) n at due_ms (CLOCK_MONOTONIC ms: clock_mono_ms). */
void wheel_add(wheel *w, wheel_node *n, uint64_t due_ms);
void wheel_del(wheel *w, wheel_node *n);
size_t wheel_count(const wheel *w);
unsigned wheel_tick_ms(const wheel *w);

#endif
