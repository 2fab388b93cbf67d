#!/usr/bin/env python3
"""Generate CloudTrail delivery files: ordinary background activity plus injected real bursts.

usage:
  gen_cloudtrail.py --out DIR [--days 7] [--seed 42] [--start 2026-11-16T00:00:00Z]
                    [--inject DIR | --no-inject] [--truth FILE] [--no-gzip] [--scale 1.0]
  gen_cloudtrail.py --samples DIR     a small day (a few hundred KB) with a few bursts, for samples/

Background: one account, two regions, ~20 principals calling ~25 APIs with a daily rhythm (busy office hours,
quiet nights, lighter weekends), Poisson arrivals per minute, occasional errors (AccessDenied, Throttling...).
Records have CloudTrail's shape (eventVersion, userIdentity, eventTime, eventSource, eventName, awsRegion,
sourceIPAddress, userAgent, errorCode/errorMessage, requestParameters, responseElements, requestID, eventID,
readOnly, resources, eventType, managementEvent, recipientAccountId, eventCategory).

Injection: the real records under --inject (default <repo>/../shared/data/cloudtrail when it exists):
Stratus Red Team detonation files ({"Records": [...]}) and the OTRF export (one JSON record per line with
`@timestamp`/`@version`, which are dropped). Each source file is shifted, keeping its internal timing, to a
deterministic time after the first day. The ground truth (--truth, default DIR/ground_truth.json) lists every
injection and, as `bursts`, each (eventSource, eventName, minute) where an injection puts at least
BURST_MIN_CALLS calls of one API into one minute: the episodes a rate detector is expected to report.

Output layout follows CloudTrail's key naming:
  DIR/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_YYYYMMDDTHHmmZ_<id>.json.gz
one file per region per 5 minutes (per hour in --samples mode), each {"Records": [...]}.
Deterministic: the same arguments give byte-identical files.
"""

import argparse
import datetime as dt
import glob
import gzip
import json
import math
import os
import random
import sys

ACCOUNT = "111122223333"
REGIONS = ["us-east-1", "us-west-2"]
BURST_MIN_CALLS = 10

# (eventSource, eventName, readOnly, peak calls/minute across the account, error probability, resource type)
APIS = [
    ("sts.amazonaws.com", "AssumeRole", True, 3.0, 0.01, None),
    ("sts.amazonaws.com", "GetCallerIdentity", True, 1.0, 0.0, None),
    ("ec2.amazonaws.com", "DescribeInstances", True, 2.5, 0.005, None),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", True, 0.8, 0.0, None),
    ("ec2.amazonaws.com", "DescribeVolumes", True, 0.5, 0.0, None),
    ("ec2.amazonaws.com", "RunInstances", False, 0.05, 0.05, "AWS::EC2::Instance"),
    ("ec2.amazonaws.com", "TerminateInstances", False, 0.04, 0.02, "AWS::EC2::Instance"),
    ("ec2.amazonaws.com", "CreateTags", False, 0.15, 0.01, "AWS::EC2::Instance"),
    ("s3.amazonaws.com", "ListBuckets", True, 0.6, 0.0, None),
    ("s3.amazonaws.com", "GetBucketPolicy", True, 0.3, 0.2, "AWS::S3::Bucket"),
    ("s3.amazonaws.com", "PutBucketPolicy", False, 0.01, 0.05, "AWS::S3::Bucket"),
    ("iam.amazonaws.com", "ListRoles", True, 0.3, 0.0, None),
    ("iam.amazonaws.com", "GetRole", True, 0.4, 0.02, "AWS::IAM::Role"),
    ("iam.amazonaws.com", "CreateRole", False, 0.01, 0.05, "AWS::IAM::Role"),
    ("iam.amazonaws.com", "AttachRolePolicy", False, 0.01, 0.05, "AWS::IAM::Role"),
    ("kms.amazonaws.com", "Decrypt", True, 2.0, 0.003, "AWS::KMS::Key"),
    ("kms.amazonaws.com", "GenerateDataKey", True, 1.0, 0.003, "AWS::KMS::Key"),
    ("lambda.amazonaws.com", "ListFunctions20150331", True, 0.3, 0.0, None),
    ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", False, 0.02, 0.05, "AWS::Lambda::Function"),
    ("logs.amazonaws.com", "CreateLogStream", False, 0.8, 0.01, None),
    ("logs.amazonaws.com", "DescribeLogGroups", True, 0.4, 0.0, None),
    ("ssm.amazonaws.com", "GetParameter", True, 0.8, 0.03, None),
    ("ssm.amazonaws.com", "UpdateInstanceInformation", False, 1.0, 0.0, None),
    ("secretsmanager.amazonaws.com", "GetSecretValue", True, 0.3, 0.02, None),
    ("cloudtrail.amazonaws.com", "LookupEvents", True, 0.1, 0.05, None),
    ("signin.amazonaws.com", "ConsoleLogin", False, 0.03, 0.1, None),
]
ERRORS = [("AccessDenied", "User is not authorized to perform this operation"),
          ("ThrottlingException", "Rate exceeded"),
          ("ResourceNotFoundException", "The requested resource was not found"),
          ("ValidationException", "1 validation error detected")]
