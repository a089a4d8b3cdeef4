#include "aws/local/sts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/local/authz.h"
#include "aws/local/iam.h"
#include "aws/local/internal.h"
#include "aws/local/kms.h"
#include "aws/local/qops.h"
#include "aws/sigv4.h"
#include "common/alloc.h"
#include "common/secure.h"

#define LABEL_PREFIX "sts session "
#define PURGE_AFTER 86400.0 /* keep expired rows a day: they answer ExpiredToken */
#define ECS_TASKS "ecs-tasks.amazonaws.com"
#define AL_STS_ROLE_ARN_MAX 2048    /* AssumeRole's RoleArn (STS's limit) */
#define AL_STS_EXTERNAL_ID_MAX 1224 /* AssumeRole's ExternalId (STS's limit) */

static bool query_service(const char *service)
{
    return service && (strcmp(service, "iam") == 0 || strcmp(service, "sts") == 0);
}

static int invalid_token(al_error *e, const char *service)
{
    return al_fail(e, 403,
                   query_service(service) ? "InvalidClientTokenId" : "UnrecognizedClientException",
                   "The security token included in the request is invalid.");
}

int al_sts_lookup(al_ctx *c, const char *akid, const char *token, const char *service, time_t now,
                  char **secret, char *principal, size_t plen, al_error *e)
{
    double expires;
    return al_sts_lookup_ex(c, akid, token, service, now, secret, principal, plen, &expires, e);
}

int al_sts_lookup_ex(al_ctx *c, const char *akid, const char *token, const char *service,
                     time_t now, char **secret, char *principal, size_t plen, double *expires,
                     al_error *e)
{
    if (!token || !*token)
        return invalid_token(e, service);
    sqlite3_stmt *st = al_db_prepare(
        c->db, "SELECT s.wrapped, s.token_hash, s.principal, s.expires, "
               /* still the same role (user) it was issued for; the root is always */
               "CASE s.kind WHEN 'root' THEN 1"
               " WHEN 'user' THEN (SELECT u.user_id FROM iam_user u WHERE u.name = s.role)"
               " IS s.role_id"
               " ELSE (SELECT r.role_id FROM iam_role r WHERE r.name = s.role) IS s.role_id END "
               "FROM sts_session s WHERE s.akid=?");
    if (!st)
        return al_fail_internal(e, "InternalFailure");
    sqlite3_bind_text(st, 1, akid, -1, SQLITE_STATIC);
    int r, s = sqlite3_step(st);
    if (s == SQLITE_DONE) {
        r = invalid_token(e, service);
        goto out;
    }
    if (s != SQLITE_ROW) {
        r = al_fail_internal(e, "InternalFailure");
        goto out;
    }
    char hash[65];
    aw_sigv4_sha256_hex(token, strlen(token), hash);
    const void *want = sqlite3_column_blob(st, 1);
    if (sqlite3_column_bytes(st, 1) != 64 || !want || !es_ct_equal(hash, want, 64)) {
        r = invalid_token(e, service);
        goto out;
    }
    if (sqlite3_column_int(st, 4) != 1) {
        /* the role was deleted (and perhaps made again: another role) */
        r = invalid_token(e, service);
        goto out;
    }
    if ((double)now >= sqlite3_column_double(st, 3)) {
        r = al_fail(e, 403, query_service(service) ? "ExpiredToken" : "ExpiredTokenException",
                    "The security token included in the request is expired");
        goto out;
    }
    char label[64];
    snprintf(label, sizeof label, LABEL_PREFIX "%s", akid);
    uint8_t *pt = NULL;
    size_t n = 0;
    if (al_kms_unwrap(c, label, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                      &pt, &n) < 0) {
        r = al_fail_internal(e, "InternalFailure");
        goto out;
    }
    *secret = (char *)pt;
    snprintf(principal, plen, "%s", (const char *)sqlite3_column_text(st, 2));
    *expires = sqlite3_column_double(st, 3);
    r = 0;
out:
    al_db_release(c->db, st);
    return r;
}

