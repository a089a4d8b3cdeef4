/* policy.h - IAM policy documents: parse, compile, evaluate (pure, no I/O).
 *
 * Used by the embedded endpoints (aws/local) to enforce permissions the way
 * AWS does, and by the agent's preflight to list every permission a task's
 * execution role lacks (seed S5-S7: ssm:GetParameters on each parameter ARN,
 * secretsmanager:GetSecretValue on each secret, kms:Decrypt on a custom key).
 *
 * PARSING. aw_policy_parse() reads one JSON policy document with bounded
 * limits (aw_policy_limits: document characters - IAM's 10240 for inline,
 * 6144 for managed policies, whitespace outside strings not counted -, raw
 * input bytes, statements, values per element, condition keys, nesting) and
 * compiles it into an immutable aw_policy. Accepted: Version 2012-10-17 or
 * 2008-10-17 (absent means 2008-10-17, in which policy variables are not
 * substituted, as in IAM), Id, Statement as an object or an array, Sid
 * (unique within the document), Effect, exactly one of Action/NotAction,
 * exactly one of Resource/NotResource ("*" or ARNs), Principal/NotPrincipal
 * ("*" or {"AWS"|"Service"|"Federated"|"CanonicalUser": string or array},
 * AWS values being ARNs without wildcards or 12-digit accounts; NotPrincipal
 * only with Deny) - required in resource-based policies and rejected in
 * identity policies and boundaries, like IAM -, and Condition ({operator:
 * {key: string|number|bool or array of them}}). A failure returns
 * AW_POLICY_E_MALFORMED (or _TOO_BIG/_LIMIT/_NOMEM) and a one-line message
 * in the style of IAM's MalformedPolicyDocument naming the element and the
 * statement at fault.
 *
 * MATCHING.
 *  - Action: "*", or "service:pattern"; the service prefix is compared
 *    case-insensitively and exactly, the action part is a case-insensitive
 *    glob ('*' any run, '?' one character).
 *  - Resource: "*" matches everything. Otherwise both ARNs are split at their
 *    first five ':' into arn:partition:service:region:account:resource and
 *    each part is globbed separately, so '*' never crosses a part boundary
 *    except in the resource part, which may itself contain ':' and '/'.
 *    partition/service/region/account compare case-insensitively, the
 *    resource part case-sensitively. A policy ARN with fewer than six parts
 *    is padded with "*" parts in identity policies and boundaries; in a
 *    resource-based policy it matches only when it contains a wildcard.
 *  - Policy variables (Version 2012-10-17 only) in Resource and in String/Arn
 *    condition values: ${key} takes the single value of that context key,
 *    ${key, 'default'} falls back to the default, ${*} ${?} ${$} are the
 *    literal characters. A substituted value is literal (its '*' is not a
 *    wildcard). A variable that cannot be resolved (key absent, empty or
 *    multivalued, no default) makes that value match nothing; in a negated
 *    condition operator it makes the condition false (the operator cannot
 *    prove "not equal"); in NotResource it makes the statement not apply,
 *    unless the value's literal parts already rule the resource out (then
 *    it is a plain mismatch), IAM saying only that such a statement "might
 *    be invalid".
 *  - Conditions: all operators of the IAM reference: String{Equals,NotEquals,
 *    EqualsIgnoreCase,NotEqualsIgnoreCase,Like,NotLike}, Numeric{Equals,
 *    NotEquals,LessThan,LessThanEquals,GreaterThan,GreaterThanEquals},
 *    Date{same six} (ISO 8601 date/time or epoch seconds), Bool, BinaryEquals,
 *    IpAddress/NotIpAddress (v4 and v6 CIDR), Arn{Equals,Like,NotEquals,
 *    NotLike}, Null; the "IfExists" suffix; the "ForAnyValue:" and
 *    "ForAllValues:" prefixes. Operators in one block AND, keys under one
 *    operator AND, values of one key OR (for negated operators: the request
 *    value must differ from every value, i.e. NOR). Missing key: positive
 *    operators are false, negated operators and ...IfExists true, Null tests
 *    presence, ForAllValues true, ForAnyValue false (true with IfExists:
 *    IAM's rule "if the key is not present, the condition is true" is
 *    applied to set operators too). A multivalued context key used without
 *    a set operator does not match (AWS requires a set operator for
 *    multivalued keys). Context key names are case-insensitive. The
 *    evaluator derives no context key itself: the caller supplies
 *    aws:PrincipalArn, aws:SourceIp, aws:CurrentTime, kms:EncryptionContext:*
 *    and the rest, as AWS's request context would hold them.
 *
 * EVALUATION MODEL (aw_policy_evaluate). Inputs: the principal's identity
 * policies, an optional permissions boundary (one or more documents), an
 * optional resource-based policy (a Secrets Manager resource policy, a KMS
 * key policy, ...), and the request (principal ARN, action, resource ARN,
 * context). Accounts: the principal account is the 5th field of the
 * principal ARN, the resource account the 5th field of the resource ARN
 * unless aw_request.resource_account overrides it. A resource with no
 * account at all ("*" for actions such as ecr:GetAuthorizationToken, or an
 * ARN with an empty account field and no override) is treated as the
 * caller's own account. A caller that is not an ARN is a service principal:
 * only a resource policy naming it can grant.
 *
 *  1. Any matching Deny statement - in an identity policy, the boundary, or
 *     the resource policy (whose Principal/NotPrincipal must match the
 *     caller, including account-level principals) - is an explicit deny.
 *  2. Resource-policy principals match a caller as: "*" - direct; an ARN
 *     equal to the caller's ARN - direct; the role ARN of an assumed-role
 *     session caller, or the IAM user of a federated-user caller - direct
 *     ("session" match); the caller's account ("123456789012" or
 *     "arn:aws:iam::123456789012:root") - account-level only, i.e. it
 *     delegates to the account's IAM policies and grants nothing by itself;
 *     a "Service" principal - when it equals the caller string exactly.
 *  3. Same account (principal account == resource account):
 *     - most services (SSM, Secrets Manager, ...): allowed if an identity
 *       policy allows OR the resource policy allows the caller directly.
 *     - KMS keys (service kms, resource "key/..."): the key policy is the
 *       root of trust. Identity policies count only when an Allow statement
 *       of the key policy matching this request names the account (the
 *       default key policy's arn:aws:iam::ACCOUNT:root statement); otherwise
 *       only a direct key-policy grant allows. No key policy = no trust.
 *  4. Cross-account: the resource policy must allow (directly or at account
 *     level) AND an identity policy of the caller must allow.
 *  5. Permissions boundary (when given) must also allow, except that in the
 *     same account a resource-policy Allow whose Principal names the caller
 *     exactly - an IAM user or assumed-role session ARN, or "*" - is not
 *     limited by the boundary (IAM's documented exception); naming the role
 *     of a session does not escape it, and a caller that is itself a role
 *     ARN escapes it only through "*".
 *  6. Otherwise implicit deny, with the reason: no identity allow, no
 *     boundary allow, no resource-policy allow (cross-account or KMS).
 *
 * Evaluation allocates nothing and touches only the compiled policies and
 * the request, so it is safe to share compiled policies between threads. */