AGENTS = ["aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12",
          "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8",
          "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64",
          "console.amazonaws.com", "terraform/1.7.5 (+https://www.terraform.io)",
          "AWS Internal", "aws-sdk-java/2.25.16 Linux/6.1.0 OpenJDK_64-Bit_Server_VM/17.0.10"]


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s):
    s = s.replace("Z", "+00:00")
    return dt.datetime.fromisoformat(s).timestamp()


def principals(r):
    out = []
    for i in range(8):
        name = ["deploy", "ci-runner", "app-backend", "lambda-exec", "monitoring", "batch", "etl", "ops"][i]
        out.append({"type": "AssumedRole", "principalId": f"AROA{r.randrange(16**12):012X}:{name}-session",
                    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{name}-session",
                    "accountId": ACCOUNT, "accessKeyId": f"ASIA{r.randrange(16**16):016X}",
                    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": f"AROA{i:016d}",
                                                         "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
                                                         "accountId": ACCOUNT, "userName": name},
                                       "attributes": {"creationDate": "2026-11-16T00:00:00Z",
                                                      "mfaAuthenticated": "false"}}})
    for name in ["alice", "bob", "carol", "dave"]:
        out.append({"type": "IAMUser", "principalId": f"AIDA{r.randrange(16**16):016X}",
                    "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "accountId": ACCOUNT,
                    "accessKeyId": f"AKIA{r.randrange(16**16):016X}", "userName": name})
    return out


def rhythm(t):
    """Relative activity at time t: office hours busy, nights quiet, weekends lighter."""
    d = dt.datetime.fromtimestamp(t, dt.timezone.utc)
    hour = d.hour + d.minute / 60
    day_shape = 0.15 + 0.85 * max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.15
    return day_shape * (0.4 if d.weekday() >= 5 else 1.0)


