/* iam.h - the embedded IAM: roles, their inline and attached managed
 * policies, customer managed policies, the AWS managed policies we know.
 *
 * Query actions (al_iam_qops, through al_query_dispatch): CreateRole,
 * GetRole, DeleteRole, ListRoles, UpdateAssumeRolePolicy, PutRolePolicy,
 * GetRolePolicy, DeleteRolePolicy, ListRolePolicies, AttachRolePolicy,
 * DetachRolePolicy, ListAttachedRolePolicies, PutRolePermissionsBoundary,
 * DeleteRolePermissionsBoundary, CreatePolicy, GetPolicy, GetPolicyVersion,
 * DeletePolicy, ListPolicies (users, groups and access keys: al_iam_user_qops
 * in iam_users.c). Names and documents are validated as IAM does
 * (RoleName 1..64 [\w+=,.@-], Path /.../, trust policy a resource policy with
 * Principal of at most 2048 characters, inline policies 10240, managed 6144;
 * at most 10 managed policies per role; DeleteRole refuses a role that still
 * has policies: DeleteConflict). Each call is authorised through the store's
 * hook as "iam:<Action>" on the role or policy ARN.
 *
 * AWS managed policies: a built-in read-only table (al_iam_aws_policy),
 * today arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy
 * with its real document (ECR pull, CloudWatch Logs; no secret access).
 *
 * Roles from files (systemd deployments): al_iam_load_roles_dir reads every
 * "*.json" in a directory (e.g. /etc/ecs-secrets-agent/roles), each one role
 * in the shape of CloudFormation's AWS::IAM::Role properties:
 *
 *   {
 *     "RoleName": "app-exec",                (optional: the file name stem)
 *     "Path": "/",                           (optional)
 *     "Description": "...",                  (optional)
 *     "MaxSessionDuration": 3600,            (optional, 3600..43200)
 *     "AssumeRolePolicyDocument": { ... },   (required: the trust policy)
 *     "PermissionsBoundary": "arn:...",      (optional: a managed policy ARN)
 *     "Policies": [ {"PolicyName": "read", "PolicyDocument": { ... }} ],
 *     "ManagedPolicyArns": [ "arn:aws:iam::aws:policy/service-role/..." ]
 *   }
 *
 * Documents may be given as JSON objects or as strings. Unknown members,
 * bad names and malformed policies are errors naming the file. Loading
 * replaces every file-declared role in one transaction (all files load or
 * none; the agent loads them at start and on SIGHUP), keeping the role id of
 * a role loaded before under the same name, so its sessions live on; such
 * roles cannot be changed through the API (UnmodifiableEntity: edit the file
 * and reload). */
#ifndef AL_IAM_H
#define AL_IAM_H

#include <stddef.h>

#include "aws/local/local.h"
#include "aws/policy.h"

#define AL_ROLE_NAME_MAX 64
#define AL_ROLE_PATH_MAX 512
#define AL_POLICY_NAME_MAX 128
#define AL_ROLE_ARN_MAX 640
#define AL_TRUST_POLICY_MAX 2048 /* IAM's default ACLSizePerRole */
#define AL_ROLE_MANAGED_MAX 10   /* IAM's default PoliciesPerRole */
#define AL_ROLES_DIR_MAX_FILES 256
#define AL_ROLE_FILE_MAX (64u * 1024u)

/* Users and groups (iam_users.c), with IAM's default quotas. */
#define AL_USER_NAME_MAX 64
#define AL_GROUP_NAME_MAX 128
#define AL_USER_POLICY_SIZE_MAX 2048  /* all of a user's inline policies (UserPolicySize) */
#define AL_GROUP_POLICY_SIZE_MAX 5120 /* all of a group's inline policies (GroupPolicySize) */
#define AL_USER_KEYS_MAX 2            /* AccessKeysPerUser */
#define AL_USER_GROUPS_MAX 10         /* GroupsPerUser */
#define AL_ENTITY_MANAGED_MAX 10      /* PoliciesPerUser, PoliciesPerGroup */
#define AL_USER_TAGS_MAX 50

typedef struct al_iam_user {
    char name[AL_USER_NAME_MAX + 1];
    char user_id[32];
    char path[AL_ROLE_PATH_MAX + 1];
    char arn[AL_ROLE_ARN_MAX];
    double created;
} al_iam_user;

/* Reads a user (name compared case-insensitively). 0, -ENOENT, -EIO. */
int al_iam_user_get(al_ctx *c, const char *name, al_iam_user *out);

/* The user name of arn:aws:iam::ACCOUNT:user/PATH/NAME in our account
 * (into name[AL_USER_NAME_MAX + 1]); false for anything else. */
bool al_iam_user_of_principal(al_ctx *c, const char *principal, char *name, size_t n);

typedef struct al_iam_role {
    char name[AL_ROLE_NAME_MAX + 1];
    char role_id[32];
    char path[AL_ROLE_PATH_MAX + 1];
    char arn[AL_ROLE_ARN_MAX];
    int max_session;
    char *trust; /* es_malloc'ed */
} al_iam_role;

/* A role's policies, compiled for aw_policy_evaluate. */
typedef struct al_iam_policies {
    aw_policy **identity;
    size_t n_identity;
    aw_policy *boundary; /* NULL: none */
} al_iam_policies;

/* Compiles the user's effective identity policies: its inline and attached
 * managed policies and those of each of its groups (no boundary). 0,
 * -ENOENT (no such user), -ENOMEM, -EIO. */
int al_iam_user_policies(al_ctx *c, const char *name, al_iam_policies *out);

/* Reads a role (name compared case-insensitively, as IAM does). 0,
 * -ENOENT, -EIO. Release with al_iam_role_clear. */
int al_iam_role_get(al_ctx *c, const char *name, al_iam_role *out);
void al_iam_role_clear(al_iam_role *r);

/* Compiles the role's inline and attached managed policies and its
 * boundary. Policies that no longer parse or exist are skipped (they cannot
 * allow anything). 0, -ENOENT (no such role), -ENOMEM, -EIO. */
int al_iam_role_policies(al_ctx *c, const char *role, al_iam_policies *out);
void al_iam_policies_clear(al_iam_policies *p);

/* Compiles a role's trust policy (a resource policy whose statements have no
 * Resource: the role is the resource). IAM's codes in e on failure:
 * MalformedPolicyDocument, LimitExceeded past AL_TRUST_POLICY_MAX. */
int al_iam_trust_compile(const char *doc, aw_policy **out, al_error *e);

/* The document of an AWS managed policy we know, NULL otherwise. */
const char *al_iam_aws_policy(const char *arn);

/* Replaces the file-declared roles with the *.json files of dir. A missing
 * directory loads nothing. 0, or -EINVAL/-EIO/-ENOMEM with "FILE: reason" in
 * err. */
int al_iam_load_roles_dir(al_ctx *c, const char *dir, char *err, size_t errlen);

#endif
