"""boto3 against the lab's AWS endpoint, then requests the SDKs never send, signed with botocore's
own SigV4 signer: what the cloud answers to bad input. Prints one JSON object: name -> [HTTP
status, error code or a value]. Reads AWS_ENDPOINT_URL and the keys from the environment."""
import datetime
import json
import os
import re
import urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint = os.environ["AWS_ENDPOINT_URL"]
region = os.environ["AWS_DEFAULT_REGION"]
creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
out = {}

session = boto3.session.Session(region_name=region)
out["boto3 sts arn"] = [200, session.client("sts", endpoint_url=endpoint).get_caller_identity()["Arn"]]
reservations = session.client("ec2", endpoint_url=endpoint).describe_instances()["Reservations"]
out["boto3 ec2 instances"] = [200, sum(len(r["Instances"]) for r in reservations)]


def send(service, body, headers=None, skew=None):
    headers = dict(headers or {})
    headers.setdefault("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
    req = AWSRequest(method="POST", url=endpoint + "/", data=body.encode(), headers=headers)
    signer = SigV4Auth(creds, service, region)
    if skew is not None:
        # botocore takes the signing time from datetime.now; sign as of an hour ago.
        real = datetime.datetime
        class Past(real):
            @classmethod
            def utcnow(cls):
                return real.utcnow() - skew
            @classmethod
            def now(cls, tz=None):
                return real.now(tz) - skew
        import botocore.auth
        botocore.auth.datetime.datetime = Past
        try:
            signer.add_auth(req)
        finally:
            botocore.auth.datetime.datetime = real
    else:
        signer.add_auth(req)
    prepared = req.prepare()
    http_req = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(http_req) as r:
            return [r.status, "ok"]
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        m = re.search(r"<Code>([^<]+)</Code>", text)
        if m:
            return [e.code, m.group(1)]
        try:
            return [e.code, json.loads(text)["__type"]]
        except Exception:
            return [e.code, text[:200]]


json_headers = lambda op: {"Content-Type": "application/x-amz-json-1.1",
                           "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921." + op}
out["iam unknown action"] = send("iam", "Action=Foo&Version=2010-05-08")
out["iam CreateRole without RoleName"] = send(
    "iam", "Action=CreateRole&Version=2010-05-08&AssumeRolePolicyDocument=%7B%7D")
out["ec2 Assign without NetworkInterfaceId"] = send("ec2", "Action=AssignPrivateIpAddresses&Version=2016-11-15")
out["ec2 no Action"] = send("ec2", "Version=2016-11-15")
out["sts malformed form"] = send("sts", "Action=GetCallerIdentity&Version=2011-06-15&%zz=1")
out["ecr malformed json"] = send("ecr", "{not json", json_headers("GetAuthorizationToken"))
out["ecr unknown operation"] = send("ecr", "{}", json_headers("Nope"))
out["sts signed an hour ago"] = send(
    "sts", "Action=GetCallerIdentity&Version=2011-06-15", skew=datetime.timedelta(hours=1))
print(json.dumps(out))