#ifndef ES_AWS_POLICY_H
#define ES_AWS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct aw_policy aw_policy;

typedef enum aw_policy_kind {
    AW_POLICY_IDENTITY, /* attached to a user/role: no Principal */
    AW_POLICY_BOUNDARY, /* permissions boundary: no Principal */
    AW_POLICY_RESOURCE, /* resource-based / key policy: Principal required */
} aw_policy_kind;

typedef enum aw_policy_err {
    AW_POLICY_OK = 0,
    AW_POLICY_E_MALFORMED = -1, /* MalformedPolicyDocument */
    AW_POLICY_E_TOO_BIG = -2,   /* LimitExceeded: document size */
    AW_POLICY_E_LIMIT = -3,     /* a count limit (statements, values, ...) */
    AW_POLICY_E_NOMEM = -4,
    AW_POLICY_E_INVAL = -5, /* bad arguments to the API itself */
} aw_policy_err;

typedef struct aw_policy_limits {
    size_t max_bytes;      /* document characters, whitespace outside strings not counted (IAM) */
    size_t max_raw_bytes;  /* the input as given, whitespace included */
    size_t max_statements; /* Statement entries */
    size_t max_values;     /* values in one Action/Resource/Principal/condition key */
    size_t max_conditions; /* operator+key pairs in one statement */
    size_t max_depth;      /* JSON nesting */
    size_t max_string;     /* one string */
} aw_policy_limits;

/* 10240 bytes (IAM inline role policy), 64 KiB raw, 100 statements, 256
 * values, 64 condition keys per statement, depth 8, strings of 2048 bytes. */
extern const aw_policy_limits aw_policy_inline_limits;
/* Same with 6144 bytes (IAM managed policy). */
extern const aw_policy_limits aw_policy_managed_limits;
/* Same with 20480 bytes (Secrets Manager resource policy, KMS key policy
 * allow up to 20/32 KiB). */