static bool session_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 2 || n > AL_STS_SESSION_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("_+=,.@-", *s)))
            return false;
    return true;
}

/* What one session row holds besides its secrets. */
typedef struct session_owner {
    const char *kind;      /* "role", "user", "root" */
    const char *principal; /* what its requests act as */
    const char *name;      /* the role's or user's name ("" for the root) */
    const char *id;        /* its role or user id ("" for the root) */
} session_owner;

/* Makes and stores a session's credentials for owner; the caller wipes
 * secret and token. 0, -EIO. */
static int store_session(al_ctx *c, const session_owner *o, int duration,
                         char akid[AL_STS_AKID_LEN + 1], char secret[AL_STS_SECRET_LEN + 1],
                         char token[AL_STS_TOKEN_LEN + 1], double *expires)
{
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char id[AL_STS_AKID_LEN + 1], sec[AL_STS_SECRET_LEN + 1], tok[AL_STS_TOKEN_LEN + 1];
    char label[64], hash[65];
    uint8_t *w = NULL;
    size_t wl = 0;
    int r = -EIO;
    memcpy(id, "ASIA", 4);
    if (al_random_from(b32, 32, id + 4, AL_STS_AKID_LEN - 4) < 0 ||
        al_random_from(alnum, 62, sec, AL_STS_SECRET_LEN) < 0 ||
        al_random_from(alnum, 62, tok, AL_STS_TOKEN_LEN) < 0)
        goto out;
    snprintf(label, sizeof label, LABEL_PREFIX "%s", id);
    aw_sigv4_sha256_hex(tok, strlen(tok), hash);
    if ((r = al_kms_wrap(c, label, (const uint8_t *)sec, strlen(sec), &w, &wl)) < 0)
        goto out;
    double now = al_now(c), exp = now + duration;
    sqlite3_stmt *st = al_db_prepare(c->db, "DELETE FROM sts_session WHERE expires < ?");
    if (st) {
        sqlite3_bind_double(st, 1, now - PURGE_AFTER);
        sqlite3_step(st);
        al_db_release(c->db, st);
    }
    st = al_db_prepare(c->db, "INSERT INTO sts_session(akid, wrapped, token_hash, principal, role,"
                              " role_id, expires, created, kind) VALUES (?,?,?,?,?,?,?,?,?)");
    if (!st) {
        r = -EIO;
        goto out;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, w, (int)wl, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, hash, 64, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, o->principal, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, o->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, o->id, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 7, exp);
    sqlite3_bind_double(st, 8, now);
    sqlite3_bind_text(st, 9, o->kind, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
    al_db_release(c->db, st);
    if (r < 0)
        goto out;
    memcpy(akid, id, sizeof id);
    memcpy(secret, sec, sizeof sec);
    memcpy(token, tok, sizeof tok);
    *expires = exp;
out:
    es_wipe(sec, sizeof sec);
    es_wipe(tok, sizeof tok);
    es_free(w);
    return r;
}

int al_sts_issue(al_ctx *c, const char *role_name, const char *session, int duration,
                 char akid[AL_STS_AKID_LEN + 1], char secret[AL_STS_SECRET_LEN + 1],
                 char token[AL_STS_TOKEN_LEN + 1], double *expires)
{
    if (!session_name_ok(session) || duration < AL_STS_DURATION_MIN ||
        duration > AL_STS_DURATION_MAX)
        return -EINVAL;
    al_iam_role role;
    int r = al_iam_role_get(c, role_name, &role);
    if (r < 0)
        return r;
    char principal[256];
    snprintf(principal, sizeof principal, "arn:aws:sts::%s:assumed-role/%s/%s", c->account,
             role.name, session);
    session_owner o = {"role", principal, role.name, role.role_id};
    r = store_session(c, &o, duration, akid, secret, token, expires);
    al_iam_role_clear(&role);
    return r;
}

/* ---- AssumeRole ---- */

static int denied(al_error *e, const char *principal, const char *arn)
{
    return al_fail(e, 403, "AccessDenied",
                   "User: %s is not authorized to perform: sts:AssumeRole on resource: %s",
                   principal ? principal : "anonymous", arn);
}

static bool is_session(al_ctx *c, const char *principal)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "arn:aws:sts::%s:assumed-role/", c->account);
    return principal && strncmp(principal, prefix, strlen(prefix)) == 0;
}

