#!/usr/bin/env bash
# Regenerates vectors/vectors.json by asking both official Stripe SDKs for their
# verdict on every case built by build_cases.py.
#
# Needs python3 (with venv) and node + npm, and access to PyPI and the npm
# registry. The SDKs are installed into a throwaway directory under $TMPDIR
# (never into the repository). Tests do not need any of this: they read the
# committed vectors.json.
set -euo pipefail

# Pinned SDK versions: bump deliberately, then review the diff of vectors.json.
STRIPE_PYTHON_VERSION="16.1.0"
STRIPE_NODE_VERSION="23.1.0"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/stripe-sig-vectors.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "installing stripe-python ${STRIPE_PYTHON_VERSION} into $work/venv" >&2
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "stripe==${STRIPE_PYTHON_VERSION}"

echo "installing stripe-node ${STRIPE_NODE_VERSION} into $work/node" >&2
mkdir -p "$work/node"
(
  cd "$work/node"
  printf '{"name":"stripe-sig-vectors","private":true}\n' >package.json
  npm install --silent --no-audit --no-fund --no-save "stripe@${STRIPE_NODE_VERSION}" >&2
)

python3 "$here/build_cases.py" >"$work/cases.json"
"$work/venv/bin/python" "$here/sdk_python.py" "$work/cases.json" >"$work/python.json"
STRIPE_NODE_DIR="$work/node" node "$here/sdk_node.cjs" "$work/cases.json" >"$work/node.json"
python3 "$here/merge.py" "$work/cases.json" "$work/python.json" "$work/node.json" >"$work/vectors.json"

mv "$work/vectors.json" "$here/vectors.json"
python3 - "$here/vectors.json" <<'EOF' >&2
import json, sys
d = json.load(open(sys.argv[1]))
c = d["cases"]
dis = [v["name"] for v in c if v["python_accepts"] != v["node_accepts"]]
print(f"wrote {len(c)} cases ({sum(v['expected'] for v in c)} expected to verify); "
      f"{len(dis)} where the SDKs disagree; generator: {d['generator']}")
EOF
