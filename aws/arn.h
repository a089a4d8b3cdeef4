/* arn.h - one parser for Amazon Resource Names.
 *
 *   arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE
 *
 * PARTITION is one of region.h's (aws, aws-cn, aws-us-gov, the ISO ones); SERVICE [a-z0-9-]; REGION
 * empty or [a-z0-9-]; ACCOUNT empty or 12 digits; RESOURCE the rest (it may hold ':'). On top of
 * the generic split, the resource forms the agent needs are recognised and checked:
 *
 *   ssm            parameter/NAME[:SELECTOR]  NAME "a" stays "a"; a
 *                  hierarchical "a/b/c" becomes "/a/b/c" (the parameter's name)
 *   secretsmanager secret:NAME[:JSON-KEY[:VERSION-STAGE[:VERSION-ID]]]
 *                  (the ECS valueFrom tail; each part optional, may be empty).
 *                  NAME ending in "-" + 6 alphanumerics is a complete ARN's
 *                  name (name_has_suffix), otherwise a partial ARN
 *   kms            key/KEY-ID, alias/ALIAS-NAME (name keeps "alias/")
 *   iam            role/[PATH/]NAME (region must be empty)
 *
 * Any other service/resource parses as AW_ARN_OTHER. Everything is copied
 * into the caller's aw_arn (no pointers into the input), which is untouched
 * on failure. */
#ifndef ES_AWS_ARN_H
#define ES_AWS_ARN_H

#include <stdbool.h>
#include <stddef.h>

#define AW_ARN_MAX 2048              /* whole ARN, bytes */
#define AW_ARN_SERVICE_MAX 63        /* service, bytes */
#define AW_ARN_REGION_MAX 63         /* region, bytes */
#define AW_ARN_SSM_NAME_MAX 2048     /* parameter name */
#define AW_ARN_SSM_LEVELS_MAX 15     /* hierarchy levels of a parameter name */
#define AW_ARN_SECRET_NAME_MAX 519   /* secret name (512) with its "-" and 6-character suffix */
#define AW_ARN_JSON_KEY_MAX 1024     /* ECS json-key */
#define AW_ARN_VERSION_STAGE_MAX 256 /* Secrets Manager version stage */
#define AW_ARN_VERSION_ID_MAX 64     /* Secrets Manager version id */
#define AW_ARN_KMS_ID_MAX 256        /* KMS key id or alias name */
#define AW_ARN_ROLE_NAME_MAX 64      /* IAM role name */
#define AW_ARN_ROLE_PATH_MAX 512     /* IAM role path */

typedef enum aw_arn_kind {
    AW_ARN_OTHER = 0,
    AW_ARN_SSM_PARAMETER,
    AW_ARN_SECRET,
    AW_ARN_KMS_KEY,
    AW_ARN_KMS_ALIAS,
    AW_ARN_IAM_ROLE,
} aw_arn_kind;

typedef enum aw_arn_err {
    AW_ARN_OK = 0,
    AW_ARN_E_TOO_LONG = -1,  /* past AW_ARN_MAX */
    AW_ARN_E_SYNTAX = -2,    /* not "arn:" + 5 ':'-separated fields */
    AW_ARN_E_PARTITION = -3, /* not a partition of region.h */
    AW_ARN_E_SERVICE = -4,
    AW_ARN_E_REGION = -5,
    AW_ARN_E_ACCOUNT = -6,
    AW_ARN_E_RESOURCE = -7,      /* empty, or a known form badly written */
    AW_ARN_E_PART_TOO_LONG = -8, /* a component past its own maximum */
    AW_ARN_E_NOMEM = -9,
} aw_arn_err;

typedef struct aw_arn {
    aw_arn_kind kind;
    char partition[16];
    char service[AW_ARN_SERVICE_MAX + 1];
    char region[AW_ARN_REGION_MAX + 1];
    char account[13];
    char resource[AW_ARN_MAX + 1];
    /* SSM parameter name, secret name, KMS key id, KMS alias ("alias/x"),
     * IAM role name. */
    char name[AW_ARN_MAX + 2];
    /* SSM: version or label after ':' ("" for none). */
    char selector[128];
    /* IAM role path, "/" when none. */
    char path[AW_ARN_ROLE_PATH_MAX + 1];
    /* Secrets Manager: the ECS valueFrom tail; "" when absent or empty. */
    char json_key[AW_ARN_JSON_KEY_MAX + 1];
    char version_stage[AW_ARN_VERSION_STAGE_MAX + 1];
    char version_id[AW_ARN_VERSION_ID_MAX + 1];
    bool name_has_suffix; /* secret: name ends in -XXXXXX (complete ARN) */
} aw_arn;

/* Parses s[0..len). 0 or an aw_arn_err. */
int aw_arn_parse(const char *s, size_t len, aw_arn *out);
/* NUL-terminated convenience. */
int aw_arn_parse_str(const char *s, aw_arn *out);
/* A fixed text for an aw_arn_err (no input echoed). */
const char *aw_arn_strerror(int err);
/* The secret's ARN without the ECS tail (arn:...:secret:NAME) into out;
 * 0, or AW_ARN_E_TOO_LONG when outlen is too small. */
int aw_arn_secret_id(const aw_arn *a, char *out, size_t outlen);

#endif
