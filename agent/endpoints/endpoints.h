/* endpoints.h - the container endpoints: what ECS's agent serves its tasks'
 * containers, on a listener of their own (ECS_SECRETS_TASK_ENDPOINT).
 *
 *   GET /v2/credentials      the task role's credentials (the SDKs' container
 *                            provider: AWS_CONTAINER_CREDENTIALS_FULL_URI with
 *                            AWS_CONTAINER_AUTHORIZATION_TOKEN as the
 *                            Authorization header)
 *   GET /v2/credentials/<id> the task's execution role's credentials for
 *                            Docker's awslogs driver (issue 20), as ECS's
 *                            awslogs-credentials-endpoint: the id, random
 *                            like a token, is the only proof (the driver
 *                            sends no header); given to Docker in the
 *                            container's LogConfig (ag_ep_logs_uri), one per
 *                            task, made at its launch check, forgotten at
 *                            STOPPED like the token
 *   GET /v4/<id>, /v4/<id>/task   task metadata endpoint v4
 *                            (ECS_CONTAINER_METADATA_URI_V4 = .../v4/<id>)
 *
 * A task naming taskRoleArn gets, when its launch begins (the engine's
 * launch check, before its secrets are resolved), a token of
 * AG_EP_TOKEN_BYTES from the OS CSPRNG; every task the endpoint can reach
 * gets one metadata id per container at that container's create (the
 * engine's env hook, which also puts the variables in Env). Both live in this
 * module's memory only: never in the store, a log or an answer; they die
 * with the task (STOPPED: forgotten and wiped), and with the agent (a
 * restarted agent cannot serve the tasks it adopts: their containers hold
 * tokens it no longer knows).
 *
 * Credentials: AssumeRole of the task role (aws/sts.h, signed with the
 * agent's own credentials: the administrator key against the embedded STS,
 * the host's against AWS), RoleSessionName the task's id, fetched as soon
 * as the task registers (before its containers start, as ECS's agent has
 * them before it starts a task) and again AG_EP_REFRESH_BEFORE_S before
 * they expire (the SDKs fetch again when fewer than 15 minutes are left).
 * The presented token is compared with every task's in constant time.
 *
 * Reachability: the listener binds a loopback address (host network mode)
 * or 169.254.170.2 (the link-local address ECS uses, which the SDKs accept
 * over plain HTTP; given to the Docker bridge, it serves bridge mode too).
 * A task naming taskRoleArn whose network mode cannot reach it (none; bridge
 * with a loopback endpoint) fails its launch with the reason; its trust
 * policy must let ecs-tasks.amazonaws.com assume it (embedded mode checks it
 * in the launch check). */
#ifndef AG_ENDPOINTS_H
#define AG_ENDPOINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "agent/metrics.h"
#include "agent/tasks/engine.h"
#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/local/local.h"

#define AG_EP_DURATION_S 3600       /* AssumeRole DurationSeconds */
#define AG_EP_REFRESH_BEFORE_S 1200 /* 20 min: ahead of the SDKs' 15 */
#define AG_EP_RETRY_S 10            /* after a failed AssumeRole */
#define AG_EP_TICK_MS 5000          /* how often expiries are looked at */
#define AG_EP_TASKS_MAX AG_ENGINE_TASKS_MAX
#define AG_EP_URL_MAX 128
#define AG_EP_ERR_MAX 512
/* The ECS link-local address the SDKs accept over HTTP besides loopback */
#define AG_EP_LINK_LOCAL "169.254.170.2"

typedef struct ag_endpoints ag_endpoints;

typedef struct ag_endpoints_config {
    uv_loop_t *loop;
    const char *host; /* loopback or AG_EP_LINK_LOCAL */
    int port;         /* 0: any free port */
    ag_engine *engine;
    aw_client *client; /* STS */
    aw_creds *creds;   /* what AssumeRole is signed with */
    al_ctx *embedded;  /* the trust check; NULL in aws mode (STS decides) */
    const char *region, *account;
    unsigned duration_s, refresh_before_s; /* 0: the defaults above */
    /* ecs_agent_task_credentials_requests_total{result} and
     * ecs_agent_task_role_assumed_total{result}; NULL: none */
    ag_metrics *metrics;
} ag_endpoints_config;

/* Binds, mounts the routes, hooks the engine (env, observer). 0 or -errno
 * with why. */
int ag_endpoints_start(const ag_endpoints_config *cfg, ag_endpoints **out, char *why, size_t n);
/* The base URL containers are given ("http://127.0.0.1:51679"). */
const char *ag_endpoints_url(const ag_endpoints *p);
/* Stops serving, wipes every token and credential; done once the listener
 * and the calls in flight have ended (close the AWS client after: its
 * cancellation ends them). NULL-safe. */
void ag_endpoints_close(ag_endpoints *p, void (*done)(void *arg), void *arg);

/* Whether a task of network mode `mode` (the definition's; NULL: bridge)
 * reaches an endpoint bound to host; why when not. Pure. */
bool ag_endpoints_reachable(const char *host, const char *mode, char *why, size_t n);
/* Whether host may be the endpoint's (loopback or AG_EP_LINK_LOCAL). */
bool ag_endpoints_host_ok(const char *host);

#endif
