/* sm_policy.h - Secrets Manager resource policies of the embedded store:
 * PutResourcePolicy (ResourcePolicy: a resource-based policy with Principal,
 * at most 20480 characters; BlockPublicPolicy refuses one that allows
 * Principal "*" with PublicPolicyException), GetResourcePolicy,
 * DeleteResourcePolicy, each authorised as secretsmanager:<Action> on the
 * secret's ARN. The policy (table sm_resource_policy, gone with its secret)
 * is the resource policy authz.c evaluates for that secret. */
#ifndef AL_SM_POLICY_H
#define AL_SM_POLICY_H

#include <stddef.h>

#include "aws/local/internal.h"

int al_sm_put_resource_policy(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                              al_error *e);
int al_sm_get_resource_policy(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                              al_error *e);
int al_sm_delete_resource_policy(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                 al_error *e);

/* The stored resource policy of the secret with this exact ARN
 * (es_malloc'ed) in *out, NULL when none. 0 or -EIO/-ENOMEM. */
int al_sm_resource_policy_of(al_ctx *c, const char *arn, char **out);

#endif
