/* quick_start.c: the Go client's Quick Start with the blocking API: define a
 * machine, create an instance, apply an event.
 *   quick_start [HOST:PORT]     (token from $RSTMDB_TOKEN) */
#include <stdio.h>
#include <stdlib.h>

#include <cJSON.h>

#include "rstmdb/rstmdb.h"

static int fail(const char *what, int rc, const rstmdb_reply *r)
{
    const rstmdb_error *e = rstmdb_reply_error(r);
    fprintf(stderr, "%s: %s\n", what, e ? rstmdb_error_message(e) : rstmdb_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    const char *addr = argc > 1 ? argv[1] : getenv("RSTMDB_ADDR");
    const char *token = getenv("RSTMDB_TOKEN");
    rstmdb_options *opts = NULL;
    rstmdb_sync *client = NULL;
    rstmdb_error *err = NULL;
    rstmdb_reply *r = NULL;
    int status = 1;

    if (rstmdb_options_new(&opts) != RSTMDB_OK)
        return 1;
    if (token)
        rstmdb_options_set_auth(opts, token);
    rstmdb_options_set_client_name(opts, "quick_start");
    if (rstmdb_sync_connect(&client, addr ? addr : "127.0.0.1:7401", opts, &err) != RSTMDB_OK) {
        fprintf(stderr, "connect: %s\n", rstmdb_error_message(err));
        rstmdb_error_free(err);
        rstmdb_options_free(opts);
        return 1;
    }
    rstmdb_options_free(opts);

    /* Define a state machine. */
    cJSON *def =
        cJSON_Parse("{\"states\":[\"pending\",\"paid\",\"shipped\",\"delivered\"],"
                    "\"initial\":\"pending\",\"transitions\":["
                    "{\"from\":[\"pending\"],\"event\":\"PAY\",\"to\":\"paid\"},"
                    "{\"from\":[\"paid\"],\"event\":\"SHIP\",\"to\":\"shipped\"},"
                    "{\"from\":[\"shipped\"],\"event\":\"DELIVER\",\"to\":\"delivered\"}]}");
    rstmdb_put_machine_req pm = {.machine = "order", .version = 1, .definition = def};
    int rc = rstmdb_sync_put_machine(client, &pm, &r);
    cJSON_Delete(def);
    if (rc != RSTMDB_OK) {
        status = fail("put machine", rc, r);
        goto out;
    }
    rstmdb_reply_free(r);

    /* Create an instance. */
    cJSON *ctx = cJSON_Parse("{\"customer\":\"alice\",\"total\":99.99}");
    rstmdb_create_instance_req ci = {
        .machine = "order", .version = 1, .instance_id = "order-001", .initial_ctx = ctx};
    rc = rstmdb_sync_create_instance(client, &ci, &r);
    cJSON_Delete(ctx);
    rstmdb_create_instance_result inst;
    if (rc != RSTMDB_OK || rstmdb_reply_create_instance(r, &inst) != RSTMDB_OK) {
        status = fail("create instance", rc, r);
        goto out;
    }
    printf("Created: %s in state %s\n", inst.instance_id, inst.state);
    rstmdb_reply_free(r);

    /* Apply an event. */
    cJSON *payload = cJSON_Parse("{\"payment_id\":\"pay-123\"}");
    rstmdb_apply_event_req ae = {.instance_id = "order-001", .event = "PAY", .payload = payload};
    rc = rstmdb_sync_apply_event(client, &ae, &r);
    cJSON_Delete(payload);
    rstmdb_apply_result res;
    if (rc != RSTMDB_OK || rstmdb_reply_apply_event(r, &res) != RSTMDB_OK) {
        status = fail("apply event", rc, r);
        goto out;
    }
    printf("Transitioned: %s -> %s\n", res.from_state, res.to_state);
    status = 0;
out:
    rstmdb_reply_free(r);
    rstmdb_sync_close(client);
    return status;
}