/* AssumeRole's parameters, checked; they point into the form. */
typedef struct assume_params {
    const char *arn, *session, *external;
    long long duration;
} assume_params;

/* Checks the form as STS does, in its order, with its messages. */
static int read_assume_form(const al_form *f, assume_params *p, al_error *e)
{
    p->arn = al_form_get(f, "RoleArn");
    p->session = al_form_get(f, "RoleSessionName");
    const char *dur = al_form_get(f, "DurationSeconds");
    p->external = al_form_get(f, "ExternalId");
    p->duration = AL_STS_DURATION_DEFAULT;
    if (!p->arn || !p->session)
        return al_fail(e, 400, "ValidationError",
                       "1 validation error detected: Value null at '%s' failed to satisfy "
                       "constraint: Member must not be null",
                       p->arn ? "roleSessionName" : "roleArn");
    if (strlen(p->arn) < 20 || strlen(p->arn) > AL_STS_ROLE_ARN_MAX)
        return al_fail(e, 400, "ValidationError",
                       "1 validation error detected: Value at 'roleArn' failed to satisfy "
                       "constraint: Member must have length between 20 and %d",
                       AL_STS_ROLE_ARN_MAX);
    if (!session_name_ok(p->session))
        return al_fail(e, 400, "ValidationError",
                       "1 validation error detected: Value at 'roleSessionName' failed to "
                       "satisfy constraint: Member must satisfy regular expression pattern: "
                       "[\\w+=,.@-]* and have length between 2 and 64");
    if (dur) {
        char *end = NULL;
        errno = 0;
        p->duration = strtoll(dur, &end, 10);
        if (errno || !*dur || *end || p->duration < AL_STS_DURATION_MIN ||
            p->duration > AL_STS_DURATION_MAX)
            return al_fail(e, 400, "ValidationError",
                           "1 validation error detected: Value at 'durationSeconds' failed to "
                           "satisfy constraint: Member must have value between %d and %d",
                           AL_STS_DURATION_MIN, AL_STS_DURATION_MAX);
    }
    if (al_form_get(f, "Policy") || al_form_member(f, "PolicyArns", 1))
        return al_fail(e, 400, "ValidationError",
                       "Session policies (Policy, PolicyArns) are not supported by the embedded "
                       "STS.");
    if (p->external && (strlen(p->external) < 2 || strlen(p->external) > AL_STS_EXTERNAL_ID_MAX))
        return al_fail(e, 400, "ValidationError",
                       "1 validation error detected: Value at 'externalId' failed to satisfy "
                       "constraint: Member must have length between 2 and %d",
                       AL_STS_EXTERNAL_ID_MAX);
    return 0;
}

/* The role the ARN names; a role of another account, or none, is refused
 * as AWS refuses it: the caller may not assume it. Release role with
 * al_iam_role_clear when this answers 0. */
static int find_role(al_ctx *c, const char *principal, const char *arn, al_iam_role *role,
                     al_error *e)
{
    /* arn:aws:iam::ACCOUNT:role/PATH/NAME */
    char prefix[64];
    snprintf(prefix, sizeof prefix, "arn:aws:iam::%s:role/", c->account);
    if (strncmp(arn, prefix, strlen(prefix)) != 0)
        return denied(e, principal, arn);
    const char *name = strrchr(arn, '/') + 1;
    int r = al_iam_role_get(c, name, role);
    if (r == -ENOENT || (r == 0 && strcmp(role->arn, arn) != 0)) {
        if (r == 0)
            al_iam_role_clear(role);
        return denied(e, principal, arn);
    }
    if (r < 0)
        return al_fail_internal(e, "InternalFailure");
    return 0;
}

