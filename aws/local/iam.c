#include "aws/local/iam.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/local/internal.h"
#include "aws/local/iam_int.h"
#include "aws/local/qops.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/secure.h"

#define POLICY_ARN_MAX AL_IAM_POLICY_ARN_MAX
#define AWS_POLICY_PREFIX "arn:aws:iam::aws:policy"
/* Description of a role or a managed policy (IAM's limit), by API and in a role file. */
#define AL_IAM_DESCRIPTION_MAX 1000
/* Longest value quoted back in a ValidationError (names, paths; never documents). */
#define AL_IAM_ECHO_MAX 128
/* The trust policy rewritten with "Resource":"*" added to every statement: room for twice the
 * document as given, plus 4 KiB. */
#define AL_TRUST_REWRITE_MAX(doc_max) (2 * (doc_max) + 4096)
#define STR_(x) #x
#define STR(x) STR_(x) /* a limit's digits, for messages that are no format */

/* ---- AWS managed policies ---- */

typedef struct aws_policy {
    const char *arn;
    const char *name;
    const char *path;
    const char *id;
    const char *version;
    double created;
    const char *doc;
} aws_policy;

static const aws_policy aws_policies[] = {
    {"arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
     "AmazonECSTaskExecutionRolePolicy", "/service-role/", "ANPAJG4T4G4PV56DE72PY", "v1",
     1510858102.0, /* 2017-11-16T18:48:22Z */
     "{\n"
     "    \"Version\": \"2012-10-17\",\n"
     "    \"Statement\": [\n"
     "        {\n"
     "            \"Effect\": \"Allow\",\n"
     "            \"Action\": [\n"
     "                \"ecr:GetAuthorizationToken\",\n"
     "                \"ecr:BatchCheckLayerAvailability\",\n"
     "                \"ecr:GetDownloadUrlForLayer\",\n"
     "                \"ecr:BatchGetImage\",\n"
     "                \"logs:CreateLogStream\",\n"
     "                \"logs:PutLogEvents\"\n"
     "            ],\n"
     "            \"Resource\": \"*\"\n"
     "        }\n"
     "    ]\n"
     "}"},
};

static const aws_policy *find_aws_policy(const char *arn)
{
    for (size_t i = 0; i < sizeof aws_policies / sizeof aws_policies[0]; i++)
        if (strcmp(aws_policies[i].arn, arn) == 0)
            return &aws_policies[i];
    return NULL;
}

const char *al_iam_aws_policy(const char *arn)
{
    const aws_policy *p = arn ? find_aws_policy(arn) : NULL;
    return p ? p->doc : NULL;
}

/* ---- validation ---- */

bool al_iam_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n < 1 || n > max)
        return false;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("_+=,.@-", ch)))
            return false;
    }
    return true;
}

bool al_iam_path_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > AL_ROLE_PATH_MAX || s[0] != '/' || s[n - 1] != '/')
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return false;
    return true;
}

/* IAM's validation wording; the value is echoed only when it is short and
 * printable (names, paths - never documents). */
int al_iam_invalid(al_error *e, const char *field, const char *value, const char *constraint)
{
    bool echo = value && strlen(value) <= AL_IAM_ECHO_MAX;
    for (const char *p = value; echo && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '\'')
            echo = false;
    return al_fail(e, 400, "ValidationError",
                   "1 validation error detected: Value %s%s%s at '%s' failed to satisfy "
                   "constraint: %s",
                   value ? (echo ? "'" : "") : "null", value && echo ? value : "",
                   value ? (echo ? "'" : "(not shown)") : "", field, constraint);
}

int al_iam_need(const al_form *f, const char *key, const char *field, const char **out, al_error *e)
{
    *out = al_form_get(f, key);
    if (!*out)
        return al_iam_invalid(e, field, NULL, "Member must not be null");
    return 0;
}

#define NAME_RE AL_IAM_NAME_RE

static int need_role_name(const al_form *f, const char **out, al_error *e)
{
    int r = al_iam_need(f, "RoleName", "roleName", out, e);
    if (r == 0 && !al_iam_name_ok(*out, AL_ROLE_NAME_MAX))
        r = al_iam_invalid(e, "roleName", *out, NAME_RE " and length 1..64");
    return r;
}

int al_iam_need_policy_name(const al_form *f, const char **out, al_error *e)
{
    int r = al_iam_need(f, "PolicyName", "policyName", out, e);
    if (r == 0 && !al_iam_name_ok(*out, AL_POLICY_NAME_MAX))
        r = al_iam_invalid(e, "policyName", *out, NAME_RE " and length 1..128");
    return r;
}

int al_iam_opt_path(const al_form *f, const char **out, al_error *e)
{
    *out = al_form_get(f, "Path");
    if (!*out) {
        *out = "/";
        return 0;
    }
    if (!al_iam_path_ok(*out))
        return al_iam_invalid(e, "path", *out,
                              "Member must satisfy regular expression pattern: "
                              "(\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)");
    return 0;
}

/* Compiles a policy document of a kind, answering IAM's codes. */
int al_iam_check_policy(const char *doc, aw_policy_kind kind, const aw_policy_limits *lim,
                        const char *quota, al_error *e)
{
    char why[256] = "";
    aw_policy *p = NULL;
    int r = aw_policy_parse(doc, strlen(doc), kind, NULL, lim, &p, why, sizeof why);
    aw_policy_free(p);
    if (r == AW_POLICY_OK)
        return 0;
    if (r == AW_POLICY_E_TOO_BIG)
        return al_fail(e, 409, "LimitExceeded", "Cannot exceed quota for %s: %zu.", quota,
                       lim->max_bytes);
    if (r == AW_POLICY_E_NOMEM)
        return al_fail_internal(e, "ServiceFailure");
    return al_fail(e, 400, "MalformedPolicyDocument", "%s",
                   why[0] ? why : "Syntax errors in policy.");
}

/* Writes one statement with "Resource":"*" added: trust policies have no
 * Resource (IAM refuses one), the role itself is the resource. */
static int trust_statement(const es_json *st, es_jw *w)
{
    if (st->type != ES_JSON_OBJECT) {
        es_jw_value(w, st);
        return 0;
    }
    es_jw_obj(w);
    for (size_t i = 0; i < st->u.object.n; i++) {
        const char *k = st->u.object.keys[i];
        if (strcmp(k, "Resource") == 0 || strcmp(k, "NotResource") == 0)
            return -EINVAL;
        es_jw_key(w, k);
        es_jw_value(w, st->u.object.values[i]);
    }
    es_jw_kstr(w, "Resource", "*");
    es_jw_obj_end(w);
    return 0;
}

