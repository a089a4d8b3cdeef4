"""signed_get_parameters.py - the one signed SSM GetParameters request the store benchmarks send.

bench/embedded_vs_nginx.sh (replayed by wrk) and bench/store_callgrind.sh (sent COUNT times)
both measure the embedded store answering GetParameters of their names WithDecryption, signed
once with botocore as the agent's administrator (its aws-credentials file, profile
ecs-secrets-agent): the signature stays valid for the 15 minutes the store accepts.
"""
import configparser
import json
import urllib.parse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed_get_parameters(url, credfile, names):
    """(host, body, headers) of POST / to url, signed for ssm in us-east-1."""
    cp = configparser.ConfigParser()
    cp.read(credfile)
    sec = cp["ecs-secrets-agent"]
    creds = Credentials(sec["aws_access_key_id"], sec["aws_secret_access_key"])
    body = json.dumps({"Names": names, "WithDecryption": True})
    req = AWSRequest(method="POST", url=url + "/", data=body,
                     headers={"Content-Type": "application/x-amz-json-1.1",
                              "X-Amz-Target": "AmazonSSM.GetParameters"})
    SigV4Auth(creds, "ssm", "us-east-1").add_auth(req)
    host = urllib.parse.urlsplit(url).netloc
    headers = dict(req.headers.items())
    headers["Host"] = host
    return host, body, headers
