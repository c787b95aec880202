/* wheel.c: the timer wheel (see wheel.h). One libevent timer per wheel,
 * pending only while the wheel holds timers. */
#include "wheel.h"
#include "clock.h"

#include <event2/event.h>
#include <stdlib.h>
#include <time.h>

struct wheel {
    struct event *ev;
    wheel_node *slots; /* circular list heads (sentinels) */
    size_t nslots;
    unsigned tick_ms;
    uint64_t done_tick; /* every slot up to this tick has been fired */
    size_t count;
    wheel_fire_fn fire;
    void *arg;
};

static void arm(wheel *w)
{
    if (w->count > 0 && !evtimer_pending(w->ev, NULL)) {
        struct timeval tv = clock_tv_ms(w->tick_ms);
        evtimer_add(w->ev, &tv);
    }
}

static void unlink_node(wheel *w, wheel_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
    n->linked = false;
    w->count--;
}

void wheel_add(wheel *w, wheel_node *n, uint64_t due_ms)
{
    if (n->linked)
        unlink_node(w, n);
    uint64_t t = due_ms / w->tick_ms;
    if (t <= w->done_tick)
        t = w->done_tick + 1; /* the next tick: never inside the slot being fired */
    wheel_node *head = &w->slots[t % w->nslots];
    n->due_ms = due_ms;
    n->next = head;
    n->prev = head->prev;
    head->prev->next = n;
    head->prev = n;
    n->linked = true;
    w->count++;
    arm(w);
}

void wheel_del(wheel *w, wheel_node *n)
{
    if (n->linked)
        unlink_node(w, n);
}

static void fire_slot(wheel *w, size_t idx, uint64_t now)
{
    wheel_node *head = &w->slots[idx];
    /* Detach the slot: timers added while it fires go to later slots. */
    wheel_node local = {.prev = head->prev, .next = head->next};
    if (head->next == head)
        return;
    local.next->prev = &local;
    local.prev->next = &local;
    head->next = head->prev = head;
    while (local.next != &local) {
        wheel_node *n = local.next;
        local.next = n->next;
        n->next->prev = &local;
        n->linked = false;
        w->count--;
        if (n->due_ms <= now)
            w->fire(n, w->arg);
        else
            wheel_add(w, n, n->due_ms); /* a later turn of the wheel */
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wheel *w = arg;
    uint64_t now = clock_mono_ms(), t = now / w->tick_ms;
    /* After a long stall, one turn covers every slot. */
    if (t > w->done_tick + w->nslots)
        w->done_tick = t - w->nslots;
    while (w->done_tick < t) {
        w->done_tick++;
        fire_slot(w, (size_t)(w->done_tick % w->nslots), now);
    }
    arm(w);
}

wheel *wheel_new(struct event_base *base, unsigned tick_ms, unsigned span_ms, wheel_fire_fn fire,
                 void *arg)
{
    wheel *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->tick_ms = tick_ms ? tick_ms : 1;
    w->nslots = span_ms / w->tick_ms + 2;
    w->slots = calloc(w->nslots, sizeof *w->slots);
    w->ev = evtimer_new(base, on_tick, w);
    if (w->slots == NULL || w->ev == NULL) {
        wheel_free(w);
        return NULL;
    }
    for (size_t i = 0; i < w->nslots; i++)
        w->slots[i].next = w->slots[i].prev = &w->slots[i];
    w->done_tick = clock_mono_ms() / w->tick_ms;
    w->fire = fire;
    w->arg = arg;
    return w;
}

void wheel_free(wheel *w)
{
    if (w == NULL)
        return;
    if (w->ev)
        event_free(w->ev);
    free(w->slots);
    free(w);
}

size_t wheel_count(const wheel *w)
{
    return w->count;
}

unsigned wheel_tick_ms(const wheel *w)
{
    return w->tick_ms;
}
