#!/usr/bin/env python3
"""SIGTERM at random points of 10 concurrent launches, ROUNDS times (issue 24).

Each round starts the agent on one state directory, asks RunTask --count 10 for a task
definition whose containers take secrets from SSM (a SecureString under a customer managed
key) and Secrets Manager (a json-key), and sends SIGTERM after a random delay: before the
request, during the preflight, the AssumeRole, the fetches, the creates or the starts. It
demands of every stop:
  - exit status 0 and "stopped" in the log (no crash, no handle left open);
  - no sanitizer report (the agent is the ASan/UBSan build in CI; leaks are errors);
and of every next start:
  - every task of the round before converges to RUNNING (its containers adopted and running)
    or to STOPPED with a stoppedReason, and a STOPPED task has no running container;
  - no container of any task is left that the agent does not know.
Then it stops the round's running tasks (so containers do not pile up) and goes on.

Environment: ES_AGENT_BIN, ES_TEST_DOCKER_HOST (unix://...), optional ES_STOP_ROUNDS (50),
ES_STOP_SEED (random), ES_STOP_MAX_DELAY (seconds, 12). Prints a line per round and a
summary of where the stops landed."""

import json
import os
import random
import re
import threading
import time

import botocore.exceptions

from drill import Agent, docker

ROUNDS = int(os.environ.get("ES_STOP_ROUNDS", "50"))
SEED = int(os.environ.get("ES_STOP_SEED", str(random.randrange(1 << 30))))
MAX_DELAY = float(os.environ.get("ES_STOP_MAX_DELAY", "12"))
CLUSTER = "stopdrill"


def cluster_containers():
    """{task_arn: [(container id, running)]} for this test's cluster."""
    out = docker("ps", "-a", "--filter", f"label=com.amazonaws.ecs.cluster={CLUSTER}",
                 "--format", '{{.ID}} {{.State}} {{.Label "com.amazonaws.ecs.task-arn"}}')
    found = {}
    for line in out.splitlines():
        cid, state, arn = line.split(" ", 2)
        found.setdefault(arn, []).append((cid, state == "running"))
    return found


def set_up(c):
    """A role that may read both secrets, the secrets, and the task definition."""
    key = c["kms"].create_key()["KeyMetadata"]["Arn"]
    c["ssm"].put_parameter(Name="/drill/db_password", Value="drill-ssm-value-1",
                           Type="SecureString", KeyId=key)
    sec = c["secretsmanager"].create_secret(Name="drill/api",
                                            SecretString='{"token":"drill-sm-value-1"}')
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    role = c["iam"].create_role(RoleName="drillExecution",
                                AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ssm:GetParameters", "secretsmanager:GetSecretValue",
                                       "kms:Decrypt"], "Resource": "*"}]}
    c["iam"].put_role_policy(RoleName="drillExecution", PolicyName="read",
                             PolicyDocument=json.dumps(policy))
    c["ecs"].register_task_definition(
        family="drill", networkMode="none", executionRoleArn=role,
        containerDefinitions=[{
            "name": name, "image": "local/busybox:latest", "essential": True,
            "command": ["sleep", "600"], "stopTimeout": 1,
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": "/drill/db_password"},
                        {"name": "API_TOKEN", "valueFrom": sec["ARN"] + ":token::"}]}
            for name in ("app", "sidecar")])


def all_tasks(ecs):
    arns = []
    for desired in ("RUNNING", "STOPPED"):
        token = None
        while True:
            kw = {"cluster": CLUSTER, "desiredStatus": desired}
            if token:
                kw["nextToken"] = token
            page = ecs.list_tasks(**kw)
            arns += page["taskArns"]
            token = page.get("nextToken")
            if not token:
                break
    tasks = []
    for i in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster=CLUSTER, tasks=arns[i:i + 100])["tasks"]
    return tasks


def converge(agent, ecs, round_no, seen):
    """Every task RUNNING or STOPPED within 60 s; then checks its containers. Returns the
    running arns and how many tasks not in seen (the last round's) are RUNNING and STOPPED,
    and adds them to seen."""
    deadline = time.monotonic() + 60
    while True:
        tasks = all_tasks(ecs)
        open_ = [t for t in tasks if t["lastStatus"] not in ("RUNNING", "STOPPED")]
        # a RUNNING task whose stop is asked is still on its way
        open_ += [t for t in tasks if t["lastStatus"] == "RUNNING"
                  and t["desiredStatus"] == "STOPPED"]
        if not open_:
            break
        if time.monotonic() > deadline:
            agent.fail(f"round {round_no}: tasks did not converge: "
                 + ", ".join(f'{t["taskArn"]}={t["lastStatus"]}' for t in open_))
        time.sleep(0.2)
    known = {t["taskArn"]: t for t in tasks}
    containers = cluster_containers()
    for arn, cs in containers.items():
        if arn not in known:
            agent.fail(f"round {round_no}: containers {cs} of a task the agent does not know: {arn}")
    running = []
    new_running = new_stopped = 0
    reasons = set()
    for t in tasks:
        if t["taskArn"] not in seen:
            seen.add(t["taskArn"])
            if t["lastStatus"] == "RUNNING":
                new_running += 1
            else:
                new_stopped += 1
                reasons.add(t.get("stoppedReason", ""))
        cs = containers.get(t["taskArn"], [])
        if t["lastStatus"] == "RUNNING":
            if len(cs) != 2 or not all(r for _, r in cs):
                agent.fail(f"round {round_no}: RUNNING task {t['taskArn']} has containers {cs}")
            running.append(t["taskArn"])
        else:
            if not t.get("stoppedReason"):
                agent.fail(f"round {round_no}: STOPPED task {t['taskArn']} has no stoppedReason")
            if any(r for _, r in cs):
                agent.fail(f"round {round_no}: STOPPED task {t['taskArn']} has a running container "
                     f"{cs}")
    return running, new_running, new_stopped, reasons


