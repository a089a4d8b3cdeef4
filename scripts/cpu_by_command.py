#!/usr/bin/env python3
"""Runs a command and says which programs its CPU went to, by name, counting every process
of its tree that exited, however short it lived (the kernel's process accounting, acct(2),
version 3 records: a record per exiting process with its user and system time and its parent).

    scripts/cpu_by_command.py [--top N] [--json FILE] [--keep ACCT] -- COMMAND [ARGS...]
    scripts/cpu_by_command.py [--top N] --read ACCT --root PID   # a subtree of a kept file

scripts/cpu_by_category.py samples every 50 ms, so a jq, curl or bash subshell that lives
10 ms counts for its parent's category; this one sees each of them. The command runs as a
child subreaper's child, so a daemon that double-forks (dockerd under setsid, the shim) stays
in the tree. Processes still alive at the end (a dockerd that outlives the command) have no
record and do not count: stop them inside the command. Processes another user runs at the
same time are on other branches of the process tree and are left out.

Needs root and CONFIG_BSD_PROCESS_ACCT_V3; accounting is machine-wide, one file at a time:
do not run two of these at once. A tool for measuring the test suite (docs/TESTING.md)."""

import collections
import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36
AHZ = 100  # acct v3 times are in USER_HZ ticks
REC = struct.Struct("=BBHIIIIIIf8H16s")  # struct acct_v3, 64 bytes


def comp_t(v):
    """comp_t: 13-bit mantissa, 3-bit base-8 exponent."""
    return (v & 0x1FFF) << (3 * (v >> 13))


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    n = 0
    for off in range(0, len(data) - REC.size + 1, REC.size):
        (_flag, version, _tty, exitcode, _uid, _gid, pid, ppid, btime, etime, utime, stime,
         *_rest, comm) = REC.unpack_from(data, off)
        if version & 0x7F != 3:
            continue
        n += 1
        yield {"idx": n - 1, "pid": pid, "ppid": ppid, "start": btime,
               "end": btime + etime / AHZ, "comm": comm.split(b"\0")[0].decode(errors="replace"),
               "cpu": (comp_t(utime) + comp_t(stime)) / AHZ, "etime": etime / AHZ,
               "exit": exitcode}


def subtree(recs, root, reaper=None):
    """The indices of the records whose parent chain reaches root (or whose parent is reaper,
    where orphans of root's tree went). A busy machine reuses pids within minutes, so a child
    belongs to a parent's record only if it started while that parent lived (1 s slack: the
    start times are whole seconds)."""
    by_pid = collections.defaultdict(list)
    for i, r in enumerate(recs):
        by_pid[r["pid"]].append(i)
    # the root: of the records with its pid, the longest-lived (a pid reused by a short
    # process of someone else's is not the command that ran the whole time)
    roots = by_pid.get(root, [])
    mine = {max(roots, key=lambda i: recs[i]["end"] - recs[i]["start"])} if roots else set()
    if reaper is not None and reaper != root:
        reaper_recs = by_pid.get(reaper, [])
    else:
        reaper_recs = []
    changed = True
    while changed:
        changed = False
        for i, r in enumerate(recs):
            if i in mine:
                continue
            for j in by_pid.get(r["ppid"], []):
                p = recs[j]
                if (j in mine or j in reaper_recs) and p["start"] - 1 <= r["start"] <= p["end"] + 1:
                    mine.add(i)
                    changed = True
                    break
            else:
                # a child of the live reaper (our own process: no record yet)
                if reaper is not None and r["ppid"] == reaper and not reaper_recs:
                    mine.add(i)
                    changed = True
    return mine


def report(recs, mine, top_n):
    by = collections.defaultdict(lambda: [0.0, 0])
    for r in recs:
        if r["idx"] in mine:
            by[r["comm"]][0] += r["cpu"]
            by[r["comm"]][1] += 1
    rows = sorted(by.items(), key=lambda kv: -kv[1][0])
    for comm, (cpu, n) in rows[:top_n]:
        print(f"  {cpu:8.1f} s {n:6d}x {comm}", file=sys.stderr)
    return by, rows


def main():
    argv = sys.argv[1:]
    top_n, out_json, keep, read, root = 25, None, None, None, None
    while argv[:1] in (["--top"], ["--json"], ["--keep"], ["--read"], ["--root"]):
        opt, val, argv = argv[0], argv[1], argv[2:]
        if opt == "--top":
            top_n = int(val)
        elif opt == "--json":
            out_json = val
        elif opt == "--keep":
            keep = val
        elif opt == "--read":
            read = val
        else:
            root = int(val)
    if read:
        recs = list(records(read))
        mine = subtree(recs, root, root)
        by, _ = report(recs, mine, 0)
        print(f"cpu_by_command: the tree of pid {root} in {read}: CPU of exited processes "
              f"{sum(v[0] for v in by.values()):.1f} s in {sum(v[1] for v in by.values())} "
              "processes", file=sys.stderr)
        report(recs, mine, top_n)
        return
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        sys.exit(__doc__)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"cpu_by_command: prctl: {os.strerror(ctypes.get_errno())}")
    fd, path = tempfile.mkstemp(prefix="cpu_by_command-", suffix=".acct")
    os.close(fd)
    if libc.acct(path.encode()) != 0:
        sys.exit(f"cpu_by_command: acct: {os.strerror(ctypes.get_errno())}")
    t0 = time.monotonic()
    try:
        child = subprocess.Popen(argv)
        rc = child.wait()
        # orphans reparented to us: reap them as they exit, for a second at most
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
    finally:
        libc.acct(None)
    wall = time.monotonic() - t0
    recs = list(records(path))
    if keep:
        os.replace(path, keep)
    else:
        os.unlink(path)
    mine = subtree(recs, child.pid, os.getpid())
    by, rows = report(recs, mine, 0)
    total = sum(v[0] for v in by.values())
    print(f"cpu_by_command: {' '.join(argv)}: rc {rc}, wall {wall:.0f} s, CPU of exited "
          f"processes {total:.1f} s in {sum(v[1] for v in by.values())} processes", file=sys.stderr)
    report(recs, mine, top_n)
    if out_json:
        with open(out_json, "a", encoding="utf-8") as f:
            f.write(json.dumps({"command": argv, "rc": rc, "wall_s": round(wall, 1),
                                "cpu_s": round(total, 1),
                                "by_command": {k: [round(v[0], 2), v[1]] for k, v in rows}})
                    + "\n")
    sys.exit(rc)


if __name__ == "__main__":
    main()
