#!/usr/bin/env python3
"""Seeds for the CloudWatch and CloudTrail API fuzz targets (cloudwatch-request, cloudtrail-lookup):
one request per operation in the shapes the service tests use, in CBOR, JSON 1.0 and the query
protocol. Adds files (named by content) and removes none, so regression inputs stay.
Run from the repository root: python3 fuzz/make_api_seeds.py"""
import json, struct, hashlib, os
def head(major, n):
    if n < 24: return bytes([major<<5 | n])
    if n < 256: return bytes([major<<5 | 24, n])
    if n < 65536: return bytes([major<<5 | 25]) + struct.pack('>H', n)
    return bytes([major<<5 | 26]) + struct.pack('>I', n)
class TS(float): pass
def cbor(v):
    if isinstance(v, bool): return b'\xf5' if v else b'\xf4'
    if isinstance(v, TS): return b'\xc1' + b'\xfb' + struct.pack('>d', v)
    if isinstance(v, int): return head(0, v) if v >= 0 else head(1, -1-v)
    if isinstance(v, float): return b'\xfb' + struct.pack('>d', v)
    if isinstance(v, str): b = v.encode(); return head(3, len(b)) + b
    if isinstance(v, list): return head(4, len(v)) + b''.join(cbor(x) for x in v)
    if isinstance(v, dict): return head(5, len(v)) + b''.join(cbor(k) + cbor(x) for k, x in v.items())
def save(d, data):
    open(f'fuzz/corpus/{d}/' + hashlib.sha1(data).hexdigest()[:16], 'wb').write(data)
t0 = 1_789_996_400.0
ops = ["PutMetricData", "ListMetrics", "GetMetricStatistics", "GetMetricData", "PutMetricAlarm", "DescribeAlarms",
       "DescribeAlarmsForMetric", "DescribeAlarmHistory", "DeleteAlarms", "SetAlarmState", "EnableAlarmActions",
       "DisableAlarmActions", "PutAnomalyDetector", "DescribeAnomalyDetectors", "DeleteAnomalyDetector"]
