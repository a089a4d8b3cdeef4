#include "config/config.h"
#include "config/docker_roles.h"

#include "aws/region.h"
#include "cluster/etcd.h"
#include "cluster/instance.h"
#include "cluster/member.h"
#include "common/alloc.h"
#include "common/secure.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- validators ---- */

static int v_mode(const char *v, char *err, size_t n)
{
    if (strcmp(v, "embedded") == 0 || strcmp(v, "aws") == 0)
        return 0;
    snprintf(err, n, "must be 'embedded' or 'aws', not '%s'", v);
    return -EINVAL;
}

static int v_onoff(const char *v, char *err, size_t n)
{
    if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0)
        return 0;
    snprintf(err, n, "must be 'on' or 'off', not '%s'", v);
    return -EINVAL;
}

static int v_log_level(const char *v, char *err, size_t n)
{
    es_log_level l;
    if (es_log_level_parse(v, &l) == 0)
        return 0;
    snprintf(err, n, "must be one of error, warn, notice, info, debug, not '%s'", v);
    return -EINVAL;
}

/* ECS: up to 255 letters, digits, hyphens and underscores. */
static int v_cluster(const char *v, char *err, size_t n)
{
    size_t len = strlen(v);
    if (len == 0 || len > 255) {
        snprintf(err, n, "must be 1 to 255 characters");
        return -EINVAL;
    }
    for (const char *p = v; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
            snprintf(err, n, "may hold only letters, digits, '-' and '_'");
            return -EINVAL;
        }
    }
    return 0;
}

/* Region names look like us-east-1, cn-north-1, us-gov-west-1. */
/* A region AWS has (aws/region.h): a typo would otherwise surface only as
 * failed calls to an endpoint that does not exist. */
static int v_region(const char *v, char *err, size_t n)
{
    if (aw_region_find(v))
        return 0;
    const char *near = strlen(v) <= 64 ? aw_region_nearest(v) : NULL;
    if (near)
        snprintf(err, n, "'%.64s' is not an AWS region; did you mean %s?", v, near);
    else
        snprintf(err, n, "'%.64s' is not an AWS region (like us-east-1)", v);
    return -EINVAL;
}

static int v_account(const char *v, char *err, size_t n)
{
    if (strlen(v) == 12 && strspn(v, "0123456789") == 12)
        return 0;
    snprintf(err, n, "must be 12 digits, not '%s'", v);
    return -EINVAL;
}

static int v_docker_host(const char *v, char *err, size_t n)
{
    if (strncmp(v, "unix://", 7) != 0 || v[7] != '/') {
        snprintf(err, n, "must be unix:///absolute/path (only unix sockets are supported)");
        return -EINVAL;
    }
    if (strlen(v + 7) >= 108) { /* sizeof(sun_path) */
        snprintf(err, n, "socket path longer than 107 bytes");
        return -EINVAL;
    }
    return 0;
}

static int v_abs_path(const char *v, char *err, size_t n)
{
    if (v[0] != '/') {
        snprintf(err, n, "must be an absolute path");
        return -EINVAL;
    }
    if (strlen(v) >= PATH_MAX) {
        snprintf(err, n, "path too long");
        return -EINVAL;
    }
    return 0;
}

/* A unix socket the agent listens on: absolute, short enough for sun_path. */
static int v_socket_path(const char *v, char *err, size_t n)
{
    if (v[0] != '/') {
        snprintf(err, n, "must be an absolute path");
        return -EINVAL;
    }
    if (strlen(v) >= 108) { /* sizeof(sun_path) */
        snprintf(err, n, "socket path longer than 107 bytes");
        return -EINVAL;
    }
    return 0;
}

/* A group name (as useradd accepts: [a-z_][a-z0-9_-]*$?, at most 32) or a
 * numeric gid. Whether it exists is found at start. */
static int v_group(const char *v, char *err, size_t n)
{
    size_t len = strlen(v);
    bool digits = len > 0 && strspn(v, "0123456789") == len;
    bool name = len > 0 && len <= 32 && (islower((unsigned char)v[0]) || v[0] == '_') &&
                strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") >= len - 1 &&
                (strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") == len || v[len - 1] == '$');
    if ((digits && len <= 10) || name)
        return 0;
    snprintf(err, n, "must be a group name or a numeric gid, not '%s'", v);
    return -EINVAL;
}

/* ECS_SECRETS_DOCKER_ROLES (docker_roles.h); user entries are checked
 * against the mode in derive(). */
static int v_docker_roles(const char *v, char *err, size_t n)
{
    cf_docker_rule *r = NULL;
    size_t nr = 0;
    int e = cf_docker_roles_parse(v, true, &r, &nr, err, n);
    cf_docker_rules_free(r, nr);
    if (e == -ENOMEM)
        snprintf(err, n, "out of memory");
    return e;
}

/* Splits HOST:PORT or [V6]:PORT. On success *host is allocated. */
static int split_hostport(const char *v, char **host, int *port, long min_port, char *err, size_t n)
{
    const char *colon;
    const char *hs = v, *he;
    if (v[0] == '[') {
        he = strchr(v, ']');
        if (!he || he[1] != ':')
            goto bad;
        hs = v + 1;
        colon = he + 1;
    } else {
        colon = strrchr(v, ':');
        if (!colon)
            goto bad;
        he = colon;
    }
    if (he == hs)
        goto bad;
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || !end || *end || end == colon + 1 || p < min_port || p > 65535)
        goto bad;
    if (host) {
        *host = es_strndup(hs, (size_t)(he - hs));
        if (!*host)
            return -ENOMEM;
    }
    if (port)
        *port = (int)p;
    return 0;
bad:
    snprintf(err, n, "must be HOST:PORT with a port from %ld to 65535, not '%s'", min_port, v);
    return -EINVAL;
}

static int v_listen(const char *v, char *err, size_t n)
{
    return split_hostport(v, NULL, NULL, 1, err, n);
}

/* ECS_SECRETS_TASK_ENDPOINT: off, or HOST:PORT (port 0: any free one) on an
 * address the SDKs' container provider accepts over plain HTTP: loopback or
 * ECS's link-local 169.254.170.2 (botocore's ContainerProvider). */
