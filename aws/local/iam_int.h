/* iam_int.h - what iam.c (roles, managed policies) shares with iam_users.c
 * (users, groups, access keys); internal to aws/local. The checks word
 * IAM's errors (ValidationError naming the field, MalformedPolicyDocument,
 * LimitExceeded) into e, as iam.h describes. */
#ifndef AL_IAM_INT_H
#define AL_IAM_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/local/iam.h"
#include "aws/local/query.h"
#include "aws/policy.h"

#define AL_IAM_NAME_RE "Member must satisfy regular expression pattern: [\\w+=,.@-]+"
#define AL_IAM_POLICY_ARN_MAX 1100

/* 1..max characters of [A-Za-z0-9_+=,.@-]. */
bool al_iam_name_ok(const char *s, size_t max);
/* "/" or "/.../" of printable ASCII, at most AL_ROLE_PATH_MAX. */
bool al_iam_path_ok(const char *s);
/* ValidationError "1 validation error detected: Value ... at 'field' failed
 * to satisfy constraint: constraint" (value echoed when short and plain). */
int al_iam_invalid(al_error *e, const char *field, const char *value, const char *constraint);
/* The required form value key (null: ValidationError naming field). */
int al_iam_need(const al_form *f, const char *key, const char *field, const char **out,
                al_error *e);
int al_iam_need_policy_name(const al_form *f, const char **out, al_error *e);
int al_iam_need_policy_arn(const al_form *f, const char **out, al_error *e);
/* Path, "/" when absent. */
int al_iam_opt_path(const al_form *f, const char **out, al_error *e);
/* A whole number in [lo, hi], dflt when absent. */
int al_iam_opt_int_in_range(const al_form *f, const char *key, const char *field, long long lo,
                            long long hi, long long dflt, int64_t *out, al_error *e);
/* Compiles doc with the limits; MalformedPolicyDocument, or LimitExceeded
 * "Cannot exceed quota for QUOTA: N." past lim->max_bytes. */
int al_iam_check_policy(const char *doc, aw_policy_kind kind, const aw_policy_limits *lim,
                        const char *quota, al_error *e);
/* prefix (4 characters: "AIDA", "AGPA", ...) and 17 base32 characters. */
int al_iam_random_id(const char *prefix, char *out, size_t n);

const char *al_iam_col(sqlite3_stmt *st, int i);
/* Steps st once and gives it back; answers sqlite3_step's result. */
int al_iam_step_done(al_ctx *c, sqlite3_stmt *st);
/* Runs a write with n text parameters (NULL binds NULL): 0 or ServiceFailure. */
int al_iam_exec_write(al_ctx *c, const char *sql, const char *const *args, int n, al_error *e);
/* The first column of sql with one text parameter. 0 or -EIO. */
int al_iam_count_rows(al_ctx *c, const char *sql, const char *arg, int *out);
/* Does a managed policy ARN exist (AWS managed or ours)? 1, 0, -EIO. */
int al_iam_managed_exists(al_ctx *c, const char *arn);
/* A managed policy's document (es_malloc'ed). 0, -ENOENT, -ENOMEM, -EIO. */
int al_iam_managed_doc(al_ctx *c, const char *arn, char **doc);
/* The text after the last '/' of an ARN. */
const char *al_iam_arn_last(const char *arn);
/* Compiles doc (named name) and adds it to out's identity policies; a
 * document that no longer parses is skipped. 0 or -ENOMEM. */
int al_iam_add_identity(al_iam_policies *out, const char *doc, const char *name);

#endif
