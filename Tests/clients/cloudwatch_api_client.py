#!/usr/bin/env python3
"""boto3 against a trailwatch cloudwatch_api endpoint (CloudWatch in Smithy RPC v2 CBOR, the
protocol botocore picks, plus the query and JSON 1.0 protocols; CloudTrail LookupEvents in JSON 1.1).
Prints one JSON object with what each call returned (or the error code it raised).
Usage: cloudwatch_api_client.py ENDPOINT ACCESS_KEY_ID SECRET PHASE
PHASE: metrics (put data, read it back, errors) | alarm (wait for ALARM, history) |
       restarted (state kept, set-alarm-state, deletes) | cloudtrail (lookup-events pages)"""
import json, sys, time
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key_id, secret, phase = sys.argv[1:5]
config = Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=60)


def client(service, secret_key=secret):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id,
                        aws_secret_access_key=secret_key, config=config)


def code(call):
    try:
        call()
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]


def protocol_client(protocol):
    """A CloudWatch client forced to one wire protocol (older SDKs speak query or JSON 1.0)."""
    session = boto3.session.Session()
    loader = session._session.get_component("data_loader")
    model = loader.load_service_model("cloudwatch", "service-2")
    model["metadata"]["protocol"] = protocol
    model["metadata"]["protocols"] = [protocol]
    original = loader.load_service_model
    loader.load_service_model = lambda name, type_name, api_version=None: model if (name, type_name) == ("cloudwatch", "service-2") \
        else original(name, type_name, api_version)
    return session.client("cloudwatch", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id,
                          aws_secret_access_key=secret, config=config)


cw = client("cloudwatch")
out = {}
now = int(time.time())
period_start = now // 300 * 300
latency_dims = [{"Name": "EndpointName", "Value": "YourEndpointName"}]

