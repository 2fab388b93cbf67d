#!/usr/bin/env python3
"""Load generator for PutLogEvents: SigV4-signed 1 MB batches of 10,000 ~100-byte events over
many concurrent keep-alive connections (asyncio, one coroutine per connection, raw HTTP/1.1 so
the generator spends its CPU on sockets, not on a client library). Bodies are built and hashed
once; each request only re-signs (a few HMACs). A 503 (ThrottlingException) is retried after a
short pause, as SDKs do.

Prints one JSON line: requests, events, wall s, events/s, p50/p90/p99/max ms, throttled,
client CPU s, and the load average before and after.

usage: putlogevents_load.py URL KEY_ID SECRET --requests N --connections C [--group G --stream S]
       [--duration S]   (stop starting requests after S seconds instead of after N requests)"""
import argparse, asyncio, hashlib, hmac, json, os, random, resource, sys, time, urllib.parse


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


def request_head(host, target, body, body_hash, key_id, secret):
    headers = sign("POST", host, body_hash, target, key_id, secret)
    headers["content-length"] = str(len(body))
    return ("POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


async def read_response(reader):
    """(status, body) of one HTTP/1.1 response with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


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


async def call_once(host, port, authority, target, body, key_id, secret):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request_head(authority, target, body, hashlib.sha256(body).hexdigest(), key_id, secret) + body)
    await writer.drain()
    status, reply = await read_response(reader)
    writer.close()
    return status, reply


async def run(args):
    parsed = urllib.parse.urlsplit(args.url)
    host, port, authority = parsed.hostname, parsed.port, parsed.netloc
    for target, body in (("Logs_20140328.CreateLogGroup", {"logGroupName": args.group}),
                         ("Logs_20140328.CreateLogStream", {"logGroupName": args.group, "logStreamName": args.stream})):
        await call_once(host, port, authority, target, json.dumps(body).encode(), args.key_id, args.secret)
    bodies = [make_body(args.group, args.stream, args.events, args.size, seed) for seed in range(8)]
    hashes = [hashlib.sha256(b).hexdigest() for b in bodies]
    latencies, failures, throttled = [], [], [0]
    next_request = [0]

    deadline = None

    async def connection():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                n = next_request[0]
                if (deadline is None and n >= args.requests) or (deadline is not None and time.monotonic() >= deadline):
                    return
                next_request[0] += 1
                body = bodies[n % len(bodies)]
                while True:
                    t0 = time.monotonic()
                    writer.write(request_head(authority, "Logs_20140328.PutLogEvents", body, hashes[n % len(hashes)], args.key_id, args.secret))
                    writer.write(body)
                    await writer.drain()
                    status, reply = await read_response(reader)
                    elapsed = time.monotonic() - t0
                    if status == 200:
                        latencies.append(elapsed)
                        break
                    if status == 503:
                        throttled[0] += 1
                        await asyncio.sleep(0.05)
                        continue
                    failures.append((status, reply[:200].decode(errors="replace")))
                    return
        finally:
            writer.close()

    load_before = os.getloadavg()
    start = time.monotonic()
    if args.duration:
        deadline = start + args.duration
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    await asyncio.gather(*(connection() for _ in range(args.connections)))
    wall = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return latencies, failures, throttled[0], wall, len(bodies[0]), load_before, usage.ru_utime + usage.ru_stime - cpu_before


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("key_id")
    ap.add_argument("secret")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--duration", type=float, default=0, help="seconds; overrides --requests")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=78, help="message bytes (plus 26 counted per event ≈ 1 MB a batch)")
    ap.add_argument("--group", default="bench")
    ap.add_argument("--stream", default="load")
    args = ap.parse_args()
    latencies, failures, throttled, wall, request_bytes, load_before, client_cpu = asyncio.run(run(args))
    latencies.sort()
    done = len(latencies)
    pct = lambda p: round(latencies[min(done - 1, int(p * done))] * 1000, 1) if done else None
    print(json.dumps(dict(requests=done, events=done * args.events, wall_s=round(wall, 3), events_per_s=round(done * args.events / wall),
                          p50_ms=pct(0.50), p90_ms=pct(0.90), p99_ms=pct(0.99), max_ms=pct(1.0), throttled=throttled,
                          failures=failures[:3], request_bytes=request_bytes, connections=args.connections,
                          client_cpu_s=round(client_cpu, 2),
                          load_before=[round(x, 2) for x in load_before], load_after=[round(x, 2) for x in os.getloadavg()])))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
