/* ecr.c - which images are ECR's (ecr.h). */
#include "agent/secrets/ecr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"

static bool lower_digit(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool alnum(char c)
{
    return lower_digit(c) || (c >= 'A' && c <= 'Z');
}

/* ECR's repositoryName: (?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*
 * i.e. components of lower-case letters and digits, separated inside by one
 * of . _ -, the components by single slashes. */
static bool repo_ok(const char *s, size_t n)
{
    if (n < AG_ECR_REPO_MIN || n > AG_ECR_REPO_MAX)
        return false;
    bool after_sep = true; /* at the start, after '/', '.', '_' or '-' */
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (lower_digit(c)) {
            after_sep = false;
        } else if (c == '/' || c == '.' || c == '_' || c == '-') {
            if (after_sep)
                return false;
            after_sep = true;
        } else {
            return false;
        }
    }
    return !after_sep;
}

/* Docker's tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
static bool tag_ok(const char *s, size_t n)
{
    if (n == 0 || n > AG_ECR_TAG_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!alnum(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

/* The OCI digest: ALGORITHM ":" ENCODED, the algorithm lower-case
 * components joined by + . _ -, the encoded part [A-Za-z0-9=_-]+ (sha256:
 * 64 lower-case hex, which ECR answers). */
static bool digest_ok(const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (n > AG_ECR_DIGEST_MAX || !colon || colon == s || colon == s + n - 1)
        return false;
    size_t an = (size_t)(colon - s);
    bool after_sep = true;
    for (size_t i = 0; i < an; i++) {
        if (lower_digit(s[i])) {
            after_sep = false;
        } else if (strchr("+._-", s[i]) && !after_sep) {
            after_sep = true;
        } else {
            return false;
        }
    }
    if (after_sep)
        return false;
    const char *e = colon + 1;
    size_t en = n - an - 1;
    for (size_t i = 0; i < en; i++)
        if (!alnum(e[i]) && e[i] != '=' && e[i] != '_' && e[i] != '-')
            return false;
    if (an == 6 && memcmp(s, "sha256", 6) == 0) {
        if (en != 64)
            return false;
        for (size_t i = 0; i < en; i++)
            if (!((e[i] >= '0' && e[i] <= '9') || (e[i] >= 'a' && e[i] <= 'f')))
                return false;
    }
    return true;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

/* ACCOUNT.dkr.ecr.REGION.DNS, DNS the region's partition's suffix. 1 read,
 * 0 not an ECR host, -EINVAL an ECR-looking host that breaks the rules. */
static int ecr_host(const char *h, size_t n, ag_ecr_image *out, char *err, size_t errlen)
{
    static const char mid[] = ".dkr.ecr.";
    const char *m = NULL;
    for (size_t i = 0; i + sizeof mid - 1 <= n && !m; i++)
        if (strncasecmp(h + i, mid, sizeof mid - 1) == 0)
            m = h + i;
    if (!m || !(ends_with(h, n, ".amazonaws.com") || ends_with(h, n, ".amazonaws.com.cn")))
        return 0;
    size_t an = (size_t)(m - h);
    if (an != AG_ECR_ACCOUNT_LEN)
        return es_errf(err, errlen, -EINVAL, "the ECR registry %.*s: its account is not 12 digits",
                       (int)n, h);
    for (size_t i = 0; i < an; i++)
        if (h[i] < '0' || h[i] > '9')
            return es_errf(err, errlen, -EINVAL,
                           "the ECR registry %.*s: its account is not 12 digits", (int)n, h);
    const char *r = m + sizeof mid - 1;
    const char *dot = memchr(r, '.', n - (size_t)(r - h));
    size_t rn = dot ? (size_t)(dot - r) : 0;
    char region[AW_REGION_MAX + 1];
    const aw_region_info *ri = NULL;
    if (rn > 0 && rn <= AW_REGION_MAX) {
        memcpy(region, r, rn);
        region[rn] = '\0';
        ri = aw_region_find(region);
    }
    if (!ri)
        return es_errf(err, errlen, -EINVAL, "the ECR registry %.*s: %.*s is not a region", (int)n,
                       h, (int)(rn ? rn : 1), rn ? r : "?");
    /* the rest is exactly the partition's suffix */
    size_t rest = n - (size_t)(dot + 1 - h);
    if (rest != strlen(ri->dns) || strncasecmp(dot + 1, ri->dns, rest) != 0)
        return es_errf(err, errlen, -EINVAL, "the ECR registry %.*s: region %s is reached under %s",
                       (int)n, h, ri->name, ri->dns);
    memcpy(out->account, h, AG_ECR_ACCOUNT_LEN);
    out->account[AG_ECR_ACCOUNT_LEN] = '\0';
    snprintf(out->region, sizeof out->region, "%s", ri->name);
    snprintf(out->partition, sizeof out->partition, "%s", ri->partition);
    return 1;
}

int ag_ecr_image_parse(const char *image, const ag_ecr_local *local, ag_ecr_image *out, char *err,
                       size_t errlen)
{
    const char *slash = image ? strchr(image, '/') : NULL;
    if (!slash || !out)
        return 0; /* Docker Hub (no registry part) */
    size_t hn = (size_t)(slash - image);
    if (hn == 0 || hn > AG_ECR_HOST_MAX)
        return 0;
    ag_ecr_image img;
    memset(&img, 0, sizeof img);
    int rc;
    if (local && local->host && *local->host && strlen(local->host) == hn &&
        strncasecmp(image, local->host, hn) == 0) {
        const aw_region_info *ri = local->region ? aw_region_find(local->region) : NULL;
        if (!ri || !local->account || strlen(local->account) != AG_ECR_ACCOUNT_LEN)
            return es_errf(err, errlen, -EINVAL, "the local ECR registry has no account or region");
        snprintf(img.account, sizeof img.account, "%s", local->account);
        snprintf(img.region, sizeof img.region, "%s", ri->name);
        snprintf(img.partition, sizeof img.partition, "%s", ri->partition);
        img.local = true;
    } else if ((rc = ecr_host(image, hn, &img, err, errlen)) <= 0) {
        return rc;
    }
    memcpy(img.host, image, hn);
    img.host[hn] = '\0';
    /* REPO[:TAG][@DIGEST] */
    const char *path = slash + 1;
    size_t pn = strlen(path);
    const char *at = memchr(path, '@', pn);
    size_t end = at ? (size_t)(at - path) : pn;
    if (at && !digest_ok(at + 1, pn - end - 1))
        return es_errf(err, errlen, -EINVAL,
                       "the ECR image %.*s: its digest is not ALGORITHM:HEX (sha256: 64 "
                       "lower-case hex digits)",
                       (int)hn, image);
    const char *last_slash = NULL;
    for (size_t i = 0; i < end; i++)
        if (path[i] == '/')
            last_slash = path + i;
    const char *from = last_slash ? last_slash + 1 : path;
    const char *colon = memchr(from, ':', end - (size_t)(from - path));
    size_t rn = colon ? (size_t)(colon - path) : end;
    if (colon && !tag_ok(colon + 1, end - rn - 1))
        return es_errf(err, errlen, -EINVAL,
                       "the ECR image in %.*s: its tag breaks Docker's rule "
                       "([A-Za-z0-9_][A-Za-z0-9_.-], at most %d)",
                       (int)hn, image, AG_ECR_TAG_MAX);
    if (!repo_ok(path, rn))
        return es_errf(err, errlen, -EINVAL,
                       "the ECR image in %.*s: its repository name breaks ECR's rule (%d-%d "
                       "lower-case letters, digits and . _ - / separators)",
                       (int)hn, image, AG_ECR_REPO_MIN, AG_ECR_REPO_MAX);
    memcpy(img.repo, path, rn);
    img.repo[rn] = '\0';
    *out = img;
    return 1;
}

int ag_ecr_repository_arn(const ag_ecr_image *img, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "arn:%s:ecr:%s:%s:repository/%s", img->partition, img->region,
                     img->account, img->repo);
    return n < 0 || (size_t)n >= outlen ? -EMSGSIZE : 0;
}