int al_iam_trust_compile(const char *doc, aw_policy **out, al_error *e)
{
    es_json *j = NULL;
    es_buf b;
    es_jw w;
    char why[128];
    int r;
    size_t len = strlen(doc);
    es_json_limits lim = es_json_default_limits;
    lim.max_bytes = aw_policy_resource_limits.max_raw_bytes;
    es_buf_init(&b, AL_TRUST_REWRITE_MAX(lim.max_bytes));
    int jr = len > lim.max_bytes ? ES_JSON_E_TOO_BIG
                                 : es_json_parse(doc, len, &lim, &j, why, sizeof why);
    if (jr == ES_JSON_E_NOMEM) {
        r = al_fail_internal(e, "ServiceFailure");
        goto out;
    }
    if (jr < 0 || j->type != ES_JSON_OBJECT) {
        /* let the policy parser word it */
        if (es_buf_append(&b, doc, len) < 0) {
            r = al_fail_internal(e, "ServiceFailure");
            goto out;
        }
        goto parse;
    }
    es_jw_init(&w, &b);
    es_jw_obj(&w);
    r = 0;
    for (size_t i = 0; i < j->u.object.n && r == 0; i++) {
        const char *k = j->u.object.keys[i];
        const es_json *v = j->u.object.values[i];
        es_jw_key(&w, k);
        if (strcmp(k, "Statement") != 0) {
            es_jw_value(&w, v);
        } else if (v->type == ES_JSON_ARRAY) {
            es_jw_arr(&w);
            for (size_t n = 0; n < v->u.array.n && r == 0; n++)
                r = trust_statement(v->u.array.items[n], &w);
            es_jw_arr_end(&w);
        } else {
            r = trust_statement(v, &w);
        }
    }
    es_jw_obj_end(&w);
    if (r < 0) {
        es_jw_finish(&w);
        r = al_fail(e, 400, "MalformedPolicyDocument", "Has prohibited field Resource");
        goto out;
    }
    if (es_jw_finish(&w) < 0) {
        r = al_fail_internal(e, "ServiceFailure");
        goto out;
    }
parse:;
    /* the size quota counts the document as given (before our Resource) */
    aw_policy_limits pl = aw_policy_resource_limits;
    pl.max_bytes = AL_TRUST_POLICY_MAX;
    aw_policy *p = NULL;
    int pr = aw_policy_parse(doc, len, AW_POLICY_RESOURCE, NULL, &pl, &p, NULL, 0);
    aw_policy_free(p);
    p = NULL;
    char msg[256] = "";
    if (pr != AW_POLICY_E_TOO_BIG) {
        pl.max_bytes = aw_policy_resource_limits.max_bytes;
        pr = aw_policy_parse(es_buf_cstr(&b), b.len, AW_POLICY_RESOURCE, "trust policy", &pl, &p,
                             msg, sizeof msg);
    }
    if (pr == AW_POLICY_OK) {
        *out = p;
        r = 0;
    } else if (pr == AW_POLICY_E_NOMEM) {
        r = al_fail_internal(e, "ServiceFailure");
    } else if (pr == AW_POLICY_E_TOO_BIG) {
        r = al_fail(e, 409, "LimitExceeded", "Cannot exceed quota for ACLSizePerRole: %d.",
                    AL_TRUST_POLICY_MAX);
    } else {
        r = al_fail(e, 400, "MalformedPolicyDocument", "%s",
                    msg[0] ? msg : "Syntax errors in policy.");
    }
out:
    es_json_free(j);
    es_buf_free(&b);
    return r;
}

static int check_trust(const char *doc, al_error *e)
{
    aw_policy *p = NULL;
    int r = al_iam_trust_compile(doc, &p, e);
    aw_policy_free(p);
    return r;
}

static int check_inline(const char *doc, al_error *e)
{
    return al_iam_check_policy(doc, AW_POLICY_IDENTITY, &aw_policy_inline_limits, "PolicySize", e);
}

static int check_managed(const char *doc, al_error *e)
{
    return al_iam_check_policy(doc, AW_POLICY_IDENTITY, &aw_policy_managed_limits, "PolicySize", e);
}

int al_iam_random_id(const char *prefix, char *out, size_t n)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint8_t rnd[17];
    if (n < 4 + sizeof rnd + 1 || es_random_bytes(rnd, sizeof rnd) < 0)
        return -EIO;
    memcpy(out, prefix, 4);
    for (size_t i = 0; i < sizeof rnd; i++)
        out[4 + i] = alpha[rnd[i] & 31];
    out[4 + sizeof rnd] = '\0';
    return 0;
}

static void role_arn(al_ctx *c, const char *path, const char *name, char *out, size_t n)
{
    snprintf(out, n, "arn:aws:iam::%s:role%s%s", c->account, path, name);
}

static void policy_arn(al_ctx *c, const char *path, const char *name, char *out, size_t n)
{
    snprintf(out, n, "arn:aws:iam::%s:policy%s%s", c->account, path, name);
}

const char *al_iam_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : NULL;
}

/* ---- roles ---- */

#define ROLE_COLS "name, role_id, path, trust, description, max_session, boundary, created, source"

static sqlite3_stmt *role_stmt(al_ctx *c, const char *name)
{
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT " ROLE_COLS " FROM iam_role WHERE name=?");
    if (st)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return st;
}

int al_iam_role_get(al_ctx *c, const char *name, al_iam_role *out)
{
    sqlite3_stmt *st = role_stmt(c, name);
    if (!st)
        return -EIO;
    int r = -ENOENT, s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", al_iam_col(st, 0));
        snprintf(out->role_id, sizeof out->role_id, "%s", al_iam_col(st, 1));
        snprintf(out->path, sizeof out->path, "%s", al_iam_col(st, 2));
        role_arn(c, out->path, out->name, out->arn, sizeof out->arn);
        out->max_session = sqlite3_column_int(st, 5);
        out->trust = es_strdup(al_iam_col(st, 3));
        r = out->trust ? 0 : -ENOMEM;
    } else if (s != SQLITE_DONE) {
        r = -EIO;
    }
    al_db_release(c->db, st);
    return r;
}

void al_iam_role_clear(al_iam_role *r)
{
    es_free(r->trust);
    r->trust = NULL;
}

static void role_xml(al_ctx *c, sqlite3_stmt *st, al_xw *w)
{
    char arn[AL_ROLE_ARN_MAX];
    role_arn(c, al_iam_col(st, 2), al_iam_col(st, 0), arn, sizeof arn);
    al_xw_elem(w, "Path", al_iam_col(st, 2));
    al_xw_elem(w, "RoleName", al_iam_col(st, 0));
    al_xw_elem(w, "RoleId", al_iam_col(st, 1));
    al_xw_elem(w, "Arn", arn);
    al_xw_elem_time(w, "CreateDate", sqlite3_column_double(st, 7));
    al_xw_elem_urlenc(w, "AssumeRolePolicyDocument", al_iam_col(st, 3));
    if (al_iam_col(st, 4))
        al_xw_elem(w, "Description", al_iam_col(st, 4));
    al_xw_elemf(w, "MaxSessionDuration", "%d", sqlite3_column_int(st, 5));
    if (al_iam_col(st, 6)) {
        al_xw_open(w, "PermissionsBoundary");
        al_xw_elem(w, "PermissionsBoundaryType", "PermissionsBoundaryPolicy");
        al_xw_elem(w, "PermissionsBoundaryArn", al_iam_col(st, 6));
        al_xw_close(w, "PermissionsBoundary");
    }
}

static int no_role(al_error *e, const char *name)
{
    return al_fail(e, 404, "NoSuchEntity", "The role with name %s cannot be found.", name);
}

/* Loads the role for a change: -ENOENT answers NoSuchEntity, a role from a
 * file answers UnmodifiableEntity. arn receives its ARN. */
static int role_for_change(al_ctx *c, const char *name, bool change, char *arn, size_t arnlen,
                           al_error *e)
{
    sqlite3_stmt *st = role_stmt(c, name);
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    int s = sqlite3_step(st), r = 0;
    if (s == SQLITE_ROW) {
        role_arn(c, al_iam_col(st, 2), al_iam_col(st, 0), arn, arnlen);
        if (change && al_iam_col(st, 8))
            r = al_fail(e, 400, "UnmodifiableEntity",
                        "Cannot perform the operation on role %s: it is declared in %s; edit that "
                        "file and reload the agent.",
                        name, al_iam_col(st, 8));
    } else if (s == SQLITE_DONE) {
        r = no_role(e, name);
    } else {
        r = al_fail_internal(e, "ServiceFailure");
    }
    al_db_release(c->db, st);
    return r;
}

