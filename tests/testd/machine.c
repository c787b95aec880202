/* machine.c: definition parsing (serde wording), validation in rstmdb-core's
 * order, normalization and checksum. Owns machine_def memory only. */
#include "machine.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "rstmdb/frame.h"

void machine_def_free(machine_def *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nstates; i++)
        free(d->states[i]);
    free(d->states);
    free(d->initial);
    for (size_t i = 0; i < d->ntrans; i++) {
        machine_transition *t = &d->trans[i];
        for (size_t j = 0; j < t->nfrom; j++)
            free(t->from[j]);
        free(t->from);
        free(t->event);
        free(t->to);
        free(t->guard_text);
        guard_free(t->guard);
    }
    free(d->trans);
    jval_free(d->meta);
    free(d->json);
    free(d);
}

/* "core error: JSON error: <serde>" */
static int shape_err(char **err, const char *serde)
{
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    strbuf_puts(&b, "core error: JSON error: ");
    strbuf_puts(&b, serde);
    *err = strbuf_take(&b, NULL);
    return *err ? MACHINE_EINVALID : MACHINE_ENOMEM;
}

static int type_err(char **err, const jval *v, const char *expected)
{
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    strbuf_puts(&b, "core error: JSON error: invalid type: ");
    params_unexpected(&b, v);
    strbuf_puts(&b, ", expected ");
    strbuf_puts(&b, expected);
    *err = strbuf_take(&b, NULL);
    return *err ? MACHINE_EINVALID : MACHINE_ENOMEM;
}

static int def_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int def_err(char **err, const char *fmt, ...)
{
    static const char prefix[] = "core error: invalid machine definition: ";
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MACHINE_ENOMEM;
    char *m = malloc(sizeof(prefix) + (size_t)n);
    if (!m)
        return MACHINE_ENOMEM;
    memcpy(m, prefix, sizeof(prefix) - 1);
    va_start(ap, fmt);
    vsnprintf(m + sizeof(prefix) - 1, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *err = m;
    return MACHINE_EINVALID;
}

static char *dupstr(const jval *v)
{
    return strdup(v->v.str.s);
}

static int parse_strvec(const jval *v, char ***out, size_t *n, char **err)
{
    if (v->t != JV_ARRAY)
        return type_err(err, v, "a sequence");
    *out = calloc(v->v.arr.n ? v->v.arr.n : 1, sizeof(char *));
    if (!*out)
        return MACHINE_ENOMEM;
    for (size_t i = 0; i < v->v.arr.n; i++) {
        const jval *s = v->v.arr.items[i];
        if (s->t != JV_STRING)
            return type_err(err, s, "a string");
        (*out)[i] = dupstr(s);
        if (!(*out)[i])
            return MACHINE_ENOMEM;
        *n = i + 1;
    }
    return MACHINE_OK;
}

/* One transitions[] element: {"from","event","to","guard"} or positional. */
static int parse_transition(const jval *v, machine_transition *t, char **err)
{
    const jval *from = NULL, *event = NULL, *to = NULL, *g = NULL;
    bool seq = false;
    if (v->t == JV_ARRAY) {
        seq = true;
        size_t n = v->v.arr.n;
        if (n > 0)
            from = v->v.arr.items[0];
        if (n > 1)
            event = v->v.arr.items[1];
        if (n > 2)
            to = v->v.arr.items[2];
        if (n > 3)
            g = v->v.arr.items[3];
        if (n < 3) {
            char m[96];
            snprintf(m, sizeof(m), "invalid length %zu, expected struct Transition with 4 elements",
                     n);
            return shape_err(err, m);
        }
        if (n > 4) {
            char m[96];
            snprintf(m, sizeof(m), "invalid length %zu, expected fewer elements in array", n);
            return shape_err(err, m);
        }
    } else if (v->t == JV_OBJECT) {
        event = jval_get(v, "event");
        from = jval_get(v, "from");
        g = jval_get(v, "guard");
        to = jval_get(v, "to");
    } else {
        return type_err(err, v, "struct Transition");
    }
    /* Key order of a sorted map: event, from, guard, to (positional: from, event, to, guard). */
    const jval *order_obj[4] = {event, from, g, to};
    const jval *order_seq[4] = {from, event, to, g};
    const jval **order = seq ? order_seq : order_obj;
    for (int k = 0; k < 4; k++) {
        const jval *f = order[k];
        if (!f)
            continue;
        if (f == from) {
            if (f->t == JV_STRING) {
                t->from = calloc(1, sizeof(char *));
                if (!t->from || !(t->from[0] = dupstr(f)))
                    return MACHINE_ENOMEM;
                t->nfrom = 1;
            } else if (f->t == JV_ARRAY) {
                int rc = parse_strvec(f, &t->from, &t->nfrom, err);
                if (rc != MACHINE_OK)
                    return rc;
            } else {
                return type_err(err, f, "a string or array of strings");
            }
        } else if (f == g) {
            if (f->t == JV_NULL)
                continue;
            if (f->t != JV_STRING)
                return type_err(err, f, "a string");
            if (!(t->guard_text = dupstr(f)))
                return MACHINE_ENOMEM;
        } else {
            if (f->t != JV_STRING)
                return type_err(err, f, "a string");
            char *s = dupstr(f);
            if (!s)
                return MACHINE_ENOMEM;
            if (f == event && !t->event)
                t->event = s;
            else
                t->to = s;
        }
    }
    if (!from)
        return shape_err(err, "missing field `from`");
    if (!event)
        return shape_err(err, "missing field `event`");
    if (!to)
        return shape_err(err, "missing field `to`");
    return MACHINE_OK;
}

static bool has_state(const machine_def *d, const char *s)
{
    for (size_t i = 0; i < d->nstates; i++)
        if (strcmp(d->states[i], s) == 0)
            return true;
    return false;
}

static void put_strarr(strbuf *b, char **a, size_t n)
{
    strbuf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_putc(b, ',');
        strbuf_jstr(b, a[i], strlen(a[i]));
    }
    strbuf_putc(b, ']');
}

