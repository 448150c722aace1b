#!/usr/bin/env bash
# Instructions per request of the gate routes, in-process (crates/billing-http/examples/gate_n.rs):
# for each route, callgrind on `gate_n ROUTE A` and `gate_n ROUTE B`; the difference of the
# two runs' instructions inside `gate_n`'s actix system (inclusive; outside it the metrics
# recorder calibrates its clock for a time that varies) over B - A requests. Usage: gate-callgrind.sh [OUT_DIR] (profiles kept there, default a
# temporary directory; open one with `callgrind_annotate --inclusive=yes FILE`). Needs the
# release example: cargo build --release -p billing-http --example gate_n.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/gate_n"
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
a="${GATE_A:-100}"
b="${GATE_B:-1100}"
total() {
    valgrind --tool=callgrind --callgrind-out-file="$2" "$bin" "$1" "$3" >/dev/null 2>&1
    callgrind_annotate --inclusive=yes "$2" 2>/dev/null |
        awk '!n && /:gate_n::main::\{\{closure\}\} \[/ {gsub(",", "", $1); n = $1} END {print n}'
}
printf '%-14s %14s\n' route instructions/request
for route in healthz features entitlements; do
    ia=$(total "$route" "$out/$route-$a.callgrind" "$a")
    ib=$(total "$route" "$out/$route-$b.callgrind" "$b")
    printf '%-14s %14d\n' "$route" "$(( (ib - ia) / (b - a) ))"
done
echo "profiles in $out"
