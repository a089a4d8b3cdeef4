#!/usr/bin/env python3
"""The state directory's disk full during launches (issue 24's drills).

The agent's state directory is a 24 MiB tmpfs. Each round asks RunTask --count 5 (2 containers
each, an SSM SecureString and a Secrets Manager json-key) and, after a random delay, fills the
disk to its last byte while the launches run (every third round fills it before RunTask). It demands of every round:
  - the agent stays up and keeps answering (DescribeTasks, /metrics);
  - RunTask either succeeds or fails with ECS's ServerException naming the full disk: never a
    task launched that the agent cannot account for;
  - every task the agent reported settles RUNNING (its containers running) or STOPPED with an
    ECS-shaped reason and no running container; no container of a task the agent does not
    know;
then frees the disk, stops the round's running tasks, and restarts the agent (SIGTERM: exit 0,
"stopped", no sanitizer report): the next start must account for every container (adopted or
cleaned up), and every task it had reported RUNNING must be adopted RUNNING (the writes the
full disk refused are made again once it has room: at the sweep, or the stop's last try).

Environment: ES_AGENT_BIN, ES_TEST_DOCKER_HOST; optional ES_DISK_ROUNDS (6), ES_DISK_SEED."""

import json
import os
import random
import subprocess
import threading
import time

import botocore.exceptions

from drill import Agent, check_settled, no_values_logged, wait_tasks_settled

ROUNDS = int(os.environ.get("ES_DISK_ROUNDS", "6"))
SEED = int(os.environ.get("ES_DISK_SEED", str(random.randrange(1 << 30))))
CLUSTER = "diskdrill"
FILLER = "filler"


def set_up(c):
    key = c["kms"].create_key()["KeyMetadata"]["Arn"]
    c["ssm"].put_parameter(Name="/disk/db", Value="disk-ssm-value-1", Type="SecureString",
                           KeyId=key)
    sec = c["secretsmanager"].create_secret(Name="disk/api",
                                            SecretString='{"token":"disk-sm-value-1"}')
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    role = c["iam"].create_role(RoleName="diskExecution",
                                AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    c["iam"].put_role_policy(RoleName="diskExecution", PolicyName="read", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Resource": "*",
            "Action": ["ssm:GetParameters", "secretsmanager:GetSecretValue", "kms:Decrypt"]}]}))
    c["ecs"].register_task_definition(
        family="disk", networkMode="none", executionRoleArn=role,
        containerDefinitions=[{
            "name": name, "image": "local/busybox:latest", "essential": True,
            "command": ["sleep", "600"], "stopTimeout": 1,
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": "/disk/db"},
                        {"name": "API_TOKEN", "valueFrom": sec["ARN"] + ":token::"}]}
            for name in ("app", "sidecar")])


def fill(state):
    """Writes zeros until the file system says it is full; the bytes left free."""
    fd = os.open(os.path.join(state, FILLER), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 16, 512):  # then the last partial block
            block = b"\0" * size
            try:
                while True:
                    os.write(fd, block)
            except OSError:
                pass
    finally:
        os.close(fd)
    st = os.statvfs(state)
    return st.f_bavail * st.f_frsize


def free(state):
    try:
        os.unlink(os.path.join(state, FILLER))
    except FileNotFoundError:
        pass


def stop_running(agent, ecs, tasks):
    arns = [t["taskArn"] for t in tasks if t["lastStatus"] == "RUNNING"]
    for arn in arns:
        ecs.stop_task(cluster=CLUSTER, task=arn, reason="drill round over")
    if arns:
        wait_tasks_settled(agent, ecs, CLUSTER, "stopping the round's tasks", timeout=90)


