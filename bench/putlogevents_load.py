#!/usr/bin/env python3
"""Load generator for PutLogEvents: SigV4-signed 1 MB batches of 10,000 ~100-byte events over
keep-alive connections (one thread each). Bodies are built and hashed once; each request only
re-signs (a few HMACs). Prints one JSON line: requests, events, wall s, events/s, p50/p99 ms.

usage: putlogevents_load.py URL KEY_ID SECRET --requests N --connections C [--group G --stream S]"""
import argparse, hashlib, hmac, http.client, json, random, sys, threading, time, urllib.parse


def sign(method, host, body_hash, target, key_id, secret, region="us-east-1", service="logs"):
    now = time.gmtime()
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", now)
    day = amz_date[:8]
    headers = {"content-type": "application/x-amz-json-1.1", "host": host, "x-amz-date": amz_date, "x-amz-target": target}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, "/", "", "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, body_hash])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed}, Signature={signature}"
    return headers


def call(conn, host, target, body, body_hash, key_id, secret):
    headers = sign("POST", host, body_hash, target, key_id, secret)
    headers["content-length"] = str(len(body))
    conn.request("POST", "/", body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def make_body(group, stream, events, size, seed):
    rnd = random.Random(seed)
    now = int(time.time() * 1000)
    words = ["GET", "POST", "/api/orders", "/api/users", "200", "500", "latency_ms=", "user=", "INFO", "ERROR", "request", "served"]
    out = []
    total = 0
    for i in range(events):
        message = f"{now - events + i} host-{seed} " + " ".join(rnd.choice(words) for _ in range(12))
        message = (message + " " + "x" * size)[:size]
        out.append({"timestamp": now - events + i, "message": message})
        total += len(message) + 26
    assert total <= 1_048_576, total
    return json.dumps({"logGroupName": group, "logStreamName": stream, "logEvents": out}, separators=(",", ":")).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("key_id")
    ap.add_argument("secret")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--connections", type=int, default=12)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=78, help="message bytes (plus 26 counted per event ≈ 1 MB a batch)")
    ap.add_argument("--group", default="bench")
    ap.add_argument("--stream", default="load")
    args = ap.parse_args()
    parsed = urllib.parse.urlsplit(args.url)
    host = parsed.netloc
    setup = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    for target, body in (("Logs_20140328.CreateLogGroup", {"logGroupName": args.group}),
                         ("Logs_20140328.CreateLogStream", {"logGroupName": args.group, "logStreamName": args.stream})):
        raw = json.dumps(body).encode()
        call(setup, host, target, raw, hashlib.sha256(raw).hexdigest(), args.key_id, args.secret)
    bodies = [make_body(args.group, args.stream, args.events, args.size, seed) for seed in range(8)]
    hashes = [hashlib.sha256(b).hexdigest() for b in bodies]
    lock = threading.Lock()
    next_request = [0]
    latencies, failures, throttled = [], [], [0]

    def worker():
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        while True:
            with lock:
                n = next_request[0]
                if n >= args.requests:
                    return
                next_request[0] += 1
            while True:
                t0 = time.monotonic()
                status, reply = call(conn, host, "Logs_20140328.PutLogEvents", bodies[n % len(bodies)], hashes[n % len(hashes)], args.key_id, args.secret)
                elapsed = time.monotonic() - t0
                if status == 200:
                    with lock:
                        latencies.append(elapsed)
                    break
                if status == 503:
                    with lock:
                        throttled[0] += 1
                    time.sleep(0.05)
                    continue
                with lock:
                    failures.append((status, reply[:200].decode(errors="replace")))
                return

    threads = [threading.Thread(target=worker) for _ in range(args.connections)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    latencies.sort()
    done = len(latencies)
    pct = lambda p: round(latencies[min(done - 1, int(p * done))] * 1000, 1) if done else None
    print(json.dumps(dict(requests=done, events=done * args.events, wall_s=round(wall, 3), events_per_s=round(done * args.events / wall),
                          p50_ms=pct(0.50), p99_ms=pct(0.99), throttled=throttled[0], failures=failures[:3],
                          request_bytes=len(bodies[0]))))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