/* role_for_change, then action authorised on the role's ARN. */
static int authorize_on_role(al_ctx *c, const char *principal, const char *name, bool change,
                             const char *action, al_error *e)
{
    char arn[AL_ROLE_ARN_MAX];
    int r = role_for_change(c, name, change, arn, sizeof arn, e);
    return r < 0 ? r : al_authorize(c, principal, action, arn, e);
}

int al_iam_step_done(al_ctx *c, sqlite3_stmt *st)
{
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    return s;
}

/* Runs the write sql with its n text parameters (a NULL one binds NULL):
 * 0, or ServiceFailure. */
int al_iam_exec_write(al_ctx *c, const char *sql, const char *const *args, int n, al_error *e)
{
    sqlite3_stmt *st = al_db_prepare(c->db, sql);
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    for (int i = 0; i < n; i++)
        sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_STATIC);
    return al_iam_step_done(c, st) == SQLITE_DONE ? 0 : al_fail_internal(e, "ServiceFailure");
}

/* Does a managed policy ARN exist (AWS managed or ours)? 1, 0, -EIO. */
int al_iam_managed_exists(al_ctx *c, const char *arn)
{
    if (find_aws_policy(arn))
        return 1;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT 1 FROM iam_policy WHERE arn=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    al_db_release(c->db, st);
    return s == SQLITE_ROW ? 1 : s == SQLITE_DONE ? 0 : -EIO;
}

typedef struct role_spec {
    const char *name, *path, *trust, *description, *boundary, *source;
    int64_t max_session;
    const char *role_id; /* NULL: a fresh one */
} role_spec;

static int role_insert(al_ctx *c, const role_spec *rs, al_error *e)
{
    char id[32];
    if (rs->role_id)
        snprintf(id, sizeof id, "%s", rs->role_id);
    else if (al_iam_random_id("AROA", id, sizeof id) < 0)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_stmt *st =
        al_db_prepare(c->db, "INSERT INTO iam_role(" ROLE_COLS ") VALUES (?,?,?,?,?,?,?,?,?)");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, rs->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, rs->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, rs->trust, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, rs->description, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, rs->max_session);
    sqlite3_bind_text(st, 7, rs->boundary, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 8, al_now(c));
    sqlite3_bind_text(st, 9, rs->source, -1, SQLITE_STATIC);
    int s = al_iam_step_done(c, st);
    if (s == SQLITE_CONSTRAINT_PRIMARYKEY)
        return al_fail(e, 409, "EntityAlreadyExists", "Role with name %s already exists.",
                       rs->name);
    return s == SQLITE_DONE ? 0 : al_fail_internal(e, "ServiceFailure");
}

/* The whole number form parameter key in [lo, hi] (dflt when absent), with
 * IAM's range wording naming field. */
int al_iam_opt_int_in_range(const al_form *f, const char *key, const char *field, long long lo,
                            long long hi, long long dflt, int64_t *out, al_error *e)
{
    const char *v = al_form_get(f, key);
    *out = dflt;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || !*v || *end || x < lo || x > hi) {
        char constraint[128];
        snprintf(constraint, sizeof constraint,
                 "Member must have value less than or equal to %lld and greater than or equal "
                 "to %lld",
                 hi, lo);
        return al_iam_invalid(e, field, v, constraint);
    }
    *out = x;
    return 0;
}

static int check_boundary(al_ctx *c, const char *arn, al_error *e)
{
    int x = al_iam_managed_exists(c, arn);
    if (x < 0)
        return al_fail_internal(e, "ServiceFailure");
    if (x == 0)
        return al_fail(e, 400, "InvalidInput", "ARN %s is not valid.", arn);
    return 0;
}

static int op_create_role(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    role_spec rs = {0};
    char arn[AL_ROLE_ARN_MAX];
    int r;
    if ((r = need_role_name(f, &rs.name, e)) < 0 || (r = al_iam_opt_path(f, &rs.path, e)) < 0 ||
        (r = al_iam_need(f, "AssumeRolePolicyDocument", "assumeRolePolicyDocument", &rs.trust, e)) <
            0 ||
        (r = al_iam_opt_int_in_range(f, "MaxSessionDuration", "maxSessionDuration", 3600, 43200,
                                     3600, &rs.max_session, e)) < 0)
        return r;
    rs.description = al_form_get(f, "Description");
    if (rs.description && strlen(rs.description) > AL_IAM_DESCRIPTION_MAX)
        return al_iam_invalid(
            e, "description", NULL,
            "Member must have length less than or equal to " STR(AL_IAM_DESCRIPTION_MAX));
    rs.boundary = al_form_get(f, "PermissionsBoundary");
    role_arn(c, rs.path, rs.name, arn, sizeof arn);
    if ((r = al_authorize(c, principal, "iam:CreateRole", arn, e)) < 0 ||
        (r = check_trust(rs.trust, e)) < 0 ||
        (rs.boundary && (r = check_boundary(c, rs.boundary, e)) < 0) ||
        (r = role_insert(c, &rs, e)) < 0)
        return r;
    sqlite3_stmt *st = role_stmt(c, rs.name);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        al_db_release(c->db, st);
        return al_fail_internal(e, "ServiceFailure");
    }
    al_xw_open(w, "Role");
    role_xml(c, st, w);
    al_xw_close(w, "Role");
    al_db_release(c->db, st);
    return 0;
}

static int op_get_role(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    const char *name;
    int r;
    if ((r = need_role_name(f, &name, e)) < 0 ||
        (r = authorize_on_role(c, principal, name, false, "iam:GetRole", e)) < 0)
        return r;
    sqlite3_stmt *st = role_stmt(c, name);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        al_db_release(c->db, st);
        return al_fail_internal(e, "ServiceFailure");
    }
    al_xw_open(w, "Role");
    role_xml(c, st, w);
    al_xw_open(w, "RoleLastUsed");
    al_xw_close(w, "RoleLastUsed");
    al_xw_close(w, "Role");
    al_db_release(c->db, st);
    return 0;
}

int al_iam_count_rows(al_ctx *c, const char *sql, const char *arg, int *out)
{
    sqlite3_stmt *st = al_db_prepare(c->db, sql);
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    int r = -EIO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        r = 0;
    }
    al_db_release(c->db, st);
    return r;
}

static int op_delete_role(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    (void)w;
    const char *name;
    int r, n_inline = 0, n_attached = 0;
    if ((r = need_role_name(f, &name, e)) < 0 ||
        (r = authorize_on_role(c, principal, name, true, "iam:DeleteRole", e)) < 0)
        return r;
    if (al_iam_count_rows(c, "SELECT count(*) FROM iam_role_policy WHERE role=?", name, &n_inline) <
            0 ||
        al_iam_count_rows(c, "SELECT count(*) FROM iam_role_attached WHERE role=?", name,
                          &n_attached) < 0)
        return al_fail_internal(e, "ServiceFailure");
    if (n_inline)
        return al_fail(e, 409, "DeleteConflict",
                       "Cannot delete entity, must delete policies first.");
    if (n_attached)
        return al_fail(e, 409, "DeleteConflict",
                       "Cannot delete entity, must detach all policies first.");
    return al_iam_exec_write(c, "DELETE FROM iam_role WHERE name=?", (const char *const[]){name}, 1,
                             e);
}