static int v_task_endpoint(const char *v, char *err, size_t n)
{
    if (strcmp(v, "off") == 0)
        return 0;
    char *host = NULL;
    int r = split_hostport(v, &host, NULL, 0, err, n);
    if (r < 0)
        return r;
    if (!cf_host_is_loopback(host) && strcmp(host, "169.254.170.2") != 0) {
        snprintf(err, n,
                 "the host must be loopback or 169.254.170.2 (the SDKs send the task's token "
                 "over plain HTTP to no other address), not '%s'",
                 host);
        r = -EINVAL;
    }
    es_free(host);
    return r;
}

static int v_url(const char *v, char *err, size_t n)
{
    if ((strncmp(v, "http://", 7) == 0 && v[7]) || (strncmp(v, "https://", 8) == 0 && v[8]))
        return 0;
    snprintf(err, n, "must be an http:// or https:// URL");
    return -EINVAL;
}

/* ECS_SECRETS_ECR_REGISTRY: HOST[:PORT] as the first component of an image
 * name, which Docker takes as a registry only when it holds '.' or ':' or is
 * "localhost" (else the image is Docker Hub's). */
static int v_ecr_registry(const char *v, char *err, size_t n)
{
    size_t len = strlen(v);
    const char *colon = strchr(v, ':');
    size_t hl = colon ? (size_t)(colon - v) : len;
    bool ok = hl > 0 && len <= 253 &&
              strspn(v, "abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == hl;
    if (ok && colon) {
        size_t pl = len - hl - 1;
        unsigned long port = strtoul(colon + 1, NULL, 10);
        ok = pl >= 1 && pl <= 5 && strspn(colon + 1, "0123456789") == pl && port >= 1 &&
             port <= 65535;
    }
    if (ok && !colon && !memchr(v, '.', hl) && strcmp(v, "localhost") != 0)
        ok = false;
    if (ok)
        return 0;
    snprintf(err, n,
             "must be HOST[:PORT] as an image name's registry (letters, digits, '.', '-'; a "
             "port 1-65535; Docker reads a first component as a registry only with a '.' or a "
             "':' or as localhost), not '%s'",
             v);
    return -EINVAL;
}

static int v_nonempty(const char *v, char *err, size_t n)
{
    if (*v)
        return 0;
    snprintf(err, n, "may not be empty");
    return -EINVAL;
}

/* seconds, 0 (off) to one day */

int cf_parse_duration(const char *v, long *seconds)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || errno || !end || end == v || x < 0)
        return -EINVAL;
    long mult = 1;
    if (*end == 'h')
        mult = 3600;
    else if (*end == 'm')
        mult = 60;
    else if (*end == 's')
        mult = 1;
    else if (*end)
        return -EINVAL;
    if (*end && end[1])
        return -EINVAL;
    if (x > 30L * 86400 / mult)
        return -EINVAL;
    *seconds = x * mult;
    return 0;
}

static int v_duration(const char *v, char *err, size_t n)
{
    long s;
    if (cf_parse_duration(v, &s) == 0 && s > 0)
        return 0;
    snprintf(err, n, "must be a duration such as 600, 90s, 15m or 3h (at most 30 days), not '%s'",
             v);
    return -EINVAL;
}

/* a duration as above, or 0 (off) */
/* the drift check's interval: 0 (off) or a duration up to a day */
static int v_drift_interval(const char *v, char *err, size_t n)
{
    long s;
    if (cf_parse_duration(v, &s) == 0 && s <= 86400)
        return 0;
    snprintf(err, n,
             "must be 0 (off) or a duration such as 60, 90s or 15m (at most 1 day), not '%s'", v);
    return -EINVAL;
}

static int v_duration_or_off(const char *v, char *err, size_t n)
{
    long s;
    if (cf_parse_duration(v, &s) == 0)
        return 0;
    snprintf(err, n,
             "must be 0 (off) or a duration such as 600, 90s, 15m or 3h (at most 30 days), "
             "not '%s'",
             v);
    return -EINVAL;
}

/* ECS_CONTAINER_{CREATE,START}_TIMEOUT: the ECS agent takes durations and
 * refuses nothing sensible; seconds to an hour here. */
static int v_docker_call_timeout(const char *v, char *err, size_t n)
{
    long s;
    if (cf_parse_duration(v, &s) == 0 && s >= 1 && s <= 3600)
        return 0;
    snprintf(err, n, "must be a duration from 1s to 1h (e.g. 3m), not '%.64s'", v);
    return -EINVAL;
}

/* ECS_SECRETS_ETCD_ENDPOINTS: the client's own parser decides */
static int v_etcd_endpoints(const char *v, char *err, size_t n)
{
    char urls[CL_ETCD_ENDPOINTS_MAX][CL_ETCD_URL_MAX];
    return cl_etcd_parse_endpoints(v, urls, CL_ETCD_ENDPOINTS_MAX, err, n) < 0 ? -EINVAL : 0;
}

static int v_lease_ttl(const char *v, char *err, size_t n)
{
    long s;
    if (cf_parse_duration(v, &s) == 0 && s >= CL_MEMBER_TTL_MIN && s <= CL_MEMBER_TTL_MAX)
        return 0;
    snprintf(err, n, "must be a duration from %ds to %dm (e.g. 15s), not '%.64s'",
             CL_MEMBER_TTL_MIN, CL_MEMBER_TTL_MAX / 60, v);
    return -EINVAL;
}

/* ECS_INSTANCE_ATTRIBUTES: the record's own rules decide */
static int v_instance_attributes(const char *v, char *err, size_t n)
{
    static cl_instance scratch; /* large; one thread loads the configuration */
    memset(&scratch, 0, sizeof scratch);
    return cl_instance_custom_attrs(&scratch, v, err, n) < 0 ? -EINVAL : 0;
}

static int v_attr_value(const char *v, char *err, size_t n)
{
    if (cl_attr_value_ok(v))
        return 0;
    snprintf(err, n, "must be 1 to %d letters, digits, spaces and - _ . / @ :", CL_ATTR_VALUE_MAX);
    return -EINVAL;
}

/* a whole positive number of at most 12 digits (CPU units, MiB) */
static int v_count(const char *v, char *err, size_t n)
{
    size_t len = strlen(v);
    bool ok = len > 0 && len <= 12 && v[0] != '0';
    for (size_t i = 0; ok && i < len; i++)
        ok = v[i] >= '0' && v[i] <= '9';
    if (ok)
        return 0;
    snprintf(err, n, "must be a whole number above 0, not '%.64s'", v);
    return -EINVAL;
}

