/* name.h - ECS's rule for the names of task-definition families and
 * containers: 1 to max letters, digits, hyphens and underscores. One rule
 * for the task-definition parser, the ECS API's arguments and the cluster's
 * etcd keys, so that they cannot drift apart. */
#ifndef ES_COMMON_NAME_H
#define ES_COMMON_NAME_H

#include <stdbool.h>
#include <stddef.h>

/* true when s[0..n) is 1..max of [A-Za-z0-9_-] */
bool es_name_ok(const char *s, size_t n, size_t max);

#endif