/* Whether the trust policy allows the ECS control plane, for which the
 * administrator acts. */
static bool trusts_ecs_tasks(al_ctx *c, const al_authz_req *q)
{
    char root[64];
    snprintf(root, sizeof root, "arn:aws:iam::%s:root", c->account);
    if (!q->principal || strcmp(q->principal, root) != 0)
        return false;
    aw_policy_set set = {.resource = q->resource_policy};
    aw_request req = {.principal_arn = ECS_TASKS,
                      .action = q->action,
                      .resource = q->resource,
                      .resource_account = c->account,
                      .ctx = q->extra,
                      .nctx = q->nextra};
    aw_decision d;
    return aw_policy_evaluate(&set, &req, &d) == 0 && d.kind == AW_DECISION_ALLOW;
}

int al_role_trusts_ecs_tasks(al_ctx *c, const char *account, const char *role_arn)
{
    if (!c || !account || !role_arn)
        return -EINVAL;
    char prefix[64], root[64];
    snprintf(prefix, sizeof prefix, "arn:aws:iam::%s:role/", account);
    if (strncmp(role_arn, prefix, strlen(prefix)) != 0)
        return -EXDEV;
    const char *name = strrchr(role_arn, '/') + 1;
    if (!*name || strlen(name) > AL_ROLE_NAME_MAX)
        return -EINVAL;
    al_iam_role role = {0};
    if (al_iam_role_get(c, name, &role) < 0)
        return -ENOENT;
    aw_policy *trust = NULL;
    al_error ignored;
    int r = al_iam_trust_compile(role.trust, &trust, &ignored) < 0 ? -EACCES : 0;
    snprintf(root, sizeof root, "arn:aws:iam::%s:root", c->account);
    al_authz_req q = {.principal = root,
                      .action = "sts:AssumeRole",
                      .resource = role.arn,
                      .resource_policy = trust};
    if (r == 0 && !trusts_ecs_tasks(c, &q))
        r = -EACCES;
    aw_policy_free(trust);
    al_iam_role_clear(&role);
    return r;
}

/* The trust policy must allow the caller: directly (then no identity
 * policy is needed), or by naming its account (then an identity policy must
 * allow too, as across accounts); an explicit Deny anywhere refuses. */
static int trusts_caller(al_ctx *c, al_authz_req q, const char *arn, al_error *e)
{
    aw_decision_kind full = AW_DECISION_IMPLICIT_DENY, direct = AW_DECISION_IMPLICIT_DENY,
                     delegated = AW_DECISION_IMPLICIT_DENY;
    int r = al_authz_evaluate(c, &q, NULL, 0, &full);
    if (r == 0 || r == -EACCES) {
        q.no_identity = true;
        r = al_authz_evaluate(c, &q, NULL, 0, &direct);
    }
    if (r == 0 || r == -EACCES) {
        q.no_identity = false;
        q.resource_account = "trust-policy"; /* never the caller's account */
        r = al_authz_evaluate(c, &q, NULL, 0, &delegated);
    }
    if (r < 0 && r != -EACCES)
        return al_fail_internal(e, "InternalFailure");
    if (full == AW_DECISION_EXPLICIT_DENY ||
        (direct != AW_DECISION_ALLOW && delegated != AW_DECISION_ALLOW))
        return denied(e, q.principal, arn);
    return 0;
}

/* The trust-policy decision: 0 when the caller may assume the role. */
static int trust_allows(al_ctx *c, const char *principal, const assume_params *p,
                        const al_iam_role *role, al_error *e)
{
    aw_policy *trust = NULL;
    al_error ignored;
    int r = 0;
    if (al_iam_trust_compile(role->trust, &trust, &ignored) < 0) {
        /* out of memory is a failure, not a refusal */
        r = ignored.status >= 500 ? al_fail_internal(e, "InternalFailure")
                                  : denied(e, principal, p->arn);
        goto out;
    }
    const char *ext[1] = {p->external};
    aw_ctx_entry extra[1] = {{"sts:ExternalId", ext, 1, false}};
    al_authz_req q = {.principal = principal,
                      .action = "sts:AssumeRole",
                      .resource = role->arn,
                      .resource_policy = trust,
                      .extra = extra,
                      .nextra = p->external ? 1 : 0};
    if (!trusts_ecs_tasks(c, &q))
        r = trusts_caller(c, q, p->arn, e);
out:
    aw_policy_free(trust);
    return r;
}