static int op_list_roles(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    int64_t max;
    int r;
    const char *prefix = al_form_get(f, "PathPrefix");
    const char *marker = al_form_get(f, "Marker");
    if ((r = al_iam_opt_int_in_range(f, "MaxItems", "maxItems", 1, 1000, 100, &max, e)) < 0 ||
        (r = al_authorize(c, principal, "iam:ListRoles", "*", e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT " ROLE_COLS " FROM iam_role"
                                            " WHERE substr(path, 1, length(?1)) = ?1"
                                            " AND name > ?2 ORDER BY name LIMIT ?3");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, prefix ? prefix : "/", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, marker ? marker : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, max + 1);
    al_xw_open(w, "Roles");
    int64_t n = 0;
    char last[AL_ROLE_NAME_MAX + 1] = "";
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW && n < max) {
        al_xw_open(w, "member");
        role_xml(c, st, w);
        al_xw_close(w, "member");
        snprintf(last, sizeof last, "%s", al_iam_col(st, 0));
        n++;
    }
    bool more = s == SQLITE_ROW;
    al_db_release(c->db, st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return al_fail_internal(e, "ServiceFailure");
    al_xw_close(w, "Roles");
    al_xw_elem(w, "IsTruncated", more ? "true" : "false");
    if (more)
        al_xw_elem(w, "Marker", last);
    return 0;
}

static int op_update_trust(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                           al_error *e)
{
    (void)w;
    const char *name, *doc;
    int r;
    if ((r = need_role_name(f, &name, e)) < 0 ||
        (r = al_iam_need(f, "PolicyDocument", "policyDocument", &doc, e)) < 0 ||
        (r = authorize_on_role(c, principal, name, true, "iam:UpdateAssumeRolePolicy", e)) < 0 ||
        (r = check_trust(doc, e)) < 0)
        return r;
    return al_iam_exec_write(c, "UPDATE iam_role SET trust=? WHERE name=?",
                             (const char *const[]){doc, name}, 2, e);
}

/* ---- inline policies ---- */

static int inline_put(al_ctx *c, const char *role, const char *name, const char *doc, al_error *e)
{
    return al_iam_exec_write(
        c, "INSERT OR REPLACE INTO iam_role_policy(role, name, document) VALUES (?,?,?)",
        (const char *const[]){role, name, doc}, 3, e);
}

static int op_put_role_policy(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                              al_error *e)
{
    (void)w;
    const char *role, *name, *doc;
    int r;
    if ((r = need_role_name(f, &role, e)) < 0 || (r = al_iam_need_policy_name(f, &name, e)) < 0 ||
        (r = al_iam_need(f, "PolicyDocument", "policyDocument", &doc, e)) < 0 ||
        (r = authorize_on_role(c, principal, role, true, "iam:PutRolePolicy", e)) < 0 ||
        (r = check_inline(doc, e)) < 0)
        return r;
    return inline_put(c, role, name, doc, e);
}

static int op_get_role_policy(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                              al_error *e)
{
    const char *role, *name;
    int r;
    if ((r = need_role_name(f, &role, e)) < 0 || (r = al_iam_need_policy_name(f, &name, e)) < 0 ||
        (r = authorize_on_role(c, principal, role, false, "iam:GetRolePolicy", e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT p.name, p.document, r.name FROM iam_role_policy p JOIN iam_role r"
               " ON r.name = p.role WHERE p.role=? AND p.name=?");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        al_xw_elem(w, "RoleName", al_iam_col(st, 2));
        al_xw_elem(w, "PolicyName", al_iam_col(st, 0));
        al_xw_elem_urlenc(w, "PolicyDocument", al_iam_col(st, 1));
        r = 0;
    } else if (s == SQLITE_DONE) {
        r = al_fail(e, 404, "NoSuchEntity", "The role policy with name %s cannot be found.", name);
    } else {
        r = al_fail_internal(e, "ServiceFailure");
    }
    al_db_release(c->db, st);
    return r;
}

static int op_delete_role_policy(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                 al_error *e)
{
    (void)w;
    const char *role, *name;
    int r;
    if ((r = need_role_name(f, &role, e)) < 0 || (r = al_iam_need_policy_name(f, &name, e)) < 0 ||
        (r = authorize_on_role(c, principal, role, true, "iam:DeleteRolePolicy", e)) < 0)
        return r;
    if ((r = al_iam_exec_write(c, "DELETE FROM iam_role_policy WHERE role=? AND name=?",
                               (const char *const[]){role, name}, 2, e)) < 0)
        return r;
    if (sqlite3_changes(al_db_handle(c->db)) == 0)
        return al_fail(e, 404, "NoSuchEntity", "The role policy with name %s cannot be found.",
                       name);
    return 0;
}

static int op_list_role_policies(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                 al_error *e)
{
    const char *role;
    int r;
    if ((r = need_role_name(f, &role, e)) < 0 ||
        (r = authorize_on_role(c, principal, role, false, "iam:ListRolePolicies", e)) < 0)
        return r;
    sqlite3_stmt *st =
        al_db_prepare(c->db, "SELECT name FROM iam_role_policy WHERE role=? ORDER BY name");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
    al_xw_open(w, "PolicyNames");
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        al_xw_elem(w, "member", al_iam_col(st, 0));
    al_db_release(c->db, st);
    if (s != SQLITE_DONE)
        return al_fail_internal(e, "ServiceFailure");
    al_xw_close(w, "PolicyNames");
    al_xw_elem(w, "IsTruncated", "false");
    return 0;
}

/* ---- attached managed policies ---- */

int al_iam_need_policy_arn(const al_form *f, const char **out, al_error *e)
{
    int r = al_iam_need(f, "PolicyArn", "policyArn", out, e);
    if (r == 0 &&
        (strncmp(*out, "arn:", 4) != 0 || strlen(*out) < 20 || strlen(*out) >= POLICY_ARN_MAX))
        r = al_iam_invalid(e, "policyArn", *out,
                           "Member must have length greater than or equal to 20");
    return r;
}

static int attach(al_ctx *c, const char *role, const char *parn, al_error *e)
{
    int x = al_iam_managed_exists(c, parn), n = 0;
    if (x < 0)
        return al_fail_internal(e, "ServiceFailure");
    if (x == 0)
        return al_fail(e, 404, "NoSuchEntity", "Policy %s does not exist or is not attachable.",
                       parn);
    if (al_iam_count_rows(c, "SELECT count(*) FROM iam_role_attached WHERE role=?", role, &n) < 0)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_stmt *st = al_db_prepare(
        c->db, "INSERT OR IGNORE INTO iam_role_attached(role, policy_arn) VALUES (?,?)");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, parn, -1, SQLITE_STATIC);
    if (n >= AL_ROLE_MANAGED_MAX) {
        /* re-attaching an attached policy is not a new attachment */
        int have = 0;
        sqlite3_stmt *q = al_db_prepare(
            c->db, "SELECT count(*) FROM iam_role_attached WHERE role=? AND policy_arn=?");
        if (q) {
            sqlite3_bind_text(q, 1, role, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, parn, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW)
                have = sqlite3_column_int(q, 0);
            al_db_release(c->db, q);
        }
        if (!have) {
            al_db_release(c->db, st);
            return al_fail(e, 409, "LimitExceeded", "Cannot exceed quota for PoliciesPerRole: %d",
                           AL_ROLE_MANAGED_MAX);
        }
    }
    return al_iam_step_done(c, st) == SQLITE_DONE ? 0 : al_fail_internal(e, "ServiceFailure");
}

static int op_attach_role_policy(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                 al_error *e)
{
    (void)w;
    const char *role, *parn;
    int r;
    if ((r = need_role_name(f, &role, e)) < 0 || (r = al_iam_need_policy_arn(f, &parn, e)) < 0 ||
        (r = authorize_on_role(c, principal, role, true, "iam:AttachRolePolicy", e)) < 0)
        return r;
    return attach(c, role, parn, e);
}

static int op_detach_role_policy(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                 al_error *e)
{
    (void)w;
    const char *role, *parn;
    int r;
    if ((r = need_role_name(f, &role, e)) < 0 || (r = al_iam_need_policy_arn(f, &parn, e)) < 0 ||
        (r = authorize_on_role(c, principal, role, true, "iam:DetachRolePolicy", e)) < 0)
        return r;
    if ((r = al_iam_exec_write(c, "DELETE FROM iam_role_attached WHERE role=? AND policy_arn=?",
                               (const char *const[]){role, parn}, 2, e)) < 0)
        return r;
    if (sqlite3_changes(al_db_handle(c->db)) == 0)
        return al_fail(e, 404, "NoSuchEntity", "Policy %s was not found.", parn);
    return 0;
}

const char *al_iam_arn_last(const char *arn)
{
    const char *s = strrchr(arn, '/');
    return s ? s + 1 : arn;
}

static int op_list_attached(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                            al_error *e)
{
    const char *role;
    int r;
    if ((r = need_role_name(f, &role, e)) < 0 ||
        (r = authorize_on_role(c, principal, role, false, "iam:ListAttachedRolePolicies", e)) < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT policy_arn FROM iam_role_attached WHERE role=? ORDER BY policy_arn");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
    al_xw_open(w, "AttachedPolicies");
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        al_xw_open(w, "member");
        al_xw_elem(w, "PolicyName", al_iam_arn_last(al_iam_col(st, 0)));
        al_xw_elem(w, "PolicyArn", al_iam_col(st, 0));
        al_xw_close(w, "member");
    }
    al_db_release(c->db, st);
    if (s != SQLITE_DONE)
        return al_fail_internal(e, "ServiceFailure");
    al_xw_close(w, "AttachedPolicies");
    al_xw_elem(w, "IsTruncated", "false");
    return 0;
}

static int set_boundary(al_ctx *c, const char *role, const char *parn, al_error *e)
{
    return al_iam_exec_write(c, "UPDATE iam_role SET boundary=? WHERE name=?",
                             (const char *const[]){parn, role}, 2, e);
}

static int op_put_boundary(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                           al_error *e)
{
    (void)w;
    const char *role, *parn;
    int r;
    if ((r = need_role_name(f, &role, e)) < 0 ||
        (r = al_iam_need(f, "PermissionsBoundary", "permissionsBoundary", &parn, e)) < 0 ||
        (r = authorize_on_role(c, principal, role, true, "iam:PutRolePermissionsBoundary", e)) <
            0 ||
        (r = check_boundary(c, parn, e)) < 0)
        return r;
    return set_boundary(c, role, parn, e);
}

static int op_delete_boundary(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                              al_error *e)
{
    (void)w;
    const char *role;
    int r;
    if ((r = need_role_name(f, &role, e)) < 0 ||
        (r = authorize_on_role(c, principal, role, true, "iam:DeleteRolePermissionsBoundary", e)) <
            0)
        return r;
    return set_boundary(c, role, NULL, e);
}

/* ---- customer managed policies ---- */

#define POLICY_COLS "arn, name, policy_id, path, description, document, created"

static int attachments(al_ctx *c, const char *arn, int *n)
{
    /* roles, users and groups it is attached to: DeletePolicy refuses any */
    return al_iam_count_rows(c,
                             "SELECT (SELECT count(*) FROM iam_role_attached WHERE policy_arn=?1)"
                             " + (SELECT count(*) FROM iam_user_attached WHERE policy_arn=?1)"
                             " + (SELECT count(*) FROM iam_group_attached WHERE policy_arn=?1)",
                             arn, n);
}

static void policy_xml(al_xw *w, const char *arn, const char *name, const char *id,
                       const char *path, const char *description, double created, int attached,
                       const char *version)
{
    al_xw_open(w, "Policy");
    al_xw_elem(w, "PolicyName", name);
    al_xw_elem(w, "PolicyId", id);
    al_xw_elem(w, "Arn", arn);
    al_xw_elem(w, "Path", path);
    al_xw_elem(w, "DefaultVersionId", version);
    al_xw_elemf(w, "AttachmentCount", "%d", attached);
    al_xw_elem(w, "PermissionsBoundaryUsageCount", "0");
    al_xw_elem(w, "IsAttachable", "true");
    if (description)
        al_xw_elem(w, "Description", description);
    al_xw_elem_time(w, "CreateDate", created);
    al_xw_elem_time(w, "UpdateDate", created);
    al_xw_close(w, "Policy");
}

static int op_create_policy(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                            al_error *e)
{
    const char *name, *path, *doc, *desc = al_form_get(f, "Description");
    char arn[POLICY_ARN_MAX], id[32];
    int r;
    if ((r = al_iam_need_policy_name(f, &name, e)) < 0 || (r = al_iam_opt_path(f, &path, e)) < 0 ||
        (r = al_iam_need(f, "PolicyDocument", "policyDocument", &doc, e)) < 0)
        return r;
    if (desc && strlen(desc) > AL_IAM_DESCRIPTION_MAX)
        return al_iam_invalid(
            e, "description", NULL,
            "Member must have length less than or equal to " STR(AL_IAM_DESCRIPTION_MAX));
    policy_arn(c, path, name, arn, sizeof arn);
    if ((r = al_authorize(c, principal, "iam:CreatePolicy", arn, e)) < 0 ||
        (r = check_managed(doc, e)) < 0)
        return r;
    if (al_iam_random_id("ANPA", id, sizeof id) < 0)
        return al_fail_internal(e, "ServiceFailure");
    double now = al_now(c);
    sqlite3_stmt *st =
        al_db_prepare(c->db, "INSERT INTO iam_policy(" POLICY_COLS ") VALUES (?,?,?,?,?,?,?)");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, desc, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, doc, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 7, now);
    int s = al_iam_step_done(c, st);
    if ((s & 0xff) == SQLITE_CONSTRAINT)
        return al_fail(e, 409, "EntityAlreadyExists",
                       "A policy called %s already exists. Duplicate names are not allowed.", name);
    if (s != SQLITE_DONE)
        return al_fail_internal(e, "ServiceFailure");
    policy_xml(w, arn, name, id, path, desc, now, 0, "v1");
    return 0;
}

