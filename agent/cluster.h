/* cluster.h - this agent's container instance and its membership of the
 * cluster (cluster/member.h), from the configuration:
 *
 *   ID          32 hex digits made once and kept in STATE_DIR/instance-id
 *               (a restart is the same instance)
 *   ARN         arn:aws:ecs:REGION:ACCOUNT:container-instance/CLUSTER/ID
 *   resources   CPU units (1024 a processor) and MiB of memory from the
 *               host, or ECS_SECRETS_INSTANCE_CPU / _MEMORY
 *   attributes  ecs.os-type=linux, ecs.instance-type (ECS_SECRETS_INSTANCE_TYPE),
 *               ecs.cpu-architecture, then ECS_INSTANCE_ATTRIBUTES
 *
 * With ECS_SECRETS_ETCD_ENDPOINTS the member joins the cluster in etcd
 * (lease TTL ECS_SECRETS_ETCD_LEASE_TTL, TLS from ECS_SECRETS_ETCD_*);
 * without, it is alone. The member's events are logged here. */
#ifndef AG_CLUSTER_H
#define AG_CLUSTER_H

#include <stdint.h>
#include <uv.h>

#include "cluster/member.h"
#include "config/config.h"

#define AG_INSTANCE_ID_FILE "instance-id"
#define AG_INSTANCE_ID_HEX 32

/* The instance ID kept in dir (made when absent). 0 or -errno. */
int ag_instance_id_load(const char *dir, char out[AG_INSTANCE_ID_HEX + 1]);
/* Fills in from the configuration (and the host). now: epoch seconds.
 * 0, or -EINVAL / -errno with why. */
int ag_instance_build(const cf_config *cfg, const char *id, int64_t now, cl_instance *out,
                      char *why, size_t whylen);
/* The instance's ARN (its ID loaded or made as ag_cluster_start does).
 * 0, or -ENAMETOOLONG / -errno. */
int ag_instance_arn(const cf_config *cfg, char *out, size_t outlen);
/* Builds the instance and starts the member. 0 or < 0 (logged). */
int ag_cluster_start(const cf_config *cfg, uv_loop_t *loop, cl_member **out);

#endif
