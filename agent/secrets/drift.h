/* drift.h - which running tasks still hold a rotated secret value?
 *
 * A value is frozen into a container when it is created; rotating the
 * parameter or secret reaches only tasks started afterwards (S4). Drift
 * checking asks the stores for the *current* version of every secret that
 * live tasks hold, with metadata calls (one exception: SSM labels, below):
 *
 *   SSM parameter           DescribeParameters, ParameterFilters
 *                           [{Key: Name, Option: Equals, Values: [name]}]
 *                           -> Parameters[0].Version, LastModifiedDate
 *   Secrets Manager secret  DescribeSecret {SecretId}
 *                           -> VersionIdsToStages: the version holding the
 *                           stage the valueFrom names (AWSCURRENT by
 *                           default); LastChangedDate / LastRotatedDate
 *   /aws/reference/secretsmanager/ID   the same, for ID at AWSCURRENT (the
 *                           resolver records the secret's version id from
 *                           SourceResult; tasks resolved before it hold "0":
 *                           unknown)
 *   an expansion's SSM path GetParametersByPath {Path, Recursive,
 *                           WithDecryption: false}, every page -> the set
 *                           version of the names and versions
 *                           (ag_expand_set_version): a parameter added,
 *                           removed or changed under the path changes it.
 *                           The answers hold String values (SecureStrings
 *                           stay ciphertext): never read, wiped; the host
 *                           credentials need ssm:GetParametersByPath.
 *                           A JSON secret's expansion is a secret as above.
 *   SSM name:label          GetParameter {Name: "name:label",
 *                           WithDecryption: false} -> Parameter.Version: the
 *                           one exception to "metadata only", as no metadata
 *                           call says where a label points. The answer holds
 *                           the value of a String parameter (a SecureString's
 *                           stays ciphertext): it is parsed for Version only
 *                           and wiped (tree and body); the host credentials
 *                           need ssm:GetParameter.
 *
 * and compares with the version each task recorded (ag_secret_meta.version).
 * A valueFrom pinned to a version (SSM ":3", Secrets Manager version id) is
 * never stale.
 *
 * One call per distinct source (region + name [+ stage]) per check,
 * whatever the number of tasks holding it: the calls per task per interval
 * fall as tasks share secrets. Calls are signed with the agent's own (host)
 * credentials: this is the agent asking about its tasks, not a task asking
 * for its values, and execution roles usually lack ssm:DescribeParameters /
 * secretsmanager:DescribeSecret.
 *
 * Results go on the engine's tasks (ag_secret_meta.drift, .latest_version,
 * .drift_checked_at: memory only), where DescribeTasks (secretsResolved[]
 * .current, staleSecrets) and the service scheduler (staleTasks, the
 * "hold a rotated value" event) read them. Metrics: ecs_agent_drift_checks_total,
 * ecs_agent_drift_calls_total, ecs_agent_drift_stale_tasks,
 * ecs_agent_drift_stale_secrets, ecs_agent_drift_seconds_since_rotation
 * (the oldest rotation not yet picked up by a running task; 0 when none). */
#ifndef AG_DRIFT_H
#define AG_DRIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "aws/client.h"
#include "aws/credentials.h"

typedef struct ag_engine ag_engine;
typedef struct ag_metrics ag_metrics;

#define AG_DRIFT_SOURCES_MAX 2000 /* distinct sources checked in one round */
#define AG_DRIFT_BODY_MAX (1u << 20)

typedef struct ag_drift ag_drift;

typedef struct ag_drift_config {
    uv_loop_t *loop;
    aw_client *client;    /* borrowed */
    aw_creds *creds;      /* borrowed: the host's credentials (aw_creds_get) */
    ag_engine *engine;    /* borrowed */
    ag_metrics *metrics;  /* may be NULL */
    const char *region;   /* for bare SSM names */
    uint64_t interval_ms; /* 0: no periodic check (on demand only) */
} ag_drift_config;

typedef struct ag_drift_stats {
    unsigned long rounds;  /* checks completed */
    unsigned long calls;   /* metadata calls made */
    unsigned long errors;  /* calls that failed (those sources stay as they were) */
    unsigned long secrets; /* secrets examined in the last round */
    unsigned long stale;   /* stale secrets found in the last round */
    unsigned long stale_tasks;
    unsigned long tasks; /* tasks examined in the last round */
} ag_drift_stats;

int ag_drift_create(const ag_drift_config *cfg, ag_drift **out);
/* Stops the timer; rounds in flight end through the client's cancellation
 * (close the client after this). done(arg) once the memory is gone. */
void ag_drift_close(ag_drift *d, void (*done)(void *arg), void *arg);
/* Starts a round now (or joins the one running); done(arg) when it has
 * marked the tasks. 0, -ENOMEM, -ECANCELED (closing). */
int ag_drift_check(ag_drift *d, void (*done)(void *arg), void *arg);
void ag_drift_get_stats(const ag_drift *d, ag_drift_stats *out);
/* A new interval (SIGHUP): the next periodic check comes interval_ms from
 * now; 0 stops the periodic checks (on demand still works). */
void ag_drift_set_interval(ag_drift *d, uint64_t interval_ms);
uint64_t ag_drift_interval(const ag_drift *d);

/* Exposed for tests and the fuzz driver: parses a DescribeParameters answer
 * (version of the first parameter) / a DescribeSecret answer (the version
 * id holding stage). 0, -ENOENT (no such parameter / stage), -EPROTO. */
int ag_drift_parse_ssm(const char *body, size_t len, int64_t *version, double *modified);
/* GetParameter name:label (Parameter.Version); the parse tree is wiped */
int ag_drift_parse_ssm_label(const char *body, size_t len, int64_t *version, double *modified);
int ag_drift_parse_sm(const char *body, size_t len, const char *stage, char *version, size_t vlen,
                      double *changed);

#endif