static int check_duration(al_ctx *c, const char *principal, long long duration,
                          const al_iam_role *role, al_error *e)
{
    if (duration > role->max_session)
        return al_fail(e, 400, "ValidationError",
                       "The requested DurationSeconds exceeds the MaxSessionDuration set for this "
                       "role.");
    if (is_session(c, principal) && duration > 3600)
        return al_fail(e, 400, "ValidationError",
                       "The requested DurationSeconds exceeds the 1 hour session limit for roles "
                       "assumed by role chaining.");
    return 0;
}

/* Issues the session and answers its credentials, wiping the secret and
 * token once written. */
static int issue_session(al_ctx *c, const assume_params *p, const al_iam_role *role, al_xw *w,
                         al_error *e)
{
    char akid[AL_STS_AKID_LEN + 1], secret[AL_STS_SECRET_LEN + 1], token[AL_STS_TOKEN_LEN + 1];
    double expires;
    int r =
        al_sts_issue(c, role->name, p->session, (int)p->duration, akid, secret, token, &expires);
    if (r < 0)
        return al_fail_internal(e, "InternalFailure");
    al_xw_open(w, "Credentials");
    al_xw_elem(w, "AccessKeyId", akid);
    al_xw_elem(w, "SecretAccessKey", secret);
    al_xw_elem(w, "SessionToken", token);
    al_xw_elem_time(w, "Expiration", expires);
    al_xw_close(w, "Credentials");
    es_wipe(secret, sizeof secret);
    es_wipe(token, sizeof token);
    al_xw_open(w, "AssumedRoleUser");
    al_xw_elemf(w, "AssumedRoleId", "%s:%s", role->role_id, p->session);
    al_xw_elemf(w, "Arn", "arn:aws:sts::%s:assumed-role/%s/%s", c->account, role->name, p->session);
    al_xw_close(w, "AssumedRoleUser");
    return 0;
}

static int op_assume_role(al_ctx *c, const char *principal, const al_form *f, al_xw *w, al_error *e)
{
    assume_params p;
    al_iam_role role;
    int r = read_assume_form(f, &p, e);
    if (r < 0 || (r = find_role(c, principal, p.arn, &role, e)) < 0)
        return r;
    if ((r = trust_allows(c, principal, &p, &role, e)) == 0 &&
        (r = check_duration(c, principal, p.duration, &role, e)) == 0)
        r = issue_session(c, &p, &role, w, e);
    al_iam_role_clear(&role);
    return r;
}

static int op_get_caller_identity(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                  al_error *e)
{
    (void)f;
    (void)e;
    /* needs no permission, as in AWS */
    char root[64], userid[256];
    const char *p = principal ? principal : "anonymous";
    snprintf(root, sizeof root, "arn:aws:iam::%s:root", c->account);
    if (strcmp(p, root) == 0) {
        snprintf(userid, sizeof userid, "%s", c->account);
    } else if (is_session(c, p)) {
        const char *rn = strchr(p + strlen("arn:aws:sts::") + strlen(c->account) + 1, '/');
        const char *slash = rn ? strchr(rn + 1, '/') : NULL;
        char role[AL_ROLE_NAME_MAX + 1] = "";
        if (rn && slash && (size_t)(slash - rn - 1) < sizeof role)
            snprintf(role, sizeof role, "%.*s", (int)(slash - rn - 1), rn + 1);
        al_iam_role ri;
        if (role[0] && al_iam_role_get(c, role, &ri) == 0) {
            snprintf(userid, sizeof userid, "%s:%s", ri.role_id, slash + 1);
            al_iam_role_clear(&ri);
        } else {
            snprintf(userid, sizeof userid, "%s", slash ? slash + 1 : p);
        }
    } else {
        const char *colon = strrchr(p, ':');
        snprintf(userid, sizeof userid, "%s", colon ? colon + 1 : p);
    }
    al_xw_elem(w, "UserId", userid);
    al_xw_elem(w, "Account", c->account);
    al_xw_elem(w, "Arn", p);
    return 0;
}

