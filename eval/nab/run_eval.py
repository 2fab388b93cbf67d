#!/usr/bin/env python3
"""Scores trailwatch's anomaly-band alarm on NAB, with cross-validation (standard library only).

Two sets of series, each with NAB's labelled anomaly windows:
  aws    the nine AWS CloudWatch series of ../shared/data/nab/series (what the band model is for),
  extra  NAB's 41 other series in ../shared/data/nab/extra (traffic, tweets, ad exchange, machine
         temperature, artificial series): not CloudWatch metrics, but series the model has not seen.

Every series is replayed with `trailwatch backtest DEFINITION --metrics SERIES --format json`; each
transition into ALARM is one detection (on the first row of the period that decided it), and the
detections are scored with NAB's window_metrics.py (standard profile).

One definition serves every series. The harness adapts only what a user adapts to a metric's
resolution: `Period` is the series' median step (at least 300 s, a multiple of 60), and
`EvaluationPeriods` keeps the same time span ("clear after H quiet hours") at that period.

Reported:
  1. the shipped definition (eval/nab/band-alarm.json) on both sets;
  2. a grid of candidate definitions (band model x width k x quiet hours), each scored on both sets;
  3. cross-validation: the candidate that scores best on one set, scored on the other set
     (chosen on aws -> scored on extra, chosen on extra -> scored on aws).
  4. the issue's target, all seventeen AWS series (the nine and eight held out from us): what the held-out eight
     must score for 65, and estimates of the seventeen's score.
The shipped default must be chosen by (3), never by how well it scores on the nine alone.

A candidate may also name band model settings (`backtest --band-settings`): `default` is the model as it ships,
`previous` the likelihood model before the tail fit and the narrowest band (pointFactor 1.5, 6 errors per window),
kept in the grid so the change itself is cross-validated; `nodrift` the model before drifts and recurring excursions;
`memory24` adds incident memory and runs of 24 errors, on the default model and (`nodrift-memory24`) on the model
without drifts — all cross-validated against the default the same way.

usage: run_eval.py [--binary PATH] [--jobs N] [--quick] [--grid MODELS:KS:HOURS[:SETTINGS][;...]]
"""
import argparse
import concurrent.futures
import csv
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NAB = os.path.join(ROOT, "..", "shared", "data", "nab")
DEFAULT_BINARY = os.environ.get("TRAILWATCH", os.path.join(ROOT, ".build", "release", "trailwatch"))
MODEL_TAG = "trailwatch:band-model"
# Band model settings a candidate may name (passed as `backtest --band-settings`).
SETTINGS = {
    "default": None,
    # The model before drifts and recurring excursions (what shipped before them).
    "nodrift": {"driftDatapoints": 0, "recurrenceWindow": 0},
    "previous": {"tailFit": False, "narrowest": 0, "pointFactor": 1.5, "windowDatapoints": 6, "driftDatapoints": 0,
                 "recurrenceWindow": 0},
    # Incident memory (a breach holds its side of the band for 12 h) with runs judged over 24 errors (2 h), on the
    # default model and on the model without drifts.
    "memory24": {"incidentMemory": 12 * 3_600_000, "windowDatapoints": 24},
    "nodrift-memory24": {"incidentMemory": 12 * 3_600_000, "windowDatapoints": 24, "driftDatapoints": 0},
}


def parse_row_time(text):
    text = text.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    raise ValueError(text)


def parse_iso(text):
    text = text.replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def load_set(name):
    """[(key, path, rows, times, windows)] for `aws` or `extra`."""
    base = NAB if name == "aws" else os.path.join(NAB, "extra")
    windows = json.load(open(os.path.join(base, "windows.json")))
    series = []
    for key, wl in sorted(windows.items()):
        path = os.path.join(base, "series", os.path.basename(key))
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        times = [parse_row_time(r["timestamp"]) for r in rows]
        series.append(dict(key=key, path=path, rows=rows, times=times, windows=wl))
    return series


def period_of(times):
    steps = [b - a for a, b in zip(times, times[1:]) if b > a]
    step = statistics.median(steps) if steps else 300
    return max(300, int(round(step / 60.0)) * 60)


def evaluation_periods(hours, period):
    """Periods spanning `hours`, within CloudWatch's bounds (a day under hourly periods, else a week)."""
    n = max(1, int(round(hours * 3600 / period)))
    limit = (86_400 if period < 3600 else 604_800) // period
    return min(n, limit)