/* ECS_SECRETS_DESCRIBE_WAIT_MS: 0 (never held) to 20000 (agent/api/task_waits.h's
 * AG_TASK_WAITS_MS_MAX), digits only */
static int v_describe_wait(const char *v, char *err, size_t n)
{
    size_t len = strlen(v);
    bool ok = len > 0 && len <= 5 && (v[0] != '0' || len == 1);
    for (size_t i = 0; ok && i < len; i++)
        ok = v[i] >= '0' && v[i] <= '9';
    if (ok && strtol(v, NULL, 10) <= 20000)
        return 0;
    snprintf(err, n, "must be a whole number of milliseconds from 0 (off) to 20000, not '%.64s'",
             v);
    return -EINVAL;
}

/* A whole number 1..CF_ROTATION_TIME_SCALE_MAX, digits only. */
static int v_time_scale(const char *v, char *err, size_t n)
{
    unsigned long x = 0;
    size_t i = 0;
    for (; v[i] >= '0' && v[i] <= '9' && x <= CF_ROTATION_TIME_SCALE_MAX; i++)
        x = x * 10 + (unsigned long)(v[i] - '0');
    if (i > 0 && v[i] == '\0' && x >= 1 && x <= CF_ROTATION_TIME_SCALE_MAX)
        return 0;
    snprintf(err, n,
             "must be a whole number from 1 (real time) to %d (rate(4 hours) every second), "
             "not '%.64s'",
             CF_ROTATION_TIME_SCALE_MAX, v);
    return -EINVAL;
}

