#!/usr/bin/env python3
"""The daemon's resident memory with tasks, and over launch/stop cycles (issue 22).

  bench/tasks_memory.py [--build build-rel] [--tasks 1000] [--warmup 10000] [--cycles 10000]
                        [--sample 1000] [--work-in /dev/shm] [--inside]

Runs the Release daemon in embedded mode against tests/faults/docker_fake.py (a stand-in for
dockerd on a unix socket: a container is a table row, nothing is executed, so thousands of
tasks take seconds), and drives it with boto3 as a user's tooling would: one SSM SecureString,
an execution role that may read it, a one-container task definition taking it as a secret.

1. Tasks tracked: RunTask --count 10 until --tasks tasks are RUNNING; the resident set (from
   /proc/PID/smaps_rollup: total, anonymous, file-mapped) idle before, with the tasks RUNNING,
   and after they are all stopped (StopTask each).
2. Launch/stop cycles: one cycle is one task launched (RunTask, 10 at a time), RUNNING, stopped
   (StopTask) and STOPPED. The engine keeps stopped tasks in memory (DescribeTasks answers for
   them, as ECS's) until AG_ENGINE_TASKS_MAX (10,000) are held, then forgets the oldest cleaned
   ones: memory grows by design until the table is full. So --warmup cycles (default 10,000)
   fill it first; then the resident set is sampled every --sample cycles over --cycles more,
   and the least-squares slope (kB per 1,000 cycles) and the spread are printed, for the
   total and for the anonymous pages (the heap: the leak's signal; file-mapped pages come and
   go as code is touched). The containers' clean-up wait is 1 s so that stopped tasks can be
   forgotten. --inside adds, at each sample, the heap's bytes in use and free and SQLite's
   share (gdb attaches for a moment), to tell a leak from a cache filling.

State and the fake's socket go under --work-in (default: a temporary directory on /dev/shm,
so that the store's fsyncs do not set the pace). With --build build-test (the ASan/UBSan build) the
daemon's exit is checked for a sanitizer report (LeakSanitizer lists what was never freed), which
is printed. Figures only: not a test.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "faults"))

import boto3  # noqa: E402
import botocore.config  # noqa: E402
from docker_fake import DockerFake  # noqa: E402

CLUSTER = "membench"
VALUE = "membench-value-1"


def rollup(pid):
    """(total, anonymous, file-mapped) resident kB of the process."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    rss, anon = out.get("Rss", 0), out.get("Anonymous", 0)
    return rss, anon, rss - anon


def inside(pid):
    """What the heap holds (mallinfo2: in use, free) and SQLite's share of it
    (sqlite3_memory_used), asked of the process through gdb (--inside): " heap in use X MiB,
    free Y MiB, SQLite Z MiB", or "" when gdb cannot tell."""
    try:
        out = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex",
                              "print (long long)sqlite3_memory_used()", "-ex",
                              "print mallinfo2()"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    sq = re.search(r"^\$1 = (\d+)", out, re.M)
    used = re.search(r"uordblks = (\d+)", out)
    free = re.search(r"fordblks = (\d+)", out)
    if not (sq and used and free):
        return ""
    mib = 1024 * 1024
    return (f"; heap in use {int(used.group(1)) / mib:.2f} MiB, free {int(free.group(1)) / mib:.2f} "
            f"MiB, SQLite {int(sq.group(1)) / mib:.2f} MiB")


def fmt(r):
    return f"{r[0] / 1024:.2f} MiB (anonymous {r[1] / 1024:.2f}, file-mapped {r[2] / 1024:.2f})"


class Daemon:
    def __init__(self, build, work, docker_sock):
        binary = os.path.join(build, "agent", "ecs-secrets-agent")
        if not os.access(binary, os.X_OK):
            sys.exit(f"tasks_memory: no {binary} (README, Development: the Release build)")
        self.state = os.path.join(work, "state")
        os.mkdir(self.state, 0o700)
        self.log = os.path.join(work, "agent.log")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        self.url = f"http://127.0.0.1:{port}"
        with open(self.log, "w", encoding="utf-8") as out:
            self.proc = subprocess.Popen(
                [binary, "--mode", "embedded", "--state-dir", self.state, "--listen",
                 f"127.0.0.1:{port}", "--docker-host", f"unix://{docker_sock}", "--cluster",
                 CLUSTER, "--drift-interval", "0", "--task-cleanup-wait", "1s",
                 "--log-level", "notice"], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                if "ready: " in f.read():
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                sys.exit(f"tasks_memory: the daemon did not start: {self.tail()}")
            time.sleep(0.05)
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(self.state, "aws-credentials")
        os.environ["AWS_CONFIG_FILE"] = os.path.join(self.state, "aws-config")
        session = boto3.Session(profile_name="ecs-secrets-agent", region_name="us-east-1")
        cfg = botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=5,
                                     read_timeout=60)
        self.c = {svc: session.client(svc, endpoint_url=self.url, config=cfg)
                  for svc in ("ecs", "ssm", "iam")}

    def tail(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def setup(c):
    c["ssm"].put_parameter(Name="/membench/db", Value=VALUE, Type="SecureString")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    role = c["iam"].create_role(RoleName="membenchExecution",
                                AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    c["iam"].put_role_policy(RoleName="membenchExecution", PolicyName="read",
                             PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                 {"Effect": "Allow", "Resource": "*",
                                  "Action": ["ssm:GetParameters", "kms:Decrypt"]}]}))
    c["ecs"].register_task_definition(
        family="membench", networkMode="none", executionRoleArn=role,
        containerDefinitions=[{"name": "app", "image": "local/busybox:latest",
                               "essential": True, "command": ["sleep", "600"],
                               "secrets": [{"name": "DB", "valueFrom": "/membench/db"}]}])


