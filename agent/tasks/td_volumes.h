/* td_volumes.h - a task definition's storage and ports (issue 20): the task's
 * `volumes`, and each container's `mountPoints`, `volumesFrom` and
 * `portMappings`, as ECS runs them on the EC2 launch type.
 *
 *   volumes[]      host.sourcePath: a host directory (Docker's Binds, which
 *                  creates it when missing, as the ECS agent gives it);
 *                  dockerVolumeConfiguration {scope, autoprovision, driver,
 *                  driverOpts, labels}: a Docker volume; neither (or an
 *                  empty host): a Docker volume the task owns (ECS: scope
 *                  task, driver local). efsVolumeConfiguration,
 *                  fsxWindowsFileServerVolumeConfiguration and
 *                  configuredAtLaunch are refused with the reason.
 *   mountPoints[]  {sourceVolume, containerPath, readOnly}: one of volumes.
 *   volumesFrom[]  {sourceContainer, readOnly}: another container of the
 *                  task (created before this one; a cycle is refused).
 *   portMappings[] {containerPort | containerPortRange, hostPort, protocol,
 *                  name, appProtocol}: bridge (hostPort 0 or absent:
 *                  dynamic) and host (hostPort absent or = containerPort);
 *                  refused in the none network mode.
 *
 * Parsed once at registration (every refusal a ClientException starting
 * with the member's path), written back as registered. Pure: no I/O. */
#ifndef AG_TD_VOLUMES_H
#define AG_TD_VOLUMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/json.h"

struct ag_td_error;
struct ag_taskdef;
struct ag_container_def;

/* Named limits: ours, well above real use (ECS states none for these). */
#define AG_TD_VOLUMES_MAX 64
#define AG_TD_VOLUME_NAME_MAX 255
#define AG_TD_VOLUME_PATH_MAX 4096 /* sourcePath, containerPath */
#define AG_TD_VOLUME_DRIVER_MAX 255
#define AG_TD_VOLUME_OPTS_MAX 64 /* driverOpts, labels entries */
#define AG_TD_VOLUME_OPT_MAX 4096
#define AG_TD_MOUNT_POINTS_MAX 64
#define AG_TD_VOLUMES_FROM_MAX 10 /* one per other container at most */
#define AG_TD_PORT_MAPPINGS_MAX 100
#define AG_TD_PORT_RANGE_PORTS_MAX 1000 /* ports of every containerPortRange of a container */
#define AG_TD_PORT_NAME_MAX 64
#define AG_TD_PORT_RANGE_STR_MAX 16 /* "65534-65535" */

typedef enum ag_volume_kind {
    AG_VOLUME_TASK,   /* neither host nor dockerVolumeConfiguration: Docker, scope task */
    AG_VOLUME_HOST,   /* host.sourcePath */
    AG_VOLUME_DOCKER, /* dockerVolumeConfiguration */
} ag_volume_kind;

typedef struct ag_vol_kv {
    char *key, *value;
} ag_vol_kv;

typedef struct ag_td_volume {
    char *name;
    ag_volume_kind kind;
    bool has_host;     /* "host" was given (an empty one: AG_VOLUME_TASK) */
    char *source_path; /* AG_VOLUME_HOST */
    /* dockerVolumeConfiguration, as given */
    char *scope; /* "task" | "shared"; NULL: task */
    bool has_autoprovision, autoprovision;
    char *driver;           /* NULL: local */
    ag_vol_kv *driver_opts; /* NULL when absent */
    size_t n_driver_opts;
    ag_vol_kv *labels; /* NULL when absent */
    size_t n_labels;
} ag_td_volume;

typedef struct ag_mount_point {
    char *source_volume;
    char *container_path;
    bool has_read_only, read_only;
    size_t volume; /* index into the task definition's volumes */
} ag_mount_point;

typedef struct ag_volume_from {
    char *source_container;
    bool has_read_only, read_only;
    size_t container; /* index into the task definition's containers */
} ag_volume_from;

typedef struct ag_port_mapping {
    bool has_container_port, has_host_port;
    int64_t container_port, host_port;
    char *protocol;     /* as given; NULL: tcp */
    char *name;         /* NULL when absent */
    char *app_protocol; /* NULL when absent */
    char *range;        /* containerPortRange as given, NULL when absent */
    int64_t range_lo, range_hi;
} ag_port_mapping;

typedef struct ag_container_volumes {
    ag_mount_point *mount_points; /* NULL when absent (an empty list is present) */
    size_t n_mount_points;
    ag_volume_from *volumes_from;
    size_t n_volumes_from;
    ag_port_mapping *ports;
    size_t n_ports;
} ag_container_volumes;

/* The task's volumes (td->volumes), before its containers. */
int ag_td_volumes_parse(const es_json *req, struct ag_taskdef *td, struct ag_td_error *e);
/* A container's mountPoints, volumesFrom, portMappings; path is its path. */
int ag_td_cvolumes_parse(const es_json *cd, const char *path, const char *network_mode,
                         ag_container_volumes *cv, struct ag_td_error *e);
/* The rules between members, once every container is parsed: each
 * sourceVolume names a volume, each sourceContainer another container (no
 * cycle), no mountPoint lands on a secret file or its refresh directory. */
int ag_td_volumes_check(struct ag_taskdef *td, struct ag_td_error *e);

void ag_td_volumes_write(const ag_td_volume *v, size_t n, es_jw *w);
void ag_td_cvolumes_write(const ag_container_volumes *cv, es_jw *w);
void ag_td_volumes_free(ag_td_volume *v, size_t n);
void ag_td_cvolumes_clear(ag_container_volumes *cv);

/* Whether v is a Docker volume the task owns (created with it, removed
 * with it): scope task, or no configuration. */
bool ag_td_volume_task_scoped(const ag_td_volume *v);
/* The protocol of a mapping: "tcp" or "udp". */
const char *ag_port_protocol(const ag_port_mapping *p);

#endif
