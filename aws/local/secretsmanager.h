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

/* Rotation (RotateSecret, CancelRotateSecret; RotationRules with
 * AutomaticallyAfterDays 1-1000 or ScheduleExpression rate(N days),
 * rate(N hours) or cron(...), and Duration). Without RotationLambdaARN the
 * built-in rotator makes the new value at once, in one transaction: a
 * password of GetRandomPassword's defaults, or, when AWSCURRENT holds a JSON
 * object with a string member "password", that object with only that member
 * changed; it goes AWSPENDING -> AWSCURRENT and the old version keeps
 * AWSPREVIOUS.
 *
 * Hooks: RotationLambdaARN arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME
 * names the executable NAME (letters, digits, '-', '_') of al_options'
 * rotation_dir. It is run four times, one step at a time (createSecret,
 * setSecret, testSecret, finishSecret), like AWS's rotation Lambda: stdin
 * holds the event {"SecretId": ARN, "ClientRequestToken": TOKEN, "Step":
 * STEP}; the environment holds PATH, AWS_ENDPOINT_URL (the listener),
 * AWS_REGION and AWS_DEFAULT_REGION (the secret's), AWS_SHARED_CREDENTIALS_FILE,
 * AWS_CONFIG_FILE and AWS_PROFILE (the administrator's key files of the
 * state directory: no key in the environment), and the event again as
 * ES_ROTATION_SECRET_ID, ES_ROTATION_TOKEN, ES_ROTATION_STEP for scripts.
 * The hook makes the AWSPENDING version itself (PutSecretValue with the
 * token and VersionStages ["AWSPENDING"]) and moves AWSCURRENT in
 * finishSecret (UpdateSecretVersionStage), as a Lambda does; its stdout and
 * stderr go to the daemon's stderr. The steps run asynchronously (RotateSecret
 * answers once the first is started; a hook calls back into this store, which
 * must keep serving) and advance when polled: by al_sm_rotate_due and
 * whenever any secret is touched. A step has AL_SM_HOOK_STEP_TIMEOUT seconds;
 * a non-zero exit, a signal or the timeout stops the rotation there:
 * AWSCURRENT stays where it was, AWSPENDING stays on the new version (as in
 * AWS), the failure is logged and RotateSecret reattempts with the same
 * token. A rotation in flight when the daemon stops is not resumed (the next
 * RotateSecret reattempts it). */
#define AL_SM_HOOK_STEP_TIMEOUT 30.0
#define AL_SM_HOOKS_MAX 16 /* rotations by hooks in flight at once */

/* Replication (ReplicateSecretToRegions, RemoveRegionsFromReplication,
 * StopReplicationToReplica, CreateSecret's AddReplicaRegions): a replica is
 * a read-only secret of another region with the primary's name and ARN
 * (the region changed, the same suffix), its values sealed again under
 * that region's key and bound to its own ARN. It is brought in step inside
 * the transaction of every change to the primary, so its status is InSync
 * at once. A write to a replica is refused with AL_SM_REPLICA_MSG. */
#define AL_SM_REPLICA_MSG                                                                          \
    "Operation not permitted on a replica secret. Call must be made in primary secret's region."

/* al_sm_rotate_due: declared in local.h (the daemon's timer calls it). */

/* al_open / al_close: the rotation state (hooks directory, running hooks). */
int al_sm_state_init(al_ctx *c, const al_options *opt);
void al_sm_state_free(al_ctx *c);

/* Writes the answer the Secrets Manager writes share into w:
 * {"ARN": arn, "Name": name} plus "VersionId" when version_id is not NULL. */
void al_sm_write_secret_ref(es_jw *w, const char *arn, const char *name, const char *version_id);

#endif
