/* secretsmanager.h - Secrets Manager GetSecretValue.
 *
 * The answer is valid during the callback only; string and binary are
 * secrets, wiped when the callback returns (steal a pointer by setting it
 * to NULL, and wipe it yourself). */
#ifndef ES_AWS_SECRETSMANAGER_H
#define ES_AWS_SECRETSMANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/client.h"

#define AW_SM_SECRET_ID_MAX 2048
#define AW_SM_VERSION_ID_MAX 64
#define AW_SM_VERSION_STAGE_MAX 256
#define AW_SM_STAGES_MAX 32 /* VersionStages kept */

typedef struct aw_secret_value {
    char *arn;
    char *name;
    char *version_id;
    char *stages[AW_SM_STAGES_MAX];
    size_t n_stages;
    bool is_binary;
    char *string;    /* SecretString (secret), NULL for a binary secret */
    uint8_t *binary; /* decoded SecretBinary (secret) */
    size_t binary_len;
    double created; /* CreatedDate, epoch seconds */
} aw_secret_value;

typedef void (*aw_sm_cb)(void *arg, const aw_error *err, aw_secret_value *val);

/* secret_id: name, full ARN or partial ARN. version_id and version_stage may
 * be NULL or "" (Secrets Manager then answers AWSCURRENT). */
int aw_sm_get_secret_value(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                           const char *secret_id, const char *version_id, const char *version_stage,
                           aw_sm_cb cb, void *arg);

/* Exposed for tests and the fuzz driver: 0, -EPROTO, -ENOMEM. */
int aw_sm_parse_value(const char *body, size_t len, aw_secret_value *out);
void aw_secret_value_clear(aw_secret_value *v);

#endif
