#!/usr/bin/env python3
"""Throughput benchmarks for trailwatch's data paths (`make bench`).

Runs each scenario over the 5M-line file from ../shared/bench/genlog.py (≈647 MB) and reports
wall seconds, CPU seconds, peak RSS, lines/s and MB/s, next to `zstd -3 -T1` on the same file as a
yardstick. Results also go to bench/out/results.json.

usage: bench/run.py [--binary PATH] [--lines N] [--only NAME[,NAME]] [--repeat N]
       (--only sqlite-ingest also runs the Logs Insights query scenarios over the store it writes)
"""
import argparse, glob, json, os, shutil, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "out")
GENLOG = os.path.join(os.path.dirname(ROOT), "shared", "bench", "genlog.py")


def measure(argv, stdin_path=None, stdout_path=None):
    """Runs argv; returns (wall s, cpu s, peak RSS MiB, exit status)."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    stdout = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace")
    if status != 0:
        sys.stderr.write(err)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def cloudtrail_lines():
    """5M CloudTrail-shaped records as JSON lines (bench/gen_cloudtrail_lines.py), made once."""
    return os.path.join(OUT, "cloudtrail-5000000.jsonl")


def ensure_cloudtrail_lines():
    path = cloudtrail_lines()
    if not os.path.exists(path):
        print(f"generating {path} ...", flush=True)
        subprocess.check_call([sys.executable, os.path.join(ROOT, "bench", "gen_cloudtrail_lines.py"), "5000000", path + ".tmp"])
        os.rename(path + ".tmp", path)


def scenarios(log):
    """name → (pipeline yaml, stdin file or None, output file, expected output lines or None)."""
    out = lambda name: os.path.join(OUT, name)
    return {
        "file-filter-file": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
transforms:
  errors: {{ type: filter, inputs: [app], contains: ERROR }}
sinks:
  out: {{ type: file, inputs: [errors], path: "{out('file-filter-file.log')}", format: raw }}
""", None, out("file-filter-file.log"), 100049),
        # CloudWatch Logs data protection with five managed identifiers; 40% of the lines carry an IP address.
        "file-mask-file": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
transforms:
  pii:
    type: mask
    inputs: [app]
    policy:
      Version: "2021-06-01"
      Statement:
        - DataIdentifier:
            - arn:aws:dataprotection::aws:data-identifier/EmailAddress
            - arn:aws:dataprotection::aws:data-identifier/CreditCardNumber
            - arn:aws:dataprotection::aws:data-identifier/IpAddress
            - arn:aws:dataprotection::aws:data-identifier/AwsSecretKey
            - arn:aws:dataprotection::aws:data-identifier/Ssn-US
          Operation: {{ Audit: {{ FindingsDestination: {{}} }} }}
        - DataIdentifier:
            - arn:aws:dataprotection::aws:data-identifier/EmailAddress
            - arn:aws:dataprotection::aws:data-identifier/CreditCardNumber
            - arn:aws:dataprotection::aws:data-identifier/IpAddress
            - arn:aws:dataprotection::aws:data-identifier/AwsSecretKey
            - arn:aws:dataprotection::aws:data-identifier/Ssn-US
          Operation: {{ Deidentify: {{ MaskConfig: {{}} }} }}
sinks:
  out: {{ type: file, inputs: [pii], path: "{out('file-mask-file.log')}", format: raw }}
  counts: {{ type: file, inputs: [pii.metrics], path: "{out('file-mask-metrics.jsonl')}" }}
""", None, out("file-mask-file.log"), 5000000),
        "stdin-file": (f"""
sources:
  app: {{ type: stdin }}
sinks:
  out: {{ type: file, inputs: [app], path: "{out('stdin-file.log')}", format: raw }}
""", log, out("stdin-file.log"), None),
        "metric-filter-json": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
transforms:
  slow:
    type: metric_filter
    inputs: [app]
    pattern: '{{ $.latency_ms > 100 && $.level = "INFO" }}'
    metric_namespace: Bench
    metric_name: SlowInfo
    metric_value: $.latency_ms
sinks:
  out: {{ type: file, inputs: [slow], path: "{out('metric-filter-json.json')}" }}
""", None, out("metric-filter-json.json"), None),
        "filter-pattern-terms": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
transforms:
  errors: {{ type: filter, inputs: [app], pattern: 'ERROR -timeout' }}
sinks:
  out: {{ type: file, inputs: [errors], path: "{out('filter-pattern-terms.log')}", format: raw }}
""", None, out("filter-pattern-terms.log"), None),
        # Regular expressions (the linear-time engine): one answered by the lazy DFA alone, one with a
        # literal the batch is searched for first, one anchored with classes. Counts agree with grep -cE.
        "filter-regex": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
transforms:
  hits: {{ type: filter, inputs: [app], regex: '[Tt]imeout|[Uu]pstream returned 5' }}
sinks:
  out: {{ type: file, inputs: [hits], path: "{out('filter-regex.log')}", format: raw }}
""", None, out("filter-regex.log"), 24962 if log.endswith("-5000000.log") else None),
        "filter-regex-literal": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
transforms:
  slow: {{ type: filter, inputs: [app], regex: 'latency_ms":[0-9]{{3,}}' }}
sinks:
  out: {{ type: file, inputs: [slow], path: "{out('filter-regex-literal.log')}", format: raw }}
""", None, out("filter-regex-literal.log"), 57473 if log.endswith("-5000000.log") else None),
        "filter-regex-anchored": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
transforms:
  api: {{ type: filter, inputs: [app], regex: '^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+ - user[0-9]+ .*"GET /api/' }}
sinks:
  out: {{ type: file, inputs: [api], path: "{out('filter-regex-anchored.log')}", format: raw }}
""", None, out("filter-regex-anchored.log"), 499466 if log.endswith("-5000000.log") else None),
        "file-archive": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
sinks:
  arch: {{ type: archive, inputs: [app], directory: "{out('archive')}", level: 3, host: bench }}
""", None, None, None),
        "archive-replay": (f"""
sources:
  old: {{ type: archive, include: ["{out('archive')}/**/*.jsonl.zst"] }}
sinks:
  out: {{ type: console, inputs: [old], format: text }}
