"""What the fault drills (tests/faults/test_*.py) share: the agent under test started on its
own state directory and loopback port and waited for, its stops checked (SIGTERM: exit 0,
"stopped", no sanitizer report), boto3 clients for its endpoints, and the test engine.

Environment: ES_AGENT_BIN, ES_TEST_DOCKER_HOST (unix://...)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.config

AGENT = os.environ["ES_AGENT_BIN"]
DOCKER_HOST = os.environ["ES_TEST_DOCKER_HOST"]
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer")


DOCKER_TIMEOUT_S = 90  # a docker CLI call the test engine does not answer in this is a fault


def docker(*args):
    """The docker CLI on the test engine; an engine that does not answer fails the drill
    (with a goroutine dump asked of dockerd) instead of holding it, and its lane, forever."""
    try:
        return subprocess.run(["docker", "-H", DOCKER_HOST, *args], check=True,
                              capture_output=True, text=True, timeout=DOCKER_TIMEOUT_S).stdout
    except subprocess.TimeoutExpired:
        root = os.path.dirname(DOCKER_HOST[len("unix://"):])
        try:
            with open(os.path.join(root, "docker.pid"), encoding="ascii") as f:
                os.kill(int(f.read().strip()), signal.SIGUSR1)  # dockerd dumps its goroutines
            dump = f"goroutine stacks asked for (SIGUSR1): see {root}/exec and {root}/dockerd.log"
        except (OSError, ValueError):
            dump = "no dockerd pid to ask for goroutine stacks"
        print(f"FAIL: docker {' '.join(args)}: the test engine did not answer in "
              f"{DOCKER_TIMEOUT_S} s ({dump})", file=sys.stderr)
        sys.exit(1)


def _read_or_none(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def remove_containers(cluster):
    ids = docker("ps", "-aq", "--filter", f"label=com.amazonaws.ecs.cluster={cluster}").split()
    if ids:
        docker("rm", "-f", *ids)


class Agent:
    """The daemon under test, started again and again on one state directory."""

    def __init__(self, prefix, args):
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.state = os.path.join(self.work, "state")
        os.mkdir(self.state, 0o700)
        self.log = os.path.join(self.work, "agent.log")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args  # flags besides the state directory, listener and engine
        self.proc = None
        self.log_at = 0  # where the current run's lines start
        self.session = None  # the boto3 session for the key files session_files held
        self.session_files = None
        # a run of this drill cut short (killed CI) leaves its cluster's containers on the
        # engine; they belong to no agent of this run and would read as "unknown tasks"
        if "--cluster" in args:
            remove_containers(args[args.index("--cluster") + 1])

    def fail(self, msg):
        print("FAIL: " + msg, file=sys.stderr)
        with open(self.log, encoding="utf-8", errors="replace") as f:
            sys.stderr.write("---- agent log (last 60 lines) ----\n" + "".join(f.readlines()[-60:]))
        sys.exit(1)

    def run_log(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            f.seek(self.log_at)
            return f.read()

    def start(self, services=("ecs", "ssm", "secretsmanager", "kms", "iam")):
        """Starts the agent, waits for its ready line; boto3 clients for its endpoints."""
        self.log_at = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        with open(self.log, "a", encoding="utf-8") as out:
            self.proc = subprocess.Popen(
                [AGENT, "--state-dir", self.state, "--listen", f"127.0.0.1:{self.port}",
                 "--docker-host", DOCKER_HOST, *self.args], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "ready: " not in self.run_log():
            if self.proc.poll() is not None:
                self.fail(f"the agent exited with {self.proc.returncode} during start")
            if time.monotonic() > deadline:
                self.fail("the agent did not become ready in 30 s")
            time.sleep(0.05)
        creds = os.path.join(self.state, "aws-credentials")
        conf = os.path.join(self.state, "aws-config")
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = creds
        os.environ["AWS_CONFIG_FILE"] = conf
        # One session while the agent writes the same key files (it keeps its administrator
        # key across restarts): a new boto3 session reads endpoints and service models again,
        # about 0.25 s of CPU, which drills that restart the agent 50 times paid every time.
        # The clients are new on every start (no connection of the last run reused).
        files = b"\0".join(_read_or_none(p) or b"-" for p in (creds, conf))
        if self.session is None or files != self.session_files:
            self.session = boto3.Session(profile_name="ecs-secrets-agent", region_name="us-east-1")
            self.session_files = files
        cfg = botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=5,
                                     read_timeout=30)
        return {svc: self.session.client(svc, endpoint_url=self.url, config=cfg)
                for svc in services}

    def stop(self, what, how=signal.SIGTERM):
        """Stops the agent; a SIGTERM must end in exit 0, "stopped" and no sanitizer report.
        Returns the run's log."""
        self.proc.send_signal(how)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.fail(f"{what}: the agent did not exit within 60 s")
        text = self.run_log()
        if how != signal.SIGTERM:
            return text
        if rc != 0:
            self.fail(f"{what}: the agent exited with {rc} on SIGTERM")
        if SANITIZER.search(text):
            self.fail(f"{what}: a sanitizer report")
        if not re.search(r"notice: stopped$", text, re.M):
            self.fail(f"{what}: no 'stopped' line")
        return text

    def clean_up(self, cluster):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        remove_containers(cluster)
        shutil.rmtree(self.work, ignore_errors=True)