def stop_all(agent, ecs, arns):
    for arn in arns:
        ecs.stop_task(cluster=CLUSTER, task=arn, reason="drill round over")
    deadline = time.monotonic() + 60
    while arns:
        tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]
        if all(t["lastStatus"] == "STOPPED" for t in tasks):
            return
        if time.monotonic() > deadline:
            agent.fail("stopped tasks did not reach STOPPED within 60 s")
        time.sleep(0.2)


def draw_delay(rng):
    """Half the stops inside the first 0.3 s, where the preflights, AssumeRoles and fetches
    run (issue 24's crash was there); a third among the creates and starts (10 tasks of 2
    containers take about 9 s on the test engine); the rest up to MAX_DELAY, mostly once
    every task runs."""
    r = rng.random()
    if r < 0.5:
        return rng.uniform(0, 0.3)
    if r < 0.85:
        return rng.uniform(0.3, 4)
    return rng.uniform(4, MAX_DELAY)


def stamp(line):
    m = re.match(r"\d{4}-\d\d-\d\dT(\d\d):(\d\d):(\d\d\.\d+)Z", line)
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def launch_span(text):
    """[seconds from the first "launching" to the tenth RUNNING] when a run got that far."""
    lines = text.splitlines()
    first = next((stamp(l) for l in lines if ": launching drill:" in l), None)
    running = [stamp(l) for l in lines if l.endswith("-> RUNNING")]
    if first is None or len(running) < 10:
        return []
    return [running[9] - first]


def main():
    rng = random.Random(SEED)
    print(f"test_stop_mid_launch: {ROUNDS} rounds, seed {SEED} (ES_STOP_SEED), delays up to "
          f"{MAX_DELAY} s")
    agent = Agent("es-stopdrill-", ["--cluster", CLUSTER, "--task-cleanup-wait", "1s",
                                     "--drift-interval", "0", "--log-level", "info"])
    landed = {}
    launch_secs = []
    t0 = time.monotonic()
    try:
        c = agent.start()
        set_up(c)
        seen = set()
        reasons = set()
        for rnd in range(1, ROUNDS + 1):
            if rnd > 1:
                c = agent.start()
            running, adopted, stopped, why = converge(agent, c["ecs"], rnd, seen)
            reasons |= why
            stop_all(agent, c["ecs"], running)
            delay = draw_delay(rng)
            result = {}

            def run():
                try:
                    r = c["ecs"].run_task(cluster=CLUSTER, taskDefinition="drill", count=10)
                    result["tasks"] = len(r["tasks"])
                except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
                    result["error"] = type(e).__name__

            th = threading.Thread(target=run)
            th.start()
            time.sleep(delay)
            text = agent.stop(f"round {rnd} (SIGTERM {delay:.3f} s after RunTask)")
            th.join(timeout=60)
            if not launch_secs:
                launch_secs.extend(launch_span(text))
            interrupted = re.search(r"(\d+) launch(?:es)? interrupted", text)
            kept = re.search(r"(\d+) running tasks? keep", text)
            if not text.count(": launching drill:"):
                spot = "before any launch"
            elif interrupted:
                spot = "mid-launch"
            else:
                spot = "after the launches"
            landed[spot] = landed.get(spot, 0) + 1
            print(f"round {rnd}: SIGTERM at {delay:.3f} s ({spot}): exit 0; "
                  f"{interrupted.group(1) if interrupted else 0} launches interrupted, "
                  f"{kept.group(1) if kept else 0} running kept; previous round: "
                  f"{adopted} adopted RUNNING, {stopped} STOPPED", flush=True)
        c = agent.start()
        running, _, _, why = converge(agent, c["ecs"], ROUNDS + 1, seen)
        reasons |= why
        stop_all(agent, c["ecs"], running)
        agent.stop("the last stop")
    finally:
        agent.clean_up(CLUSTER)
    print(f"test_stop_mid_launch: {ROUNDS} stops, every one exit 0 with no sanitizer report; "
          f"landed: {', '.join(f'{k} {v}' for k, v in sorted(landed.items()))}; "
          f"{time.monotonic() - t0:.0f} s")
    if launch_secs:
        print(f"10 launches took {launch_secs[0]:.2f} s (launching to the tenth RUNNING) in a "
              "round that got that far")
    print("stoppedReasons seen: " + "; ".join(sorted(reasons)))


if __name__ == "__main__":
    main()
