/* sse_format.c: the text/event-stream wire format: the opening lines, one
 * event, the final error event. Pure functions, unit-tested and fuzzed
 * (fuzz_sse_format). */
#include "sse_format.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "utf8.h"

size_t sse_format_open(char *out, size_t cap, unsigned retry_ms)
{
    int n = snprintf(out, cap, "retry: %u\n: rstmdb-proxy stream open\n\n", retry_ms);
    return (n < 0 || (size_t)n >= cap) ? 0 : (size_t)n;
}

size_t sse_format_event(char *out, size_t cap, uint64_t id, const char *data, size_t len)
{
    int n = snprintf(out, cap, "id: %llu\n", (unsigned long long)id);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    size_t o = (size_t)n;
    /* One data: line per line of the payload (compact JSON has none, but a
     * stray newline must never end the event early). CR, LF and CRLF all end
     * a line for an SSE reader: a lone CR passed through would let data such
     * as "a\r\rid: 9" dispatch early and forge an id (fuzz_sse_format). */
    size_t i = 0;
    do {
        size_t l = 0;
        while (i + l < len && data[i + l] != '\n' && data[i + l] != '\r')
            l++;
        if (o + 6 + l + 1 >= cap)
            return 0;
        memcpy(out + o, "data: ", 6);
        o += 6;
        memcpy(out + o, data + i, l);
        o += l;
        out[o++] = '\n';
        i += l;
        if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
            i += 2;
        else if (i < len)
            i++;
    } while (i < len);
    if (o + 2 > cap)
        return 0;
    out[o++] = '\n';
    if (o < cap)
        out[o] = '\0';
    return o;
}

size_t sse_format_error(char *out, size_t cap, const char *code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return 0;
    char msg[200];
    snprintf(msg, sizeof msg, "%s", message ? message : "");
    if (!utf8_valid(msg, strlen(msg)))
        snprintf(msg, sizeof msg, "(message not valid UTF-8)");
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "message", msg);
    char *j = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (j == NULL)
        return 0;
    int n = snprintf(out, cap, "event: error\ndata: %s\n\n", j);
    free(j);
    return (n < 0 || (size_t)n >= cap) ? 0 : (size_t)n;
}
