/* td_runtime.h - the members of a ContainerDefinition that change what
 * Docker is given to run the container (issue 20): hostname, extraHosts,
 * DNS, privileges, the root file system, stdin and TTY, networking,
 * security options, ulimits, sysctls, memoryReservation, linuxParameters,
 * portMappings and healthCheck.
 *
 * Parsed at registration with ECS's limits and wording (every refusal a
 * ClientException starting with the member's path), kept typed in
 * ag_container_def.rt, written back as registered (DescribeTaskDefinition
 * and the store), and turned into Docker's create spec by
 * agent/secrets/inject.c. Pure: no I/O, no logging.
 *
 * Presence is kept for every member, so that what was registered is what is
 * described: a list member is present when its pointer is non-NULL (an empty
 * list included), a boolean when its .set is true, a number when has_* is. */
#ifndef AG_TD_RUNTIME_H
#define AG_TD_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/json.h"

struct ag_td_error;

/* Named limits: ECS's where it has one, else ours, well above real use. */
#define AG_TD_HOSTNAME_MAX 64 /* the kernel's HOST_NAME_MAX: a longer one fails at start */
#define AG_TD_EXTRA_HOSTS_MAX 100
#define AG_TD_DNS_MAX 16 /* dnsServers, dnsSearchDomains entries */
#define AG_TD_DNS_NAME_MAX 255
#define AG_TD_SECURITY_OPTS_MAX 32
#define AG_TD_SECURITY_OPT_MAX 1024
#define AG_TD_ULIMITS_MAX 15 /* one per ECS UlimitName */
#define AG_TD_SYSCTLS_MAX 64
#define AG_TD_SYSCTL_NAME_MAX 255
#define AG_TD_SYSCTL_VALUE_MAX 1024
#define AG_TD_MEMORY_RESERVATION_MIN 6 /* MiB: Docker's minimum */

typedef struct ag_opt_bool {
    bool set;
    bool value;
} ag_opt_bool;

/* ulimits[]: ECS's UlimitName, soft <= hard */
typedef struct ag_ulimit {
    char *name;
    int64_t soft, hard;
} ag_ulimit;

/* extraHosts[] / systemControls[]: two strings */
typedef struct ag_pair {
    char *a; /* hostname / namespace */
    char *b; /* ipAddress / value */
} ag_pair;

#define AG_TD_CAPS_MAX 38 /* capabilities.add / drop: ECS's list */
#define AG_TD_DEVICES_MAX 64
#define AG_TD_TMPFS_MAX 32
#define AG_TD_MOUNT_OPTIONS_MAX 32
#define AG_TD_MOUNT_OPTION_MAX 64
#define AG_TD_SWAPPINESS_DEFAULT 60 /* ECS's, when maxSwap is given without it */

/* linuxParameters.devices[] */
typedef struct ag_device {
    char *host_path;
    char *container_path; /* NULL: as on the host */
    char **permissions;   /* read, write, mknod; NULL when absent */
    size_t n_permissions;
} ag_device;

/* linuxParameters.tmpfs[] */
typedef struct ag_tmpfs {
    char *container_path;
    int64_t size; /* MiB */
    char **mount_options;
    size_t n_mount_options;
} ag_tmpfs;

/* healthCheck: Docker's Config.Healthcheck. ECS's limits and defaults
 * (seconds); the command is ["CMD", arg...] or ["CMD-SHELL", "line"]. */
#define AG_TD_HC_ARGS_MAX 64
#define AG_TD_HC_ARG_MAX 4096
#define AG_TD_HC_INTERVAL_MIN 5
#define AG_TD_HC_INTERVAL_MAX 300
#define AG_TD_HC_INTERVAL_DEFAULT 30
#define AG_TD_HC_TIMEOUT_MIN 2
#define AG_TD_HC_TIMEOUT_MAX 60
#define AG_TD_HC_TIMEOUT_DEFAULT 5
#define AG_TD_HC_RETRIES_MIN 1
#define AG_TD_HC_RETRIES_MAX 10
#define AG_TD_HC_RETRIES_DEFAULT 3
#define AG_TD_HC_START_PERIOD_MAX 300

