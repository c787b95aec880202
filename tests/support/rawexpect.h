/* rawexpect.h: Check assertions on the next document a rawnet receives, for
 * tests that link Check (rawnet itself stays free of it). Header-only: the
 * support library is built without Check. */
#ifndef TESTS_RAWEXPECT_H
#define TESTS_RAWEXPECT_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "rawnet.h"

/* Upper bound for a document that must arrive; a hung server fails the test
 * instead of hanging it. */
#define RAWEXPECT_WAIT_MS 10000

/* The next document equals `want` exactly. */
static inline void rawexpect_doc(rawnet *c, const char *want)
{
    char *got = NULL;
    int rc = rawnet_recv(c, &got, RAWEXPECT_WAIT_MS);
    ck_assert_msg(rc == 1, "expected '%s', got rc %d", want, rc);
    ck_assert_str_eq(got, want);
    free(got);
}

/* The next document contains `needle`. */
static inline void rawexpect_contains(rawnet *c, const char *needle)
{
    char *got = NULL;
    int rc = rawnet_recv(c, &got, RAWEXPECT_WAIT_MS);
    ck_assert_msg(rc == 1, "expected a document with '%s', got rc %d", needle, rc);
    ck_assert_msg(strstr(got, needle) != NULL, "'%s' lacks '%s'", got, needle);
    free(got);
}

/* The server closes the connection before sending anything more. */
static inline void rawexpect_eof(rawnet *c)
{
    char *got = NULL;
    int rc = rawnet_recv(c, &got, RAWEXPECT_WAIT_MS);
    ck_assert_msg(rc == 0, "expected EOF, got rc %d (%s)", rc, got ? got : "");
    free(got);
}

#endif
