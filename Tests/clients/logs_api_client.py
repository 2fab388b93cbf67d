#!/usr/bin/env python3
"""boto3 against a trailwatch cloudwatch_logs_api endpoint: the scenario the API tests check.
Prints one JSON object with what each call returned (or the error code it raised).
Usage: logs_api_client.py ENDPOINT ACCESS_KEY_ID SECRET"""
import json, sys, time
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key_id, secret = sys.argv[1:4]

def client(secret_key=secret):
    return boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret_key, config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30))

def code(call):
    try:
        call()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]

logs = client()
out = {}
now = int(time.time() * 1000)
logs.create_log_group(logGroupName="/app/web")
logs.create_log_stream(logGroupName="/app/web", logStreamName="host-1")
out["create_again"] = code(lambda: logs.create_log_group(logGroupName="/app/web"))
out["stream_in_missing_group"] = code(lambda: logs.create_log_stream(logGroupName="/nope", logStreamName="s"))
out["put_missing_stream"] = code(lambda: logs.put_log_events(logGroupName="/app/web", logStreamName="nope",
                                                             logEvents=[{"timestamp": now, "message": "x"}]))
events = [{"timestamp": now - 20 * 86400 * 1000, "message": "ancient"}]
events += [{"timestamp": now - 1000 + i, "message": ("ERROR 500 GET /api/%d latency=%d" if i % 3 == 0 else "INFO 200 GET /api/%d latency=%d") % (i, i * 10)}
           for i in range(30)]
events += [{"timestamp": now + 3 * 3600 * 1000, "message": "from the future"}]
put = logs.put_log_events(logGroupName="/app/web", logStreamName="host-1", logEvents=events, sequenceToken="ignored")
out["rejected"] = put.get("rejectedLogEventsInfo")
out["big_batch"] = code(lambda: logs.put_log_events(logGroupName="/app/web", logStreamName="host-1",
                                                    logEvents=[{"timestamp": now, "message": "x" * 1000}] * 1100))
out["span"] = code(lambda: logs.put_log_events(logGroupName="/app/web", logStreamName="host-1",
                                               logEvents=[{"timestamp": now - 25 * 3600 * 1000, "message": "a"}, {"timestamp": now, "message": "b"}]))
out["groups"] = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/app")["logGroups"]]
out["streams"] = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/app/web")["logStreams"]]
# Events become readable once the sqlite sink committed them.
deadline = time.time() + 20
found = []
while time.time() < deadline:
    found = logs.filter_log_events(logGroupName="/app/web", filterPattern="ERROR", startTime=now - 3600 * 1000)["events"]
    if len(found) >= 10:
        break
    time.sleep(0.2)
out["filtered"] = len(found)
out["filtered_first"] = found[0]["message"] if found else None
paged = logs.get_paginator("filter_log_events").paginate(logGroupName="/app/web", filterPattern="INFO", PaginationConfig={"PageSize": 7})
out["paged_info"] = sum(len(p["events"]) for p in paged)
got = logs.get_log_events(logGroupName="/app/web", logStreamName="host-1", startFromHead=True, limit=5)
out["get_head"] = [e["message"] for e in got["events"]]
query = logs.start_query(logGroupName="/app/web", startTime=int(now / 1000) - 3600, endTime=int(now / 1000) + 60,
                         queryString="filter @message like /ERROR/ | stats count(*) as errors")
status = None
for _ in range(100):
    result = logs.get_query_results(queryId=query["queryId"])
    status = result["status"]
    if status not in ("Scheduled", "Running"):
        break
    time.sleep(0.1)
out["query_status"] = status
out["query_results"] = result["results"]
out["query_statistics"] = result["statistics"]
out["bad_query"] = code(lambda: logs.start_query(logGroupName="/app/web", startTime=0, endTime=10, queryString="stats count(* by"))
logs.put_metric_filter(logGroupName="/app/web", filterName="errors", filterPattern="[level=ERROR, status, method, path, latency]",
                       metricTransformations=[{"metricName": "Errors", "metricNamespace": "App", "metricValue": "1"}])
out["metric_filters"] = [f["filterName"] for f in logs.describe_metric_filters(logGroupName="/app/web")["metricFilters"]]
test = logs.test_metric_filter(filterPattern="[level=ERROR, status, ...]", logEventMessages=["ERROR 500 GET /", "INFO 200 GET /"])
out["test_matches"] = [(m["eventNumber"], m["extractedValues"]) for m in test["matches"]]
out["bad_pattern"] = code(lambda: logs.test_metric_filter(filterPattern="[unclosed", logEventMessages=["x"]))
logs.put_retention_policy(logGroupName="/app/web", retentionInDays=7)
out["retention"] = logs.describe_log_groups(logGroupNamePrefix="/app/web")["logGroups"][0].get("retentionInDays")
out["bad_retention"] = code(lambda: logs.put_retention_policy(logGroupName="/app/web", retentionInDays=8))
out["wrong_secret"] = code(lambda: client("not-the-secret").describe_log_groups())
out["unknown_key"] = code(lambda: boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="AKIDUNKNOWN",
                                                 aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1})).describe_log_groups())
out["missing_group_describe"] = code(lambda: logs.describe_log_streams(logGroupName="/missing"))
print(json.dumps(out))
