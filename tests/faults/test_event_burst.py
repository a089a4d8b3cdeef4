#!/usr/bin/env python3
"""1,000 tasks' events in a burst (issue 24's drills).

The agent runs against tests/faults/docker_fake.py (a real container takes about half a second
on the test engine; this drill wants 1,000 of them running at once). RunTask --count 10, 100
times, each task one container taking an SSM SecureString; once the 1,000 run:
  1. every container dies at once: 1,000 "die" events written to the events stream in one go;
  2. 1,000 more tasks; then 500 die with their events and 500 with none (dockerd drops events
     for a reader that falls behind), which only the periodic reconcile can find.
It demands: every task STOPPED with stopCode EssentialContainerExited and the exit code within
60 s of each burst; the ECS API and /metrics answering all along (each call timed: the slowest
printed, and over 5 s is a failure: a loop that wrote each task change in a transaction of its
own was frozen 3 s by 300 deaths, so 1,000 would take about 10 s; a sanitizer build in a loaded
CI run took 2.3 s once); the agent's memory back near where it was; a SIGTERM at
the end exits 0 with no sanitizer report; no value in the log.

Environment: ES_AGENT_BIN; optional ES_BURST_TASKS (1000)."""

import json
import os
import tempfile
import threading
import time
import urllib.request

import drill
from docker_fake import DockerFake
from drill import Agent, no_values_logged

