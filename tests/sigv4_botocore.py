#!/usr/bin/python3
"""Signs N random requests with botocore's SigV4Auth and prints them as JSON.

Used by tests/unit/test_sigv4.c (differential test): the C test signs the
same requests with aw_signer and compares the Authorization headers.
Exit status 77 when botocore is missing (the test then skips).
Usage: sigv4_botocore.py N [SEED]
"""
import datetime
import json
import random
import sys
import types
from urllib.parse import quote

try:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:
    sys.exit(77)

N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 20261129)

SEG_CHARS = "abcXYZ019-_.~ !$&'()*+,;=:@%\u00e9\u4e2d"
QUERY_CHARS = "abcXYZ019-_.~ /+=&?%:\u00e9"
VALUE_CHARS = "abc XYZ 019\t-_.,;:=/\"'()"
SERVICES = ["ssm", "secretsmanager", "sts", "kms", "iam", "ecs"]
REGIONS = ["us-east-1", "eu-west-3", "ap-southeast-2", "cn-north-1", "us-gov-west-1"]


def rstr(chars, lo, hi):
    return "".join(rng.choice(chars) for _ in range(rng.randint(lo, hi)))


def rpath():
    segs = []
    for _ in range(rng.randint(0, 5)):
        r = rng.random()
        if r < 0.1:
            segs.append(".")
        elif r < 0.2:
            segs.append("..")
        elif r < 0.3:
            segs.append("")
        else:
            segs.append(quote(rstr(SEG_CHARS, 1, 8), safe=""))
    p = "/" + "/".join(segs)
    if rng.random() < 0.3 and not p.endswith("/"):
        p += "/"
    return p


def rquery():
    pairs = []
    for _ in range(rng.randint(0, 6)):
        k = quote(rstr(QUERY_CHARS, 1, 6), safe="-_.~")
        if pairs and rng.random() < 0.2:
            k = pairs[-1].split("=")[0]  # repeated key
        if rng.random() < 0.15:
            pairs.append(k)  # no '='
        else:
            pairs.append(k + "=" + quote(rstr(QUERY_CHARS, 0, 6), safe="-_.~"))
    return "&".join(pairs)


class FixedDateTime(datetime.datetime):
    now_value = None

    @classmethod
    def utcnow(cls):
        return cls.now_value


botocore.auth.datetime = types.SimpleNamespace(datetime=FixedDateTime)

out = []
for i in range(N):
    service = rng.choice(SERVICES)
    region = rng.choice(REGIONS)
    host = "%s.%s.amazonaws.com" % (service, region)
    if rng.random() < 0.3:
        host = "127.0.0.1:%d" % rng.randint(1024, 65535)
    path = rpath()
    query = rquery()
    method = rng.choice(["GET", "POST", "PUT", "DELETE"])
    body = rstr("abc=&%+ XYZ{}\":,", 0, 40) if method != "GET" else ""
    url = "https://" + host + path + ("?" + query if query else "")
    req = AWSRequest(method=method, url=url, data=body.encode())
    headers = [("Host", host)]
    for _ in range(rng.randint(0, 6)):
        name = rng.choice(["X-Amz-Target", "Content-Type", "x-custom", "X-Custom", "X-Other-Hdr",
                           "User-Agent", "Expect", "X-Amzn-Trace-Id", "x-amz-meta-a"])
        value = rstr(VALUE_CHARS, 0, 20)
        if rng.random() < 0.2:
            value = "  " + value + " \t "
        headers.append((name, value))
    for n, v in headers:
        req.headers[n] = v  # HTTPMessage appends: repeated headers kept
    akid = "AKIA" + rstr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 16)
    secret = rstr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+", 40, 40)
    token = rstr("abcdefghijklmnopqrstuvwxyzABCDEF0123456789/+=", 20, 300) if rng.random() < 0.4 else ""
    t = rng.randint(946684800, 4102444800)
    FixedDateTime.now_value = datetime.datetime.utcfromtimestamp(t)
    creds = Credentials(akid, secret, token or None)
    botocore.auth.SigV4Auth(creds, service, region).add_auth(req)
    out.append({
        "method": method, "path": path, "query": query, "headers": [list(h) for h in headers],
        "body": body, "akid": akid, "secret": secret, "token": token, "region": region,
        "service": service, "time": t, "authorization": req.headers["Authorization"],
    })
json.dump(out, sys.stdout, ensure_ascii=True)
