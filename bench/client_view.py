#!/usr/bin/env python3
"""RunTask to RUNNING as a client sees it, beside the same container made directly (issue 22).

  bench/client_view.py [--build build-rel] [--build-b OTHER [--env-b NAME=VALUE]] [--pairs 15] [--trace 6]
                       [--control] [--poll-ms 2] [--work-in DIR]
                       [--wrap 'strace -f -T -o FILE'] [--keep]

What it does, on a private dockerd (tests/harness/dockerd.sh, $ES_TEST_DOCKER_ROOT, default
/tmp/es-bench-docker; started if it does not answer, stopped at the end if it started it):
  1. starts the Release daemon in embedded mode and sets up, through boto3, 10 SecureString
     parameters, an execution role that may read them, and a task definition (image
     local/busybox:latest, `sleep 3600`, network mode none, the 10 parameters as secrets);
  2. the trace: the daemon runs --trace launches with its Docker socket behind a recording
     forwarder (this script, a unix socket in a 0700 work directory): every Docker request the
     agent makes, its answer's first bytes and the events it is sent, with times relative to
     the run_task call, are printed for the last launch, and each segment's median (to the
     create, Docker's create, to the start, Docker's start, to RUNNING seen) over the others.
     The ContainerCreate body the agent sent is kept: it is the floor's body (the fair floor:
     byte for byte the agent's options, only the container name changed and the agent's label
     keys renamed at the same length, com.amazonaws.ecs.* -> com.amazonaws.ecz.*, so that the
     agent neither follows nor inspects the floor's containers);
  3. the daemon is restarted on the same state directly on dockerd, one warm-up launch a
     side, then N pairs, alternating which goes first:
       daemon: boto3 run_task, then describe_tasks every 2 ms until lastStatus is RUNNING;
       direct: POST containers/create with the captured body, then POST .../start (keep-alive
               connection on dockerd's socket, no client library);
       with --control, a third launch per round (the order rotating): the direct one with the
               same describe_tasks polling running beside it in a thread;
     each round's containers are removed (docker rm -f on the socket) and the daemon's task
     seen STOPPED before the next;
  4. prints medians, p90s, the ratio of the medians and of the p90s, the per-pair ratio's
     median, the CPU this client and the daemon used over the rounds, the boto3 calls' own
     latencies, and the load average before and after.
--env-b NAME=VALUE (repeatable) sets a variable in daemon B's environment only: with --build-b
naming the same build, one setting against another in one run (ECS_SECRETS_DESCRIBE_WAIT_MS=0).
--build-b OTHER runs a second daemon (another build, its own state and port, set up the same
way) as one more side of every round, so that two builds are compared in one run under the same
load: each round then launches daemon, daemon B and direct, the order rotating. Both daemons
watch the same dockerd: each sees the other's containers in its events and lists (a container
of a task it does not know: looked up and left alone), alike for both.
--poll-ms sets the client's describe_tasks interval (default 2 ms, issue 22's); a longer one
shows how much of the ratio is the polling client's own CPU beside runc.
--work-in puts the work directory (the daemon's state, so its SQLite store) elsewhere, e.g.
on /dev/shm; --wrap runs the daemon under a tool (the daemon's CPU is then the tool's).
Figures only: not a test. Secret values are throwaway strings of a throwaway store.
"""

import argparse
import http.client
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

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CLUSTER = "bench"
FAMILY = "bench-client-view"
ROLE = "benchExecution"
IMAGE = "local/busybox:latest"
N_SECRETS = 10
POLL_S = [0.002]  # the client's describe_tasks interval (--poll-ms)
REC_READ_MAX = 65536  # bytes per read in the recording forwarder
HEAD_MAX = 1 << 20  # a request head the forwarder parses, at most


def loadavg():
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def proc_cpu(pid):
    """User plus system CPU seconds of process pid so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs, p):
    """The p-th percentile (nearest rank) of xs."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