""", None, None, None),
        "patterns": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
transforms:
  mined: {{ type: patterns, inputs: [app] }}
sinks:
  out: {{ type: console, inputs: [mined], format: text }}
""", None, None, None),
        "insights-cloudtrail": (f"""
sources:
  trail: {{ type: file, include: ["{cloudtrail_lines()}"] }}
transforms:
  found: {{ type: insights, inputs: [trail] }}
sinks:
  out: {{ type: file, inputs: [found], path: "{out('insights.json')}" }}
""", None, None, None),
        "rules-cloudtrail": (f"""
sources:
  trail: {{ type: file, include: ["{cloudtrail_lines()}"] }}
transforms:
  rules:
    type: rule
    inputs: [trail]
    rules:
{bench_rules()}
sinks:
  matched: {{ type: file, inputs: [rules], path: "{out('rules-matched.log')}", format: raw }}
  hits: {{ type: file, inputs: [{", ".join(f"rules.r{i:03d}" for i in range(100))}], path: "{out('rules-hits.jsonl')}" }}
""", None, None, None),
        "file-archive-encrypted": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
sinks:
  arch: {{ type: archive, inputs: [app], directory: "{out('archive-encrypted')}", level: 3, host: bench, encryption: {{ key_env: BENCH_ARCHIVE_KEY }} }}
""", None, None, None),
        "sqlite-ingest": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
sinks:
  db: {{ type: sqlite, inputs: [app], path: "{out('store.db')}" }}
""", None, None, None),
        "alarm-latency": (f"""
sources:
  app: {{ type: file, include: ["{log}"], timestamp: {{ field: $.timestamp, on_error: previous }} }}
transforms:
  latency:
    type: metric_filter
    inputs: [app]
    pattern: '{{ $.latency_ms >= 0 }}'
    metric_namespace: Bench
    metric_name: Latency
    metric_value: $.latency_ms
    dimensions: {{ EndpointName: $.endpoint }}
    period: 1m
  slow:
    type: alarm
    inputs: [latency]
    definition:
{band_alarms()}
sinks:
  page: {{ type: notifier, inputs: [slow], console: true }}
  bands: {{ type: file, inputs: [slow.bands], path: "{out('alarm-bands.json')}" }}
""", None, None, None),
        "file-json-file": (f"""
sources:
  app: {{ type: file, include: ["{log}"] }}
sinks:
  out: {{ type: file, inputs: [app], path: "{out('file-json-file.log')}", format: json }}
""", None, out("file-json-file.log"), None),
    }


def bench_rules():
    """100 EventBridge rules over the CloudTrail-shaped records of gen_cloudtrail_lines.py, as a YAML
    mapping. Like real security rules, each watches its own rare combination (a user, a network, an
    API): about 4% of the records match one rule; a fifth of the rules look at every EC2 call."""
    out = []
    for i in range(100):
        kind, user = i % 5, f"arn:aws:iam::111122223333:user/user{(i // 5) % 20}"
        if kind == 0:
            pattern = {"source": ["aws.iam"], "detail": {"eventName": ["CreateAccessKey", f"DeleteUser{i}"],
                       "errorCode": [{"exists": True}], "userIdentity": {"arn": [user]}}}
        elif kind == 1:
            pattern = {"detail": {"errorCode": [{"prefix": "AccessDenied"}], "eventSource": ["s3.amazonaws.com"],
                                  "eventName": [["GetObject", "PutObject", "ListBuckets", "HeadObject"][i % 4]],
                                  "awsRegion": [{"anything-but": "us-east-1"}], "userIdentity": {"arn": [user]}}}
        elif kind == 2:
            pattern = {"detail-type": ["AWS API Call via CloudTrail"], "detail": {"eventName": [f"Rare{i}", f"Rarer{i}"]}}
        elif kind == 3:
            pattern = {"detail": {"eventSource": ["kms.amazonaws.com", "ssm.amazonaws.com"], "sourceIPAddress": [{"cidr": f"10.0.{i}.0/24"}]}}
        else:
            pattern = {"source": ["aws.ec2"], "detail": {"userIdentity": {"arn": [user]}},
                       "$or": [{"detail": {"eventName": [{"prefix": "Stop"}], "userAgent": [{"wildcard": "terraform/*"}]}},
                               {"detail": {"errorCode": [{"exists": True}], "userAgent": [{"equals-ignore-case": "CONSOLE.amazonaws.com"}]}}]}
        out.append(f"      r{i:03d}: {{ event_pattern: '{json.dumps(pattern)}' }}")
    return "\n".join(out)


def band_alarms():
    """One anomaly-band alarm per endpoint of the generated log, as a YAML list."""
    out = []
    for n in range(8):
        out.append(f"""      - AlarmName: SlowEndpoint{n}
        Metrics:
          - {{ Id: m1, MetricStat: {{ Metric: {{ Namespace: Bench, MetricName: Latency, Dimensions: [{{ Name: EndpointName, Value: ep-{n} }}] }}, Period: 60, Stat: p90 }} }}
          - {{ Id: band, Expression: "ANOMALY_DETECTION_BAND(m1, 3)" }}
        ThresholdMetricId: band
        ComparisonOperator: GreaterThanUpperThreshold
        EvaluationPeriods: 3
        DatapointsToAlarm: 2""")
    return "\n".join(out)


def band_backtest(binary, results):
    """The anomaly-band alarm over a year of five-minute datapoints (105,120) from a CSV."""
    import math, random
    series = os.path.join(OUT, "band-year.csv")
    if not os.path.exists(series):
        rng = random.Random(1)
        start = 1735689600  # 2025-01-01T00:00:00Z
        with open(series, "w") as f:
            f.write("timestamp,value\n")
            for i in range(105120):
                value = 100 + 20 * math.sin(2 * math.pi * (i % 288) / 288) + rng.gauss(0, 3) + (100 if i % 10000 == 5000 else 0)
                f.write(f"{start + 300 * i},{value:.3f}\n")
    definition = os.path.join(ROOT, "eval", "nab", "band-alarm.json")
    wall, cpu, rss, status = measure([binary, "backtest", definition, "--metrics", series, "--format", "json"])
    results.append(dict(name="band-backtest", wall_s=round(wall, 3), cpu_s=round(cpu, 3), peak_rss_mib=round(rss, 1),
                        datapoints_per_s=round(105120 / wall), ok=status == 0))
    print(f"{'band-backtest':<22} {wall:7.2f} s wall {cpu:7.2f} s CPU {rss:7.1f} MiB RSS "
          f"{105120 / wall / 1e3:6.1f} k datapoints/s (a year of 5-minute datapoints, hourly refits)  {'ok' if status == 0 else 'FAILED'}", flush=True)


