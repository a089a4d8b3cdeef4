/* iam_users.c - the embedded IAM's users, groups and users' access keys
 * (query actions in al_iam_user_qops; iam.h has the quotas).
 *
 * Users and groups share their policy handling: an entity_kind names the
 * tables and words of each, so that PutUserPolicy and PutGroupPolicy (and
 * the other six pairs) are one function each. Names are compared
 * case-insensitively (COLLATE NOCASE), as IAM does. A call on an entity
 * that does not exist is authorised first on the ARN it would have (path
 * "/"), so that a caller without the permission learns nothing of it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/local/auth.h"
#include "aws/local/iam.h"
#include "aws/local/iam_int.h"
#include "aws/local/internal.h"
#include "aws/local/qops.h"
#include "common/alloc.h"
#include "common/secure.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define AKID_MIN 16
#define AKID_MAX 128
#define MARKER_MAX 320
#define TAG_KEY_MAX 128
#define TAG_VALUE_MAX 256
/* arn:aws:iam::ACCOUNT:group + path + name */
#define ENTITY_ARN_MAX (32 + AL_ROLE_PATH_MAX + AL_GROUP_NAME_MAX)

typedef struct entity_kind {
    const char *noun;     /* "user", "group": ARNs and messages */
    const char *Noun;     /* "User", "Group" */
    const char *name_key; /* form parameter */
    const char *field;    /* its name in ValidationError */
    size_t name_max;
    size_t policy_size;     /* all inline policies together */
    const char *size_quota; /* LimitExceeded wording */
    const char *sql_get;    /* name, id, path, created WHERE name=? */
    const char *sql_policy_put, *sql_policy_get, *sql_policy_del, *sql_policy_list;
    const char *sql_policy_others; /* documents of the other inline policies (?1 owner, ?2 name) */
    const char *sql_attached_count, *sql_attached_has, *sql_attach, *sql_detach, *sql_attached_list;
    const char *managed_quota;
} entity_kind;

static const entity_kind USER = {
    "user",
    "User",
    "UserName",
    "userName",
    AL_USER_NAME_MAX,
    AL_USER_POLICY_SIZE_MAX,
    "UserPolicySize",
    "SELECT name, user_id, path, created FROM iam_user WHERE name=?",
    "INSERT OR REPLACE INTO iam_user_policy(user, name, document) VALUES (?,?,?)",
    "SELECT name, document FROM iam_user_policy WHERE user=? AND name=?",
    "DELETE FROM iam_user_policy WHERE user=? AND name=?",
    "SELECT name FROM iam_user_policy WHERE user=? ORDER BY name",
    "SELECT document FROM iam_user_policy WHERE user=?1 AND name<>?2",
    "SELECT count(*) FROM iam_user_attached WHERE user=?",
    "SELECT 1 FROM iam_user_attached WHERE user=? AND policy_arn=?",
    "INSERT OR IGNORE INTO iam_user_attached(user, policy_arn) VALUES (?,?)",
    "DELETE FROM iam_user_attached WHERE user=? AND policy_arn=?",
    "SELECT policy_arn FROM iam_user_attached WHERE user=? ORDER BY policy_arn",
    "PoliciesPerUser",
};

static const entity_kind GROUP = {
    "group",
    "Group",
    "GroupName",
    "groupName",
    AL_GROUP_NAME_MAX,
    AL_GROUP_POLICY_SIZE_MAX,
    "GroupPolicySize",
    "SELECT name, group_id, path, created FROM iam_group WHERE name=?",
    "INSERT OR REPLACE INTO iam_group_policy(grp, name, document) VALUES (?,?,?)",
    "SELECT name, document FROM iam_group_policy WHERE grp=? AND name=?",
    "DELETE FROM iam_group_policy WHERE grp=? AND name=?",
    "SELECT name FROM iam_group_policy WHERE grp=? ORDER BY name",
    "SELECT document FROM iam_group_policy WHERE grp=?1 AND name<>?2",
    "SELECT count(*) FROM iam_group_attached WHERE grp=?",
    "SELECT 1 FROM iam_group_attached WHERE grp=? AND policy_arn=?",
    "INSERT OR IGNORE INTO iam_group_attached(grp, policy_arn) VALUES (?,?)",
    "DELETE FROM iam_group_attached WHERE grp=? AND policy_arn=?",
    "SELECT policy_arn FROM iam_group_attached WHERE grp=? ORDER BY policy_arn",
    "PoliciesPerGroup",
};

/* A user or group as stored. */
typedef struct entity {
    char name[AL_GROUP_NAME_MAX + 1];
    char id[32];
    char path[AL_ROLE_PATH_MAX + 1];
    char arn[ENTITY_ARN_MAX];
    double created;
} entity;

static const char *col(sqlite3_stmt *st, int i)
{
    return al_iam_col(st, i);
}

static void entity_arn(al_ctx *c, const entity_kind *k, const char *path, const char *name,
                       char *out, size_t n)
{
    snprintf(out, n, "arn:aws:iam::%s:%s%s%s", c->account, k->noun, path, name);
}

/* 0, -ENOENT, -EIO. */
static int entity_get(al_ctx *c, const entity_kind *k, const char *name, entity *out)
{
    sqlite3_stmt *st = al_db_prepare(c->db, k->sql_get);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = -ENOENT, s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", col(st, 0));
        snprintf(out->id, sizeof out->id, "%s", col(st, 1));
        snprintf(out->path, sizeof out->path, "%s", col(st, 2));
        out->created = sqlite3_column_double(st, 3);
        entity_arn(c, k, out->path, out->name, out->arn, sizeof out->arn);
        r = 0;
    } else if (s != SQLITE_DONE) {
        r = -EIO;
    }
    al_db_release(c->db, st);
    return r;
}

static int no_entity(al_error *e, const entity_kind *k, const char *name)
{
    return al_fail(e, 404, "NoSuchEntity", "The %s with name %s cannot be found.", k->noun, name);
}

/* Loads the entity and authorises action on its ARN; a missing one is
 * authorised on the ARN it would have, then answers NoSuchEntity. */