const cf_key cf_keys[CF_KEY_COUNT] = {
    [CF_CONFIG_FILE] = {"ECS_SECRETS_CONFIG", "config", "FILE", CF_DEFAULT_FILE, false,
                        "configuration file (KEY=VALUE lines, as systemd's EnvironmentFile=)",
                        v_abs_path},
    [CF_MODE] = {"ECS_SECRETS_MODE", "mode", "embedded|aws", "embedded", false,
                 "where secrets come from: the embedded loopback endpoints, or AWS", v_mode},
    [CF_CLUSTER] = {"ECS_CLUSTER", "cluster", "NAME", "default", false,
                    "the cluster this agent serves", v_cluster},
    [CF_REGION] = {"AWS_REGION", "region", "REGION", "us-east-1", false,
                   "the region of the agent's tasks (bare SSM names resolve in it)", v_region},
    [CF_ACCOUNT_ID] = {"ECS_SECRETS_ACCOUNT_ID", "account-id", "ID", "123456789012", false,
                       "the account of tasks and embedded resources (aws mode: from STS/IMDS "
                       "when unset)",
                       v_account},
    [CF_DOCKER_HOST] = {"DOCKER_HOST", "docker-host", "unix:///PATH", "unix:///var/run/docker.sock",
                        false, "the Docker Engine socket", v_docker_host},
    [CF_DOCKER_PROXY] = {"ECS_SECRETS_DOCKER_PROXY", "docker-proxy", "PATH", NULL, false,
                         "a Docker socket of the agent's own (e.g. "
                         "/run/ecs-secrets-agent/docker.sock) passing everything through to "
                         "DOCKER_HOST: point DOCKER_HOST of docker and Compose at it; unset: off",
                         v_socket_path},
    [CF_DOCKER_PROXY_GROUP] = {"ECS_SECRETS_DOCKER_PROXY_GROUP", "docker-proxy-group", "GROUP",
                               "root", false,
                               "the group owning ECS_SECRETS_DOCKER_PROXY (mode 0660): its "
                               "members may use Docker through the agent",
                               v_group},
    [CF_DOCKER_ROLES] = {"ECS_SECRETS_DOCKER_ROLES", "docker-roles", "RULES", NULL, false,
                         "which callers of ECS_SECRETS_DOCKER_PROXY may name which execution "
                         "role (root: any): 'uid:N=ARN,...;gid:N=ARN,...' where ARN is a role "
                         "pattern (arn:aws:iam::ACCOUNT:role/app-*, '*' and '?') or, in embedded "
                         "mode, an IAM user whose iam:PassRole decides; unset: root only",
                         v_docker_roles},
    [CF_STATE_DIR] = {"ECS_SECRETS_STATE_DIR", "state-dir", "DIR", "/var/lib/ecs-secrets-agent",
                      false, "where the agent keeps its databases and keys (mode 0700)",
                      v_abs_path},
    [CF_FILES_DIR] = {"ECS_SECRETS_FILES_DIR", "files-dir", "DIR", "/run/ecs-secrets-agent/files",
                      false,
                      "where secrets delivered as files (ecs-secrets.file.* labels) are "
                      "written, one directory per task (mode 0700): must be on tmpfs, a value "
                      "is never written to a disk",
                      v_abs_path},
    [CF_LISTEN] = {"ECS_SECRETS_LISTEN", "listen", "HOST:PORT", "127.0.0.1:4577", false,
                   "the listener for the ECS API and the embedded AWS endpoints; an address "
                   "that is not loopback needs ECS_SECRETS_TLS_CERT and ECS_SECRETS_TLS_KEY",
                   v_listen},
    [CF_TASK_ENDPOINT] = {"ECS_SECRETS_TASK_ENDPOINT", "task-endpoint", "HOST:PORT|off",
                          "127.0.0.1:0", false,
                          "the container endpoints (a task role's credentials, task metadata "
                          "v4, the execution role's for Docker's awslogs driver) that tasks' "
                          "containers are pointed at: loopback serves the host network mode, "
                          "169.254.170.2 given to the Docker bridge serves bridge too; port 0: "
                          "any free port; off: tasks naming taskRoleArn, and awslogs containers "
                          "of tasks naming executionRoleArn, are refused",
                          v_task_endpoint},
    [CF_TLS_CERT] = {"ECS_SECRETS_TLS_CERT", "tls-cert", "FILE", NULL, false,
                     "the listener's certificate (PEM, chain after it): with ECS_SECRETS_TLS_KEY "
                     "the listener speaks HTTPS only (TLS 1.2 or later)",
                     v_abs_path},
    [CF_TLS_KEY] = {"ECS_SECRETS_TLS_KEY", "tls-key", "FILE", NULL, false,
                    "the private key of ECS_SECRETS_TLS_CERT (PEM, unencrypted; keep it 0600)",
                    v_abs_path},
    [CF_LOG_LEVEL] = {"ECS_LOGLEVEL", "log-level", "LEVEL", "info", false,
                      "error, warn, notice, info or debug", v_log_level},
    [CF_ENDPOINT_SSM] = {"ECS_SECRETS_ENDPOINT_SSM", "endpoint-ssm", "URL", NULL, false,
                         "SSM endpoint override", v_url},
    [CF_ENDPOINT_SECRETSMANAGER] = {"ECS_SECRETS_ENDPOINT_SECRETSMANAGER",
                                    "endpoint-secretsmanager", "URL", NULL, false,
                                    "Secrets Manager endpoint override", v_url},
    [CF_ENDPOINT_KMS] = {"ECS_SECRETS_ENDPOINT_KMS", "endpoint-kms", "URL", NULL, false,
                         "KMS endpoint override", v_url},
    [CF_ENDPOINT_STS] = {"ECS_SECRETS_ENDPOINT_STS", "endpoint-sts", "URL", NULL, false,
                         "STS endpoint override", v_url},
    [CF_ENDPOINT_IAM] = {"ECS_SECRETS_ENDPOINT_IAM", "endpoint-iam", "URL", NULL, false,
                         "IAM endpoint override", v_url},
    [CF_CA_FILE] = {"ECS_SECRETS_CA_FILE", "ca-file", "FILE", NULL, false,
                    "the CA certificates (PEM) that https:// AWS endpoints are verified with, "
                    "in place of the system's (as AWS_CA_BUNDLE for the aws CLI): e.g. another "
                    "agent's ECS_SECRETS_TLS_CERT; unset: the system's",
                    v_abs_path},
    [CF_ACCESS_KEY_ID] = {"ECS_SECRETS_ACCESS_KEY_ID", NULL, "KEY", NULL, false,
                          "static AWS access key id for the host (aws mode; prefer the "
                          "instance profile)",
                          v_nonempty},
    [CF_SECRET_ACCESS_KEY] = {"ECS_SECRETS_SECRET_ACCESS_KEY", NULL, "SECRET", NULL, true,
                              "static AWS secret access key (masked everywhere)", v_nonempty},
    [CF_SESSION_TOKEN] = {"ECS_SECRETS_SESSION_TOKEN", NULL, "TOKEN", NULL, true,
                          "session token for the static keys (masked everywhere)", v_nonempty},
    [CF_PREFLIGHT] = {"ECS_SECRETS_PREFLIGHT", "preflight", "on|off", "on", false,
                      "check a task's execution role holds every permission its secrets need "
                      "before fetching them (one stoppedReason listing what is missing)",
                      v_onoff},

    [CF_ROTATION_DIR] = {"ECS_SECRETS_ROTATION_DIR", "rotation-dir", "DIR", NULL, false,
                         "the embedded Secrets Manager's rotation hooks: RotateSecret with "
                         "RotationLambdaARN arn:aws:lambda:REGION:ACCOUNT:function:NAME runs the "
                         "executable NAME of this directory (one step at a time, the event on "
                         "stdin); unset: only the built-in rotator",
                         v_abs_path},
    [CF_ROTATION_TIME_SCALE] = {"ECS_SECRETS_ROTATION_TIME_SCALE", "rotation-time-scale", "N", "1",
                                false,
                                "embedded mode: the embedded Secrets Manager's rotation schedules "
                                "run N times faster, for experiments (1440: rate(4 hours) every "
                                "10 s); schedules stay as AWS takes them, NextRotationDate says "
                                "when the rotation happens",
                                v_time_scale},
    [CF_ECR_REGISTRY] = {"ECS_SECRETS_ECR_REGISTRY", "ecr-registry", "HOST:PORT", NULL, false,
                         "embedded mode: a local registry standing for the embedded account's "
                         "ECR host in the embedded region: an image HOST:PORT/REPO[:TAG] is "
                         "pulled with the embedded ecr:GetAuthorizationToken's token asked with "
                         "the execution role (needs ECS_SECRETS_ECR_CREDENTIALS_FILE)",
                         v_ecr_registry},
    [CF_ECR_CREDENTIALS_FILE] = {"ECS_SECRETS_ECR_CREDENTIALS_FILE", "ecr-credentials-file", "FILE",
                                 NULL, false,
                                 "embedded mode: the file holding USERNAME:PASSWORD (one line) "
                                 "of the ECS_SECRETS_ECR_REGISTRY user that the embedded "
                                 "GetAuthorizationToken hands out as its token (read at each "
                                 "call; not readable by others)",
                                 v_abs_path},
    [CF_DRIFT_INTERVAL] = {"ECS_SECRETS_DRIFT_INTERVAL", "drift-interval", "DURATION", NULL, false,
                           "how often running tasks' secrets are compared with the stores' "
                           "current versions (metadata calls only); 0: off; unset: 60 (1m) "
                           "in embedded mode, off in aws mode",
                           v_drift_interval},
    [CF_TASK_CLEANUP_WAIT] = {"ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION", "task-cleanup-wait",
                              "DURATION", "3h", false,
                              "how long a stopped task's containers are kept (for their logs) "
                              "before they are removed, as the ECS agent's key of that name",
                              v_duration},
    [CF_RECONCILE_INTERVAL] = {"ECS_SECRETS_RECONCILE_INTERVAL", "reconcile-interval", "DURATION",
                               "5m", false,
                               "how often the agent lists its containers to catch exits whose "
                               "Docker event was dropped (as after an events-stream reconnect); "
                               "0: off",
                               v_duration_or_off},
    [CF_CONTAINER_CREATE_TIMEOUT] = {"ECS_CONTAINER_CREATE_TIMEOUT", "container-create-timeout",
                                     "DURATION", "4m", false,
                                     "how long a container create may take Docker before the "
                                     "task fails (the ECS agent's setting and default)",
                                     v_docker_call_timeout},
    [CF_CONTAINER_START_TIMEOUT] = {"ECS_CONTAINER_START_TIMEOUT", "container-start-timeout",
                                    "DURATION", "3m", false,
                                    "how long a container start may take Docker before the task "
                                    "fails (the ECS agent's setting and default)",
                                    v_docker_call_timeout},
    [CF_DESCRIBE_WAIT_MS] = {"ECS_SECRETS_DESCRIBE_WAIT_MS", "describe-wait-ms", "MS", "50", false,
                             "how long a DescribeTasks naming a task on its way to RUNNING or "
                             "STOPPED may wait for that task to move before it is answered "
                             "(answered at the move: a polling client learns of it at once and "
                             "asks less often); 0: answered at once",
                             v_describe_wait},
    [CF_ETCD_ENDPOINTS] = {"ECS_SECRETS_ETCD_ENDPOINTS", "etcd-endpoints", "URLS", NULL, false,
                           "join the cluster ECS_CLUSTER kept in etcd: its v3 endpoints, "
                           "comma-separated (http://10.0.0.1:2379,...), tried in turn; unset: "
                           "the agent is a cluster of one",
                           v_etcd_endpoints},
    [CF_ETCD_CACERT] = {"ECS_SECRETS_ETCD_CACERT", "etcd-cacert", "FILE", NULL, false,
                        "the CA certificates (PEM) etcd's https:// endpoints are verified with",
                        v_abs_path},
    [CF_ETCD_CERT] = {"ECS_SECRETS_ETCD_CERT", "etcd-cert", "FILE", NULL, false,
                      "the client certificate (PEM) given to etcd, with ECS_SECRETS_ETCD_KEY",
                      v_abs_path},
    [CF_ETCD_KEY] = {"ECS_SECRETS_ETCD_KEY", "etcd-key", "FILE", NULL, false,
                     "the private key of ECS_SECRETS_ETCD_CERT (PEM, unencrypted)", v_abs_path},
    [CF_ETCD_LEASE_TTL] = {"ECS_SECRETS_ETCD_LEASE_TTL", "etcd-lease-ttl", "DURATION", "15s", false,
                           "a dead host's lease is gone, and another agent leads, within this: "
                           "etcd is asked for a lease 1 s shorter (at least its 2 s minimum), "
                           "renewed every third of what it grants",
                           v_lease_ttl},
    [CF_CLUSTER_STOPPED_TTL] = {"ECS_SECRETS_CLUSTER_STOPPED_TTL", "cluster-stopped-ttl",
                                "DURATION", "1h", false,
                                "how long a STOPPED task's record stays in the cluster's etcd "
                                "(ECS shows stopped tasks for about an hour); the leader deletes "
                                "older ones; 0 keeps them",
                                v_duration_or_off},
    [CF_INSTANCE_ATTRIBUTES] = {"ECS_INSTANCE_ATTRIBUTES", "instance-attributes", "JSON", NULL,
                                false,
                                "custom attributes of this container instance, as the ECS "
                                "agent's key of that name: {\"stack\": \"prod\"}",
                                v_instance_attributes},
    [CF_INSTANCE_TYPE] = {"ECS_SECRETS_INSTANCE_TYPE", "instance-type", "TYPE", "self-managed",
                          false, "the ecs.instance-type attribute of this container instance",
                          v_attr_value},
    [CF_INSTANCE_CPU] = {"ECS_SECRETS_INSTANCE_CPU", "instance-cpu", "UNITS", NULL, false,
                         "the CPU this instance offers (1024 units a core); unset: every online "
                         "processor",
                         v_count},
    [CF_INSTANCE_MEMORY] = {"ECS_SECRETS_INSTANCE_MEMORY", "instance-memory", "MIB", NULL, false,
                            "the memory this instance offers (MiB); unset: MemTotal", v_count},
};