class UnixHTTP(http.client.HTTPConnection):
    """http.client on a unix socket (dockerd's), keep-alive."""

    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock = s


def docker_call(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, data


# ---- the recording forwarder -------------------------------------------------------------


class Recorder:
    """A unix socket forwarding every connection to dockerd's, noting each request (time,
    connection, request line), the first bytes of each answer, the events, and keeping
    ContainerCreate bodies."""

    def __init__(self, listen_path, upstream_path):
        self.upstream = upstream_path
        self.path = listen_path
        self.lock = threading.Lock()
        self.notes = []  # (time, conn, kind, text)
        self.creates = []  # (request path, body bytes)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(listen_path)
        os.chmod(listen_path, 0o600)
        self.srv.listen(64)
        self.nconn = 0
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def note(self, conn, kind, text):
        with self.lock:
            self.notes.append((time.perf_counter(), conn, kind, text))

    def close(self):
        self.closing = True
        self.srv.close()

    def _accept(self):
        while not self.closing:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(self.upstream)
            self.nconn += 1
            cid = self.nconn
            self.note(cid, "connect", "")
            threading.Thread(target=self._up, args=(c, u, cid), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c, cid), daemon=True).start()

    def _up(self, c, u, cid):
        """client -> dockerd: requests parsed (Content-Length bodies; the agent sends no
        chunked request), forwarded as read."""
        buf = b""
        need = 0  # body bytes still to pass before the next head
        body = None
        path = None
        while True:
            try:
                data = c.recv(REC_READ_MAX)
            except OSError:
                data = b""
            if not data:
                break
            u.sendall(data)
            buf += data
            while buf:
                if need:
                    take = buf[:need]
                    if body is not None:
                        body += take
                    need -= len(take)
                    buf = buf[len(take):]
                    if need == 0 and body is not None:
                        with self.lock:
                            self.creates.append((path, body))
                        body = None
                    continue
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > HEAD_MAX:
                        buf = b""
                    break
                head = buf[:end].decode("latin-1")
                buf = buf[end + 4:]
                line = head.split("\r\n", 1)[0]
                self.note(cid, "request", line)
                m = re.search(r"(?im)^content-length:\s*(\d+)", head)
                need = int(m.group(1)) if m else 0
                path = line.split(" ")[1] if " " in line else ""
                body = b"" if "/containers/create" in path and need else None
        try:
            u.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _down(self, u, c, cid):
        while True:
            try:
                data = u.recv(REC_READ_MAX)
            except OSError:
                data = b""
            if not data:
                break
            text = data[:200].decode("latin-1")
            if text.startswith("HTTP/1."):
                self.note(cid, "answer", text.split("\r\n", 1)[0])
            for ev in re.finditer(r'"(?:status|Action)":"([a-z_: ]+)"', data.decode("latin-1")):
                self.note(cid, "event", ev.group(1))
                break
            try:
                c.sendall(data)
            except OSError:
                break
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass


# ---- the daemon ------------------------------------------------------------------------------