def J(ts): return ts  # JSON timestamps: epoch seconds
cases = [
 ("PutMetricData", {"Namespace": "App", "MetricData": [
    {"MetricName": "Latency", "Timestamp": TS(t0), "Value": 10.0, "Unit": "Milliseconds", "Dimensions": [{"Name": "host", "Value": "a"}]},
    {"MetricName": "Latency", "Timestamp": TS(t0 + 1), "Values": [30.0, 5.0], "Counts": [2.0, 1.0]},
    {"MetricName": "Latency", "Timestamp": TS(t0 + 2), "StatisticValues": {"SampleCount": 2.0, "Sum": 3.0, "Minimum": 1.0, "Maximum": 2.0}, "StorageResolution": 1}]}),
 ("ListMetrics", {"Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "host"}], "RecentlyActive": "PT3H"}),
 ("GetMetricStatistics", {"Namespace": "App", "MetricName": "Latency", "StartTime": TS(t0), "EndTime": TS(t0 + 180), "Period": 60,
    "Statistics": ["Sum", "SampleCount", "Average"], "ExtendedStatistics": ["p50", "tm80", "IQM"]}),
 ("GetMetricData", {"StartTime": TS(t0), "EndTime": TS(t0 + 600), "ScanBy": "TimestampAscending", "MetricDataQueries": [
    {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Latency"}, "Period": 60, "Stat": "Average"}, "ReturnData": False},
    {"Id": "e1", "Expression": "RATE(m1) * 100 + FILL(m1, 0) / MAX([m1, m1])", "Label": "rate"},
    {"Id": "b1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)"},
    {"Id": "e2", "Expression": "IF(m1 > 10 AND m1 < 100, m1, 0) + METRICS()"}]}),
 ("PutMetricAlarm", {"AlarmName": "high", "Namespace": "App", "MetricName": "Latency", "Statistic": "Average", "Period": 60, "EvaluationPeriods": 3,
    "DatapointsToAlarm": 2, "Threshold": 100.0, "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "breaching",
    "Dimensions": [{"Name": "host", "Value": "a"}], "AlarmActions": ["arn:aws:sns:us-east-1:000000000000:t"]}),
 ("PutMetricAlarm", {"AlarmName": "band", "EvaluationPeriods": 1, "ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold", "ThresholdMetricId": "ad1",
    "Metrics": [{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Latency"}, "Period": 60, "Stat": "p90"}},
                {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)"}]}),
 ("DescribeAlarms", {"AlarmNamePrefix": "h", "StateValue": "ALARM", "AlarmTypes": ["MetricAlarm", "CompositeAlarm"], "MaxRecords": 10}),
 ("DescribeAlarmsForMetric", {"Namespace": "App", "MetricName": "Latency", "Statistic": "Average", "Period": 60}),
 ("DescribeAlarmHistory", {"AlarmName": "a", "HistoryItemType": "StateUpdate", "StartDate": TS(t0), "EndDate": TS(t0 + 60), "ScanBy": "TimestampDescending"}),
 ("DeleteAlarms", {"AlarmNames": ["a", "high"]}),
 ("SetAlarmState", {"AlarmName": "a", "StateValue": "ALARM", "StateReason": "test", "StateReasonData": "{\"x\":1}"}),
 ("EnableAlarmActions", {"AlarmNames": ["a"]}),
 ("DisableAlarmActions", {"AlarmNames": ["a"]}),
 ("PutAnomalyDetector", {"SingleMetricAnomalyDetector": {"Namespace": "App", "MetricName": "Latency", "Stat": "Average", "Dimensions": [{"Name": "host", "Value": "a"}]},
    "Configuration": {"ExcludedTimeRanges": [{"StartTime": TS(t0), "EndTime": TS(t0 + 60)}], "MetricTimezone": "UTC"}}),
 ("DescribeAnomalyDetectors", {"Namespace": "App", "MaxResults": 10}),
 ("DeleteAnomalyDetector", {"SingleMetricAnomalyDetector": {"Namespace": "App", "MetricName": "Latency", "Stat": "Average"}}),
]
def form(prefix, v, out):
    if isinstance(v, dict):
        for k, x in v.items(): form(f'{prefix}.{k}' if prefix else k, x, out)
    elif isinstance(v, list):
        for i, x in enumerate(v): form(f'{prefix}.member.{i+1}', x, out)
    else:
        if isinstance(v, TS):
            import datetime; v = datetime.datetime.fromtimestamp(v, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        elif isinstance(v, bool): v = 'true' if v else 'false'
        from urllib.parse import quote
        out.append(f'{prefix}={quote(str(v), safe="")}')
for i, (op, doc) in enumerate(cases):
    k = ops.index(op)
    if i % 2 == 0 or op in ("PutMetricData", "GetMetricData"): save('cloudwatch-request', bytes([k, 0]) + cbor(doc))
    if i % 2 == 1 or op in ("PutMetricData", "GetMetricData", "PutMetricAlarm"): save('cloudwatch-request', bytes([k, 1]) + json.dumps(doc).encode())
    if op in ("PutMetricData", "GetMetricStatistics", "GetMetricData", "PutMetricAlarm", "DescribeAlarms", "SetAlarmState"):
        out = [f'Action={op}', 'Version=2010-08-01']; form('', doc, out); save('cloudwatch-request', bytes([k, 2]) + '&'.join(out).encode())
# LookupEvents: byte 0 picks LookupEvents unless % 8 == 7.
for doc in [{}, {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}], "MaxResults": 2},
            {"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "alice"}], "StartTime": t0 - 3600, "EndTime": t0 + 3600},
            {"LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": "bucket/key"}], "NextToken": "eyJ0IjoxfQ=="},
            {"EventCategory": "insight", "MaxResults": 50}, {"LookupAttributes": [{"AttributeKey": "ReadOnly", "AttributeValue": "true"}], "MaxResults": 1, "NextToken": "x"}]:
    save('cloudtrail-lookup', b'\x00' + json.dumps(doc).encode())
save('cloudtrail-lookup', b'\x07{}')