/* ---- GetSessionToken ---- */

/* DurationSeconds in [lo, hi] (dflt when absent), with STS's wording. */
static int read_duration(const al_form *f, long long dflt, long long *out, al_error *e)
{
    const char *v = al_form_get(f, "DurationSeconds");
    *out = dflt;
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    bool num = !errno && *v && !*end;
    if (num && x >= AL_STS_DURATION_MIN && x <= AL_STS_USER_DURATION_MAX) {
        *out = x;
        return 0;
    }
    bool low = num && x < AL_STS_DURATION_MIN;
    return al_fail(e, 400, "ValidationError",
                   "1 validation error detected: Value '%.24s' at 'durationSeconds' failed to "
                   "satisfy constraint: Member must have value %s %d",
                   v, low ? "greater than or equal to" : "less than or equal to",
                   low ? AL_STS_DURATION_MIN : AL_STS_USER_DURATION_MAX);
}

/* Who the session will act as: the root (kind "root", at most an hour, as
 * AWS caps it) or a user that still exists under the caller's ARN. */
static int session_owner_of(al_ctx *c, const char *principal, al_iam_user *u, session_owner *o,
                            al_error *e)
{
    char root[64], name[AL_USER_NAME_MAX + 1];
    snprintf(root, sizeof root, "arn:aws:iam::%s:root", c->account);
    if (c->caller_temporary || is_session(c, principal))
        return al_fail(e, 403, "AccessDenied",
                       "Cannot call GetSessionToken with session credentials");
    if (principal && strcmp(principal, root) == 0) {
        *o = (session_owner){"root", principal, "", ""};
        return 0;
    }
    if (!al_iam_user_of_principal(c, principal, name, sizeof name) ||
        al_iam_user_get(c, name, u) < 0 || strcmp(u->arn, principal) != 0)
        return al_fail(e, 403, "AccessDenied",
                       "User: %s is not authorized to perform: sts:GetSessionToken",
                       principal ? principal : "anonymous");
    *o = (session_owner){"user", principal, u->name, u->user_id};
    return 0;
}

static int op_get_session_token(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                al_error *e)
{
    al_iam_user u;
    session_owner o;
    long long duration;
    int r;
    if ((r = read_duration(f, AL_STS_USER_DURATION_DEFAULT, &duration, e)) < 0)
        return r;
    if (al_form_get(f, "SerialNumber") || al_form_get(f, "TokenCode"))
        return al_fail(e, 403, "AccessDenied",
                       "MultiFactorAuthentication failed, unable to validate MFA code "
                       "(the embedded IAM has no MFA devices).");
    /* needs no permission, as in AWS */
    if ((r = session_owner_of(c, principal, &u, &o, e)) < 0)
        return r;
    if (strcmp(o.kind, "root") == 0) {
        bool given = al_form_get(f, "DurationSeconds") != NULL;
        duration =
            !given || duration > AL_STS_ROOT_DURATION_MAX ? AL_STS_ROOT_DURATION_MAX : duration;
    }
    char akid[AL_STS_AKID_LEN + 1], secret[AL_STS_SECRET_LEN + 1], token[AL_STS_TOKEN_LEN + 1];
    double expires;
    if (store_session(c, &o, (int)duration, akid, secret, token, &expires) < 0)
        return al_fail_internal(e, "InternalFailure");
    al_xw_open(w, "Credentials");
    al_xw_elem(w, "AccessKeyId", akid);
    al_xw_elem(w, "SecretAccessKey", secret);
    al_xw_elem(w, "SessionToken", token);
    al_xw_elem_time(w, "Expiration", expires);
    al_xw_close(w, "Credentials");
    es_wipe(secret, sizeof secret);
    es_wipe(token, sizeof token);
    return 0;
}