static void put_str(strbuf *b, const char *s)
{
    strbuf_jstr(b, s, strlen(s));
}

/* sorted = false: the checksum form (struct field order); true: GET_MACHINE. */
static void render(strbuf *b, const machine_def *d, bool sorted)
{
    strbuf_putc(b, '{');
    if (sorted) {
        strbuf_puts(b, "\"initial\":");
        put_str(b, d->initial);
        if (d->meta) {
            strbuf_puts(b, ",\"meta\":");
            jval_print(b, d->meta);
        }
        strbuf_puts(b, ",\"states\":");
        put_strarr(b, d->states, d->nstates);
        strbuf_puts(b, ",\"transitions\":[");
    } else {
        strbuf_puts(b, "\"states\":");
        put_strarr(b, d->states, d->nstates);
        strbuf_puts(b, ",\"initial\":");
        put_str(b, d->initial);
        strbuf_puts(b, ",\"transitions\":[");
    }
    for (size_t i = 0; i < d->ntrans; i++) {
        const machine_transition *t = &d->trans[i];
        if (i)
            strbuf_putc(b, ',');
        if (sorted) {
            strbuf_puts(b, "{\"event\":");
            put_str(b, t->event);
            strbuf_puts(b, ",\"from\":");
            put_strarr(b, t->from, t->nfrom);
            if (t->guard_text) {
                strbuf_puts(b, ",\"guard\":");
                put_str(b, t->guard_text);
            }
            strbuf_puts(b, ",\"to\":");
            put_str(b, t->to);
            strbuf_putc(b, '}');
        } else {
            strbuf_puts(b, "{\"from\":");
            put_strarr(b, t->from, t->nfrom);
            strbuf_puts(b, ",\"event\":");
            put_str(b, t->event);
            strbuf_puts(b, ",\"to\":");
            put_str(b, t->to);
            if (t->guard_text) {
                strbuf_puts(b, ",\"guard\":");
                put_str(b, t->guard_text);
            }
            strbuf_putc(b, '}');
        }
    }
    strbuf_putc(b, ']');
    if (!sorted && d->meta) {
        strbuf_puts(b, ",\"meta\":");
        jval_print(b, d->meta);
    }
    strbuf_putc(b, '}');
}