def main():
    rng = random.Random(SEED)
    print(f"test_disk_full_launch: {ROUNDS} rounds, seed {SEED} (ES_DISK_SEED)")
    agent = Agent("es-diskdrill-", ["--cluster", CLUSTER, "--task-cleanup-wait", "1s",
                                     "--drift-interval", "0", "--log-level", "info"])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=700", "tmpfs", agent.state],
                   check=True)
    t0 = time.monotonic()
    outcomes = {}
    try:
        c = agent.start()
        set_up(c)
        for rnd in range(1, ROUNDS + 1):
            # a third of the rounds fill the disk before RunTask: its first write must fail
            delay = rng.uniform(0, 1.5) if rnd % 3 else -1.0
            result = {}

            def run():
                try:
                    r = c["ecs"].run_task(cluster=CLUSTER, taskDefinition="disk", count=5)
                    result["tasks"] = [t["taskArn"] for t in r["tasks"]]
                except botocore.exceptions.ClientError as e:
                    result["error"] = (e.response["Error"]["Code"], e.response["Error"]["Message"])

            th = threading.Thread(target=run)
            if delay < 0:
                left = fill(agent.state)
                th.start()
            else:
                th.start()
                time.sleep(delay)
                left = fill(agent.state)
            th.join(timeout=60)
            if th.is_alive():
                agent.fail(f"round {rnd}: RunTask did not answer within 60 s on a full disk")
            if agent.proc.poll() is not None:
                agent.fail(f"round {rnd}: the agent exited ({agent.proc.returncode}) on a full disk")
            if "error" in result:
                code, msg = result["error"]
                if code != "ServerException" or "full" not in msg.lower():
                    agent.fail(f"round {rnd}: RunTask on a full disk answered {code}: {msg}")
                outcome = "RunTask refused (ServerException, disk full)"
            else:
                outcome = f"RunTask answered {len(result['tasks'])} tasks"
            tasks = wait_tasks_settled(agent, c["ecs"], CLUSTER, f"round {rnd} (disk full)",
                                       timeout=120)
            mine = [t for t in tasks if t["taskArn"] in result.get("tasks", [])]
            running = sum(t["lastStatus"] == "RUNNING" for t in mine)
            reasons = sorted({t.get("stoppedReason", "")[:90] for t in mine
                              if t["lastStatus"] == "STOPPED"})
            with open(f"/proc/{agent.proc.pid}/status", encoding="ascii") as f:
                rss = next(l.split()[1] for l in f if l.startswith("VmRSS"))
            when = f"{delay:.2f} s after RunTask" if delay >= 0 else "before RunTask"
            print(f"round {rnd}: disk filled {when} ({left} bytes left); "
                  f"{outcome}; {running} RUNNING, {len(mine) - running} STOPPED {reasons}; "
                  f"agent RSS {rss} kB", flush=True)
            outcomes[outcome.split(" (")[0]] = outcomes.get(outcome.split(" (")[0], 0) + 1
            reported_running = {t["taskArn"] for t in tasks if t["lastStatus"] == "RUNNING"}

            free(agent.state)
            agent.stop(f"round {rnd}")
            c = agent.start()
            after = check_settled(agent, c["ecs"], CLUSTER, f"round {rnd}, after the restart")
            known = {t["taskArn"]: t for t in after}
            lost = [a for a in reported_running if a not in known]
            if lost:
                agent.fail(f"round {rnd}: tasks reported RUNNING on the full disk are unknown "
                           f"after the restart: {lost}")
            # the disk was freed before the stop: the writes the full disk refused were made
            # again (sweep, or the stop's last try), so those tasks are adopted RUNNING, not
            # taken for interrupted launches
            not_adopted = [(a, known[a]["lastStatus"], known[a].get("stoppedReason"))
                           for a in reported_running if known[a]["lastStatus"] != "RUNNING"]
            if not_adopted:
                agent.fail(f"round {rnd}: tasks RUNNING before the restart are not adopted: "
                           f"{not_adopted}")
            tasks = wait_tasks_settled(agent, c["ecs"], CLUSTER, f"round {rnd}, restarted")
            stop_running(agent, c["ecs"], tasks)
        agent.stop("the last stop")
        no_values_logged(agent, ["disk-ssm-value-1", "disk-sm-value-1"])
    finally:
        free(agent.state)
        if agent.proc and agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()
        subprocess.run(["umount", agent.state], check=False)
        agent.clean_up(CLUSTER)
    print(f"test_disk_full_launch: {ROUNDS} rounds; "
          f"{', '.join(f'{k}: {v}' for k, v in sorted(outcomes.items()))}; every task settled, "
          f"every container accounted for before and after each restart; "
          f"{time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
