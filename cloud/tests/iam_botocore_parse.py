"""Parses netlab-cloud's IAM and STS answers with botocore's own awsQuery parser against the
real operation models, so the Rust tests can assert on what `aws iam ...` / `aws sts ...` would
print.

Usage: python3 iam_botocore_parse.py < cases.json
Input: a JSON list of {"service": "iam"|"sts", "op": "GetRole", "status": 200, "body": "<xml>"}.
Output: a JSON list, one parsed dict per case (timestamps as ISO-8601 strings in UTC,
`2026-12-07T17:00:00+00:00`), in input order. Error responses (status >= 300) are parsed as errors.
"""
import datetime
import json
import sys

import botocore.session
from botocore import parsers

session = botocore.session.get_session()
models = {}
parser = parsers.create_parser("query")


def model(service):
    if service not in models:
        models[service] = session.get_service_model(service)
    return models[service]


def default(value):
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).isoformat()
    raise TypeError(repr(value))


out = []
for case in json.load(sys.stdin):
    op = model(case["service"]).operation_model(case["op"])
    response = {"body": case["body"].encode(), "headers": {}, "status_code": case["status"]}
    out.append(parser.parse(response, op.output_shape))
json.dump(out, sys.stdout, default=default)