if phase == "metrics":
    # Five hours of steady latency every five minutes, then two slow periods just before the current one.
    data = []
    for i in range(60, 2, -1):
        t = period_start - i * 300 + 30
        data.append({"MetricName": "InferenceLatency", "Dimensions": latency_dims, "Timestamp": t, "Value": 100 + (i * 7) % 5, "Unit": "Milliseconds"})
    for t in (period_start - 600 + 30, period_start - 300 + 30):
        data.append({"MetricName": "InferenceLatency", "Dimensions": latency_dims, "Timestamp": t, "Value": 1500.0, "Unit": "Milliseconds"})
    cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data)
    # Values/Counts and statistic sets in another namespace, one minute apart.
    base = period_start - 3600
    cw.put_metric_data(Namespace="App", MetricData=[
        *[{"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}], "Timestamp": base + i, "Value": v}
          for i, v in enumerate([1, 2, 3, 4, 100])],
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}], "Timestamp": base + 60,
         "StatisticValues": {"SampleCount": 4, "Sum": 40, "Minimum": 5, "Maximum": 15}},
        {"MetricName": "Errors", "Timestamp": base, "Values": [1, 2], "Counts": [2, 1], "StorageResolution": 1},
    ])
    stats = cw.get_metric_statistics(Namespace="App", MetricName="Latency", Dimensions=[{"Name": "Host", "Value": "a"}],
                                     StartTime=base - 60, EndTime=base + 120, Period=60,
                                     Statistics=["SampleCount", "Sum", "Average", "Minimum", "Maximum"], ExtendedStatistics=["p50", "p99"])
    out["statistics"] = [{k: (v.isoformat() if k == "Timestamp" else v) for k, v in d.items()} for d in sorted(stats["Datapoints"], key=lambda d: d["Timestamp"])]
    got = cw.get_metric_data(StartTime=base - 60, EndTime=base + 120, ScanBy="TimestampAscending", MetricDataQueries=[
        {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}]},
                                    "Period": 60, "Stat": "Sum"}},
        {"Id": "m2", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}]},
                                    "Period": 60, "Stat": "SampleCount"}, "ReturnData": False},
        {"Id": "avg", "Expression": "m1 / m2", "Label": "mean"},
        {"Id": "p", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}]},
                                   "Period": 60, "Stat": "p80"}},
    ])
    errors = cw.get_metric_statistics(Namespace="App", MetricName="Errors", StartTime=base - 60, EndTime=base + 60, Period=60,
                                      Statistics=["Sum", "SampleCount", "Maximum"])["Datapoints"]
    out["values_counts"] = [[d["Sum"], d["SampleCount"], d["Maximum"]] for d in errors]
    out["metric_data"] = {r["Id"]: {"label": r["Label"], "values": r["Values"], "status": r["StatusCode"],
                                    "times": [t.timestamp() for t in r["Timestamps"]]} for r in got["MetricDataResults"]}
    band = cw.get_metric_data(StartTime=period_start - 3600, EndTime=period_start, MetricDataQueries=[
        {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/SageMaker", "MetricName": "InferenceLatency", "Dimensions": latency_dims},
                                    "Period": 300, "Stat": "Average"}},
        {"Id": "e1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)"},
    ])
    out["band_results"] = [[r["Id"], r["Label"], len(r["Values"])] for r in band["MetricDataResults"]]
    upper = [r for r in band["MetricDataResults"] if r["Label"].endswith("Upper")][0]
    values = [r for r in band["MetricDataResults"] if r["Id"] == "m1"][0]
    # Newest first: the first slow period lies above the band (learnt from steady data), the steady ones inside.
    out["band_newest_above"] = values["Values"][1] > upper["Values"][1]
    out["band_older_inside"] = values["Values"][5] <= upper["Values"][5]
    # Pagination: 3 datapoints per page across the results.
    pages = list(cw.get_paginator("get_metric_data").paginate(
        StartTime=period_start - 3600, EndTime=period_start, PaginationConfig={"PageSize": 3},
        MetricDataQueries=[{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "AWS/SageMaker", "MetricName": "InferenceLatency",
                                                                  "Dimensions": latency_dims}, "Period": 300, "Stat": "Maximum"}}]))
    out["paged_points"] = sum(len(r["Values"]) for p in pages for r in p["MetricDataResults"])
    out["pages"] = len(pages)
    listed = cw.list_metrics(Namespace="App")["Metrics"]
    out["metrics"] = sorted([m["MetricName"] + "/" + ",".join(d["Name"] + "=" + d["Value"] for d in m["Dimensions"]) for m in listed])
    out["metrics_by_dimension"] = [m["MetricName"] for m in cw.list_metrics(Dimensions=[{"Name": "EndpointName"}])["Metrics"]]
    # The same in the query protocol (XML) and Smithy RPC v2 CBOR (botocore itself prefers JSON 1.0).
    out["default_protocol"] = cw.meta.service_model.resolved_protocol
    for protocol, name in (("query", "query"), ("smithy-rpc-v2-cbor", "cbor")):
        other = protocol_client(protocol)
        other.put_metric_data(Namespace="Legacy", MetricData=[{"MetricName": name, "Value": 7, "Timestamp": base,
                                                               "Dimensions": [{"Name": "Via", "Value": name}]}])
        s = other.get_metric_statistics(Namespace="Legacy", MetricName=name, Dimensions=[{"Name": "Via", "Value": name}],
                                        StartTime=base - 60, EndTime=base + 60, Period=60, Statistics=["Sum"])
        out[name + "_sum"] = [d["Sum"] for d in s["Datapoints"]]
        out[name + "_error"] = code(lambda: other.delete_alarms(AlarmNames=["does-not-exist"]))
        out[name + "_listed"] = [m["MetricName"] for m in other.list_metrics(Namespace="Legacy", MetricName=name)["Metrics"]]
        # Large bodies arrive gzip-compressed (botocore compresses PutMetricData over 10 KB).
        other.put_metric_data(Namespace="Legacy", MetricData=[{"MetricName": name + "-bulk", "Value": float(i), "Timestamp": base + i}
                                                              for i in range(1000)])
        bulk = other.get_metric_statistics(Namespace="Legacy", MetricName=name + "-bulk", StartTime=base - 60, EndTime=base + 1200,
                                           Period=1200, Statistics=["SampleCount", "Sum"])["Datapoints"]
        out[name + "_bulk"] = [[d["SampleCount"], d["Sum"]] for d in bulk]
    # Bad parameters raise the SDK's usual exceptions.
    out["both_value_kinds"] = code(lambda: cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "x", "Value": 1, "Values": [1]}]))
    out["bad_resolution"] = code(lambda: cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "x", "Value": 1, "StorageResolution": 5}]))
    out["too_old"] = code(lambda: cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "x", "Value": 1, "Timestamp": now - 20 * 86400}]))
    out["too_many_points"] = code(lambda: cw.get_metric_statistics(Namespace="App", MetricName="Latency", StartTime=now - 86400 * 2,
                                                                   EndTime=now, Period=60, Statistics=["Sum"]))
    out["bad_period"] = code(lambda: cw.get_metric_statistics(Namespace="App", MetricName="Latency", StartTime=now - 600,
                                                              EndTime=now, Period=7, Statistics=["Sum"]))
    out["bad_expression"] = code(lambda: cw.get_metric_data(StartTime=now - 600, EndTime=now, MetricDataQueries=[
        {"Id": "e", "Expression": "RATE(m1)"}]))
    out["bad_token"] = code(lambda: cw.describe_alarms(NextToken="x" * 2000))
    out["unknown_alarm_delete"] = code(lambda: cw.delete_alarms(AlarmNames=["nope"]))
    try:
        cw.set_alarm_state(AlarmName="nope", StateValue="OK", StateReason="x")
        out["unknown_alarm_class"] = None
    except cw.exceptions.ResourceNotFound:
        out["unknown_alarm_class"] = "ResourceNotFound"
    try:
        cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "x", "Value": 1, "StorageResolution": 5}])
    except cw.exceptions.InvalidParameterValueException:
        out["invalid_class"] = "InvalidParameterValueException"
    out["wrong_secret"] = code(lambda: client("cloudwatch", "wrong").list_metrics())
    cw.put_anomaly_detector(SingleMetricAnomalyDetector={"Namespace": "AWS/SageMaker", "MetricName": "InferenceLatency",
                                                         "Dimensions": latency_dims, "Stat": "Average"})
    detectors = cw.describe_anomaly_detectors(Namespace="AWS/SageMaker")["AnomalyDetectors"]
    out["detectors"] = [[d["MetricName"], d["Stat"], d["StateValue"]] for d in detectors]
    out["delete_missing_detector"] = code(lambda: cw.delete_anomaly_detector(SingleMetricAnomalyDetector={
        "Namespace": "AWS/SageMaker", "MetricName": "InferenceLatency", "Stat": "p99"}))
    out["bad_detector_config"] = code(lambda: cw.put_anomaly_detector(SingleMetricAnomalyDetector={
        "Namespace": "A", "MetricName": "B", "Stat": "Average"}, Configuration={"ExcludedTimeRanges": [{"StartTime": now - 60, "EndTime": now}]}))