static int entity_for(al_ctx *c, const char *principal, const entity_kind *k, const char *name,
                      const char *action, entity *out, al_error *e)
{
    int r = entity_get(c, k, name, out);
    if (r == -EIO)
        return al_fail_internal(e, "ServiceFailure");
    if (r == -ENOENT) {
        char arn[ENTITY_ARN_MAX];
        entity_arn(c, k, "/", name, arn, sizeof arn);
        r = al_authorize(c, principal, action, arn, e);
        return r < 0 ? r : no_entity(e, k, name);
    }
    return al_authorize(c, principal, action, out->arn, e);
}

static int need_name(const al_form *f, const entity_kind *k, const char **out, al_error *e)
{
    int r = al_iam_need(f, k->name_key, k->field, out, e);
    if (r == 0 && !al_iam_name_ok(*out, k->name_max))
        r = al_iam_invalid(e, k->field, *out,
                           k == &USER ? AL_IAM_NAME_RE " and length 1..64"
                                      : AL_IAM_NAME_RE " and length 1..128");
    return r;
}

bool al_iam_user_of_principal(al_ctx *c, const char *principal, char *name, size_t n)
{
    char prefix[64];
    int pl = snprintf(prefix, sizeof prefix, "arn:aws:iam::%s:user/", c->account);
    if (!principal || strncmp(principal, prefix, (size_t)pl) != 0)
        return false;
    const char *last = strrchr(principal, '/') + 1;
    if (!*last || strlen(last) >= n || !al_iam_name_ok(last, AL_USER_NAME_MAX))
        return false;
    snprintf(name, n, "%s", last);
    return true;
}

int al_iam_user_get(al_ctx *c, const char *name, al_iam_user *out)
{
    entity en;
    int r = entity_get(c, &USER, name, &en);
    if (r < 0)
        return r;
    memset(out, 0, sizeof *out);
    /* a user's name is at most AL_USER_NAME_MAX: its ARN fits */
    snprintf(out->name, sizeof out->name, "%.*s", AL_USER_NAME_MAX, en.name);
    snprintf(out->user_id, sizeof out->user_id, "%s", en.id);
    snprintf(out->path, sizeof out->path, "%s", en.path);
    snprintf(out->arn, sizeof out->arn, "%.*s", (int)sizeof out->arn - 1, en.arn);
    out->created = en.created;
    return 0;
}

/* The user an access-key call is about: UserName, or else the calling user
 * itself (AWS's rule; other callers must name one). */
static int key_user(al_ctx *c, const char *principal, const al_form *f, const char **out,
                    char *self, size_t n, al_error *e)
{
    *out = al_form_get(f, "UserName");
    if (*out)
        return al_iam_name_ok(*out, AL_USER_NAME_MAX)
                   ? 0
                   : al_iam_invalid(e, "userName", *out, AL_IAM_NAME_RE " and length 1..64");
    if (!al_iam_user_of_principal(c, principal, self, n))
        return al_fail(e, 400, "ValidationError",
                       "Must specify userName when calling with non-User credentials");
    *out = self;
    return 0;
}

/* ---- XML ---- */

static void user_tags_xml(al_ctx *c, const char *name, al_xw *w)
{
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT key, value FROM iam_user_tag WHERE user=? ORDER BY key");
    if (!st)
        return;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    bool any = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (!any)
            al_xw_open(w, "Tags");
        any = true;
        al_xw_open(w, "member");
        al_xw_elem(w, "Key", col(st, 0));
        al_xw_elem(w, "Value", col(st, 1));
        al_xw_close(w, "member");
    }
    if (any)
        al_xw_close(w, "Tags");
    al_db_release(c->db, st);
}

/* The inside of <User> or <Group>. */
static void entity_xml(al_ctx *c, const entity_kind *k, const entity *en, bool tags, al_xw *w)
{
    char idname[16];
    snprintf(idname, sizeof idname, "%sId", k->Noun);
    al_xw_elem(w, "Path", en->path);
    al_xw_elem(w, k->name_key, en->name);
    al_xw_elem(w, idname, en->id);
    al_xw_elem(w, "Arn", en->arn);
    al_xw_elem_time(w, "CreateDate", en->created);
    if (tags)
        user_tags_xml(c, en->name, w);
}

static void entity_elem(al_ctx *c, const entity_kind *k, const entity *en, al_xw *w)
{
    al_xw_open(w, k->Noun);
    entity_xml(c, k, en, k == &USER, w);
    al_xw_close(w, k->Noun);
}

static void entity_from_row(al_ctx *c, const entity_kind *k, sqlite3_stmt *st, entity *en)
{
    memset(en, 0, sizeof *en);
    snprintf(en->name, sizeof en->name, "%s", col(st, 0));
    snprintf(en->id, sizeof en->id, "%s", col(st, 1));
    snprintf(en->path, sizeof en->path, "%s", col(st, 2));
    en->created = sqlite3_column_double(st, 3);
    entity_arn(c, k, en->path, en->name, en->arn, sizeof en->arn);
}

/* ---- paging (ListUsers, ListGroups, GetGroup, ListGroupsForUser) ---- */

typedef struct page {
    const char *marker;
    int64_t max;
} page;

static int read_page(const al_form *f, page *p, al_error *e)
{
    p->marker = al_form_get(f, "Marker");
    if (p->marker && (strlen(p->marker) < 1 || strlen(p->marker) > MARKER_MAX))
        return al_iam_invalid(e, "marker", NULL,
                              "Member must have length less than or equal to " STR(MARKER_MAX));
    return al_iam_opt_int_in_range(f, "MaxItems", "maxItems", 1, 1000, 100, &p->max, e);
}

/* Writes up to p->max entities of st (name, id, path, created; ordered by
 * name, marker bound by the caller, LIMIT max + 1) as <list><member>. */
static int list_entities(al_ctx *c, const entity_kind *k, sqlite3_stmt *st, const page *p,
                         const char *list, al_xw *w, al_error *e)
{
    al_xw_open(w, list);
    int64_t n = 0;
    char last[AL_GROUP_NAME_MAX + 1] = "";
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW && n < p->max) {
        entity en;
        entity_from_row(c, k, st, &en);
        al_xw_open(w, "member");
        entity_xml(c, k, &en, false, w);
        al_xw_close(w, "member");
        snprintf(last, sizeof last, "%s", en.name);
        n++;
    }
    bool more = s == SQLITE_ROW;
    al_db_release(c->db, st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return al_fail_internal(e, "ServiceFailure");
    al_xw_close(w, list);
    al_xw_elem(w, "IsTruncated", more ? "true" : "false");
    if (more)
        al_xw_elem(w, "Marker", last);
    return 0;
}