TASKS = int(os.environ.get("ES_BURST_TASKS", "1000"))
CLUSTER = "burstdrill"
SLOW_S = float(os.environ.get("ES_BURST_SLOW_S", "5.0"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return int(next(l.split()[1] for l in f if l.startswith("VmRSS")))


class Prober(threading.Thread):
    """Times DescribeClusters and /metrics every 50 ms while a burst is handled."""

    def __init__(self, agent, ecs):
        super().__init__(daemon=True)
        self.agent, self.ecs = agent, ecs
        self.stop_flag = threading.Event()
        self.worst = {"ecs": 0.0, "metrics": 0.0}
        self.calls = 0

    def run(self):
        while not self.stop_flag.is_set():
            t = time.monotonic()
            self.ecs.describe_clusters(clusters=[CLUSTER])
            self.worst["ecs"] = max(self.worst["ecs"], time.monotonic() - t)
            t = time.monotonic()
            with urllib.request.urlopen(self.agent.url + "/metrics", timeout=30) as r:
                r.read()
            self.worst["metrics"] = max(self.worst["metrics"], time.monotonic() - t)
            self.calls += 1
            time.sleep(0.05)


def run_tasks(agent, ecs, n):
    arns = []
    for _ in range(n // 10):
        arns += [t["taskArn"] for t in
                 ecs.run_task(cluster=CLUSTER, taskDefinition="burst", count=10)["tasks"]]
    return arns


def statuses(ecs, arns):
    out = []
    for i in range(0, len(arns), 100):
        out += ecs.describe_tasks(cluster=CLUSTER, tasks=arns[i:i + 100])["tasks"]
    return out


def wait_all(agent, ecs, arns, status, timeout, what):
    t0 = time.monotonic()
    while True:
        tasks = statuses(ecs, arns)
        done = [t for t in tasks if t["lastStatus"] == status]
        if len(done) == len(arns):
            return tasks, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            agent.fail(f"{what}: {len(done)} of {len(arns)} tasks {status} after {timeout} s")
        time.sleep(0.5)


def burst(agent, c, fake, arns, silent, what):
    """Kills the running containers: all with events, or `silent` of them without."""
    ids = fake.running()
    probe = Prober(agent, c["ecs"])
    probe.start()
    t0 = time.monotonic()
    if silent:
        fake.vanish(ids[:silent])
        fake.burst(ids[silent:], exit_code=3)
    else:
        fake.burst(ids, exit_code=3)
    tasks, took = wait_all(agent, c["ecs"], arns, "STOPPED", 60, what)
    probe.stop_flag.set()
    probe.join()
    wrong = [t["taskArn"] for t in tasks if t.get("stopCode") != "EssentialContainerExited"]
    if wrong:
        agent.fail(f"{what}: {len(wrong)} tasks STOPPED without EssentialContainerExited: "
                   f"{wrong[:3]}")
    codes = {t["containers"][0].get("exitCode") for t in tasks}
    if silent:
        codes.discard(137)  # the reconcile's list says Exited (137)
    if codes != {3}:
        agent.fail(f"{what}: exit codes {codes}, want 3")
    for k, v in probe.worst.items():
        if v > SLOW_S:
            agent.fail(f"{what}: a {k} call took {v:.2f} s during the burst (over {SLOW_S} s)")
    print(f"{what}: {len(ids)} containers died ({silent} without an event); all {len(arns)} "
          f"tasks STOPPED in {took:.1f} s (from the burst, polling every 0.5 s); slowest call "
          f"during it: ECS {probe.worst['ecs'] * 1000:.0f} ms, /metrics "
          f"{probe.worst['metrics'] * 1000:.0f} ms ({probe.calls} probes); agent RSS "
          f"{rss_kb(agent.proc.pid) // 1024} MiB", flush=True)


def main():
    work = tempfile.mkdtemp(prefix="es-burst-")
    sock = os.path.join(work, "docker.sock")
    fake = DockerFake(sock)
    drill.DOCKER_HOST = "unix://" + sock  # Agent, and its clean-up, talk to the fake
    # the periodic reconcile every 3 s finds the containers that died without an event
    agent = Agent("es-burstdrill-", ["--cluster", CLUSTER, "--drift-interval", "0",
                                     "--reconcile-interval", "3s", "--log-level", "notice"])
    t0 = time.monotonic()
    try:
        c = agent.start()
        c["ssm"].put_parameter(Name="/burst/db", Value="burst-value-1", Type="SecureString")
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole"}]}
        role = c["iam"].create_role(RoleName="burstExecution",
                                    AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        c["iam"].put_role_policy(RoleName="burstExecution", PolicyName="read",
                                 PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                     {"Effect": "Allow", "Resource": "*",
                                      "Action": ["ssm:GetParameters", "kms:Decrypt"]}]}))
        c["ecs"].register_task_definition(
            family="burst", networkMode="none", executionRoleArn=role,
            containerDefinitions=[{"name": "app", "image": "local/busybox:latest",
                                   "essential": True, "command": ["sleep", "600"],
                                   "secrets": [{"name": "DB", "valueFrom": "/burst/db"}]}])
        idle = rss_kb(agent.proc.pid)

        t = time.monotonic()
        arns = run_tasks(agent, c["ecs"], TASKS)
        _, took = wait_all(agent, c["ecs"], arns, "RUNNING", 300, "launching")
        print(f"{TASKS} tasks RUNNING {time.monotonic() - t:.1f} s after the first RunTask; "
              f"agent RSS {rss_kb(agent.proc.pid) // 1024} MiB (idle {idle // 1024} MiB)",
              flush=True)
        burst(agent, c, fake, arns, 0, "burst 1")

        arns2 = run_tasks(agent, c["ecs"], TASKS)
        wait_all(agent, c["ecs"], arns2, "RUNNING", 300, "launching again")
        burst(agent, c, fake, arns2, TASKS // 2, "burst 2")

        agent.stop("the end")
        no_values_logged(agent, ["burst-value-1"])
        print(f"dockerd calls the fake answered: "
              + ", ".join(f"{k} {v}" for k, v in sorted(fake.calls.items())))
    finally:
        if agent.proc and agent.proc.poll() is None:
            agent.proc.kill()
            agent.proc.wait()
        fake.close()
        import shutil
        shutil.rmtree(agent.work, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"test_event_burst: 2 bursts of {TASKS} tasks' events handled; "
          f"{time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
