/* main.c: a program outside the tree using only the installed headers and
 * library: options, TLS config, an async client that fails to connect, and
 * the typed params builders. Prints "ok" when every call behaved. */
#include <stdio.h>
#include <string.h>

#include <cJSON.h>
#include <event2/event.h>
#include <rstmdb/rstmdb.h>

static void on_state(rstmdb_client *c, rstmdb_conn_state st, const rstmdb_error *why, void *arg)
{
    int *closed = arg;
    (void)c;
    (void)why;
    if (st == RSTMDB_CONN_CLOSED)
        *closed = 1;
}

int main(void)
{
    rstmdb_options *o = NULL;
    rstmdb_tls *tls = NULL;
    if (rstmdb_options_new(&o) != RSTMDB_OK || rstmdb_tls_insecure(&tls, NULL) != RSTMDB_OK)
        return 1;
    rstmdb_options_set_connect_timeout_ms(o, 2000);
    rstmdb_tls_free(tls);
    rstmdb_create_instance_req ci = {.machine = "m", .version = 1, .instance_id = "i"};
    cJSON *p = rstmdb_params_create_instance(&ci);
    if (!p || strcmp(cJSON_GetObjectItem(p, "instance_id")->valuestring, "i") != 0)
        return 1;
    cJSON_Delete(p);
    struct event_base *base = event_base_new();
    rstmdb_client *c = NULL;
    /* Port 9 (discard) on loopback: nothing listens; the connect fails. */
    if (rstmdb_client_new(&c, base, "127.0.0.1:9", o, NULL) != RSTMDB_OK)
        return 1;
    int closed = 0;
    rstmdb_client_set_state_cb(c, on_state, &closed);
    while (!closed && event_base_loop(base, EVLOOP_ONCE) == 0)
        ;
    rstmdb_client_free(c);
    event_base_free(base);
    rstmdb_options_free(o);
    printf("%s %s\n", closed ? "ok" : "fail", rstmdb_strerror(RSTMDB_ERR_TIMEOUT));
    return closed ? 0 : 1;
}
