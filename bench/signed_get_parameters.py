"""signed_get_parameters.py - the signed requests the store benchmarks send (SSM GetParameters;
ECS DescribeTasks for store_callgrind.sh REQUEST=describe-tasks).

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


def signed_json(url, credfile, service, target, payload):
    """(host, body, headers) of a JSON 1.1 POST / to url (X-Amz-Target target), signed for
    service in us-east-1 as the agent's administrator."""
    cp = configparser.ConfigParser()
    cp.read(credfile)
    sec = cp["ecs-secrets-agent"]
    creds = Credentials(sec["aws_access_key_id"], sec["aws_secret_access_key"])
    body = json.dumps(payload)
    req = AWSRequest(method="POST", url=url + "/", data=body,
                     headers={"Content-Type": "application/x-amz-json-1.1",
                              "X-Amz-Target": target})
    SigV4Auth(creds, service, "us-east-1").add_auth(req)
    host = urllib.parse.urlsplit(url).netloc
    headers = dict(req.headers.items())
    headers["Host"] = host
    return host, body, headers


def signed_get_parameters(url, credfile, names):
    """(host, body, headers) of POST / to url, signed for ssm in us-east-1."""
    return signed_json(url, credfile, "ssm", "AmazonSSM.GetParameters",
                       {"Names": names, "WithDecryption": True})


def signed_describe_tasks(url, credfile, cluster, task_arns):
    """(host, body, headers) of the ECS DescribeTasks a polling client sends (issue 22's
    client view: boto3's describe_tasks every 2 ms until RUNNING)."""
    return signed_json(url, credfile, "ecs",
                       "AmazonEC2ContainerServiceV20141113.DescribeTasks",
                       {"cluster": cluster, "tasks": task_arns})
