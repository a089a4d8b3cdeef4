#!/usr/bin/env python3
"""Every member of RegisterTaskDefinition and ContainerDefinition against docs/TASKDEF.md
and the agent (issue 20).

The members come from the botocore model that ships with the installed aws CLI, so a member
added upstream shows up here as a failure until the table (agent/tasks/td_fields.c and
docs/TASKDEF.md) says what the agent does with it. For each member, a task definition with
a sample value of it is registered through boto3 against the real daemon:
  works    registration succeeds and describe-task-definition returns the member as registered;
  kept     registration succeeds and describe returns the member exactly as registered;
  refused  ClientException whose message starts with the member's path, and the same
           member with an empty value ([], false, "") is accepted and returned as given.
Every member of the doc's tables must be one the agent knows (an unknown member is refused
as unknown), and every model member must have a row and a sample here.

Environment: ES_AGENT_BIN, ES_TEST_DOCKER_HOST; ES_SOURCE_DIR (default: two levels up)."""

import glob
import json
import os
import re
import sys

import botocore.exceptions

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
from drill import Agent  # noqa: E402

SRC = os.environ.get("ES_SOURCE_DIR",
                     os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ROLE = "arn:aws:iam::123456789012:role/fieldsExecution"

TASK_SAMPLES = {
    "family": None,  # in every request
    "containerDefinitions": None,
    "taskRoleArn": "arn:aws:iam::123456789012:role/fieldsTask",
    "executionRoleArn": ROLE,
    "networkMode": "none",
    "volumes": [{"name": "data", "host": {"sourcePath": "/tmp"}}],
    "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
    "requiresCompatibilities": ["EC2"],
    "cpu": "256",
    "memory": "512",
    "tags": [{"key": "team", "value": "fields"}],
    "pidMode": "host",
    "ipcMode": "host",
    "proxyConfiguration": {"type": "APPMESH", "containerName": "app"},
    "inferenceAccelerators": [{"deviceName": "d", "deviceType": "eia2.medium"}],
    "ephemeralStorage": {"sizeInGiB": 30},
    "runtimePlatform": {"operatingSystemFamily": "LINUX"},
    "enableFaultInjection": True,
}
CONTAINER_SAMPLES = {
    "name": None,
    "image": None,
    "repositoryCredentials": {"credentialsParameter": "fields/registry"},
    "cpu": 128,
    "memory": 256,
    "memoryReservation": 32,
    "links": ["db:db"],
    "portMappings": [{"containerPort": 8080, "hostPort": 18080, "protocol": "tcp"}],
    "essential": True,
    "restartPolicy": {"enabled": True},
    "entryPoint": ["/bin/sh", "-c"],
    "command": ["sleep 1"],
    "environment": [{"name": "A", "value": "1"}],
    "environmentFiles": [{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}],
    "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}],
    "volumesFrom": [{"sourceContainer": "other"}],
    "linuxParameters": {"initProcessEnabled": True},
    "secrets": [{"name": "S", "valueFrom": "/fields/s"}],
    "dependsOn": None,  # needs a second container: checked in the unit tests
    "startTimeout": 30,
    "stopTimeout": 10,
    "versionConsistency": "disabled",
    "hostname": "app",
    "user": "1000",
    "workingDirectory": "/srv",
    "disableNetworking": True,
    "privileged": True,
    "readonlyRootFilesystem": True,
    "dnsServers": ["10.0.0.2"],
    "dnsSearchDomains": ["example.internal"],
    "extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.3"}],
    "dockerSecurityOptions": ["no-new-privileges"],
    "interactive": True,
    "pseudoTerminal": True,
    "dockerLabels": {"team": "fields"},
    "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
    "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}},
    # given in full: ECS (and this agent) describe the defaults of those not given
    "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 30, "timeout": 5, "retries": 3},
    "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
    "resourceRequirements": [{"value": "1", "type": "GPU"}],
    "firelensConfiguration": {"type": "fluentbit"},
    "credentialSpecs": ["credentialspec:file://x.json"],
}
EMPTY = {list: [], dict: {}, bool: False, str: ""}


def model():
    """(task members, container members) of the installed aws CLI's ECS model."""
    import awscli
    root = os.path.join(os.path.dirname(awscli.__file__), "botocore", "data", "ecs")
    paths = sorted(glob.glob(os.path.join(root, "*", "service-2.json")))
    if not paths:
        import botocore
        paths = sorted(glob.glob(os.path.join(os.path.dirname(botocore.__file__), "data", "ecs",
                                              "*", "service-2.json")))
    with open(paths[-1], encoding="utf-8") as f:
        shapes = json.load(f)["shapes"]
    task = list(shapes["RegisterTaskDefinitionRequest"]["members"])
    container = list(shapes["ContainerDefinition"]["members"])
    return task, container, paths[-1]