static int parse_shape(const jval *def, machine_def *d, char **err)
{
    const jval *states = NULL, *initial = NULL, *trans = NULL, *meta = NULL;
    if (def->t == JV_OBJECT) {
        initial = jval_get(def, "initial");
        meta = jval_get(def, "meta");
        states = jval_get(def, "states");
        trans = jval_get(def, "transitions");
    } else if (def->t == JV_ARRAY) {
        size_t n = def->v.arr.n;
        if (n < 3 || n > 4) {
            char m[112];
            if (n < 3)
                snprintf(m, sizeof(m),
                         "invalid length %zu, expected struct MachineDefinitionRaw with 4 elements",
                         n);
            else
                snprintf(m, sizeof(m), "invalid length %zu, expected fewer elements in array", n);
            return shape_err(err, m);
        }
        states = def->v.arr.items[0];
        initial = def->v.arr.items[1];
        trans = def->v.arr.items[2];
        meta = n > 3 ? def->v.arr.items[3] : NULL;
    } else {
        return type_err(err, def, "struct MachineDefinitionRaw");
    }
    int rc;
    /* Sorted key order: initial, meta, states, transitions. */
    if (initial) {
        if (initial->t != JV_STRING)
            return type_err(err, initial, "a string");
        if (!(d->initial = dupstr(initial)))
            return MACHINE_ENOMEM;
    }
    if (meta && meta->t != JV_NULL) {
        if (!(d->meta = jval_copy(meta)) || jval_normalize(d->meta) != 0)
            return MACHINE_ENOMEM;
    }
    if (states && (rc = parse_strvec(states, &d->states, &d->nstates, err)) != MACHINE_OK)
        return rc;
    if (trans) {
        if (trans->t != JV_ARRAY)
            return type_err(err, trans, "a sequence");
        d->trans = calloc(trans->v.arr.n ? trans->v.arr.n : 1, sizeof(*d->trans));
        if (!d->trans)
            return MACHINE_ENOMEM;
        for (size_t i = 0; i < trans->v.arr.n; i++) {
            d->ntrans = i + 1;
            if ((rc = parse_transition(trans->v.arr.items[i], &d->trans[i], err)) != MACHINE_OK)
                return rc;
        }
    }
    if (!states)
        return shape_err(err, "missing field `states`");
    if (!initial)
        return shape_err(err, "missing field `initial`");
    if (!trans)
        return shape_err(err, "missing field `transitions`");
    return MACHINE_OK;
}

int machine_def_parse(const jval *def, machine_def **out, char **err)
{
    *err = NULL;
    machine_def *d = calloc(1, sizeof(*d));
    if (!d)
        return MACHINE_ENOMEM;
    int rc = parse_shape(def, d, err);
    if (rc != MACHINE_OK)
        goto fail;
    if (!has_state(d, d->initial)) {
        rc = def_err(err, "initial state '%s' not in states list", d->initial);
        goto fail;
    }
    for (size_t i = 0; i < d->ntrans; i++) {
        machine_transition *t = &d->trans[i];
        if (!has_state(d, t->to)) {
            rc = def_err(err, "transition target '%s' not in states list", t->to);
            goto fail;
        }
        if (t->guard_text) {
            char *reason = NULL;
            int g = guard_parse(t->guard_text, strlen(t->guard_text), &t->guard, &reason);
            if (g == GUARD_EPARSE) {
                strbuf b;
                strbuf_init(&b, TESTD_TEXT_MAX);
                strbuf_puts(&b, "core error: invalid guard expression: ");
                strbuf_puts(&b, reason);
                free(reason);
                *err = strbuf_take(&b, NULL);
                rc = *err ? MACHINE_EINVALID : MACHINE_ENOMEM;
                goto fail;
            }
            if (g != GUARD_OK) {
                rc = g == GUARD_EPANIC ? MACHINE_EPANIC : MACHINE_ENOMEM;
                goto fail;
            }
        }
        for (size_t j = 0; j < t->nfrom; j++) {
            if (!has_state(d, t->from[j])) {
                rc = def_err(err, "transition source '%s' not in states list", t->from[j]);
                goto fail;
            }
            /* At most one transition per (from, event), guards or not. */
            for (size_t pi = 0; pi <= i; pi++) {
                const machine_transition *pt = &d->trans[pi];
                size_t lim = pi == i ? j : pt->nfrom;
                for (size_t pj = 0; pj < lim; pj++) {
                    if (strcmp(pt->from[pj], t->from[j]) == 0 && strcmp(pt->event, t->event) == 0) {
                        rc = def_err(err, "duplicate transition from '%s' on event '%s'",
                                     t->from[j], t->event);
                        goto fail;
                    }
                }
            }
        }
    }
    strbuf b;
    strbuf_init(&b, TESTD_TEXT_MAX);
    render(&b, d, false);
    if (strbuf_failed(&b)) {
        strbuf_deinit(&b);
        rc = MACHINE_ENOMEM;
        goto fail;
    }
    snprintf(d->checksum, sizeof(d->checksum), "%08x", rstmdb_crc32c(b.data, b.len));
    strbuf_reset(&b);
    render(&b, d, true);
    d->json = strbuf_take(&b, &d->json_len);
    if (!d->json) {
        rc = MACHINE_ENOMEM;
        goto fail;
    }
    *out = d;
    return MACHINE_OK;
fail:
    machine_def_free(d);
    return rc;
}

const machine_transition *machine_def_find(const machine_def *d, const char *state,
                                           const char *event, size_t evlen)
{
    for (size_t i = 0; i < d->ntrans; i++) {
        const machine_transition *t = &d->trans[i];
        if (strlen(t->event) != evlen || memcmp(t->event, event, evlen) != 0)
            continue;
        for (size_t j = 0; j < t->nfrom; j++)
            if (strcmp(t->from[j], state) == 0)
                return t;
    }
    return NULL;
}