class Daemon:
    def __init__(self, binary, work, docker_sock, wrap, name="state", env=None):
        self.bin = binary
        self.wrap = wrap
        self.env = dict(os.environ, **(env or {}))
        self.state = os.path.join(work, name)
        os.makedirs(self.state, 0o700, exist_ok=True)
        self.log = os.path.join(work, "agent.log" if name == "state" else f"agent-{name}.log")
        self.docker_sock = docker_sock
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self, docker_sock, level):
        import boto3
        import botocore.config
        at = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        with open(self.log, "a", encoding="utf-8") as out:
            self.proc = subprocess.Popen(
                [*self.wrap, self.bin, "--mode", "embedded", "--state-dir", self.state, "--listen",
                 f"127.0.0.1:{self.port}", "--docker-host", f"unix://{docker_sock}",
                 "--cluster", CLUSTER, "--region", "us-east-1", "--log-level", level],
                stdout=out, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 60
        while True:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                f.seek(at)
                if "ready: " in f.read():
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"client_view: the daemon did not start; see {self.log}")
            time.sleep(0.05)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            os.environ.pop(k, None)
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(self.state, "aws-credentials")
        os.environ["AWS_CONFIG_FILE"] = os.path.join(self.state, "aws-config")
        session = boto3.Session(profile_name="ecs-secrets-agent", region_name="us-east-1")
        cfg = botocore.config.Config(retries={"max_attempts": 1}, read_timeout=60)
        return {s: session.client(s, endpoint_url=self.url, config=cfg)
                for s in ("ecs", "ssm", "iam")}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            if self.wrap:
                # the wrapper (strace) would detach and leave the daemon running: the
                # daemon, its child, gets the signal
                with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children",
                          encoding="ascii") as f:
                    for child in f.read().split():
                        os.kill(int(child), signal.SIGTERM)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def set_up(c):
    """10 SecureStrings, an execution role that may read them, the task definition."""
    secrets = []
    for i in range(N_SECRETS):
        name = f"/bench/client-view/p{i}"
        c["ssm"].put_parameter(Name=name, Type="SecureString", Value=f"bench-value-{i:02d}",
                               Overwrite=True)
        secrets.append({"name": f"SECRET_{i}", "valueFrom": name})
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    role = c["iam"].create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    read = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["ssm:GetParameters", "kms:Decrypt"], "Resource": "*"}]}
    c["iam"].put_role_policy(RoleName=ROLE, PolicyName="read", PolicyDocument=json.dumps(read))
    c["ecs"].register_task_definition(
        family=FAMILY, executionRoleArn=role["Role"]["Arn"], networkMode="none",
        containerDefinitions=[{"name": "app", "image": IMAGE, "command": ["sleep", "3600"],
                               "essential": True, "secrets": secrets}])


def daemon_launch(ecs, lat):
    """run_task, then describe_tasks every POLL_S until RUNNING: (seconds, task ARN, container
    id); lat gets each call's own latency."""
    t0 = time.perf_counter()
    arn = ecs.run_task(cluster=CLUSTER, taskDefinition=FAMILY)["tasks"][0]["taskArn"]
    lat.setdefault("run_task", []).append(time.perf_counter() - t0)
    while True:
        t = time.perf_counter()
        task = ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
        lat.setdefault("describe_tasks", []).append(time.perf_counter() - t)
        if task["lastStatus"] == "RUNNING":
            return time.perf_counter() - t0, arn, task["containers"][0].get("runtimeId")
        if task["lastStatus"] == "STOPPED":
            sys.exit(f"client_view: the task stopped: {task.get('stoppedReason')}")
        time.sleep(POLL_S[0])


class Poller:
    """describe_tasks every POLL_S in a thread while the block runs: the CPU the daemon side's
    client spends polling, put beside a direct launch (--control)."""

    def __init__(self, ecs, arn):
        self.ecs, self.arn = ecs, arn
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.done.is_set():
            self.ecs.describe_tasks(cluster=CLUSTER, tasks=[self.arn])
            time.sleep(POLL_S[0])

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def wait_stopped(ecs, arn):
    for _ in range(600):
        if ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]["lastStatus"] == "STOPPED":
            return
        time.sleep(0.05)
    sys.exit(f"client_view: task {arn} did not stop")


def floor_body(body):
    """The agent's create body with its labels' keys renamed at the same length
    (com.amazonaws.ecs.* -> com.amazonaws.ecz.*): the agent watches the events of containers
    carrying its task-ARN label and lists them to reconcile, and would inspect the floor's."""
    spec = json.loads(body)
    labels = spec.get("Labels") or {}
    spec["Labels"] = {k.replace("com.amazonaws.ecs.", "com.amazonaws.ecz.", 1): v
                      for k, v in labels.items()}
    return spec