/* ---- the EnvironmentFile parser ---- */

static int is_key_start(int c)
{
    return isalpha(c) || c == '_';
}

static int is_key_char(int c)
{
    return isalnum(c) || c == '_';
}

int cf_parse_text(const char *text, size_t len, cf_assign_fn fn, void *arg, unsigned *bad_line,
                  char *err, size_t errlen)
{
    es_buf key, val;
    es_buf_init(&key, CF_KEY_MAX);
    es_buf_init(&val, CF_VALUE_MAX);
    unsigned line = 1;
    size_t i = 0;
    int ret = 0;
#define PEEK() (i < len ? (unsigned char)text[i] : 0)
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        ret = -EINVAL;                                                                             \
        goto out;                                                                                  \
    } while (0)
#define PUT(b, c)                                                                                  \
    do {                                                                                           \
        int r_ = es_buf_append_char(b, (char)(c));                                                 \
        if (r_ == -EMSGSIZE)                                                                       \
            FAIL("value longer than %u bytes", (unsigned)CF_VALUE_MAX);                            \
        if (r_)                                                                                    \
            FAIL("out of memory");                                                                 \
    } while (0)

    while (i < len) {
        unsigned start_line = line;
        /* one logical line */
        while (i < len && (text[i] == ' ' || text[i] == '\t'))
            i++;
        if (i >= len)
            break;
        if (text[i] == '\n') {
            i++;
            line++;
            continue;
        }
        if (text[i] == '\0')
            FAIL("NUL byte in file");
        if (text[i] == '#' || text[i] == ';') {
            while (i < len && text[i] != '\n')
                i++;
            continue;
        }
        es_buf_reset(&key);
        es_buf_reset_secret(&val);
        if (!is_key_start(PEEK()))
            FAIL("expected KEY=VALUE");
        while (is_key_char(PEEK()))
            PUT(&key, text[i++]);
        while (PEEK() == ' ' || PEEK() == '\t')
            i++;
        if (PEEK() != '=')
            FAIL("expected '=' after %s", es_buf_cstr(&key));
        i++;
        while (PEEK() == ' ' || PEEK() == '\t')
            i++;
        /* value: quoted parts and unquoted parts may follow each other, as
         * in a shell word; trailing unquoted blanks are dropped */
        size_t keep = 0; /* length of val up to the last non-blank or quoted byte */
        for (;;) {
            unsigned char c = PEEK();
            if (i >= len || c == '\n')
                break;
            if (c == '\0')
                FAIL("NUL byte in file");
            if (c == '\'' || c == '"') {
                unsigned char q = c;
                i++;
                for (;;) {
                    if (i >= len)
                        FAIL("unterminated %s quote", q == '"' ? "double" : "single");
                    c = (unsigned char)text[i];
                    if (c == '\0')
                        FAIL("NUL byte in file");
                    if (c == q) {
                        i++;
                        break;
                    }
                    if (c == '\n')
                        line++;
                    if (q == '"' && c == '\\' && i + 1 < len) {
                        unsigned char d = (unsigned char)text[i + 1];
                        if (d == '\n') { /* continuation inside quotes */
                            i += 2;
                            line++;
                            continue;
                        }
                        if (d == '"' || d == '\\' || d == '$' || d == '`') {
                            PUT(&val, d);
                            i += 2;
                            continue;
                        }
                    }
                    PUT(&val, c);
                    i++;
                }
                keep = val.len;
                continue;
            }
            if (c == '\\') {
                if (i + 1 >= len) {
                    i++;
                    break;
                }
                unsigned char d = (unsigned char)text[i + 1];
                i += 2;
                if (d == '\n') {
                    line++;
                    continue;
                }
                PUT(&val, d);
                keep = val.len;
                continue;
            }
            PUT(&val, c);
            i++;
            if (c != ' ' && c != '\t')
                keep = val.len;
        }
        val.len = keep;
        if (val.data)
            val.data[keep] = '\0';
        int r = fn(es_buf_cstr(&key), es_buf_cstr(&val), start_line, arg);
        if (r < 0) {
            /* the callback words its own error */
            if (errlen)
                err[0] = '\0';
            ret = r;
            goto done;
        }
    }
    goto done;
