/* td_files.h - secrets delivered as files (issue 21): the dockerLabels
 *
 *   ecs-secrets.file.<SECRET_NAME>        = <path>[:<mode>[:<uid>[:<gid>]]]
 *   ecs-secrets.file-policy.<SECRET_NAME> = frozen | refresh
 *
 * of a container definition, read once at registration into typed
 * ag_secret_file records (ag_container_def.files). SECRET_NAME is the name of
 * one of the container's secrets[]; that secret then reaches the container as
 * a read-only file at <path> (agent/secrets/files.h writes it on a host
 * tmpfs), not as an environment variable. Mode in octal (default 0400, at
 * most 0777); uid and gid decimal (default: the container's `user` when it is
 * numeric, "uid" or "uid:gid", else 0).
 *
 * frozen: the value the task was created with (the host file is bind-mounted
 * alone, at any path). refresh: the agent swaps in a rotated value; the host
 * directory of that container's refresh files is bind-mounted at
 * dirname(path), which then shows only the agent's files, so `/` and the
 * system directories are refused as that parent.
 *
 * Refusals are ClientExceptions naming the label:
 *   containerDefinitions[0].dockerLabels["ecs-secrets.file.DB"]: ...
 * Pure: no I/O, no logging. Private to agent/tasks/ and its readers. */
#ifndef AG_TD_FILES_H
#define AG_TD_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ag_td_error;
struct ag_container_def;

#define AG_FILE_LABEL_PREFIX "ecs-secrets.file."
#define AG_FILE_POLICY_LABEL_PREFIX "ecs-secrets.file-policy."
#define AG_FILE_PATH_MAX 1024 /* a file's path in the container */
#define AG_FILE_NAME_MAX 255  /* one component of it (NAME_MAX) */
#define AG_FILE_DEPTH_MAX 32  /* components of it */
#define AG_FILE_MODE_DEFAULT 0400
#define AG_FILE_MODE_MAX 0777
#define AG_FILE_ID_MAX 4294967294u /* uid/gid: (uid_t)-1 means "unchanged" to chown */

typedef enum ag_file_policy {
    AG_FILE_FROZEN,  /* the value of the task's creation, as an env var */
    AG_FILE_REFRESH, /* swapped atomically when drift sees a new version */
} ag_file_policy;

typedef struct ag_secret_file {
    size_t secret; /* index into the container's secrets[] */
    char *path;    /* absolute, normalised: no "//", ".", ".." or trailing '/' */
    unsigned mode;
    uint32_t uid, gid;
    ag_file_policy policy;
} ag_secret_file;

/* Reads c's file labels (c->docker_labels, c->secrets and c->user already
 * parsed) into c->files. prefix is the container's field path
 * ("containerDefinitions[0]"). 0, -EINVAL (e filled), -ENOMEM. */
int ag_td_files_parse(struct ag_container_def *c, const char *prefix, struct ag_td_error *e);
void ag_td_files_free(ag_secret_file *f, size_t n);

/* The file record of c's secret called name; NULL when it is an env var. */
const ag_secret_file *ag_td_file_for(const struct ag_container_def *c, const char *name);
/* Whether the parent directory of a refresh file may be mounted over; NULL
 * or the reason it may not. dir is a normalised absolute path. */
const char *ag_td_files_refresh_dir_refused(const char *dir, size_t len);
const char *ag_file_policy_name(ag_file_policy p);

#endif
