/* order_processing.c: the Go client's "Order Processing" example with the
 * blocking API: create an order, pay, ship, read the final state. Error
 * handling in the style of the Go doc (rstmdb_is_invalid_transition & co).
 *   order_processing [HOST:PORT] [ORDER_ID]     (token from $RSTMDB_TOKEN) */
#include <stdio.h>
#include <stdlib.h>

#include <cJSON.h>

#include "rstmdb/rstmdb.h"

/* Explain a failed call the way the Go doc's error-handling section does. */
static void explain(const char *what, int rc, const rstmdb_reply *r)
{
    const rstmdb_error *e = rstmdb_reply_error(r);
    if (rstmdb_is_instance_not_found(e))
        fprintf(stderr, "%s: instance not found\n", what);
    else if (rstmdb_is_invalid_transition(e))
        fprintf(stderr, "%s: cannot apply event from current state: %s\n", what,
                rstmdb_error_message(e));
    else if (rstmdb_is_conflict(e))
        fprintf(stderr, "%s: optimistic concurrency conflict\n", what);
    else if (rstmdb_is_retryable(e))
        fprintf(stderr, "%s: transient error, safe to retry: %s\n", what, rstmdb_error_message(e));
    else
        fprintf(stderr, "%s: %s\n", what, e ? rstmdb_error_message(e) : rstmdb_strerror(rc));
}

static int ensure_machine(rstmdb_sync *client)
{
    cJSON *def =
        cJSON_Parse("{\"states\":[\"pending\",\"paid\",\"shipped\",\"delivered\"],"
                    "\"initial\":\"pending\",\"transitions\":["
                    "{\"from\":[\"pending\"],\"event\":\"PAY\",\"to\":\"paid\"},"
                    "{\"from\":[\"paid\"],\"event\":\"SHIP\",\"to\":\"shipped\"},"
                    "{\"from\":[\"shipped\"],\"event\":\"DELIVER\",\"to\":\"delivered\"}]}");
    rstmdb_put_machine_req pm = {.machine = "order", .version = 1, .definition = def};
    rstmdb_reply *r = NULL;
    int rc = rstmdb_sync_put_machine(client, &pm, &r);
    if (rc != RSTMDB_OK)
        explain("put machine", rc, r);
    rstmdb_reply_free(r);
    cJSON_Delete(def);
    return rc;
}

static int apply(rstmdb_sync *client, const char *order_id, const char *event, const char *payload)
{
    cJSON *p = cJSON_Parse(payload);
    rstmdb_apply_event_req ae = {.instance_id = order_id, .event = event, .payload = p};
    rstmdb_reply *r = NULL;
    int rc = rstmdb_sync_apply_event(client, &ae, &r);
    if (rc != RSTMDB_OK)
        explain(event, rc, r);
    rstmdb_reply_free(r);
    cJSON_Delete(p);
    return rc;
}

static int process_order(rstmdb_sync *client, const char *order_id)
{
    rstmdb_reply *r = NULL;
    cJSON *ctx = cJSON_Parse("{\"items\":[\"item-1\",\"item-2\"],\"total\":149.99}");
    rstmdb_create_instance_req ci = {
        .machine = "order", .version = 1, .instance_id = order_id, .initial_ctx = ctx};
    int rc = rstmdb_sync_create_instance(client, &ci, &r);
    cJSON_Delete(ctx);
    if (rc != RSTMDB_OK)
        explain("create", rc, r);
    rstmdb_reply_free(r);
    if (rc != RSTMDB_OK)
        return rc;
    if ((rc = apply(client, order_id, "PAY", "{\"payment_id\":\"pay-123\"}")) != RSTMDB_OK ||
        (rc = apply(client, order_id, "SHIP", "{\"tracking\":\"1Z999\"}")) != RSTMDB_OK)
        return rc;

    rstmdb_get_instance_req gi = {.instance_id = order_id};
    rstmdb_instance_result order;
    rc = rstmdb_sync_get_instance(client, &gi, &r);
    if (rc == RSTMDB_OK && rstmdb_reply_get_instance(r, &order) == RSTMDB_OK)
        printf("Order %s is now: %s\n", order_id, order.state);
    else
        explain("get", rc, r);
    rstmdb_reply_free(r);
    return rc;
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : getenv("RSTMDB_ADDR");
    const char *order_id = argc > 2 ? argv[2] : "order-001";
    const char *token = getenv("RSTMDB_TOKEN");
    rstmdb_options *opts = NULL;
    rstmdb_sync *client = NULL;
    rstmdb_error *err = NULL;

    if (rstmdb_options_new(&opts) != RSTMDB_OK)
        return 1;
    if (token)
        rstmdb_options_set_auth(opts, token);
    int rc = rstmdb_sync_connect(&client, addr ? addr : "127.0.0.1:7401", opts, &err);
    rstmdb_options_free(opts);
    if (rc != RSTMDB_OK) {
        fprintf(stderr, "connect: %s\n", rstmdb_error_message(err));
        rstmdb_error_free(err);
        return 1;
    }
    rc = ensure_machine(client);
    if (rc == RSTMDB_OK)
        rc = process_order(client, order_id);
    rstmdb_sync_close(client);
    return rc == RSTMDB_OK ? 0 : 1;
}
