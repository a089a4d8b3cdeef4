#!/usr/bin/env python3
"""dockerd stopped and started again under the agent, mid-launch and mid-deployment (issue 24).

The test engine runs without live-restore, as dockerd does by default: stopping it stops every
container. Rounds of two kinds, on one agent that is never restarted:
  - mid-launch: RunTask --count 6 (an SSM SecureString and a Secrets Manager json-key per
    container), dockerd stopped after a random delay (during the creates and starts), left down
    a few seconds, started again;
  - mid-deployment: a service of 3 tasks, its parameter rotated and a new deployment forced,
    dockerd stopped after a random delay, left down, started again.
Demands: the agent does not exit while Docker is away (nor on its way back); once dockerd
answers, every task converges to RUNNING (containers running) or to STOPPED with an ECS-shaped
reason and no running container; no container exists of a task the agent does not know; the
service is back at 3 RUNNING tasks of one COMPLETED deployment holding the latest version; a
new RunTask runs; no secret value in the log; SIGTERM at the end exits 0 (no sanitizer report).

Environment: ES_AGENT_BIN, ES_TEST_DOCKER_HOST, ES_TEST_DOCKERD_CTL (tests/harness/dockerd.sh,
with ES_TEST_DOCKER_ROOT); optional ES_DOCKERD_ROUNDS (2 of each kind), ES_DOCKERD_SEED."""

import json
import os
import random
import threading
import time

from drill import Agent, engine, no_values_logged, wait_service, wait_tasks_settled

ROUNDS = int(os.environ.get("ES_DOCKERD_ROUNDS", "2"))
SEED = int(os.environ.get("ES_DOCKERD_SEED", str(random.randrange(1 << 30))))
CLUSTER = "dockerddrill"
ATTR = "ecs-secrets-agent/secret/app/DB"
VALUES = ["dockerd-ssm-value-1", "dockerd-sm-value-1"]


def set_up(c):
    key = c["kms"].create_key()["KeyMetadata"]["Arn"]
    c["ssm"].put_parameter(Name="/dockerd/db", Value=VALUES[0], Type="SecureString", KeyId=key)
    sec = c["secretsmanager"].create_secret(Name="dockerd/api",
                                            SecretString=json.dumps({"token": VALUES[1]}))
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    role = c["iam"].create_role(RoleName="dockerdDrill",
                                AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    c["iam"].put_role_policy(RoleName="dockerdDrill", PolicyName="read", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Resource": "*",
            "Action": ["ssm:GetParameters", "secretsmanager:GetSecretValue", "kms:Decrypt"]}]}))
    for family, names in (("burst", ("app", "sidecar")), ("svc", ("app",))):
        c["ecs"].register_task_definition(
            family=family, networkMode="none", executionRoleArn=role,
            containerDefinitions=[{
                "name": n, "image": "local/busybox:latest", "stopTimeout": 1,
                # exits on SIGTERM (a PID 1 sleep ignores it): dockerd's stop is quick
                "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"],
                "secrets": [{"name": "DB", "valueFrom": "/dockerd/db"},
                            {"name": "API", "valueFrom": sec["ARN"] + ":token::"}]}
                for n in names])


def outage(d, rng, what):
    """dockerd stopped now, down 2-5 s, started again; the agent must live through it. Returns
    once the agent has reconciled with the engine that came back: until then its view is the
    one from before the outage (a deployment that completed just before would look settled
    while dockerd has killed its containers)."""
    with open(d.log, encoding="utf-8", errors="replace") as f:
        before = len(f.read())
    down = engine("stop")
    time.sleep(rng.uniform(2, 5))
    if d.proc.poll() is not None:
        d.fail(f"{what}: the agent exited ({d.proc.returncode}) while dockerd was down")
    up = engine("start")
    if d.proc.poll() is not None:
        d.fail(f"{what}: the agent exited ({d.proc.returncode}) as dockerd came back")
    deadline = time.monotonic() + 60
    while True:
        with open(d.log, encoding="utf-8", errors="replace") as f:
            after = f.read()[before:]
        # the reconnect's reconcile ran after the engine came back: its list is the new one
        if up > 0 and after.count("docker: reconciled (") >= 1 and "events stream lost" in after:
            tail = after[after.rindex("events stream lost"):]
            if "docker: reconciled (" in tail:
                break
        if time.monotonic() > deadline:
            d.fail(f"{what}: the agent did not reconcile with dockerd within 60 s of its return")
        time.sleep(0.1)
    return down, up


