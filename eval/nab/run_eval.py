#!/usr/bin/env python3
"""Scores trailwatch's anomaly-band alarm on the NAB AWS CloudWatch series.

For every series in ../shared/data/nab/series, runs
`trailwatch backtest eval/nab/band-alarm.json --metrics SERIES --format json`, marks the row of
each OK/INSUFFICIENT_DATA -> ALARM transition as a detection, and scores the detections with
NAB's window_metrics.py (standard profile). One alarm definition for every series: no tuning
per series.
"""
import csv
import glob
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NAB = os.path.join(ROOT, "..", "shared", "data", "nab")
BINARY = os.environ.get("TRAILWATCH", os.path.join(ROOT, ".build", "release", "trailwatch"))


def epoch(text):
    text = text.strip()[:19]
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


def main():
    if not os.path.isdir(NAB):
        print(f"skipping the NAB evaluation: {NAB} is absent")
        return 0
    definition = os.path.join(HERE, "band-alarm.json")
    out = tempfile.mkdtemp(prefix="trailwatch-nab-")
    print(f"{'series':34} {'rows':>6} {'alarms':>6}")
    for series in sorted(glob.glob(os.path.join(NAB, "series", "*.csv"))):
        result = subprocess.run([BINARY, "backtest", definition, "--metrics", series, "--format", "json"],
                                capture_output=True, text=True, check=True)
        report = json.loads(result.stdout)
        starts = [datetime.strptime(t["periodStart"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
                  if "." in t["periodStart"] else
                  datetime.strptime(t["periodStart"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
                  for t in report["transitions"] if t["to"] == "ALARM"]
        with open(series, newline="") as f:
            rows = list(csv.DictReader(f))
        fired = set()
        for start in starts:
            # The first row inside the period that decided the transition.
            for i, row in enumerate(rows):
                if start <= epoch(row["timestamp"]) < start + 300:
                    fired.add(i)
                    break
        with open(os.path.join(out, os.path.basename(series)), "w") as f:
            f.write("timestamp,is_anomaly\n")
            for i, row in enumerate(rows):
                f.write(f"{row['timestamp']},{1 if i in fired else 0}\n")
        print(f"{os.path.basename(series):34} {len(rows):6d} {len(fired):6d}")
    score = subprocess.run([sys.executable, os.path.join(NAB, "window_metrics.py"), out, "--profile", "standard"],
                           capture_output=True, text=True, check=True)
    print(score.stdout, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