def doc_tables():
    """{level: {member: fate}} from docs/TASKDEF.md's two tables."""
    tables, level = {"task": {}, "container": {}}, None
    with open(os.path.join(SRC, "docs", "TASKDEF.md"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("## RegisterTaskDefinition"):
                level = "task"
            elif line.startswith("## ContainerDefinition"):
                level = "container"
            elif line.startswith("## "):
                level = None
            m = re.match(r"\| `(\w+)` \| (works|kept|refused) \|", line)
            if level and m:
                tables[level][m.group(1)] = m.group(2)
    return tables


def main():
    task_members, container_members, path = model()
    tables = doc_tables()
    problems = []
    for level, members, samples in (("task", task_members, TASK_SAMPLES),
                                    ("container", container_members, CONTAINER_SAMPLES)):
        for m in members:
            if m not in tables[level]:
                problems.append(f"{level} member {m} (in {path}) has no row in docs/TASKDEF.md")
            if m not in samples:
                problems.append(f"{level} member {m} has no sample in this test")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)

    # a cluster of its own: it runs beside engine A's container tests (it only registers), and
    # clean_up removes its cluster's containers: "default" took test_selectors' running one
    agent = Agent("es-tdfields-", ["--cluster", "tdfields"])
    try:
        c = agent.start(services=("ecs",))
        ecs = c["ecs"]
        checked, newer = 0, []
        sm = ecs.meta.service_model
        client = {"task": sm.shape_for("RegisterTaskDefinitionRequest").members,
                  "container": sm.shape_for("ContainerDefinition").members}
        for level, samples in (("task", TASK_SAMPLES), ("container", CONTAINER_SAMPLES)):
            for member, fate in tables[level].items():
                value = samples.get(member)
                if value is None:
                    continue
                if member not in client[level]:
                    newer.append(member)  # boto3 would refuse to send it
                    continue
                check(agent, ecs, level, member, fate, value)
                checked += 1
        print(f"{checked} members registered against the table, "
              f"{len(task_members)}+{len(container_members)} in the model ({path}); "
              f"newer than this boto3's model, not sent: {', '.join(newer) or 'none'}")
        if checked < len(task_members) + len(container_members) - 5:
            agent.fail(f"only {checked} members checked")
        agent.stop("end")
    finally:
        agent.clean_up("tdfields")


def request(level, member, value):
    cont = {"name": "app", "image": "local/busybox:latest", "memory": 64}
    td = {"family": f"fields-{level}-{member}", "executionRoleArn": ROLE,
          "containerDefinitions": [cont]}
    (td if level == "task" else cont)[member] = value
    # the members that name another part of the definition get it (issue 20)
    if level == "container" and member == "mountPoints":
        td["volumes"] = TASK_SAMPLES["volumes"]
    if level == "container" and member == "volumesFrom":
        td["containerDefinitions"].append({"name": "other", "image": "local/busybox:latest",
                                           "memory": 64})
    return td


def described(ecs, level, family):
    """The task definition as described; its tags are the answer's own member, as in ECS."""
    r = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    d = r["taskDefinition"]
    if level == "task":
        d = dict(d, tags=r["tags"]) if r.get("tags") else d
        return d
    return d["containerDefinitions"][0]


def check(agent, ecs, level, member, fate, value):
    path = member if level == "task" else f"containerDefinitions[0].{member}"
    td = request(level, member, value)
    try:
        ecs.register_task_definition(**td)
        got = None
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]
    if fate == "refused":
        if not got or got["Code"] != "ClientException" or not got["Message"].startswith(path + ":"):
            agent.fail(f"{path}: the table says refused; the agent answered {got or 'success'}")
        print(f"refused {path}: {got['Message']}")
        if isinstance(value, dict) or type(value) not in EMPTY:
            return  # {} would fail the client's own check of required members; a number is never empty
        empty = EMPTY[type(value)]
        td = request(level, member, empty)
        ecs.register_task_definition(**td)
        back = described(ecs, level, td["family"])
        if back.get(member) != empty:
            agent.fail(f"{path}: an empty value should be kept as given, describe says "
                       f"{back.get(member)!r}")
        return
    if got:
        agent.fail(f"{path}: the table says {fate}; the agent refused it: {got}")
    back = described(ecs, level, td["family"])
    if member not in back:
        agent.fail(f"{path}: registered but not returned by describe-task-definition")
    if back[member] != value:
        agent.fail(f"{path}: {fate}, but describe returns {back[member]!r}, not {value!r}")
    print(f"{fate} {path}")


if __name__ == "__main__":
    main()
