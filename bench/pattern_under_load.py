#!/usr/bin/env python3
"""pattern_under_load - issue 17's figure: the back-reference AllowedPattern is answered in
under 100 ms, and the loop's /metrics answers in under 100 ms while it is tried.

Starts the real daemon (BUILD/agent/ecs-secrets-agent, a Release build) in embedded mode on a
temporary state directory and a free loopback port. First, for a baseline, SECONDS/4 seconds
of the two probes alone; then for SECONDS seconds the probes while:
  - CLIENTS processes call PutParameter with AllowedPattern ^((a+)\\2)+b$ and a value of 1600
    'a' or 1599 'a' + 'b' (alternately), each waiting for its answer before the next call.
The probes, each a process of its own (no client shares a GIL with another):
  - GET /metrics (plain HTTP, keep-alive), back to back;
  - GetParameter on a parameter made before (signed, boto3), back to back.
Prints count, median, p99 and max latency of each, and the answers' codes. Figures, not a test
(nothing is asserted; a loaded machine shows in them).

  bench/pattern_under_load.py BUILD [SECONDS] [CLIENTS]      defaults: 20 s, 3 clients
Needs boto3. The daemon needs no Docker for this (it keeps retrying Docker meanwhile);
DOCKER_HOST is passed on when set.
"""
import http.client
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.config
import botocore.exceptions

PATTERN = r"^((a+)\2)+b$"
VALUES = ("a" * 1600, "a" * 1599 + "b")
READY_TIMEOUT_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(build, state, port, log):
    binary = os.path.join(build, "agent", "ecs-secrets-agent")
    argv = [binary, "--state-dir", state, "--listen", f"127.0.0.1:{port}", "--mode", "embedded",
            "--region", "us-east-1"]
    docker = os.environ.get("DOCKER_HOST")
    if docker:
        argv += ["--docker-host", docker]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_TIMEOUT_S
    creds = os.path.join(state, "aws-credentials")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the daemon exited with {proc.returncode}; its log: {log.name}")
        if os.path.exists(creds):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc
            except OSError:
                pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("the daemon did not come up")


def ssm_client(port):
    session = boto3.session.Session(profile_name="ecs-secrets-agent")
    cfg = botocore.config.Config(retries={"max_attempts": 1}, read_timeout=60,
                                 max_pool_connections=4)
    return session.client("ssm", endpoint_url=f"http://127.0.0.1:{port}", config=cfg)


class Series:
    """Latencies (ms) and answer codes of one kind of call."""

    def __init__(self, name):
        self.name, self.ms, self.codes = name, [], {}

    def add(self, ms, code):
        self.ms.append(ms)
        self.codes[code] = self.codes.get(code, 0) + 1

    def merge(self, other):
        self.ms += other.ms
        for k, v in other.codes.items():
            self.codes[k] = self.codes.get(k, 0) + v

    def line(self):
        if not self.ms:
            return f"{self.name:<24} no calls"
        ms = sorted(self.ms)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        codes = ", ".join(f"{k} {v}" for k, v in sorted(self.codes.items()))
        return (f"{self.name:<24} n={len(ms):<6} median {statistics.median(ms):8.2f} ms   "
                f"p99 {p99:8.2f} ms   max {ms[-1]:8.2f} ms   [{codes}]")


def timed(series, fn):
    t0 = time.perf_counter()
    try:
        fn()
        code = "200"
    except botocore.exceptions.ClientError as e:
        code = e.response["Error"]["Code"]
    except Exception as e:  # a transport failure is a figure too
        code = type(e).__name__
    series.add((time.perf_counter() - t0) * 1000, code)


# Each client runs in a process of its own until `stop` is set, then puts its
# series on `out`.

def pattern_client(port, k, stop, out):
    ssm = ssm_client(port)
    series = (Series("pattern 1600 'a'"), Series("pattern 1599 'a' + 'b'"))
    i = 0
    while not stop.is_set():
        value = VALUES[i % 2]
        timed(series[i % 2], lambda: ssm.put_parameter(
            Name=f"/bench/pattern/{k}", Value=value, Type="String", Overwrite=True,
            AllowedPattern=PATTERN))
        i += 1
    out.put(series)


def get_client(port, name, stop, out):
    ssm = ssm_client(port)
    series = Series(name)
    while not stop.is_set():
        timed(series, lambda: ssm.get_parameter(Name="/bench/cheap"))
    out.put((series,))


def metrics_client(port, name, stop, out):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    series = Series(name)

    def get():
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}")

    while not stop.is_set():
        timed(series, get)
    conn.close()
    out.put((series,))


def run_phase(port, seconds, clients, label):
    """The probes (and `clients` pattern clients) for `seconds`; their series, merged by name."""
    stop, out = multiprocessing.Event(), multiprocessing.Queue()
    procs = [multiprocessing.Process(target=metrics_client,
                                     args=(port, f"GET /metrics{label}", stop, out)),
             multiprocessing.Process(target=get_client,
                                     args=(port, f"GetParameter{label}", stop, out))]
    procs += [multiprocessing.Process(target=pattern_client, args=(port, k, stop, out))
              for k in range(clients)]
    for p in procs:
        p.start()
    time.sleep(seconds)
    stop.set()
    merged = {}
    for _ in procs:
        for s in out.get(timeout=120):
            merged.setdefault(s.name, Series(s.name)).merge(s)
    for p in procs:
        p.join()
    return merged


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    work = tempfile.mkdtemp(prefix="es-bench-pattern-")
    state = os.path.join(work, "state")
    os.mkdir(state, 0o700)
    port = free_port()
    log = open(os.path.join(work, "agent.log"), "w")
    proc = start_daemon(build, state, port, log)
    os.environ.update(AWS_SHARED_CREDENTIALS_FILE=os.path.join(state, "aws-credentials"),
                      AWS_CONFIG_FILE=os.path.join(state, "aws-config"),
                      AWS_EC2_METADATA_DISABLED="true")
    try:
        ssm_client(port).put_parameter(Name="/bench/cheap", Value="v", Type="String",
                                       Overwrite=True)
        base = run_phase(port, seconds / 4, 0, " (alone)")
        load = run_phase(port, seconds, clients, " (under pattern)")
        print(f"{seconds:.0f} s, {clients} pattern clients, AllowedPattern {PATTERN}; "
              f"load average {os.getloadavg()[0]:.2f} at the end, {os.cpu_count()} CPUs")
        for series in list(base.values()) + list(load.values()):
            print(series.line())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