out:
    if (bad_line)
        *bad_line = line;
done:
    es_buf_free(&key);
    es_buf_free_secret(&val);
    return ret;
#undef PEEK
#undef FAIL
#undef PUT
}

/* ---- loading ---- */

typedef struct loader {
    cf_config *c;
    es_buf *err;
    const char *file;
} loader;

static const char *masked(const cf_key *k, const char *v)
{
    return k->secret ? "****" : v;
}

static int find_key(const char *name)
{
    for (int k = 0; k < CF_KEY_COUNT; k++)
        if (strcmp(cf_keys[k].name, name) == 0)
            return k;
    return -1;
}

/* Levenshtein distance, for "did you mean" (keys are short). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    size_t d[65][65];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] +
                         (toupper((unsigned char)a[i - 1]) != toupper((unsigned char)b[j - 1]));
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            size_t m = sub < del ? sub : del;
            d[i][j] = m < ins ? m : ins;
        }
    return d[la][lb];
}

static const char *suggest(const char *name)
{
    const char *best = NULL;
    size_t bd = 4;
    for (int k = 0; k < CF_KEY_COUNT; k++) {
        size_t dd = distance(name, cf_keys[k].name);
        if (dd < bd) {
            bd = dd;
            best = cf_keys[k].name;
        }
    }
    return best;
}

static int set_value(cf_config *c, int k, const char *value, const char *source, es_buf *err)
{
    char why[256];
    if (cf_keys[k].validate && cf_keys[k].validate(value, why, sizeof why) < 0) {
        if (cf_keys[k].secret)
            snprintf(why, sizeof why, "invalid value");
        es_buf_printf(err, "%s: %s: %s", source, cf_keys[k].name, why);
        return -EINVAL;
    }
    char *v = es_strdup(value);
    char *s = es_strdup(source);
    if (!v || !s) {
        es_free_secret_str(v);
        es_free(s);
        es_buf_printf(err, "out of memory");
        return -ENOMEM;
    }
    if (cf_keys[k].secret)
        es_free_secret_str(c->value[k]);
    else
        es_free(c->value[k]);
    es_free(c->source[k]);
    c->value[k] = v;
    c->source[k] = s;
    return 0;
}

static int file_assign(const char *key, const char *value, unsigned line, void *arg)
{
    loader *l = arg;
    char src[PATH_MAX + 16];
    snprintf(src, sizeof src, "%s:%u", l->file, line);
    int k = find_key(key);
    if (k < 0) {
        const char *s = suggest(key);
        if (s)
            es_buf_printf(l->err, "%s: unknown key %s (did you mean %s?)", src, key, s);
        else
            es_buf_printf(l->err, "%s: unknown key %s (see --help for the keys)", src, key);
        return -EINVAL;
    }
    if (k == CF_CONFIG_FILE) {
        es_buf_printf(l->err, "%s: %s cannot be set inside a configuration file", src, key);
        return -EINVAL;
    }
    return set_value(l->c, k, value, src, l->err);
}

int cf_read_file(const char *path, bool must_exist, cf_assign_fn fn, void *arg, es_buf *err)
{
    int ret = 0;
    es_buf text;
    es_buf_init(&text, CF_FILE_MAX);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT && !must_exist)
            return 0;
        es_buf_printf(err, "%s: cannot open: %s", path, strerror(errno));
        return -EINVAL;
    }
    for (;;) {
        int e = 0;
        char *dst = es_buf_reserve(&text, 4096, &e);
        if (!dst) {
            /* reserve fails at the maximum: the file is larger than we read */
            es_buf_printf(err, "%s: larger than %u bytes", path, (unsigned)CF_FILE_MAX);
            ret = -EINVAL;
            goto out;
        }
        ssize_t n = read(fd, dst, 4096);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            es_buf_printf(err, "%s: cannot read: %s", path, strerror(errno));
            ret = -EINVAL;
            goto out;
        }
        if (n == 0)
            break;
        es_buf_commit(&text, (size_t)n);
    }
    unsigned bad_line = 0;
    char why[256] = "";
    ret = cf_parse_text(es_buf_cstr(&text), text.len, fn, arg, &bad_line, why, sizeof why);
    if (ret < 0 && why[0])
        es_buf_printf(err, "%s:%u: %s", path, bad_line, why);
out:
    close(fd);
    es_buf_free_secret(&text);
    return ret;
}

static int load_file(cf_config *c, const char *path, bool must_exist, es_buf *err)
{
    loader l = {.c = c, .err = err, .file = path};
    return cf_read_file(path, must_exist, file_assign, &l, err);
}

void cf_free(cf_config *c)
{
    for (int k = 0; k < CF_KEY_COUNT; k++) {
        if (cf_keys[k].secret)
            es_free_secret_str(c->value[k]);
        else
            es_free(c->value[k]);
        es_free(c->source[k]);
    }
    es_free(c->listen_host);
    es_free(c->task_endpoint_host);
    es_free(c->docker_socket);
    memset(c, 0, sizeof *c);
}

const char *cf_get(const cf_config *c, cf_key_id k)
{
    return c->value[k];
}

const char *cf_source(const cf_config *c, cf_key_id k)
{
    return c->source[k];
}

bool cf_host_is_loopback(const char *host)
{
    unsigned char a[16];
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) != 1)
        return false; /* a name (other than localhost) may resolve anywhere */
    static const unsigned char v6_loopback[16] = {[15] = 1};
    static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
    return memcmp(a, v6_loopback, 16) == 0 || (memcmp(a, v4_mapped, 12) == 0 && a[12] == 127);
}

