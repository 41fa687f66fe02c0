"""Writes a wrk Lua script that sends one SigV4-signed request (signed by botocore, as the aws CLI
signs) over and over: the signature stays valid for the 15 minutes SigV4 allows, and the server
verifies it afresh on every request. Usage: sign.py ENDPOINT SERVICE BODY [TARGET] > script.lua"""
import os
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint, service, body = sys.argv[1], sys.argv[2], sys.argv[3]
target = sys.argv[4] if len(sys.argv) > 4 else None
headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
if target:
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
req = AWSRequest(method="POST", url=endpoint + "/", data=body.encode(), headers=headers)
creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
SigV4Auth(creds, service, os.environ.get("AWS_DEFAULT_REGION", "us-east-1")).add_auth(req)
prepared = req.prepare()
lua_headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in prepared.headers.items() if k.lower() != "content-length")
print(f'''wrk.method = "POST"
wrk.body = [[{body}]]
{lua_headers}
''')
