#!/usr/bin/env python3
"""Writes the application logs in samples/app/ (deterministic; the project's own data).

A day (2026-11-24) of an inference service: JSON request logs with latency, an access log and
a plain-text worker log, with a latency spike around 14:00 and an error burst around 18:30 so the
demo pipelines have something to find.

usage: scripts/gen_samples.py [OUT_DIR]   (default samples/app)
"""
import json, os, random, sys
from datetime import datetime, timedelta, timezone

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "samples", "app")
os.makedirs(out, exist_ok=True)
r = random.Random(20261124)
start = datetime(2026, 11, 24, tzinfo=timezone.utc)
endpoints = ["ep-churn", "ep-fraud", "ep-recs"]
paths = ["/invocations", "/ping", "/api/v1/score", "/api/v1/batch"]

with open(os.path.join(out, "inference.log"), "w") as inf, \
     open(os.path.join(out, "access.log"), "w") as acc, \
     open(os.path.join(out, "worker.log"), "w") as wrk:
    t = start
    while t < start + timedelta(days=1):
        t += timedelta(seconds=r.uniform(20, 70))
        minute = t.hour * 60 + t.minute
        spike = 14 * 60 <= minute < 14 * 60 + 25
        burst = 18 * 60 + 30 <= minute < 18 * 60 + 40
        # Daily rhythm: busier in the afternoon.
        base = 60 + 25 * (1 if 9 <= t.hour < 20 else 0)
        latency = round(r.lognormvariate(4.1 if not spike else 5.6, 0.25), 1) if r.random() > 0.01 else round(base * 3.0, 1)
        error = burst and r.random() < 0.6 or r.random() < 0.01
        level = "ERROR" if error else r.choice(["INFO"] * 9 + ["DEBUG"])
        ts = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
        ep = r.choice(endpoints)
        rec = {"timestamp": ts, "level": level, "endpoint": ep, "latency_ms": latency,
               "status": 500 if error else 200, "request_id": f"{r.getrandbits(48):012x}",
               "message": "model invocation failed: upstream timeout" if error else "invocation served"}
        inf.write(json.dumps(rec, separators=(",", ":")) + "\n")
        ip = f"10.0.{r.randrange(4)}.{r.randrange(2, 250)}"
        status = 500 if error else r.choice([200] * 8 + [304, 404])
        acc.write(f'{ip} - - [{t.strftime("%d/%b/%Y:%H:%M:%S")} +0000] "POST {r.choice(paths)} HTTP/1.1" '
                  f'{status} {r.randrange(200, 9000)} "-" "python-requests/2.32"\n')
        if r.random() < 0.3 or error:
            msg = (f"Retrying upstream call to {ep}, attempt {r.randrange(1, 4)}" if error else
                   r.choice([f"Batch of {r.randrange(1, 64)} requests served",
                             f"Cache miss for key k{r.randrange(10000)}",
                             f"Model {ep} loaded in {r.randrange(200, 900)} ms"]))
            wrk.write(f"{t.strftime('%Y-%m-%d %H:%M:%S')},{t.microsecond // 1000:03d} {level} [worker-{r.randrange(4)}] {msg}\n")
print(f"wrote samples to {out}")
