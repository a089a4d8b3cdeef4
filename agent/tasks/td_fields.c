/* td_fields.c - see td_fields.h. Keep docs/TASKDEF.md in step with this
 * table (a test compares them). */
#include "agent/tasks/td_fields.h"

#include <stdbool.h>
#include <string.h>

#define W AG_FIELD_WORKS
#define K AG_FIELD_KEPT
#define R AG_FIELD_REFUSED

static const ag_td_field task_fields[] = {
    {"family", W, true, NULL},
    {"taskRoleArn", W, true, NULL},
    {"executionRoleArn", W, true, NULL},
    {"networkMode", W, true, NULL},
    {"containerDefinitions", W, true, NULL},
    {"volumes", W, true, NULL},
    {"placementConstraints", R, false,
     "this agent places every task on its own host and evaluates no placement constraint"},
    {"requiresCompatibilities", W, true, NULL},
    {"cpu", K, true,
     "on EC2 the task-level size informs placement; this agent runs every task on its own "
     "host and limits each container by its own cpu and memory"},
    {"memory", K, true,
     "on EC2 the task-level size informs placement; this agent runs every task on its "
     "own host and limits each container by its own cpu and memory"},
    {"tags", K, false,
     "the task definition's tags are kept and returned; they change nothing it runs"},
    {"pidMode", W, true, NULL},
    {"ipcMode", W, true, NULL},
    {"proxyConfiguration", R, false,
     "an App Mesh proxy configuration needs the awsvpc network mode"},
    {"inferenceAccelerators", R, false,
     "Elastic Inference accelerators are not available on this host"},
    {"ephemeralStorage", R, false,
     "ephemeral storage is a Fargate setting; this agent runs the EC2 "
     "launch type"},
    {"runtimePlatform", W, true, NULL},
    {"enableFaultInjection", R, false, "fault injection endpoints are not served by this agent"},
};

static const ag_td_field container_fields[] = {
    {"name", W, true, NULL},
    {"image", W, true, NULL},
    {"repositoryCredentials", W, true, NULL},
    {"cpu", W, true, NULL},
    {"memory", W, true, NULL},
    {"memoryReservation", W, true, NULL},
    {"links", R, false,
     "Docker's legacy links (deprecated by Docker) are not made by this agent: they need "
     "Docker's default bridge network; use the host network mode, where a task's containers "
     "reach each other on localhost, or extraHosts"},
    {"portMappings", W, true, NULL},
    {"essential", W, true, NULL},
    {"restartPolicy", W, true, NULL},
    {"entryPoint", W, true, NULL},
    {"command", W, true, NULL},
    {"environment", W, true, NULL},
    {"environmentFiles", W, true, NULL},
    {"mountPoints", W, true, NULL},
    {"volumesFrom", W, true, NULL},
    {"linuxParameters", W, true, NULL},
    {"secrets", W, true, NULL},
    {"dependsOn", W, true, NULL},
    {"startTimeout", W, true, NULL},
    {"stopTimeout", W, true, NULL},
    {"versionConsistency", K, false,
     "Docker resolves the image's tag once, at create, on this one host"},
    {"hostname", W, true, NULL},
    {"user", W, true, NULL},
    {"workingDirectory", W, true, NULL},
    {"disableNetworking", W, true, NULL},
    {"privileged", W, true, NULL},
    {"readonlyRootFilesystem", W, true, NULL},
    {"dnsServers", W, true, NULL},
    {"dnsSearchDomains", W, true, NULL},
    {"extraHosts", W, true, NULL},
    {"dockerSecurityOptions", W, true, NULL},
    {"interactive", W, true, NULL},
    {"pseudoTerminal", W, true, NULL},
    {"dockerLabels", W, true, NULL},
    {"ulimits", W, true, NULL},
    {"logConfiguration", W, true, NULL},
    {"healthCheck", W, true, NULL},
    {"systemControls", W, true, NULL},
    {"resourceRequirements", R, false,
     "GPUs and inference accelerators are not offered by this agent"},
    {"firelensConfiguration", R, false,
     "FireLens needs a log router sidecar that this agent does not run"},
    {"credentialSpecs", R, false, "gMSA credential specs are for Windows containers"},
};

#define N(a) (sizeof a / sizeof *a)

const ag_td_field *ag_td_fields(ag_td_level level, size_t *n)
{
    if (level == AG_FIELD_TASK) {
        *n = N(task_fields);
        return task_fields;
    }
    *n = N(container_fields);
    return container_fields;
}

const ag_td_field *ag_td_field_find(ag_td_level level, const char *name)
{
    size_t n;
    const ag_td_field *t = ag_td_fields(level, &n);
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

const char *ag_td_fate_name(ag_td_fate f)
{
    return f == AG_FIELD_WORKS ? "works" : f == AG_FIELD_KEPT ? "kept" : "refused";
}
