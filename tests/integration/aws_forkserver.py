#!/usr/bin/python3
"""The real aws CLI (Debian's awscli, /usr/bin/aws), started once per test.

Why: a test makes dozens of CLI calls, and each /usr/bin/aws costs about 1.1 s of CPU before it
sends a byte (Python imports awscli and botocore, reads the service models, asks `distro` what
the host is). On CI's two cores the CLI's starts were half of all the CPU the suite used. This
server pays that once: it imports awscli.clidriver and its plugins, reads the models the tests
use, then forks one child per call. The child runs exactly what /usr/bin/aws runs,
awscli.clidriver.main(), on the caller's argv, environment, working directory and
stdin/stdout/stderr (passed over the socket with SCM_RIGHTS), and sends back the exit code.
Nothing of the CLI is replaced: argument parsing, botocore's signing, retries and output are
the installed package's own, fresh in every child.

What the parent may not do: run a CLI command. The CLI's first command starts awscrt's native
threads, and a child forked from a process with those threads hangs in awscrt's logging set-up.
So the parent only imports and reads data files; each child starts awscrt itself.

    aws_forkserver.py SOCKET     serve until the parent (the test's shell) dies
The client is aws_forkclient (aws_forkclient.c; aws_forkclient.py outside a build);
tests/integration/lib.sh starts the server (it_aws_env) and
goes through it (it_aws) when ES_TEST_AWS_FORKSERVER is not 0.
"""
import contextlib
import ctypes
import json
import os
import signal
import socket
import struct
import sys
import threading
import traceback

if os.environ.get("LC_CTYPE", "") == "UTF-8":  # as /usr/bin/aws does
    os.environ["LC_CTYPE"] = "en_US.UTF-8"

import awscli.clidriver  # noqa: E402
import awscli.handlers  # noqa: E402,F401  (the plugins every call imports)
import botocore.loaders  # noqa: E402
import botocore.session  # noqa: E402

# awscli's __init__ sets this at import; a child's environment is the caller's, so it is put back
DATA_PATH = os.environ["AWS_DATA_PATH"]
REQUEST_MAX = 4 << 20  # argv and environment of one call
SERVICES = ("ssm", "secretsmanager", "kms", "iam", "sts", "ecs", "s3", "logs", "ecr")

# One loader for every session a child makes: its instance cache holds the models read here
_loaders = {}
_create_loader = botocore.loaders.create_loader


def shared_loader(search_path_string=None):
    if search_path_string not in _loaders:
        _loaders[search_path_string] = _create_loader(search_path_string)
    return _loaders[search_path_string]


botocore.session.create_loader = shared_loader


def warm():
    loader = shared_loader(DATA_PATH)
    loader.load_data("cli")
    for name in ("endpoints", "partitions", "sdk-default-configuration", "_retry"):
        with contextlib.suppress(Exception):
            loader.load_data(name)
    for svc in SERVICES:
        for typ in ("service-2", "waiters-2", "paginators-1", "endpoint-rule-set-1"):
            with contextlib.suppress(Exception):
                loader.load_service_model(svc, typ)
    awscli.clidriver._get_distribution()  # distro caches what it read from /etc


def recv_exact(conn, n):
    buf = bytearray()
    while len(buf) < n:
        b = conn.recv(n - len(buf))
        if not b:
            raise EOFError("the client went away")
        buf += b
    return bytes(buf)


def watch_client(conn):
    """The client only reads the exit code: an end of stream before it means it died (a
    timeout killed it), and its call dies with it."""
    with contextlib.suppress(OSError):
        conn.recv(1)
    os._exit(255)


def child(conn):
    msg, fds, _, _ = socket.recv_fds(conn, 4096, 3)
    if len(msg) < 4 or len(fds) != 3:
        os._exit(2)
    n = struct.unpack("!I", msg[:4])[0]
    if n > REQUEST_MAX or n < len(msg) - 4:
        os._exit(2)
    req = json.loads(msg[4:] + recv_exact(conn, n - (len(msg) - 4)))
    for i, fd in enumerate(fds):
        os.dup2(fd, i)
        os.close(fd)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    os.environ["AWS_DATA_PATH"] = DATA_PATH
    if os.environ.get("LC_CTYPE", "") == "UTF-8":
        os.environ["LC_CTYPE"] = "en_US.UTF-8"
    threading.Thread(target=watch_client, args=(conn,), daemon=True).start()
    sys.argv = ["aws"] + req["argv"]
    try:
        rc = awscli.clidriver.main()
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(struct.pack("!i", rc if isinstance(rc, int) else 255))
    os._exit(0)


def serve(path):
    # the server ends with the shell that started it, however that shell ends
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:
        sys.exit(0)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path + ".tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    s.bind(tmp)
    s.listen(128)
    os.rename(tmp, path)  # the socket appears only when it accepts
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
    while True:
        conn, _ = s.accept()
        if os.fork() == 0:
            s.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                child(conn)
            except BaseException:  # noqa: B036  (a child never returns to the accept loop)
                traceback.print_exc()
            os._exit(2)
        conn.close()


if __name__ == "__main__":
    sock_path = sys.argv[1]
    warm()
    serve(sock_path)
