/* ssm.h - the embedded SSM Parameter Store (operations in al_ssm_ops).
 *
 * Regions: every row is keyed by (region, canon): a parameter lives in the
 * region of the request that made it (al_region), and only requests in that
 * region see it; its ARN names that region and its partition.
 *
 * Storage: ssm_param (one row per parameter: display name, latest version,
 * next version number, policies and the Expiration time), ssm_version (one row per kept version:
 * type, value, key, description, pattern, tier, data type, modification), ssm_label (label ->
 * version, unique per parameter), ssm_tag.
 *
 * Names: `/a` and `a` are the same parameter; the row key ("canon") is the
 * name without the leading '/' of a one-level name. The ARN is
 * arn:PARTITION:ssm:R:A:parameter/NAME with NAME's leading '/' not doubled. A
 * SecureString value is stored only as the KMS blob sealed with the
 * encryption context {"PARAMETER_ARN": arn}, so a blob copied to another
 * parameter does not decrypt.
 *
 * Limits and rules (PROTOCOLS.md): names of a-zA-Z0-9_.-/ up to
 * AL_SSM_NAME_MAX, at most AL_SSM_MAX_LEVELS levels, the ARN at most
 * AL_SSM_ARN_MAX characters, no "aws"/"ssm" prefix on writes; values up to
 * 4096 bytes (Standard) or 8192 (Advanced); AL_SSM_VERSIONS_KEPT versions;
 * labels per AL_SSM_LABEL_* below. */
#ifndef AL_SSM_H
#define AL_SSM_H

#include "aws/local/internal.h"

#define AL_SSM_NAME_MAX 2048
#define AL_SSM_ARN_MAX 1011
#define AL_SSM_MAX_LEVELS 15
#define AL_SSM_STANDARD_VALUE_MAX 4096
#define AL_SSM_ADVANCED_VALUE_MAX 8192
#define AL_SSM_DESCRIPTION_MAX 1024
#define AL_SSM_PATTERN_MAX 1024
#define AL_SSM_VERSIONS_KEPT 100
#define AL_SSM_LABEL_MAX 100
#define AL_SSM_LABELS_PER_VERSION 10
#define AL_SSM_GET_MAX_NAMES 10
#define AL_SSM_TAGS_MAX 50
#define AL_SSM_REFERENCE_PREFIX "/aws/reference/secretsmanager/"

/* PutParameter's AllowedPattern check (PCRE2, bounded cost): 0 when value satisfies pattern
 * (or there is no pattern); else fills e (InvalidAllowedPatternException,
 * ParameterPatternMismatchException, or an internal error) and answers its negative errno.
 * Exposed for tests/fuzz/fuzz_al_pattern.c. */
int al_ssm_check_pattern(const char *pattern, const char *value, al_error *e);

/* Gives the parameters the regional migration (db.c, "regional SSM") left
 * with region '' - everything stored before parameters had a region - to
 * the home region (c->region), where they lived. al_open runs it after the
 * migrations, every start: it finds nothing to do after the first, and a
 * start that stopped between the migration and this step finishes it next
 * time. 0 or -EIO. */
int al_ssm_adopt_home(al_ctx *c);

#endif