elif phase == "alarm":
    deadline = time.time() + 90
    state = None
    while time.time() < deadline:
        alarms = cw.describe_alarms(AlarmNames=["HighInferenceLatency"])["MetricAlarms"]
        state = alarms[0]["StateValue"] if alarms else None
        if state == "ALARM":
            break
        time.sleep(0.5)
    out["state"] = state
    alarm = cw.describe_alarms(AlarmNamePrefix="HighInf", StateValue="ALARM")["MetricAlarms"]
    out["by_state"] = [a["AlarmName"] for a in alarm]
    out["threshold_metric"] = alarm[0].get("ThresholdMetricId") if alarm else None
    out["arn"] = alarm[0].get("AlarmArn") if alarm else None
    out["for_metric"] = [a["AlarmName"] for a in cw.describe_alarms_for_metric(Namespace="AWS/SageMaker", MetricName="InferenceLatency",
                                                                               Dimensions=latency_dims)["MetricAlarms"]]
    out["ok_alarms"] = [a["AlarmName"] for a in cw.describe_alarms(StateValue="OK")["MetricAlarms"]]
    history = []
    deadline = time.time() + 30
    while time.time() < deadline:
        history = cw.describe_alarm_history(AlarmName="HighInferenceLatency", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
        if any("to ALARM" in h["HistorySummary"] for h in history):
            break
        time.sleep(0.5)
    out["history"] = [h["HistorySummary"] for h in history]
    out["history_data"] = json.loads(history[0]["HistoryData"])["newState"]["stateValue"] if history else None

elif phase == "restarted":
    cw = protocol_client("smithy-rpc-v2-cbor")
    alarms = cw.describe_alarms(AlarmNames=["HighInferenceLatency"])["MetricAlarms"]
    out["state_after_restart"] = alarms[0]["StateValue"] if alarms else None
    cw.set_alarm_state(AlarmName="HighInferenceLatency", StateValue="OK", StateReason="maintenance")
    deadline = time.time() + 30
    state = None
    while time.time() < deadline:
        state = cw.describe_alarms(AlarmNames=["HighInferenceLatency"])["MetricAlarms"][0]["StateValue"]
        if state == "OK":
            break
        time.sleep(0.3)
    out["state_after_set"] = state
    out["reason_after_set"] = cw.describe_alarms(AlarmNames=["HighInferenceLatency"])["MetricAlarms"][0]["StateReason"]
    cw.disable_alarm_actions(AlarmNames=["HighInferenceLatency"])
    out["actions_enabled"] = cw.describe_alarms(AlarmNames=["HighInferenceLatency"])["MetricAlarms"][0]["ActionsEnabled"]
    for i in range(7):
        cw.put_metric_alarm(AlarmName="static-%d" % i, Namespace="App", MetricName="Errors", Statistic="Sum", Period=60,
                            EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    pages = list(cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix="static-", PaginationConfig={"PageSize": 3}))
    out["alarm_pages"] = [len(p["MetricAlarms"]) for p in pages]
    out["bad_alarm"] = code(lambda: cw.put_metric_alarm(AlarmName="bad", Namespace="App", MetricName="Errors", Statistic="Sum", Period=7,
                                                        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold"))
    out["band_without_metrics"] = code(lambda: cw.put_metric_alarm(AlarmName="bad", Namespace="App", MetricName="Errors", Statistic="Sum",
                                                                   Period=60, EvaluationPeriods=1, Threshold=1,
                                                                   ComparisonOperator="GreaterThanUpperThreshold"))
    cw.delete_alarms(AlarmNames=["static-%d" % i for i in range(7)])
    out["after_delete"] = [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]]

elif phase == "cloudtrail":
    ct = client("cloudtrail")
    pages = list(ct.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}], PaginationConfig={"PageSize": 7}))
    events = [e for p in pages for e in p["Events"]]
    out["console_logins"] = len(events)
    out["pages"] = len(pages)
    out["newest_first"] = all(events[i]["EventTime"] >= events[i + 1]["EventTime"] for i in range(len(events) - 1))
    first = events[0] if events else {}
    out["first"] = {"EventName": first.get("EventName"), "Username": first.get("Username"), "Resources": first.get("Resources"),
                    "has_record": json.loads(first.get("CloudTrailEvent", "{}")).get("eventName")}
    out["by_user"] = len(ct.lookup_events(LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "alice"}], MaxResults=50)["Events"])
    out["by_resource"] = len(ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName",
                                                                 "AttributeValue": "arn:aws:s3:::bucket-3"}])["Events"])
    out["all"] = sum(len(p["Events"]) for p in ct.get_paginator("lookup_events").paginate(PaginationConfig={"PageSize": 50}))
    out["time_range"] = len(ct.lookup_events(StartTime=1_700_000_000 + 10 * 60, EndTime=1_700_000_000 + 19 * 60)["Events"])
    out["two_attributes"] = code(lambda: ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "a"},
                                                                             {"AttributeKey": "Username", "AttributeValue": "b"}]))
    out["bad_range"] = code(lambda: ct.lookup_events(StartTime=1_700_000_100, EndTime=1_700_000_000))
    out["bad_token"] = code(lambda: ct.lookup_events(NextToken="garbage"))
    out["bad_max"] = code(lambda: ct.lookup_events(MaxResults=51))
    out["insights"] = len(ct.lookup_events(EventCategory="insight")["Events"])

print(json.dumps(out))
