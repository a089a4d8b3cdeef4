/* td_fields.h - every member of ECS's RegisterTaskDefinition and of its
 * ContainerDefinition, and what this agent does with each (issue 20).
 *
 * A silent difference from ECS is worse than a refusal: the user finds out in
 * production. So no member is ignored. Each one is
 *   WORKS    parsed into the model and given to Docker as ECS gives it;
 *   KEPT     accepted and returned by DescribeTaskDefinition as registered,
 *            with no effect here, for the reason given (ECS on this launch
 *            type gives it none either, or it only informs placement);
 *   REFUSED  refused at registration with a ClientException naming the field
 *            and this reason, unless its value is empty (null, false, [] or
 *            {}), which says nothing and is kept as given.
 * A member not in the table (one ECS added after it was written) is refused
 * by name: the table is the whole list. docs/TASKDEF.md is the same table for
 * people; tests/integration/test_taskdef_fields.py checks the two against
 * each other and against the botocore model the installed aws CLI ships.
 *
 * Pure data, no I/O. */
#ifndef AG_TD_FIELDS_H
#define AG_TD_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum ag_td_fate {
    AG_FIELD_WORKS,
    AG_FIELD_KEPT,
    AG_FIELD_REFUSED,
} ag_td_fate;

typedef enum ag_td_level {
    AG_FIELD_TASK,      /* RegisterTaskDefinition's members */
    AG_FIELD_CONTAINER, /* ContainerDefinition's members */
} ag_td_level;

typedef struct ag_td_field {
    const char *name;
    ag_td_fate fate;
    bool modelled;   /* the model holds it; other accepted values are kept as JSON text */
    const char *why; /* KEPT: why it has no effect; REFUSED: the refusal's reason */
} ag_td_field;

/* The entry for name at level; NULL when the table does not know it. */
const ag_td_field *ag_td_field_find(ag_td_level level, const char *name);
/* The whole table of a level (for --help-like listings and tests). */
const ag_td_field *ag_td_fields(ag_td_level level, size_t *n);
const char *ag_td_fate_name(ag_td_fate f);

#endif