# A stoppedReason as ECS words them: an error class ("CannotStartContainerError: ...",
# "ResourceInitializationError: ...", "TaskFailedToStart: ...") or one of ECS's own sentences.
ECS_REASON = re.compile(r"^(?:[A-Z][A-Za-z]+(?:Error|Exception|ToStart): \S"
                        r"|Essential container in task exited"
                        r"|Task stopped by user|Scaling activity initiated by |"
                        r"ECS is performing maintenance|Service [^ ]+ deployment|"
                        r"drill )")


def task_pages(ecs, cluster):
    """Every task the agent lists for the cluster (RUNNING and STOPPED desired), described."""
    arns = []
    for status in ("RUNNING", "STOPPED"):
        token = None
        while True:
            kw = {"cluster": cluster, "desiredStatus": status}
            if token:
                kw["nextToken"] = token
            page = ecs.list_tasks(**kw)
            arns += page["taskArns"]
            token = page.get("nextToken")
            if not token:
                break
    tasks = []
    for i in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])["tasks"]
    return tasks


def settled_problem(ecs, cluster, what):
    """(the first thing that is not settled or None, the tasks): every task known to the agent
    either RUNNING with running containers or STOPPED with an ECS-shaped reason and no running
    container; no container of a task the agent does not know."""
    tasks = task_pages(ecs, cluster)
    out = docker("ps", "-a", "--filter", f"label=com.amazonaws.ecs.cluster={cluster}",
                 "--format", '{{.ID}} {{.State}} {{.Label "com.amazonaws.ecs.task-arn"}}')
    held = {}
    for line in out.splitlines():
        cid, state, arn = line.split(" ", 2)
        held.setdefault(arn, []).append((cid, state))
    known = {t["taskArn"]: t for t in tasks}
    for arn, cs in held.items():
        if arn not in known:
            return f"{what}: containers {cs} of a task the agent does not know: {arn}", tasks
    for t in tasks:
        cs = held.get(t["taskArn"], [])
        if t["lastStatus"] == "STOPPED":
            if not ECS_REASON.match(t.get("stoppedReason", "")):
                return (f"{what}: STOPPED task {t['taskArn']} says no ECS-shaped reason: "
                        f"{t.get('stoppedReason')!r}"), tasks
            if any(s == "running" for _, s in cs):
                return f"{what}: STOPPED task {t['taskArn']} has a running container {cs}", tasks
        elif t["lastStatus"] == "RUNNING":
            if not cs or any(s != "running" for _, s in cs):
                return f"{what}: RUNNING task {t['taskArn']} has containers {cs}", tasks
        else:
            return f"{what}: task {t['taskArn']} is {t['lastStatus']}", tasks
    return None, tasks


def check_settled(agent, ecs, cluster, what, grace=30):
    """settled_problem, allowed `grace` seconds to clear: a container that outlived its task
    (dockerd came back with it) is stopped by the agent's next reconciling list, which takes
    its stop timeout. Returns the tasks."""
    deadline = time.monotonic() + grace
    while True:
        problem, tasks = settled_problem(ecs, cluster, what)
        if not problem:
            return tasks
        if time.monotonic() > deadline:
            agent.fail(problem)
        time.sleep(0.5)


