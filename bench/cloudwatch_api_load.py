#!/usr/bin/env python3
"""Load for the CloudWatch API (Smithy RPC v2 CBOR, as botocore sends it) and CloudTrail LookupEvents,
SigV4-signed, over keep-alive connections. Bodies are built once; each request only re-signs.
Prints one JSON line per mode.

usage: cloudwatch_api_load.py put URL KEY_ID SECRET [--metrics 100 --minutes 10080 --connections 4]
       cloudwatch_api_load.py get URL KEY_ID SECRET [--metrics 100 --minutes 10080 --period 3600 --repeat 5]
       cloudwatch_api_load.py lookup URL KEY_ID SECRET [--repeat 20]"""
import argparse, hashlib, hmac, http.client, json, statistics, struct, sys, threading, time, urllib.parse

TARGET = "GraniteServiceVersion20100801"


def cbor(value, out):
    """A minimal CBOR encoder for request documents (maps, lists, text, ints, floats, tag-1 times)."""
    def head(major, n):
        if n < 24: out.append(major << 5 | n)
        elif n < 256: out.extend((major << 5 | 24, n))
        elif n < 65536: out.append(major << 5 | 25); out.extend(n.to_bytes(2, "big"))
        elif n < 2 ** 32: out.append(major << 5 | 26); out.extend(n.to_bytes(4, "big"))
        else: out.append(major << 5 | 27); out.extend(n.to_bytes(8, "big"))
    if isinstance(value, bool): out.append(0xF5 if value else 0xF4)
    elif isinstance(value, int): head(0, value) if value >= 0 else head(1, -1 - value)
    elif isinstance(value, float): out.append(0xFB); out.extend(struct.pack(">d", value))
    elif isinstance(value, str): b = value.encode(); head(3, len(b)); out.extend(b)
    elif isinstance(value, list):
        head(4, len(value))
        for v in value: cbor(v, out)
    elif isinstance(value, dict):
        head(5, len(value))
        for k, v in value.items(): cbor(k, out); cbor(v, out)
    elif isinstance(value, tuple) and value[0] == "time": out.append(0xC1); cbor(value[1], out)
    return out


def sign(path, host, body, headers, key_id, secret, service, region="us-east-1"):
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    day = amz_date[:8]
    headers = dict(headers, host=host, **{"x-amz-date": amz_date})
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["POST", path, "", "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, "
                                f"Signature={hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()}")
    headers["content-length"] = str(len(body))
    return headers


def cw_call(conn, host, operation, document, key_id, secret):
    body = bytes(cbor(document, bytearray()))
    path = f"/service/{TARGET}/operation/{operation}"
    headers = sign(path, host, body, {"content-type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}, key_id, secret, "monitoring")
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def percentile(values, p):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p))] * 1000, 1) if values else None


def put(args, parsed):
    """100 metrics × a week of 1-minute datapoints, 1,000 values per request."""
    now = int(time.time()) // 60 * 60
    start = now - args.minutes * 60
    jobs = []
    for m in range(args.metrics):
        for first in range(0, args.minutes, 1000):
            data = [{"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": f"host-{m}"}],
                     "Timestamp": ("time", start + (first + i) * 60), "Value": float(100 + (first + i) % 37)}
                    for i in range(min(1000, args.minutes - first))]
            jobs.append(bytes(cbor({"Namespace": "Bench", "MetricData": data}, bytearray())))
    lock = threading.Lock()
    latencies, failures = [], []
    position = [0]

    def worker():
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        path = f"/service/{TARGET}/operation/PutMetricData"
        while True:
            with lock:
                if position[0] >= len(jobs):
                    return
                body = jobs[position[0]]
                position[0] += 1
            headers = sign(path, parsed.netloc, body, {"content-type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
                           args.key_id, args.secret, "monitoring")
            t = time.perf_counter()
            while True:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 503:
                    break
                time.sleep(0.05)
            with lock:
                latencies.append(time.perf_counter() - t)
                if response.status != 200:
                    failures.append(response.status)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    for th in threads: th.start()
    for th in threads: th.join()
    wall = time.perf_counter() - t0
    values = args.metrics * args.minutes
    print(json.dumps(dict(mode="put", requests=len(jobs), values=values, wall_s=round(wall, 3), values_per_s=round(values / wall),
                          p50_ms=percentile(latencies, 0.5), p99_ms=percentile(latencies, 0.99), failures=len(failures))))
    return 0 if not failures else 1


def get(args, parsed):
    """GetMetricData: every metric over the whole range in one request."""
    now = int(time.time()) // 60 * 60 + 60
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    queries = [{"Id": f"m{m}", "MetricStat": {"Metric": {"Namespace": "Bench", "MetricName": "Latency",
                                                         "Dimensions": [{"Name": "Host", "Value": f"host-{m}"}]},
                                              "Period": args.period, "Stat": args.stat}} for m in range(args.metrics)]
    document = {"StartTime": ("time", now - args.minutes * 60 - 60), "EndTime": ("time", now), "MetricDataQueries": queries}
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        status, body = cw_call(conn, parsed.netloc, "GetMetricData", document, args.key_id, args.secret)
        times.append(time.perf_counter() - t)
        if status != 200:
            print(json.dumps(dict(mode="get", status=status, body=body[:200].decode(errors="replace"))))
            return 1
    print(json.dumps(dict(mode="get", metrics=args.metrics, period=args.period, stat=args.stat, p50_ms=percentile(times, 0.5),
                          best_ms=round(min(times) * 1000, 1), reply_bytes=len(body))))
    return 0


def lookup(args, parsed):
    """LookupEvents: the first page of 50 and a page deep in the history, by attribute and without."""
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    target = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"
    out = {}
    for label, document in (("by_event_name", {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": args.event_name}], "MaxResults": 50}),
                            ("by_user", {"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": args.user}], "MaxResults": 50}),
                            ("all", {"MaxResults": 50})):
        times, token, count = [], None, 0
        for _ in range(args.repeat):
            body = json.dumps(dict(document, **({"NextToken": token} if token else {}))).encode()
            headers = sign("/", parsed.netloc, body, {"content-type": "application/x-amz-json-1.1", "x-amz-target": target},
                           args.key_id, args.secret, "cloudtrail")
            t = time.perf_counter()
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            reply = response.read()
            times.append(time.perf_counter() - t)
            if response.status != 200:
                print(json.dumps(dict(mode="lookup", status=response.status, body=reply[:200].decode(errors="replace"))))
                return 1
            parsed_reply = json.loads(reply)
            count = len(parsed_reply["Events"])
            token = parsed_reply.get("NextToken")
        out[label] = dict(p50_ms=percentile(times, 0.5), best_ms=round(min(times) * 1000, 1), page=count)
    print(json.dumps(dict(mode="lookup", **out)))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["put", "get", "lookup"])
    ap.add_argument("url")
    ap.add_argument("key_id")
    ap.add_argument("secret")
    ap.add_argument("--metrics", type=int, default=100)
    ap.add_argument("--minutes", type=int, default=7 * 1440)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--period", type=int, default=3600)
    ap.add_argument("--stat", default="Average")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--event-name", default="GetObject")
    ap.add_argument("--user", default="user3")
    args = ap.parse_args()
    parsed = urllib.parse.urlsplit(args.url)
    return {"put": put, "get": get, "lookup": lookup}[args.mode](args, parsed)


if __name__ == "__main__":
    sys.exit(main())
