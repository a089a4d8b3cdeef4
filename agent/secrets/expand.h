/* expand.h - what an expansion (ecs-secrets.expand.<PREFIX>, td_expand.h)
 * becomes at launch: many environment variables from one reference.
 *
 *   a JSON secret: every top-level key K gives <PREFIX>K, its value as
 *   json-key gives it (values.h: a string as is, anything else as its JSON
 *   text; of a key given twice, the last);
 *   an SSM path P (without its trailing '/'): every parameter N under it
 *   gives <PREFIX> + N relative to "P/" with each '/' turned into '_'
 *   ("/app/prod/db/user" under "/app/prod" -> <PREFIX>db_user).
 *
 * A resulting name must be an environment variable name,
 * [A-Za-z_][A-Za-z0-9_]*; one that is not, more than AG_EXPAND_MAX
 * variables, or a name given twice (by two expansions, or by an expansion
 * and the container's environment / secrets) refuses the launch with the
 * reason (names only, never a value).
 *
 * The variables are kept as Docker's Env takes them, "NAME=VALUE" each
 * NUL-terminated one after the other, in a secret buffer (es_buf_*_secret).
 * A value holding NUL is refused (Env cannot carry it).
 *
 * Drift treats an expansion as one secret; an SSM path's version is
 * ag_expand_set_version of the parameters' names and versions (no value),
 * so a parameter added, removed or changed under the path changes it.
 * Pure: no I/O, no logging. */
#ifndef AG_SECRETS_EXPAND_H
#define AG_SECRETS_EXPAND_H

#include <stddef.h>
#include <stdint.h>

#include "agent/tasks/taskdef.h"
#include "common/buf.h"

#define AG_EXPAND_NAME_MAX 1024 /* a resulting variable's name */
#define AG_EXPAND_ENV_MAX (AG_EXPAND_MAX * (AG_EXPAND_NAME_MAX + 8192))
#define AG_EXPAND_VERSION_BYTES 16 /* of the SHA-256, as the fingerprints */
#define AG_EXPAND_VERSION_LEN (sizeof "set-sha256:" - 1 + 2 * AG_EXPAND_VERSION_BYTES)

/* Whether name is [A-Za-z_][A-Za-z0-9_]* (at most AG_EXPAND_NAME_MAX). */
bool ag_expand_name_ok(const char *name, size_t len);

/* Appends every top-level key of secret (a JSON object) to env as
 * "<prefix>KEY=VALUE\0" and adds their number to *n. 0; -EINVAL with err
 * (names the key, never a value); -EMSGSIZE; -ENOMEM. */
int ag_expand_json(const char *prefix, const char *secret, size_t len, es_buf *env, size_t *n,
                   char *err, size_t errlen);

/* The variable name of parameter name under path (no trailing '/'):
 * prefix + the rest after "path/", '/' -> '_'. 0; -EINVAL with err when
 * name is not under path or the result is not a variable name; -EMSGSIZE. */
int ag_expand_ssm_var(const char *prefix, const char *path, const char *name, char *out,
                      size_t outlen, char *err, size_t errlen);

/* Appends "<var>=VALUE\0" for one parameter (as above) and adds 1 to *n.
 * 0; -EINVAL (err); -EMSGSIZE; -ENOMEM. */
int ag_expand_add_param(const char *prefix, const char *path, const char *name, const char *value,
                        size_t vlen, es_buf *env, size_t *n, char *err, size_t errlen);

/* The launch's check of container c's names: sets[i] / lens[i] are the
 * "NAME=VALUE\0..." lists of c->expands[i] (n_sets == c->n_expands). No name
 * twice, none an environment[] or secrets[] name. 0 or -EINVAL with err
 * naming the name and both sources. */
int ag_expand_check_names(const ag_container_def *c, const char *const *sets, const size_t *lens,
                          char *err, size_t errlen);

/* "set-sha256:" + hex of the first 16 bytes of the SHA-256 of the sorted "name\tversion\n" lines:
 * the version drift records for an SSM path. names are sorted in place (the versions with them).
 * out holds AG_EXPAND_VERSION_LEN + 1. 0, -EINVAL, -ENOMEM. */
int ag_expand_set_version(const char **names, int64_t *versions, size_t n, char *out,
                          size_t outlen);

#endif
