#!/usr/bin/env python3
"""User-space instructions per delivery, by function (inclusive), from two callgrind runs of
the server that differ only in how many deliveries they got (start-up and migrations cancel
out): (B - A) / (deliveries B - deliveries A).

    callgrind_diff.py CALLGRIND_A REPORT_A CALLGRIND_B REPORT_B [REGEX ...]

Each REGEX picks the function it matches with the largest inclusive count.
"""
import json
import re
import subprocess
import sys


def load(profile, report):
    out = subprocess.check_output(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", profile],
        text=True, stderr=subprocess.DEVNULL)
    inclusive, total = {}, 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        name = re.sub(r" \[/.*", "", m.group(2)).replace("???:", "")
        if name == "PROGRAM TOTALS":
            total = n
        else:
            inclusive[name] = max(inclusive.get(name, 0), n)
    deliveries = sum(level["deliveries"] for level in json.load(open(report))["levels"])
    return total, inclusive, deliveries


total_a, a, n_a = load(sys.argv[1], sys.argv[2])
total_b, b, n_b = load(sys.argv[3], sys.argv[4])
per = (total_b - total_a) / (n_b - n_a)
print(f"{per:,.0f} instructions per delivery ({n_a} and {n_b} deliveries)\n")
print("| function (inclusive) | instructions / delivery | share |")
print("|---|---|---|")
for pattern in sys.argv[5:]:
    names = [name for name in b if re.search(pattern, name)]
    if not names:
        print(f"| `{pattern}` | — | — |")
        continue
    best = max(names, key=lambda name: b[name])
    v = (b[best] - a.get(best, 0)) / (n_b - n_a)
    print(f"| `{best[:110]}` | {v:,.0f} | {100 * v / per:.1f} % |")