def run_tasks(ecs, n):
    arns = []
    while len(arns) < n:
        out = ecs.run_task(cluster=CLUSTER, taskDefinition="membench", count=min(10, n - len(arns)))
        if out.get("failures"):
            sys.exit(f"tasks_memory: RunTask failed: {out['failures'][:2]}")
        arns += [t["taskArn"] for t in out["tasks"]]
    return arns


def wait_status(d, arns, status, timeout):
    t0 = time.monotonic()
    while True:
        pending = []
        for i in range(0, len(arns), 100):
            pending += [t["taskArn"] for t in
                        d.c["ecs"].describe_tasks(cluster=CLUSTER, tasks=arns[i:i + 100])["tasks"]
                        if t["lastStatus"] != status]
        if not pending:
            return
        if time.monotonic() - t0 > timeout:
            sys.exit(f"tasks_memory: {len(pending)} of {len(arns)} tasks not {status} after "
                     f"{timeout} s\n{d.tail()}")
        arns = pending
        time.sleep(0.05)


def stop_tasks(ecs, arns):
    for a in arns:
        ecs.stop_task(cluster=CLUSTER, task=a, reason="membench")


def slope(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def tracked(d, pid, n):
    idle = rollup(pid)
    print(f"idle (setup done): {fmt(idle)}", flush=True)
    t0 = time.monotonic()
    arns = run_tasks(d.c["ecs"], n)
    wait_status(d, arns, "RUNNING", 600)
    took = time.monotonic() - t0
    time.sleep(1)
    running = rollup(pid)
    print(f"{n} tasks RUNNING ({took:.1f} s): {fmt(running)}; "
          f"{(running[0] - idle[0]) / n:.1f} kB a task above idle", flush=True)
    stop_tasks(d.c["ecs"], arns)
    wait_status(d, arns, "STOPPED", 600)
    time.sleep(1)
    print(f"the {n} stopped (kept for DescribeTasks): {fmt(rollup(pid))}", flush=True)
    return len(arns)


def cycles(d, pid, warmup, count, every, done_before, look_inside):
    """warmup + count cycles; a sample every `every` cycles after the warm-up."""
    ecs = d.c["ecs"]
    xs, samples = [], []
    total = warmup + count
    done = 0
    t0 = time.monotonic()
    while done < total:
        batch = min(10, total - done)
        arns = run_tasks(ecs, batch)
        wait_status(d, arns, "RUNNING", 120)
        stop_tasks(ecs, arns)
        wait_status(d, arns, "STOPPED", 120)
        done += batch
        if done % every == 0 or done == total:
            r = rollup(pid)
            phase = "warm-up" if done <= warmup else "sample"
            print(f"  cycle {done:6d} ({phase}, {time.monotonic() - t0:.0f} s): {fmt(r)}"
                  f"{inside(pid) if look_inside else ''}", flush=True)
            if done >= warmup:
                xs.append(done)
                samples.append(r)
    if len(xs) < 2:
        print("cycles: fewer than two samples after the warm-up: no slope")
        return
    for i, what in ((0, "resident"), (1, "anonymous")):
        ys = [s[i] for s in samples]
        print(f"{what} over cycles {xs[0]}..{xs[-1]}: slope {slope(xs, ys) * 1000:+.1f} kB per "
              f"1,000 cycles; min {min(ys) / 1024:.2f} MiB, max {max(ys) / 1024:.2f} MiB, "
              f"spread {(max(ys) - min(ys)) / 1024:.2f} MiB")
    print(f"({done_before} tasks ran before the cycles; {total} cycles in "
          f"{time.monotonic() - t0:.0f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build-rel"))
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=10000)
    ap.add_argument("--cycles", type=int, default=10000)
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--inside", action="store_true",
                    help="at each sample, the heap in use and SQLite's memory (gdb attaches)")
    ap.add_argument("--work-in", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    a = ap.parse_args()
    if a.sample % 10 or a.warmup % 10:
        sys.exit("tasks_memory: --sample and --warmup must be multiples of 10 (RunTask's count)")
    work = tempfile.mkdtemp(prefix="es-tasks-memory-", dir=a.work_in)
    fake = DockerFake(os.path.join(work, "docker.sock"))
    d = None
    try:
        d = Daemon(a.build, work, fake.path)
        setup(d.c)
        pid = d.proc.pid
        ran = tracked(d, pid, a.tasks) if a.tasks else 0
        if a.cycles or a.warmup:
            print(f"launch/stop cycles: {a.warmup} to warm up, then {a.cycles} sampled every "
                  f"{a.sample}", flush=True)
            cycles(d, pid, a.warmup, a.cycles, a.sample, ran, a.inside)
        if d.proc.poll() is not None:
            sys.exit(f"tasks_memory: the daemon exited with {d.proc.returncode}\n{d.tail()}")
        with open(d.log, encoding="utf-8", errors="replace") as f:
            if VALUE in f.read():
                sys.exit("tasks_memory: the secret's value is in the daemon's log")
    finally:
        if d:
            d.stop()
            # a sanitizer build (--build build-test) reports leaks at the exit
            with open(d.log, encoding="utf-8", errors="replace") as f:
                text = f.read()
            at = min((text.find(w) for w in ("LeakSanitizer", "AddressSanitizer", "runtime error:")
                      if w in text), default=-1)
            print(f"the daemon exited with {d.proc.returncode}; "
                  + (f"a sanitizer report:\n{text[at:at + 6000]}" if at >= 0 else
                     "no sanitizer report in its log"))
        fake.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
