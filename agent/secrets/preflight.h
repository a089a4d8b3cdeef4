/* preflight.h - checks a task's execution role may read every secret the
 * task names, before any value is fetched (seed S5-S7).
 *
 * One preflight per task launch, run by the resolver (agent/secrets/resolve.h)
 * after planning and before AssumeRole:
 *
 *   1. every secrets[] / secretOptions[] valueFrom and every
 *      repositoryCredentials.credentialsParameter (a Secrets Manager secret,
 *      S15) is classified (agent/secrets/valuefrom.h) and the (action, resource)
 *      pairs the role needs are computed:
 *        SSM parameter            ssm:GetParameters on
 *                                 arn:PART:ssm:REGION:ACCOUNT:parameter/NAME
 *                                 ("/NAME" and "NAME" alike), once per name;
 *        Secrets Manager secret   secretsmanager:GetSecretValue on the
 *                                 secret's full ARN (a partial ARN or a name
 *                                 is completed with DescribeSecret);
 *        an expansion's SSM path  ssm:GetParametersByPath on
 *                                 arn:PART:ssm:REGION:ACCOUNT:parameter/PATH
 *                                 (without its trailing '/'), and kms:Decrypt
 *                                 on the customer keys of the SecureStrings
 *                                 under it (DescribeParameters, Path
 *                                 Recursive, at most AG_PF_PATH_KEYS_MAX
 *                                 distinct keys);
 *        an expansion's JSON secret  as a Secrets Manager secret;
 *        /aws/reference/secretsmanager/ID
 *                                 secretsmanager:GetSecretValue on the
 *                                 secret (what the embedded SSM and the seed's
 *                                 S6 require; no pair on the reference
 *                                 parameter itself);
 *        an environment file      s3:GetObject on the object's ARN
 *                                 (arn:PART:s3:::BUCKET/KEY) and
 *                                 s3:GetBucketLocation on its bucket
 *                                 (arn:PART:s3:::BUCKET), as ECS documents
 *                                 for environmentFiles (no lookup: the
 *                                 ARNs are the plan's);
 *        an image from ECR      ecr:GetAuthorizationToken on "*",
 *                                 ecr:BatchGetImage and
 *                                 ecr:GetDownloadUrlForLayer on its
 *                                 repository (arn:PART:ecr:REGION:ACCOUNT:
 *                                 repository/REPO), as the managed
 *                                 AmazonECSTaskExecutionRolePolicy grants
 *                                 (plan.h's ecr entries; no lookup);
 *        a custom KMS key         kms:Decrypt on the key's ARN, with
 *                                 kms:ViaService ssm.REGION.amazonaws.com
 *                                 (SecureStrings, references) or
 *                                 secretsmanager.REGION.amazonaws.com;
 *                                 AWS managed keys (alias/aws/ssm,
 *                                 alias/aws/secretsmanager, KeyManager AWS)
 *                                 need nothing;
 *      which key encrypts what is asked with the HOST's credentials
 *      (aw_creds_get), metadata only: SSM DescribeParameters (Name Equals
 *      with up to AG_PF_DESCRIBE_BATCH names of one region per call: KeyId),
 *      Secrets Manager DescribeSecret (ARN, KmsKeyId), KMS
 *      DescribeKey (alias -> key ARN, KeyManager). A lookup that fails drops
 *      only the pairs it was needed for (the fetch will say what is wrong);
 *   2. the pairs are evaluated against the role:
 *        embedded mode  in-process, al_authz_evaluate for the principal
 *                       arn:aws:sts::ACCOUNT:assumed-role/ROLE/preflight:
 *                       the role's identity policies and boundary, the
 *                       secret's resource policy, the key's policy (the
 *                       same decision the embedded store takes on the fetch);
 *        aws mode       iam:SimulatePrincipalPolicy (PolicySourceArn = the
 *                       role), one call per (action, context) and at most
 *                       AG_PF_SIM_BATCH resources. The simulation does not
 *                       see resource or key policies, which may grant the role
 *                       on their own, so an implicit deny counts as missing
 *                       only for ssm:GetParameters and
 *                       ecr:GetAuthorizationToken (parameters have no
 *                       resource policy, the token is asked on "*";
 *                       secrets, keys, buckets and repositories have);
 *                       an explicit deny always counts.
 *                       When the host may not simulate (AccessDenied) or the
 *                       call fails, the preflight is skipped (logged once) and
 *                       AWS decides on the fetch;
 *   3. the answer: OK, SKIPPED, or MISSING with one ECS-shaped stoppedReason
 *      listing every missing permission:
 *        "ResourceInitializationError: unable to pull secrets or registry
 *        auth: the execution role ARN is missing 3 permissions:
 *        ssm:GetParameters on arn:...; secretsmanager:GetSecretValue on
 *        arn:...; kms:Decrypt on arn:..."
 *      cut to AG_STOPPED_REASON_MAX characters (ag_reason_clip). It names
 *      resources only, never a value (no value is ever read here).
 */
#ifndef AG_PREFLIGHT_H
#define AG_PREFLIGHT_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/secrets/plan.h"
#include "agent/tasks/taskdef.h"
#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/local/local.h"

#define AG_PF_PAIRS_MAX 3000       /* 1000 references x (access + key) with margin */
#define AG_PF_RESOURCE_MAX 2300    /* one resource ARN */
#define AG_PF_SIM_BATCH 50         /* resources per SimulatePrincipalPolicy call */
#define AG_PF_DESCRIBE_BATCH 50    /* names per DescribeParameters call (AWS's maximum) */
#define AG_PF_DESCRIBE_PAGES_MAX 5 /* NextToken pages followed per batch */
#define AG_PF_PATH_KEYS_MAX 10     /* distinct customer keys noted under one path */
#define AG_PF_SIM_RESULTS_MAX 1000 /* EvaluationResults members we read */
#define AG_PF_META_MAX (1u << 20)  /* one metadata answer (JSON) */