int cf_adopt(cf_config *live, cf_config *fresh, cf_key_id k)
{
    if (k == CF_LISTEN || k == CF_TASK_ENDPOINT || k == CF_DOCKER_HOST || k == CF_TLS_CERT ||
        k == CF_TLS_KEY || k == CF_ROTATION_TIME_SCALE)
        return -EINVAL; /* derived views that are not re-derived here */
    if (k == CF_LOG_LEVEL && fresh->value[k] &&
        es_log_level_parse(fresh->value[k], &live->log_level) < 0)
        return -EINVAL;
    if (k == CF_MODE && fresh->value[k])
        live->mode = fresh->mode;
    if (cf_keys[k].secret)
        es_free_secret_str(live->value[k]);
    else
        es_free(live->value[k]);
    es_free(live->source[k]);
    live->value[k] = fresh->value[k];
    live->source[k] = fresh->source[k];
    fresh->value[k] = NULL;
    fresh->source[k] = NULL;
    return 0;
}

static int derive(cf_config *c, es_buf *err)
{
    c->mode = strcmp(c->value[CF_MODE], "aws") == 0 ? CF_MODE_AWS : CF_MODE_EMBEDDED;
    es_log_level_parse(c->value[CF_LOG_LEVEL], &c->log_level);
    char why[256];
    int r =
        split_hostport(c->value[CF_LISTEN], &c->listen_host, &c->listen_port, 1, why, sizeof why);
    if (r == 0 && strcmp(c->value[CF_TASK_ENDPOINT], "off") != 0)
        r = split_hostport(c->value[CF_TASK_ENDPOINT], &c->task_endpoint_host,
                           &c->task_endpoint_port, 0, why, sizeof why);
    if (r < 0) {
        es_buf_printf(err, "%s: %s", cf_keys[CF_LISTEN].name, why);
        return r;
    }
    /* the listener speaks TLS with both or neither; off loopback, only TLS
     * (its answers carry secret values) */
    for (int i = 0; i < 2; i++) {
        cf_key_id have = i ? CF_TLS_KEY : CF_TLS_CERT, miss = i ? CF_TLS_CERT : CF_TLS_KEY;
        if (c->value[have] && !c->value[miss]) {
            es_buf_printf(err, "%s: %s is set but %s is not: the listener needs both for TLS",
                          c->source[have], cf_keys[have].name, cf_keys[miss].name);
            return -EINVAL;
        }
    }
    c->listen_tls = c->value[CF_TLS_CERT] && c->value[CF_TLS_KEY];
    for (int i = 0; i < 2; i++) {
        cf_key_id have = i ? CF_ETCD_KEY : CF_ETCD_CERT, miss = i ? CF_ETCD_CERT : CF_ETCD_KEY;
        if (c->value[have] && !c->value[miss]) {
            es_buf_printf(err, "%s: %s is set but %s is not: etcd's client certificate needs both",
                          c->source[have], cf_keys[have].name, cf_keys[miss].name);
            return -EINVAL;
        }
    }
    if (!c->listen_tls && !cf_host_is_loopback(c->listen_host)) {
        es_buf_printf(err,
                      "%s: %s %s is not loopback: it needs %s and %s (answers carry secret "
                      "values)",
                      c->source[CF_LISTEN], cf_keys[CF_LISTEN].name, c->value[CF_LISTEN],
                      cf_keys[CF_TLS_CERT].name, cf_keys[CF_TLS_KEY].name);
        return -EINVAL;
    }
    /* defaults that depend on the mode are made effective here, so that
     * --check-config shows them and every reader sees one value */
    if (!c->value[CF_DRIFT_INTERVAL] &&
        (r = set_value(c, CF_DRIFT_INTERVAL, c->mode == CF_MODE_EMBEDDED ? "60" : "0",
                       c->mode == CF_MODE_EMBEDDED ? "default (embedded mode)"
                                                   : "default (aws mode: off)",
                       err)) < 0)
        return r;
    if (c->value[CF_DOCKER_ROLES] && c->mode == CF_MODE_AWS) {
        cf_docker_rule *rules = NULL;
        size_t nr = 0;
        char why2[512];
        r = cf_docker_roles_parse(c->value[CF_DOCKER_ROLES], false, &rules, &nr, why2, sizeof why2);
        cf_docker_rules_free(rules, nr);
        if (r < 0) {
            es_buf_printf(err, "%s: %s: %s", c->source[CF_DOCKER_ROLES],
                          cf_keys[CF_DOCKER_ROLES].name, r == -ENOMEM ? "out of memory" : why2);
            return r;
        }
    }
    c->rotation_time_scale = (unsigned)strtoul(c->value[CF_ROTATION_TIME_SCALE], NULL, 10);
    if (c->mode == CF_MODE_AWS && c->rotation_time_scale != 1) {
        es_buf_printf(err,
                      "%s: %s=%s applies to the embedded Secrets Manager only: in aws mode "
                      "rotations run on AWS's clock (unset it or set ECS_SECRETS_MODE=embedded)",
                      c->source[CF_ROTATION_TIME_SCALE], cf_keys[CF_ROTATION_TIME_SCALE].name,
                      c->value[CF_ROTATION_TIME_SCALE]);
        return -EINVAL;
    }
    /* the local ECR is the embedded ECR's: both keys or neither, embedded only */
    for (int i = 0; i < 2; i++) {
        cf_key_id have = i ? CF_ECR_CREDENTIALS_FILE : CF_ECR_REGISTRY,
                  miss = i ? CF_ECR_REGISTRY : CF_ECR_CREDENTIALS_FILE;
        if (c->value[have] && c->mode == CF_MODE_AWS) {
            es_buf_printf(err,
                          "%s: %s applies to the embedded ECR only: in aws mode images are "
                          "pulled from the real ECR (unset it or set ECS_SECRETS_MODE=embedded)",
                          c->source[have], cf_keys[have].name);
            return -EINVAL;
        }
        if (c->value[have] && !c->value[miss]) {
            es_buf_printf(err, "%s: %s is set but %s is not: the local ECR needs both",
                          c->source[have], cf_keys[have].name, cf_keys[miss].name);
            return -EINVAL;
        }
    }
    c->docker_socket = es_strdup(c->value[CF_DOCKER_HOST] + strlen("unix://"));
    if (!c->docker_socket)
        return -ENOMEM;
    if (c->value[CF_SECRET_ACCESS_KEY] && !c->value[CF_ACCESS_KEY_ID]) {
        es_buf_printf(err, "%s is set but %s is not", cf_keys[CF_SECRET_ACCESS_KEY].name,
                      cf_keys[CF_ACCESS_KEY_ID].name);
        return -EINVAL;
    }
    if (c->value[CF_ACCESS_KEY_ID] && !c->value[CF_SECRET_ACCESS_KEY]) {
        es_buf_printf(err, "%s is set but %s is not", cf_keys[CF_ACCESS_KEY_ID].name,
                      cf_keys[CF_SECRET_ACCESS_KEY].name);
        return -EINVAL;
    }
    return 0;
}

