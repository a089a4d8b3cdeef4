/* Fuzzes what an ECR pull reads from outside (issue 20): an image name
 * (the task definition's) read as an ECR image, with and without a local
 * registry standing for the account's ECR, and a GetAuthorizationToken
 * answer (ECR's, or whatever answers in its place). No crash; an ECR image
 * has a 12-digit account, a known region, a repository by ECR's rule and a
 * host that starts the image; a refusal says why; a token has a non-empty
 * user without ':' and a non-empty password of the length it claims. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/secrets/ecr.h"
#include "aws/ecr.h"
#include "aws/region.h"
#include "common/alloc.h"

static void check_image(const char *image, const ag_ecr_local *local)
{
    ag_ecr_image img;
    char err[512] = "";
    int rc = ag_ecr_image_parse(image, local, &img, err, sizeof err);
    if (rc < 0) {
        if (!err[0])
            __builtin_trap(); /* every refusal says why */
        return;
    }
    if (rc == 0)
        return;
    size_t hn = strlen(img.host);
    if (strlen(img.account) != 12 || strspn(img.account, "0123456789") != 12 ||
        !aw_region_find(img.region) || strlen(img.repo) < AG_ECR_REPO_MIN ||
        strlen(img.repo) > AG_ECR_REPO_MAX || strncmp(image, img.host, hn) != 0 ||
        image[hn] != '/' || strncmp(image + hn + 1, img.repo, strlen(img.repo)) != 0)
        __builtin_trap();
    char arn[AG_ECR_ARN_MAX];
    if (ag_ecr_repository_arn(&img, arn, sizeof arn) != 0 || strncmp(arn, "arn:", 4) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > AW_ECR_ANSWER_MAX)
        return 0;
    char *s = es_strndup((const char *)data, size);
    if (!s)
        return 0;
    /* the first line is an image name, the rest an answer */
    size_t il = strcspn(s, "\n");
    char image[512];
    if (il >= sizeof image)
        il = sizeof image - 1;
    memcpy(image, s, il);
    image[il] = '\0';
    check_image(image, NULL);
    ag_ecr_local local = {
        .host = "127.0.0.1:5000", .account = "123456789012", .region = "us-east-1"};
    check_image(image, &local);

    const char *body = s[il] ? s + il + 1 : s + il;
    size_t blen = size - (size_t)(body - s);
    aw_ecr_token t;
    if (aw_ecr_parse_token(body, blen, &t) == 0) {
        if (!t.username || !*t.username || strchr(t.username, ':') || !t.password ||
            t.password_len == 0 || strlen(t.password) != t.password_len || t.expires_at <= 0)
            __builtin_trap();
        aw_ecr_token_clear(&t);
    }
    es_free(s);
    return 0;
}
