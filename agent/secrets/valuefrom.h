/* valuefrom.h - classifies a secrets[].valueFrom / secretOptions[].valueFrom.
 *
 * A valueFrom names where a secret lives, never the secret itself. The forms
 * ECS accepts, and what each becomes:
 *
 *   name, /a/b, /a/b:3, /a/b:label        SSM parameter in the task's region
 *                                          (":3" a version, ":label" a label)
 *   arn:PART:ssm:REGION:ACCT:parameter/NAME[:selector]
 *                                          SSM parameter in that region/account
 *   /aws/reference/secretsmanager/ID (bare or in an SSM ARN)
 *                                          Secrets Manager secret ID, read via SSM
 *   arn:PART:secretsmanager:REGION:ACCT:secret:NAME[-6chars]
 *       [:json-key[:version-stage[:version-id]]]
 *                                          Secrets Manager; each tail part may be
 *                                          empty ("::AWSPREVIOUS:")
 *
 * Self-contained (its own minimal ARN splitting), written before aws/arn.h
 * landed; to be switched onto it. Until then the two must agree: whatever
 * ARN this accepts, aw_arn_parse accepts with the same region, account,
 * names and tail (test_valuefrom and fuzz_valuefrom check it); this side is
 * stricter on SSM selectors (label rules, versions from 1), version stages
 * and version ids (32..64 characters). Pure: no allocation
 * beyond the one copy held in the result, no logging. Error texts quote the
 * offending part of the reference (references are not secrets). */
#ifndef AG_VALUEFROM_H
#define AG_VALUEFROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Named limits. */
#define AG_VF_MAX 2048          /* a whole valueFrom (SSM takes names up to 2048) */
#define AG_VF_REGION_MAX 32     /* us-east-1, ap-southeast-2, ... */
#define AG_VF_SSM_LEVELS_MAX 15 /* hierarchy levels of an SSM name */
#define AG_VF_SSM_LABEL_MAX 100 /* an SSM parameter label */
#define AG_VF_SM_NAME_MAX 512   /* as aws/arn.h, which counts the -XXXXXX suffix in it */
#define AG_VF_SM_STAGE_MAX 256  /* a version stage label */
#define AG_VF_SM_VERSION_ID_MAX 64
#define AG_VF_SM_JSON_KEY_MAX 1024

typedef enum ag_vf_kind {
    AG_VF_SSM,           /* ssm_name (+ selector) via ssm:GetParameters */
    AG_VF_SSM_REFERENCE, /* /aws/reference/secretsmanager/<secret_id> via SSM */
    AG_VF_SECRETSMANAGER /* secret_id (+ json_key, stage, version_id) via GetSecretValue */
} ag_vf_kind;

typedef enum ag_vf_err {
    AG_VF_OK = 0,
    AG_VF_E_EMPTY = -1,     /* empty string */
    AG_VF_E_TOO_LONG = -2,  /* longer than AG_VF_MAX */
    AG_VF_E_CHARS = -3,     /* control characters, spaces */
    AG_VF_E_ARN = -4,       /* not arn:PART:SERVICE:REGION:ACCOUNT:RESOURCE */
    AG_VF_E_SERVICE = -5,   /* an ARN of another service than ssm / secretsmanager */
    AG_VF_E_REGION = -6,    /* missing or malformed region */
    AG_VF_E_ACCOUNT = -7,   /* account is not 12 digits */
    AG_VF_E_RESOURCE = -8,  /* not parameter/... (ssm) or secret:... (secretsmanager) */
    AG_VF_E_NAME = -9,      /* malformed parameter or secret name */
    AG_VF_E_SELECTOR = -10, /* malformed :version / :label selector */
    AG_VF_E_TAIL = -11,     /* Secrets Manager tail: too many parts or a malformed part */
    AG_VF_E_NOMEM = -12,
} ag_vf_err;

typedef struct ag_valuefrom {
    ag_vf_kind kind;
    bool is_arn;           /* given as a full ARN */
    const char *partition; /* "aws" for bare names */
    const char *region;    /* the ARN's region, or the task region for bare names ("" if none) */
    const char *account;   /* the ARN's account; "" for bare names (the task's account) */
    /* AG_VF_SSM: the name to ask SSM for, without selector. For an ARN the
     * name after "parameter", so "/a/b" or "/a" (SSM treats "/a" and "a" as
     * the same parameter). */
    const char *ssm_name;
    const char *ssm_label; /* ":label" selector without the colon, or NULL */
    uint64_t ssm_version;  /* ":3" selector, or 0 */
    /* AG_VF_SSM_REFERENCE and AG_VF_SECRETSMANAGER: the SecretId (for an ARN
     * the ARN up to and including the name, without the tail). */
    const char *secret_id;
    const char *json_key;      /* NULL when absent or empty */
    const char *version_stage; /* NULL when absent or empty */
    const char *version_id;    /* NULL when absent or empty */
    char *mem_;                /* owns every string above */
} ag_valuefrom;

/* Parses vf. task_region may be NULL (then region is "" for bare names). On
 * failure returns an ag_vf_err (< 0), *out is untouched and err holds one
 * line naming what is wrong (without a field prefix: the caller adds it). */
int ag_valuefrom_parse(const char *vf, const char *task_region, ag_valuefrom *out, char *err,
                       size_t errlen);
/* A secret named by ARN or by name alone (repositoryCredentials'
 * credentialsParameter, S15): an ARN must be a Secrets Manager secret ARN
 * without the ECS tail (json-key, stage, version id); a name takes the task's
 * region. The result is AG_VF_SECRETSMANAGER with secret_id the ARN or the
 * name. Errors as ag_valuefrom_parse. */
int ag_valuefrom_parse_secret(const char *id, const char *task_region, ag_valuefrom *out, char *err,
                              size_t errlen);
/* Releases what parse allocated; safe on a zeroed or already cleared struct. */
void ag_valuefrom_clear(ag_valuefrom *v);
/* The resource ARN an IAM policy names for this reference (S7), for the
 * execution role's preflight: the SSM parameter
 * (arn:PART:ssm:REGION:ACCOUNT:parameter/NAME, "/NAME" and "NAME" alike) for
 * AG_VF_SSM and AG_VF_SSM_REFERENCE (whose Secrets Manager side needs
 * secretsmanager:GetSecretValue on the secret as well: its ARN is not
 * knowable from the name alone), the secret's ARN for AG_VF_SECRETSMANAGER.
 * task_account fills the account of a bare name. 0 or -EMSGSIZE. */
int ag_valuefrom_resource_arn(const ag_valuefrom *v, const char *task_account, char *out,
                              size_t outlen);
/* "ssm", "ssm (secretsmanager reference)", "secretsmanager". */
const char *ag_vf_kind_name(ag_vf_kind k);

#endif
