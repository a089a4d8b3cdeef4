/* sm_int.h - what the embedded Secrets Manager's files share (private to
 * secretsmanager.c, sm_rotation.c and sm_replication.c).
 *
 * secretsmanager.c holds the secrets, their versions and stages and the
 * operations on them; sm_rotation.c rotation (schedules, the built-in
 * rotator, hooks, the timer's al_sm_rotate_due); sm_replication.c replicas
 * in other regions. Each calls the others only through this header. */
#ifndef AL_SM_INT_H
#define AL_SM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/local/kms.h"
#include "aws/local/secretsmanager.h"

#define ARN_MAX 768
#define SCHEDULED_MSG                                                                              \
    "You can't perform this operation on the secret because it was marked for deletion."

/* One sm_secret row. */
typedef struct secret {
    char arn[ARN_MAX];
    char name[AL_SM_NAME_MAX + 1];
    char *description;
    char *kms_key_ref;
    char key_id[AL_KEY_ID_LEN + 1];
    double created, changed, accessed, deletion; /* 0: none */
    /* rotation (RotateSecret): settings and what the last one did */
    bool rot_enabled;
    char *rot_lambda, *rot_schedule, *rot_window, *rot_failure;
    int64_t rot_days; /* 0: none */
    double last_rotated, next_rotation;
    char *primary_region; /* a replica's primary region; NULL for a primary */
} secret;

/* A value a request gives (SecretString or SecretBinary). */
typedef struct value {
    const char *str; /* request member; not owned */
    uint8_t *bin;    /* decoded SecretBinary, owned (wiped) */
    size_t bin_len;
    bool present;
} value;

/* A stored version, decrypted. */
typedef struct plain {
    char version_id[AL_SM_TOKEN_MAX + 1];
    bool binary;
    uint8_t *pt;
    size_t len;
    double created;
} plain;

/* ---- secrets, versions, stages (secretsmanager.c) ---- */

void al_sm_secret_clear(secret *s);
/* The secret named by id (name or ARN) in the request's region. */
int al_sm_find_secret(al_ctx *c, const char *id, secret *s);
/* SecretId read, the secret found and authorised for action (live: not
 * scheduled for deletion); a due scheduled rotation happens first. */
int al_sm_load_target(al_ctx *c, const char *principal, const es_json *req, const char *action,
                      bool live, secret *s, al_error *e);
/* al_sm_load_target for a write: a replica is refused. */
int al_sm_load_primary(al_ctx *c, const char *principal, const es_json *req, const char *action,
                       bool live, secret *s, al_error *e);
int al_sm_check_token(const char *tok, al_error *e);
void al_sm_plain_clear(plain *p);
int al_sm_load_version(al_ctx *c, const secret *s, const char *version_id, plain *out);
int al_sm_stage_holder(al_ctx *c, const char *arn, const char *stage, char *vid, size_t n);
int al_sm_set_stage(al_ctx *c, const char *arn, const char *stage, const char *vid);
int al_sm_remove_stage(al_ctx *c, const char *arn, const char *stage);
int al_sm_move_stage(al_ctx *c, const char *arn, const char *stage, const char *vid);
int al_sm_prune_versions(al_ctx *c, const char *arn);
int al_sm_insert_blob(al_ctx *c, const char *arn, const char *vid, bool binary, const uint8_t *blob,
                      size_t bloblen, double created);
int al_sm_insert_version(al_ctx *c, const secret *s, const char *vid, const value *v);
bool al_sm_version_exists(al_ctx *c, const char *arn, const char *vid);
int al_sm_touch_changed(al_ctx *c, const char *arn);
/* Runs sql with ?1 = a and ?2 = b (b NULL: unbound). 0 or -EIO. */
int al_sm_exec2(al_ctx *c, const char *sql, const char *a, const char *b);
int64_t al_sm_count_rows(al_ctx *c, const char *sql, const char *arn);
/* A failed value operation in Secrets Manager's codes. */
int al_sm_value_error(al_error *e, int r);

/* One change to secret s in one transaction: fn's answer >= 0 commits,
 * its error rolls back; a store that fails to begin or commit is
 * InternalServiceError. Answers fn's answer. */
typedef int (*al_sm_change_fn)(al_ctx *c, secret *s, void *arg, al_error *e);
int al_sm_change(al_ctx *c, secret *s, al_sm_change_fn fn, void *arg, al_error *e);

/* ---- rotation (sm_rotation.c) ---- */

/* Moves running hooks on (a finished step starts the next). */
int al_sm_hooks_poll(al_ctx *c);
/* A scheduled rotation of s due at now, carried out; 1 when one was. */
int al_sm_rotate_if_due(al_ctx *c, secret *s, double now);
int al_sm_op_rotate_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                           al_error *e);
int al_sm_op_cancel_rotate_secret(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                  al_error *e);

/* ---- replication (sm_replication.c) ---- */

#define AL_SM_REPLICAS_MAX 64 /* regions of one request (more than a partition has) */

/* One member of AddReplicaRegions. */
typedef struct add_region {
    const char *region, *kms; /* kms NULL: alias/aws/secretsmanager of the region */
} add_region;

int al_sm_parse_add_regions(al_ctx *c, const es_json *req, add_region *out, size_t *n, al_error *e);
int al_sm_replicate_all(al_ctx *c, const char *principal, const secret *p, const add_region *add,
                        size_t n, bool force, al_error *e);
void al_sm_write_replication_status(al_ctx *c, const char *arn, es_jw *w);
/* Inside the transaction of a change to the primary arn: the replicas
 * follow it. */
int al_sm_sync_replicas(al_ctx *c, const char *arn);
int al_sm_refuse_replicated(al_ctx *c, const secret *s, const char *id, al_error *e);
void al_sm_write_primary_region(al_ctx *c, const secret *s, bool list, es_jw *w);
int al_sm_op_replicate_secret_to_regions(al_ctx *c, const char *principal, const es_json *req,
                                         es_jw *w, al_error *e);
int al_sm_op_remove_regions_from_replication(al_ctx *c, const char *principal, const es_json *req,
                                             es_jw *w, al_error *e);
int al_sm_op_stop_replication_to_replica(al_ctx *c, const char *principal, const es_json *req,
                                         es_jw *w, al_error *e);

#endif
