#!/usr/bin/python3
"""A loopback stand-in for AWS endpoints, IMDS and the ECS container
credentials endpoint, for the aws/ unit tests.

Prints "PORT\n" once listening on 127.0.0.1 (port 0 = any). Behaviour:

  GET  /echo               200, body "hello"
  GET  /stall              sleeps 30 s before answering (timeouts)
  GET  /big?n=N            200 with N bytes, Content-Length set
  GET  /bigchunked?n=N     200 with N bytes, chunked (no Content-Length)
  GET  /status/N           answers status N
  GET  /__stats            JSON: requests, connections, max_concurrent,
                           ops {op: count}, akids [..], tokens [..]
  POST /__script           JSON {op: [{"status":..,"body":..,"delay":..,
                           "content_type":..}, ...]} queued answers per op
                           (consumed in order; then the default handler)
  POST /__reset            clears stats and scripts
  POST /__rotate           {"name": N} bumps parameter N's version (value
                           "value-of-N-vK" from K = 2), or {"secret": ID} the
                           secret's AWSCURRENT version id ("v-K")
  POST /__deny             {"names": [N, ...]}: GetParameters naming one of
                           them answers AccessDeniedException (a removed
                           permission); {"names": []} lifts it

  AWS JSON 1.1 (X-Amz-Target): AmazonSSM.GetParameters / GetParameter /
  DescribeParameters (ParameterFilters Name Equals), secretsmanager.
  GetSecretValue / DescribeSecret (VersionIdsToStages), AmazonEC2ContainerRegistry_V20150921.
  GetAuthorizationToken. Query (Action=): AssumeRole,
  GetCallerIdentity. Names starting "missing" are not found.

  IMDSv2: PUT /latest/api/token, GET /latest/meta-data/iam/security-
  credentials/[ROLE], GET /latest/dynamic/instance-identity/document.
  Container: GET /creds (needs Authorization: the token given with
  --container-token, if any).

  --delay OP=SECONDS       every OP answer waits that long (concurrency)
  --expiry SECONDS         credentials expire that far in the future
  --clock-offset SECONDS   the fake's clock runs that far ahead of the host's (POST
                           /__clock {"offset": N} changes it): its Date header says so, and a
                           signed call whose X-Amz-Date is over 5 min from it is refused as
                           AWS refuses it (JSON: 400 InvalidSignatureException "Signature
                           expired: ..."; query: 403 SignatureDoesNotMatch, same message)
  POST /__faults           {"throttle_every": N}: every Nth signed AWS call answers 400
                           ThrottlingException (query: Throttling), "Rate exceeded"; 0 stops

  Keys it issued (AKSTS1, AKIMDS2...) are known again after a restart (the secret follows
  from the key), so a drill may kill the fake for an outage and start it on the same port.
"""
import argparse
import base64
import json
import socketserver
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--delay", action="append", default=[])
ap.add_argument("--expiry", type=int, default=3600)
ap.add_argument("--container-token", default="")
ap.add_argument("--secret", action="append", default=[], help="AKID=SECRET accepted")
ap.add_argument("--clock-offset", type=float, default=0.0)
ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve HTTPS")
args = ap.parse_args()

import re
import types
try:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:
    botocore = None

known_secrets = dict(s.split("=", 1) for s in args.secret)


class FixedDateTime(datetime):
    now_value = None

    @classmethod
    def utcnow(cls):
        return cls.now_value


if botocore:
    botocore.auth.datetime = types.SimpleNamespace(datetime=FixedDateTime)
sig_lock = threading.Lock()
AUTH_RE = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")

lock = threading.Lock()
stats = {}
scripts = {}
delays = {}
for d in args.delay:
    k, v = d.split("=")
    delays[k] = float(v)
inflight = 0
versions = {}  # parameter name or secret id -> (version, modified epoch seconds)
denied = set()
clock = {"offset": args.clock_offset}
faults = {"throttle_every": 0, "signed_calls": 0}
SKEW_MAX = 300  # AWS refuses a signature more than 5 minutes from its clock
ISSUED_RE = re.compile(r"^AK(STS|IMDS|CONTAINER)(\d+)$")