def poisson(r, lam):
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(round(r.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= r.random()
        if p <= limit:
            return k
        k += 1


def background(r, start, days, scale):
    people = principals(r)
    records = []
    for minute in range(days * 1440):
        t0 = start + minute * 60
        level = rhythm(t0) * scale
        for source, name, read_only, peak, error_p, rtype in APIS:
            for _ in range(poisson(r, peak * level)):
                who = people[r.randrange(len(people))]
                region = REGIONS[0] if r.random() < 0.8 else REGIONS[1]
                rec = {
                    "eventVersion": "1.09",
                    "userIdentity": who,
                    "eventTime": iso(t0 + r.randrange(60)),
                    "eventSource": source,
                    "eventName": name,
                    "awsRegion": region,
                    "sourceIPAddress": "AWS Internal" if who["type"] == "AssumedRole" and r.random() < 0.3
                    else f"203.0.113.{r.randrange(1, 255)}",
                    "userAgent": AGENTS[r.randrange(len(AGENTS))],
                    "requestParameters": request_parameters(r, source, name),
                    "responseElements": None,
                    "requestID": f"{r.randrange(16**8):08x}-{r.randrange(16**4):04x}-{r.randrange(16**4):04x}-"
                                 f"{r.randrange(16**4):04x}-{r.randrange(16**12):012x}",
                    "eventID": f"{r.randrange(16**8):08x}-{r.randrange(16**4):04x}-4{r.randrange(16**3):03x}-"
                               f"{r.choice('89ab')}{r.randrange(16**3):03x}-{r.randrange(16**12):012x}",
                    "readOnly": read_only,
                    "eventType": "AwsConsoleSignIn" if source == "signin.amazonaws.com" else "AwsApiCall",
                    "managementEvent": True,
                    "recipientAccountId": ACCOUNT,
                    "eventCategory": "Management",
                }
                if rtype:
                    rec["resources"] = [{"accountId": ACCOUNT, "type": rtype,
                                         "ARN": f"arn:aws:{source.split('.')[0]}:{region}:{ACCOUNT}:"
                                                f"{rtype.split('::')[-1].lower()}/r-{r.randrange(10**6):06d}"}]
                if r.random() < error_p:
                    code, message = ERRORS[r.randrange(len(ERRORS))]
                    rec["errorCode"], rec["errorMessage"] = code, message
                records.append(rec)
    return records


def request_parameters(r, source, name):
    if name.startswith("Describe") or name.startswith("List"):
        return {"maxResults": r.choice([50, 100, 1000])} if r.random() < 0.5 else None
    if source == "sts.amazonaws.com" and name == "AssumeRole":
        return {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/app-{r.randrange(6)}",
                "roleSessionName": f"session-{r.randrange(10**6)}", "durationSeconds": 3600}
    if source == "kms.amazonaws.com":
        return {"encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "keyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{r.randrange(16**8):08x}-0000-4000-8000-000000000000"}
    if source == "ssm.amazonaws.com" and name == "GetParameter":
        return {"name": f"/app/config/{r.choice(['db', 'cache', 'feature-flags'])}", "withDecryption": True}
    if source == "s3.amazonaws.com" and name != "ListBuckets":
        return {"bucketName": f"data-{r.randrange(5)}", "Host": f"data-{r.randrange(5)}.s3.amazonaws.com"}
    return {"name": f"resource-{r.randrange(1000)}"} if r.random() < 0.5 else None


def load_injections(root):
    """[(label, [records])] from the Stratus files and the OTRF export, sorted by file name."""
    out = []
    for path in sorted(glob.glob(os.path.join(root, "stratus_red_team_detonation_logs", "*.json"))):
        with open(path) as f:
            data = json.load(f)
        recs = data["Records"] if isinstance(data, dict) else data
        out.append((os.path.basename(path), recs))
    for path in sorted(glob.glob(os.path.join(root, "otrf_mordor_aws", "*.json"))):
        recs = []
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                ts = rec.pop("@timestamp", None)
                rec.pop("@version", None)
                if "eventTime" not in rec and ts:
                    rec["eventTime"] = ts[:19] + "Z"
                recs.append(rec)
        out.append((os.path.basename(path), recs))
    return out


def place(label, recs, base, truth, records):
    """Shift one injection so that its first record is at `base`, keeping its internal timing; record the truth."""
    times = [parse_iso(x["eventTime"]) for x in recs]
    t_min = min(times)
    shifted = []
    for x, t in zip(recs, times):
        y = dict(x)
        y["eventTime"] = iso(base + (t - t_min))
        shifted.append(y)
    records.extend(shifted)
    truth["injections"].append({"file": label, "records": len(shifted), "start": iso(base),
                                "end": iso(base + max(times) - t_min)})
    per_minute = {}
    for y in shifted:
        k = (y.get("eventSource", ""), y.get("eventName", ""), y["eventTime"][:16])
        per_minute.setdefault(k, []).append(y)
    for (source, name, minute), ys in sorted(per_minute.items()):
        if len(ys) >= BURST_MIN_CALLS:
            truth["bursts"].append({"file": label, "eventSource": source, "eventName": name,
                                    "minute": minute + ":00Z", "calls": len(ys),
                                    "errors": sum(1 for y in ys if y.get("errorCode"))})


def inject(r, injections, start, days):
    """Give each injection its own slot after the first day (the detector's warm-up); return (records, truth)."""
    records, truth = [], {"injections": [], "bursts": [], "burstMinCalls": BURST_MIN_CALLS}
    usable = (days - 1) * 1440
    slot = max(usable // max(len(injections), 1), 1)
    for i, (label, recs) in enumerate(injections):
        if not recs:
            continue
        times = [parse_iso(x["eventTime"]) for x in recs]
        span = (max(times) - min(times)) / 60
        room = max(int(slot - span - 30), 1)
        base = start + (1440 + i * slot + 15 + r.randrange(room)) * 60 + r.randrange(60)
        place(label, recs, base, truth, records)
    return records, truth


def inject_samples(injections, start):
    """Sample day: the chosen injections at 13:07, 15:41 and 18:23 UTC."""
    records, truth = [], {"injections": [], "bursts": [], "burstMinCalls": BURST_MIN_CALLS}
    for (label, recs), minute in zip(injections, [13 * 60 + 7, 15 * 60 + 41, 18 * 60 + 23]):
        place(label, recs, start + minute * 60 + 5, truth, records)
    return records, truth


def write_files(records, out, per_seconds, gzip_files, r):
    by_file = {}
    for rec in records:
        t = parse_iso(rec["eventTime"])
        region = rec.get("awsRegion") or REGIONS[0]
        account = rec.get("recipientAccountId") or ACCOUNT
        bucket = int(t // per_seconds) * per_seconds
        by_file.setdefault((account, region, bucket), []).append((t, rec))
    names = []
    for (account, region, bucket) in sorted(by_file):
        recs = [x for _, x in sorted(by_file[(account, region, bucket)], key=lambda p: (p[0], p[1]["eventID"]))]
        d = dt.datetime.fromtimestamp(bucket + per_seconds, dt.timezone.utc)
        unique = "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(16))
        rel = os.path.join("AWSLogs", account, "CloudTrail", region, d.strftime("%Y"), d.strftime("%m"),
                           d.strftime("%d"),
                           f"{account}_CloudTrail_{region}_{d.strftime('%Y%m%dT%H%MZ')}_{unique}.json"
                           + (".gz" if gzip_files else ""))
        path = os.path.join(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        body = json.dumps({"Records": recs}, separators=(",", ":"), sort_keys=True).encode()
        if gzip_files:
            with open(path, "wb") as f:
                f.write(gzip.compress(body, mtime=0))
        else:
            with open(path, "wb") as f:
                f.write(body)
        names.append(rel)
    return names


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_inject = os.path.join(here, "..", "..", "shared", "data", "cloudtrail")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--samples", metavar="DIR")
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--start", default="2026-11-16T00:00:00Z")
    ap.add_argument("--inject", default=default_inject)
    ap.add_argument("--no-inject", action="store_true")
    ap.add_argument("--truth")
    ap.add_argument("--no-gzip", action="store_true")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every background rate")
    a = ap.parse_args()
    r = random.Random(a.seed)
    start = parse_iso(a.start)
    samples = a.samples is not None
    out = a.samples if samples else a.out
    if not out:
        ap.error("need --out DIR or --samples DIR")
    days, scale, per_seconds = (1, 0.06, 3600) if samples else (a.days, a.scale, 300)
    records = background(r, start, days, scale)
    truth = {"injections": [], "bursts": [], "burstMinCalls": BURST_MIN_CALLS}
    if not a.no_inject and os.path.isdir(a.inject):
        injections = load_injections(a.inject)
        if samples:
            keep = ("aws.credential-access.ec2-get-password-data.json",
                    "aws.credential-access.secretsmanager-retrieve-secrets.json",
                    "aws.execution.ssm-send-command.json")
            injections = [x for x in injections if x[0] in keep]
            # Bursts in the afternoon of the sample day, after the detector's warm-up.
            inj, truth = inject_samples(injections, start)
        else:
            inj, truth = inject(r, injections, start, days)
        records.extend(inj)
    elif not a.no_inject:
        print(f"note: {a.inject} not found; background only", file=sys.stderr)
    truth.update({"start": iso(start), "days": days, "seed": a.seed, "backgroundRecords": len(records)
                  - sum(x["records"] for x in truth["injections"]), "totalRecords": len(records)})
    names = write_files(records, out, per_seconds, not a.no_gzip, r)
    truth["files"] = len(names)
    truth_path = a.truth or os.path.join(out, "ground_truth.json")
    with open(truth_path, "w") as f:
        json.dump(truth, f, indent=1, sort_keys=True)
    print(f"{len(records)} records in {len(names)} files under {out}; "
          f"{len(truth['injections'])} injections, {len(truth['bursts'])} bursts; truth: {truth_path}")


if __name__ == "__main__":
    main()
