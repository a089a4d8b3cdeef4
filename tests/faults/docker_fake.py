"""A stand-in for dockerd on a unix socket, for drills that need more containers than the test
engine can start in a test's time (a real container takes about half a second on vfs; the
event-burst drill wants 1,000). It answers the calls the agent and the docker CLI make, in
Docker Engine API shapes: _ping, version, containers/create (201 {"Id","Warnings"}),
/start, /stop, /kill, DELETE, /json (inspect), containers/json (list with label filters) and
/events (a chunked stream of JSON lines, as dockerd sends them), with any /vX.Y prefix.
A container "runs" as a table row; nothing is executed.

The drill drives it in process (DockerFake.burst, .vanish): events are written to every
open /events stream from one thread, in order, with strictly increasing timeNano (the agent
drops an event older than the last one it saw, as after a reconnect)."""

import json
import os
import re
import socketserver
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

API_VERSION = "1.41"
PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 4096  # dockerd's (Go's SOMAXCONN): the agent connects in bursts


class DockerFake:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.containers = {}  # id -> {"labels", "state", "exit", "name", "image"}
        self.streams = []  # the handlers of open /events streams
        self.last_nano = time.time_ns()
        self.calls = {}
        fake = self

        class Handler(_Handler):
            owner = fake

        self.server = _Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        with self.lock:
            for s in self.streams:
                s.closed = True
        self.server.shutdown()
        self.server.server_close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    # ---- what the drill does ----

    def running(self):
        with self.lock:
            return [i for i, c in self.containers.items() if c["state"] == "running"]

    def burst(self, ids, action="die", exit_code=0):
        """Every container of ids exits, and one event each goes out in one write."""
        lines = []
        with self.lock:
            for cid in ids:
                c = self.containers[cid]
                c["state"], c["exit"] = "exited", exit_code
                lines.append(self._event(cid, action, exit_code))
        self._send(b"".join(lines))

    def vanish(self, ids):
        """The containers exit with no event (dockerd drops events for a slow reader)."""
        with self.lock:
            for cid in ids:
                self.containers[cid]["state"], self.containers[cid]["exit"] = "exited", 137

    # ---- inside ----

    def _event(self, cid, action, exit_code=None):
        c = self.containers[cid]
        self.last_nano = max(self.last_nano + 1, time.time_ns())
        attrs = dict(c["labels"], image=c["image"], name=c["name"])
        if exit_code is not None:
            attrs["exitCode"] = str(exit_code)
        ev = {"status": action, "id": cid, "from": c["image"], "Type": "container",
              "Action": action, "Actor": {"ID": cid, "Attributes": attrs}, "scope": "local",
              "time": self.last_nano // 1_000_000_000, "timeNano": self.last_nano}
        return (json.dumps(ev, separators=(",", ":")) + "\n").encode()

    def _send(self, data):
        """One chunk to every open stream (its own lock keeps chunks whole)."""
        with self.lock:
            streams = list(self.streams)
        for s in streams:
            s.push(data)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner = None

    def log_message(self, *args):
        pass

    def address_string(self):
        return "unix"

    def _reply(self, status, body=None, ctype="application/json"):
        data = b"" if body is None else (body if isinstance(body, bytes) else
                                          (json.dumps(body) + "\n").encode())
        self.send_response(status)
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def _route(self):
        url = urllib.parse.urlsplit(self.path)
        path = PREFIX.sub("", url.path)
        q = urllib.parse.parse_qs(url.query)
        f = self.owner
        with f.lock:
            f.calls[self.command + " " + re.sub(r"/containers/[0-9a-f]{64}", "/containers/ID", path)] = \
                f.calls.get(self.command + " " + re.sub(r"/containers/[0-9a-f]{64}", "/containers/ID", path), 0) + 1
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if path == "/_ping":
            return self._reply(200, b"OK", "text/plain")
        if path == "/version":
            return self._reply(200, {"Version": "20.10.24-fake", "ApiVersion": API_VERSION,
                                     "MinAPIVersion": "1.12", "Os": "linux", "Arch": "amd64"})
        if path == "/events":
            return self._events()
        if path == "/containers/json":
            return self._list(q)
        if path == "/containers/create":
            return self._create(q, body)
        m = re.match(r"^/containers/([^/]+)(/[a-z]+)?$", path)
        if not m:
            return self._reply(404, {"message": f"page not found: {path}"})
        with f.lock:
            cid = next((i for i in f.containers if i == m.group(1) or i.startswith(m.group(1))
                        or f.containers[i]["name"] == m.group(1)), None)
        if cid is None:
            return self._reply(404, {"message": f"No such container: {m.group(1)}"})
        return self._container(cid, m.group(2) or "", q)

    def do_GET(self):
        self._route()

    def do_HEAD(self):
        self._route()

    def do_POST(self):
        self._route()

    def do_DELETE(self):
        self._route()

    def _list(self, q):
        f = self.owner
        want = []
        if "filters" in q:
            want = json.loads(q["filters"][0]).get("label", [])
            if isinstance(want, dict):  # the old map form
                want = [k for k, v in want.items() if v]
        out = []
        with f.lock:
            for cid, c in f.containers.items():
                ok = True
                for w in want:
                    k, _, v = w.partition("=")
                    if k not in c["labels"] or ("=" in w and c["labels"][k] != v):
                        ok = False
                if not ok or ("all" not in q and c["state"] != "running"):
                    continue
                status = "Up 1 second" if c["state"] == "running" else \
                    f"Exited ({c['exit']}) 1 second ago" if c["state"] == "exited" else "Created"
                out.append({"Id": cid, "Names": ["/" + c["name"]], "Image": c["image"],
                            "Labels": c["labels"], "State": c["state"], "Status": status,
                            "Created": 0})
        return self._reply(200, out)

    def _create(self, q, body):
        f = self.owner
        spec = json.loads(body or b"{}")
        cid = os.urandom(32).hex()
        name = (q.get("name") or [cid[:12]])[0]
        with f.lock:
            f.containers[cid] = {"labels": spec.get("Labels") or {}, "state": "created",
                                 "exit": None, "name": name, "image": spec.get("Image", "")}
            ev = f._event(cid, "create")
        f._send(ev)
        return self._reply(201, {"Id": cid, "Warnings": []})

    def _container(self, cid, op, q):
        f = self.owner
        ev = None
        with f.lock:
            c = f.containers[cid]
            if op == "/start":
                if c["state"] == "running":
                    status = 304
                else:
                    c["state"], status = "running", 204
                    ev = f._event(cid, "start")
            elif op in ("/stop", "/kill"):
                if c["state"] != "running":
                    status = 304 if op == "/stop" else 409
                else:
                    c["state"], c["exit"], status = "exited", 137, 204
                    ev = f._event(cid, "die", 137)
            elif op == "" and self.command == "DELETE":
                if c["state"] == "running" and q.get("force", ["0"])[0] not in ("1", "true"):
                    status = 409
                else:
                    if c["state"] == "running":
                        ev = f._event(cid, "die", 137)
                    ev = (ev or b"") + f._event(cid, "destroy")
                    del f.containers[cid]
                    status = 204
            elif op == "/json":
                status = 200
                info = {"Id": cid, "Name": "/" + c["name"], "Image": c["image"],
                        "State": {"Status": c["state"], "Running": c["state"] == "running",
                                  "ExitCode": c["exit"] or 0},
                        "Config": {"Labels": c["labels"], "Image": c["image"]}}
            else:
                status = 404
        if ev:
            f._send(ev)
        if status == 200:
            return self._reply(200, info)
        if status == 404:
            return self._reply(404, {"message": "page not found"})
        if status == 409:
            return self._reply(409, {"message": f"container {cid} is not running"})
        return self._reply(status)

    def _events(self):
        """The stream: 200, chunked, one chunk per push, until the fake closes."""
        self.send_response(200)
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        self.closed = False
        self.cv = threading.Condition()
        self.queue = []
        f = self.owner
        with f.lock:
            f.streams.append(self)
        try:
            while True:
                with self.cv:
                    while not self.queue and not self.closed:
                        self.cv.wait(0.5)
                    if self.closed:
                        break
                    data, self.queue = b"".join(self.queue), []
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
        except OSError:
            pass
        finally:
            with f.lock:
                if self in f.streams:
                    f.streams.remove(self)
            self.close_connection = True

    def push(self, data):
        with self.cv:
            self.queue.append(data)
            self.cv.notify()
