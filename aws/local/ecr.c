/* ecr.c - the embedded ECR's GetAuthorizationToken (ecr.h). */
#include "aws/local/ecr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/local/internal.h"
#include "common/alloc.h"
#include "common/secure.h"

/* Reads the USERNAME:PASSWORD line into buf (a secret: the caller wipes
 * it). Its length, or -1 with e filled (naming the file, never its
 * content). */
static ssize_t read_credentials(al_ctx *c, char *buf, size_t cap, al_error *e)
{
    const char *path = c->ecr_credentials_file;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    const char *why = NULL;
    if (fd < 0)
        why = strerror(errno);
    else if (fstat(fd, &st) < 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (st.st_mode & 0007)
        why = "readable by others (chmod o-rwx)";
    else if ((size_t)st.st_size >= cap)
        why = "too large";
    ssize_t n = -1;
    if (!why) {
        n = read(fd, buf, cap - 1);
        if (n < 0)
            why = strerror(errno);
    }
    if (fd >= 0)
        close(fd);
    if (why) {
        al_fail(e, 500, "ServerException",
                "The embedded ECR cannot read its registry credentials file %s: %s.", path, why);
        return -1;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    const char *colon = memchr(buf, ':', (size_t)n);
    if (!colon || colon == buf || colon == buf + n - 1 || memchr(buf, '\n', (size_t)n) ||
        strlen(buf) != (size_t)n) {
        al_fail(e, 500, "ServerException",
                "The embedded ECR's registry credentials file %s is not one USERNAME:PASSWORD "
                "line.",
                path);
        return -1;
    }
    return n;
}

static int get_authorization_token(al_ctx *c, const char *principal, const es_json *req, es_jw *w,
                                   al_error *e)
{
    if (al_authorize(c, principal, "ecr:GetAuthorizationToken", "*", e) < 0)
        return -EACCES;
    const es_json *ids = es_json_get(req, "registryIds");
    if (ids && ids->type != ES_JSON_NULL) {
        if (ids->type != ES_JSON_ARRAY || es_json_len(ids) < 1 ||
            es_json_len(ids) > AL_ECR_REGISTRY_IDS_MAX)
            return al_fail(e, 400, "InvalidParameterException",
                           "registryIds must be a list of 1 to %d registry IDs.",
                           AL_ECR_REGISTRY_IDS_MAX);
        for (size_t i = 0; i < es_json_len(ids); i++) {
            const char *id = es_json_as_str(es_json_at(ids, i));
            if (!id || strlen(id) != 12 || strspn(id, "0123456789") != 12)
                return al_fail(e, 400, "InvalidParameterException",
                               "Invalid parameter at 'registryIds' failed to satisfy constraint: "
                               "'Member must satisfy regular expression pattern: [0-9]{12}'");
            if (strcmp(id, c->account) != 0)
                return al_fail(e, 400, "InvalidParameterException",
                               "The embedded ECR serves the registry of account %s only, not %s.",
                               c->account, id);
        }
    }
    if (!c->ecr_registry || !c->ecr_credentials_file)
        return al_fail(e, 400, "InvalidParameterException",
                       "The embedded ECR has no registry (ECS_SECRETS_ECR_REGISTRY and "
                       "ECS_SECRETS_ECR_CREDENTIALS_FILE are not set).");
    char cred[AL_ECR_CREDENTIALS_MAX];
    ssize_t n = read_credentials(c, cred, sizeof cred, e);
    if (n < 0) {
        es_wipe(cred, sizeof cred);
        return -EIO;
    }
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, "https://%s", c->ecr_registry);
    es_jw_obj(w);
    es_jw_key(w, "authorizationData");
    es_jw_arr(w);
    es_jw_obj(w);
    es_jw_key(w, "authorizationToken");
    al_jw_b64(w, (const uint8_t *)cred, (size_t)n);
    es_jw_key(w, "expiresAt");
    es_jw_int(w, (int64_t)al_now(c) + AL_ECR_TOKEN_TTL_S);
    es_jw_kstr(w, "proxyEndpoint", endpoint);
    es_jw_obj_end(w);
    es_jw_arr_end(w);
    es_jw_obj_end(w);
    es_wipe(cred, sizeof cred);
    return 0;
}

const al_op al_ecr_ops[] = {
    {"GetAuthorizationToken", get_authorization_token},
    {NULL, NULL},
};