/* Looks a managed policy up; calls fn with its fields. */
typedef struct policy_row {
    char arn[POLICY_ARN_MAX];
    char name[AL_POLICY_NAME_MAX + 1];
    char id[32];
    char path[AL_ROLE_PATH_MAX + 1];
    char *description;
    char *document;
    const char *version;
    double created;
    bool aws;
} policy_row;

static void policy_row_clear(policy_row *p)
{
    es_free(p->description);
    es_free(p->document);
    p->description = p->document = NULL;
}

static int policy_load(al_ctx *c, const char *arn, policy_row *p, al_error *e)
{
    memset(p, 0, sizeof *p);
    const aws_policy *ap = find_aws_policy(arn);
    if (ap) {
        snprintf(p->arn, sizeof p->arn, "%s", ap->arn);
        snprintf(p->name, sizeof p->name, "%s", ap->name);
        snprintf(p->id, sizeof p->id, "%s", ap->id);
        snprintf(p->path, sizeof p->path, "%s", ap->path);
        p->document = es_strdup(ap->doc);
        p->version = ap->version;
        p->created = ap->created;
        p->aws = true;
        return p->document ? 0 : al_fail_internal(e, "ServiceFailure");
    }
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT " POLICY_COLS " FROM iam_policy WHERE arn=?");
    if (!st)
        return al_fail_internal(e, "ServiceFailure");
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    int s = sqlite3_step(st), r;
    if (s == SQLITE_ROW) {
        snprintf(p->arn, sizeof p->arn, "%s", al_iam_col(st, 0));
        snprintf(p->name, sizeof p->name, "%s", al_iam_col(st, 1));
        snprintf(p->id, sizeof p->id, "%s", al_iam_col(st, 2));
        snprintf(p->path, sizeof p->path, "%s", al_iam_col(st, 3));
        p->description = al_iam_col(st, 4) ? es_strdup(al_iam_col(st, 4)) : NULL;
        p->document = es_strdup(al_iam_col(st, 5));
        p->created = sqlite3_column_double(st, 6);
        p->version = "v1";
        r = p->document ? 0 : al_fail_internal(e, "ServiceFailure");
    } else if (s == SQLITE_DONE) {
        r = al_fail(e, 404, "NoSuchEntity", "Policy %s was not found.", arn);
    } else {
        r = al_fail_internal(e, "ServiceFailure");
    }
    al_db_release(c->db, st);
    if (r < 0)
        policy_row_clear(p);
    return r;
}

