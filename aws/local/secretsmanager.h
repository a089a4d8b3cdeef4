/* secretsmanager.h - the embedded Secrets Manager (operations in al_sm_ops).
 *
 * A secret is a row of sm_secret keyed by its ARN
 * (arn:aws:secretsmanager:R:A:secret:NAME-XXXXXX, six random characters);
 * each version is a row of sm_version holding only the KMS ciphertext of its
 * value, sealed under the secret's key (default alias/aws/secretsmanager)
 * with the encryption context {SecretARN, SecretVersionId}; staging labels
 * live in sm_stage (one version per label per secret). A secret scheduled
 * for deletion answers InvalidRequestException until restored, and is purged
 * once its deletion date has passed. */
#ifndef AL_SECRETSMANAGER_H
#define AL_SECRETSMANAGER_H

#include "aws/local/internal.h"

#define AL_SM_NAME_MAX 512
#define AL_SM_SECRET_ID_MAX 2048 /* SecretId: a name or an ARN */
#define AL_SM_VALUE_MAX 65536
#define AL_SM_TOKEN_MIN 32
#define AL_SM_TOKEN_MAX 64
#define AL_SM_STAGE_MAX 256
#define AL_SM_STAGES_PER_VERSION 20
#define AL_SM_VERSIONS_KEPT 100

/* For SSM's /aws/reference/secretsmanager/<secret_id>[:selector]: writes the
 * members of an SSM Parameter object (Name, Type, Value, Version, Selector,
 * SourceResult, LastModifiedDate, ARN, DataType) into the open object of w.
 * selector (NULL or the text after ':') names a VersionId or VersionStage.
 * Answers -ENOENT when the secret or version does not exist (e untouched),
 * other negative values with e filled. Asks the authorisation hook for
 * secretsmanager:GetSecretValue on the secret. */
int al_sm_reference_parameter(al_ctx *c, const char *principal, const char *param_name,
                              const char *secret_id, const char *selector, es_jw *w, al_error *e);

/* Writes the answer the Secrets Manager writes share into w:
 * {"ARN": arn, "Name": name} plus "VersionId" when version_id is not NULL. */
void al_sm_write_secret_ref(es_jw *w, const char *arn, const char *name, const char *version_id);

#endif
