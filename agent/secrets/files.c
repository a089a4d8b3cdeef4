/* files.c - secret values as files on a host tmpfs (files.h). */
#include "agent/secrets/files.h"
#include "common/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define WIPE_CHUNK 4096
#define NFTW_FDS 16

int ag_files_check_memory_fs(const char *dir, char *err, size_t errlen)
{
    struct statfs sf;
    if (statfs(dir, &sf) < 0)
        return es_errf(err, errlen, -errno, "%s: %s", dir, strerror(errno));
    if (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC)
        return 0;
    return es_errf(err, errlen, -EXDEV,
                   "%s is not on tmpfs or ramfs (file system type 0x%lx): secret files are only "
                   "written to memory, never to a disk",
                   dir, (unsigned long)sf.f_type);
}

static int mkdir_one(const char *dir, unsigned mode, char *err, size_t errlen)
{
    if (mkdir(dir, mode) == 0)
        return chmod(dir, mode) < 0
                   ? es_errf(err, errlen, -errno, "chmod %s: %s", dir, strerror(errno))
                   : 0; /* the umask may have taken bits */
    struct stat st;
    if (errno == EEXIST && lstat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    return es_errf(err, errlen, errno == EEXIST ? -ENOTDIR : -errno, "mkdir %s: %s", dir,
                   errno == EEXIST ? "exists and is not a directory" : strerror(errno));
}

int ag_files_mkdirs(const char *dir, unsigned mode, char *err, size_t errlen)
{
    char p[AG_FILES_PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return es_errf(err, errlen, -ENAMETOOLONG, "%.64s...: the path is too long", dir);
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        int r = mkdir_one(p, AG_FILES_SHARED_DIR_MODE, err, errlen);
        *s = '/';
        if (r < 0 && r != -EACCES)
            return r;
    }
    return mkdir_one(p, mode, err, errlen);
}

int ag_files_write(const char *path, const char *value, size_t len, unsigned mode, uint32_t uid,
                   uint32_t gid, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return es_errf(err, errlen, -errno, "create %s: %s", path, strerror(errno));
    const char *what = NULL;
    for (size_t off = 0; off < len && !what;) {
        ssize_t w = write(fd, value + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            what = "write";
        else
            off += (size_t)w;
    }
    /* owner before mode: chown clears set-id bits, and the mode is what was asked;
     * no chown when the owner is already right (a service without CAP_CHOWN, its
     * chown calls filtered, may still write its own user's files) */
    struct stat st;
    if (!what && fstat(fd, &st) < 0)
        what = "stat";
    if (!what && (st.st_uid != (uid_t)uid || st.st_gid != (gid_t)gid) &&
        fchown(fd, (uid_t)uid, (gid_t)gid) < 0)
        what = "chown";
    if (!what && fchmod(fd, (mode_t)mode) < 0)
        what = "chmod";
    int saved = what ? (errno ? errno : EIO) : 0;
    close(fd);
    if (!what)
        return 0;
    ag_files_remove_tree(path);
    return es_errf(err, errlen, -saved, "%s %s: %s", what, path, strerror(saved));
}

/* Overwrites a regular file's bytes with zeros (tmpfs rewrites the same
 * pages), so that a value does not linger in freed memory. */
static void wipe_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    static const char zeros[WIPE_CHUNK];
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1) {
        for (off_t off = 0; off < st.st_size;) {
            size_t n = (size_t)(st.st_size - off) < sizeof zeros ? (size_t)(st.st_size - off)
                                                                 : sizeof zeros;
            ssize_t w = pwrite(fd, zeros, n, off);
            if (w <= 0)
                break;
            off += w;
        }
    }
    close(fd);
}

static int rm_first_err;
static bool rm_wipe; /* the loop's thread only, as rm_first_err */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    int r;
    if (flag == FTW_DP)
        r = rmdir(path);
    else {
        if (rm_wipe && flag == FTW_F && S_ISREG(st->st_mode))
            wipe_file(path);
        r = unlink(path);
    }
    if (r < 0 && errno != ENOENT && !rm_first_err)
        rm_first_err = -errno;
    return 0;
}

static int remove_tree(const char *path, bool wipe)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    rm_first_err = 0; /* the loop's thread only */
    rm_wipe = wipe;
    if (nftw(path, rm_entry, NFTW_FDS, FTW_DEPTH | FTW_PHYS) < 0 && !rm_first_err)
        rm_first_err = -errno;
    return rm_first_err;
}

int ag_files_remove_tree(const char *path)
{
    return remove_tree(path, true);
}

/* ---- the atomic writer ---- */

static int pathf(char *out, size_t n, const char *dir, const char *name, char *err, size_t errlen)
{
    if (snprintf(out, n, "%s/%s", dir, name) >= (int)n)
        return es_errf(err, errlen, -ENAMETOOLONG, "%.64s...: the path is too long", dir);
    return 0;
}

/* A new "..<seconds>_<nanoseconds>.tmp" directory in dir; name gets the
 * stamp without ".tmp". */
