#!/usr/bin/env bash
# Round trips to Postgres per delivery: the release billing-server started as serve.sh does,
# billing-load at IN_FLIGHT deliveries in flight (default 16) over EVENTS unique events
# (default 6 000), and `perf stat` counting, per thread of the server, the system calls that
# send and receive on its sockets for the whole load. The server's database thread
# (`billing-db`) talks only to Postgres, and tokio-postgres writes what is queued on a
# connection in one `sendto`: its sends per delivery are the round trips per delivery. Counts
# of system calls, not times: much steadier than deliveries/s on a shared machine (they still
# follow how deliveries share transactions, which follows the timing).
#
#   round-trips.sh [IN_FLIGHT [EVENTS]]
#
# Needs perf (Debian's linux-perf) and the release binaries (cargo build --release
# -p billing-server -p billing-load); BENCH_POSTGRES as for serve.sh.
set -euo pipefail
in_flight="${1:-16}"
events="${2:-6000}"
here="$(cd "$(dirname "$0")" && pwd)"
bin="${CARGO_TARGET_DIR:-$here/../../../target}/release"
out=$(mktemp -d)
read -r pid port db < <("$here/serve.sh" start)
perf stat --per-thread -p "$pid" -o "$out/perf.txt" \
    -e 'syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write' &
perf_pid=$!
sleep 0.5
"$bin/billing-load" --url "http://127.0.0.1:$port/webhooks/stripe" \
    --secret whsec_bench_local_only --events "$events" --concurrency "$in_flight" \
    --server-pid "$pid" --json-file "$out/report.json" > "$out/load.txt"
kill -INT "$perf_pid"
wait "$perf_pid" 2> /dev/null || true
"$here/serve.sh" stop "$pid" "$db"
python3 - "$out/perf.txt" "$out/report.json" <<'PY'
import collections, json, re, sys

levels = json.load(open(sys.argv[2]))["levels"]
deliveries = sum(level["deliveries"] for level in levels)
calls = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    m = re.match(r"\s*(.+?)-\d+\s+([\d,]+)\s+syscalls:sys_enter_(\w+)", line)
    if m:
        thread, count, call = m.groups()
        calls[thread][call] += int(count.replace(",", ""))
for level in levels:
    print(f"{level['in_flight']} in flight: {level['deliveries']} deliveries, "
          f"{level['deliveries_per_second']:.0f}/s")
print("| thread | sendto / delivery | recvfrom / delivery | write / delivery |")
print("|---|---|---|---|")
for thread in sorted(calls):
    c = calls[thread]
    print(f"| {thread} | {c['sendto'] / deliveries:.2f} | {c['recvfrom'] / deliveries:.2f} | "
          f"{c['write'] / deliveries:.2f} |")
PY
rm -rf "$out"
