#!/usr/bin/env python3
"""Runs one ctest test alone on a Docker engine of its own, in a cgroup v1 cpuacct group of
its own, and prints the CPU it took: the test's whole tree and its engine (dockerd,
containerd, the shims), started and stopped inside the group, so that nothing the test
costs is in a shared lane engine's account. Containers' own processes are in dockerd's
cgroups (outside the group); scripts/cpu_by_command.py, around this, counts them too.

    scripts/test_alone.py [--env NAME=VALUE]... BUILD_DIR TEST_NAME [ENGINE_ROOT]

The test's command, working directory and environment come from ctest
(--show-only=json-v1); the engine variables are replaced by ENGINE_ROOT's
(default /tmp/es-alone-TEST_NAME); --env sets a variable over ctest's (an A/B run: e.g.
ES_BUILD_DIR=/nonexistent makes lib.sh use aws_forkclient.py). Several may run at once (each its own engine and
group). Prints one JSON line: test, rc, wall, cpu (the group's), engine_start_cpu.
Needs root and a writable /sys/fs/cgroup/cpuacct. Fixtures other than the engine (e.g.
test_systemd's prepared root) are not run."""

import ctypes
import json
import os
import subprocess
import sys
import time

CG = "/sys/fs/cgroup/cpuacct"
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "harness",
                       "dockerd.sh")


def usage(group):
    with open(os.path.join(group, "cpuacct.usage"), encoding="ascii") as f:
        return int(f.read()) / 1e9


def main():
    args = sys.argv[1:]
    extra = {}
    while args[:1] == ["--env"] and len(args) > 1:
        k, _, v = args[1].partition("=")
        extra[k] = v
        args = args[2:]
    if len(args) < 2:
        sys.exit(__doc__)
    build, name = args[0], args[1]
    root = args[2] if len(args) > 2 else f"/tmp/es-alone-{name}"
    info = json.loads(subprocess.run(["ctest", "--show-only=json-v1", "-R", f"^{name}$"],
                                     cwd=build, check=True, capture_output=True,
                                     text=True).stdout)
    test = next(t for t in info["tests"] if t["name"] == name)
    env = dict(os.environ)
    cwd = build
    for p in test.get("properties", []):
        if p["name"] == "ENVIRONMENT":
            for kv in p["value"]:
                k, _, v = kv.partition("=")
                env[k] = v
        elif p["name"] == "WORKING_DIRECTORY":
            cwd = p["value"]
    env.update(extra)
    env["ES_TEST_DOCKER_ROOT"] = root
    env["ES_TEST_DOCKER_HOST"] = f"unix://{root}/docker.sock"
    # orphans of the test's tree (a setsid dockerd, a disowned server) come to us, so that
    # cpu_by_command.py --root PID finds them in our subtree
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    group = os.path.join(CG, f"alone-{name}-{os.getpid()}")
    os.mkdir(group)
    with open(os.path.join(group, "cgroup.procs"), "w", encoding="ascii") as f:
        f.write(str(os.getpid()))
    subprocess.run([HARNESS, "fresh"], env=env, check=True, stdout=subprocess.DEVNULL)
    engine_start = usage(group)
    t0 = time.monotonic()
    log = os.path.join(build, f"alone-{name}-{os.getpid()}.log")
    with open(log, "w", encoding="utf-8") as out:
        rc = subprocess.run(test["command"], cwd=cwd, env=env, stdout=out,
                            stderr=subprocess.STDOUT, check=False).returncode
    wall = time.monotonic() - t0
    subprocess.run([HARNESS, "stop"], env=env, check=False, stdout=subprocess.DEVNULL)
    time.sleep(1)  # the daemons a test leaves to die after it
    cpu = usage(group)
    print(json.dumps({"test": name, "env": extra, "rc": rc, "wall_s": round(wall, 1),
                      "cpu_s": round(cpu - engine_start, 1),
                      "engine_start_cpu_s": round(engine_start, 1), "pid": os.getpid(),
                      "log": log}), flush=True)
    # leave the group (to its parent) so that it can be removed
    with open(os.path.join(CG, "cgroup.procs"), "w", encoding="ascii") as f:
        f.write(str(os.getpid()))
    try:
        os.rmdir(group)
    except OSError:
        pass  # a process the test left behind is still in it
    sys.exit(rc)


if __name__ == "__main__":
    main()