def mid_launch(d, c, rng, rnd, seen):
    result = {}

    def run():
        try:
            result["n"] = len(c["ecs"].run_task(cluster=CLUSTER, taskDefinition="burst",
                                                count=6)["tasks"])
        except Exception as e:  # noqa: BLE001 - the answer may be lost with the engine
            result["error"] = repr(e)

    th = threading.Thread(target=run)
    th.start()
    delay = rng.uniform(0.3, 3.5)
    time.sleep(delay)
    down, up = outage(d, rng, f"mid-launch round {rnd}")
    th.join(timeout=60)
    tasks = wait_tasks_settled(d, c["ecs"], CLUSTER, f"mid-launch round {rnd}")
    new = [t for t in tasks if t["taskArn"] not in seen]
    seen.update(t["taskArn"] for t in new)
    stopped = [t for t in new if t["lastStatus"] == "STOPPED"]
    why = sorted({t["stoppedReason"] for t in stopped})
    print(f"mid-launch round {rnd}: dockerd stopped {delay:.2f} s after RunTask (stop took "
          f"{down:.1f} s, start {up:.1f} s); RunTask {result}; settled: "
          f"{sum(t['lastStatus'] == 'RUNNING' for t in new)} RUNNING, {len(stopped)} STOPPED "
          f"({'; '.join(why)})", flush=True)
    for t in tasks:
        if t["lastStatus"] == "RUNNING" and t.get("group") != "service:web":
            c["ecs"].stop_task(cluster=CLUSTER, task=t["taskArn"], reason="drill round over")


def mid_deployment(d, c, rng, rnd):
    version = c["ssm"].put_parameter(Name="/dockerd/db", Value=f"dockerd-ssm-value-{rnd + 1}",
                                     Type="SecureString", Overwrite=True)["Version"]
    VALUES.append(f"dockerd-ssm-value-{rnd + 1}")
    c["ecs"].update_service(cluster=CLUSTER, service="web", forceNewDeployment=True)
    delay = rng.uniform(0.3, 3)
    time.sleep(delay)
    down, up = outage(d, rng, f"mid-deployment round {rnd}")
    t0 = time.monotonic()
    wait_service(d, c, CLUSTER, "web", 3, str(version), ATTR, timeout=120)
    print(f"mid-deployment round {rnd}: dockerd stopped {delay:.2f} s into a forced deployment "
          f"(stop {down:.1f} s, start {up:.1f} s); the service back at 3 RUNNING on version "
          f"{version}, one COMPLETED deployment, {time.monotonic() - t0:.1f} s after dockerd "
          "answered", flush=True)
    return version


def main():
    rng = random.Random(SEED)
    print(f"test_dockerd_restart: {ROUNDS} rounds of each kind, seed {SEED} (ES_DOCKERD_SEED)")
    d = Agent("es-dockerddrill-", ["--cluster", CLUSTER, "--task-cleanup-wait", "1s",
                                    "--drift-interval", "1", "--log-level", "info"])
    t0 = time.monotonic()
    try:
        c = d.start(("ecs", "ssm", "secretsmanager", "kms", "iam"))
        set_up(c)
        seen = set()
        for rnd in range(1, ROUNDS + 1):
            mid_launch(d, c, rng, rnd, seen)
        c["ecs"].create_service(cluster=CLUSTER, serviceName="web", taskDefinition="svc",
                                desiredCount=3)
        wait_service(d, c, CLUSTER, "web", 3, "1", ATTR)
        for rnd in range(1, ROUNDS + 1):
            mid_deployment(d, c, rng, rnd)
        # the engine is back for good: a new launch runs
        arns = [t["taskArn"] for t in c["ecs"].run_task(cluster=CLUSTER, taskDefinition="burst",
                                                         count=2)["tasks"]]
        tasks = wait_tasks_settled(d, c["ecs"], CLUSTER, "the launch after the rounds")
        late = [t for t in tasks if t["taskArn"] in arns]
        if [t["lastStatus"] for t in late] != ["RUNNING", "RUNNING"]:
            d.fail(f"a RunTask after the outages: {[(t['lastStatus'], t.get('stoppedReason')) for t in late]}")
        text = d.run_log()
        if "events stream reconnected" not in text:
            d.fail("the agent never said its events stream reconnected")
        c["ecs"].delete_service(cluster=CLUSTER, service="web", force=True)
        d.stop("the last stop")
        no_values_logged(d, VALUES)
    finally:
        d.clean_up(CLUSTER)
    print(f"test_dockerd_restart: {2 * ROUNDS} dockerd outages, the agent up throughout, every "
          f"task settled with an ECS-shaped reason, no unknown container, no value in the log; "
          f"{time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
