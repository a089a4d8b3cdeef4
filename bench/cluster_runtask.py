#!/usr/bin/env python3
"""RunTask across a cluster of three agents against the same on one agent (issue 23).

  bench/cluster_runtask.py [--build build-rel] [--tasks 300] [--clients 8] [--ttl 5]

What it measures, on loopback, with Release agents in embedded mode, each on its own Docker
stand-in (tests/faults/docker_fake.py, in this process: a container "runs" as a table row, so
the figures are the control plane's - API, placement, etcd, the engine's launch path - not
Docker's):
  1. one agent alone (no etcd): --tasks RunTasks (count 1 each) from --clients threads through
     its ECS API; each task's launch latency is from the RunTask call to the first
     DescribeTasks that shows it RUNNING (a poller asks for every pending task, 100 a call,
     every 20 ms); throughput = tasks / (first call to last RUNNING);
  2. three agents joined through a three-member etcd cluster (Debian's etcd-server): the same
     --tasks RunTasks, the calls spread round-robin over the three agents' APIs, placed by the
     leader with spread over instanceId; the same figures, the placement's balance, and the
     etcd requests the three agents made per task (ecs_agent_etcd_requests_total before and
     after, summed);
  3. failover: the leader is SIGKILLed, then a RunTask is sent through another agent every
     100 ms until one is placed; printed: the time from the kill to that placement, against
     the configured lease TTL (--ttl; the agents ask etcd for a second less), split where `etcdctl watch` saw the election key's DELETE (etcd
     expired the killed leader's lease) and the next leader's PUT, and whether the task went
     to a live instance. --failovers N repeats it (the killed agent restarted in between);
     --failover-only skips the one-agent run and runs 30 RunTasks at most before.
Every task definition holds one SSM SecureString (each agent's own embedded store holds it),
so every launch runs the preflight, AssumeRole and the fetch. Figures only: not a test (the
machine may be shared; run it on a quiet one for figures worth quoting).
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "faults"))

import boto3  # noqa: E402
import botocore.config  # noqa: E402
from docker_fake import DockerFake  # noqa: E402

CLUSTER = "benchcl"
REGION = "us-east-2"
SECRET_VALUE = "bench-cluster-value-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    def __init__(self, binary, work, name, etcd_eps=None, ttl=5):
        self.name = name
        self.state = os.path.join(work, f"state-{name}")
        os.mkdir(self.state, 0o700)
        self.log = os.path.join(work, f"agent-{name}.log")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fake = DockerFake(os.path.join(work, f"docker-{name}.sock"))
        self.env = dict(os.environ)
        if etcd_eps:
            self.env["ECS_SECRETS_ETCD_ENDPOINTS"] = etcd_eps
            self.env["ECS_SECRETS_ETCD_LEASE_TTL"] = f"{ttl}s"
            self.env["ECS_INSTANCE_ATTRIBUTES"] = json.dumps({"agent": name})
        self.argv = [binary, "--state-dir", self.state, "--listen", f"127.0.0.1:{self.port}",
                     "--docker-host", "unix://" + self.fake.path, "--mode", "embedded",
                     "--region", REGION, "--cluster", CLUSTER, "--drift-interval", "0",
                     "--log-level", "notice"]
        self.start()
        creds = {}
        with open(os.path.join(self.state, "aws-credentials"), encoding="ascii") as f:
            for line in f:
                if " = " in line:
                    k, v = line.strip().split(" = ", 1)
                    creds[k] = v
        session = boto3.Session(aws_access_key_id=creds["aws_access_key_id"],
                                aws_secret_access_key=creds["aws_secret_access_key"],
                                region_name=REGION)
        cfg = botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=5,
                                     read_timeout=60, max_pool_connections=32)
        self.c = {s: session.client(s, endpoint_url=self.url, config=cfg)
                  for s in ("ecs", "ssm", "iam")}

    def start(self):
        """Starts the agent (again, after a kill: same state, port and instance ID) and waits
        for its "ready" line."""
        with open(self.log, "a", encoding="utf-8") as out:
            start = out.tell()
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         env=self.env)
        deadline = time.monotonic() + 60
        while True:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                f.seek(start)
                if "ready: " in f.read():
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"agent {self.name} did not become ready: see {self.log}")
            time.sleep(0.05)

    def metric(self, name):
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as r:
            text = r.read().decode()
        m = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\d+(?:\.\d+)?)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def seed(self, register):
        """The secret and the execution role in this agent's own store (each host reads its
        own store in embedded mode); the task definition once, through one agent."""
        self.c["ssm"].put_parameter(Name="/bench/db", Value=SECRET_VALUE, Type="SecureString",
                                    Overwrite=True)
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole"}]}
        self.c["iam"].create_role(RoleName="benchExec", AssumeRolePolicyDocument=json.dumps(trust))
        self.c["iam"].put_role_policy(
            RoleName="benchExec", PolicyName="read",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Resource": "*",
                "Action": ["ssm:GetParameters", "kms:Decrypt"]}]}))
        if register:
            self.c["ecs"].register_task_definition(
                family="bench", networkMode="none",
                executionRoleArn="arn:aws:iam::123456789012:role/benchExec",
                containerDefinitions=[{"name": "app", "image": "local/busybox:latest",
                                       "memory": 16, "essential": True,
                                       "command": ["sleep", "600"],
                                       "secrets": [{"name": "DB", "valueFrom": "/bench/db"}]}])

    def kill(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self):
        self.kill()
        self.fake.close()


def start_etcd(work):
    urls, peers, procs = [], [], []
    for i in range(3):
        urls.append(f"http://127.0.0.1:{free_port()}")
        peers.append(f"http://127.0.0.1:{free_port()}")
    initial = ",".join(f"e{i}={peers[i]}" for i in range(3))
    for i in range(3):
        log = open(os.path.join(work, f"etcd{i}.log"), "w", encoding="utf-8")
        procs.append(subprocess.Popen(
            ["etcd", "--name", f"e{i}", "--data-dir", os.path.join(work, f"etcd{i}"),
             "--listen-client-urls", urls[i], "--advertise-client-urls", urls[i],
             "--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
             "--initial-cluster", initial, "--initial-cluster-state", "new",
             "--initial-cluster-token", "bench"], stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ok = 0
        for u in urls:
            try:
                with urllib.request.urlopen(u + "/health", timeout=1) as r:
                    ok += b'"true"' in r.read()
            except OSError:
                pass
        if ok == 3:
            return urls, procs
        time.sleep(0.2)
    raise SystemExit("etcd did not become healthy")


def run_burst(agents, tasks, clients, strategy):
    """tasks RunTasks (count 1) spread round-robin over agents' APIs; returns the launch
    latencies (s), the wall time from the first call to the last RUNNING, and the tasks."""
    started = {}  # arn -> monotonic time of its RunTask call
    done = {}  # arn -> latency
    failures = []
    lock = threading.Lock()
    stop = threading.Event()

    def one(i):
        a = agents[i % len(agents)]
        t = time.monotonic()
        kw = {"placementStrategy": strategy} if strategy else {}
        r = a.c["ecs"].run_task(cluster=CLUSTER, taskDefinition="bench", count=1, **kw)
        if r.get("failures"):
            with lock:
                failures.append(r["failures"][0])
            return
        with lock:
            started[r["tasks"][0]["taskArn"]] = t

    def poll():
        ecs = agents[0].c["ecs"]
        while not stop.is_set():
            with lock:
                pending = [a for a in started if a not in done]
            for k in range(0, len(pending), 100):
                for t in ecs.describe_tasks(cluster=CLUSTER, tasks=pending[k:k + 100])["tasks"]:
                    if t["lastStatus"] == "RUNNING":
                        with lock:
                            done.setdefault(t["taskArn"], time.monotonic() - started[t["taskArn"]])
                    elif t["lastStatus"] == "STOPPED":
                        raise SystemExit(f"task {t['taskArn']} STOPPED: {t.get('stoppedReason')}")
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    t0 = time.monotonic()
    poller.start()
    with concurrent.futures.ThreadPoolExecutor(clients) as ex:
        list(ex.map(one, range(tasks)))
    deadline = time.monotonic() + 300
    while True:
        with lock:
            if len(done) == len(started):
                break
        if time.monotonic() > deadline or not poller.is_alive():
            raise SystemExit(f"{len(started) - len(done)} tasks not RUNNING in 300 s")
        time.sleep(0.05)
    wall = time.monotonic() - t0
    stop.set()
    poller.join()
    if failures:
        raise SystemExit(f"{len(failures)} RunTasks placed nothing: {failures[:2]}")
    return sorted(done.values()), wall, list(started)


def pct(xs, p):
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def report(what, lat, wall, n):
    print(f"{what}: {n} tasks RUNNING in {wall:.2f} s = {n / wall:.1f} tasks/s; launch latency "
          f"median {statistics.median(lat) * 1000:.0f} ms, p90 {pct(lat, 90) * 1000:.0f} ms, "
          f"p99 {pct(lat, 99) * 1000:.0f} ms", flush=True)
    return n / wall, pct(lat, 99)


class KeyWatch:
    """etcdctl watching the election key: when each PUT (a leader) and DELETE (its lease
    expired) reached this process, on time.monotonic()."""

    def __init__(self, urls, key):
        self.events = []  # (monotonic, "PUT"/"DELETE", value)
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["etcdctl", "--endpoints", ",".join(urls), "watch", key],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=dict(os.environ, ETCDCTL_API="3"))
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        lines = iter(self.proc.stdout)
        for line in lines:
            kind = line.strip()
            if kind not in ("PUT", "DELETE"):
                continue
            t = time.monotonic()
            next(lines, None)  # the key
            value = next(lines, "").strip() if kind == "PUT" else ""
            with self.lock:
                self.events.append((t, kind, value))

    def first(self, kind, after):
        with self.lock:
            return next(((t, v) for t, k, v in self.events if k == kind and t >= after),
                        (None, None))

    def close(self):
        self.proc.kill()
        self.proc.wait()


def failover(agents, urls, ttl, restart):
    """SIGKILLs the leader, then sends a RunTask through another agent every 100 ms until one
    is placed; prints the time from the kill to that placement against the TTL, split at the
    election key's DELETE (etcd expiring the killed leader's lease) and the next leader's PUT.
    With restart, the killed agent is started again and the cluster settles (three instances,
    one leader) before the next round."""
    leader = [a for a in agents if a.metric("ecs_agent_cluster_leader") == 1]
    if len(leader) != 1:
        raise SystemExit(f"{len(leader)} agents say they lead")
    leader = leader[0]
    other = next(a for a in agents if a is not leader)
    watch = KeyWatch(urls, f"/ecs-secrets/clusters/{CLUSTER}/leader")
    time.sleep(0.5)  # the watch is in place
    try:
        killed = time.monotonic()
        leader.kill(signal.SIGKILL)
        while True:
            try:
                r = other.c["ecs"].run_task(cluster=CLUSTER, taskDefinition="bench", count=1)
                if r.get("tasks"):
                    break
            except Exception:  # the wait for a leader answers ServerException
                pass
            if time.monotonic() - killed > 120:
                raise SystemExit("no placement within 120 s of the leader's SIGKILL")
            time.sleep(0.1)
        placed = time.monotonic()
        gone, _ = watch.first("DELETE", killed)
        led, _ = watch.first("PUT", gone if gone else killed)
    finally:
        watch.close()
    took = placed - killed
    where = r["tasks"][0].get("containerInstanceArn", "?").rsplit("/", 1)[-1]
    with open(os.path.join(leader.state, "instance-id"), encoding="ascii") as f:
        dead = f.read().strip()
    split = ""
    if gone and led:
        split = (f"; kill -> key deleted {gone - killed:.2f} s (etcd: the lease's expiry), "
                 f"-> next leader {led - gone:.3f} s, -> placement answered {placed - led:.3f} s")
    print(f"failover: leader {leader.name} SIGKILLed; the next placement {took:.2f} s later "
          f"through {other.name} (configured TTL {ttl} s, etcd's lease {max(ttl - 1, 2)} s: "
          f"{took / ttl:.2f} TTLs){split}; "
          f"placed on {'THE KILLED LEADER' if where == dead else 'a live'} instance", flush=True)
    if restart:
        leader.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            n = other.c["ecs"].list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
            leads = sum(a.metric("ecs_agent_cluster_leader") for a in agents)
            if len(n) == len(agents) and leads == 1:
                break
            time.sleep(0.2)
        else:
            raise SystemExit("the cluster did not settle after the restart")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build-rel"))
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--ttl", type=int, default=5)
    ap.add_argument("--failovers", type=int, default=1,
                    help="leader SIGKILLs measured (the killed agent restarted between them)")
    ap.add_argument("--failover-only", action="store_true",
                    help="skip the one-agent run and make the cluster's burst --tasks 30")
    args = ap.parse_args()
    binary = os.path.join(args.build, "agent", "ecs-secrets-agent")
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"missing {binary}: cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release "
                         "-DBUILD_TESTING=OFF && cmake --build build-rel -j2")
    if not shutil.which("etcd"):
        raise SystemExit("etcd is not installed (apt-get install etcd-server)")
    work = tempfile.mkdtemp(prefix="es-bench-cluster-")
    agents, etcd = [], []
    try:
        print(f"== {args.tasks} RunTasks from {args.clients} client threads, one SecureString "
              f"each, Docker stand-ins; {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}",
              flush=True)
        if args.failover_only:
            args.tasks = min(args.tasks, 30)
        else:
            alone = Agent(binary, work, "alone")
            agents.append(alone)
            alone.seed(register=True)
            lat, wall, _ = run_burst([alone], args.tasks, args.clients, None)
            rate1, p99_1 = report("one agent, alone", lat, wall, args.tasks)
            alone.close()
            agents.remove(alone)

        urls, etcd = start_etcd(work)
        for i in range(3):
            order = urls[i:] + urls[:i]  # each agent starts with its own member
            agents.append(Agent(binary, work, f"a{i + 1}", ",".join(order), args.ttl))
        for i, a in enumerate(agents):
            a.seed(register=i == 0)
        time.sleep(1.5)  # the mirrors bring the definition to every agent
        before = sum(a.metric("ecs_agent_etcd_requests_total") for a in agents)
        lat, wall, arns = run_burst(agents, args.tasks, args.clients,
                                    [{"type": "spread", "field": "instanceId"}])
        after = sum(a.metric("ecs_agent_etcd_requests_total") for a in agents)
        rate3, p99_3 = report("three agents, spread", lat, wall, args.tasks)
        per = {}
        ecs = agents[1].c["ecs"]
        for k in range(0, len(arns), 100):
            for t in ecs.describe_tasks(cluster=CLUSTER, tasks=arns[k:k + 100])["tasks"]:
                per[t["containerInstanceArn"]] = per.get(t["containerInstanceArn"], 0) + 1
        print(f"placement: {sorted(per.values())} tasks per instance; etcd requests "
              f"{after - before:.0f} in all, {(after - before) / args.tasks:.1f} a task "
              f"(the three agents' ecs_agent_etcd_requests_total)")
        if not args.failover_only:
            print(f"ratio three/one: throughput {rate3 / rate1:.2f}x, p99 launch latency "
                  f"{p99_3 / p99_1:.2f}x", flush=True)

        for k in range(args.failovers):
            failover(agents, urls, args.ttl, k + 1 < args.failovers)
    finally:
        for a in agents:
            a.close()
        for p in etcd:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