static int op_get_policy(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    const char *parn;
    policy_row p;
    int r, n = 0;
    if ((r = al_iam_need_policy_arn(f, &parn, e)) < 0 ||
        (r = al_authorize(c, principal, "iam:GetPolicy", parn, e)) < 0 ||
        (r = policy_load(c, parn, &p, e)) < 0)
        return r;
    if (attachments(c, parn, &n) < 0)
        r = al_fail_internal(e, "ServiceFailure");
    else
        policy_xml(w, p.arn, p.name, p.id, p.path, p.description, p.created, n, p.version);
    policy_row_clear(&p);
    return r;
}

static int op_get_policy_version(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                 al_error *e)
{
    const char *parn, *vid;
    policy_row p;
    int r;
    if ((r = al_iam_need_policy_arn(f, &parn, e)) < 0 ||
        (r = al_iam_need(f, "VersionId", "versionId", &vid, e)) < 0 ||
        (r = al_authorize(c, principal, "iam:GetPolicyVersion", parn, e)) < 0 ||
        (r = policy_load(c, parn, &p, e)) < 0)
        return r;
    if (strcmp(vid, p.version) != 0) {
        r = al_fail(e, 404, "NoSuchEntity",
                    "Policy %s version %.16s does not exist or is not "
                    "attachable.",
                    parn, vid);
    } else {
        al_xw_open(w, "PolicyVersion");
        al_xw_elem_urlenc(w, "Document", p.document);
        al_xw_elem(w, "VersionId", p.version);
        al_xw_elem(w, "IsDefaultVersion", "true");
        al_xw_elem_time(w, "CreateDate", p.created);
        al_xw_close(w, "PolicyVersion");
    }
    policy_row_clear(&p);
    return r;
}

static int op_delete_policy(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                            al_error *e)
{
    (void)w;
    const char *parn;
    policy_row p;
    int r, n = 0;
    if ((r = al_iam_need_policy_arn(f, &parn, e)) < 0 ||
        (r = al_authorize(c, principal, "iam:DeletePolicy", parn, e)) < 0 ||
        (r = policy_load(c, parn, &p, e)) < 0)
        return r;
    bool aws = p.aws;
    policy_row_clear(&p);
    if (aws)
        return al_fail(e, 403, "AccessDenied", "AWS managed policy %s cannot be deleted.", parn);
    if (attachments(c, parn, &n) < 0)
        return al_fail_internal(e, "ServiceFailure");
    if (n > 0)
        return al_fail(e, 409, "DeleteConflict", "Cannot delete a policy attached to entities.");
    return al_iam_exec_write(c, "DELETE FROM iam_policy WHERE arn=?", (const char *const[]){parn},
                             1, e);
}

const al_qop al_iam_qops[] = {
    {"CreateRole", op_create_role, true},
    {"GetRole", op_get_role, true},
    {"DeleteRole", op_delete_role, false},
    {"ListRoles", op_list_roles, true},
    {"UpdateAssumeRolePolicy", op_update_trust, false},
    {"PutRolePolicy", op_put_role_policy, false},
    {"GetRolePolicy", op_get_role_policy, true},
    {"DeleteRolePolicy", op_delete_role_policy, false},
    {"ListRolePolicies", op_list_role_policies, true},
    {"AttachRolePolicy", op_attach_role_policy, false},
    {"DetachRolePolicy", op_detach_role_policy, false},
    {"ListAttachedRolePolicies", op_list_attached, true},
    {"PutRolePermissionsBoundary", op_put_boundary, false},
    {"DeleteRolePermissionsBoundary", op_delete_boundary, false},
    {"CreatePolicy", op_create_policy, true},
    {"GetPolicy", op_get_policy, true},
    {"GetPolicyVersion", op_get_policy_version, true},
    {"DeletePolicy", op_delete_policy, false},
    {NULL, NULL, false},
};

/* ---- compiled policies for authorisation ---- */

int al_iam_add_identity(al_iam_policies *out, const char *doc, const char *name)
{
    aw_policy *p = NULL;
    int pr = aw_policy_parse(doc, strlen(doc), AW_POLICY_IDENTITY, name, &aw_policy_resource_limits,
                             &p, NULL, 0);
    /* out of memory must not drop a policy silently: it may hold a Deny */
    if (pr == AW_POLICY_E_NOMEM)
        return -ENOMEM;
    if (pr != AW_POLICY_OK)
        return 0; /* validated when stored; cannot happen */
    aw_policy **v = es_realloc(out->identity, (out->n_identity + 1) * sizeof *v);
    if (!v) {
        aw_policy_free(p);
        return -ENOMEM;
    }
    out->identity = v;
    v[out->n_identity++] = p;
    return 0;
}

int al_iam_managed_doc(al_ctx *c, const char *arn, char **doc)
{
    const char *a = al_iam_aws_policy(arn);
    if (a) {
        *doc = es_strdup(a);
        return *doc ? 0 : -ENOMEM;
    }
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT document FROM iam_policy WHERE arn=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, arn, -1, SQLITE_STATIC);
    int s = sqlite3_step(st), r = -ENOENT;
    if (s == SQLITE_ROW) {
        *doc = es_strdup(al_iam_col(st, 0));
        r = *doc ? 0 : -ENOMEM;
    } else if (s != SQLITE_DONE) {
        r = -EIO;
    }
    al_db_release(c->db, st);
    return r;
}

