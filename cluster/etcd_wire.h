/* etcd_wire.h - etcd v3's JSON gateway (etcd 3.4): the bodies we send and the
 * answers we read, with no I/O (the client is etcd.c).
 *
 * The gateway speaks gRPC's messages as proto3 JSON: keys and values are
 * base64, 64-bit numbers are strings, a field at its zero value is left out
 * (a PUT event has no "type", a lost lease no "TTL"). Streams (watch, lease
 * keepalive) send one {"result": ...} object per line. An error is
 * {"error": text, "code": gRPC code, "message": text}.
 *
 * Every answer is outside input: parsed with es_json's limits and ours
 * (CL_ETCD_*_MAX), refused whole when one is passed. */
#ifndef ES_CLUSTER_ETCD_WIRE_H
#define ES_CLUSTER_ETCD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define CL_ETCD_KEY_MAX 1024             /* one key, decoded */
#define CL_ETCD_VALUE_MAX (64u << 10)    /* one value, decoded */
#define CL_ETCD_KVS_MAX 2000             /* key-values in one answer */
#define CL_ETCD_EVENTS_MAX 2000          /* events in one watch message */
#define CL_ETCD_ANSWER_MAX (8u << 20)    /* one answer (or one stream line), bytes */
#define CL_ETCD_REQUEST_MAX (256u << 10) /* one request body we write */
#define CL_ETCD_ERROR_MAX 160            /* an error's text kept */
/* operations of one txn branch, and compares of one txn: etcd's default
 * --max-txn-ops (a batch of placements fills it: cluster/batch.h) */
#define CL_ETCD_TXN_OPS_MAX 128

/* gRPC codes etcd answers with */
#define CL_GRPC_NOT_FOUND 5
#define CL_GRPC_FAILED_PRECONDITION 9

typedef struct cl_kv {
    char *key;   /* NUL-terminated */
    char *value; /* NUL-terminated too (value_len bytes before it) */
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
} cl_kv;

typedef enum cl_event_type { CL_EVENT_PUT, CL_EVENT_DELETE } cl_event_type;
typedef struct cl_event {
    cl_event_type type;
    cl_kv kv;
} cl_event;

/* One answer, whichever call it came from: what is absent is 0 / empty. */
typedef struct cl_answer {
    int64_t revision; /* header.revision */
    bool succeeded;   /* txn: the compare held */
    cl_kv *kvs;       /* range (or a txn's response_range) */
    size_t n_kvs;
    bool more;
    int64_t count, deleted;
    int64_t id, ttl; /* lease grant / keepalive */
    /* watch */
    bool created, canceled;
    int64_t watch_id, compact_revision;
    cl_event *events;
    size_t n_events;
    /* an error answer: code (gRPC's) and text */
    bool is_error;
    int code;
    char error[CL_ETCD_ERROR_MAX];
} cl_answer;

/* Parses one answer (or one line of a stream). 0, or -EINVAL / -ENOMEM /
 * -EMSGSIZE with why filled (never input text: values may be secret-free
 * by design, but the rule is the same everywhere). out is untouched on
 * failure; free it with cl_answer_free. */
int cl_wire_parse(const char *text, size_t len, cl_answer *out, char *why, size_t whylen);
void cl_answer_free(cl_answer *a);
void cl_kv_free(cl_kv *kv);

/* The end of a prefix's range: the prefix with its last byte + 1 (bytes 0xff
 * carried); "\0" (every key) when there is none. out holds CL_ETCD_KEY_MAX + 1.
 * The length written, or -EINVAL. */
int cl_wire_prefix_end(const char *prefix, char *out, size_t outlen);

/* Base64 of n bytes into out (es_buf). 0 or -ENOMEM / -EMSGSIZE. */
int cl_b64_append(es_buf *out, const void *p, size_t n);
/* Decodes base64 into a new NUL-terminated buffer; *len its length.
 * -EINVAL (not base64, or longer than max decoded), -ENOMEM. */
int cl_b64_decode(const char *s, size_t slen, size_t max, char **out, size_t *len);

/* Request bodies, appended to out (created with CL_ETCD_REQUEST_MAX). */
typedef enum cl_cmp_target { CL_CMP_MOD, CL_CMP_CREATE, CL_CMP_VERSION } cl_cmp_target;
typedef struct cl_txn_op {
    bool is_delete; /* else a put */
    const char *key;
    const char *value; /* put */
    size_t value_len;
    int64_t lease; /* put; 0: none */
} cl_txn_op;
typedef struct cl_txn_cmp {
    const char *key;
    cl_cmp_target target;
    int64_t revision;
} cl_txn_cmp;
typedef struct cl_txn {
    const char *key; /* the first compare: key's target == revision */
    cl_cmp_target target;
    int64_t revision;
    /* further compares, all of which must hold too (a batch: one per
     * request); 1 + n_more at most CL_ETCD_TXN_OPS_MAX */
    const cl_txn_cmp *more;
    size_t n_more;
    cl_txn_op success[CL_ETCD_TXN_OPS_MAX];
    size_t n_success;
    bool failure_range; /* on failure, read key back (its current kv) */
} cl_txn;

int cl_wire_range(es_buf *out, const char *key, bool prefix);
/* One page of a prefix's keys, in key order: from `from` (inclusive, under
 * prefix) to the prefix's end, at most limit, read at revision (0: now). */
int cl_wire_range_page(es_buf *out, const char *from, const char *prefix, int64_t limit,
                       int64_t revision);
int cl_wire_put(es_buf *out, const char *key, const char *value, size_t len, int64_t lease);
int cl_wire_delete(es_buf *out, const char *key, bool prefix);
int cl_wire_txn(es_buf *out, const cl_txn *t);
int cl_wire_lease_grant(es_buf *out, int64_t ttl);
int cl_wire_lease_id(es_buf *out, int64_t id); /* keepalive, revoke: {"ID": id} */
int cl_wire_watch(es_buf *out, const char *key, bool prefix, int64_t start_revision);

#endif
