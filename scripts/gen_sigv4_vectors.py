#!/usr/bin/env python3
"""Generates Tests/AWSWireTests/Vectors/sigv4.json with botocore's SigV4Auth, the signer the AWS CLI
and boto3 use, so AWSWire's signing and verification are checked against it. Run it again after
changing the cases; the output is deterministic (fixed clock)."""
import base64, datetime, json, os, sys
from unittest import mock
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

CASES = [
    dict(name="put-log-events", method="POST", url="https://logs.example.com/", body=b'{"logGroupName":"/app","logStreamName":"s","logEvents":[{"timestamp":1,"message":"hi"}]}',
         headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.PutLogEvents"}, service="logs", region="us-east-1"),
    dict(name="empty-body-get", method="GET", url="http://127.0.0.1:4566/", body=b"", headers={}, service="logs", region="eu-west-1"),
    dict(name="query-string-sorted", method="GET", url="https://monitoring.example.com/?b=2&a=1&a=0&Action=ListMetrics", body=b"",
         headers={"X-Amz-Meta": "  two   spaces  here "}, service="monitoring", region="us-west-2"),
    dict(name="path-with-dots-and-spaces", method="POST", url="https://host.example.com/a/./b/../c%20d/", body=b"x", headers={}, service="svc", region="ap-south-1"),
    dict(name="cbor-path", method="POST", url="https://monitoring.example.com/service/GraniteServiceVersion20100801/operation/GetMetricData",
         body=bytes(range(256)), headers={"Content-Type": "application/cbor", "Smithy-Protocol": "rpc-v2-cbor"}, service="monitoring", region="us-east-1"),
    dict(name="session-token-and-user-agent", method="POST", url="https://logs.example.com/", body=b"{}",
         headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.DescribeLogGroups", "User-Agent": "aws-cli/1.45"},
         service="logs", region="us-east-1", token="FQoGZXIvYXdzEXAMPLETOKEN"),
    dict(name="unicode-body", method="POST", url="https://logs.example.com/", body="{\"m\":\"ünïcødé ✓\"}".encode(),
         headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.PutLogEvents"}, service="logs", region="us-east-1"),
]

def main(out):
    vectors = []
    for i, case in enumerate(CASES):
        when = datetime.datetime(2026, 11, 30, 9, 30, i, tzinfo=datetime.timezone.utc)
        creds = Credentials("AKIDEXAMPLE%d" % i, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY%d" % i, case.get("token"))
        request = AWSRequest(method=case["method"], url=case["url"], data=case["body"], headers=dict(case["headers"]))
        signer = botocore.auth.SigV4Auth(creds, case["service"], case["region"])
        with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
            signer.add_auth(request)
        authorization = request.headers["Authorization"]
        del request.headers["Authorization"]
        canonical = signer.canonical_request(request)
        from urllib.parse import urlsplit
        headers = [["Host", urlsplit(case["url"]).netloc]] + [[k, v] for k, v in request.headers.items()]
        vectors.append(dict(
            name=case["name"], method=case["method"], url=case["url"],
            body_base64=base64.b64encode(case["body"]).decode(),
            headers=headers,
            access_key_id=creds.access_key, secret_access_key=creds.secret_key, session_token=case.get("token"),
            region=case["region"], service=case["service"], amz_date=request.context["timestamp"],
            canonical_request=canonical,
            string_to_sign=signer.string_to_sign(request, canonical),
            authorization=authorization,
        ))
    with open(out, "w") as f:
        json.dump(vectors, f, indent=1, ensure_ascii=False)
        f.write("\n")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "AWSWireTests", "Vectors", "sigv4.json"))
