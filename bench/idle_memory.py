#!/usr/bin/env python3
"""The daemon's idle resident memory, split (issue 22).

  bench/idle_memory.py [--build build-rel] [--settle 3] [--top 12]
  bench/idle_memory.py --pid PID          (a running process instead)

Starts the Release daemon in embedded mode on a throwaway state directory and a private
dockerd (tests/harness/dockerd.sh, $ES_TEST_DOCKER_ROOT, default /tmp/es-bench-docker; started
if it does not answer and stopped afterwards), waits for its ready line and --settle seconds,
then prints from /proc/PID/smaps_rollup the resident total split into anonymous, file-mapped
and shared memory, and from /proc/PID/smaps the mappings' resident pages grouped by file (the
libraries), largest first, with the anonymous regions (heap, stacks, thread arenas) grouped
apart. Figures only: not a test.
"""

import argparse
import collections
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
KIB = 1024.0


def rollup(pid):
    """{field: kB} of /proc/PID/smaps_rollup."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
        for line in f:
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                out[m.group(1)] = int(m.group(2))
    return out


def by_mapping(pid):
    """{name: [rss kB, anonymous kB]} over /proc/PID/smaps, a file's mappings summed; anonymous
    mappings named [heap], [stack], or [anon] (thread stacks and malloc arenas)."""
    acc = collections.defaultdict(lambda: [0, 0])
    name = None
    head = re.compile(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$")
    with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as f:
        for line in f:
            m = head.match(line)
            if m:
                name = m.group(1).strip() or "[anon]"
                continue
            m = re.match(r"(Rss|Anonymous):\s+(\d+) kB", line)
            if m and name:
                acc[name][0 if m.group(1) == "Rss" else 1] += int(m.group(2))
    return acc


def report(pid, top):
    r = rollup(pid)
    rss, anon = r.get("Rss", 0), r.get("Anonymous", 0)
    shared = r.get("Shared_Clean", 0) + r.get("Shared_Dirty", 0)
    print(f"pid {pid}: resident {rss / KIB:.2f} MiB = anonymous {anon / KIB:.2f} MiB "
          f"+ file-mapped {(rss - anon) / KIB:.2f} MiB; of the resident, shared with other "
          f"processes {shared / KIB:.2f} MiB; Pss {r.get('Pss', 0) / KIB:.2f} MiB")
    maps = by_mapping(pid)
    files = sorted(((v[0], v[1], k) for k, v in maps.items()), reverse=True)
    print(f"top {top} mappings by resident pages (kB resident, of which anonymous):")
    for rss_k, anon_k, name in files[:top]:
        print(f"  {rss_k:7d} kB  {anon_k:6d} anon  {name}")
    libs = [x for x in files if x[2].startswith("/")]
    print(f"  ({len(libs)} files mapped, {sum(x[0] for x in libs) / KIB:.2f} MiB of their pages "
          f"resident)")
    return r


def start_daemon(build, work, sock):
    binary = os.path.join(build, "agent", "ecs-secrets-agent")
    if not os.access(binary, os.X_OK):
        sys.exit(f"idle_memory: no {binary} (README, Development: the Release build)")
    state = os.path.join(work, "state")
    os.mkdir(state, 0o700)
    log = os.path.join(work, "agent.log")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([binary, "--mode", "embedded", "--state-dir", state, "--listen",
                                 f"127.0.0.1:{port}", "--docker-host", f"unix://{sock}"],
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        with open(log, encoding="utf-8", errors="replace") as f:
            if "ready: " in f.read():
                return proc
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"idle_memory: the daemon did not start: {open(log).read()[-2000:]}")
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build-rel"))
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--pid", type=int)
    a = ap.parse_args()
    if a.pid:
        report(a.pid, a.top)
        return
    root = os.environ.get("ES_TEST_DOCKER_ROOT", "/tmp/es-bench-docker")
    env = dict(os.environ, ES_TEST_DOCKER_ROOT=root)
    harness = os.path.join(SRC, "tests", "harness", "dockerd.sh")
    started = subprocess.run([harness, "status"], env=env).returncode != 0
    if started:
        subprocess.run([harness, "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="es-idle-memory-")
    proc = None
    try:
        proc = start_daemon(a.build, work, os.path.join(root, "docker.sock"))
        time.sleep(a.settle)
        report(proc.pid, a.top)
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        if started:
            subprocess.run([harness, "stop"], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
