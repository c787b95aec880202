/* fuzz_sse_format.c: libFuzzer target for the proxy's SSE formatter
 * (daemon/sse.c). Whatever bytes an event's data holds, the output parsed by
 * a spec-following SSE reader (CR, LF and CRLF all end a line, a blank line
 * dispatches) must be exactly one event with the given id: data can never
 * end the event early or inject an `id:`/`event:` field.
 * Input: 8 bytes id, 2 bytes cap, then the data (or code NUL message). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sse.h"

typedef struct parsed {
    unsigned events; /* dispatched events with data */
    unsigned blanks; /* blank lines before the end */
    bool id_seen;
    uint64_t id;
    char event[32];
    unsigned other_fields; /* fields other than id/data/event */
} parsed;

/* A reader per the HTML spec's event-stream interpretation, reduced to
 * what the checks need. */
static void sse_parse(const char *s, size_t n, parsed *p)
{
    size_t i = 0;
    bool has_data = false;

    memset(p, 0, sizeof *p);
    while (i < n) {
        size_t start = i, len;
        while (i < n && s[i] != '\r' && s[i] != '\n')
            i++;
        len = i - start;
        if (i < n && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            i += 2;
        else if (i < n)
            i++;
        if (len == 0) {
            if (has_data)
                p->events++;
            if (i < n)
                p->blanks++;
            has_data = false;
            continue;
        }
        if (s[start] == ':')
            continue;
        if (len >= 4 && memcmp(s + start, "id: ", 4) == 0) {
            p->id_seen = true;
            p->id = strtoull(s + start + 4, NULL, 10);
        } else if (len >= 5 && memcmp(s + start, "data:", 5) == 0) {
            has_data = true;
        } else if (len >= 7 && memcmp(s + start, "event: ", 7) == 0) {
            size_t k = len - 7 < sizeof p->event - 1 ? len - 7 : sizeof p->event - 1;
            memcpy(p->event, s + start + 7, k);
            p->event[k] = '\0';
        } else {
            p->other_fields++;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t id = 0;
    size_t cap, len, i, n;
    const char *payload;
    char *out;
    parsed p;

    if (size < 10 || size > 65536)
        return 0;
    for (i = 0; i < 8; i++)
        id = id << 8 | data[i];
    cap = ((size_t)data[8] << 8 | data[9]) + 1;
    payload = (const char *)data + 10;
    len = size - 10;
    out = malloc(cap + 1);
    if (out == NULL)
        abort();

    /* A data event. */
    n = sse_format_event(out, cap, id, payload, len);
    FUZZ_CHECK(n <= cap);
    if (n > 0) {
        FUZZ_CHECK(n >= 2 && out[n - 1] == '\n' && out[n - 2] == '\n');
        sse_parse(out, n, &p);
        FUZZ_CHECK(p.events == 1); /* exactly one event ... */
        FUZZ_CHECK(p.blanks == 0); /* ... dispatched only at its end */
        FUZZ_CHECK(p.id_seen && p.id == id);
        FUZZ_CHECK(p.event[0] == '\0'); /* the data cannot name the event type */
        FUZZ_CHECK(p.other_fields == 0);
    }

    /* The final error event: code NUL message. */
    {
        char *code = malloc(len + 1);
        const char *msg;
        if (code == NULL)
            abort();
        memcpy(code, payload, len);
        code[len] = '\0';
        msg = memchr(payload, '\0', len) != NULL ? code + strlen(code) + 1 : "";
        if (msg > code + len)
            msg = "";
        n = sse_format_error(out, cap, code, msg);
        FUZZ_CHECK(n < cap || n == 0);
        if (n > 0) {
            const char *d;
            cJSON *j;
            out[n] = '\0';
            sse_parse(out, n, &p);
            FUZZ_CHECK(p.events == 1 && p.blanks == 0);
            FUZZ_CHECK(strcmp(p.event, "error") == 0);
            FUZZ_CHECK(p.other_fields == 0);
            d = strstr(out, "data: ");
            FUZZ_CHECK(d != NULL);
            d += 6;
            out[n - 2] = '\0';
            j = cJSON_Parse(d);
            FUZZ_CHECK(j != NULL); /* the data is one valid JSON object */
            FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItem(j, "code")));
            cJSON_Delete(j);
        }
        free(code);
    }

    /* The opening lines. */
    n = sse_format_open(out, cap, (unsigned)id);
    FUZZ_CHECK(n < cap || n == 0);
    if (n > 0) {
        sse_parse(out, n, &p);
        FUZZ_CHECK(p.events == 0 && p.blanks == 0 && p.other_fields == 1); /* "retry:" */
    }
    free(out);
    return 0;
}
