#!/usr/bin/env python3
"""The host's clock 10 minutes off the service's (issue 24's drills).

The machine's clock cannot be changed in a test, so the service's is: tests/aws_fake.py, the
agent's AWS in mode aws, runs its clock OFFSET s ahead of the host's (then behind it), says so
in its Date header, and refuses a signature dated over 5 minutes from its clock as AWS does
(STS: 403 SignatureDoesNotMatch "Signature expired: ..."; SSM and Secrets Manager: 400
InvalidSignatureException). Demands:
  - with the clock 10 minutes off either way, a launch STOPs with an ECS-shaped reason that
    names the skew: "the host's clock is 600 s behind (ahead of) the service's";
  - once the clocks agree, a launch runs (nothing cached from the refusals gets in the way);
  - no secret value in the log; SIGTERM exits 0.

Environment: ES_AGENT_BIN, ES_TEST_DOCKER_HOST; optional ES_SKEW_SECONDS (600)."""

import os
import re
import time

from drill import ECS_REASON, Agent, Backend, check_settled, no_values_logged, wait_launched

OFFSET = int(os.environ.get("ES_SKEW_SECONDS", "600"))
CLUSTER = "skewdrill"
VALUES = ["value-of-/skew/db", "p@ss"]


def launch(d, c, count):
    arns = [t["taskArn"] for t in c["ecs"].run_task(cluster=CLUSTER, taskDefinition="skew",
                                                     count=count)["tasks"]]
    return wait_launched(d, c["ecs"], CLUSTER, arns)


def skewed_launch(d, c, backend, offset, word, refused_by):
    backend.post("/__clock", {"offset": offset})
    tasks = launch(d, c, 2)
    for t in tasks:
        if refused_by not in t.get("stoppedReason", ""):
            d.fail(f"clock {offset:+d} s: not refused by {refused_by}: {t.get('stoppedReason')!r}")
        why = t.get("stoppedReason", "")
        m = re.search(r"the host's clock is (\d+) s (behind|ahead of) the service's", why)
        if t["lastStatus"] != "STOPPED" or not m or not ECS_REASON.match(why):
            d.fail(f"clock {offset:+d} s: {t['lastStatus']} {why!r}")
        if abs(int(m.group(1)) - abs(offset)) > 5 or m.group(2) != word:
            d.fail(f"clock {offset:+d} s: the reason says {m.group(0)!r}")
    print(f"service clock {offset:+d} s: STOPPED: {tasks[0]['stoppedReason']}", flush=True)


def agreed(d, c, backend):
    refused = backend.stats().get("skewed", 0)
    backend.post("/__clock", {"offset": 0})
    tasks = launch(d, c, 2)
    if [t["lastStatus"] for t in tasks] != ["RUNNING"] * 2:
        d.fail("with the clocks agreeing: " + "; ".join(
            f"{t['lastStatus']} {t.get('stoppedReason', '')}" for t in tasks))
    check_settled(d, c["ecs"], CLUSTER, "after the clock was corrected")
    for t in tasks:
        c["ecs"].stop_task(cluster=CLUSTER, task=t["taskArn"], reason="drill round over")
    print(f"clocks agree: 2/2 RUNNING (the fake has refused {refused} signatures for their "
          "time)", flush=True)


def main():
    t0 = time.monotonic()
    backend = Backend()
    os.environ.update(backend.agent_env())
    d = Agent("es-skewdrill-", ["--mode", "aws", "--cluster", CLUSTER, "--preflight", "off",
                                "--drift-interval", "0", "--task-cleanup-wait", "1s",
                                "--log-level", "info"])
    try:
        c = d.start(("ecs",))
        c["ecs"].register_task_definition(
            family="skew", networkMode="none",
            executionRoleArn="arn:aws:iam::123456789012:role/skewExecution",
            containerDefinitions=[{
                "name": "app", "image": "local/busybox:latest", "stopTimeout": 1,
                "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"],
                "secrets": [{"name": "DB", "valueFrom": "/skew/db"},
                            {"name": "PW", "valueFrom": "arn:aws:secretsmanager:us-east-1:"
                             "123456789012:secret:skew-api:password::"}]}])
        # STS refuses the AssumeRole (query protocol: SignatureDoesNotMatch)
        skewed_launch(d, c, backend, OFFSET, "behind", "SignatureDoesNotMatch")
        skewed_launch(d, c, backend, -OFFSET, "ahead of", "SignatureDoesNotMatch")
        agreed(d, c, backend)
        # the role's credentials now cached: SSM / Secrets Manager refuse the fetches (JSON)
        skewed_launch(d, c, backend, OFFSET, "behind", "InvalidSignatureException")
        agreed(d, c, backend)
        d.stop("the last stop")
        no_values_logged(d, VALUES + [Backend.SECRET])
    finally:
        backend.kill()
        d.clean_up(CLUSTER)
    print(f"test_clock_skew: launches with the clock {OFFSET} s off both ways STOPPED naming "
          f"the skew, RUNNING once it agreed; {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
