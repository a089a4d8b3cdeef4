/* shapes.h - what the container endpoints answer, as ECS shapes it; pure
 * (no I/O, no clock, no logging), so that the unit tests and the fuzz driver
 * see exactly what a container gets.
 *
 *   credentials   {"AccessKeyId","SecretAccessKey","Token","Expiration",
 *                 "RoleArn"}: the SDKs' container provider's shape, the
 *                 expiration in ISO 8601 UTC ("2026-12-05T16:00:00Z")
 *   errors        {"code","message"} with 400/401/403/404/500/503, as ECS's
 *                 agent words its credentials handler's errors
 *   metadata v4   a container's object (DockerId, Name, DockerName, Image,
 *                 ImageID, Labels, DesiredStatus, KnownStatus, CreatedAt,
 *                 StartedAt, Type, ContainerARN, Networks, ...) and the
 *                 task's (Cluster, TaskARN, Family, Revision, DesiredStatus,
 *                 KnownStatus, Containers, LaunchType, AvailabilityZone,
 *                 ...). Never Env or a secret: ECS's shape has neither.
 *
 * The token: AG_EP_TOKEN_BYTES random bytes as lowercase hex. A presented
 * token is checked for its exact length before a constant-time comparison. */
#ifndef AG_EP_SHAPES_H
#define AG_EP_SHAPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "agent/tasks/task.h"
#include "agent/tasks/taskdef.h"
#include "common/json.h"

#define AG_EP_TOKEN_BYTES 32 /* 256 bits: more than the 128 ECS's SDK contract asks */
#define AG_EP_TOKEN_HEX (2 * AG_EP_TOKEN_BYTES)
#define AG_EP_ID_BYTES 16 /* a container's metadata id: 128 bits */
#define AG_EP_ID_HEX (2 * AG_EP_ID_BYTES)
#define AG_EP_ISO_MAX 32 /* "2026-12-05T16:00:00Z" and room */
/* An Authorization header longer than this is not a token of ours (read no further). */
#define AG_EP_AUTH_MAX 512

/* Random bytes as lowercase hex into out (2n + 1 bytes). 0 or -EIO. */
int ag_ep_random_hex(char *out, size_t nbytes);
/* Whether presented (an Authorization header's value, may be NULL) is the
 * token: exactly AG_EP_TOKEN_HEX characters compared in constant time. */
bool ag_ep_token_matches(const char *presented, const char token[AG_EP_TOKEN_HEX + 1]);
/* A metadata v4 path: "/v4/<id>" (the container) or "/v4/<id>/task" (its
 * task), the id exactly AG_EP_ID_HEX lowercase hex characters. true with the
 * id copied and *task set; false for anything else (answered 404). */
bool ag_ep_parse_meta_path(const char *path, char id[AG_EP_ID_HEX + 1], bool *task);
/* The execution role's credentials for Docker's awslogs driver (issue 20):
 * "/v2/credentials/<id>", the id AG_EP_TOKEN_HEX lowercase hex (a bearer
 * secret: the driver sends no Authorization header). true with the id
 * copied; false for anything else. */
bool ag_ep_parse_logs_path(const char *path, char id[AG_EP_TOKEN_HEX + 1]);
/* awslogs-credentials-endpoint's value for an endpoint on host:port. Docker's
 * driver asks "http://169.254.170.2" followed by this value (moby
 * daemon/logger/awslogs/cloudwatchlogs.go: the two strings concatenated),
 * so the value may carry the rest of the authority: ":PORT/..." for an
 * endpoint on 169.254.170.2 (nothing for port 80), and "@HOST:PORT/..." for
 * a loopback one, which makes 169.254.170.2 the URL's user name and HOST
 * its host (dockerd runs in the host's network namespace and reaches
 * loopback; ECS's agent instead redirects 169.254.170.2:80 to its loopback
 * port with iptables, which this agent does not set up). 0 or -EMSGSIZE. */
int ag_ep_logs_uri(const char *host, int port, const char id[AG_EP_TOKEN_HEX + 1], char *out,
                   size_t n);
/* ISO 8601 UTC of t into out (AG_EP_ISO_MAX). */
void ag_ep_iso8601(time_t t, char out[AG_EP_ISO_MAX]);

/* The refresh decision: fetch when there is none, when fewer than
 * refresh_before_s seconds are left before expiration, never while one is
 * in flight, and after a failure not before retry_at. */
bool ag_ep_refresh_due(time_t now, bool have, time_t expiration, unsigned refresh_before_s,
                       bool fetching, time_t retry_at);

/* The credentials answer. 0 or the writer's error. */
int ag_ep_write_credentials(es_jw *w, const char *akid, const char *secret, const char *token,
                            time_t expiration, const char *role_arn);
/* {"code","message"} */
int ag_ep_write_error(es_jw *w, const char *code, const char *message);

/* Metadata v4. td may be NULL (the revision is gone): Labels and the
 * definition's parts are then left out. az: the AvailabilityZone, may be
 * NULL. Container: container i of t. */
typedef struct ag_ep_meta_ctx {
    const ag_task *t;
    const ag_taskdef *td;
    const char *az;           /* NULL: left out */
    const char *network_mode; /* as the containers run it: "host", "bridge" */
} ag_ep_meta_ctx;
void ag_ep_write_container(es_jw *w, const ag_ep_meta_ctx *m, size_t i);
void ag_ep_write_task(es_jw *w, const ag_ep_meta_ctx *m);

#endif
