/* region.h - the regions AWS has, and the partition each belongs to.
 *
 * One table, compiled in: the embedded services answer in every region of
 * it (a request's region is its SigV4 scope's), the ARN parser accepts its
 * partitions, and a configured region that is not in it is refused with the
 * nearest name ("us-wst-2": did you mean us-west-2?). A region AWS opens
 * after this table was written is a one-line change here; until then the
 * embedded store refuses it as AWS refuses a region it does not have.
 *
 * Partitions are separate worlds in AWS (own accounts, own IAM, own ARN
 * prefix). The embedded store keeps one IAM for all of them (ARNs name the
 * partition of the request's region); its regional stores are apart. */
#ifndef ES_AWS_REGION_H
#define ES_AWS_REGION_H

#include <stdbool.h>
#include <stddef.h>

#define AW_PARTITION_MAX 15 /* "aws-us-gov", "aws-iso-b", ... */

typedef struct aw_region_info {
    const char *name;      /* "us-west-2" */
    const char *partition; /* "aws", "aws-cn", "aws-us-gov", "aws-iso", ... */
    const char *dns;       /* the partition's DNS suffix: "amazonaws.com", ... */
} aw_region_info;

/* The region named region (exact, lower case), or NULL. */
const aw_region_info *aw_region_find(const char *region);
/* The partition of a known region, or NULL. */
const char *aw_region_partition(const char *region);
/* Is p[0..n) the name of a partition of the table? */
bool aw_partition_known(const char *p, size_t n);
/* The known region nearest to name (edit distance at most 3), for "did you
 * mean"; NULL when none is that near. */
const char *aw_region_nearest(const char *name);
/* The number of regions in the table, and the i-th one (listing, tests). */
size_t aw_region_count(void);
const aw_region_info *aw_region_at(size_t i);

#endif