int al_iam_role_policies(al_ctx *c, const char *role, al_iam_policies *out)
{
    al_iam_policies p = {0};
    char *boundary = NULL;
    int r = -EIO, s;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT boundary FROM iam_role WHERE name=?");
    if (!st)
        return -EIO;
    sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
    s = sqlite3_step(st);
    if (s == SQLITE_ROW && al_iam_col(st, 0) && !(boundary = es_strdup(al_iam_col(st, 0)))) {
        al_db_release(c->db, st);
        return -ENOMEM; /* never lose a boundary */
    }
    al_db_release(c->db, st);
    if (s == SQLITE_DONE)
        return -ENOENT;
    if (s != SQLITE_ROW)
        return -EIO;
    st = al_db_prepare(c->db, "SELECT name, document FROM iam_role_policy WHERE role=?");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
    while ((s = sqlite3_step(st)) == SQLITE_ROW)
        if ((r = al_iam_add_identity(&p, al_iam_col(st, 1), al_iam_col(st, 0))) < 0)
            break;
    al_db_release(c->db, st);
    if (r == -ENOMEM || s != SQLITE_DONE) {
        r = r == -ENOMEM ? r : -EIO;
        goto out;
    }
    st = al_db_prepare(c->db, "SELECT policy_arn FROM iam_role_attached WHERE role=?");
    if (!st) {
        r = -EIO;
        goto out;
    }
    sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
    r = 0;
    while (r == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        char *doc = NULL;
        int m = al_iam_managed_doc(c, al_iam_col(st, 0), &doc);
        if (m == 0)
            r = al_iam_add_identity(&p, doc, al_iam_arn_last(al_iam_col(st, 0)));
        else if (m != -ENOENT)
            r = m;
        es_free(doc);
    }
    al_db_release(c->db, st);
    if (r < 0)
        goto out;
    if (boundary) {
        char *doc = NULL;
        int m = al_iam_managed_doc(c, boundary, &doc);
        if (m == 0) {
            /* a boundary that does not parse allows nothing: an empty-Statement policy */
            int pr = aw_policy_parse(doc, strlen(doc), AW_POLICY_BOUNDARY,
                                     al_iam_arn_last(boundary), NULL, &p.boundary, NULL, 0);
            m = pr == AW_POLICY_OK ? 0 : pr == AW_POLICY_E_NOMEM ? -ENOMEM : -ENOENT;
        }
        es_free(doc);
        if (m == -ENOENT && !p.boundary) {
            /* allows nothing: NotAction "*" matches no action */
            static const char none[] = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":"
                                       "\"Allow\",\"NotAction\":\"*\",\"Resource\":\"*\"}]}";
            if (aw_policy_parse(none, sizeof none - 1, AW_POLICY_BOUNDARY, "missing-boundary", NULL,
                                &p.boundary, NULL, 0) != AW_POLICY_OK) {
                r = -ENOMEM;
                goto out;
            }
        } else if (m < 0 && m != -ENOENT) {
            r = m;
            goto out;
        }
    }
    *out = p;
    memset(&p, 0, sizeof p);
    r = 0;
out:
    es_free(boundary);
    al_iam_policies_clear(&p);
    return r;
}

void al_iam_policies_clear(al_iam_policies *p)
{
    for (size_t i = 0; i < p->n_identity; i++)
        aw_policy_free(p->identity[i]);
    es_free(p->identity);
    aw_policy_free(p->boundary);
    memset(p, 0, sizeof *p);
}

/* ---- roles declared in files ---- */

/* A document given as an object (re-serialised) or as a string. */
static int doc_text(const es_json *v, es_buf *out)
{
    if (v->type == ES_JSON_STRING)
        return es_buf_append(out, v->u.string.s, v->u.string.len);
    if (v->type != ES_JSON_OBJECT)
        return -EINVAL;
    es_jw w;
    es_jw_init(&w, out);
    es_jw_value(&w, v);
    return es_jw_finish(&w);
}

/* One role file being loaded: what its steps share. Every failure names the
 * file in err; e holds the last failure of a check shared with the IAM API,
 * whose message the file's error repeats. */
typedef struct role_file {
    al_ctx *c;
    const char *file;
    char *err;
    size_t errlen;
    al_error e;
} role_file;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int file_fail(const role_file *rf, const char *fmt, const char *a)
{
    char what[AL_MESSAGE_MAX + 256];
    snprintf(what, sizeof what, fmt, a ? a : "");
    snprintf(rf->err, rf->errlen, "%s: %s", rf->file, what);
    return -EINVAL;
}
#pragma GCC diagnostic pop

/* Reads the file into text and parses it, both within AL_ROLE_FILE_MAX
 * bytes; *j is the caller's to free, as text is. */
static int read_role_file(const role_file *rf, const char *path, es_buf *text, es_json **j)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int r = -errno;
        snprintf(rf->err, rf->errlen, "%s: %s", rf->file, strerror(-r));
        return r;
    }
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        if (es_buf_append(text, chunk, (size_t)n) < 0)
            break;
    close(fd);
    if (n != 0)
        return file_fail(rf, n < 0 ? "cannot be read" : "larger than 64 KiB", NULL);
    char why[128];
    es_json_limits lim = es_json_default_limits;
    lim.max_bytes = AL_ROLE_FILE_MAX;
    if (es_json_parse(text->data ? text->data : "", text->len, &lim, j, why, sizeof why) < 0)
        return file_fail(rf, "not valid JSON: %s", why);
    return 0;
}

/* A member we do not know is refused rather than ignored: a misspelt one
 * would otherwise load a role other than the one meant. */
static int check_role_members(const role_file *rf, const es_json *j)
{
    if (j->type != ES_JSON_OBJECT)
        return file_fail(rf, "must hold one JSON object (a role)", NULL);
    static const char *const known[] = {"RoleName",
                                        "Path",
                                        "Description",
                                        "MaxSessionDuration",
                                        "AssumeRolePolicyDocument",
                                        "PermissionsBoundary",
                                        "Policies",
                                        "ManagedPolicyArns"};
    for (size_t i = 0; i < j->u.object.n; i++) {
        bool ok = false;
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            ok = ok || strcmp(j->u.object.keys[i], known[k]) == 0;
        if (!ok)
            return file_fail(rf, "unknown member \"%.64s\"", j->u.object.keys[i]);
    }
    return 0;
}

/* RoleName, or else the file's name without ".json". name has room for one
 * character past the limit, so that a longer name is refused, not cut. */
static int role_file_name(const role_file *rf, const es_json *j, char *name, size_t namesz)
{
    const es_json *v = es_json_get(j, "RoleName");
    if (v) {
        if (v->type != ES_JSON_STRING)
            return file_fail(rf, "RoleName must be a string", NULL);
        snprintf(name, namesz, "%s", v->u.string.s);
    } else {
        const char *dot = strrchr(rf->file, '.');
        size_t stem = (size_t)(dot - rf->file);
        snprintf(name, namesz, "%.*s", (int)(stem < namesz ? stem : namesz - 1), rf->file);
    }
    if (!al_iam_name_ok(name, AL_ROLE_NAME_MAX))
        return file_fail(rf, "RoleName \"%.64s\" must be 1..64 characters of [A-Za-z0-9_+=,.@-]",
                         name);
    return 0;
}

/* The role's other members, checked as CreateRole checks them. rs points
 * into j and trust from then on. */
static int role_file_spec(role_file *rf, const es_json *j, es_buf *trust, role_spec *rs)
{
    const es_json *v = es_json_get(j, "Path");
    if (v && (v->type != ES_JSON_STRING || !al_iam_path_ok(v->u.string.s)))
        return file_fail(rf, "Path must be a string like \"/\" or \"/a/b/\"", NULL);
    if (v)
        rs->path = v->u.string.s;
    v = es_json_get(j, "Description");
    if (v && (v->type != ES_JSON_STRING || v->u.string.len > AL_IAM_DESCRIPTION_MAX))
        return file_fail(
            rf,
            "Description must be a string of at most " STR(AL_IAM_DESCRIPTION_MAX) " characters",
            NULL);
    rs->description = v ? v->u.string.s : NULL;
    v = es_json_get(j, "MaxSessionDuration");
    if (v && (!es_json_as_int64(v, &rs->max_session) || rs->max_session < 3600 ||
              rs->max_session > 43200))
        return file_fail(rf, "MaxSessionDuration must be an integer in 3600..43200", NULL);
    v = es_json_get(j, "AssumeRolePolicyDocument");
    if (!v || doc_text(v, trust) < 0)
        return file_fail(rf,
                         "AssumeRolePolicyDocument (the trust policy) is required, as an object or "
                         "a string",
                         NULL);
    rs->trust = es_buf_cstr(trust);
    if (check_trust(rs->trust, &rf->e) < 0)
        return file_fail(rf, "AssumeRolePolicyDocument: %s", rf->e.message);
    v = es_json_get(j, "PermissionsBoundary");
    if (v) {
        if (v->type != ES_JSON_STRING || check_boundary(rf->c, v->u.string.s, &rf->e) < 0)
            return file_fail(rf, "PermissionsBoundary must name an existing managed policy ARN",
                             NULL);
        rs->boundary = v->u.string.s;
    }
    return 0;
}

