/* ecr.h - the embedded ECR: GetAuthorizationToken only (issue 20).
 *
 * A local registry (al_options.ecr_registry, "host:port": Debian's
 * docker-registry with htpasswd, say) stands for the account's ECR host in
 * the home region. GetAuthorizationToken, authorised as ecr:
 * GetAuthorizationToken on "*" (IAM evaluated as for the other services),
 * answers ECR's shape with the registry's user as the token:
 * authorizationData[0] = {authorizationToken: base64("USER:PASSWORD"),
 * expiresAt: now + AL_ECR_TOKEN_TTL_S, proxyEndpoint: "https://host:port"}.
 * USER:PASSWORD is read at each call from al_options.ecr_credentials_file
 * (one line, at most AL_ECR_CREDENTIALS_MAX bytes, a regular file not
 * readable by others), so a changed password is handed out at the next
 * call (the agent's resolver keeps tokens it got: resolve.h). registryIds, when given, must name
 * the account (another account's ECR is not here). The registry itself checks the pull: the
 * repository's ecr:BatchGetImage and ecr:GetDownloadUrlForLayer are the
 * agent's preflight's, not the registry's.
 *
 * Nothing of the token in an error or a log line. */
#ifndef AL_ECR_H
#define AL_ECR_H

#define AL_ECR_TOKEN_TTL_S (12 * 3600) /* ECR's tokens last 12 hours */
#define AL_ECR_CREDENTIALS_MAX 1024
#define AL_ECR_REGISTRY_IDS_MAX 10 /* ECR's limit on registryIds */

#endif
