/* rstmdb/rstmdb.h: everything librstmdb offers, in one include.
 *
 *   error.h   status codes, server error codes, the error object
 *   frame.h   the RCPX frame and JSONL codecs (sans I/O)
 *   client.h  the asynchronous client on libevent: connections, raw calls,
 *             replies, subscriptions and events
 *   ops.h     typed requests and result views for the 22 operations
 *   sync.h    the blocking API on top (one call, one round trip)
 */
#ifndef RSTMDB_RSTMDB_H
#define RSTMDB_RSTMDB_H

#include "rstmdb/client.h"
#include "rstmdb/error.h"
#include "rstmdb/frame.h"
#include "rstmdb/ops.h"
#include "rstmdb/sync.h"

#endif