def definition_for(template, period, hours=None):
    d = json.loads(json.dumps(template))
    for query in d.get("Metrics", []):
        if "MetricStat" in query:
            base_period = query["MetricStat"]["Period"]
            query["MetricStat"]["Period"] = period
    if hours is None:
        hours = d["EvaluationPeriods"] * base_period / 3600
    n = evaluation_periods(hours, period)
    m = d.get("DatapointsToAlarm", d["EvaluationPeriods"])
    d["DatapointsToAlarm"] = min(m, n)
    d["EvaluationPeriods"] = n
    return d


def candidate_definition(template, model, k, hours, datapoints=1, settings="default"):
    d = json.loads(json.dumps(template))
    d["_settings"] = SETTINGS[settings]
    d["DatapointsToAlarm"] = datapoints
    for query in d["Metrics"]:
        if "Expression" in query:
            metric = query["Expression"].split("(", 1)[1].split(",")[0].strip(" )")
            query["Expression"] = f"ANOMALY_DETECTION_BAND({metric}, {k:g})"
    tags = [t for t in d.get("Tags", []) if t.get("Key") != MODEL_TAG]
    if model:
        tags.append({"Key": MODEL_TAG, "Value": model})
    if tags:
        d["Tags"] = tags
    else:
        d.pop("Tags", None)
    d["_hours"] = hours
    return d