static int path_prefix(const al_form *f, const char **out, al_error *e)
{
    *out = al_form_get(f, "PathPrefix");
    if (!*out) {
        *out = "/";
        return 0;
    }
    size_t n = strlen(*out);
    bool ok = n >= 1 && n <= AL_ROLE_PATH_MAX && (*out)[0] == '/';
    for (const char *p = *out; ok && *p; p++)
        ok = (unsigned char)*p >= 0x21 && (unsigned char)*p <= 0x7f;
    return ok ? 0
              : al_iam_invalid(e, "pathPrefix", *out,
                               "Member must satisfy regular expression pattern: "
                               "\\u002F[\\u0021-\\u007F]*");
}

/* ---- users ---- */

/* al_form_member answers "Tags.member.N" itself, which a request of Key and
 * Value does not carry: tags are counted by their Key. */
static size_t count_tags(const al_form *f)
{
    char key[64];
    size_t n = 0;
    for (;; n++) {
        snprintf(key, sizeof key, "Tags.member.%zu.Key", n + 1);
        char vkey[64];
        snprintf(vkey, sizeof vkey, "Tags.member.%zu.Value", n + 1);
        if (!al_form_get(f, key) && !al_form_get(f, vkey))
            return n;
    }
}

/* Tags.member.N.Key / .Value, checked as IAM checks them. */
static int check_tags(const al_form *f, al_error *e)
{
    size_t n = count_tags(f);
    if (n > AL_USER_TAGS_MAX)
        return al_iam_invalid(
            e, "tags", NULL,
            "Member must have length less than or equal to " STR(AL_USER_TAGS_MAX));
    char key[64], field[64];
    for (size_t i = 1; i <= n; i++) {
        snprintf(key, sizeof key, "Tags.member.%zu.Key", i);
        const char *k = al_form_get(f, key);
        snprintf(key, sizeof key, "Tags.member.%zu.Value", i);
        const char *v = al_form_get(f, key);
        snprintf(field, sizeof field, "tags.%zu.member.key", i);
        if (!k)
            return al_iam_invalid(e, field, NULL, "Member must not be null");
        if (!*k || strlen(k) > TAG_KEY_MAX)
            return al_iam_invalid(e, field, k,
                                  "Member must have length between 1 and " STR(TAG_KEY_MAX));
        snprintf(field, sizeof field, "tags.%zu.member.value", i);
        if (!v)
            return al_iam_invalid(e, field, NULL, "Member must not be null");
        if (strlen(v) > TAG_VALUE_MAX)
            return al_iam_invalid(
                e, field, NULL,
                "Member must have length less than or equal to " STR(TAG_VALUE_MAX));
        for (size_t j = 1; j < i; j++) {
            snprintf(key, sizeof key, "Tags.member.%zu.Key", j);
            if (strcasecmp(al_form_get(f, key), k) == 0)
                return al_fail(e, 400, "InvalidInput",
                               "Duplicate tag keys found. Please note that Tag keys are case "
                               "insensitive.");
        }
    }
    return 0;
}

