/* taskdefs.h - the cluster's task definitions in etcd (issue 23): one key
 * per revision, written in transactions so that agents registering the same
 * family at once get revisions 1..n without a gap or a duplicate.
 *
 * Key:    /ecs-secrets/clusters/<cluster>/taskdefs/<family>/<revision>
 *         (the revision in 10 digits, zero-padded: key order is revision
 *         order; a family is ECS's: letters, digits, '-', '_', no '/')
 * Value:  a header line, JSON {"family","revision","status","registeredAt",
 *         "deregisteredAt","token"}, a newline, then the body: the
 *         request-shaped JSON the agent's store keeps (references to
 *         secrets, never their values). No lease: a definition outlives
 *         the agent that registered it.
 *
 * Register: Txn(create_revision(key(rev)) == 0 ? put : range(key)) from the
 * revision the caller believes next (its replica's last + 1); when the key
 * exists, the next revision is tried (at most CL_TD_REGISTER_TRIES). The
 * header carries a random token: a try whose answer was lost and was sent
 * again finds its own token in the failure branch and is done, so one call
 * never takes two revisions. Deregister: read, then Txn(mod_revision ==
 * read's ? put INACTIVE : range), again on a concurrent change.
 *
 * Parsing the value is parsing outside input: bounded (CL_TD_HEADER_MAX,
 * CL_ETCD_VALUE_MAX), every field checked, the key must name the same
 * family and revision. A library: it never logs. */
#ifndef ES_CLUSTER_TASKDEFS_H
#define ES_CLUSTER_TASKDEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "common/buf.h"

#define CL_TD_LEAF "taskdefs/"
#define CL_TD_FAMILY_MAX 255 /* ECS's */
#define CL_TD_REVISION_MAX 9999999999LL
#define CL_TD_TOKEN_HEX 32
#define CL_TD_HEADER_MAX 1024
#define CL_TD_BODY_MAX (CL_ETCD_VALUE_MAX - CL_TD_HEADER_MAX)
#define CL_TD_REGISTER_TRIES 64 /* revisions taken by others before one call gives up */
#define CL_TD_DEREGISTER_TRIES 5

typedef struct cl_td_record {
    char family[CL_TD_FAMILY_MAX + 1];
    int64_t revision;
    bool active;
    int64_t registered_at, deregistered_at; /* epoch seconds; 0: not deregistered */
    char token[CL_TD_TOKEN_HEX + 1];
    const char *body; /* not NUL-terminated; not owned (points into the value read) */
    size_t body_len;
    int64_t mod_revision; /* etcd's, not in the value */
} cl_td_record;

/* ECS's rule for a family: 1..255 of letters, digits, '-', '_'. */
bool cl_td_family_ok(const char *s);
/* ".../taskdefs/" and ".../taskdefs/<family>/<revision>". The length or -EINVAL. */
int cl_td_prefix(const char *cluster, char *out, size_t outlen);
int cl_td_key(const char *cluster, const char *family, int64_t revision, char *out, size_t outlen);

/* The value (appended to out). 0, -EINVAL (a field outside its rules),
 * -EMSGSIZE (longer than CL_ETCD_VALUE_MAX), -ENOMEM. */
int cl_td_write(const cl_td_record *rec, es_buf *out);
/* Reads kv (a key under prefix and its value) into out; out->body points
 * into kv->value. 0, or -EINVAL / -ENOMEM with why. */
int cl_td_read(const char *prefix, const cl_kv *kv, cl_td_record *out, char *why, size_t whylen);

/* cb gets err 0 and the record as etcd holds it (the revision it took),
 * or < 0: CL_ETCD_E_*, -EBUSY (CL_TD_REGISTER_TRIES revisions taken),
 * -ENOENT (deregister: no such revision). rec lives during the call. */
/* conflicts: revisions found taken (register) or changes met (deregister)
 * on the way: the transactions that failed their compare. */
typedef void (*cl_td_cb)(void *arg, int err, const cl_td_record *rec, unsigned conflicts);
/* rec: family, body, registered_at, and revision = the first to try (>= 1).
 * The body is copied. 0 (cb follows) or < 0 now. */
int cl_td_register(cl_etcd *e, const char *cluster, const cl_td_record *rec, cl_td_cb cb,
                   void *arg);
int cl_td_deregister(cl_etcd *e, const char *cluster, const char *family, int64_t revision,
                     int64_t now, cl_td_cb cb, void *arg);

#endif
