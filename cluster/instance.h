/* instance.h - a container instance as the cluster keeps it in etcd: the
 * record (JSON, ours), its key, its attributes and the host's resources.
 *
 * Key layout (docs/ARCHITECTURE.md "Clusters"):
 *   /ecs-secrets/clusters/<cluster>/instances/<id>   the record, under the
 *                                                    instance's lease
 * The record holds no secret: names, numbers, attributes.
 *
 * Pure (no I/O but cl_host_resources' sysconf and sysinfo). */
#ifndef ES_CLUSTER_INSTANCE_H
#define ES_CLUSTER_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define CL_KEY_ROOT "/ecs-secrets/clusters/"
#define CL_CLUSTER_MAX 255
#define CL_INSTANCE_ID_MAX 64
#define CL_INSTANCE_ARN_MAX 512
#define CL_HOST_ID_MAX 64
#define CL_ATTRS_MAX 64      /* attributes of one instance (ours and custom) */
#define CL_ATTR_NAME_MAX 128 /* ECS's */
#define CL_ATTR_VALUE_MAX 128
#define CL_STATUS_MAX 16
#define CL_VERSION_MAX 32
#define CL_RECORD_MAX (32u << 10) /* one record's JSON */
#define CL_KEY_MAX (sizeof CL_KEY_ROOT + CL_CLUSTER_MAX + 16 + CL_INSTANCE_ID_MAX)

typedef struct cl_attr {
    char name[CL_ATTR_NAME_MAX + 1];
    char value[CL_ATTR_VALUE_MAX + 1];
} cl_attr;

typedef struct cl_instance {
    char id[CL_INSTANCE_ID_MAX + 1];
    char arn[CL_INSTANCE_ARN_MAX + 1];
    char host_id[CL_HOST_ID_MAX + 1]; /* ec2InstanceId: "" off EC2 */
    char status[CL_STATUS_MAX + 1];   /* ACTIVE, DRAINING */
    char agent_version[CL_VERSION_MAX + 1];
    bool agent_connected;
    int64_t registered_at; /* epoch seconds */
    int64_t cpu, memory;   /* CPU units (1024 a core), MiB */
    int64_t running_tasks, pending_tasks;
    cl_attr attrs[CL_ATTRS_MAX];
    size_t n_attrs;
    /* etcd's, not in the record */
    int64_t mod_revision, lease;
} cl_instance;

/* "/ecs-secrets/clusters/<cluster>/instances/" and that plus "<id>".
 * The length written, or -EINVAL (a name outside its rules, too long). */
int cl_instances_prefix(const char *cluster, char *out, size_t outlen);
int cl_instance_key(const char *cluster, const char *id, char *out, size_t outlen);

/* "/ecs-secrets/clusters/<cluster>/<leaf>": the cluster's other keys (the
 * election's "leader", the task definitions' "taskdefs/"). leaf is ours,
 * never outside input. The length written, or -EINVAL. */
int cl_cluster_key(const char *cluster, const char *leaf, char *out, size_t outlen);
#define CL_LEADER_LEAF "leader"

/* Whether s is an instance ID as we make them (1..64 of [0-9a-f-]). */
bool cl_instance_id_ok(const char *s);
/* Whether s is ACTIVE or DRAINING (what UpdateContainerInstancesState sets). */
bool cl_status_ok(const char *s);

/* The record's JSON (appended to out). 0 or -ENOMEM / -EMSGSIZE. */
int cl_instance_write(const cl_instance *in, es_buf *out);
/* Reads a record (outside input: bounded; every field checked). 0 or
 * -EINVAL / -ENOMEM with why. */
int cl_instance_read(const char *text, size_t len, cl_instance *out, char *why, size_t whylen);

/* Sets (adds or replaces) an attribute. 0, or -EINVAL (name or value outside
 * ECS's rules), -ENOSPC. */
int cl_instance_set_attr(cl_instance *in, const char *name, const char *value);
const char *cl_instance_attr(const cl_instance *in, const char *name);
/* ECS's rules for an attribute's name and value. */
bool cl_attr_name_ok(const char *s);
bool cl_attr_value_ok(const char *s);
/* ECS_INSTANCE_ATTRIBUTES, as the ECS agent takes it: a JSON object of
 * string values, {"stack": "prod"}. Names starting "ecs." are ECS's and
 * refused. Added to in. 0, or -EINVAL with why. */
int cl_instance_custom_attrs(cl_instance *in, const char *json, char *why, size_t whylen);

/* The host's CPU units (online processors x 1024) and memory (MemTotal, MiB)
 * from sysconf and sysinfo(2), or MemTotal of a meminfo file (a path, for
 * tests). 0 or -errno. */
int cl_host_resources(const char *meminfo, int64_t *cpu, int64_t *memory_mib);
/* The machine's CPU architecture as ECS's attribute names it (x86_64, arm64). */
const char *cl_host_arch(void);

#endif