def body_summary(spec):
    """The create body's options, Env values masked."""
    s = json.loads(json.dumps(spec))
    s["Env"] = [e.split("=", 1)[0] + "=..." for e in s.get("Env") or []]
    return json.dumps(s, sort_keys=True)


def direct_launch(conn, prefix, spec, seq):
    """containers/create with the agent's body, then start: (seconds, container id)."""
    name = f"bench-direct-{seq:06d}"
    body = json.dumps(spec, separators=(",", ":")).encode()
    t0 = time.perf_counter()
    st, data = docker_call(conn, "POST", f"{prefix}/containers/create?name={name}", body)
    if st != 201:
        sys.exit(f"client_view: direct create: {st} {data[:300]!r}")
    cid = json.loads(data)["Id"]
    st, data = docker_call(conn, "POST", f"{prefix}/containers/{cid}/start")
    if st != 204:
        sys.exit(f"client_view: direct start: {st} {data[:300]!r}")
    return time.perf_counter() - t0, cid


def remove(conn, prefix, cid):
    docker_call(conn, "DELETE", f"{prefix}/containers/{cid}?force=1")


SEGMENTS = ("run_task sent -> create sent (API, resolution)", "create (Docker)",
            "create answered -> start sent (agent)", "start (Docker)",
            "start answered -> RUNNING seen (agent, API, poll)")


def segments(notes, marks):
    """Per traced launch, the time in each segment between run_task and RUNNING seen; prints
    each segment's median over the launches (the first launch is left out when there are more:
    it warms the caches)."""
    per = []
    for t_begin, t_end in marks[1:] if len(marks) > 1 else marks:
        mine = [x for x in notes if t_begin <= x[0] <= t_end]
        cr = next((x for x in mine if x[2] == "request" and "/containers/create" in x[3]), None)
        st = next((x for x in mine if x[2] == "request" and x[3].endswith("/start HTTP/1.1")), None)
        if not cr or not st:
            continue
        cr_a = next(x for x in mine if x[2] == "answer" and x[1] == cr[1] and x[0] > cr[0])
        st_a = next(x for x in mine if x[2] == "answer" and x[1] == st[1] and x[0] > st[0])
        per.append((cr[0] - t_begin, cr_a[0] - cr[0], st[0] - cr_a[0], st_a[0] - st[0],
                    t_end - st_a[0]))
    if not per:
        return
    print(f"trace: medians over {len(per)} launches through the recorder:")
    for k, name in enumerate(SEGMENTS):
        print(f"  {1000 * statistics.median(p[k] for p in per):8.2f} ms  {name}")


def trace(d, sock, work, n):
    """n launches with the daemon's Docker socket behind the recorder; prints the last one's
    Docker calls; returns (API prefix, the create body)."""
    rec = Recorder(os.path.join(work, "rec.sock"), sock)
    c = d.start(rec.path, "debug")
    set_up(c)
    conn = UnixHTTP(sock)
    lat = {}
    marks = []
    for _ in range(n):
        t_begin = time.perf_counter()
        secs, arn, cid = daemon_launch(c["ecs"], lat)
        marks.append((t_begin, t_begin + secs))
        remove(conn, "", cid)
        wait_stopped(c["ecs"], arn)
    d.stop()
    rec.close()
    with rec.lock:
        notes = list(rec.notes)
    segments(notes, marks)
    t_begin, t_end = marks[-1]
    print(f"trace: the last of {n} launches through the recorder, {1000 * (t_end - t_begin):.1f} ms"
          " run_task -> RUNNING seen; Docker traffic from run_task until 100 ms after:")
    calls = 0
    for t, cid, kind, text in notes:
        if t_begin <= t <= t_end + 0.1:
            calls += kind == "request"
            print(f"  {1000 * (t - t_begin):8.2f} ms  conn {cid:3d}  {kind:8s} {text}")
    print(f"trace: {calls} Docker requests in that window; "
          f"{len([x for x in notes if x[2] == 'connect'])} connections in all")
    if not rec.creates:
        sys.exit("client_view: the recorder saw no containers/create body")
    path, body = rec.creates[-1]
    prefix = path.split("/containers/create", 1)[0]
    return prefix, body


