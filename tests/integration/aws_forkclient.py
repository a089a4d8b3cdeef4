"""aws_forkclient.py SOCKET ARGS...: one aws CLI call through aws_forkserver.py (see there).

Run as `python3 -I -S` (no site, no user paths: it imports only what it needs, so its start
costs a few milliseconds). Sends the argv, the environment and the working directory, with
stdin, stdout and stderr themselves (SCM_RIGHTS), and exits with the CLI's exit code.
"""
import json
import os
import socket
import struct
import sys

body = json.dumps({"argv": sys.argv[2:], "env": dict(os.environ), "cwd": os.getcwd()}).encode()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
socket.send_fds(s, [struct.pack("!I", len(body))], [0, 1, 2])
s.sendall(body)
rc = b""
while len(rc) < 4:
    b = s.recv(4 - len(rc))
    if not b:
        sys.stderr.write("aws_forkclient: the CLI's process ended without an exit code\n")
        sys.exit(255)
    rc += b
sys.exit(struct.unpack("!i", rc)[0])
