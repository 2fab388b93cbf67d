#!/usr/bin/env python3
"""boto3 with access keys of different rights against a trailwatch endpoint with access policies:
an admin, a writer that cannot read, a reader limited to /app/ with an explicit deny on /app/secret.
Also the dashboard's /api/query and /metrics with HTTP Basic and SigV4-signed GETs.
Prints one JSON object with what each call returned (or the error it raised).
Usage: access_policies_client.py ENDPOINT ADMIN_ID ADMIN_SECRET WRITER_ID WRITER_SECRET READER_ID READER_SECRET"""
import base64, json, sys, time, urllib.error, urllib.parse, urllib.request
import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

endpoint = sys.argv[1]
admin_id, admin_secret, writer_id, writer_secret, reader_id, reader_secret = sys.argv[2:8]


def client(key_id, secret):
    return boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30))


def outcome(call):
    """'ok', or [code, HTTP status, message] of the error."""
    try:
        call()
        return "ok"
    except ClientError as e:
        return [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"].get("Message", "")]


admin, writer, reader = client(admin_id, admin_secret), client(writer_id, writer_secret), client(reader_id, reader_secret)
out = {}
now = int(time.time() * 1000)
for group in ["/app/web", "/app/secret", "/ops"]:
    admin.create_log_group(logGroupName=group)
    admin.create_log_stream(logGroupName=group, logStreamName="s")
admin.put_log_events(logGroupName="/app/secret", logStreamName="s", logEvents=[{"timestamp": now, "message": "ERROR secret"}])
admin.put_log_events(logGroupName="/ops", logStreamName="s", logEvents=[{"timestamp": now, "message": "ERROR ops"}])

# The writer ships to /app/* but reads nothing and creates no groups.
out["writer_put"] = outcome(lambda: writer.put_log_events(logGroupName="/app/web", logStreamName="s",
                                                          logEvents=[{"timestamp": now + i, "message": "ERROR web %d" % i} for i in range(5)]))
out["writer_put_ops"] = outcome(lambda: writer.put_log_events(logGroupName="/ops", logStreamName="s", logEvents=[{"timestamp": now, "message": "x"}]))
out["writer_filter"] = outcome(lambda: writer.filter_log_events(logGroupName="/app/web"))
out["writer_get"] = outcome(lambda: writer.get_log_events(logGroupName="/app/web", logStreamName="s"))
out["writer_create_group"] = outcome(lambda: writer.create_log_group(logGroupName="/app/new"))
out["writer_create_stream"] = outcome(lambda: writer.create_log_stream(logGroupName="/app/web", logStreamName="s2"))

# The reader reads /app/* except /app/secret, and writes nothing.
deadline, found = time.time() + 20, []
while time.time() < deadline:
    found = reader.filter_log_events(logGroupName="/app/web", filterPattern="ERROR", startTime=now - 60000)["events"]
    if len(found) >= 5:
        break
    time.sleep(0.2)
out["reader_filtered"] = len(found)
out["reader_get"] = outcome(lambda: reader.get_log_events(logGroupName="/app/web", logStreamName="s"))
out["reader_by_arn"] = outcome(lambda: reader.describe_log_streams(logGroupIdentifier="arn:aws:logs:us-east-1:000000000000:log-group:/app/web:*"))
out["reader_filter_ops"] = outcome(lambda: reader.filter_log_events(logGroupName="/ops"))
out["reader_filter_secret"] = outcome(lambda: reader.filter_log_events(logGroupName="/app/secret"))
out["reader_put"] = outcome(lambda: reader.put_log_events(logGroupName="/app/web", logStreamName="s", logEvents=[{"timestamp": now, "message": "x"}]))
out["reader_describe_app"] = outcome(lambda: reader.describe_log_groups(logGroupNamePrefix="/app/web"))
out["reader_describe_all"] = outcome(lambda: reader.describe_log_groups())
out["reader_query_mixed"] = outcome(lambda: reader.start_query(logGroupNames=["/app/web", "/ops"], startTime=0, endTime=int(now / 1000) + 60,
                                                               queryString="stats count(*)"))
query = reader.start_query(logGroupName="/app/web", startTime=int(now / 1000) - 3600, endTime=int(now / 1000) + 60,
                           queryString="filter @message like /ERROR/ | stats count(*) as errors")
status = None
for _ in range(100):
    result = reader.get_query_results(queryId=query["queryId"])
    status = result["status"]
    if status not in ("Scheduled", "Running"):
        break
    time.sleep(0.1)
out["reader_query"] = status
# Another key holding the query id gets nothing: the results need rights on the query's groups.
out["writer_query_results"] = outcome(lambda: writer.get_query_results(queryId=query["queryId"]))
# Requests naming a group twice ask for both (no parser disagreement lets one through for the other).
session = boto3.session.Session()
raw = AWSRequest(method="POST", url=endpoint + "/", data=json.dumps({"logGroupName": "/app/web", "logStreamName": "s"}).replace(
    '"logGroupName": "/app/web"', '"logGroupName": "/app/web", "logGroupName": "/ops"'),
    headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328.GetLogEvents"})
SigV4Auth(Credentials(reader_id, reader_secret), "logs", "us-east-1").add_auth(raw)
try:
    urllib.request.urlopen(urllib.request.Request(raw.url, data=raw.body if isinstance(raw.body, bytes) else raw.body.encode(), headers=dict(raw.headers), method="POST"), timeout=10)
    out["duplicate_keys"] = "ok"
except urllib.error.HTTPError as e:
    out["duplicate_keys"] = json.loads(e.read()).get("__type")


def get(path, key=None, sigv4=None):
    url = endpoint + path
    headers = {}
    if key:
        headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % key).encode()).decode()
    if sigv4:
        request = AWSRequest(method="GET", url=url)
        SigV4Auth(Credentials(*sigv4), "trailwatch", "us-east-1").add_auth(request)
        headers = dict(request.headers)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=20) as response:
            return [response.status, response.read().decode()]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode()]


q_app = urllib.parse.quote('SOURCE logGroups(namePrefix: ["/app/web"]) | stats count(*) as n')
q_all = urllib.parse.quote("stats count(*) as n")
out["api_query_app_basic"] = get("/api/query?q=" + q_app, key=(reader_id, reader_secret))[0]
out["api_query_app_sigv4"] = get("/api/query?q=" + q_app, sigv4=(reader_id, reader_secret))[0]
out["api_query_all"] = get("/api/query?q=" + q_all, key=(reader_id, reader_secret))
out["api_query_admin"] = get("/api/query?q=" + q_all, key=(admin_id, admin_secret))[0]
out["api_query_wrong_secret"] = get("/api/query?q=" + q_all, key=(reader_id, "wrong"))[0]
out["metrics_reader"] = get("/metrics", key=(reader_id, reader_secret))[0]
out["metrics_admin"] = get("/metrics", key=(admin_id, admin_secret))[0]
out["metrics_anonymous"] = get("/metrics")[0]
out["health_anonymous"] = get("/health")[0]
print(json.dumps(out))
