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


def docker(*args):
    return subprocess.run(["docker", "-H", DOCKER_HOST, *args], check=True,
                          capture_output=True, text=True).stdout


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
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(self.state, "aws-credentials")
        os.environ["AWS_CONFIG_FILE"] = os.path.join(self.state, "aws-config")
        session = boto3.Session(profile_name="ecs-secrets-agent", region_name="us-east-1")
        cfg = botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=5,
                                     read_timeout=30)
        return {svc: session.client(svc, endpoint_url=self.url, config=cfg) for svc in services}

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