extern const aw_policy_limits aw_policy_resource_limits;

/* Parses and compiles text[0..len). lim NULL means the kind's default
 * (inline limits for identity/boundary, resource limits for resource). On
 * failure *out is untouched and err (when not NULL) holds a one-line
 * message naming what is wrong. name (may be NULL) is copied and reported in
 * decisions. */
int aw_policy_parse(const char *text, size_t len, aw_policy_kind kind, const char *name,
                    const aw_policy_limits *lim, aw_policy **out, char *err, size_t errlen);
/* NULL-safe; returns NULL. */
aw_policy *aw_policy_free(aw_policy *p);
size_t aw_policy_statement_count(const aw_policy *p);
const char *aw_policy_name(const aw_policy *p);
/* Does any decision under p depend on the request context (aw_request.ctx)?
 * True when a statement has a Condition or a Resource / NotResource value
 * holding a policy variable; false for NULL. A decision made only under
 * policies answering false is a function of (principal, action, resource,
 * resource account) and the documents: the embedded store memoises those
 * (aws/local/authz.c). */
bool aw_policy_uses_context(const aw_policy *p);

/* One context key with its value(s). A single-valued key has n == 1 and
 * multi false; a multivalued key (aws:TagKeys, ...) has multi true and any n
 * (0 is an empty set, which is not the same as an absent key). */
typedef struct aw_ctx_entry {
    const char *key;
    const char *const *values;
    size_t n;
    bool multi;
} aw_ctx_entry;

typedef struct aw_request {
    const char *principal_arn;    /* caller: user, role, assumed-role session, or service */
    const char *action;           /* "ssm:GetParameters" */
    const char *resource;         /* ARN, or "*" */
    const char *resource_account; /* NULL: taken from the resource ARN */
    const aw_ctx_entry *ctx;
    size_t nctx;
} aw_request;

typedef struct aw_policy_set {
    const aw_policy *const *identity; /* may be NULL when n_identity == 0 */
    size_t n_identity;
    const aw_policy *const *boundary; /* n_boundary == 0: no boundary */
    size_t n_boundary;
    const aw_policy *resource; /* NULL: the resource has no resource policy */
} aw_policy_set;

typedef enum aw_decision_kind {
    AW_DECISION_ALLOW,
    AW_DECISION_EXPLICIT_DENY,
    AW_DECISION_IMPLICIT_DENY,
} aw_decision_kind;

typedef enum aw_policy_source {
    AW_SOURCE_NONE,
    AW_SOURCE_IDENTITY,
    AW_SOURCE_BOUNDARY,
    AW_SOURCE_RESOURCE,
} aw_policy_source;

typedef enum aw_implicit_reason {
    AW_IMPLICIT_NONE,
    AW_IMPLICIT_NO_IDENTITY_ALLOW, /* no identity-based policy allows */
    AW_IMPLICIT_NO_BOUNDARY_ALLOW, /* no permissions boundary allows */
    AW_IMPLICIT_NO_RESOURCE_ALLOW, /* cross-account or KMS: no resource-based policy allows */
} aw_implicit_reason;

typedef struct aw_decision {
    aw_decision_kind kind;
    /* The deciding statement: for ALLOW the first allowing statement, for
     * EXPLICIT_DENY the first matching Deny; NONE for implicit deny. */
    aw_policy_source source;
    const aw_policy *policy; /* borrowed; NULL for implicit deny */
    size_t statement_index;  /* 0-based in the document */
    const char *sid;         /* borrowed from policy; NULL when the statement has none */
    aw_implicit_reason reason;
} aw_decision;

/* Evaluates req against the policies. Returns 0 and fills *out, or
 * AW_POLICY_E_INVAL for missing arguments. Allocates nothing. */
int aw_policy_evaluate(const aw_policy_set *set, const aw_request *req, aw_decision *out);

/* Writes AWS's AccessDenied wording into buf (always NUL-terminated when
 * size > 0), e.g. "User: arn:aws:sts::1:assumed-role/R/S is not authorized
 * to perform: ssm:GetParameters on resource: arn:... because no
 * identity-based policy allows the ssm:GetParameters action". Returns the
 * length it needed (like snprintf). For ALLOW it writes "allowed by ...". */
size_t aw_decision_message(const aw_request *req, const aw_decision *d, char *buf, size_t size);

const char *aw_decision_kind_name(aw_decision_kind k); /* "Allowed", "ExplicitlyDenied", ... */

#endif
