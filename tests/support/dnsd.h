/* dnsd.h: a tiny DNS server for tests, on a loopback UDP port in a thread of
 * the test. It answers every A query with the configured IPv4 addresses (in
 * that order), every AAAA query with none, or every query with a chosen
 * error; it can also hold queries unanswered until told to release them, so
 * a test can look at the code under test while a lookup is outstanding. */
#ifndef TESTS_DNSD_H
#define TESTS_DNSD_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dnsd dnsd;

/* Start on 127.0.0.1:0; the "127.0.0.1:PORT" it bound goes to addr. 0 or -1. */
int dnsd_start(dnsd **out, char *addr, size_t cap);
/* Stop the thread and free everything. NULL-safe. */
void dnsd_stop(dnsd *d);

/* What later answers say: "127.0.0.2,127.0.0.1" (at most 8), rcode 0; or an
 * rcode (2 SERVFAIL, 3 NXDOMAIN) with no answers. */
void dnsd_answer(dnsd *d, const char *ipv4_list);
void dnsd_fail(dnsd *d, int rcode);
/* hold = true: queries wait unanswered; false: the waiting ones are answered
 * now with the current answer, and later ones at once. */
void dnsd_hold(dnsd *d, bool hold);
/* A queries received so far, and how many wait (held) now. */
unsigned dnsd_queries(dnsd *d);
unsigned dnsd_waiting(dnsd *d);

#endif
