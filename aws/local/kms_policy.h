/* kms_policy.h - key policies of the embedded KMS.
 *
 * Every key has one policy, named "default". Until PutKeyPolicy sets one it
 * is KMS's default key policy: a single statement allowing kms:* to
 * arn:aws:iam::ACCOUNT:root, which delegates to IAM policies (authz.c
 * evaluates with it, aws/policy.h rule 3). PutKeyPolicy (KeyId, PolicyName
 * "default", Policy: a resource policy with Principal, at most 32768
 * characters) refuses, as KMS does, a policy that would not let the caller
 * change it again (MalformedPolicyDocumentException) unless
 * BypassPolicyLockoutSafetyCheck is true; AWS managed keys cannot be
 * changed. GetKeyPolicy and ListKeyPolicies read it. Each call is
 * authorised as kms:<Action> on the key ARN. */
#ifndef AL_KMS_POLICY_H
#define AL_KMS_POLICY_H

#include "aws/local/internal.h"

#define AL_KMS_POLICY_MAX 32768

int al_kms_put_key_policy(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                          al_error *e);
int al_kms_get_key_policy(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                          al_error *e);
int al_kms_list_key_policies(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                             al_error *e);

/* The key policy document of key_id (es_malloc'ed): the stored one or the
 * default. 0, -ENOMEM, -EIO. */
int al_kms_key_policy_of(al_ctx *c, const char *key_id, char **out);

#endif
