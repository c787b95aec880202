/* secret.c: reading secret files (secret.h). */
#include "secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int secret_read(const char *name, const char *creds_dir, char **text, size_t *len, char *why,
                size_t cap)
{
    char path[4096];
    if (name[0] != '/' && creds_dir != NULL && *creds_dir != '\0')
        snprintf(path, sizeof path, "%s/%s", creds_dir, name);
    else
        snprintf(path, sizeof path, "%s", name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(why, cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *b = malloc(SECRET_MAX_BYTES + 1);
    size_t n = b ? fread(b, 1, SECRET_MAX_BYTES + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (b == NULL || err || n > SECRET_MAX_BYTES) {
        snprintf(why, cap, "%s: %s", path,
                 b == NULL ? "out of memory"
                 : err     ? "read error"
                           : "larger than 1 MiB");
        free(b);
        return -1;
    }
    b[n] = '\0';
    *text = b;
    if (len)
        *len = n;
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int secret_lines(char *text, char ***lines, size_t *n)
{
    *lines = NULL;
    *n = 0;
    size_t cap = 0;
    for (char *p = text; p != NULL && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        char *l = trim(p);
        p = nl ? nl + 1 : NULL;
        if (*l == '\0' || *l == '#')
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **nv = realloc(*lines, nc * sizeof *nv);
            if (nv == NULL) {
                free(*lines);
                *lines = NULL;
                *n = 0;
                return -1;
            }
            *lines = nv;
            cap = nc;
        }
        (*lines)[(*n)++] = l;
    }
    return 0;
}

const char *secret_first_line(char *text)
{
    char **lines;
    size_t n;
    if (secret_lines(text, &lines, &n) != 0 || n == 0) {
        free(lines);
        return "";
    }
    const char *first = lines[0];
    free(lines);
    return first;
}
