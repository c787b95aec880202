/* event_consumer.c: the Go client's "Event Consumer" with the async API on
 * a libevent loop: WATCH_ALL filtered to machine "order" and to_state
 * "shipped", one line per event, Ctrl-C (SIGINT) to UNWATCH and exit.
 *   event_consumer [HOST:PORT] [MAX_EVENTS]   (token from $RSTMDB_TOKEN;
 *   MAX_EVENTS > 0 exits after that many events) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "rstmdb/rstmdb.h"

typedef struct consumer {
    struct event_base *base;
    rstmdb_client *client;
    rstmdb_sub *sub;
    long seen, max;
    int status;
} consumer;

static void stop(consumer *k)
{
    if (k->sub) {
        rstmdb_unwatch(k->sub); /* on_end follows, then we close */
        k->sub = NULL;
    } else {
        rstmdb_client_close(k->client);
        event_base_loopexit(k->base, NULL);
    }
}

static void on_state(rstmdb_client *c, rstmdb_conn_state st, const rstmdb_error *why, void *arg)
{
    consumer *k = arg;
    (void)c;
    if (st == RSTMDB_CONN_CLOSED) {
        fprintf(stderr, "connection closed: %s\n", rstmdb_error_message(why));
        event_base_loopexit(k->base, NULL);
    }
}

static void on_watch(rstmdb_client *c, const rstmdb_reply *r, void *arg)
{
    consumer *k = arg;
    rstmdb_watch_all_result w;
    (void)c;
    if (rstmdb_reply_watch_all(r, &w) != RSTMDB_OK) {
        fprintf(stderr, "watch: %s\n", rstmdb_error_message(rstmdb_reply_error(r)));
        k->sub = NULL; /* ended without on_end */
        k->status = 1;
        stop(k);
        return;
    }
    printf("Listening for shipped orders... (%s)\n", w.subscription_id);
    fflush(stdout);
}

static void on_event(rstmdb_sub *sub, const rstmdb_event *ev, void *arg)
{
    consumer *k = arg;
    (void)sub;
    printf("Order %s shipped! (wal_offset %llu)\n", rstmdb_event_instance_id(ev),
           (unsigned long long)rstmdb_event_wal_offset(ev));
    fflush(stdout);
    /* Send notification, update external system, etc. */
    if (k->max > 0 && ++k->seen >= k->max)
        stop(k);
}

static void on_end(rstmdb_sub *sub, const rstmdb_error *why, void *arg)
{
    consumer *k = arg;
    (void)sub;
    k->sub = NULL;
    if (why) {
        fprintf(stderr, "watch ended: %s\n", rstmdb_error_message(why));
        k->status = 1;
    }
    stop(k);
}

static void on_sigint(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    stop(arg);
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : getenv("RSTMDB_ADDR");
    const char *token = getenv("RSTMDB_TOKEN");
    consumer k = {0};
    rstmdb_options *opts = NULL;
    rstmdb_error *err = NULL;

    k.max = argc > 2 ? atol(argv[2]) : 0;
    k.base = event_base_new();
    if (!k.base || rstmdb_options_new(&opts) != RSTMDB_OK)
        return 1;
    if (token)
        rstmdb_options_set_auth(opts, token);
    int rc = rstmdb_client_new(&k.client, k.base, addr ? addr : "127.0.0.1:7401", opts, &err);
    rstmdb_options_free(opts);
    if (rc != RSTMDB_OK) {
        fprintf(stderr, "client: %s\n", rstmdb_error_message(err));
        rstmdb_error_free(err);
        return 1;
    }
    rstmdb_client_set_state_cb(k.client, on_state, &k);

    const char *machines[] = {"order"};
    const char *to_states[] = {"shipped"};
    rstmdb_watch_all_req req = {
        .machines = machines, .nmachines = 1, .to_states = to_states, .nto_states = 1};
    /* Issued now, sent once the connection is READY. */
    rc = rstmdb_watch_all(k.client, &req, on_watch, on_event, on_end, &k, &k.sub);
    if (rc != RSTMDB_OK) {
        fprintf(stderr, "watch: %s\n", rstmdb_strerror(rc));
        return 1;
    }
    struct event *sigint = evsignal_new(k.base, SIGINT, on_sigint, &k);
    evsignal_add(sigint, NULL);
    event_base_dispatch(k.base);
    event_free(sigint);
    rstmdb_client_free(k.client);
    event_base_dispatch(k.base); /* let the BYE leave */
    event_base_free(k.base);
    return k.status;
}
