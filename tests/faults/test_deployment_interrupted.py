#!/usr/bin/env python3
"""A service's forced deployments interrupted by the agent's stop (issue 24's drills).

A service of 3 tasks whose container takes an SSM SecureString, the drift check every second.
Each round rotates the parameter, forces a new deployment and, after a random delay, stops
the agent: SIGTERM on even rounds (it must exit 0 with "stopped" and no sanitizer report),
SIGKILL on odd ones (the agent killed mid-deployment). Every start must then bring the
service back: at the end it runs its 3 tasks under one COMPLETED deployment, every task holds
the latest value's version, no container exists that the agent does not know, and every
STOPPED task says why.

Environment: ES_AGENT_BIN, ES_TEST_DOCKER_HOST; optional ES_DEPLOY_ROUNDS (12),
ES_DEPLOY_SEED (random)."""

import json
import os
import random
import signal
import time

from drill import Agent, docker

ROUNDS = int(os.environ.get("ES_DEPLOY_ROUNDS", "12"))
SEED = int(os.environ.get("ES_DEPLOY_SEED", str(random.randrange(1 << 30))))
CLUSTER = "deploydrill"


def set_up(c):
    c["ssm"].put_parameter(Name="/drill/db", Value="deploy-value-1", Type="SecureString")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    role = c["iam"].create_role(RoleName="deployDrill",
                                AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    c["iam"].put_role_policy(RoleName="deployDrill", PolicyName="read", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*",
                                                 "Action": ["ssm:GetParameters", "kms:Decrypt"]}]}))
    c["ecs"].register_task_definition(
        family="deploydrill", networkMode="none", executionRoleArn=role,
        containerDefinitions=[{"name": "app", "image": "local/busybox:latest",
                               "command": ["sleep", "600"], "stopTimeout": 1,
                               "secrets": [{"name": "DB", "valueFrom": "/drill/db"}]}])
    c["ecs"].create_service(cluster=CLUSTER, serviceName="web", taskDefinition="deploydrill",
                            desiredCount=3)


def converged(d, c, version):
    """The service back at 3 RUNNING tasks of one COMPLETED deployment, each holding the
    parameter's current version, within 90 s; then the containers and stopped tasks."""
    deadline = time.monotonic() + 90
    while True:
        svc = c["ecs"].describe_services(cluster=CLUSTER, services=["web"])["services"][0]
        deps = [(x["status"], x["rolloutState"]) for x in svc["deployments"]]
        arns = c["ecs"].list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]
        tasks = c["ecs"].describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
        held = [a["value"].split()[1] for t in tasks for a in t.get("attributes", [])
                if a["name"] == "ecs-secrets-agent/secret/app/DB"]
        if (svc["runningCount"] == 3 and deps == [("PRIMARY", "COMPLETED")] and len(tasks) == 3
                and all(t["lastStatus"] == "RUNNING" for t in tasks)
                and held == [version] * 3):
            break
        if time.monotonic() > deadline:
            d.fail(f"the service did not converge: running {svc['runningCount']}, deployments "
                   f"{deps}, tasks {[t['lastStatus'] for t in tasks]}, versions {held} (want "
                   f"{version})")
        time.sleep(0.5)
    known = set()
    for status in ("RUNNING", "STOPPED"):
        token = None
        while True:
            kw = {"cluster": CLUSTER, "desiredStatus": status}
            if token:
                kw["nextToken"] = token
            page = c["ecs"].list_tasks(**kw)
            for i in range(0, len(page["taskArns"]), 100):
                for t in c["ecs"].describe_tasks(cluster=CLUSTER,
                                                 tasks=page["taskArns"][i:i + 100])["tasks"]:
                    known.add(t["taskArn"])
                    if t["lastStatus"] == "STOPPED" and not t.get("stoppedReason"):
                        d.fail(f"STOPPED task {t['taskArn']} says no reason")
            token = page.get("nextToken")
            if not token:
                break
    out = docker("ps", "-a", "--filter", f"label=com.amazonaws.ecs.cluster={CLUSTER}",
                 "--format", '{{.ID}} {{.Label "com.amazonaws.ecs.task-arn"}}')
    for line in out.splitlines():
        cid, arn = line.split(" ", 1)
        if arn not in known:
            d.fail(f"container {cid} of a task the agent does not know: {arn}")


def main():
    rng = random.Random(SEED)
    print(f"test_deployment_interrupted: {ROUNDS} rounds, seed {SEED} (ES_DEPLOY_SEED)")
    d = Agent("es-deploydrill-", ["--cluster", CLUSTER, "--drift-interval", "1",
                                  "--task-cleanup-wait", "1s"])
    t0 = time.monotonic()
    try:
        c = d.start(("ecs", "ssm", "iam"))
        set_up(c)
        converged(d, c, "1")
        version = 1
        for rnd in range(1, ROUNDS + 1):
            if rnd > 1:
                c = d.start(("ecs", "ssm", "iam"))
            version = c["ssm"].put_parameter(Name="/drill/db", Value=f"deploy-value-{rnd + 1}",
                                             Type="SecureString", Overwrite=True)["Version"]
            c["ecs"].update_service(cluster=CLUSTER, service="web", forceNewDeployment=True)
            delay = rng.uniform(0, 4)
            time.sleep(delay)
            how = signal.SIGKILL if rnd % 2 else signal.SIGTERM
            d.stop(f"round {rnd}", how)
            print(f"round {rnd}: {'SIGKILL' if how == signal.SIGKILL else 'SIGTERM (exit 0)'} "
                  f"{delay:.2f} s into a forced deployment", flush=True)
        c = d.start(("ecs", "ssm", "iam"))
        # a restart may find the last deployment half done: it goes on from there
        converged(d, c, str(version))
        c["ecs"].delete_service(cluster=CLUSTER, service="web", force=True)
        d.stop("the last stop")
    finally:
        d.clean_up(CLUSTER)
    print(f"test_deployment_interrupted: {ROUNDS} interrupted deployments, the service back at "
          f"3 tasks on version {version}, one COMPLETED deployment, no unknown container; "
          f"{time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