static int store_tags(al_ctx *c, const al_form *f, const char *user, al_error *e)
{
    char key[64], vkey[64];
    size_t n = count_tags(f);
    for (size_t i = 1; i <= n; i++) {
        snprintf(key, sizeof key, "Tags.member.%zu.Key", i);
        snprintf(vkey, sizeof vkey, "Tags.member.%zu.Value", i);
        int r = al_iam_exec_write(
            c, "INSERT INTO iam_user_tag(user, key, value) VALUES (?,?,?)",
            (const char *const[]){user, al_form_get(f, key), al_form_get(f, vkey)}, 3, e);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Inserts a user or group; EntityAlreadyExists for a taken name. */
static int entity_insert(al_ctx *c, const entity_kind *k, const char *name, const char *path,
                         al_error *e)
{
    char id[32];
    if (al_iam_random_id(k == &USER ? "AIDA" : "AGPA", id, sizeof id) < 0)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_stmt *st = al_db_prepare(
        c->db, k == &USER
                   ? "INSERT INTO iam_user(name, user_id, path, created) VALUES (?,?,?,?)"
                   : "INSERT INTO iam_group(name, group_id, path, created) VALUES (?,?,?,?)");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 4, al_now(c));
    int s = al_iam_step_done(c, st);
    if (s == SQLITE_CONSTRAINT_PRIMARYKEY)
        return al_fail(e, 409, "EntityAlreadyExists", "%s with name %s already exists.", k->Noun,
                       name);
    return s == SQLITE_DONE ? 0 : al_fail_internal(e, "ServiceFailure");
}

static int create_entity(al_ctx *c, const char *principal, const entity_kind *k, const al_form *f,
                         al_xw *w, al_error *e)
{
    const char *name, *path;
    char arn[ENTITY_ARN_MAX];
    int r;
    if ((r = need_name(f, k, &name, e)) < 0 || (r = al_iam_opt_path(f, &path, e)) < 0 ||
        (k == &USER && (r = check_tags(f, e)) < 0))
        return r;
    entity_arn(c, k, path, name, arn, sizeof arn);
    if ((r = al_authorize(c, principal, k == &USER ? "iam:CreateUser" : "iam:CreateGroup", arn,
                          e)) < 0)
        return r;
    if (al_db_begin(c->db) < 0)
        return al_fail_internal(e, "ServiceFailure");
    if ((r = entity_insert(c, k, name, path, e)) == 0 && k == &USER)
        r = store_tags(c, f, name, e);
    if (r < 0) {
        al_db_rollback(c->db);
        return r;
    }
    if (al_db_commit(c->db) < 0)
        return al_fail_internal(e, "ServiceFailure");
    entity en;
    if (entity_get(c, k, name, &en) < 0)
        return al_fail_internal(e, "ServiceFailure");
    entity_elem(c, k, &en, w);
    return 0;
}

static int op_create_user(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    return create_entity(c, principal, &USER, f, w, e);
}

/* GetUser without UserName by the account root: the root's own record. */
static void root_user_xml(al_ctx *c, const char *principal, al_xw *w)
{
    double created = al_now(c);
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT min(created) FROM iam_access_key WHERE principal=? AND user_name IS NULL");
    if (st) {
        sqlite3_bind_text(st, 1, principal, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            created = sqlite3_column_double(st, 0);
        al_db_release(c->db, st);
    }
    al_xw_open(w, "User");
    al_xw_elem(w, "UserId", c->account);
    al_xw_elem(w, "Arn", principal);
    al_xw_elem_time(w, "CreateDate", created);
    al_xw_close(w, "User");
}

static int op_get_user(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    const char *name = al_form_get(f, "UserName");
    char self[AL_USER_NAME_MAX + 1], root[64];
    entity en;
    int r;
    snprintf(root, sizeof root, "arn:aws:iam::%s:root", c->account);
    if (!name && principal && strcmp(principal, root) == 0) {
        root_user_xml(c, principal, w);
        return 0;
    }
    if ((r = key_user(c, principal, f, &name, self, sizeof self, e)) < 0 ||
        (r = entity_for(c, principal, &USER, name, "iam:GetUser", &en, e)) < 0)
        return r;
    entity_elem(c, &USER, &en, w);
    return 0;
}

/* DeleteConflict while the user has anything AWS makes one remove first. */
static int user_conflicts(al_ctx *c, const char *name, al_error *e)
{
    static const struct {
        const char *sql, *msg;
    } checks[] = {
        {"SELECT count(*) FROM iam_access_key WHERE user_name=?",
         "Cannot delete entity, must delete access keys first."},
        {"SELECT count(*) FROM iam_user_policy WHERE user=?",
         "Cannot delete entity, must delete policies first."},
        {"SELECT count(*) FROM iam_user_attached WHERE user=?",
         "Cannot delete entity, must detach all policies first."},
        {"SELECT count(*) FROM iam_group_member WHERE user=?",
         "Cannot delete entity, must remove users from group first."},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        int n = 0;
        if (al_iam_count_rows(c, checks[i].sql, name, &n) < 0)
            return al_fail_internal(e, "ServiceFailure");
        if (n)
            return al_fail(e, 409, "DeleteConflict", "%s", checks[i].msg);
    }
    return 0;
}

static int op_delete_user(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    (void)w;
    const char *name;
    entity en;
    int r;
    if ((r = need_name(f, &USER, &name, e)) < 0 ||
        (r = entity_for(c, principal, &USER, name, "iam:DeleteUser", &en, e)) < 0 ||
        (r = user_conflicts(c, en.name, e)) < 0)
        return r;
    /* its tags go with it (ON DELETE CASCADE); its GetSessionToken sessions no
     * longer verify (sts.c checks the user id) */
    return al_iam_exec_write(c, "DELETE FROM iam_user WHERE name=?", (const char *const[]){en.name},
                             1, e);
}

static int op_list_users(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    const char *prefix;
    page p;
    int r;
    if ((r = path_prefix(f, &prefix, e)) < 0 || (r = read_page(f, &p, e)) < 0 ||
        (r = al_authorize(c, principal, "iam:ListUsers", "*", e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT name, user_id, path, created FROM iam_user"
                                            " WHERE substr(path, 1, length(?1)) = ?1"
                                            " AND name > ?2 ORDER BY name LIMIT ?3");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p.marker ? p.marker : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, p.max + 1);
    return list_entities(c, &USER, st, &p, "Users", w, e);
}

/* ---- access keys ---- */

static int need_akid(const al_form *f, const char **out, al_error *e)
{
    int r = al_iam_need(f, "AccessKeyId", "accessKeyId", out, e);
    if (r < 0)
        return r;
    size_t n = strlen(*out);
    bool ok = n >= AKID_MIN && n <= AKID_MAX;
    for (const char *p = *out; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '_';
    return ok ? 0
              : al_iam_invalid(e, "accessKeyId", *out,
                               "Member must satisfy regular expression pattern: [\\w]+ and "
                               "length " STR(AKID_MIN) ".." STR(AKID_MAX));
}

static int no_key(al_error *e, const char *akid)
{
    return al_fail(e, 404, "NoSuchEntity", "The Access Key with id %s cannot be found.", akid);
}

/* Makes the key (AKIA + 16 base32, 40-character secret) and answers it;
 * the secret is wiped once written. */
static int issue_key(al_ctx *c, const entity *en, al_xw *w, al_error *e)
{
    char akid[AL_AKID_LEN + 1], secret[AL_SECRET_LEN + 1];
    memcpy(akid, "AKIA", 4);
    int r = 0;
    if (al_random_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 32, akid + 4, AL_AKID_LEN - 4) < 0 ||
        al_random_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 62, secret,
                       AL_SECRET_LEN) < 0 ||
        al_access_key_add_user(c, akid, secret, en->arn, en->name) < 0) {
        r = al_fail_internal(e, "ServiceFailure");
    } else {
        al_xw_open(w, "AccessKey");
        al_xw_elem(w, "UserName", en->name);
        al_xw_elem(w, "AccessKeyId", akid);
        al_xw_elem(w, "Status", "Active");
        al_xw_elem(w, "SecretAccessKey", secret);
        al_xw_elem_time(w, "CreateDate", al_now(c));
        al_xw_close(w, "AccessKey");
    }
    es_wipe(secret, sizeof secret);
    return r;
}

static int op_create_access_key(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                al_error *e)
{
    const char *name;
    char self[AL_USER_NAME_MAX + 1];
    entity en;
    int r, n = 0;
    if ((r = key_user(c, principal, f, &name, self, sizeof self, e)) < 0 ||
        (r = entity_for(c, principal, &USER, name, "iam:CreateAccessKey", &en, e)) < 0)
        return r;
    if (al_iam_count_rows(c, "SELECT count(*) FROM iam_access_key WHERE user_name=?", en.name, &n) <
        0)
        return al_fail_internal(e, "ServiceFailure");
    if (n >= AL_USER_KEYS_MAX)
        return al_fail(e, 409, "LimitExceeded",
                       "Cannot exceed quota for AccessKeysPerUser: " STR(AL_USER_KEYS_MAX));
    return issue_key(c, &en, w, e);
}

/* The user and key of a key call; NoSuchEntity when the key is not that
 * user's. */
static int user_key(al_ctx *c, const char *principal, const al_form *f, const char *action,
                    entity *en, const char **akid, al_error *e)
{
    const char *name;
    char self[AL_USER_NAME_MAX + 1];
    int r, n = 0;
    if ((r = key_user(c, principal, f, &name, self, sizeof self, e)) < 0 ||
        (r = need_akid(f, akid, e)) < 0 ||
        (r = entity_for(c, principal, &USER, name, action, en, e)) < 0)
        return r;
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT count(*) FROM iam_access_key WHERE akid=? AND user_name=?");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, *akid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, en->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    al_db_release(c->db, st);
    return n ? 0 : no_key(e, *akid);
}

static int op_delete_access_key(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                al_error *e)
{
    (void)w;
    entity en;
    const char *akid;
    int r = user_key(c, principal, f, "iam:DeleteAccessKey", &en, &akid, e);
    if (r < 0)
        return r;
    return al_iam_exec_write(c, "DELETE FROM iam_access_key WHERE akid=? AND user_name=?",
                             (const char *const[]){akid, en.name}, 2, e);
}

static int op_update_access_key(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                al_error *e)
{
    (void)w;
    entity en;
    const char *akid, *status;
    int r = al_iam_need(f, "Status", "status", &status, e);
    if (r == 0 && strcmp(status, "Active") != 0 && strcmp(status, "Inactive") != 0)
        r = al_iam_invalid(e, "status", status,
                           "Member must satisfy enum value set: [Active, Inactive]");
    if (r < 0 || (r = user_key(c, principal, f, "iam:UpdateAccessKey", &en, &akid, e)) < 0)
        return r;
    /* an Inactive key is refused at the next request: the row change drops
     * the signing keys cached for it (auth.c) */
    return al_iam_exec_write(c, "UPDATE iam_access_key SET status=? WHERE akid=? AND user_name=?",
                             (const char *const[]){status, akid, en.name}, 3, e);
}

static int op_list_access_keys(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                               al_error *e)
{
    const char *name;
    char self[AL_USER_NAME_MAX + 1];
    entity en;
    int r;
    if ((r = key_user(c, principal, f, &name, self, sizeof self, e)) < 0 ||
        (r = entity_for(c, principal, &USER, name, "iam:ListAccessKeys", &en, e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT akid, status, created FROM iam_access_key "
                                            "WHERE user_name=? ORDER BY created, akid");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, en.name, -1, SQLITE_STATIC);
    al_xw_open(w, "AccessKeyMetadata");
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        al_xw_open(w, "member");
        al_xw_elem(w, "UserName", en.name);
        al_xw_elem(w, "AccessKeyId", col(st, 0));
        al_xw_elem(w, "Status", col(st, 1));
        al_xw_elem_time(w, "CreateDate", sqlite3_column_double(st, 2));
        al_xw_close(w, "member");
    }
    al_db_release(c->db, st);
    if (s != SQLITE_DONE)
        return al_fail_internal(e, "ServiceFailure");
    al_xw_close(w, "AccessKeyMetadata");
    al_xw_elem(w, "IsTruncated", "false");
    return 0;
}

/* ---- inline policies of users and groups ---- */

/* The characters IAM counts in a policy: whitespace outside strings is not
 * counted. */
static size_t policy_chars(const char *doc)
{
    size_t n = 0;
    bool in_str = false, esc = false;
    for (const char *p = doc; *p; p++) {
        char ch = *p;
        if (in_str) {
            n++;
            if (esc)
                esc = false;
            else if (ch == '\\')
                esc = true;
            else if (ch == '"')
                in_str = false;
        } else if (ch == '"') {
            in_str = true;
            n++;
        } else if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            n++;
        }
    }
    return n;
}

/* The entity's inline policies together, the new one replacing any of the
 * same name, must stay within its quota (AWS's LimitExceeded wording). */
static int check_policy_total(al_ctx *c, const entity_kind *k, const entity *en, const char *pname,
                              const char *doc, al_error *e)
{
    size_t total = policy_chars(doc);
    sqlite3_stmt *st = al_db_prepare(c->db, k->sql_policy_others);
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, en->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, pname, -1, SQLITE_STATIC);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        total += policy_chars(col(st, 0));
    al_db_release(c->db, st);
    if (s != SQLITE_DONE)
        return al_fail_internal(e, "ServiceFailure");
    if (total > k->policy_size)
        return al_fail(e, 409, "LimitExceeded",
                       "Maximum policy size of %zu bytes exceeded for %s %s", k->policy_size,
                       k->noun, en->name);
    return 0;
}

