#!/usr/bin/env python3
"""Round trips and Postgres-side time per delivery, from a Postgres log written with
log_min_duration_statement = 0 (serve.sh start --log-statements) and billing-load's JSON report.

    statements.py POSTGRES_LOG DATABASE REPORT_JSON

Statements are grouped by kind (table and verb). Per delivery: executions (a simple query, or
a bind + execute; several may share one round trip when pipelined: the BEGIN with the
claim, the last writes with the COMMIT), parses (an uncached statement is prepared
first, one more round trip), and the time Postgres logged for all its phases. The tool's check and the server's start-up (session settings, migrations) are left out. The log line
prefix must carry the backend pid and the database ("%m [%p] %q%u@%d ", Debian's default).
"""
import collections
import json
import re
import sys

log_path, database, report_path = sys.argv[1:4]
deliveries = sum(level["deliveries"] for level in json.load(open(report_path))["levels"])
line_re = re.compile(
    r"\[(\d+)\] \S*@" + re.escape(database)
    + r" LOG:  duration: ([\d.]+) ms  (?:(parse|bind|execute) \S+: |statement: )(.*)"
)
rows = []
for line in open(log_path, errors="replace"):
    m = line_re.search(line)
    if m:
        pid, ms, phase, text = m.groups()
        rows.append((pid, float(ms), phase or "simple", text.strip()))
# billing-load's own check runs on a connection of its own; start-up (session settings,
# migrations) is left out by its statements.
tool_pids = {pid for pid, _, _, text in rows if "sha256(" in text or "extract(epoch" in text}
start_up = re.compile(r"--|(SET|CREATE|ALTER|COMMENT|DROP)\b|.*__diesel_schema_migrations", re.S)


def kind(text):
    text = re.sub(r'"(\w+)"\."(\w+)"', r"\2", text).replace('"', "")
    m = re.match(r"(INSERT INTO \w+|UPDATE \w+ SET \w+|DELETE FROM \w+|"
                 r"SELECT pg_advisory_xact_lock|SELECT \$1|BEGIN|COMMIT|ROLLBACK)", text)
    if m:
        name = m.group(1)
    else:
        m = re.match(r"SELECT .*? FROM (\w+)(?: WHERE \(*(\w+))?", text)
        name = f"SELECT FROM {m.group(1)} WHERE {m.group(2)}" if m else text[:60]
    if "ON CONFLICT" in text:
        name += " ON CONFLICT"
    return name


counts = collections.defaultdict(collections.Counter)
time_ms = collections.Counter()
for pid, ms, phase, text in rows:
    if pid not in tool_pids and not start_up.match(text):
        counts[kind(text)][phase] += 1
        time_ms[kind(text)] += ms
print(f"{deliveries} deliveries\n")
print("| statement | executions / delivery | parses / delivery | Postgres ms / delivery | ms / execution |")
print("|---|---|---|---|---|")
total = collections.Counter()
for name in sorted(counts, key=lambda k: -time_ms[k]):
    c = counts[name]
    n = c["execute"] + c["simple"]
    total["n"] += n
    total["parse"] += c["parse"]
    total["ms"] += time_ms[name]
    print(f"| `{name}` | {n / deliveries:.2f} | {c['parse'] / deliveries:.2f} | "
          f"{time_ms[name] / deliveries:.3f} | {time_ms[name] / max(n, 1):.3f} |")
print(f"| **all** | **{total['n'] / deliveries:.2f}** | **{total['parse'] / deliveries:.2f}** | "
      f"**{total['ms'] / deliveries:.3f}** | |")