def archive_ratio_note():
    """Compressed size of the archive against the zstd CLI (-3 -T1) compressing the very same
    JSON-lines stream, so the ratio compares like with like."""
    root = os.path.join(OUT, "archive")
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".jsonl.zst")]
    ours = sum(os.path.getsize(f) for f in files)
    plain = os.path.join(OUT, "archive.jsonl")
    with open(plain, "wb") as out:
        for f in sorted(files):
            subprocess.check_call(["zstd", "-dc", "-q", f], stdout=out)
    raw = os.path.getsize(plain)
    start = time.monotonic()
    ref = int(subprocess.run(["sh", "-c", f"zstd -3 -T1 -q -c '{plain}' | wc -c"], capture_output=True, text=True).stdout)
    ref_time = time.monotonic() - start
    os.remove(plain)
    return (f"{len(files)} files, {ours / 1e6:.1f} MB (ratio {raw / ours:.2f}); zstd -3 -T1 on the same {raw / 1e6:.0f} MB "
            f"of records: {ref / 1e6:.1f} MB (ratio {raw / ref:.2f}) in {ref_time:.2f} s")


def query_note(binary):
    """`stats count(*) by bin(5m)` over the stored events against the same aggregation written by
    hand in the sqlite3 shell."""
    store = os.path.join(OUT, "store.db")
    ours = measure([binary, "query", store, "stats count(*) by bin(5m)"])
    ref = measure(["sqlite3", store, "select (timestamp/300000)*300000 as b, count(*) from log_events group by b;"]) \
        if shutil.which("sqlite3") else None
    text = f"query bin(5m): {ours[0]:.2f} s, {ours[2]:.0f} MiB"
    if ref:
        text += f"; sqlite3 shell: {ref[0]:.2f} s ({ours[0] / ref[0]:.2f}x)"
    newest = measure([binary, "query", store, "fields @timestamp, @message | sort @timestamp desc | limit 20"])
    text += f"; newest 20: {newest[0]:.2f} s"
    return text + "; " + dashboard_note(binary, store)


def query_scenarios(binary, results, lines):
    """Logs Insights queries over the 5M stored events: JSON fields discovered by the byte scanner,
    with the leading filter's scan hint, and without any hint (every row scanned and discovered).
    Reports rows/s, CPU s, peak RSS and the machine load (these numbers move with it)."""
    store = os.path.join(OUT, "store.db")
    queries = [
        ("query-json-filter", 'filter level = "ERROR" | stats count(*) by service'),
        ("query-json-scan", 'stats count(*) by level'),
        ("query-json-or", 'filter level = "ERROR" or level = "FATAL" | stats count(*) by service'),
    ]
    for name, text in queries:
        load = os.getloadavg()[0]
        wall, cpu, rss, status = measure([binary, "query", store, text, "--timeout", "10m"])
        results.append(dict(name=name, query=text, wall_s=round(wall, 3), cpu_s=round(cpu, 3), peak_rss_mib=round(rss, 1),
                            rows_per_s=round(lines / wall), rows_per_cpu_s=round(lines / cpu), load=round(load, 2), ok=status == 0))
        print(f"{name:<22} {wall:7.2f} s wall {cpu:7.2f} s CPU {rss:7.1f} MiB RSS "
              f"{lines / wall / 1e6:6.2f} M rows/s ({lines / cpu / 1e6:.2f} M rows per CPU s, load {load:.1f})  "
              f"{'ok' if status == 0 else 'FAILED'}  {text}", flush=True)