/* One permission the role needs. */
typedef struct ag_pf_pair {
    const char *action; /* static: "ssm:GetParameters", ... */
    char *resource;
    const char *via; /* kms: "ssm" / "secretsmanager" (kms:ViaService), else NULL */
    bool missing;
    bool absent; /* the host's metadata call answered that the resource does not exist */
} ag_pf_pair;

typedef struct ag_pf_pairs {
    ag_pf_pair *v;
    size_t n, cap;
} ag_pf_pairs;

/* Adds (action, resource, via) unless already there. 1 added, 0 already
 * there, -ENOMEM, -E2BIG (past AG_PF_PAIRS_MAX), -EINVAL. */
int ag_pf_pairs_add(ag_pf_pairs *p, const char *action, const char *resource, const char *via);
void ag_pf_pairs_clear(ag_pf_pairs *p);
size_t ag_pf_pairs_missing(const ag_pf_pairs *p);

/* The stoppedReason for the missing pairs (see above), sanitised and cut by
 * ag_reason_clip; out should hold AG_REASON_BUF bytes. Returns its length. */
size_t ag_preflight_reason(char *out, size_t outlen, const char *role_arn, const ag_pf_pairs *p);

/* True for keys KMS manages for AWS services: alias/aws/..., and the ARN
 * form arn:PART:kms:REGION:ACCOUNT:alias/aws/... */
bool ag_pf_key_is_aws_alias(const char *key_ref);
/* True when a Secrets Manager ARN ends in the 6-character suffix
 * ("-AbCdEf") Secrets Manager adds: a complete ARN. */
bool ag_pf_secret_arn_complete(const char *arn);

/* One EvaluationResults member of SimulatePrincipalPolicy. */
typedef struct ag_pf_sim_result {
    char *action;   /* EvalActionName */
    char *resource; /* EvalResourceName */
    char *decision; /* EvalDecision: allowed | explicitDeny | implicitDeny */
} ag_pf_sim_result;

typedef enum ag_pf_sim_err {
    AG_PF_SIM_OK = 0,
    AG_PF_SIM_E_XML = -1,        /* malformed, too big or too deep (aws/xml.h's limits) */
    AG_PF_SIM_E_TOO_MANY = -2,   /* more than AG_PF_SIM_RESULTS_MAX members */
    AG_PF_SIM_E_INCOMPLETE = -3, /* a member without action, resource or decision */
    AG_PF_SIM_E_NOMEM = -4,
} ag_pf_sim_err;

/* Parses a SimulatePrincipalPolicy answer (also members given per resource
 * under ResourceSpecificResults: EvalResourceName / EvalResourceDecision,
 * which then replace the member's own). On success *out (free with
 * ag_pf_sim_results_free) and *n; on failure an ag_pf_sim_err and nothing. */
int ag_pf_parse_simulate(const char *doc, size_t len, ag_pf_sim_result **out, size_t *n);
void ag_pf_sim_results_free(ag_pf_sim_result *r, size_t n);

typedef enum ag_pf_outcome {
    AG_PF_OK = 0,  /* every pair allowed */
    AG_PF_MISSING, /* reason lists the missing pairs */
    AG_PF_SKIPPED, /* could not evaluate: AWS decides on the fetch */
    AG_PF_STOPPED, /* the preflight was closed first: nothing decided */
} ag_pf_outcome;

typedef struct ag_preflight ag_preflight;

typedef struct ag_preflight_config {
    aw_client *client;   /* metadata and simulation calls */
    aw_creds *creds;     /* the host's credentials (aw_creds_get) */
    al_ctx *embedded;    /* embedded mode: evaluate in-process; NULL: SimulatePrincipalPolicy */
    const char *region;  /* the task's region (bare SSM names) */
    const char *account; /* the task's account (bare SSM names, role check) */
} ag_preflight_config;

typedef struct ag_preflight_stats {
    unsigned long runs, ok, missing, skipped, lookups, simulations;
} ag_preflight_stats;

/* Copies the strings; client, creds and embedded are borrowed. 0, -EINVAL,
 * -ENOMEM. */
int ag_preflight_create(const ag_preflight_config *cfg, ag_preflight **out);
/* Closes p: every run in flight ends at its next step (no call to the
 * credentials provider or the client after this) with AG_PF_STOPPED through
 * its callback, unless it had already concluded; p is freed once the last
 * has, then closed(arg), which runs inside this call when none was in
 * flight. The client and the credentials provider may close at the same
 * time: runs waiting on them end through their cancellation. NULL-safe. */
void ag_preflight_close(ag_preflight *p, void (*closed)(void *arg), void *arg);
/* ag_preflight_close without a callback. */
void ag_preflight_free(ag_preflight *p);
void ag_preflight_get_stats(const ag_preflight *p, ag_preflight_stats *out);

/* reason is set for AG_PF_MISSING only (valid during the call). */
typedef void (*ag_preflight_cb)(void *arg, ag_pf_outcome outcome, const char *reason);

/* Starts the preflight of a task's secret plan (plan.h: the fetches the
 * resolver will make) for role_arn. plan, the task definition it borrows and
 * role_arn must stay valid until cb, which always runs later from the loop.
 * 0, or -ENOMEM / -EINVAL / -ECANCELED (closing) with nothing started. */
int ag_preflight_start(ag_preflight *p, const ag_secret_plan *plan, const char *role_arn,
                       ag_preflight_cb cb, void *arg);

#endif