static int store_role(role_file *rf, const role_spec *rs)
{
    /* keep the role id of the same role loaded before */
    char old_id[32] = "";
    sqlite3_stmt *st = al_db_prepare(rf->c->db, "SELECT role_id FROM iam_role_old WHERE name=?");
    if (st) {
        sqlite3_bind_text(st, 1, rs->name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            snprintf(old_id, sizeof old_id, "%s", al_iam_col(st, 0));
        al_db_release(rf->c->db, st);
    }
    role_spec stored = *rs;
    stored.role_id = old_id[0] ? old_id : NULL;
    if (role_insert(rf->c, &stored, &rf->e) < 0)
        return file_fail(
            rf,
            strcmp(rf->e.code, "EntityAlreadyExists") == 0
                ? "role \"%s\" already exists (made through the IAM API or another file)"
                : "role \"%s\" could not be stored",
            rs->name);
    return 0;
}

/* Policies: each entry checked and stored as PutRolePolicy would. */
static int apply_inline_policies(role_file *rf, const es_json *j, const char *role)
{
    const es_json *v = es_json_get(j, "Policies");
    if (v && v->type != ES_JSON_ARRAY)
        return file_fail(rf, "Policies must be an array of {\"PolicyName\", \"PolicyDocument\"}",
                         NULL);
    for (size_t i = 0; v && i < v->u.array.n; i++) {
        const es_json *p = v->u.array.items[i];
        const char *pn = p->type == ES_JSON_OBJECT ? es_json_get_str(p, "PolicyName") : NULL;
        const es_json *pd = p->type == ES_JSON_OBJECT ? es_json_get(p, "PolicyDocument") : NULL;
        es_buf doc;
        es_buf_init(&doc, AL_ROLE_FILE_MAX);
        if (!pn || !al_iam_name_ok(pn, AL_POLICY_NAME_MAX) || !pd || doc_text(pd, &doc) < 0 ||
            p->u.object.n != 2) {
            es_buf_free(&doc);
            return file_fail(rf,
                             "each Policies entry needs exactly PolicyName (1..128 of "
                             "[A-Za-z0-9_+=,.@-]) and PolicyDocument%s",
                             NULL);
        }
        if (check_inline(es_buf_cstr(&doc), &rf->e) < 0 ||
            inline_put(rf->c, role, pn, es_buf_cstr(&doc), &rf->e) < 0) {
            es_buf_free(&doc);
            char what[AL_MESSAGE_MAX + 160];
            snprintf(what, sizeof what, "policy \"%s\": %s", pn, rf->e.message);
            return file_fail(rf, "%s", what);
        }
        es_buf_free(&doc);
    }
    return 0;
}

/* ManagedPolicyArns: each attached as AttachRolePolicy would. */
static int apply_managed_policies(role_file *rf, const es_json *j, const char *role)
{
    const es_json *v = es_json_get(j, "ManagedPolicyArns");
    if (v && v->type != ES_JSON_ARRAY)
        return file_fail(rf, "ManagedPolicyArns must be an array of ARNs", NULL);
    for (size_t i = 0; v && i < v->u.array.n; i++) {
        const char *a = es_json_as_str(v->u.array.items[i]);
        if (!a || attach(rf->c, role, a, &rf->e) < 0)
            return file_fail(rf, "ManagedPolicyArns: %s",
                             a ? rf->e.message : "entries must be strings");
    }
    return 0;
}

/* One role file: the file, its members, the role, then its inline and
 * managed policies (which need the role stored). */
static int load_role_file(al_ctx *c, const char *path, const char *file, char *err, size_t errlen)
{
    role_file rf = {.c = c, .file = file, .err = err, .errlen = errlen};
    es_json *j = NULL;
    es_buf text, trust;
    es_buf_init(&text, AL_ROLE_FILE_MAX + 1);
    es_buf_init(&trust, AL_ROLE_FILE_MAX);
    char name[AL_ROLE_NAME_MAX + 2] = "";
    role_spec rs = {.name = name, .path = "/", .max_session = 3600, .source = file};
    int r;
    if ((r = read_role_file(&rf, path, &text, &j)) == 0 && (r = check_role_members(&rf, j)) == 0 &&
        (r = role_file_name(&rf, j, name, sizeof name)) == 0 &&
        (r = role_file_spec(&rf, j, &trust, &rs)) == 0 && (r = store_role(&rf, &rs)) == 0 &&
        (r = apply_inline_policies(&rf, j, name)) == 0)
        r = apply_managed_policies(&rf, j, name);
    es_json_free(j);
    es_buf_free(&text);
    es_buf_free(&trust);
    return r;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int al_iam_load_roles_dir(al_ctx *c, const char *dir, char *err, size_t errlen)
{
    char *names[AL_ROLES_DIR_MAX_FILES];
    size_t n = 0;
    int r = 0;
    DIR *d = opendir(dir);
    if (!d && errno != ENOENT) {
        r = -errno;
        snprintf(err, errlen, "%s: %s", dir, strerror(-r));
        return r;
    }
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        if (n == AL_ROLES_DIR_MAX_FILES) {
            snprintf(err, errlen, "%s: more than %d role files", dir, AL_ROLES_DIR_MAX_FILES);
            r = -E2BIG;
            break;
        }
        if (!(names[n] = es_strdup(de->d_name))) {
            r = -ENOMEM;
            break;
        }
        n++;
    }
    if (d)
        closedir(d);
    if (r < 0)
        goto out;
    qsort(names, n, sizeof names[0], cmp_str);
    if (al_db_begin(c->db) < 0) {
        snprintf(err, errlen, "%s: database busy", dir);
        r = -EIO;
        goto out;
    }
    if (al_db_exec(c->db, "CREATE TEMP TABLE IF NOT EXISTS iam_role_old(name TEXT PRIMARY KEY "
                          "COLLATE NOCASE, role_id TEXT)") < 0 ||
        al_db_exec(c->db, "DELETE FROM iam_role_old") < 0 ||
        al_db_exec(c->db, "INSERT INTO iam_role_old SELECT name, role_id FROM iam_role WHERE "
                          "source IS NOT NULL") < 0 ||
        al_db_exec(c->db, "DELETE FROM iam_role WHERE source IS NOT NULL") < 0) {
        snprintf(err, errlen, "%s: database failure", dir);
        r = -EIO;
    }
    for (size_t i = 0; r == 0 && i < n; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) {
            snprintf(err, errlen, "%s: path too long", names[i]);
            r = -ENAMETOOLONG;
            break;
        }
        r = load_role_file(c, path, names[i], err, errlen);
    }
    if (r == 0)
        r = al_db_commit(c->db);
    else
        al_db_rollback(c->db);
out:
    for (size_t i = 0; i < n; i++)
        es_free(names[i]);
    return r;
}