def main():
    sys.stdout.reconfigure(line_buffering=True)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build-rel"))
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--trace", type=int, default=6, help="launches through the recorder")
    ap.add_argument("--wrap", default="",
                    help="a command the daemon runs under (e.g. 'strace -f -tt -T -o FILE')")
    ap.add_argument("--control", action="store_true",
                    help="a third launch per round: the direct one with the client's 2 ms "
                         "describe_tasks polling running beside it (the poller's own CPU)")
    ap.add_argument("--build-b", default=None,
                    help="a second build whose daemon is one more side of every round")
    ap.add_argument("--env-b", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment variable for daemon B only (repeatable): e.g. the same "
                         "build with ECS_SECRETS_DESCRIBE_WAIT_MS=0")
    ap.add_argument("--poll-ms", type=float, default=2.0,
                    help="the client's describe_tasks interval in ms (default 2, the issue's)")
    ap.add_argument("--work-in", default=None,
                    help="where the work directory (the daemon's state) goes, e.g. /dev/shm "
                         "to take the store's fdatasyncs off the disk")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (agent log)")
    a = ap.parse_args()
    POLL_S[0] = a.poll_ms / 1000.0
    binaries = []
    for build in [a.build] + ([a.build_b] if a.build_b else []):
        binary = os.path.join(build, "agent", "ecs-secrets-agent")
        if not os.access(binary, os.X_OK):
            sys.exit(f"client_view: no {binary}: cmake -S . -B build-rel "
                     "-DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF && cmake --build build-rel -j2")
        cache = open(os.path.join(build, "CMakeCache.txt"), encoding="utf-8").read()
        if "CMAKE_BUILD_TYPE:STRING=Release" not in cache or re.search(r"SANITIZE:STRING=.",
                                                                       cache):
            print(f"client_view: warning: {build} is not a Release build without sanitizers",
                  file=sys.stderr)
        binaries.append(binary)
    binary = binaries[0]
    root = os.environ.get("ES_TEST_DOCKER_ROOT", "/tmp/es-bench-docker")
    env = dict(os.environ, ES_TEST_DOCKER_ROOT=root)
    harness = os.path.join(SRC, "tests", "harness", "dockerd.sh")
    started = subprocess.run([harness, "status"], env=env).returncode != 0
    if started:
        subprocess.run([harness, "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    sock = os.path.join(root, "docker.sock")
    work = tempfile.mkdtemp(prefix="es-client-view-", dir=a.work_in)
    os.chmod(work, 0o700)
    d = Daemon(binary, work, sock, a.wrap.split())
    env_b = dict(kv.split("=", 1) for kv in a.env_b)
    db = Daemon(binaries[1], work, sock, a.wrap.split(), "state-b", env_b) if a.build_b else None
    print(f"client_view: load average {loadavg()} at the start; {os.cpu_count()} CPUs; "
          f"describe_tasks every {a.poll_ms:g} ms", flush=True)
    daemons = [d] + ([db] if db else [])
    try:
        prefix, body = trace(d, sock, work, a.trace)
        spec = floor_body(body)
        print(f"the agent's create body (Env values masked): {body_summary(spec)}")
        c = d.start(sock, "info")
        cb = None
        if db:
            cb = db.start(sock, "info")
            set_up(cb)
        conn = UnixHTTP(sock)
        lat = {}
        # one warm-up a side
        for cl in [c] + ([cb] if cb else []):
            secs, arn, cid = daemon_launch(cl["ecs"], lat)
            remove(conn, prefix, cid)
            wait_stopped(cl["ecs"], arn)
        secs, cid = direct_launch(conn, prefix, spec, 0)
        remove(conn, prefix, cid)
        lat.clear()
        cpu0 = ([proc_cpu(x.proc.pid) for x in daemons], time.process_time())
        res = {}
        sides = (["daemon"] + (["daemon B"] if db else []) + ["direct"]
                 + (["direct+poll"] if a.control else []))
        for i in range(a.pairs):
            k = i % len(sides)
            order = sides[k:] + sides[:k] if len(sides) > 2 else (sides if k == 0 else sides[::-1])
            for side in order:
                if side in ("daemon", "daemon B"):
                    cl = c if side == "daemon" else cb
                    secs, arn, cid = daemon_launch(cl["ecs"], lat)
                    remove(conn, prefix, cid)
                    wait_stopped(cl["ecs"], arn)
                elif side == "direct":
                    secs, cid = direct_launch(conn, prefix, spec, i + 1)
                    remove(conn, prefix, cid)
                else:
                    with Poller(c["ecs"], arn):
                        secs, cid = direct_launch(conn, prefix, spec, 10000 + i)
                    remove(conn, prefix, cid)
                res.setdefault(side, []).append(secs)
                time.sleep(0.1)
            print(f"  round {i + 1:3d}: "
                  + "  ".join(f"{s} {1000 * res[s][-1]:7.1f} ms" for s in sides)
                  + f"  ({loadavg()})", flush=True)
        cpu = ([proc_cpu(x.proc.pid) - c0 for x, c0 in zip(daemons, cpu0[0])],
               time.process_time() - cpu0[1])
        for x in daemons:
            x.stop()
    finally:
        for x in daemons:
            x.stop()
        if started:
            subprocess.run([harness, "stop"], env=env, stdout=subprocess.DEVNULL)
        if a.keep:
            print(f"client_view: work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    ms = lambda v: f"{1000 * v:.1f} ms"  # noqa: E731
    dr = res["direct"]
    for side in sides:
        v = res[side]
        what = {"daemon": f"run_task -> RUNNING seen, {a.build}",
                "daemon B": f"run_task -> RUNNING seen, {a.build_b}",
                "direct": "create + start, same body",
                "direct+poll": "create + start, the client polling beside it"}[side]
        print(f"{side} ({what}): median {ms(statistics.median(v))}, p90 {ms(pct(v, 90))}")
    for side in sides:
        if side.startswith("daemon"):
            v = res[side]
            ratios = [x / y for x, y in zip(v, dr)]
            print(f"ratio {side} / direct: medians {statistics.median(v) / statistics.median(dr):.3f}, "
                  f"p90s {pct(v, 90) / pct(dr, 90):.3f}, per-round median "
                  f"{statistics.median(ratios):.3f}")
    if "direct+poll" in res:
        dp = res["direct+poll"]
        dm = res["daemon"]
        print(f"daemon / direct+poll: medians {statistics.median(dm) / statistics.median(dp):.3f}, "
              f"p90s {pct(dm, 90) / pct(dp, 90):.3f}")
    if db:
        dm, dbm = res["daemon"], res["daemon B"]
        print(f"daemon B / daemon: medians {statistics.median(dbm) / statistics.median(dm):.3f}, "
              f"per-round median {statistics.median([x / y for x, y in zip(dbm, dm)]):.3f}")
    polled = len(res["daemon"]) + len(res.get("direct+poll", []))
    n = sum(len(v) for v in res.values())
    print(f"CPU over the {n} measured launches: this client {cpu[1]:.2f} s; the daemon "
          f"{cpu[0][0]:.2f} s ({1000 * cpu[0][0] / max(1, polled):.1f} ms per launch with polling)"
          + (f"; daemon B {cpu[0][1]:.2f} s ({1000 * cpu[0][1] / max(1, len(res['daemon B'])):.1f}"
             " ms per launch)" if db else ""))
    for k, v in lat.items():
        print(f"boto3 {k}: {len(v)} calls, median {ms(statistics.median(v))}, p90 {ms(pct(v, 90))}")
    print(f"client_view: load average {loadavg()} at the end")


if __name__ == "__main__":
    main()
