/* envfile.h - ECS environment files (a container's environmentFiles, issue
 * 20): one file's content read into variables, and the files of a
 * container laid under its environment and secrets.
 *
 * ECS's rules (the ECS agent's reading of a file, and the ECS API's
 * documentation of environmentFiles):
 *   - lines end with '\n' (a '\r' before it is dropped);
 *   - a line starting with '#' is a comment; blank lines are skipped;
 *   - a line is NAME=VALUE split at the first '='; a line without '=', or
 *     with an empty name or an empty value, is skipped (as ECS does);
 *     no quoting or escapes: the value is the rest of the line as it is;
 *   - within one file a later line for a name wins;
 *   - up to AG_ENVFILES_MAX files per container; a variable of
 *     `environment` wins over the files; between files, the first file to
 *     define a variable wins; `secrets` win over both.
 * Ours, named limits: a file's size, its variables, a name's length. A NUL
 * byte refuses the file (Docker's Env cannot carry it).
 *
 * The variables are kept as Docker's Env takes them, "NAME=VALUE" each
 * NUL-terminated one after the other, in a secret buffer: the values are
 * treated as secrets (wiped, never logged; a refusal names the file's line
 * number, never its content). Pure: no I/O, no logging. */
#ifndef AG_SECRETS_ENVFILE_H
#define AG_SECRETS_ENVFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

#define AG_ENVFILES_MAX 10              /* ECS: up to ten files per container */
#define AG_ENVFILE_BYTES_MAX (1u << 20) /* one file (the embedded S3's object limit) */
#define AG_ENVFILE_VARS_MAX 1000        /* one file's variables (environment's limit) */
#define AG_ENVFILE_NAME_MAX 255         /* a variable's name (environment's limit) */
#define AG_ENVFILE_ENV_MAX (AG_ENVFILES_MAX * AG_ENVFILE_BYTES_MAX + AG_ENVFILE_VARS_MAX)

/* Reads data[0..len) into env (reset first; "NAME=VALUE\0" entries, a name
 * once, in the order of first appearance). 0; -EINVAL with err saying which
 * line and why (never its content); -EMSGSIZE over a limit; -ENOMEM. */
int ag_envfile_parse(const char *data, size_t len, es_buf *env, char *err, size_t errlen);

/* Whether env (entries as above, env_len bytes) defines name[0..n). */
bool ag_envfile_defines(const char *env, size_t env_len, const char *name, size_t n);

/* Appends to out the entries of files[0..n) (each parsed as above) that
 * are not overridden: a name in taken (the container's environment and
 * secrets' names, n_taken of them) or defined by an earlier file is
 * skipped. 0, -ENOMEM, -EMSGSIZE. */
int ag_envfile_merge(const es_buf *files, size_t n, const char *const *taken, size_t n_taken,
                     es_buf *out);

#endif
