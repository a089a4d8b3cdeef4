#!/usr/bin/env python3
"""Runs a command and says where its CPU went: the whole process tree (daemons it starts,
disowned servers, children nobody waits for) in a cgroup v1 cpuacct group, each process moved
into a sub-group by what it is (the aws CLI, the agent, dockerd, etcd, the compiler, ...).

    scripts/cpu_by_category.py [--json FILE] -- COMMAND [ARGS...]

A sampler looks at every process of the groups each 50 ms and moves a process whose name
says another category into that one's group; a child starts in its parent's group, so at
most its first 50 ms count for the parent's category. Shells and everything not named below
stay in the top group ("other": bash, jq, sleep, awk, ...). The aws CLI counts its calls
(each fork client, aws_forkclient or aws_forkclient.py, or a /usr/bin/aws) and curl its
runs (it_api's signed polls). Containers' own processes are in dockerd's cgroups, outside.

Needs root and a writable /sys/fs/cgroup/cpuacct (cgroup v1); prints a table to stderr and
exits with the command's status. A tool for measuring the test suite (docs/TESTING.md)."""

import json
import os
import subprocess
import sys
import threading
import time

ROOT = "/sys/fs/cgroup/cpuacct"
CATS = ("awscli", "agent", "docker", "docker-cli", "etcd", "build", "curl", "python")
BUILD = {"cc", "gcc", "cc1", "as", "ld", "ld.bfd", "collect2", "cmake", "make", "gmake",
         "cpack", "ccache", "dpkg-deb", "rpmbuild", "rpm", "lto1", "lto-wrapper", "ninja",
         "x86_64-linux-gnu-gcc-12", "debootstrap", "dpkg", "xz", "gzip", "zstd", "tar"}


def classify(pid):
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            comm = f.read().strip()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None, False
    args = b" ".join(argv[:5]).decode(errors="replace")
    if comm in ("aws", "aws_forkclient") or "aws_forkserver.py" in args or \
            "aws_forkclient.py" in args:
        # a call: /usr/bin/aws, or the fork client, C or Python (the fork server's children
        # run the call)
        return "awscli", comm in ("aws", "aws_forkclient") or "aws_forkclient.py" in args
    if comm.startswith("ecs-secrets-age"):
        return "agent", False
    if comm in ("dockerd", "containerd", "runc", "docker-init", "docker-proxy") or \
            comm.startswith("containerd-shim"):
        return "docker", False
    if comm == "docker":
        return "docker-cli", False
    if comm == "etcd":
        return "etcd", False
    if comm in BUILD or comm.startswith("cc1"):
        return "build", False
    if comm == "curl":
        return "curl", True
    if comm.startswith("python"):
        return "python", False
    return "", False


def usage_ns(path):
    with open(os.path.join(path, "cpuacct.usage"), encoding="ascii") as f:
        return int(f.read())


def procs(path):
    try:
        with open(os.path.join(path, "cgroup.procs"), encoding="ascii") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def main():
    argv = sys.argv[1:]
    out_json = None
    if argv[:1] == ["--json"]:
        out_json, argv = argv[1], argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.exit(__doc__)
    top = os.path.join(ROOT, f"cpucat-{os.getpid()}")
    os.mkdir(top)
    for c in CATS:
        os.mkdir(os.path.join(top, c))
    counted = {c: set() for c in CATS}
    done = threading.Event()

    def sample():
        groups = [("", top)] + [(c, os.path.join(top, c)) for c in CATS]
        while not done.is_set():
            for cat, path in groups:
                for pid in procs(path):
                    want, call = classify(pid)
                    if want is None or want == cat:
                        if call and want:
                            counted[want].add(pid)
                        continue
                    if want == "" and cat:
                        # a child of a classified process that is none of ours (a shell a
                        # hook runs): to the top group, where the rest of its kind counts
                        dest = top
                    else:
                        dest = os.path.join(top, want) if want else top
                    try:
                        with open(os.path.join(dest, "cgroup.procs"), "w", encoding="ascii") as f:
                            f.write(str(pid))
                    except OSError:
                        pass
                    if call and want:
                        counted[want].add(pid)
            time.sleep(0.05)

    t0 = time.monotonic()
    child = subprocess.Popen(argv, preexec_fn=lambda: open(
        os.path.join(top, "cgroup.procs"), "w", encoding="ascii").write(str(os.getpid())))
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    rc = child.wait()
    # the daemons a test leaves to die after it (fork servers, agents killed on exit)
    time.sleep(1)
    done.set()
    th.join()
    wall = time.monotonic() - t0
    total = usage_ns(top) / 1e9
    res = {c: usage_ns(os.path.join(top, c)) / 1e9 for c in CATS}
    res["other"] = total - sum(res.values())
    left = []
    for path in [top] + [os.path.join(top, c) for c in CATS]:
        left += procs(path)
    import resource
    me = resource.getrusage(resource.RUSAGE_SELF)
    report = {"command": argv, "rc": rc, "wall_s": round(wall, 1), "cpu_s": round(total, 1),
              "sampler_cpu_s": round(me.ru_utime + me.ru_stime, 1),
              "by_category_s": {k: round(v, 1) for k, v in res.items()},
              "aws_calls": len(counted["awscli"]), "curl_runs": len(counted["curl"]),
              "left_running": len(left)}
    print(f"cpu_by_category: {' '.join(argv)}: rc {rc}, wall {wall:.0f} s, CPU {total:.1f} s: "
          + ", ".join(f"{k} {v:.1f}" for k, v in sorted(res.items(), key=lambda kv: -kv[1]))
          + f"; aws CLI calls {report['aws_calls']}, curl runs {report['curl_runs']}"
          + f" (the sampler itself, outside: {report['sampler_cpu_s']} s)",
          file=sys.stderr)
    if out_json:
        with open(out_json, "a", encoding="utf-8") as f:
            f.write(json.dumps(report) + "\n")
    if not left:
        for c in CATS:
            os.rmdir(os.path.join(top, c))
        os.rmdir(top)
    else:
        print(f"cpu_by_category: {len(left)} processes still in {top}", file=sys.stderr)
    sys.exit(rc)


if __name__ == "__main__":
    main()
