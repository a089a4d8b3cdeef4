#!/usr/bin/env python3
"""The AWS backend throttling every other call, then down for 60 s (issue 24's drills).

The agent runs in mode aws against tests/aws_fake.py (SSM, Secrets Manager, STS on one
loopback port; signatures checked). Its AWS client retries as the SDKs' standard mode does:
3 attempts, full-jitter backoff from 100 ms, a retry budget. So:
  1. throttling every other signed call: the AssumeRole, GetParameters and GetSecretValue
     calls are retried past their ThrottlingException; calls of concurrent launches share the
     fake's count, so a call can meet 3 throttles in a row (about 1 in 8): its task must STOP
     with a reason naming the throttling, every other task reaches RUNNING, and most do;
  2. the backend down (the fake killed: connections refused) for OUTAGE s: 3 attempts cannot
     span a minute, so by design a launch during the outage fails: its tasks must STOP with a
     reason that says the service could not be reached; the agent stays up;
  3. the backend back (no longer throttling): a later RunTask runs, every task of it.
Also: the tasks that were RUNNING before the outage still run after it, nothing is left
half-created (no container of a STOPPED task), no secret value in the log, SIGTERM exits 0.

Environment: ES_AGENT_BIN, ES_TEST_DOCKER_HOST; optional ES_OUTAGE_SECONDS (60)."""

import os
import time

from drill import Agent, Backend, check_settled, no_values_logged, wait_launched

OUTAGE = float(os.environ.get("ES_OUTAGE_SECONDS", "60"))
CLUSTER = "outagedrill"
# what the fake answers for these references (aws_fake.py param() and GetSecretValue)
VALUES = ["value-of-/outage/db", "p@ss"]
UNREACHABLE = ("could not connect", "Couldn't connect", "unavailable", "Unavailable")


def run(c, count):
    return [t["taskArn"] for t in c["ecs"].run_task(cluster=CLUSTER, taskDefinition="outage",
                                                     count=count)["tasks"]]


def main():
    t0 = time.monotonic()
    backend = Backend()
    backend.post("/__faults", {"throttle_every": 2})
    os.environ.update(backend.agent_env())
    d = Agent("es-outagedrill-", ["--mode", "aws", "--cluster", CLUSTER, "--preflight", "off",
                                  "--drift-interval", "0", "--task-cleanup-wait", "1s",
                                  "--log-level", "info"])
    try:
        c = d.start(("ecs",))
        c["ecs"].register_task_definition(
            family="outage", networkMode="none",
            executionRoleArn="arn:aws:iam::123456789012:role/outageExecution",
            containerDefinitions=[{
                "name": "app", "image": "local/busybox:latest", "stopTimeout": 1,
                "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"],
                "secrets": [{"name": "DB", "valueFrom": "/outage/db"},
                            {"name": "PW", "valueFrom": "arn:aws:secretsmanager:us-east-1:"
                             "123456789012:secret:outage-api:password::"}]}])

        # 1. every other call throttled
        before = run(c, 5)
        tasks = wait_launched(d, c["ecs"], CLUSTER, before)
        st = backend.stats()
        ran = [t for t in tasks if t["lastStatus"] == "RUNNING"]
        failed = [t.get("stoppedReason", "") for t in tasks if t["lastStatus"] != "RUNNING"]
        if len(ran) < 3 or not all("ThrottlingException: Rate exceeded" in r for r in failed):
            d.fail("throttled launches: " + "; ".join(
                f"{t['lastStatus']} {t.get('stoppedReason', '')}" for t in tasks))
        if not st.get("throttled"):
            d.fail("the fake throttled nothing")
        print(f"throttling every other call: {len(ran)}/5 RUNNING, {len(failed)} STOPPED naming "
              f"the throttling {failed[:1]}; the fake throttled {st['throttled']} of "
              f"{st['requests'] + st['throttled']} calls ({st['ops']})", flush=True)

        # 2. the backend down
        backend.kill()
        down_at = time.monotonic()
        during = run(c, 2)
        tasks = wait_launched(d, c["ecs"], CLUSTER, during)
        reasons = sorted({t.get("stoppedReason", "") for t in tasks})
        if [t["lastStatus"] for t in tasks] != ["STOPPED"] * 2 or not all(
                any(w in r for w in UNREACHABLE) for r in reasons):
            d.fail(f"launches while the backend is down: {[t['lastStatus'] for t in tasks]} "
                   f"{reasons}")
        print(f"backend down: RunTask --count 2 STOPPED in {time.monotonic() - down_at:.1f} s: "
              f"{reasons}", flush=True)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
        if d.proc.poll() is not None:
            d.fail(f"the agent exited ({d.proc.returncode}) while the backend was down")
        backend.start()
        print(f"backend back after {time.monotonic() - down_at:.0f} s", flush=True)

        # 3. a later RunTask runs; the first tasks still run
        after = run(c, 3)
        tasks = wait_launched(d, c["ecs"], CLUSTER, after)
        if [t["lastStatus"] for t in tasks] != ["RUNNING"] * 3:
            d.fail("launches after the outage: " + "; ".join(
                f"{t['lastStatus']} {t.get('stoppedReason', '')}" for t in tasks))
        first = c["ecs"].describe_tasks(cluster=CLUSTER, tasks=[t["taskArn"] for t in ran])["tasks"]
        if any(t["lastStatus"] != "RUNNING" for t in first):
            d.fail("tasks RUNNING before the outage did not survive it")
        check_settled(d, c["ecs"], CLUSTER, "after the outage")
        print(f"after the outage: 3/3 RUNNING; the {len(ran)} from before still RUNNING",
              flush=True)
        d.stop("the last stop")
        no_values_logged(d, VALUES + [Backend.SECRET])
    finally:
        backend.kill()
        d.clean_up(CLUSTER)
    print(f"test_backend_outage: throttled launches converged, launches during a {OUTAGE:.0f} s "
          f"outage STOPPED naming it, launches after it RUNNING; {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
