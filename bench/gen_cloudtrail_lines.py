#!/usr/bin/env python3
"""Writes N CloudTrail-shaped records, one JSON object per line, for the insights benchmark:
a handful of principals calling a few dozen APIs over a week, ~10% errors. Deterministic.

usage: gen_cloudtrail_lines.py N FILE
"""
import json, random, sys

n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
apis = [("s3.amazonaws.com", e) for e in ("GetObject", "PutObject", "ListBuckets", "HeadObject")] + \
       [("ec2.amazonaws.com", e) for e in ("DescribeInstances", "RunInstances", "DescribeVolumes", "StopInstances")] + \
       [("iam.amazonaws.com", e) for e in ("GetUser", "ListRoles", "CreateAccessKey")] + \
       [("sts.amazonaws.com", "AssumeRole"), ("kms.amazonaws.com", "Decrypt"), ("ssm.amazonaws.com", "GetParameter")]
users = [f"arn:aws:iam::111122223333:user/user{i}" for i in range(20)]
agents = ["aws-cli/2.15.0", "Boto3/1.34.0", "console.amazonaws.com", "terraform/1.7.0"]
start = 1795046400  # 2026-11-19T00:00:00Z
step = 7 * 86400 / n
with open(path, "w") as f:
    for i in range(n):
        t = start + i * step
        source, name = apis[rng.randrange(len(apis))]
        record = {
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": users[rng.randrange(20)], "accountId": "111122223333"},
            "eventTime": f"{__import__('time').strftime('%Y-%m-%dT%H:%M:%S', __import__('time').gmtime(t))}Z",
            "eventSource": source, "eventName": name, "awsRegion": "us-east-1" if i % 3 else "eu-west-1",
            "sourceIPAddress": f"10.0.{i % 256}.{(i // 256) % 256}", "userAgent": agents[i % 4],
            "requestParameters": {"bucketName": "data", "key": f"k{i % 1000}"},
            "eventID": f"{i:032x}", "readOnly": True, "eventType": "AwsApiCall", "recipientAccountId": "111122223333",
        }
        if rng.random() < 0.1:
            record["errorCode"] = "AccessDenied"
            record["errorMessage"] = "User is not authorized"
        f.write(json.dumps(record, separators=(",", ":")) + "\n")