enum { OPT_CHECK = 1000, OPT_HELP, OPT_VERSION, OPT_KEY_BASE = 2000 };

int cf_load(cf_config *c, int argc, char *const argv[], char *const envp[], cf_action *action,
            es_buf *err)
{
    int ret = 0;
    memset(c, 0, sizeof *c);
    *action = CF_ACTION_RUN;

    /* 1. flags are collected first (they choose the file), applied last */
    struct option opts[CF_KEY_COUNT + 4];
    int no = 0;
    for (int k = 0; k < CF_KEY_COUNT; k++)
        if (cf_keys[k].flag)
            opts[no++] =
                (struct option){cf_keys[k].flag, required_argument, NULL, OPT_KEY_BASE + k};
    opts[no++] = (struct option){"check-config", no_argument, NULL, OPT_CHECK};
    opts[no++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    opts[no++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
    opts[no] = (struct option){0};
    const char *flag_val[CF_KEY_COUNT] = {0};

    optind = 0; /* full reinitialisation (GNU), so cf_load may run twice */
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, ":hV", opts, NULL)) != -1) {
        if (o == OPT_CHECK) {
            *action = CF_ACTION_CHECK;
        } else if (o == OPT_HELP || o == 'h') {
            *action = CF_ACTION_HELP;
            return 0;
        } else if (o == OPT_VERSION || o == 'V') {
            *action = CF_ACTION_VERSION;
            return 0;
        } else if (o >= OPT_KEY_BASE && o < OPT_KEY_BASE + CF_KEY_COUNT) {
            flag_val[o - OPT_KEY_BASE] = optarg;
        } else if (o == ':') {
            es_buf_printf(err, "%s needs a value", argv[optind - 1]);
            return -EINVAL;
        } else {
            es_buf_printf(err, "unknown option %s (see --help)", argv[optind - 1]);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        es_buf_printf(err, "unexpected argument '%s' (see --help)", argv[optind]);
        return -EINVAL;
    }

    /* 2. defaults */
    for (int k = 0; k < CF_KEY_COUNT; k++)
        if (cf_keys[k].def && (ret = set_value(c, k, cf_keys[k].def, "default", err)) < 0)
            goto fail;

    /* 3. the environment may choose the file too */
    const char *env_file = NULL;
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, "ECS_SECRETS_CONFIG=", 19) == 0)
            env_file = *e + 19;
    const char *file = flag_val[CF_CONFIG_FILE] ? flag_val[CF_CONFIG_FILE] : env_file;
    bool explicit_file = file != NULL;
    if (!file)
        file = CF_DEFAULT_FILE;
    if ((ret = set_value(c, CF_CONFIG_FILE, file,
                         flag_val[CF_CONFIG_FILE] ? "--config"
                         : env_file               ? "environment"
                                                  : "default",
                         err)) < 0)
        goto fail;
    if ((ret = load_file(c, file, explicit_file, err)) < 0)
        goto fail;

    /* 4. environment: only our keys; anything else there is not ours */
    for (char *const *e = envp; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e || (size_t)(eq - *e) > 64)
            continue;
        char name[65];
        memcpy(name, *e, (size_t)(eq - *e));
        name[eq - *e] = '\0';
        int k = find_key(name);
        if (k < 0 || k == CF_CONFIG_FILE)
            continue;
        if ((ret = set_value(c, k, eq + 1, "environment", err)) < 0)
            goto fail;
    }

    /* 5. flags */
    for (int k = 0; k < CF_KEY_COUNT; k++) {
        if (!flag_val[k] || k == CF_CONFIG_FILE)
            continue;
        char src[64];
        snprintf(src, sizeof src, "--%s", cf_keys[k].flag);
        if ((ret = set_value(c, k, flag_val[k], src, err)) < 0)
            goto fail;
    }

    if ((ret = derive(c, err)) < 0)
        goto fail;
    return 0;
fail:
    cf_free(c);
    return ret;
}

void cf_print(const cf_config *c, FILE *out)
{
    fprintf(out, "# effective configuration; each line says where its value came from\n");
    for (int k = 0; k < CF_KEY_COUNT; k++) {
        const cf_key *key = &cf_keys[k];
        if (c->value[k])
            fprintf(out, "%s=%s\t# %s\n", key->name, masked(key, c->value[k]), c->source[k]);
        else
            fprintf(out, "# %s is not set\n", key->name);
    }
}

void cf_print_help(FILE *out, const char *argv0)
{
    fprintf(out,
            "Usage: %s [OPTIONS]\n"
            "\n"
            "Runs ECS tasks on this host with their secrets resolved from SSM Parameter\n"
            "Store and Secrets Manager (or from the embedded endpoints).\n"
            "\n"
            "Options (each is also a configuration key, shown after it):\n",
            argv0);
    for (int k = 0; k < CF_KEY_COUNT; k++) {
        const cf_key *key = &cf_keys[k];
        char left[64];
        if (key->flag)
            snprintf(left, sizeof left, "--%s %s", key->flag, key->metavar);
        else
            snprintf(left, sizeof left, "(key only)");
        fprintf(out, "  %-30s %s\n  %-30s key %s%s%s%s\n", left, key->help, "", key->name,
                key->def ? ", default " : "", key->def ? key->def : "",
                key->secret ? ", secret" : "");
    }
    fprintf(out, "  %-30s %s\n", "--check-config",
            "validate the configuration, print the effective values (secrets masked), exit");
    fprintf(out, "  %-30s %s\n", "--version", "print the version and exit");
    fprintf(out, "  %-30s %s\n", "--help", "print this text and exit");
    fprintf(out, "\nLayers, later ones win: defaults, the file, the environment, the flags.\n"
                 "The file is read as systemd's EnvironmentFile=: KEY=VALUE lines, '#' or ';'\n"
                 "comments, single or double quotes, backslash continuations.\n");
}