static int put_policy(al_ctx *c, const char *principal, const entity_kind *k, const al_form *f,
                      al_error *e)
{
    const char *name, *pname, *doc;
    entity en;
    char action[48];
    snprintf(action, sizeof action, "iam:Put%sPolicy", k->Noun);
    int r;
    if ((r = need_name(f, k, &name, e)) < 0 || (r = al_iam_need_policy_name(f, &pname, e)) < 0 ||
        (r = al_iam_need(f, "PolicyDocument", "policyDocument", &doc, e)) < 0 ||
        (r = entity_for(c, principal, k, name, action, &en, e)) < 0 ||
        (r = al_iam_check_policy(doc, AW_POLICY_IDENTITY, &aw_policy_inline_limits, k->size_quota,
                                 e)) < 0 ||
        (r = check_policy_total(c, k, &en, pname, doc, e)) < 0)
        return r;
    return al_iam_exec_write(c, k->sql_policy_put, (const char *const[]){en.name, pname, doc}, 3,
                             e);
}

static int no_policy(al_error *e, const entity_kind *k, const char *pname)
{
    return al_fail(e, 404, "NoSuchEntity", "The %s policy with name %s cannot be found.", k->noun,
                   pname);
}

static int get_policy(al_ctx *c, const char *principal, const entity_kind *k, const al_form *f,
                      al_xw *w, al_error *e)
{
    const char *name, *pname;
    entity en;
    char action[48];
    snprintf(action, sizeof action, "iam:Get%sPolicy", k->Noun);
    int r;
    if ((r = need_name(f, k, &name, e)) < 0 || (r = al_iam_need_policy_name(f, &pname, e)) < 0 ||
        (r = entity_for(c, principal, k, name, action, &en, e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, k->sql_policy_get);
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, en.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, pname, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        al_xw_elem(w, k->name_key, en.name);
        al_xw_elem(w, "PolicyName", col(st, 0));
        al_xw_elem_urlenc(w, "PolicyDocument", col(st, 1));
        r = 0;
    } else {
        r = s == SQLITE_DONE ? no_policy(e, k, pname) : al_fail_internal(e, "ServiceFailure");
    }
    al_db_release(c->db, st);
    return r;
}

static int delete_policy(al_ctx *c, const char *principal, const entity_kind *k, const al_form *f,
                         al_error *e)
{
    const char *name, *pname;
    entity en;
    char action[48];
    snprintf(action, sizeof action, "iam:Delete%sPolicy", k->Noun);
    int r;
    if ((r = need_name(f, k, &name, e)) < 0 || (r = al_iam_need_policy_name(f, &pname, e)) < 0 ||
        (r = entity_for(c, principal, k, name, action, &en, e)) < 0 ||
        (r = al_iam_exec_write(c, k->sql_policy_del, (const char *const[]){en.name, pname}, 2, e)) <
            0)
        return r;
    return sqlite3_changes(al_db_handle(c->db)) ? 0 : no_policy(e, k, pname);
}

static int list_policies(al_ctx *c, const char *principal, const entity_kind *k, const al_form *f,
                         al_xw *w, al_error *e)
{
    const char *name;
    entity en;
    char action[48];
    snprintf(action, sizeof action, "iam:List%sPolicies", k->Noun);
    int r;
    if ((r = need_name(f, k, &name, e)) < 0 ||
        (r = entity_for(c, principal, k, name, action, &en, e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, k->sql_policy_list);
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, en.name, -1, SQLITE_STATIC);
    al_xw_open(w, "PolicyNames");
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        al_xw_elem(w, "member", col(st, 0));
    al_db_release(c->db, st);
    if (s != SQLITE_DONE)
        return al_fail_internal(e, "ServiceFailure");
    al_xw_close(w, "PolicyNames");
    al_xw_elem(w, "IsTruncated", "false");
    return 0;
}

/* ---- attached managed policies of users and groups ---- */

static int attach_policy(al_ctx *c, const char *principal, const entity_kind *k, const al_form *f,
                         al_error *e)
{
    const char *name, *parn;
    entity en;
    char action[48];
    snprintf(action, sizeof action, "iam:Attach%sPolicy", k->Noun);
    int r, n = 0, x;
    if ((r = need_name(f, k, &name, e)) < 0 || (r = al_iam_need_policy_arn(f, &parn, e)) < 0 ||
        (r = entity_for(c, principal, k, name, action, &en, e)) < 0)
        return r;
    if ((x = al_iam_managed_exists(c, parn)) < 0 ||
        al_iam_count_rows(c, k->sql_attached_count, en.name, &n) < 0)
        return al_fail_internal(e, "ServiceFailure");
    if (x == 0)
        return al_fail(e, 404, "NoSuchEntity", "Policy %s does not exist or is not attachable.",
                       parn);
    sqlite3_stmt *st = al_db_prepare(c->db, k->sql_attached_has);
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, en.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, parn, -1, SQLITE_STATIC);
    bool have = al_iam_step_done(c, st) == SQLITE_ROW;
    /* re-attaching an attached policy is not a new attachment */
    if (!have && n >= AL_ENTITY_MANAGED_MAX)
        return al_fail(e, 409, "LimitExceeded", "Cannot exceed quota for %s: %d", k->managed_quota,
                       AL_ENTITY_MANAGED_MAX);
    return al_iam_exec_write(c, k->sql_attach, (const char *const[]){en.name, parn}, 2, e);
}

static int detach_policy(al_ctx *c, const char *principal, const entity_kind *k, const al_form *f,
                         al_error *e)
{
    const char *name, *parn;
    entity en;
    char action[48];
    snprintf(action, sizeof action, "iam:Detach%sPolicy", k->Noun);
    int r;
    if ((r = need_name(f, k, &name, e)) < 0 || (r = al_iam_need_policy_arn(f, &parn, e)) < 0 ||
        (r = entity_for(c, principal, k, name, action, &en, e)) < 0 ||
        (r = al_iam_exec_write(c, k->sql_detach, (const char *const[]){en.name, parn}, 2, e)) < 0)
        return r;
    return sqlite3_changes(al_db_handle(c->db))
               ? 0
               : al_fail(e, 404, "NoSuchEntity", "Policy %s was not found.", parn);
}

static int list_attached(al_ctx *c, const char *principal, const entity_kind *k, const al_form *f,
                         al_xw *w, al_error *e)
{
    const char *name;
    entity en;
    char action[48];
    snprintf(action, sizeof action, "iam:ListAttached%sPolicies", k->Noun);
    int r;
    if ((r = need_name(f, k, &name, e)) < 0 ||
        (r = entity_for(c, principal, k, name, action, &en, e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, k->sql_attached_list);
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, en.name, -1, SQLITE_STATIC);
    al_xw_open(w, "AttachedPolicies");
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        al_xw_open(w, "member");
        al_xw_elem(w, "PolicyName", al_iam_arn_last(col(st, 0)));
        al_xw_elem(w, "PolicyArn", col(st, 0));
        al_xw_close(w, "member");
    }
    al_db_release(c->db, st);
    if (s != SQLITE_DONE)
        return al_fail_internal(e, "ServiceFailure");
    al_xw_close(w, "AttachedPolicies");
    al_xw_elem(w, "IsTruncated", "false");
    return 0;
}

/* The fourteen policy actions, one line each: users, then groups. */
#define ENTITY_OPS(K, k)                                                                           \
    static int op_put_##k##_policy(al_ctx *c, const char *p, const al_form *f, al_xw *w,           \
                                   al_error *e)                                                    \
    {                                                                                              \
        (void)w;                                                                                   \
        return put_policy(c, p, &K, f, e);                                                         \
    }                                                                                              \
    static int op_get_##k##_policy(al_ctx *c, const char *p, const al_form *f, al_xw *w,           \
                                   al_error *e)                                                    \
    {                                                                                              \
        return get_policy(c, p, &K, f, w, e);                                                      \
    }                                                                                              \
    static int op_delete_##k##_policy(al_ctx *c, const char *p, const al_form *f, al_xw *w,        \
                                      al_error *e)                                                 \
    {                                                                                              \
        (void)w;                                                                                   \
        return delete_policy(c, p, &K, f, e);                                                      \
    }                                                                                              \
    static int op_list_##k##_policies(al_ctx *c, const char *p, const al_form *f, al_xw *w,        \
                                      al_error *e)                                                 \
    {                                                                                              \
        return list_policies(c, p, &K, f, w, e);                                                   \
    }                                                                                              \
    static int op_attach_##k##_policy(al_ctx *c, const char *p, const al_form *f, al_xw *w,        \
                                      al_error *e)                                                 \
    {                                                                                              \
        (void)w;                                                                                   \
        return attach_policy(c, p, &K, f, e);                                                      \
    }                                                                                              \
    static int op_detach_##k##_policy(al_ctx *c, const char *p, const al_form *f, al_xw *w,        \
                                      al_error *e)                                                 \
    {                                                                                              \
        (void)w;                                                                                   \
        return detach_policy(c, p, &K, f, e);                                                      \
    }                                                                                              \
    static int op_list_attached_##k##_policies(al_ctx *c, const char *p, const al_form *f,         \
                                               al_xw *w, al_error *e)                              \
    {                                                                                              \
        return list_attached(c, p, &K, f, w, e);                                                   \
    }

