/* files.h - secret values as files on a host tmpfs (issue 21).
 *
 * A container's secret with an ecs-secrets.file.* label (agent/tasks/td_files.h)
 * is written here instead of into the container's Env, and bind-mounted
 * read-only into the container. Values never touch a disk: every write first
 * checks that the directory is on tmpfs or ramfs (statfs) and refuses
 * otherwise; there is no fallback.
 *
 * Layout under the files directory (ECS_SECRETS_FILES_DIR, 0700, the agent's):
 *
 *   <root>/<task id>/                 0700: the task's values; removed with it
 *     c<i>/f<s>                       container i's frozen file of secrets[s]:
 *                                     bind-mounted alone at the label's path
 *     c<i>/r<s>/                      0755: the refresh files of container i
 *                                     sharing one parent directory (s: the
 *                                     first such secret), bind-mounted at
 *                                     that parent, laid out as Kubernetes'
 *                                     atomic writer does:
 *       ..data -> ..<stamp>           swapped by rename(2): atomic
 *       ..<stamp>/<basename>          the values (the label's mode, owner)
 *       <basename> -> ..data/<basename>
 *
 * A bind-mounted file pins its inode (a rename over it on the host is not
 * seen in the container), which is why a refresh mounts the directory: a
 * reader opening <basename> follows the symlinks of the moment, and sees the
 * old file whole or the new one whole, never a half-written one.
 *
 * Removal overwrites every regular file with zeros before unlinking it.
 * Blocking I/O on a memory file system (microseconds); no logging: errors
 * come back as text (a path, never a value). */
#ifndef AG_SECRETS_FILES_H
#define AG_SECRETS_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AG_FILES_DIR_DEFAULT "/run/ecs-secrets-agent/files"
#define AG_FILES_PATH_MAX 4096 /* a host path under the files directory */
#define AG_FILES_ERR_MAX 512
#define AG_FILES_STAMP_TRIES 16 /* names tried for a new ..<stamp> directory */
#define AG_FILES_DIR_MODE 0700
#define AG_FILES_SHARED_DIR_MODE 0755 /* a refresh directory: the container's user walks it */

/* 0 when dir is on tmpfs or ramfs; -EXDEV (err says which file system it is
 * on) or -errno (statfs failed) else. */
int ag_files_check_memory_fs(const char *dir, char *err, size_t errlen);

/* Creates dir (mode, owned by the agent) unless it exists as a directory;
 * its parents with 0755 when missing. 0 or -errno (err filled). */
int ag_files_mkdirs(const char *dir, unsigned mode, char *err, size_t errlen);

/* Writes a new file (O_EXCL: never over an existing one or through a link)
 * with value, then its owner and mode. 0 or -errno (err filled); on failure
 * nothing is left. */
int ag_files_write(const char *path, const char *value, size_t len, unsigned mode, uint32_t uid,
                   uint32_t gid, char *err, size_t errlen);

/* One file of a refresh directory. */
typedef struct ag_files_entry {
    const char *name; /* basename: no '/', not starting with ".." */
    const char *value;
    size_t len;
    unsigned mode;
    uint32_t uid, gid;
} ag_files_entry;

/* The atomic writer: dir (existing) gets a new ..<stamp> holding exactly the
 * entries, ..data swung to it by rename, a <name> -> ..data/<name> link for
 * each entry, and the previous ..<stamp> wiped and removed. A failure
 * leaves the previous state whole. 0 or -errno (err filled). */
int ag_files_atomic_update(const char *dir, const ag_files_entry *entries, size_t n, char *err,
                           size_t errlen);

/* Removes path and everything under it, overwriting regular files with
 * zeros first; symbolic links are removed, never followed. A missing path
 * is 0. 0 or -errno of the first failure (the rest is still tried). */
int ag_files_remove_tree(const char *path);

#endif