def wait_tasks_settled(agent, ecs, cluster, what, timeout=90):
    """Waits until no task is on its way (every one RUNNING or STOPPED as desired), then
    checks them with check_settled."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = task_pages(ecs, cluster)
        moving = [t for t in tasks if t["lastStatus"] not in ("RUNNING", "STOPPED")
                  or (t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "STOPPED")]
        if not moving:
            return check_settled(agent, ecs, cluster, what)
        if time.monotonic() > deadline:
            agent.fail(f"{what}: tasks did not converge in {timeout} s: "
                       + ", ".join(f'{t["taskArn"]}={t["lastStatus"]}' for t in moving))
        time.sleep(0.3)


def wait_service(agent, c, cluster, service, count, version, attr, timeout=90):
    """The service at count RUNNING tasks of one COMPLETED deployment, each holding the
    parameter version `version` in its attribute `attr`, within timeout; then check_settled."""
    deadline = time.monotonic() + timeout
    while True:
        svc = c["ecs"].describe_services(cluster=cluster, services=[service])["services"][0]
        deps = [(x["status"], x["rolloutState"]) for x in svc["deployments"]]
        arns = c["ecs"].list_tasks(cluster=cluster, serviceName=service,
                                   desiredStatus="RUNNING")["taskArns"]
        tasks = c["ecs"].describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
        held = [a["value"].split()[1] for t in tasks for a in t.get("attributes", [])
                if a["name"] == attr]
        if (svc["runningCount"] == count and deps == [("PRIMARY", "COMPLETED")]
                and len(tasks) == count and all(t["lastStatus"] == "RUNNING" for t in tasks)
                and held == [version] * count):
            return check_settled(agent, c["ecs"], cluster, f"service {service}")
        if time.monotonic() > deadline:
            agent.fail(f"service {service} did not converge: running {svc['runningCount']}, "
                       f"deployments {deps}, tasks {[t['lastStatus'] for t in tasks]}, versions "
                       f"{held} (want {version} x {count})")
        time.sleep(0.5)


def no_values_logged(agent, values):
    """No secret value in the agent's whole log."""
    with open(agent.log, encoding="utf-8", errors="replace") as f:
        text = f.read()
    for v in values:
        if v in text:
            agent.fail(f"a secret value is in the agent's log: {v[:4]}...")


def engine(action):
    """Stops or starts the test engine (tests/harness/dockerd.sh): only a drill holding the
    engine's lock exclusively may do this (tests/CMakeLists.txt ES_ENGINE_RESTART_TESTS)."""
    t0 = time.monotonic()
    subprocess.run([os.environ["ES_TEST_DOCKERD_CTL"], action], check=True,
                   capture_output=True, text=True)
    return time.monotonic() - t0


class Backend:
    """tests/aws_fake.py as the agent's AWS (mode aws): SSM, Secrets Manager, KMS, STS and IAM
    on one loopback port, which stays the same when the fake is killed and started again."""

    AKID = "AKIDFAULTDRILL"
    SECRET = "fault-drill-admin-secret"

    def __init__(self, extra=()):
        self.extra = list(extra)
        self.port = 0
        self.proc = None
        self.start()

    def start(self):
        fake = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "aws_fake.py")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", fake, "--port", str(self.port),
             "--secret", f"{self.AKID}={self.SECRET}", *self.extra],
            stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def post(self, path, body):
        import json
        import urllib.request
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"{}")

    def stats(self):
        import json
        import urllib.request
        with urllib.request.urlopen(self.url + "/__stats", timeout=5) as r:
            return json.loads(r.read())

    def agent_env(self):
        """The environment that points an agent in mode aws at the fake."""
        env = {"ECS_SECRETS_ACCESS_KEY_ID": self.AKID,
               "ECS_SECRETS_SECRET_ACCESS_KEY": self.SECRET}
        for svc in ("SSM", "SECRETSMANAGER", "KMS", "STS", "IAM"):
            env[f"ECS_SECRETS_ENDPOINT_{svc}"] = self.url
        return env


def wait_launched(agent, ecs, cluster, arns, timeout=60):
    """The tasks' last statuses once none is on its way to RUNNING or STOPPED."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
        if all(t["lastStatus"] in ("RUNNING", "STOPPED") for t in tasks):
            return tasks
        if time.monotonic() > deadline:
            agent.fail(f"tasks still on their way after {timeout} s: "
                       f"{[t['lastStatus'] for t in tasks]}")
        time.sleep(0.3)