typedef struct ag_healthcheck {
    char **command; /* Config.Healthcheck.Test */
    size_t n_command;
    /* as registered (described back only when given), and the value used */
    bool has_interval, has_timeout, has_retries, has_start_period;
    int64_t interval, timeout, retries, start_period;
} ag_healthcheck;

/* The values Docker gets: the given ones or ECS's defaults. */
int64_t ag_hc_interval(const ag_healthcheck *h);
int64_t ag_hc_timeout(const ag_healthcheck *h);
int64_t ag_hc_retries(const ag_healthcheck *h);
int64_t ag_hc_start_period(const ag_healthcheck *h);

/* linuxParameters */
typedef struct ag_linux_params {
    bool has_capabilities;      /* the capabilities object was given */
    char **cap_add, **cap_drop; /* HostConfig.CapAdd / CapDrop */
    size_t n_cap_add, n_cap_drop;
    ag_device *devices; /* HostConfig.Devices */
    size_t n_devices;
    ag_opt_bool init; /* HostConfig.Init */
    bool has_shm_size, has_max_swap, has_swappiness;
    int64_t shm_size;   /* MiB: HostConfig.ShmSize */
    int64_t max_swap;   /* MiB: HostConfig.MemorySwap = memory + maxSwap */
    int64_t swappiness; /* HostConfig.MemorySwappiness, used with maxSwap (as ECS) */
    ag_tmpfs *tmpfs;    /* HostConfig.Tmpfs */
    size_t n_tmpfs;
} ag_linux_params;

typedef struct ag_container_runtime {
    char *hostname;       /* Config.Hostname; NULL when absent */
    ag_pair *extra_hosts; /* HostConfig.ExtraHosts "hostname:ip" */
    size_t n_extra_hosts;
    char **dns_servers; /* HostConfig.Dns */
    size_t n_dns_servers;
    char **dns_search; /* HostConfig.DnsSearch */
    size_t n_dns_search;
    ag_opt_bool privileged;         /* HostConfig.Privileged */
    ag_opt_bool readonly_rootfs;    /* HostConfig.ReadonlyRootfs */
    ag_opt_bool interactive;        /* Config.OpenStdin */
    ag_opt_bool pseudo_terminal;    /* Config.Tty */
    ag_opt_bool disable_networking; /* Config.NetworkDisabled */
    char **security_opts;           /* HostConfig.SecurityOpt */
    size_t n_security_opts;
    ag_ulimit *ulimits; /* HostConfig.Ulimits */
    size_t n_ulimits;
    ag_pair *sysctls; /* HostConfig.Sysctls */
    size_t n_sysctls;
    bool has_memory_reservation;
    int64_t memory_reservation;    /* MiB; HostConfig.MemoryReservation in bytes */
    ag_linux_params *linux_params; /* NULL when absent */
    ag_healthcheck *health_check;  /* NULL when absent */
} ag_container_runtime;

/* What the checks between members need to know of the rest of the
 * definition. */
typedef struct ag_td_rt_ctx {
    const char *network_mode; /* the task's networkMode; NULL: bridge */
    const char *ipc_mode;     /* the task's ipcMode; NULL: the container's own */
    bool has_memory;
    int64_t memory;        /* the container's memory (MiB) */
    const char *container; /* its name, for ECS's messages */
} ag_td_rt_ctx;

/* Parses cd's runtime members into rt (zeroed by the caller). path is the
 * container's path ("containerDefinitions[0]"). 0, -EINVAL (e filled),
 * -ENOMEM. rt may hold a part on failure: ag_td_runtime_clear it. */
int ag_td_runtime_parse(const es_json *cd, const char *path, const ag_td_rt_ctx *ctx,
                        ag_container_runtime *rt, struct ag_td_error *e);
/* Writes the present members as registered into the open container object. */
void ag_td_runtime_write(const ag_container_runtime *rt, es_jw *w);
void ag_td_runtime_clear(ag_container_runtime *rt);

#endif