def fake_now():
    return time.time() + clock["offset"]


def reset():
    global stats, scripts, inflight
    stats = {"requests": 0, "connections": 0, "max_concurrent": 0, "ops": {}, "akids": [],
             "tokens": [], "bodies": [], "imds_tokens": 0, "bad_signatures": 0,
             "scopes": []}
    scripts = {}


reset()


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # clients that reset or time out are part of the tests


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        with lock:
            stats["connections"] += 1

    def date_time_string(self, timestamp=None):
        # the Date header tells the fake's clock, as AWS's tells its own
        return super().date_time_string(fake_now() if timestamp is None else timestamp)

    def send(self, status, body, ctype="application/x-amz-json-1.1", extra=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "req-%d" % stats["requests"])
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def track(self, op):
        global inflight
        with lock:
            stats["requests"] += 1
            stats["ops"][op] = stats["ops"].get(op, 0) + 1
            auth = self.headers.get("Authorization") or ""
            if "Credential=" in auth:
                stats["akids"].append(auth.split("Credential=")[1].split("/")[0])
                # "op region" of each signed call (its credential scope)
                stats["scopes"].append("%s %s" % (op, auth.split("Credential=")[1].split("/")[2]))
            stats["tokens"].append(self.headers.get("X-Amz-Security-Token") or "")
            inflight += 1
            stats["max_concurrent"] = max(stats["max_concurrent"], inflight)
        try:
            if op in delays:
                time.sleep(delays[op])
            with lock:
                q = scripts.get(op)
                s = q.pop(0) if q else None
            if s:
                time.sleep(s.get("delay", 0))
                if s.get("close"):
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return True
                self.send(s.get("status", 200), s.get("body", ""),
                          s.get("content_type", "application/x-amz-json-1.1"))
                return True
            return False
        finally:
            with lock:
                inflight -= 1

    # ---- GET / PUT ---------------------------------------------------------
    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        qs = urllib.parse.parse_qs(u.query)
        p = u.path
        if p == "/__stats":
            with lock:
                return self.send(200, json.dumps(stats), "application/json")
        if p == "/echo":
            if self.track("echo"):
                return
            return self.send(200, "hello", "text/plain")
        if p == "/stall":
            self.track("stall")
            time.sleep(30)
            return self.send(200, "late", "text/plain")
        if p in ("/big", "/bigchunked"):
            self.track("big")
            n = int(qs["n"][0])
            if p == "/big":
                return self.send(200, b"x" * n, "text/plain")
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            left = n
            while left:
                c = min(left, 4096)
                self.wfile.write(b"%x\r\n" % c + b"x" * c + b"\r\n")
                left -= c
            self.wfile.write(b"0\r\n\r\n")
            return
        if p.startswith("/status/"):
            self.track("status")
            return self.send(int(p[8:]), "status", "text/plain")
        if p.startswith("/latest/"):
            return self.imds_get(p)
        if p == "/creds":
            if self.track("container"):
                return
            if args.container_token and self.headers.get("Authorization") != args.container_token:
                return self.send(401, "unauthorized", "text/plain")
            return self.send(200, json.dumps(self.creds("container")), "application/json")
        self.send(404, "not found", "text/plain")

    def signature_ok(self, raw):
        """Re-signs the request with botocore and compares."""
        if not botocore:
            return True
        m = AUTH_RE.match(self.headers.get("Authorization") or "")
        if not m:
            return False
        akid, date, region, service, signed, sig = m.groups()
        secret = known_secrets.get(akid)
        issued = ISSUED_RE.match(akid)
        if secret is None and issued:
            secret = "secret-%s-%s" % (issued.group(1).lower(), issued.group(2))
        amz_date = self.headers.get("X-Amz-Date") or ""
        if secret is None or not amz_date.startswith(date):
            return False
        req = AWSRequest(method=self.command, url="http://%s%s" % (self.headers["Host"], self.path),
                         data=raw)
        for h in signed.split(";"):
            for v in self.headers.get_all(h) or []:
                req.headers[h] = v
        with sig_lock:
            FixedDateTime.now_value = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
            token = self.headers.get("X-Amz-Security-Token")
            botocore.auth.SigV4Auth(Credentials(akid, secret, token), service,
                                    region).add_auth(req)
        return req.headers["Authorization"] == self.headers["Authorization"]

    def creds(self, who):
        n = stats["ops"].get("creds-" + who, 0) + 1
        stats["ops"]["creds-" + who] = n
        known_secrets["AK%s%d" % (who.upper(), n)] = "secret-%s-%d" % (who, n)
        return {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "AK%s%d" % (who.upper(), n),
                "SecretAccessKey": "secret-%s-%d" % (who, n), "Token": "token-%s-%d" % (who, n),
                "Expiration": iso(time.time() + args.expiry),
                "RoleArn": "arn:aws:iam::123456789012:role/" + who}

    def imds_token_ok(self):
        return self.headers.get("X-aws-ec2-metadata-token") == "imds-token-1"

    def imds_get(self, p):
        if self.track("imds:" + p):
            return
        if not self.imds_token_ok():
            return self.send(401, "", "text/plain")
        base = "/latest/meta-data/iam/security-credentials/"
        if p == base:
            return self.send(200, "host-role", "text/plain")
        if p == base + "host-role":
            return self.send(200, json.dumps(self.creds("imds")), "text/plain")
        if p == "/latest/dynamic/instance-identity/document":
            return self.send(200, json.dumps({"region": "eu-west-3", "accountId": "123456789012",
                                              "instanceId": "i-0"}), "application/json")
        self.send(404, "", "text/plain")

    def do_PUT(self):
        self.body()
        if self.path == "/latest/api/token":
            if self.track("imds-token"):
                return
            if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self.send(400, "", "text/plain")
            with lock:
                stats["imds_tokens"] += 1
            return self.send(200, "imds-token-1", "text/plain")
        self.send(404, "", "text/plain")

    # ---- POST: AWS APIs ------------------------------------------------------
    def do_POST(self):
        raw = self.body()
        if self.path == "/__script":
            with lock:
                for k, v in json.loads(raw).items():
                    scripts.setdefault(k, []).extend(v)
            return self.send(200, "{}", "application/json")
        if self.path == "/__rotate":
            req = json.loads(raw)
            with lock:
                k = req.get("name") or req.get("secret")
                if k and "name" in req and not k.startswith("/") and "/" in k:
                    k = "/" + k
                v = versions.get(k, (1, 1700000000.5))[0] + 1
                versions[k] = (v, time.time())
            return self.send(200, json.dumps({"Version": v}), "application/json")
        if self.path == "/__deny":
            with lock:
                denied.clear()
                denied.update(json.loads(raw).get("names", []))
            return self.send(200, "{}", "application/json")
        if self.path == "/__clock":
            with lock:
                clock["offset"] = float(json.loads(raw).get("offset", 0))
            return self.send(200, "{}", "application/json")
        if self.path == "/__faults":
            with lock:
                faults.update(json.loads(raw))
                faults["signed_calls"] = 0
            return self.send(200, "{}", "application/json")
        if self.path == "/__reset":
            with lock:
                reset()
            return self.send(200, "{}", "application/json")
        if not self.signature_ok(raw):
            with lock:
                stats["bad_signatures"] += 1
            if self.headers.get("X-Amz-Target"):
                return self.send(400, json.dumps({"__type": "InvalidSignatureException",
                                                  "message": "signature mismatch"}))
            return self.send(403, "<ErrorResponse><Error><Type>Sender</Type><Code>"
                             "SignatureDoesNotMatch</Code><Message>signature mismatch</Message>"
                             "</Error><RequestId>rid-sig</RequestId></ErrorResponse>", "text/xml")
        target = self.headers.get("X-Amz-Target")
        if self.skewed(bool(target)) or self.throttled(bool(target)):
            return
        if target:
            op = target.split(".", 1)[1]
            with lock:
                stats["bodies"].append(raw.decode("utf-8", "replace"))
            if self.track(op):
                return
            req = json.loads(raw or b"{}")
            return getattr(self, "op_" + op)(req)
        form = urllib.parse.parse_qs(raw.decode())
        op = form.get("Action", [""])[0]
        with lock:
            stats["bodies"].append(raw.decode("utf-8", "replace"))
        if self.track(op):
            return
        return getattr(self, "q_" + op)(form)

    def refuse(self, json_api, status, code, message):
        if json_api:
            return self.send(status, json.dumps({"__type": code, "message": message}))
        return self.send(status, "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code>"
                         "<Message>%s</Message></Error><RequestId>rid-%s</RequestId>"
                         "</ErrorResponse>" % (code, message, code), "text/xml")

    def skewed(self, json_api):
        """AWS's answer to a signature dated over 5 minutes from its clock."""
        try:
            signed = datetime.strptime(self.headers.get("X-Amz-Date") or "", "%Y%m%dT%H%M%SZ")
        except ValueError:
            return False
        signed = signed.replace(tzinfo=timezone.utc).timestamp()
        now = fake_now()
        if abs(signed - now) <= SKEW_MAX:
            return False
        with lock:
            stats["skewed"] = stats.get("skewed", 0) + 1
        f = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        if signed < now:
            msg = "Signature expired: %s is now earlier than %s (%s - 5 min.)" % (
                f(signed), f(now - SKEW_MAX), f(now))
        else:
            msg = "Signature not yet current: %s is still later than %s (%s + 5 min.)" % (
                f(signed), f(now + SKEW_MAX), f(now))
        if json_api:
            self.refuse(True, 400, "InvalidSignatureException", msg)
        else:
            self.refuse(False, 403, "SignatureDoesNotMatch", msg)
        return True

    def throttled(self, json_api):
        with lock:
            faults["signed_calls"] += 1
            n = faults["throttle_every"]
            hit = n and faults["signed_calls"] % n == 0
            if hit:
                stats["throttled"] = stats.get("throttled", 0) + 1
        if not hit:
            return False
        if json_api:
            self.refuse(True, 400, "ThrottlingException", "Rate exceeded")
        else:
            self.refuse(False, 400, "Throttling", "Rate exceeded")
        return True

    def param(self, name):
        n = name if name.startswith("/") or "/" not in name else "/" + name
        with lock:
            ver, mod = versions.get(n, (1, 1700000000.5))
        return {"Name": n, "Type": "SecureString",
                "Value": "value-of-" + n + ("" if ver == 1 else "-v%d" % ver), "Version": ver,
                "ARN": "arn:aws:ssm:us-east-1:123456789012:parameter" +
                       (n if n.startswith("/") else "/" + n),
                "DataType": "text", "LastModifiedDate": mod}

    def op_DescribeParameters(self, req):
        names = []
        for f in req.get("ParameterFilters", []):
            if f.get("Key") == "Name" and f.get("Option", "Equals") == "Equals":
                names += f.get("Values", [])
        ps = []
        for n in names:
            if n.startswith("missing") or n.startswith("/missing"):
                continue
            p = self.param(n)
            del p["Value"]
            ps.append(p)
        self.send(200, json.dumps({"Parameters": ps}))

    def secret_version(self, sid):
        with lock:
            ver, mod = versions.get(sid.split(":secret:")[-1], (1, 1700000000.0))
        return ver, mod

    def op_DescribeSecret(self, req):
        sid = req.get("SecretId", "")
        if sid.split(":secret:")[-1].startswith("missing"):
            return self.send(400, json.dumps({
                "__type": "ResourceNotFoundException",
                "Message": "Secrets Manager can't find the specified secret."}))
        ver, mod = self.secret_version(sid)
        stages = {"v-%d" % ver: ["AWSCURRENT"]}
        if ver > 1:
            stages["v-%d" % (ver - 1)] = ["AWSPREVIOUS"]
        self.send(200, json.dumps({
            "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:%s-AbCdEf" % sid,
            "Name": sid, "LastChangedDate": mod, "VersionIdsToStages": stages}))

    def op_GetParameters(self, req):
        names = req.get("Names", [])
        if len(names) > 10 or not names:
            return self.send(400, json.dumps({"__type": "ValidationException",
                                              "message": "1 validation error"}))
        with lock:
            deny = [n for n in names if n in denied]
        if deny:
            return self.send(400, json.dumps({
                "__type": "AccessDeniedException",
                "message": "User: arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/"
                           "ecs-secrets-agent is not authorized to perform: ssm:GetParameters on "
                           "resource: arn:aws:ssm:us-east-1:123456789012:parameter%s because no "
                           "identity-based policy allows the ssm:GetParameters action" % deny[0]}))
        ps = [self.param(n) for n in names if not n.startswith("missing")]
        bad = [n for n in names if n.startswith("missing")]
        self.send(200, json.dumps({"Parameters": ps, "InvalidParameters": bad}))

    def op_GetParameter(self, req):
        n = req.get("Name", "")
        if n.startswith("missing"):
            return self.send(400, json.dumps({"__type": "ParameterNotFound", "message": ""}))
        self.send(200, json.dumps({"Parameter": self.param(n)}))

    def op_GetAuthorizationToken(self, req):
        """ECR: the token of the (first) registry asked, base64 "AWS:ecr-pass-ID"; registry
        999999999999 is refused as AWS refuses a caller without the permission."""
        ids = req.get("registryIds") or ["123456789012"]
        if ids[0] == "999999999999":
            return self.send(400, json.dumps({
                "__type": "AccessDeniedException",
                "message": "User is not authorized to perform: ecr:GetAuthorizationToken"}))
        tok = base64.b64encode(("AWS:ecr-pass-%s" % ids[0]).encode()).decode()
        self.send(200, json.dumps({"authorizationData": [{
            "authorizationToken": tok, "expiresAt": fake_now() + 43200,
            "proxyEndpoint": "https://%s.dkr.ecr.us-east-1.amazonaws.com" % ids[0]}]}))

    def op_GetSecretValue(self, req):
        sid = req.get("SecretId", "")
        if sid.split(":secret:")[-1].startswith("missing"):
            return self.send(400, json.dumps({
                "__type": "ResourceNotFoundException",
                "Message": "Secrets Manager can't find the specified secret."}))
        ans = {"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:%s-AbCdEf" % sid,
               "Name": sid, "VersionId": req.get("VersionId") or "v-%d" % self.secret_version(sid)[0],
               "VersionStages": [req.get("VersionStage") or "AWSCURRENT"],
               "CreatedDate": 1700000000.0}
        if sid.startswith("bin"):
            ans["SecretBinary"] = "AAECAwQ="  # 00 01 02 03 04
        elif sid.split(":secret:")[-1].startswith("reg"):  # registry credentials (S15)
            ans["SecretString"] = '{"username":"reg-user","password":"reg-p@ss"}'
        else:
            ans["SecretString"] = '{"user":"u","password":"p@ss"}'
        self.send(200, json.dumps(ans))

    def q_AssumeRole(self, form):
        role = form.get("RoleArn", [""])[0]
        if "denied" in role:
            return self.send(403, "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                             "<Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is "
                             "not authorized to perform: sts:AssumeRole</Message></Error>"
                             "<RequestId>rid-denied</RequestId></ErrorResponse>", "text/xml")
        c = self.creds("sts")
        self.send(200, """<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>%s</AccessKeyId>
      <SecretAccessKey>%s</SecretAccessKey>
      <SessionToken>%s</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROAEXAMPLE:%s</AssumedRoleId>
      <Arn>%s</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>rid-assume</RequestId></ResponseMetadata>
</AssumeRoleResponse>""" % (c["AccessKeyId"], c["SecretAccessKey"], c["Token"], c["Expiration"],
                            form.get("RoleSessionName", [""])[0], role), "text/xml")

    def q_GetCallerIdentity(self, form):
        self.send(200, """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::123456789012:user/alice</Arn>
    <UserId>AIDAEXAMPLE</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>rid-gci</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>""", "text/xml")


srv = Server(("127.0.0.1", args.port), H)
if args.tls:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls[0], args.tls[1])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    pass