static int new_stamp_dir(const char *dir, char *name, size_t nlen, char *tmp, size_t tlen,
                         char *err, size_t errlen)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (int i = 0; i < AG_FILES_STAMP_TRIES; i++) {
        snprintf(name, nlen, "..%lld_%09ld_%d", (long long)ts.tv_sec, ts.tv_nsec, i);
        char t[96];
        snprintf(t, sizeof t, "%s.tmp", name);
        int r = pathf(tmp, tlen, dir, t, err, errlen);
        if (r < 0)
            return r;
        if (mkdir(tmp, AG_FILES_SHARED_DIR_MODE) == 0)
            return chmod(tmp, AG_FILES_SHARED_DIR_MODE) < 0 ? -errno : 0;
        if (errno != EEXIST)
            return es_errf(err, errlen, -errno, "mkdir %s: %s", tmp, strerror(errno));
    }
    return es_errf(err, errlen, -EEXIST, "%s: no free name for a new version", dir);
}

static int write_entries(const char *tmp, const ag_files_entry *e, size_t n, char *err,
                         size_t errlen)
{
    char p[AG_FILES_PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        if (strchr(e[i].name, '/') || strncmp(e[i].name, "..", 2) == 0 || !*e[i].name)
            return es_errf(err, errlen, -EINVAL, "%s: a bad file name", tmp);
        int r = pathf(p, sizeof p, tmp, e[i].name, err, errlen);
        if (r == 0)
            r = ag_files_write(p, e[i].value, e[i].len, e[i].mode, e[i].uid, e[i].gid, err, errlen);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ..data_tmp -> stamp, renamed over ..data: the one atomic step readers see. */
static int swap_data(const char *dir, const char *stamp, char *err, size_t errlen)
{
    char tmp[AG_FILES_PATH_MAX], data[AG_FILES_PATH_MAX];
    int r = pathf(tmp, sizeof tmp, dir, "..data_tmp", err, errlen);
    if (r == 0)
        r = pathf(data, sizeof data, dir, "..data", err, errlen);
    if (r < 0)
        return r;
    unlink(tmp); /* a leftover of an interrupted swap */
    if (symlink(stamp, tmp) < 0)
        return es_errf(err, errlen, -errno, "symlink %s: %s", tmp, strerror(errno));
    if (rename(tmp, data) < 0) {
        r = es_errf(err, errlen, -errno, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return r;
    }
    return 0;
}

/* <name> -> ..data/<name> for each entry, where missing. */
static int user_links(const char *dir, const ag_files_entry *e, size_t n, char *err, size_t errlen)
{
    char p[AG_FILES_PATH_MAX], target[AG_FILES_PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        int r = pathf(p, sizeof p, dir, e[i].name, err, errlen);
        if (r == 0)
            r = pathf(target, sizeof target, "..data", e[i].name, err, errlen);
        if (r < 0)
            return r;
        if (symlink(target, p) < 0 && errno != EEXIST)
            return es_errf(err, errlen, -errno, "symlink %s: %s", p, strerror(errno));
    }
    return 0;
}

int ag_files_atomic_update(const char *dir, const ag_files_entry *entries, size_t n, char *err,
                           size_t errlen)
{
    char stamp[80], tmp[AG_FILES_PATH_MAX], final[AG_FILES_PATH_MAX], data[AG_FILES_PATH_MAX];
    char old[80] = "";
    int r = pathf(data, sizeof data, dir, "..data", err, errlen);
    if (r < 0)
        return r;
    ssize_t ol = readlink(data, old, sizeof old - 1);
    old[ol > 0 ? ol : 0] = '\0';
    if ((r = new_stamp_dir(dir, stamp, sizeof stamp, tmp, sizeof tmp, err, errlen)) < 0)
        return r;
    if ((r = write_entries(tmp, entries, n, err, errlen)) < 0 ||
        (r = pathf(final, sizeof final, dir, stamp, err, errlen)) < 0)
        goto fail;
    if (rename(tmp, final) < 0) {
        r = es_errf(err, errlen, -errno, "rename %s: %s", tmp, strerror(errno));
        goto fail;
    }
    snprintf(tmp, sizeof tmp, "%s", final); /* what to remove if the swap fails */
    if ((r = swap_data(dir, stamp, err, errlen)) < 0)
        goto fail;
    /* from here the new version is the one readers see */
    if ((r = user_links(dir, entries, n, err, errlen)) < 0)
        return r;
    /* the superseded version is unlinked, not wiped: a reader that opened it
     * before the swap must still read it whole (zeros written under it read
     * as an empty value: test_file_secrets' reader saw one); tmpfs frees its
     * pages when the last reader closes. The task's stop wipes what is left. */
    if (old[0] && strncmp(old, "..", 2) == 0 && !strchr(old, '/') &&
        pathf(final, sizeof final, dir, old, err, errlen) == 0)
        remove_tree(final, false);
    return 0;
fail:
    ag_files_remove_tree(tmp);
    return r;
}
