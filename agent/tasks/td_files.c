/* td_files.c - the secret-file labels of a container definition (td_files.h). */
#include "agent/tasks/td_files.h"
#include "agent/tasks/td_json.h"
#include "agent/tasks/taskdef.h"
#include "common/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT "ClientException"
#define LABEL_PATH_MAX (AG_TD_LABEL_KEY_MAX + 64)
#define ID_DIGITS_MAX 10 /* 4294967294 */
#define STR_(x) #x
#define STR(x) STR_(x)

/* The parents a refresh directory may not hide: the container's own system. */
static const char *const system_dirs[] = {"/etc",  "/usr", "/bin", "/lib", "/sbin",
                                          "/proc", "/sys", "/dev", "/var", "/lib64"};

const char *ag_file_policy_name(ag_file_policy p)
{
    return p == AG_FILE_REFRESH ? "refresh" : "frozen";
}

void ag_td_files_free(ag_secret_file *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++)
        es_free(f[i].path);
    es_free(f);
}

const ag_secret_file *ag_td_file_for(const ag_container_def *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n_files; i++)
        if (strcmp(c->secrets[c->files[i].secret].name, name) == 0)
            return &c->files[i];
    return NULL;
}

const char *ag_td_files_refresh_dir_refused(const char *dir, size_t len)
{
    if (len == 1)
        return "a refresh file's directory is mounted over with the agent's own, and '/' would "
               "hide the container's whole file system";
    for (size_t i = 0; i < sizeof system_dirs / sizeof *system_dirs; i++)
        if (strlen(system_dirs[i]) == len && memcmp(dir, system_dirs[i], len) == 0)
            return "a refresh file's directory is mounted over with the agent's own, which would "
                   "hide a system directory of the container; put the file in a directory of "
                   "its own (e.g. /run/secrets)";
    return NULL;
}

/* An absolute path with no empty, "." or ".." component and no control
 * character: what the mount's target will be, exactly. */
static const char *check_path(const char *p, size_t len)
{
    if (len == 0)
        return "the path is empty";
    if (p[0] != '/')
        return "the path must be absolute (start with '/')";
    if (len > AG_FILE_PATH_MAX)
        return "the path is longer than " STR(AG_FILE_PATH_MAX) " bytes";
    if (len == 1)
        return "the path names the root directory, not a file";
    size_t depth = 0;
    for (size_t i = 1; i <= len;) {
        size_t j = i;
        while (j < len && p[j] != '/')
            j++;
        size_t n = j - i;
        if (n == 0)
            return "the path has an empty component ('//' or a trailing '/')";
        if ((n == 1 && p[i] == '.') || (n == 2 && p[i] == '.' && p[i + 1] == '.'))
            return "the path may not hold '.' or '..' components";
        if (n > AG_FILE_NAME_MAX)
            return "a component of the path is longer than " STR(AG_FILE_NAME_MAX) " bytes";
        if (++depth > AG_FILE_DEPTH_MAX)
            return "the path is deeper than " STR(AG_FILE_DEPTH_MAX) " components";
        i = j + 1;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return "the path may not hold control characters";
    return NULL;
}

/* Decimal digits only, at most AG_FILE_ID_MAX. */
static bool parse_id(const char *s, size_t len, uint32_t *out)
{
    if (len == 0 || len > ID_DIGITS_MAX)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > AG_FILE_ID_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Octal digits only, at most AG_FILE_MODE_MAX (no setuid, setgid, sticky). */
static bool parse_mode(const char *s, size_t len, unsigned *out)
{
    if (len == 0 || len > 4)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '7')
            return false;
        v = v * 8 + (unsigned)(s[i] - '0');
    }
    if (v > AG_FILE_MODE_MAX)
        return false;
    *out = v;
    return true;
}

