/* ecr.h - ECR GetAuthorizationToken: the token an image pull from ECR is
 * made with (issue 20), in mode aws from real ECR and in embedded mode from
 * the embedded ECR (aws/local/ecr.h).
 *
 * Wire: JSON 1.1, X-Amz-Target AmazonEC2ContainerRegistry_V20150921.
 * GetAuthorizationToken, signed "ecr"; the answer's authorizationData[] has
 * authorizationToken (base64 of "USER:PASSWORD", USER being "AWS" on AWS),
 * expiresAt (epoch seconds, a number) and proxyEndpoint
 * ("https://ACCOUNT.dkr.ecr.REGION.amazonaws.com").
 *
 * The token is a secret: the callback's result is wiped when it returns
 * (steal the pointers and wipe them yourself). The library does not log. */
#ifndef ES_AWS_ECR_H
#define ES_AWS_ECR_H

#include <stddef.h>
#include <stdint.h>

#include "aws/client.h"

#define AW_ECR_TOKEN_MAX 8192   /* authorizationToken, base64 (AWS's are about 2.4 KiB) */
#define AW_ECR_USER_MAX 256     /* the decoded user name */
#define AW_ECR_ENDPOINT_MAX 512 /* proxyEndpoint */
#define AW_ECR_ANSWER_MAX 65536 /* the whole answer */
#define AW_ECR_REGISTRY_ID_LEN 12

typedef struct aw_ecr_token {
    char *username; /* "AWS" */
    char *password; /* SECRET, NUL-terminated */
    size_t password_len;
    int64_t expires_at;   /* epoch seconds */
    char *proxy_endpoint; /* may be NULL */
} aw_ecr_token;

/* Reads a GetAuthorizationToken answer's first authorizationData member:
 * 0; -EPROTO (not the shape, no member, a token that is not strict base64
 * of "USER:PASSWORD" with a non-empty user and password, past the bounds
 * above, no expiresAt); -ENOMEM. Nothing of the token in any error. */
int aw_ecr_parse_token(const char *body, size_t len, aw_ecr_token *out);
/* Wipes the password, frees everything; NULL-safe. */
void aw_ecr_token_clear(aw_ecr_token *t);

typedef void (*aw_ecr_token_cb)(void *arg, const aw_error *err, aw_ecr_token *tok);
/* GetAuthorizationToken in region (NULL: the client's) for registry_id (12
 * digits; NULL: the caller's account's, as the SDKs default). 0, or -EINVAL /
 * -ENOMEM (cb not called). */
int aw_ecr_get_authorization_token(aw_client *c, const aw_sigv4_creds *creds, const char *region,
                                   const char *registry_id, aw_ecr_token_cb cb, void *arg);

#endif