def detections(binary, definition, series, workdir):
    """0/1 per row: the first row of each period whose evaluation moved the alarm into ALARM."""
    hours = definition.pop("_hours", None)
    settings = definition.pop("_settings", None)
    period = period_of(series["times"])
    d = definition_for(definition, period, hours)
    fd, path = tempfile.mkstemp(suffix=".json", dir=workdir)
    with os.fdopen(fd, "w") as f:
        json.dump(d, f)
    command = [binary, "backtest", path, "--metrics", series["path"], "--format", "json"]
    if settings:
        command += ["--band-settings", json.dumps(settings)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.remove(path)
    report = json.loads(out)
    starts = sorted(parse_iso(t["periodStart"]) for t in report["transitions"] if t["to"] == "ALARM")
    fired = [0] * len(series["rows"])
    times = series["times"]
    j = 0
    for start in starts:
        # The first row inside the period (rows are mostly in order; search from the start).
        for i in range(len(times)):
            if start <= times[i] < start + period:
                fired[i] = 1
                break
        j += 1
    return fired


def score(window_metrics, series_list, fired_list):
    prof = window_metrics.PROFILES["standard"]
    total = dict(windows=0, win_TP=0, FP_events=0, nab_raw=0.0)
    for s, fired in zip(series_list, fired_list):
        times = [window_metrics._ts(r["timestamp"]) for r in s["rows"]]
        r = window_metrics.score_file(times, [bool(x) for x in fired], s["windows"], prof)
        for k in total:
            total[k] += r[k]
    w = total["windows"]
    total["nab"] = 100 * (total["nab_raw"] + prof["fn"] * w) / ((prof["tp"] + prof["fn"]) * w) if w else 0.0
    return total


def evaluate(binary, window_metrics, definition, series_list, jobs, workdir):
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        fired = list(pool.map(lambda s: detections(binary, dict(definition), s, workdir), series_list))
    return score(window_metrics, series_list, fired)


def describe(model, k, hours, settings="default"):
    text = f"{model or 'default':>16} k={k:<4g} quiet={hours:g}h"
    return text if settings == "default" else f"{text} ({settings} settings)"


# The figures for the definition shipped when it was filed: 66.1 on the nine public AWS series, 41.5 on the
# eight held out, 54.6 on all seventeen. NAB's normalised score is a window-weighted mean of the sets' scores, so the
# held-out eight hold 16 * (66.1 - 54.6) / (54.6 - 41.5) = 14.0 windows.
HELD_OUT_WINDOWS = 16 * (66.1 - 54.6) / (54.6 - 41.5)
HELD_OUT_GAP = 66.1 - 41.5  # how far that definition fell from the public nine to the held-out eight


def seventeen(aws, aws_windows, unseen):
    """The issue's target is the score over all seventeen AWS series (the public nine and the held-out eight): what the
    eight must score for 65, and the seventeen's score if the eight score as the shipped definition does on series it
    was not chosen on (extra), or fall as far below the nine as the definition of the issue's time did."""
    def combined(eight):
        return (aws * aws_windows + eight * HELD_OUT_WINDOWS) / (aws_windows + HELD_OUT_WINDOWS)
    need = (65 * (aws_windows + HELD_OUT_WINDOWS) - aws * aws_windows) / HELD_OUT_WINDOWS
    fallen = aws - HELD_OUT_GAP
    print(f"\nall seventeen AWS series (the issue's target >= 65; the held-out eight hold ~{HELD_OUT_WINDOWS:.0f} windows):")
    print(f"  the eight must score >= {need:.1f} beside the nine's {aws:.1f}")
    print(f"  if they score as the shipped definition does on extra ({unseen:.1f}): {combined(unseen):.1f}; "
          f"if they fall {HELD_OUT_GAP:.1f} below the nine as the issue's definition did ({fallen:.1f}): {combined(fallen):.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="only the shipped definition, no grid")
    ap.add_argument("--grid", default="seasonal,likelihood:2.5,3,4:4,12;seasonal,likelihood:3:4:previous;"
                                      "likelihood:3:4,12:nodrift,memory24,nodrift-memory24",
                    help="MODELS:KS:HOURS[:SETTINGS], comma-separated lists; several such products joined with ';' "
                         f"(settings: {', '.join(SETTINGS)})")
    a = ap.parse_args()
    if not os.path.isdir(NAB):
        print(f"skipping the NAB evaluation: {NAB} is absent")
        return 0
    sys.path.insert(0, NAB)
    import window_metrics  # noqa: E402  (NAB's scorer, from the data directory)

    workdir = tempfile.mkdtemp(prefix="trailwatch-nab-")
    sets = {name: load_set(name) for name in ("aws", "extra")}
    template = json.load(open(os.path.join(HERE, "band-alarm.json")))
    print("shipped definition (eval/nab/band-alarm.json):")
    shipped = {}
    for name, series_list in sets.items():
        r = evaluate(a.binary, window_metrics, template, series_list, a.jobs, workdir)
        shipped[name] = r
        print(f"  {name:5} NAB {r['nab']:5.1f}  windows {r['win_TP']}/{r['windows']}  false alarms {r['FP_events']}")
    seventeen(shipped["aws"]["nab"], shipped["aws"]["windows"], shipped["extra"]["nab"])
    if a.quick:
        return 0

    grid = []
    for part in a.grid.split(";"):
        models, ks, hours, *named = part.split(":")
        for m, k, h, st in itertools.product(models.split(","), ks.split(","), hours.split(","),
                                             (named[0] if named else "default").split(",")):
            if st not in SETTINGS:
                ap.error(f"unknown settings '{st}' in --grid (known: {', '.join(SETTINGS)})")
            candidate = (m if m != "default" else None, float(k), float(h), st)
            if candidate not in grid:
                grid.append(candidate)
    print(f"\ngrid: {len(grid)} candidates, each scored on both sets")
    print(f"  {'candidate':58} {'aws':>6} {'extra':>6}   (windows found, false alarms)")
    results = []
    for model, k, h, st in grid:
        d = candidate_definition(template, model, k, h, settings=st)
        row = {name: evaluate(a.binary, window_metrics, d, s, a.jobs, workdir) for name, s in sets.items()}
        results.append(((model, k, h, st), row))
        print(f"  {describe(model, k, h, st):58} {row['aws']['nab']:6.1f} {row['extra']['nab']:6.1f}   "
              f"aws {row['aws']['win_TP']}/{row['aws']['windows']} {row['aws']['FP_events']}, "
              f"extra {row['extra']['win_TP']}/{row['extra']['windows']} {row['extra']['FP_events']}", flush=True)

    print("\ncross-validation (settings chosen on one set, scored on the other):")
    for chosen_on, scored_on in (("aws", "extra"), ("extra", "aws")):
        best = max(results, key=lambda r: r[1][chosen_on]["nab"])
        candidate, row = best
        print(f"  chosen on {chosen_on:5} -> {describe(*candidate)}: {chosen_on} {row[chosen_on]['nab']:.1f}, "
              f"scored on {scored_on}: {row[scored_on]['nab']:.1f}")
    both = max(results, key=lambda r: r[1]["aws"]["nab"] + r[1]["extra"]["nab"])
    candidate, row = both
    print(f"  best on both   -> {describe(*candidate)}: aws {row['aws']['nab']:.1f}, extra {row['extra']['nab']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
