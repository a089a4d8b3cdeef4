/* sts.h - the embedded STS: AssumeRole, GetCallerIdentity, GetSessionToken,
 * GetAccessKeyInfo and DecodeAuthorizationMessage (query protocol,
 * al_sts_qops), and the temporary credentials they issue.
 *
 * GetSessionToken (no permission needed, as in AWS): for an IAM user or the
 * account root, credentials acting as that same principal (sts_session
 * kind 'user' / 'root'); a user's session ends when the user is deleted.
 * Refused to callers using temporary credentials. MFA is not served.
 * GetAccessKeyInfo (sts:GetAccessKeyInfo) names the account of the keys
 * this store issued. DecodeAuthorizationMessage
 * (sts:DecodeAuthorizationMessage) opens what al_authz_message_encode
 * sealed (authz.h); anything else is InvalidAuthorizationMessageException.
 *
 * AssumeRole(RoleArn, RoleSessionName, DurationSeconds 900..43200 default
 * 3600 and at most the role's MaxSessionDuration - 1 hour when the caller is
 * itself a role session, ExternalId) is allowed when the role's trust policy
 * allows sts:AssumeRole for the caller (evaluated with the caller's identity
 * policies, aws/policy.h), or - for the administrator, who stands for the
 * ECS control plane here - when it allows the service principal
 * ecs-tasks.amazonaws.com. Session policies (Policy, PolicyArns) are refused
 * rather than ignored, since ignoring one would grant more than asked.
 *
 * A session: access key id "ASIA" + 16 characters, a 40-character secret,
 * and a session token; the row (sts_session) keeps the secret wrapped by the
 * host master key (label "sts session <AKID>" as AAD, like the long-term
 * keys in auth.c) and only the SHA-256 of the token. Requests signed with
 * it verify (al_verify -> al_sts_lookup) as principal
 * arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION when the token is sent and
 * matches (constant-time) and its role still exists with the same role id
 * (a role deleted and made again under the same name is another role), until
 * the expiry, after which they answer ExpiredToken(Exception). Sessions expired for more than a day
 * are purged on the next AssumeRole. */
#ifndef AL_STS_H
#define AL_STS_H

#include <stddef.h>
#include <time.h>

#include "aws/local/local.h"

#define AL_STS_AKID_LEN 20
#define AL_STS_SECRET_LEN 40
#define AL_STS_TOKEN_LEN 160
#define AL_STS_DURATION_MIN 900
#define AL_STS_DURATION_MAX 43200
#define AL_STS_DURATION_DEFAULT 3600
#define AL_STS_SESSION_NAME_MAX 64
/* GetSessionToken: a user's 900..129600 (default 43200); the root's are cut
 * to an hour, as AWS does. */
#define AL_STS_USER_DURATION_MAX 129600
#define AL_STS_USER_DURATION_DEFAULT 43200
#define AL_STS_ROOT_DURATION_MAX 3600
/* GetAccessKeyInfo's AccessKeyId, DecodeAuthorizationMessage's message */
#define AL_STS_AKID_MIN 16
#define AL_STS_AKID_MAX 128
#define AL_STS_ENCODED_MESSAGE_MAX 10240

/* The secret (es_malloc'ed, wipe it with es_free_secret_str) and principal
 * of temporary credentials akid presented with token (NULL when the request
 * carried none), at time now, for the signing name service (its error codes
 * follow: query services answer InvalidClientTokenId / ExpiredToken, JSON
 * services UnrecognizedClientException / ExpiredTokenException). 0 or a
 * negative errno with e filled. */
int al_sts_lookup(al_ctx *c, const char *akid, const char *token, const char *service, time_t now,
                  char **secret, char *principal, size_t plen, al_error *e);
/* The same, also answering when the session expires (epoch seconds; the
 * credentials are refused from then on). */
int al_sts_lookup_ex(al_ctx *c, const char *akid, const char *token, const char *service,
                     time_t now, char **secret, char *principal, size_t plen, double *expires,
                     al_error *e);

/* Issues a session for a role directly (what AssumeRole does after its
 * checks): for the agent, which assumes task execution roles in-process,
 * and for tests. role_name must exist. The caller wipes secret and token.
 * 0, -ENOENT, -EINVAL (bad session name or duration), -EIO. */
int al_sts_issue(al_ctx *c, const char *role_name, const char *session, int duration,
                 char akid[AL_STS_AKID_LEN + 1], char secret[AL_STS_SECRET_LEN + 1],
                 char token[AL_STS_TOKEN_LEN + 1], double *expires);

#endif