/* The default owner: the container's user when numeric ("uid" or "uid:gid"). */
static void default_owner(const char *user, uint32_t *uid, uint32_t *gid)
{
    *uid = 0;
    *gid = 0;
    if (!user)
        return;
    const char *colon = strchr(user, ':');
    size_t ulen = colon ? (size_t)(colon - user) : strlen(user);
    uint32_t u, g;
    if (!parse_id(user, ulen, &u))
        return;
    *uid = u;
    if (colon && parse_id(colon + 1, strlen(colon + 1), &g))
        *gid = g;
}

static long find_secret(const ag_container_def *c, const char *name)
{
    for (size_t i = 0; i < c->n_secrets; i++)
        if (strcmp(c->secrets[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* <path>[:<mode>[:<uid>[:<gid>]]] into f (path allocated). */
static int parse_value(const char *v, const char *lp, const ag_container_def *c, ag_secret_file *f,
                       ag_td_error *e)
{
    const char *field[4];
    size_t flen[4], n = 0;
    for (const char *p = v;; n++) {
        if (n == 4)
            return ag_td_bad(e, CLIENT,
                             "%s: too many ':' fields; the form is <path>[:<mode>[:<uid>[:<gid>]]]",
                             lp);
        const char *colon = strchr(p, ':');
        field[n] = p;
        flen[n] = colon ? (size_t)(colon - p) : strlen(p);
        if (!colon) {
            n++;
            break;
        }
        p = colon + 1;
    }
    const char *why = check_path(field[0], flen[0]);
    if (why)
        return ag_td_bad(e, CLIENT, "%s: %s", lp, why);
    f->mode = AG_FILE_MODE_DEFAULT;
    default_owner(c->user, &f->uid, &f->gid);
    if (n > 1 && !parse_mode(field[1], flen[1], &f->mode))
        return ag_td_bad(e, CLIENT, "%s: the mode must be octal digits from 0 to 0777", lp);
    if (n > 2 && !parse_id(field[2], flen[2], &f->uid))
        return ag_td_bad(e, CLIENT, "%s: the uid must be a number from 0 to %u", lp,
                         AG_FILE_ID_MAX);
    if (n > 3 && !parse_id(field[3], flen[3], &f->gid))
        return ag_td_bad(e, CLIENT, "%s: the gid must be a number from 0 to %u", lp,
                         AG_FILE_ID_MAX);
    if (!(f->path = es_strndup(field[0], flen[0])))
        return ag_td_nomem(e);
    return 0;
}

static size_t dir_len(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash == path ? 1 : (size_t)(slash - path);
}

/* Is path inside (or equal to) the directory dir[0..dlen)? */
static bool under(const char *path, const char *dir, size_t dlen)
{
    return strncmp(path, dir, dlen) == 0 && (path[dlen] == '\0' || path[dlen] == '/');
}

static void label_path(char *out, size_t n, const char *prefix, const char *key)
{
    ag_td_pathf(out, n, "%s.dockerLabels[\"%s\"]", prefix, key);
}

/* Rules between files: one path each; a refresh directory holds only
 * refresh files, and no other refresh directory (mounts cannot nest into a
 * read-only mount). */
static int check_between(const ag_container_def *c, const char *prefix, ag_td_error *e)
{
    char lp[LABEL_PATH_MAX];
    for (size_t i = 0; i < c->n_files; i++) {
        const ag_secret_file *a = &c->files[i];
        snprintf(lp, sizeof lp, "%s.dockerLabels[\"" AG_FILE_LABEL_PREFIX "%s\"]", prefix,
                 c->secrets[a->secret].name);
        size_t dl = dir_len(a->path);
        if (a->policy == AG_FILE_REFRESH) {
            const char *why = ag_td_files_refresh_dir_refused(a->path, dl);
            if (why)
                return ag_td_bad(e, CLIENT, "%s: %.*s: %s", lp, (int)dl, a->path, why);
        }
        for (size_t j = 0; j < c->n_files; j++) {
            const ag_secret_file *b = &c->files[j];
            if (j == i)
                continue;
            if (j > i && strcmp(a->path, b->path) == 0)
                return ag_td_bad(e, CLIENT, "%s: the path %s is also secret %s's", lp, a->path,
                                 c->secrets[b->secret].name);
            if (a->policy != AG_FILE_REFRESH)
                continue;
            size_t bl = dir_len(b->path);
            bool same_dir = bl == dl && strncmp(a->path, b->path, dl) == 0;
            if (same_dir && b->policy == AG_FILE_REFRESH)
                continue;
            if (under(b->path, a->path, dl))
                return ag_td_bad(e, CLIENT,
                                 "%s: its directory %.*s is mounted read-only with the refresh "
                                 "files alone, so secret %s's file (%s, %s) cannot be in it",
                                 lp, (int)dl, a->path, c->secrets[b->secret].name, b->path,
                                 ag_file_policy_name(b->policy));
        }
    }
    return 0;
}

static int add_file(ag_container_def *c, const ag_kv *label, const char *prefix, ag_td_error *e)
{
    char lp[LABEL_PATH_MAX];
    label_path(lp, sizeof lp, prefix, label->name);
    const char *name = label->name + strlen(AG_FILE_LABEL_PREFIX);
    long s = find_secret(c, name);
    if (s < 0)
        return ag_td_bad(e, CLIENT, "%s: container '%s' has no secret named '%s' (secrets[].name)",
                         lp, c->name, name);
    ag_secret_file f = {.secret = (size_t)s, .policy = AG_FILE_FROZEN};
    int rc = parse_value(label->value, lp, c, &f, e);
    if (rc)
        return rc;
    c->files[c->n_files++] = f;
    return 0;
}

static int set_policy(ag_container_def *c, const ag_kv *label, const char *prefix, ag_td_error *e)
{
    char lp[LABEL_PATH_MAX];
    label_path(lp, sizeof lp, prefix, label->name);
    const char *name = label->name + strlen(AG_FILE_POLICY_LABEL_PREFIX);
    if (find_secret(c, name) < 0)
        return ag_td_bad(e, CLIENT, "%s: container '%s' has no secret named '%s' (secrets[].name)",
                         lp, c->name, name);
    ag_secret_file *f = (ag_secret_file *)ag_td_file_for(c, name);
    if (!f)
        return ag_td_bad(e, CLIENT,
                         "%s: secret '%s' is not a file: add the label " AG_FILE_LABEL_PREFIX
                         "%s with its path",
                         lp, name, name);
    if (strcmp(label->value, "frozen") == 0)
        f->policy = AG_FILE_FROZEN;
    else if (strcmp(label->value, "refresh") == 0)
        f->policy = AG_FILE_REFRESH;
    else
        return ag_td_bad(e, CLIENT, "%s: the policy must be 'frozen' or 'refresh'", lp);
    return 0;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

int ag_td_files_parse(ag_container_def *c, const char *prefix, ag_td_error *e)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_docker_labels; i++)
        n += has_prefix(c->docker_labels[i].name, AG_FILE_LABEL_PREFIX);
    if (n == 0) {
        for (size_t i = 0; i < c->n_docker_labels; i++)
            if (has_prefix(c->docker_labels[i].name, AG_FILE_POLICY_LABEL_PREFIX))
                return set_policy(c, &c->docker_labels[i], prefix, e);
        return 0;
    }
    if (!(c->files = es_calloc(n, sizeof *c->files)))
        return ag_td_nomem(e);
    int rc = 0;
    for (size_t i = 0; i < c->n_docker_labels && !rc; i++)
        if (has_prefix(c->docker_labels[i].name, AG_FILE_LABEL_PREFIX))
            rc = add_file(c, &c->docker_labels[i], prefix, e);
    for (size_t i = 0; i < c->n_docker_labels && !rc; i++)
        if (has_prefix(c->docker_labels[i].name, AG_FILE_POLICY_LABEL_PREFIX))
            rc = set_policy(c, &c->docker_labels[i], prefix, e);
    return rc ? rc : check_between(c, prefix, e);
}
