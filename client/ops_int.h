/* ops_int.h (private): the typed requests' params as JSON text, shared by
 * the async calls (ops.c) and the blocking ones (sync.c). Each returns
 * RSTMDB_OK with *out a malloc'd object text (free()) and *len, or
 * RSTMDB_ERR_INVALID (missing required field), RSTMDB_ERR_NOMEM,
 * RSTMDB_ERR_FRAME_TOO_LARGE. */
#ifndef RSTMDB_OPS_INT_H
#define RSTMDB_OPS_INT_H

#include "rstmdb/ops.h"

int ops_text_put_machine(const rstmdb_put_machine_req *req, char **out, size_t *len);
int ops_text_get_machine(const rstmdb_get_machine_req *req, char **out, size_t *len);
int ops_text_create_instance(const rstmdb_create_instance_req *req, char **out, size_t *len);
int ops_text_get_instance(const rstmdb_get_instance_req *req, char **out, size_t *len);
int ops_text_list_instances(const rstmdb_list_instances_req *req, char **out, size_t *len);
int ops_text_delete_instance(const rstmdb_delete_instance_req *req, char **out, size_t *len);
int ops_text_apply_event(const rstmdb_apply_event_req *req, char **out, size_t *len);
int ops_text_batch(const rstmdb_batch_req *req, char **out, size_t *len);
int ops_text_snapshot_instance(const rstmdb_snapshot_instance_req *req, char **out, size_t *len);
int ops_text_wal_read(const rstmdb_wal_read_req *req, char **out, size_t *len);
int ops_text_compact(const rstmdb_compact_req *req, char **out, size_t *len);
int ops_text_watch_instance(const rstmdb_watch_instance_req *req, char **out, size_t *len);
int ops_text_watch_all(const rstmdb_watch_all_req *req, char **out, size_t *len);

#endif