def dashboard_note(binary, store):
    """How long the default dashboard page over the stored events takes to serve."""
    import urllib.request
    server = subprocess.Popen([binary, "dashboard", store, "--listen", "127.0.0.1:0"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        line = server.stderr.readline().decode()
        port = line.split("http://127.0.0.1:")[1].split("/")[0]
        timings = []
        for _ in range(3):
            start = time.monotonic()
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120).read()
            timings.append(time.monotonic() - start)
        return f"dashboard page: {min(timings):.2f} s ({len(body) // 1024} KiB)"
    finally:
        server.terminate()
        server.wait()


class PostgresCluster:
    """A throw-away PostgreSQL cluster for the store benchmarks (initdb + pg_ctl on a free loopback
    port; as root it runs as the `postgres` user). Durable settings as a server would have them."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            raise RuntimeError("no /usr/lib/postgresql/*/bin/pg_ctl (apt-get install postgresql)")
        self.bin = os.path.dirname(bins[-1])
        self.dir = tempfile.mkdtemp(prefix="trailwatch-bench-pg-")  # not trailwatch-pg-*: stop-test-clusters.sh stops those
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self._run("initdb", "-D", self.dir + "/data", "-U", "trailwatch", "--auth=trust", "--locale=C", "-E", "UTF8")
        self._run("pg_ctl", "-D", self.dir + "/data", "-l", self.dir + "/server.log", "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_wal_size=8GB "
                  "-c min_wal_size=4GB -c checkpoint_timeout=30min -c wal_compression=lz4 -c wal_buffers=64MB", "start")
        self.warm_wal()

    def warm_wal(self):
        """Makes the cluster's WAL what a server that has been taking writes has: segments that
        checkpoints recycle (`min_wal_size` keeps 4 GB of them), not new ones. A new cluster has
        none, and PostgreSQL zero-fills every new 16 MB segment in the backend that needs it: a
        fifth of an ingesting backend's time in `perf`, which a running server does not pay."""
        self.psql("CREATE TABLE warm_wal AS SELECT g, repeat('w', 400) AS filler FROM generate_series(1, 6000000) AS g")
        self.psql("DROP TABLE warm_wal")
        self.psql("CHECKPOINT")

    def _run(self, tool, *args):
        argv = [os.path.join(self.bin, tool), *args]
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.check_call(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def psql(self, sql, db="postgres"):
        return subprocess.check_output([os.path.join(self.bin, "psql"), "-h", self.dir, "-p", str(self.port), "-U", "trailwatch",
                                        "-d", db, "-X", "-A", "-t", "-c", sql], text=True)

    def database(self, name):
        self.psql(f"DROP DATABASE IF EXISTS {name}")
        self.psql(f"CREATE DATABASE {name}")
        return f"postgres://trailwatch@127.0.0.1:{self.port}/{name}?sslmode=disable"

    def settle(self):
        """Vacuums the databases earlier scenarios filled, so that autovacuum's work on them is not
        counted (CPU seconds, and cores taken) against the next scenario; what a scenario's own
        writes make autovacuum do is still counted."""
        for db in self.psql("SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'").split():
            self.psql("VACUUM", db=db)
        # Each scenario starts after a checkpoint, with the WAL segments the last one wrote
        # recycled (a checkpoint's full-page images then count against the scenario, as they would).
        self.psql("CHECKPOINT")

    def server_cpu_after(self, db):
        """The cluster's CPU seconds once the backends serving `db` have ended (an ended backend's
        CPU is counted when the postmaster has reaped it; the row count after is not counted)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and int(self.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}'").strip() or 0) > 0:
            time.sleep(0.05)
        time.sleep(0.2)
        return server_cpu_s(self)

    def stop(self):
        try:
            self._run("pg_ctl", "-D", self.dir + "/data", "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def server_cpu_s(cluster):
    """CPU seconds the cluster's processes have used so far: the postmaster with the backends it
    has reaped, and its live children (walwriter, checkpointer, backends still running)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open(os.path.join(cluster.dir, "data", "postmaster.pid")) as f:
        postmaster = f.readline().strip()
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if pid == postmaster:
            total += sum(int(x) for x in fields[11:15]) / tick
        elif fields[1] == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def postgres_bench(binary, log, lines, size_mb, report):
    """The store sink into PostgreSQL: one instance, two at once (each half of the input), the
    same input again (every event a replay, merged through staging), the staging path alone on
    new events, and `stats count(*) by bin(5m)` against the same SQL in psql. The server's CPU
    seconds per million events are the figure that holds under load."""
    try:
        cluster = PostgresCluster()
    except Exception as e:  # noqa: BLE001 - report and go on with the other benchmarks
        print(f"postgres-ingest        skipped: {e}")
        return
    try:
        def ingest(name, inputs, method="copy-first", fresh=True, source_settings=""):
            url = cluster.database(name) if fresh else f"postgres://trailwatch@127.0.0.1:{cluster.port}/{name}?sslmode=disable"
            procs = []
            for k, path in enumerate(inputs):
                pipeline = os.path.join(OUT, f"{name}-{k}.yaml")
                state = os.path.join(OUT, f"pg-state-{name}-{k}")
                shutil.rmtree(state, ignore_errors=True)
                with open(pipeline, "w") as f:
                    f.write(f"""
data_dir: "{state}"
sources:
  app: {{ type: file, include: ["{path}"]{source_settings} }}
sinks:
  db: {{ type: store, inputs: [app], url: "{url}", instance: bench-{k} }}
""")
                procs.append([binary, "run", pipeline, "--once", "--quiet"])
            env = dict(os.environ, TRAILWATCH_PG_INGEST=method)
            stored_before = 0 if fresh else int(cluster.psql("SELECT count(*) FROM log_events", db=name).strip() or 0)
            cluster.settle()
            before = server_cpu_s(cluster)
            start = time.monotonic()
            running = [subprocess.Popen(p, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for p in procs]
            usage = [os.wait4(p.pid, 0) for p in running]
            wall = time.monotonic() - start
            ok = all(os.waitstatus_to_exitcode(u[1]) == 0 for u in usage)
            if not ok:
                for p in running:
                    sys.stderr.write(p.stderr.read().decode(errors="replace"))
            cpu = sum(u[2].ru_utime + u[2].ru_stime for u in usage)
            rss = max(u[2].ru_maxrss for u in usage) / 1024.0
            server = cluster.server_cpu_after(name) - before
            stored = int(cluster.psql("SELECT count(*) FROM log_events", db=name).strip() or 0)
            expected = sum(count_lines(path) for path in inputs) if fresh else stored_before
            return url, wall, cpu, rss, ok and stored == expected, server, stored

        def per_million(server_s):
            return f"server {server_s:.1f} CPU s = {server_s / lines * 1e6:.2f} CPU s per million events"

        # One instance and two at once (each with half of the lines), three times in turn: on a
        # shared virtual machine either figure varies by a tenth from run to run, so the medians
        # are reported and their ratio, with every run's figures.
        halves = [os.path.join(OUT, f"half-{k}.log") for k in range(2)]
        if not all(os.path.exists(h) for h in halves):
            with open(log, "rb") as f, open(halves[0], "wb") as a, open(halves[1], "wb") as b:
                for n, line in enumerate(f):
                    (a if n < lines // 2 else b).write(line)
        ones, twos = [], []
        for _ in range(3):
            ones.append(ingest("bench_one", [log]))
            twos.append(ingest("bench_two", halves))
        median = lambda runs: sorted(runs, key=lambda r: r[1])[len(runs) // 2]
        url, wall, cpu, rss, ok, server, stored = median(ones)
        one = lines / wall
        report("postgres-ingest", wall, cpu, rss, ok and all(r[4] for r in ones),
               f"{one / 1e3:.0f} k events/s (median of {', '.join(f'{r[1]:.2f}' for r in ones)} s); {per_million(server)}; {stored} rows")
        _, wall2, cpu2, rss2, ok2, server2, _ = median(twos)
        report("postgres-ingest x2", wall2, cpu2, rss2, ok2 and all(r[4] for r in twos),
               f"{lines / wall2 / 1e3:.0f} k events/s together = {wall / wall2:.2f}x one instance (medians; each pair: "
               f"{', '.join(f'{o[1] / t[1]:.2f}' for o, t in zip(ones, twos))}; runs {', '.join(f'{r[1]:.2f}' for r in twos)} s); {per_million(server2)}")
        # A replay: the first million lines with their own times (read times would make new
        # events), loaded, then read again. Every batch meets stored events, rolls back its COPY
        # and merges through staging with ON CONFLICT DO NOTHING; nothing may be added.
        part = os.path.join(OUT, "replay-1000000.log")
        if not os.path.exists(part):
            with open(log, "rb") as f, open(part, "wb") as out:
                for n, line in enumerate(f):
                    if n == 1_000_000:
                        break
                    out.write(line)
        times = (", timestamp: { regex: '(\\d{4}-\\d\\d-\\d\\d[T ][0-9:.,]+Z?|\\d\\d/[A-Za-z]{3}/\\d{4}:\\d\\d:\\d\\d:\\d\\d [+-]\\d{4})', "
                 "formats: [rfc3339, '%Y-%m-%d %H:%M:%S,%f', '%d/%b/%Y:%H:%M:%S %z'] }")
        replayed = count_lines(part)
        ingest("bench_replay", [part], source_settings=times)
        _, wall3, cpu3, rss3, ok3, server3, _ = ingest("bench_replay", [part], fresh=False, source_settings=times)
        report("postgres-ingest replay", wall3, cpu3, rss3, ok3,
               f"{replayed} events with their own times read again, none added: server {server3:.1f} CPU s = {server3 / replayed * 1e6:.2f} CPU s per million",
               part=replayed / lines)
        # The staging path alone on new events (TRAILWATCH_PG_INGEST=on-conflict), for comparison.
        _, wall4, cpu4, rss4, ok4, server4, _ = ingest("bench_staging", [log], method="on-conflict")
        report("postgres-ingest staging", wall4, cpu4, rss4, ok4,
               f"staging + ON CONFLICT for every batch: {lines / wall4 / 1e3:.0f} k events/s; {per_million(server4)}")
        # Best of two each, the hand-written SQL first (its first run also sets the rows' hint bits).
        ref = float("inf")
        for _ in range(2):
            ref_start = time.monotonic()
            cluster.psql("SELECT timestamp - mod(timestamp, 300000) AS b, count(*) FROM log_events GROUP BY 1 ORDER BY 1", db="bench_one")
            ref = min(ref, time.monotonic() - ref_start)
        q = min((measure([binary, "query", url, "stats count(*) by bin(5m)"]) for _ in range(2)), key=lambda m: m[0])
        report("postgres-query bin(5m)", q[0], q[1], q[2], q[3] == 0, f"{q[0] / ref:.2f}x the hand-written SQL in psql ({ref:.2f} s)")
        newest = measure([binary, "query", url, "fields @timestamp, @message | sort @timestamp desc | limit 20"])
        report("postgres-query newest", newest[0], newest[1], newest[2], newest[3] == 0, "newest 20 by the (timestamp, event_key) index")
    finally:
        cluster.stop()


def vm_hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def tail_follow(binary, log, lines, fraction, report_tail):
    """Live mode: a writer appends the input to a file at full speed while trailwatch follows it
    into a raw file sink; reports lines/s until the output holds every byte, CPU and peak RSS.
    Run at 1/10 and the full size: peak RSS must not grow with the file."""
    work = os.path.join(OUT, "tail")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    src, out = os.path.join(work, "app.log"), os.path.join(work, "out.log")
    open(src, "wb").close()
    pipeline = os.path.join(work, "tail.yaml")
    with open(pipeline, "w") as f:
        f.write(f"""
data_dir: {work}/state
sources:
  app: {{ type: file, include: ["{src}"] }}
sinks:
  out: {{ type: file, inputs: [app], path: "{out}", format: raw, sync_interval: 1s }}
""")
    proc = subprocess.Popen([binary, "run", pipeline, "--quiet"], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    start = time.monotonic()
    total = 0
    with open(log, "rb") as reader, open(src, "ab", buffering=0) as writer:
        remaining = None
        while True:
            chunk = reader.read(1 << 22)
            if not chunk:
                break
            if fraction > 1:
                cut = chunk.count(b"\n")
                remaining = (lines if remaining is None else remaining)
                if cut >= remaining:
                    idx = -1
                    for _ in range(remaining):
                        idx = chunk.index(b"\n", idx + 1)
                    chunk = chunk[: idx + 1]
                    remaining = 0
                else:
                    remaining -= cut
            writer.write(chunk)
            total += len(chunk)
            if remaining == 0:
                break
    written = time.monotonic() - start
    while (os.path.getsize(out) if os.path.exists(out) else 0) < total:
        time.sleep(0.01)
        if time.monotonic() - start > 600:
            break
    wall = time.monotonic() - start
    rss = vm_hwm_mib(proc.pid)
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    proc.terminate()
    proc.wait()
    ok = os.path.getsize(out) == total
    name = f"tail-follow 1/{fraction}" if fraction > 1 else "tail-follow"
    report_tail.append(dict(name=name, wall_s=round(wall, 3), cpu_s=round(cpu, 3), peak_rss_mib=round(rss, 1),
                            lines_per_s=round(lines / wall), mb_per_s=round(total / 1e6 / wall, 1), ok=ok,
                            note=f"writer finished after {written:.2f} s"))
    print(f"{name:<22} {wall:7.2f} s wall {cpu:7.2f} s CPU {rss:7.1f} MiB RSS "
          f"{lines / wall / 1e6:6.2f} M lines/s {total / 1e6 / wall:8.1f} MB/s  {'ok' if ok else 'FAILED'} "
          f"(writer done after {written:.2f} s)", flush=True)


def checkpoint_load(binary, report_to, files=10_000):
    """Restart with many remembered files: a file source over `files` small files, each read to its
    end and closed as idle, is stopped and started again. Reports how long loading the positions
    took (the source logs it) and how long until a line appended after the restart arrived, and
    that nothing was read twice."""
    work = os.path.join(OUT, "positions")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "logs"))
    for i in range(files):
        with open(os.path.join(work, "logs", f"f{i:05d}.log"), "w") as f:
            f.write(f"file {i} line 0 " + "x" * 40 + "\n")
    out = os.path.join(work, "out.log")
    pipeline = os.path.join(work, "p.yaml")
    with open(pipeline, "w") as f:
        f.write(f"""
data_dir: {work}/state
sources:
  app: {{ type: file, include: ["{work}/logs/*.log"], close_idle: 10ms, checkpoint_interval: 100ms }}
sinks:
  out: {{ type: file, inputs: [app], path: "{out}", format: raw, sync_interval: 50ms }}
""")
    def run_until(lines, stderr_path):
        proc = subprocess.Popen([binary, "run", pipeline, "--quiet"], stderr=open(stderr_path, "w"))
        start = time.monotonic()
        while (count_lines(out) if os.path.exists(out) else 0) < lines and time.monotonic() - start < 300:
            time.sleep(0.01)
        return proc, time.monotonic() - start
    proc, _ = run_until(files, os.path.join(work, "first.log"))
    time.sleep(1.5)  # idle files closed and remembered, positions written
    proc.send_signal(15)
    proc.wait()
    started = time.monotonic()
    proc = subprocess.Popen([binary, "run", pipeline, "--quiet"], stderr=open(os.path.join(work, "second.log"), "w"))
    with open(os.path.join(work, "logs", f"f{files // 2:05d}.log"), "a") as f:
        f.write("appended after the restart\n")
    while count_lines(out) < files + 1 and time.monotonic() - started < 300:
        time.sleep(0.005)
    first_line = time.monotonic() - started
    rss = vm_hwm_mib(proc.pid)
    proc.send_signal(15)
    proc.wait()
    loaded = loaded_cpu = None
    for line in open(os.path.join(work, "second.log")):
        if "file positions in" in line:
            loaded = float(line.split(" in ")[-1].split(" ms")[0])
            loaded_cpu = float(line.split("(")[-1].split(" ms CPU")[0])
    got = count_lines(out)
    ok = loaded is not None and got == files + 1
    report_to.append(dict(name="checkpoint load", wall_s=round(first_line, 3), cpu_s=None, peak_rss_mib=round(rss, 1),
                          lines_per_s=None, mb_per_s=None, ok=ok,
                          note=f"{files} remembered files: positions loaded in {loaded} ms ({loaded_cpu} ms CPU); first new line shipped {first_line:.2f} s after the restart; {got - files - 1} lines read twice"))
    print(f"{'checkpoint load':<22} positions of {files} files loaded in {loaded} ms ({loaded_cpu} ms CPU); a new line shipped {first_line:.2f} s after the restart "
          f"(peak RSS {rss:.1f} MiB); {got - files - 1} lines read twice  {'ok' if ok else 'FAILED'}", flush=True)



def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


BENCH_KEY = ("AKIDBENCHMARK", "bench/secret+key")


def start_aggregator(binary, work, port, sink_yaml):
    """trailwatch with the CloudWatch Logs API on 127.0.0.1:PORT into `sink_yaml`; waits until it listens."""
    pipeline = os.path.join(work, "aggregator.yaml")
    with open(pipeline, "w") as f:
        f.write(f"""
data_dir: {work}/aggregator-state
http: {{ listen: "127.0.0.1:{port}", access_key_id_env: TW_KEY_ID, secret_access_key_env: TW_SECRET }}
sources:
  api: {{ type: cloudwatch_logs_api, max_pending_batches: 64 }}
sinks:
{sink_yaml}
""")
    env = dict(os.environ, TW_KEY_ID=BENCH_KEY[0], TW_SECRET=BENCH_KEY[1])
    proc = subprocess.Popen([binary, "run", pipeline, "--quiet"], stderr=subprocess.PIPE, env=env)
    for line in proc.stderr:
        if b"serving " in line:
            break
    threading_drain(proc.stderr)
    return proc


def threading_drain(stream):
    import threading
    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()


def api_put_log_events(binary, results, requests=500, connections=16):
    """PutLogEvents over loopback: 1 MB batches of 10,000 ~100-byte events, SigV4 verified, into a
    file sink (default settings: batches a client waits for are fsynced at once, in groups); the
    load generator (bench/putlogevents_load.py, asyncio, keep-alive) runs on the same machine.
    Reports events/s, p50/p90/p99 acknowledgement latency, server and client CPU, server RSS and load."""
    work = os.path.join(OUT, "api")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    port = free_port()
    out = os.path.join(work, "received.log")
    server = start_aggregator(binary, work, port, f'  out: {{ type: file, inputs: [api], path: "{out}", format: raw }}')
    try:
        cpu0 = cpu_seconds(server.pid)
        load = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "putlogevents_load.py"), f"http://127.0.0.1:{port}", *BENCH_KEY,
                               "--requests", str(requests), "--connections", str(connections)], capture_output=True, text=True)
        cpu = cpu_seconds(server.pid) - cpu0
        rss = vm_hwm_mib(server.pid)
    finally:
        server.terminate()
        server.wait()
    try:
        stats = json.loads(load.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        sys.stderr.write(load.stdout + load.stderr)
        results.append(dict(name="api-put-log-events", ok=False))
        print("api-put-log-events     FAILED", flush=True)
        return
    received = count_lines(out)
    ok = load.returncode == 0 and received == stats["events"] and rss <= 128
    wall = stats["wall_s"]
    per_event_us = cpu / max(1, stats["events"]) * 1e6
    loads = f"load {stats['load_before'][0]:.1f} → {stats['load_after'][0]:.1f}"
    results.append(dict(name="api-put-log-events", wall_s=wall, cpu_s=round(cpu, 3), peak_rss_mib=round(rss, 1),
                        lines_per_s=stats["events_per_s"], mb_per_s=round(stats["requests"] * stats["request_bytes"] / 1e6 / wall, 1), ok=ok,
                        load=stats["load_after"][0],
                        note=f"{connections} connections; ack latency p50 {stats['p50_ms']} ms, p90 {stats['p90_ms']} ms, p99 {stats['p99_ms']} ms; "
                             f"server {per_event_us:.2f} µs CPU/event, client {stats['client_cpu_s']} s CPU; {stats['throttled']} throttled; "
                             f"{received} events written; {loads}"))
    print(f"{'api-put-log-events':<22} {wall:7.2f} s wall {cpu:7.2f} s CPU {rss:7.1f} MiB RSS "
          f"{stats['events_per_s'] / 1e6:6.2f} M ev/s  p50 {stats['p50_ms']} ms p90 {stats['p90_ms']} ms p99 {stats['p99_ms']} ms "
          f"{'ok' if ok else 'FAILED'} ({connections} connections, server {per_event_us:.2f} µs CPU/event, client {stats['client_cpu_s']} s CPU, "
          f"{stats['throttled']} throttled, {received} written, {loads})", flush=True)


def api_cloudwatch(binary, results, lookup_events):
    """The CloudWatch API over loopback (RPC v2 CBOR, SigV4): PutMetricData of 100 metrics × a week of
    1-minute values, 1,000 values per request, into an sqlite store; GetMetricData of all 100 metrics over
    the week; then LookupEvents pages of 50 over `lookup_events` CloudTrail records in the same store."""
    work = os.path.join(OUT, "cloudwatch-api")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    store = os.path.join(work, "store.db")
    if lookup_events:
        ensure_cloudtrail_lines()
        records = os.path.join(work, "cloudtrail.jsonl")
        with open(cloudtrail_lines(), "rb") as src, open(records, "wb") as dst:
            for i, line in enumerate(src):
                if i >= lookup_events:
                    break
                dst.write(line)
        ingest = os.path.join(work, "ingest.yaml")
        with open(ingest, "w") as f:
            f.write(f"""
sources:
  trail: {{ type: file, include: ["{records}"] }}
sinks:
  store: {{ type: sqlite, inputs: [trail], path: "{store}" }}
""")
        wall, cpu, rss, status = measure([binary, "run", ingest, "--once", "--quiet"])
        print(f"{'cloudtrail-store':<22} {wall:7.2f} s wall {cpu:7.2f} s CPU {rss:7.1f} MiB RSS  {lookup_events} records indexed", flush=True)
    port = free_port()
    pipeline = os.path.join(work, "cloudwatch.yaml")
    with open(pipeline, "w") as f:
        f.write(f"""
data_dir: {work}/state
http: {{ listen: "127.0.0.1:{port}", access_key_id_env: TW_KEY_ID, secret_access_key_env: TW_SECRET }}
sources:
  cw: {{ type: cloudwatch_api, store: "{store}" }}
sinks:
  store: {{ type: sqlite, inputs: [cw], path: "{store}" }}
""")
    env = dict(os.environ, TW_KEY_ID=BENCH_KEY[0], TW_SECRET=BENCH_KEY[1])
    server = subprocess.Popen([binary, "run", pipeline, "--quiet"], stderr=subprocess.PIPE, env=env)
    for line in server.stderr:
        if b"serving " in line:
            break
    threading_drain(server.stderr)
    load = os.path.join(ROOT, "bench", "cloudwatch_api_load.py")
    url = f"http://127.0.0.1:{port}"
    outputs = {}
    try:
        cpu0 = cpu_seconds(server.pid)
        for mode, extra in (("put", []), ("get", ["--period", "3600"]), ("get", ["--period", "60", "--repeat", "3"])) + \
                           ((("lookup", []),) if lookup_events else ()):
            run = subprocess.run([sys.executable, load, mode, url, *BENCH_KEY, *extra], capture_output=True, text=True)
            try:
                outputs[mode + "".join(extra[:2])] = json.loads(run.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                sys.stderr.write(run.stdout + run.stderr)
                outputs[mode + "".join(extra[:2])] = None
            if mode == "put":
                put_cpu = cpu_seconds(server.pid) - cpu0
        rss = vm_hwm_mib(server.pid)
    finally:
        server.terminate()
        server.wait()
    load_avg = round(os.getloadavg()[0], 2)
    put = outputs.get("put")
    ok = put is not None and put["failures"] == 0
    if put:
        results.append(dict(name="api-put-metric-data", wall_s=put["wall_s"], cpu_s=round(put_cpu, 3), peak_rss_mib=round(rss, 1),
                            values_per_s=put["values_per_s"], load=load_avg, ok=ok and put["values_per_s"] >= 200_000,
                            note=f"p50 {put['p50_ms']} ms, p99 {put['p99_ms']} ms per 1,000-value request (target >= 200,000 values/s)"))
        print(f"{'api-put-metric-data':<22} {put['wall_s']:7.2f} s wall {put_cpu:7.2f} s CPU {rss:7.1f} MiB RSS "
              f"{put['values_per_s']:>9} values/s  p50 {put['p50_ms']} ms p99 {put['p99_ms']} ms  load {load_avg}", flush=True)
    for key, target in (("get--period3600", 100), ("get--period60", None)):
        got = outputs.get(key)
        if got:
            results.append(dict(name="api-get-metric-data-" + key.split("period")[1] + "s", wall_s=got["p50_ms"] / 1000, load=load_avg,
                                ok=target is None or got["p50_ms"] <= target,
                                note=f"100 metrics over a week of 1-minute data, period {got['period']} s: p50 {got['p50_ms']} ms, best {got['best_ms']} ms"
                                     + (f" (target <= {target} ms)" if target else "")))
            print(f"{'api-get-metric-data':<22} period {got['period']:>5} s  p50 {got['p50_ms']} ms  best {got['best_ms']} ms  ({got['reply_bytes']} reply bytes)", flush=True)
    looked = outputs.get("lookup")
    if looked:
        worst = max(v["p50_ms"] for k, v in looked.items() if k != "mode")
        results.append(dict(name="api-lookup-events", wall_s=worst / 1000, load=load_avg, ok=worst <= 50,
                            note=f"pages of 50 over {lookup_events} events: " + ", ".join(f"{k} p50 {v['p50_ms']} ms" for k, v in looked.items() if k != "mode")))
        print(f"{'api-lookup-events':<22} over {lookup_events} events: " + ", ".join(f"{k} p50 {v['p50_ms']} ms" for k, v in looked.items() if k != "mode"), flush=True)


def agent_aggregator(binary, log, lines, results):
    """file → cloudwatch_logs sink → PutLogEvents over loopback → API → file, two processes on the
    same machine (agent with --once: it exits once the aggregator acknowledged every line)."""
    work = os.path.join(OUT, "ship")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    port = free_port()
    out = os.path.join(work, "received.log")
    server = start_aggregator(binary, work, port, f'  out: {{ type: file, inputs: [api], path: "{out}", format: raw }}')
    agent = os.path.join(work, "agent.yaml")
    with open(agent, "w") as f:
        f.write(f"""
data_dir: {work}/agent-state
sources:
  app: {{ type: file, include: ["{log}"], log_group: bench, log_stream: agent }}
sinks:
  ship: {{ type: cloudwatch_logs, inputs: [app], endpoint: "http://127.0.0.1:{port}" }}
""")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=BENCH_KEY[0], AWS_SECRET_ACCESS_KEY=BENCH_KEY[1])
    load_before = os.getloadavg()[0]
    try:
        cpu0 = cpu_seconds(server.pid)
        start = time.monotonic()
        proc = subprocess.Popen([binary, "run", agent, "--once", "--quiet"], stderr=subprocess.PIPE, env=env)
        threading_drain(proc.stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        agent_wall = time.monotonic() - start
        while count_lines(out) < lines and time.monotonic() - start < 600:
            time.sleep(0.05)
        wall = time.monotonic() - start
        server_cpu = cpu_seconds(server.pid) - cpu0
        rss = vm_hwm_mib(server.pid)
    finally:
        server.terminate()
        server.wait()
    got = count_lines(out)
    agent_cpu = usage.ru_utime + usage.ru_stime
    cpu = agent_cpu + server_cpu
    ok = got == lines and os.waitstatus_to_exitcode(status) == 0
    size_mb = os.path.getsize(log) / 1e6
    load_after = os.getloadavg()[0]
    results.append(dict(name="agent-aggregator", wall_s=round(wall, 3), cpu_s=round(cpu, 3), peak_rss_mib=round(max(rss, usage.ru_maxrss / 1024), 1),
                        lines_per_s=round(lines / wall), mb_per_s=round(size_mb / wall, 1), ok=ok, load=round(load_after, 2),
                        note=f"agent {agent_cpu:.1f} s CPU, {usage.ru_maxrss / 1024:.0f} MiB RSS; aggregator {server_cpu:.1f} s CPU, {rss:.0f} MiB RSS; "
                             f"{got} lines arrived; load {load_before:.1f} → {load_after:.1f}"))
    print(f"{'agent-aggregator':<22} {wall:7.2f} s wall {cpu:7.2f} s CPU {max(rss, usage.ru_maxrss / 1024):7.1f} MiB RSS "
          f"{lines / wall / 1e6:6.2f} M lines/s {size_mb / wall:8.1f} MB/s  {'ok' if ok else 'FAILED'} "
          f"(agent {agent_cpu:.1f} s CPU, aggregator {server_cpu:.1f} s CPU; agent done after {agent_wall:.2f} s, {got} lines arrived; "
          f"load {load_before:.1f} → {load_after:.1f})", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "trailwatch"))
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--only", default="")
    ap.add_argument("--repeat", type=int, default=1, help="runs per scenario; the best wall time is reported")
    ap.add_argument("--lookup-events", type=int, default=5_000_000, help="CloudTrail records in the LookupEvents benchmark's store")
    args = ap.parse_args()
    if not os.path.exists(GENLOG):
        print(f"skipped: {GENLOG} is absent (the benchmark input comes from ../shared)")
        return 0
    os.makedirs(OUT, exist_ok=True)
    log = os.path.join(OUT, f"genlog-{args.lines}.log")
    if not os.path.exists(log):
        print(f"generating {log} ...", flush=True)
        subprocess.check_call([sys.executable, GENLOG, str(args.lines), log + ".tmp"])
        os.rename(log + ".tmp", log)
    size_mb = os.path.getsize(log) / 1e6
    lines = args.lines
    results = []

    def report(name, wall, cpu, rss, ok, note="", part=1.0):
        # The machine's load when the scenario ended: figures taken while others build are noisy.
        # `part`: the share of the input the scenario read.
        load = round(os.getloadavg()[0], 2)
        results.append(dict(name=name, wall_s=round(wall, 3), cpu_s=round(cpu, 3), peak_rss_mib=round(rss, 1),
                            lines_per_s=round(lines * part / wall), mb_per_s=round(size_mb * part / wall, 1), load=load, ok=ok, note=note))
        print(f"{name:<22} {wall:7.2f} s wall {cpu:7.2f} s CPU {rss:7.1f} MiB RSS "
              f"{lines * part / wall / 1e6:6.2f} M lines/s {size_mb * part / wall:8.1f} MB/s  load {load:5.2f}  {'ok' if ok else 'FAILED'} {note}", flush=True)

    if shutil.which("zstd") and (not args.only or "zstd" in args.only):
        wall, cpu, rss, _ = measure(["zstd", "-3", "-T1", "-q", "-f", "-c", log], stdout_path=os.path.join(OUT, "ref.zst"))
        report("reference zstd -3 -T1", wall, cpu, rss, True)

    for name, (yaml, stdin, output, expected) in scenarios(log).items():
        if args.only and name not in args.only.split(","):
            continue
        if name in ("insights-cloudtrail", "rules-cloudtrail"):
            ensure_cloudtrail_lines()
        if name == "file-archive-encrypted":
            shutil.rmtree(os.path.join(OUT, "archive-encrypted"), ignore_errors=True)
            os.environ["BENCH_ARCHIVE_KEY"] = __import__("base64").b64encode(os.urandom(32)).decode()
        pipeline = os.path.join(OUT, name + ".yaml")
        with open(pipeline, "w") as f:
            f.write(yaml)
        best = None
        for _ in range(args.repeat):
            if output and os.path.exists(output):
                os.remove(output)
            if name == "file-archive":
                shutil.rmtree(os.path.join(OUT, "archive"), ignore_errors=True)
            for stale in ("rules-matched.log", "rules-hits.jsonl") if name == "rules-cloudtrail" else ():
                if os.path.exists(os.path.join(OUT, stale)):
                    os.remove(os.path.join(OUT, stale))
            if name == "sqlite-ingest":
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(os.path.join(OUT, "store.db" + suffix)):
                        os.remove(os.path.join(OUT, "store.db" + suffix))
            run = measure([args.binary, "run", pipeline, "--once", "--quiet"], stdin_path=stdin)
            if best is None or run[0] < best[0]:
                best = run
        wall, cpu, rss, status = best
        ok = status == 0
        note = ""
        if ok and expected is not None:
            got = count_lines(output)
            ok = got == expected
            note = f"{got} lines out"
        if ok and name == "file-archive":
            note = archive_ratio_note()
        if ok and name == "rules-cloudtrail":
            note = f"{count_lines(os.path.join(OUT, 'rules-matched.log'))} events matched, {count_lines(os.path.join(OUT, 'rules-hits.jsonl'))} rule matches"
        if ok and name == "file-archive-encrypted":
            plain = [r for r in results if r["name"] == "file-archive"]
            note = f"{wall / plain[0]['wall_s']:.2f}x the unencrypted run's wall time" if plain else ""
        if ok and name == "sqlite-ingest":
            note = query_note(args.binary)
        report(name, wall, cpu, rss, ok, note)
        if ok and name == "sqlite-ingest":
            query_scenarios(args.binary, results, lines)
    if not args.only or "postgres" in args.only.split(","):
        postgres_bench(args.binary, log, lines, size_mb, report)
    if not args.only or "band-backtest" in args.only.split(","):
        band_backtest(args.binary, results)
    if not args.only or "checkpoint-load" in args.only.split(","):
        checkpoint_load(args.binary, results)
    if not args.only or "api-put-log-events" in args.only.split(","):
        api_put_log_events(args.binary, results)
    if not args.only or "api-cloudwatch" in args.only.split(","):
        api_cloudwatch(args.binary, results, args.lookup_events)
    if not args.only or "agent-aggregator" in args.only.split(","):
        agent_aggregator(args.binary, log, lines, results)
    if not args.only or "tail-follow" in args.only.split(","):
        for fraction in (10, 1):
            tail_follow(args.binary, log, lines // fraction, fraction, report_tail=results)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(dict(input=log, input_mb=round(size_mb, 1), lines=lines, results=results), f, indent=2)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
