#!/usr/bin/env python3
"""Merges the cases with both SDKs' verdicts into vectors.json (stdout).

Usage: merge.py cases.json python_verdicts.json node_verdicts.json
`expected` is true exactly when both SDKs accept.
"""

import json
import sys


def main():
    cases_path, py_path, node_path = sys.argv[1:4]
    with open(cases_path, encoding="utf-8") as f:
        data = json.load(f)
    with open(py_path, encoding="utf-8") as f:
        py = json.load(f)
    with open(node_path, encoding="utf-8") as f:
        node = json.load(f)

    vectors = []
    for case in data["cases"]:
        p = py["verdicts"][case["name"]]
        n = node["verdicts"][case["name"]]
        vectors.append(
            {
                **case,
                "python_accepts": p["accepts"],
                "node_accepts": n["accepts"],
                "expected": p["accepts"] and n["accepts"],
                "python_error": p["error"],
                "node_error": n["error"],
            }
        )

    signs = []
    for sc in data["sign_cases"]:
        signs.append(
            {
                **sc,
                "python_header": py["signed"][sc["name"]],
                "node_header": node["signed"][sc["name"]],
            }
        )

    out = {
        "description": (
            "Stripe-Signature verification vectors. Verdicts come from the official SDKs "
            "(python: stripe.WebhookSignature.verify_header; node: "
            "Stripe.webhooks.signature.verifyHeader with the body as a Buffer). `now` is a "
            "whole unix second and an SDK accepts only if it accepts both at now+0.000 and "
            "at now+0.999; with several secrets an SDK accepts if any secret works. "
            "tolerance 0 means the SDKs skip the timestamp check. expected = python_accepts "
            "&& node_accepts. body_hex is the raw body. Regenerate with vectors/generate.sh."
        ),
        "generator": {
            "python_sdk": py["sdk"],
            "python_runtime": py["runtime"],
            "node_sdk": node["sdk"],
            "node_runtime": node["runtime"],
        },
        "case_count": len(vectors),
        "cases": vectors,
        "sign_cases": signs,
    }
    json.dump(out, sys.stdout, ensure_ascii=True, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
