/* agent.h - the agent's parts, created in order and closed in reverse.
 *
 * In both modes (embedded and aws) the daemon runs:
 *   store     aws/local (STATE_DIR/embedded.db): in embedded mode it serves
 *             SSM, Secrets Manager and KMS; in both modes it keeps the
 *             access keys that authenticate callers (the administrator key
 *             in STATE_DIR/aws-credentials). In aws mode its own operations
 *             are not served (UnknownOperationException).
 *   listener  aws/listener.h on ECS_SECRETS_LISTEN: the ECS API
 *             (agent/api/api.h) and GET /metrics, plus the store's operations
 *             in embedded mode; HTTPS only with ECS_SECRETS_TLS_CERT and
 *             ECS_SECRETS_TLS_KEY (loaded before it binds; a bad file stops
 *             the start), which config.h demands off loopback
 *   agent.db  agent/store/store.h: task definitions and tasks
 *   docker    docker/docker.h on DOCKER_HOST
 *   aws       aws/client.h: embedded mode points every service (SSM, Secrets
 *             Manager, KMS, STS, IAM) at a second listener of the daemon's,
 *             for these calls only: plain HTTP with SigV4, the same wire path
 *             as AWS, on the unix socket STATE_DIR/AG_SELF_SOCKET, mode 0600
 *             (no public slot taken, no other user admitted; agent.c
 *             start_self_socket). aws mode uses the
 *             configured endpoint overrides or AWS's defaults, https://
 *             verified with ECS_SECRETS_CA_FILE when set
 *   creds     aws/credentials.h: embedded mode signs with the administrator
 *             key; aws mode with the configured static keys or the default
 *             chain (environment, shared files, container endpoint, IMDSv2)
 *   fingerprint key (STATE_DIR/fingerprint.key), resolver, engine
 *   endpoints agent/endpoints/endpoints.h on ECS_SECRETS_TASK_ENDPOINT: a
 *             task role's credentials and task metadata v4 for containers
 *             (their own listener; off: tasks naming taskRoleArn refused)
 *   API
 *
 * READY=1 is sent once the listener is up and Docker has answered a ping;
 * until Docker answers, the agent retries every AG_DOCKER_RETRY_MS and says
 * so in STATUS= (it does not exit: Docker may start after us).
 *
 * The stop hook closes the parts in reverse order: endpoints, engine, credentials,
 * AWS client (then the resolver, whose running resolutions end through the
 * client's cancellation), Docker, listener, then the stores. */
#ifndef AG_AGENT_H
#define AG_AGENT_H

#include "agent/daemon.h"

/* The unix socket of the agent's own calls in embedded mode, in the state
 * directory, and its mode (its owner only). */
#define AG_SELF_SOCKET "self.sock"
#define AG_SELF_SOCKET_MODE 0600

#define AG_DOCKER_RETRY_MS 2000

typedef struct ag_agent ag_agent;

/* Creates every part and registers the stop hook. running_status is the
 * STATUS= text READY=1 carries. 0 or -errno; the reason is logged here (the
 * process boundary) and whatever was created is closed by the stop hook
 * (stop the daemon and run its loop). */
int ag_agent_start(ag_daemon *d, const char *running_status);

#endif
