#!/usr/bin/env python3
"""Builds the checked-in seed corpus (fuzz/corpus/<target>/) from the test tables, the sample
pipelines and a few hand-made hostile inputs. Run it again when the tables grow; keep it small.

usage: fuzz/make_seeds.py
"""
import glob, gzip, hashlib, json, os, re, shutil, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
MAX_SEED = 4096


def swift_strings(text):
    """The string literals of Swift source ("…" and #"…"#), unescaped."""
    out = []
    for m in re.finditer(r'#"((?:[^"]|"(?!#))*)"#|"((?:[^"\\\n]|\\.)*)"', text):
        if m.group(1) is not None:
            out.append(m.group(1))
            continue
        s, i, r = m.group(2), 0, []
        while i < len(s):
            c = s[i]
            if c == "\\" and i + 1 < len(s):
                n = s[i + 1]
                if n == "u" and s[i + 2:i + 3] == "{":
                    end = s.index("}", i)
                    r.append(chr(int(s[i + 3:end], 16)))
                    i = end + 1
                    continue
                r.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(n, n))
                i += 2
                continue
            r.append(c)
            i += 1
        out.append("".join(r))
    return out


def calls(path, name):
    """Argument string literals of each `name(...)` call on one line of a Swift file."""
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(name + "(") or line.startswith("(" ):
            yield swift_strings(line)


def write(target, seeds):
    directory = os.path.join(OUT, target)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    seen = set()
    for seed in seeds:
        data = seed if isinstance(seed, bytes) else seed.encode("utf-8", "surrogatepass")
        data = data[:MAX_SEED]
        digest = hashlib.sha1(data).hexdigest()[:16]
        if digest in seen:
            continue
        seen.add(digest)
        with open(os.path.join(directory, digest), "wb") as f:
            f.write(data)
    print(f"{target}: {len(seen)} seeds")


