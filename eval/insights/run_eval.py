#!/usr/bin/env python3
"""Insights evaluation through the real binary (`make eval`).

Generates a week of ordinary CloudTrail traffic with the real records of ../shared/data/cloudtrail
injected as bursts (scripts/gen_cloudtrail.py), runs `trailwatch run --once` with a cloudtrail
source feeding the `insights` transform, and scores the Start insights against the ground truth:
every injected burst must be found (a Start for the same API within 10 minutes of it), and at
most one false insight (a Start near no burst) per simulated day is allowed.

usage: run_eval.py [--binary PATH] [--days 7] [--seed 42]
"""
import argparse, datetime as dt, json, os, shutil, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse(t):
    return dt.datetime.fromisoformat(t.replace("Z", "+00:00"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "trailwatch"))
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    data = os.path.join(os.path.dirname(ROOT), "shared", "data", "cloudtrail")
    if not os.path.isdir(data):
        print(f"skipped: {data} is absent")
        return 0
    work = os.path.join(ROOT, ".build", "eval", "insights")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    trail = os.path.join(work, "trail")
    subprocess.check_call([sys.executable, os.path.join(ROOT, "scripts", "gen_cloudtrail.py"), "--out", trail,
                           "--days", str(a.days), "--seed", str(a.seed), "--inject", data], stdout=subprocess.DEVNULL)
    truth = json.load(open(os.path.join(trail, "ground_truth.json")))
    out = os.path.join(work, "insights.json")
    pipeline = os.path.join(work, "pipeline.yaml")
    with open(pipeline, "w") as f:
        f.write(f"""
sources:
  trail: {{ type: cloudtrail, include: "{trail}/AWSLogs/**/*.json.gz" }}
transforms:
  insights: {{ type: insights, inputs: [trail] }}
sinks:
  out: {{ type: file, inputs: [insights], path: "{out}" }}
""")
    subprocess.check_call([a.binary, "run", pipeline, "--once", "--quiet"])
    starts = []
    for line in open(out):
        e = json.loads(line)
        d = e["insightDetails"]
        if d["state"] == "Start":
            starts.append((d["eventSource"], d["eventName"], parse(e["eventTime"]), d["insightType"]))
    bursts = truth["bursts"]
    found = 0
    for b in bursts:
        minute = parse(b["minute"])
        hit = any(s == b["eventSource"] and n == b["eventName"] and abs((t - minute).total_seconds()) <= 600
                  for s, n, t, _ in starts)
        found += hit
        print(f"{'found ' if hit else 'MISSED'} {b['minute']} {b['eventSource']} {b['eventName']} ({b['calls']} calls)")
    false = [s for s in starts if not any(s[0] == b["eventSource"] and s[1] == b["eventName"]
                                          and abs((s[2] - parse(b["minute"])).total_seconds()) <= 3600 for b in bursts)]
    days = truth.get("days", a.days)
    print(f"bursts found: {found}/{len(bursts)}; insights: {len(starts)} Start events; false: {len(false)} "
          f"over {days} days ({len(false) / days:.2f}/day)")
    for s in false:
        print(f"  false: {s[2].isoformat()} {s[0]} {s[1]} {s[3]}")
    ok = found == len(bursts) and len(false) <= days
    print("insights evaluation:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
