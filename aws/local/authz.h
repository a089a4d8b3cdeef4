/* authz.h - authorisation of every embedded call, the way IAM does it.
 *
 * al_authz_install makes the store ask al_authz_check before each action
 * on each resource (the hook al_authorize calls; see local.h). Callers:
 *   arn:aws:iam::ACCOUNT:root (the administrator key)    everything in our
 *       account (an explicit Deny in a resource policy still denies);
 *   arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION        the role's inline
 *       and attached managed policies, within its permissions boundary;
 *   arn:aws:iam::ACCOUNT:user/PATH/NAME                   the user's inline
 *       and attached managed policies and its groups' (while the user
 *       exists under that ARN);
 *   anything else                                          no policies.
 * The resource policy: for KMS keys (arn:aws:kms:...:key/ID) the default
 * key policy, whose arn:aws:iam::ACCOUNT:root statement delegates to IAM
 * policies; none otherwise. Context keys given to conditions:
 * aws:PrincipalArn (the role ARN for a session), aws:PrincipalAccount,
 * aws:PrincipalType, aws:userid, aws:username (users), aws:CurrentTime,
 * aws:EpochTime, aws:RequestedRegion; for kms: actions kms:CallerAccount and,
 * when SSM or Secrets Manager use the key for the caller, kms:ViaService
 * ("ssm.REGION.amazonaws.com", "secretsmanager.REGION.amazonaws.com").
 *
 * A refusal's message is AWS's ("User: ARN is not authorized to perform:
 * ACTION on resource: ARN because no identity-based policy allows the
 * ACTION action", or "... with an explicit deny in an identity-based
 * policy"), produced by aw_decision_message. */
#ifndef AL_AUTHZ_H
#define AL_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/local/local.h"
#include "aws/policy.h"

/* Installs the hook on c (replacing any al_options.authz decision). */
void al_authz_install(al_ctx *c);

/* 0 allows; -EACCES denies with AWS's message in why; -ENOMEM/-EIO. */
int al_authz_check(al_ctx *c, const char *principal, const char *action, const char *resource,
                   char *why, size_t whylen);

/* The general form: a resource policy of the caller's choosing (a role's
 * trust policy for sts:AssumeRole), extra context entries, and for
 * AssumeRole's rules the identity policies left out (no_identity) or the
 * resource account overridden (resource_account: a trust policy must allow
 * even in the same account, which is the cross-account rule). kind (may be
 * NULL) receives the decision. */
typedef struct al_authz_req {
    const char *principal;
    const char *action;
    const char *resource;
    size_t resource_len;              /* strlen(resource) when the caller has it, else 0 */
    const aw_policy *resource_policy; /* NULL: the default for the resource */
    const aw_ctx_entry *extra;
    size_t nextra;
    bool no_identity;
    const char *resource_account; /* NULL: from the resource ARN */
    /* when set: the name of the policy that decided (the first allowing
     * statement's for an allow, the first matching Deny's for an explicit
     * deny; "" for an implicit deny), for SimulatePrincipalPolicy */
    char *matched;
    size_t matchedlen;
} al_authz_req;

int al_authz_evaluate(al_ctx *c, const al_authz_req *q, char *why, size_t whylen,
                      aw_decision_kind *kind);

/* The encoded authorization message of principal doing action on resource:
 * the decision in AWS's decoded shape ({"allowed", "explicitDeny",
 * "matchedStatements", "failures", "context": {"principal": {"arn"},
 * "action", "resource", "conditions"}}), sealed under the host master key
 * and base64-encoded onto out. 0, -ENOMEM, -EIO. */
int al_authz_message_encode(al_ctx *c, const char *principal, const char *action,
                            const char *resource, es_buf *out);
/* Opens a message al_authz_message_encode made, appending its JSON to json.
 * -EINVAL for anything else (not base64, not sealed here, altered),
 * -ENOMEM, -EMSGSIZE. */
int al_authz_message_decode(al_ctx *c, const char *encoded, es_buf *json);

#endif
