/* region.c - the table of regions and partitions (region.h). */
#include "aws/region.h"

#include <string.h>

#define DNS_AWS "amazonaws.com"
#define DNS_CN "amazonaws.com.cn"
#define DNS_ISO "c2s.ic.gov"
#define DNS_ISOB "sc2s.sgov.gov"
#define DNS_ISOE "cloud.adc-e.uk"
#define DNS_ISOF "csp.hci.ic.gov"
#define DNS_EUSC "amazonaws.eu"

/* As AWS lists them (botocore's endpoints data, AWS's region list), by
 * partition. */
static const aw_region_info regions[] = {
    {"us-east-1", "aws", DNS_AWS},
    {"us-east-2", "aws", DNS_AWS},
    {"us-west-1", "aws", DNS_AWS},
    {"us-west-2", "aws", DNS_AWS},
    {"af-south-1", "aws", DNS_AWS},
    {"ap-east-1", "aws", DNS_AWS},
    {"ap-east-2", "aws", DNS_AWS},
    {"ap-south-1", "aws", DNS_AWS},
    {"ap-south-2", "aws", DNS_AWS},
    {"ap-northeast-1", "aws", DNS_AWS},
    {"ap-northeast-2", "aws", DNS_AWS},
    {"ap-northeast-3", "aws", DNS_AWS},
    {"ap-southeast-1", "aws", DNS_AWS},
    {"ap-southeast-2", "aws", DNS_AWS},
    {"ap-southeast-3", "aws", DNS_AWS},
    {"ap-southeast-4", "aws", DNS_AWS},
    {"ap-southeast-5", "aws", DNS_AWS},
    {"ap-southeast-6", "aws", DNS_AWS},
    {"ap-southeast-7", "aws", DNS_AWS},
    {"ca-central-1", "aws", DNS_AWS},
    {"ca-west-1", "aws", DNS_AWS},
    {"eu-central-1", "aws", DNS_AWS},
    {"eu-central-2", "aws", DNS_AWS},
    {"eu-west-1", "aws", DNS_AWS},
    {"eu-west-2", "aws", DNS_AWS},
    {"eu-west-3", "aws", DNS_AWS},
    {"eu-south-1", "aws", DNS_AWS},
    {"eu-south-2", "aws", DNS_AWS},
    {"eu-north-1", "aws", DNS_AWS},
    {"il-central-1", "aws", DNS_AWS},
    {"me-south-1", "aws", DNS_AWS},
    {"me-central-1", "aws", DNS_AWS},
    {"mx-central-1", "aws", DNS_AWS},
    {"sa-east-1", "aws", DNS_AWS},
    {"cn-north-1", "aws-cn", DNS_CN},
    {"cn-northwest-1", "aws-cn", DNS_CN},
    {"us-gov-west-1", "aws-us-gov", DNS_AWS},
    {"us-gov-east-1", "aws-us-gov", DNS_AWS},
    {"us-iso-east-1", "aws-iso", DNS_ISO},
    {"us-iso-west-1", "aws-iso", DNS_ISO},
    {"us-isob-east-1", "aws-iso-b", DNS_ISOB},
    {"eu-isoe-west-1", "aws-iso-e", DNS_ISOE},
    {"us-isof-south-1", "aws-iso-f", DNS_ISOF},
    {"us-isof-east-1", "aws-iso-f", DNS_ISOF},
    {"eusc-de-east-1", "aws-eusc", DNS_EUSC},
};
#define NREGIONS (sizeof regions / sizeof regions[0])

const aw_region_info *aw_region_find(const char *region)
{
    if (!region)
        return NULL;
    for (size_t i = 0; i < NREGIONS; i++)
        if (strcmp(regions[i].name, region) == 0)
            return &regions[i];
    return NULL;
}

const char *aw_region_partition(const char *region)
{
    const aw_region_info *r = aw_region_find(region);
    return r ? r->partition : NULL;
}

bool aw_partition_known(const char *p, size_t n)
{
    if (!p || n == 0 || n > AW_PARTITION_MAX)
        return false;
    for (size_t i = 0; i < NREGIONS; i++)
        if (strlen(regions[i].partition) == n && memcmp(regions[i].partition, p, n) == 0)
            return true;
    return false;
}

/* Levenshtein distance of two short strings, stopping at cap + 1. */
static size_t distance(const char *a, const char *b, size_t cap)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > 32 || nb > 32)
        return cap + 1;
    size_t row[33];
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0], best = row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t v = diag + (a[i - 1] != b[j - 1]);
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            if (up + 1 < v)
                v = up + 1;
            row[j] = v;
            diag = up;
            if (v < best)
                best = v;
        }
        if (best > cap)
            return cap + 1;
    }
    return row[nb];
}

const char *aw_region_nearest(const char *name)
{
    const size_t cap = 3;
    const char *best = NULL;
    size_t bd = cap + 1;
    for (size_t i = 0; name && i < NREGIONS; i++) {
        size_t d = distance(name, regions[i].name, cap);
        if (d < bd) {
            bd = d;
            best = regions[i].name;
        }
    }
    return best;
}

size_t aw_region_count(void)
{
    return NREGIONS;
}

const aw_region_info *aw_region_at(size_t i)
{
    return i < NREGIONS ? &regions[i] : NULL;
}
