/* tags.h - the ECS API's tag operations on the three kinds of resource
 * this agent has (issue 21), with ECS's rules (agent/tasks/tags.h):
 *
 *   TagResource          resourceArn, tags[] -> {} (keys given replace
 *                        their values; the others stay)
 *   UntagResource        resourceArn, tagKeys[] -> {} (unknown keys: no
 *                        error)
 *   ListTagsForResource  resourceArn -> tags[]
 *
 * resourceArn is one of this agent's region and account:
 *   arn:aws:ecs:R:A:task-definition/FAMILY:REVISION
 *   arn:aws:ecs:R:A:task/CLUSTER/ID
 *   arn:aws:ecs:R:A:service/CLUSTER/NAME (the long form; the short
 *       service/NAME is refused, as ECS refuses it)
 * Anything else is InvalidParameterException; an ARN of the right shape
 * naming nothing is ResourceNotFoundException "The specified resource
 * could not be found."; another cluster ClusterNotFoundException. A
 * service's tags go through the scheduler (ag_svc_set_tags), which also
 * checks its redeploy-on-rotation tags; the others straight to the store.
 * Each operation is authorised as ECS does: ecs:TagResource /
 * ecs:UntagResource / ecs:ListTagsForResource on the resource ARN, with
 * ecs:cluster for tasks and services.
 *
 * ag_api_read_tags is the one reader of the `tags` member that
 * RegisterTaskDefinition, RunTask and CreateService accept. */
#ifndef AG_API_TAGS_H
#define AG_API_TAGS_H

#include "agent/api/api.h"
#include "agent/services/scheduler.h"
#include "agent/tasks/engine.h"
#include "agent/tasks/tags.h"

#define AG_API_RESOURCE_ARN_MAX 2048

typedef struct ag_api_tags ag_api_tags;

/* Adds the three operations. sched may be NULL (services then unknown). 0,
 * -ENOMEM, -ENOSPC. */
int ag_api_tags_attach(ag_api *api, ag_engine *engine, ag_svc_sched *sched, ag_api_tags **out);
void ag_api_tags_free(ag_api_tags *t);

/* The request's `tags` member into out (empty when absent). 0, or < 0
 * after ag_api_fail (InvalidParameterException naming the member). */
int ag_api_read_tags(ag_api_req *rq, ag_tags *out);
/* The same from a tags list's JSON text (a definition's kept member). */
int ag_api_read_tags_text(ag_api_req *rq, const char *json, ag_tags *out);

#endif