def main():
    events = ['{"eventType":"UpdateTrail","a":[1,{"b":2}],"s":"x y"}', '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /x HTTP/1.0" 404 2326',
              "ERROR x timeout", "", "\xff\xfe"]

    regex = []
    for args in calls("Tests/LinearRegexTests/RegexTests.swift", "m"):
        if len(args) >= 2:
            regex.append(args[0] + "\0" + args[1])
    for args in calls("Tests/LinearRegexTests/RegexTests.swift", "no"):
        if len(args) >= 2:
            regex.append(args[0] + "\0" + args[1])
    for args in calls("Tests/LinearRegexTests/RegexTests.swift", "("):
        if args:
            regex.append(args[0] + "\0abc")
    regex += ["(a+)+$\0" + "a" * 200 + "!", "(a|aa)+c\0" + "a" * 300, "(?i)ΣΑΣ\0σας", "[^\\x00-\\x7f]+\0héllo wörld",
              "(.*a){20}\0" + "a" * 100, "(?m)^$\0\n\n", "\\b\\w+\\b\0 a bc "]
    write("regex", regex)

    patterns = []
    for args in calls("Tests/FilterPatternsTests/ConformanceTests.swift", "c"):
        if args:
            patterns += [args[0] + "\0" + (args[1] if len(args) > 1 else e) for e in events[:2]]
    for args in calls("Tests/FilterPatternsTests/ConformanceTests.swift", "("):
        if args:
            patterns.append(args[0] + "\0" + events[0])
    write("filter-pattern", patterns)

    queries = []
    for args in calls("Tests/TrailwatchTests/QueryConformanceTests.swift", "("):
        if args:
            queries.append(args[0])
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    block = re.search(r"Ten useful queries:\n\n```\n(.*?)```", readme, re.S)
    if block:
        queries += [l for l in block.group(1).splitlines() if l and not l.startswith("#")]
    queries += ["stats count(*) by bin(5m)", "parse @message /(?<a>\\d+)/ | stats sum(a) by a", "fields @timestamp | sort @timestamp desc | limit 3"]
    write("query", queries)

    docs = [events[0], '{"a":[{"b":"\\u00e9\\ud83d\\ude00"}],"c":1e308,"d":-0.0,"e":null,"f":true}', "[" * 40 + "]" * 40,
            '{"a":' * 20 + "1" + "}" * 20, '"\\', "1e400", '{"a":1,"a":2}', '{"a":"\\x"}']
    selectors = ["$.a", "$.a[0].b", "$.*", "$.a[*].b", "$.['x.y']", "$", "$..a", "$.a[99999999999999999999]"]
    write("bytejson", [s + "\0" + d for s in selectors for d in docs[:4]] + [selectors[0] + "\0" + d for d in docs])

    yamls = [open(p, encoding="utf-8").read() for p in sorted(glob.glob(os.path.join(ROOT, "pipelines", "*.yaml")))]
    config_tests = open(os.path.join(ROOT, "Tests/TrailwatchTests/ConfigErrorTests.swift"), encoding="utf-8").read()
    for m in re.finditer(r'yaml: """\n(.*?)"""', config_tests, re.S):
        yamls.append("\n".join(l[8:] for l in m.group(1).splitlines()).replace("\\\\", "\\"))
    laughs = 'a0: &a0 ["lol","lol"]\n' + "".join(f"a{k}: &a{k} [" + ",".join([f"*a{k-1}"] * 4) + "]\n" for k in range(1, 6))
    yamls += [laughs + "sources: { s: { type: stdin, log_group: *a5 } }\n", "x: &x [1]\ny: { *x : 1 }\n", "? [a]\n: b\n",
              'sources: { "..": { type: file, include: [x] } }\nsinks: { o: { type: console, inputs: [".."] } }\n']
    write("pipeline-yaml", yamls)

    records = "\n".join(json.dumps({"timestamp": "2026-11-24T10:00:00.000Z", "group": "/app", "stream": "s", "message": m,
                                    "ingestion_time": "2026-11-24T10:00:01.000Z"}, separators=(",", ":")) for m in events) + "\n"
    flagged = json.dumps({"timestamp": "2026-11-24T10:00:00.000Z", "group": "g", "stream": "s", "message": "x\u0001",
                          "fields": {"n": 1, "o": {"a": [1]}}, "flags": ["split", "invalid_utf8"]}) + "\n"
    archive = [records, flagged, "plain line\nanother\r\n" + "x" * 300 + "\nno newline", b"\xff" * 70 + b"\n" + "é".encode() * 40]
    zst = subprocess.run(["zstd", "-q", "-c"], input=records.encode(), capture_output=True).stdout
    archive += [zst, zst[: len(zst) // 2], gzip.compress(records.encode(), mtime=0), gzip.compress(flagged.encode(), mtime=0)[:-9],
                subprocess.run(["zstd", "-q", "-c", "-19"], input=b"\0" * 200000, capture_output=True).stdout]
    write("archive-reader", archive)

    trails = []
    for path in sorted(glob.glob(os.path.join(ROOT, "samples", "cloudtrail", "**", "*.json*"), recursive=True))[:3]:
        data = open(path, "rb").read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        root = json.loads(data)
        root["Records"] = root["Records"][:2]
        small = json.dumps(root).encode()
        trails += [small, gzip.compress(small, mtime=0)]
    trails += [b'{"Records":[1,2]}', b'{"Records":{}}', b'{"Records":[{"eventTime":"x"}]}', b"[]", b'{"Records":[' + b"[" * 30]
    write("cloudtrail", trails)

    formats = ["rfc3339", "unix", "unix_ms", "%Y-%m-%d %H:%M:%S,%f", "%b %e %H:%M:%S", "%d/%b/%Y:%H:%M:%S %z", "%s", "%F %T%Z", "%y%m%d"]
    texts = ["2026-11-24T10:00:00.123Z", "2026-11-24T10:00:00+14:00", "1764000000", "1764000000123", "2026-11-24 10:00:00,034",
             "Nov  4 10:00:00", "24/Nov/2026:10:00:00 +0000", "9999-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z", "1e308", "-1"]
    write("timestamp", [f + "\0" + t for f in formats for t in texts[:3]] + [formats[0] + "\0" + t for t in texts])

    # Masking: the demo policy and small custom ones, over the identifier tables' example lines.
    lines = []
    for path in ["Tests/DataProtectionTests/ManagedIdentifierTests.swift", "Tests/DataProtectionTests/PolicyTests.swift"]:
        for line in open(os.path.join(ROOT, path), encoding="utf-8").read().splitlines():
            if line.strip().startswith(("(\"", "IdentifierCase", "], negatives")):
                lines += [t for t in swift_strings(line) if len(t) > 3 and not t.startswith(("PhoneNumber", "Ssn", "Cpf", "Cnpj"))][:4]
    demo = open(os.path.join(ROOT, "pipelines", "policies", "pii.json"), encoding="utf-8").read()
    def policy(regex):
        return json.dumps({"Version": "2021-06-01", "Configuration": {"CustomDataIdentifier": [{"Name": "C", "Regex": regex}]},
                           "Statement": [{"DataIdentifier": ["C"], "Operation": {"Audit": {"FindingsDestination": {}}}},
                                         {"DataIdentifier": ["C"], "Operation": {"Deidentify": {"MaskConfig": {}}}}]})
    custom = [policy(r) for r in ["tok_[A-Za-z0-9]{16}", "a+", "^id", "end$", "[a-c]+d?", "x*", "\\d{3}-\\d{4}", "a*a*a*a*b"]]
    write("data-protection", [demo + "\0" + l for l in lines[:60]] + [c + "\0" + l for c in custom for l in lines[:3]]
          + [custom[1] + "\0" + "a" * 300 + "b", custom[3] + "\0end end"])

    # Event patterns: AWS's documented examples from the conformance table, against their events.
    table = open(os.path.join(ROOT, "Tests/EventPatternsTests/ConformanceTests.swift"), encoding="utf-8").read()
    events_by_name = {}
    for m in re.finditer(r'static let (\w+Event) = """\n(.*?)"""', table, re.S):
        events_by_name[m.group(1)] = " ".join(l.strip() for l in m.group(2).splitlines())
    event_seeds = []
    for line in table.splitlines():
        line = line.strip()
        if not line.startswith("(#\"") and not line.startswith('("'):
            continue
        strings = swift_strings(line)
        if not strings:
            continue
        name = next((n for n in events_by_name if (", " + n + ",") in line), None)
        event_seeds.append(strings[0] + "\0" + (events_by_name[name] if name else next(iter(events_by_name.values()), "{}")))
    write("event-pattern", event_seeds)


if __name__ == "__main__":
    main()