ENTITY_OPS(USER, user)
ENTITY_OPS(GROUP, group)

/* ---- groups ---- */

static int op_create_group(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                           al_error *e)
{
    return create_entity(c, principal, &GROUP, f, w, e);
}

static int op_get_group(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    const char *name;
    entity en;
    page p;
    int r;
    if ((r = need_name(f, &GROUP, &name, e)) < 0 || (r = read_page(f, &p, e)) < 0 ||
        (r = entity_for(c, principal, &GROUP, name, "iam:GetGroup", &en, e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT u.name, u.user_id, u.path, u.created FROM iam_user u JOIN iam_group_member"
               " m ON m.user = u.name WHERE m.grp = ?1 AND u.name > ?2 ORDER BY u.name LIMIT ?3");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, en.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p.marker ? p.marker : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, p.max + 1);
    entity_elem(c, &GROUP, &en, w);
    return list_entities(c, &USER, st, &p, "Users", w, e);
}

static int op_delete_group(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                           al_error *e)
{
    (void)w;
    static const struct {
        const char *sql, *msg;
    } checks[] = {
        {"SELECT count(*) FROM iam_group_member WHERE grp=?",
         "Cannot delete entity, must remove users from group first."},
        {"SELECT count(*) FROM iam_group_policy WHERE grp=?",
         "Cannot delete entity, must delete policies first."},
        {"SELECT count(*) FROM iam_group_attached WHERE grp=?",
         "Cannot delete entity, must detach all policies first."},
    };
    const char *name;
    entity en;
    int r;
    if ((r = need_name(f, &GROUP, &name, e)) < 0 ||
        (r = entity_for(c, principal, &GROUP, name, "iam:DeleteGroup", &en, e)) < 0)
        return r;
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        int n = 0;
        if (al_iam_count_rows(c, checks[i].sql, en.name, &n) < 0)
            return al_fail_internal(e, "ServiceFailure");
        if (n)
            return al_fail(e, 409, "DeleteConflict", "%s", checks[i].msg);
    }
    return al_iam_exec_write(c, "DELETE FROM iam_group WHERE name=?",
                             (const char *const[]){en.name}, 1, e);
}

