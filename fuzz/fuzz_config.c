/* fuzz_config.c: libFuzzer target for the proxy's configuration parser
 * (daemon/config.c): file text, single key=value sets and address
 * splitting. Errors must name something; nothing may leak or crash; a
 * config that loads must print and validate.
 * Input: byte 0 picks the mode, the rest is the text. */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proxy_config c;
    config_error err;
    char *text;
    int rc;

    if (size < 1 || size > 65536)
        return 0;
    text = malloc(size);
    if (text == NULL)
        abort();
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    config_init(&c);
    memset(&err, 0, sizeof err);
    switch (data[0] % 3) {
    case 0:
        rc = config_parse_text(&c, text, "fuzz", &err);
        break;
    case 1: { /* "name\nvalue" */
        char *nl = strchr(text, '\n');
        const char *value = "";
        if (nl != NULL) {
            *nl = '\0';
            value = nl + 1;
        }
        rc = config_set(&c, text, value, &err);
        break;
    }
    default: {
        char host[256];
        unsigned port = 99999;
        rc = config_split_addr(text, host, sizeof host, &port);
        FUZZ_CHECK(rc == 0 || rc == -1);
        if (rc == 0)
            FUZZ_CHECK(port <= 65535 && memchr(host, '\0', sizeof host) != NULL);
        rc = 0;
        break;
    }
    }
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        FUZZ_CHECK(memchr(err.msg, '\0', sizeof err.msg) != NULL);
        FUZZ_CHECK(err.msg[0] != '\0'); /* an error always says what is wrong */
    } else {
        char *buf = NULL;
        size_t blen = 0;
        FILE *f = open_memstream(&buf, &blen);
        memset(&err, 0, sizeof err);
        if (config_validate(&c, &err) != 0)
            FUZZ_CHECK(err.msg[0] != '\0');
        if (f != NULL) {
            config_print_effective(f, &c);
            fclose(f);
            /* Secrets are redacted: a long token never shows up verbatim. */
            if (buf != NULL && c.upstream_token != NULL && strlen(c.upstream_token) >= 12)
                FUZZ_CHECK(strstr(buf, c.upstream_token) == NULL);
            for (size_t i = 0; buf != NULL && i < c.token.n; i++)
                if (strlen(c.token.v[i]) >= 12)
                    FUZZ_CHECK(strstr(buf, c.token.v[i]) == NULL);
            free(buf);
        }
    }
    config_free(&c);
    free(text);
    return 0;
}