/* ---- GetAccessKeyInfo ---- */

static int op_get_access_key_info(al_ctx *c, const char *principal, const al_form *f, al_xw *w,
                                  al_error *e)
{
    const char *id = al_form_get(f, "AccessKeyId");
    if (!id)
        return al_fail(e, 400, "ValidationError",
                       "1 validation error detected: Value null at 'accessKeyId' failed to "
                       "satisfy constraint: Member must not be null");
    size_t n = strlen(id);
    bool ok = n >= AL_STS_AKID_MIN && n <= AL_STS_AKID_MAX;
    for (const char *p = id; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '_';
    if (!ok)
        return al_fail(e, 400, "ValidationError",
                       "1 validation error detected: Value at 'accessKeyId' failed to satisfy "
                       "constraint: Member must satisfy regular expression pattern: [\\w]* and "
                       "have length between %d and %d",
                       AL_STS_AKID_MIN, AL_STS_AKID_MAX);
    int r = al_authorize(c, principal, "sts:GetAccessKeyInfo", "*", e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = al_db_prepare(c->db, "SELECT (SELECT count(*) FROM iam_access_key WHERE "
                                            "akid=?1) + (SELECT count(*) FROM sts_session WHERE "
                                            "akid=?1)");
    if (!st)
        return al_fail_internal(e, "InternalFailure");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int known = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    al_db_release(c->db, st);
    if (known < 0)
        return al_fail_internal(e, "InternalFailure");
    /* AWS reads the account out of any key id; ours are random, so only the
     * keys this store issued have an account we can name */
    if (!known)
        return al_fail(e, 400, "InvalidParameterValue",
                       "The access key ID %s was not issued by this endpoint (it serves account "
                       "%s only).",
                       id, c->account);
    al_xw_elem(w, "Account", c->account);
    return 0;
}

/* ---- DecodeAuthorizationMessage ---- */

static int op_decode_authorization_message(al_ctx *c, const char *principal, const al_form *f,
                                           al_xw *w, al_error *e)
{
    const char *m = al_form_get(f, "EncodedMessage");
    if (!m)
        return al_fail(e, 400, "ValidationError",
                       "1 validation error detected: Value null at 'encodedMessage' failed to "
                       "satisfy constraint: Member must not be null");
    if (!*m || strlen(m) > AL_STS_ENCODED_MESSAGE_MAX)
        return al_fail(e, 400, "ValidationError",
                       "1 validation error detected: Value at 'encodedMessage' failed to satisfy "
                       "constraint: Member must have length between 1 and %d",
                       AL_STS_ENCODED_MESSAGE_MAX);
    int r = al_authorize(c, principal, "sts:DecodeAuthorizationMessage", "*", e);
    if (r < 0)
        return r;
    es_buf json;
    es_buf_init(&json, AL_STS_ENCODED_MESSAGE_MAX);
    r = al_authz_message_decode(c, m, &json);
    if (r == -EINVAL)
        r = al_fail(e, 400, "InvalidAuthorizationMessageException",
                    "The authorization message is not valid: it was not issued by this endpoint "
                    "or was altered.");
    else if (r < 0)
        r = al_fail_internal(e, "InternalFailure");
    else
        al_xw_elem(w, "DecodedMessage", es_buf_cstr(&json));
    es_buf_free(&json);
    return r;
}

const al_qop al_sts_qops[] = {
    {"AssumeRole", op_assume_role, true},
    {"GetCallerIdentity", op_get_caller_identity, true},
    {"GetSessionToken", op_get_session_token, true},
    {"GetAccessKeyInfo", op_get_access_key_info, true},
    {"DecodeAuthorizationMessage", op_decode_authorization_message, true},
    {NULL, NULL, false},
};