static int op_list_groups(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    const char *prefix;
    page p;
    int r;
    if ((r = path_prefix(f, &prefix, e)) < 0 || (r = read_page(f, &p, e)) < 0 ||
        (r = al_authorize(c, principal, "iam:ListGroups", "*", e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT name, group_id, path, created FROM iam_group"
                                            " WHERE substr(path, 1, length(?1)) = ?1"
                                            " AND name > ?2 ORDER BY name LIMIT ?3");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p.marker ? p.marker : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, p.max + 1);
    return list_entities(c, &GROUP, st, &p, "Groups", w, e);
}

/* The group (authorised for action) and the user of a membership call. */
static int membership(al_ctx *c, const char *principal, const al_form *f, const char *action,
                      entity *grp, entity *user, al_error *e)
{
    const char *gname, *uname;
    int r;
    if ((r = need_name(f, &GROUP, &gname, e)) < 0 || (r = need_name(f, &USER, &uname, e)) < 0 ||
        (r = entity_for(c, principal, &GROUP, gname, action, grp, e)) < 0)
        return r;
    r = entity_get(c, &USER, uname, user);
    if (r == -ENOENT)
        return no_entity(e, &USER, uname);
    return r < 0 ? al_fail_internal(e, "ServiceFailure") : 0;
}

static int op_add_user_to_group(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                al_error *e)
{
    (void)w;
    entity grp, user;
    int r, n = 0;
    if ((r = membership(c, principal, f, "iam:AddUserToGroup", &grp, &user, e)) < 0)
        return r;
    if (al_iam_count_rows(c, "SELECT count(*) FROM iam_group_member WHERE user=?", user.name, &n) <
        0)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT 1 FROM iam_group_member WHERE grp=? AND user=?");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, grp.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user.name, -1, SQLITE_STATIC);
    bool member = al_iam_step_done(c, st) == SQLITE_ROW;
    if (!member && n >= AL_USER_GROUPS_MAX)
        return al_fail(e, 409, "LimitExceeded",
                       "Cannot exceed quota for GroupsPerUser: " STR(AL_USER_GROUPS_MAX));
    return al_iam_exec_write(c, "INSERT OR IGNORE INTO iam_group_member(grp, user) VALUES (?,?)",
                             (const char *const[]){grp.name, user.name}, 2, e);
}

static int op_remove_user_from_group(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                     al_error *e)
{
    (void)w;
    entity grp, user;
    int r;
    if ((r = membership(c, principal, f, "iam:RemoveUserFromGroup", &grp, &user, e)) < 0 ||
        (r = al_iam_exec_write(c, "DELETE FROM iam_group_member WHERE grp=? AND user=?",
                               (const char *const[]){grp.name, user.name}, 2, e)) < 0)
        return r;
    /* AWS's wording when the user is not a member */
    return sqlite3_changes(al_db_handle(c->db))
               ? 0
               : al_fail(e, 404, "NoSuchEntity", "The user with name %s cannot be found.",
                         user.name);
}

static int op_list_groups_for_user(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                   al_error *e)
{
    const char *name;
    entity en;
    page p;
    int r;
    if ((r = need_name(f, &USER, &name, e)) < 0 || (r = read_page(f, &p, e)) < 0 ||
        (r = entity_for(c, principal, &USER, name, "iam:ListGroupsForUser", &en, e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT g.name, g.group_id, g.path, g.created FROM iam_group g JOIN"
               " iam_group_member m ON m.grp = g.name WHERE m.user = ?1 AND g.name > ?2"
               " ORDER BY g.name LIMIT ?3");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, en.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p.marker ? p.marker : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, p.max + 1);
    return list_entities(c, &GROUP, st, &p, "Groups", w, e);
}

const al_qop al_iam_user_qops[] = {
    {"CreateUser", op_create_user, true},
    {"GetUser", op_get_user, true},
    {"DeleteUser", op_delete_user, false},
    {"ListUsers", op_list_users, true},
    {"CreateAccessKey", op_create_access_key, true},
    {"DeleteAccessKey", op_delete_access_key, false},
    {"UpdateAccessKey", op_update_access_key, false},
    {"ListAccessKeys", op_list_access_keys, true},
    {"PutUserPolicy", op_put_user_policy, false},
    {"GetUserPolicy", op_get_user_policy, true},
    {"DeleteUserPolicy", op_delete_user_policy, false},
    {"ListUserPolicies", op_list_user_policies, true},
    {"AttachUserPolicy", op_attach_user_policy, false},
    {"DetachUserPolicy", op_detach_user_policy, false},
    {"ListAttachedUserPolicies", op_list_attached_user_policies, true},
    {"CreateGroup", op_create_group, true},
    {"GetGroup", op_get_group, true},
    {"DeleteGroup", op_delete_group, false},
    {"ListGroups", op_list_groups, true},
    {"AddUserToGroup", op_add_user_to_group, false},
    {"RemoveUserFromGroup", op_remove_user_from_group, false},
    {"ListGroupsForUser", op_list_groups_for_user, true},
    {"PutGroupPolicy", op_put_group_policy, false},
    {"GetGroupPolicy", op_get_group_policy, true},
    {"DeleteGroupPolicy", op_delete_group_policy, false},
    {"ListGroupPolicies", op_list_group_policies, true},
    {"AttachGroupPolicy", op_attach_group_policy, false},
    {"DetachGroupPolicy", op_detach_group_policy, false},
    {"ListAttachedGroupPolicies", op_list_attached_group_policies, true},
    {NULL, NULL, false},
};

/* ---- compiled policies for authorisation ---- */

/* Adds the inline documents (sql: name, document of one owner) and the
 * attached managed policies (sql: policy_arn) of owner to p. */
static int add_owner_policies(al_ctx *c, const char *inline_sql, const char *attached_sql,
                              const char *owner, al_iam_policies *p)
{
    sqlite3_stmt *st = al_db_prepare(c->db, inline_sql);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    int r = 0, s;
    while (r == 0 && (s = sqlite3_step(st)) == SQLITE_ROW)
        r = al_iam_add_identity(p, col(st, 1), col(st, 0));
    al_db_release(c->db, st);
    if (r < 0 || s != SQLITE_DONE)
        return r < 0 ? r : -EIO;
    if (!(st = al_db_prepare(c->db, attached_sql)))
        return -EIO;
    sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
    while (r == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        char *doc = NULL;
        int m = al_iam_managed_doc(c, col(st, 0), &doc);
        if (m == 0)
            r = al_iam_add_identity(p, doc, al_iam_arn_last(col(st, 0)));
        else if (m != -ENOENT)
            r = m;
        es_free(doc);
    }
    al_db_release(c->db, st);
    return r < 0 ? r : s == SQLITE_DONE ? 0 : -EIO;
}

/* Groups are read into a list first: the statement that lists them must
 * not stay open while each group's own statements run. */
static int add_group_policies(al_ctx *c, const char *user, al_iam_policies *p)
{
    char groups[AL_USER_GROUPS_MAX][AL_GROUP_NAME_MAX + 1];
    size_t n = 0;
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT grp FROM iam_group_member WHERE user=? ORDER BY grp");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW && n < AL_USER_GROUPS_MAX)
        snprintf(groups[n++], sizeof groups[0], "%s", col(st, 0));
    al_db_release(c->db, st);
    if (s != SQLITE_DONE && s != SQLITE_ROW)
        return -EIO;
    int r = 0;
    for (size_t i = 0; r == 0 && i < n; i++)
        r = add_owner_policies(c, "SELECT name, document FROM iam_group_policy WHERE grp=?",
                               "SELECT policy_arn FROM iam_group_attached WHERE grp=?", groups[i],
                               p);
    return r;
}

int al_iam_user_policies(al_ctx *c, const char *name, al_iam_policies *out)
{
    entity en;
    int r = entity_get(c, &USER, name, &en);
    if (r < 0)
        return r;
    al_iam_policies p = {0};
    r = add_owner_policies(c, "SELECT name, document FROM iam_user_policy WHERE user=?",
                           "SELECT policy_arn FROM iam_user_attached WHERE user=?", en.name, &p);
    if (r == 0)
        r = add_group_policies(c, en.name, &p);
    if (r < 0) {
        al_iam_policies_clear(&p);
        return r;
    }
    *out = p;
    return 0;
}
