#!/usr/bin/env python3
"""Asks the official stripe-python SDK for its verdict on every case.

Usage: sdk_python.py cases.json > python_verdicts.json  (run inside the venv
that generate.sh creates, with the pinned `stripe` version installed).

Verification goes through `stripe.WebhookSignature.verify_header`, the check
that `stripe.Webhook.construct_event` runs before it parses the body as JSON
(several bodies here are deliberately not JSON).

The case's `now` is a whole second. A real clock reading inside that second
has a fraction, so the SDK is asked at the start (now + 0.000) and at the end
(now + 0.999) of the second, and it "accepts" only if it accepts at both
instants. Any exception (not only SignatureVerificationError) is a rejection.
With several secrets, the SDK accepts if it accepts with any one of them.
"""

import json
import sys
import time
from importlib.metadata import version
from unittest import mock

import stripe

INSTANT_FRACTIONS = (0.0, 0.999)


def verdict_for(body: bytes, header: str, secret: str, now: int, tolerance: int):
    for fraction in INSTANT_FRACTIONS:
        with mock.patch.object(time, "time", return_value=now + fraction):
            try:
                stripe.WebhookSignature.verify_header(body, header, secret, tolerance)
            except Exception as exc:  # noqa: BLE001 - every exception is a rejection
                return False, f"{type(exc).__name__}: {str(exc)[:90]}"
    return True, None


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    verdicts = {}
    for case in data["cases"]:
        body = bytes.fromhex(case["body_hex"])
        accepted, errors = False, []
        for secret in case["secrets"]:
            ok, err = verdict_for(body, case["header"], secret, case["now"], case["tolerance"])
            if ok:
                accepted = True
                break
            errors.append(err)
        verdicts[case["name"]] = {"accepts": accepted, "error": None if accepted else errors[0]}
    signed = {}
    for sc in data["sign_cases"]:
        payload = bytes.fromhex(sc["body_hex"]).decode("utf-8")
        signed[sc["name"]] = stripe.WebhookSignature.generate_signature_header(
            payload, sc["secret"], timestamp=sc["t"]
        )
    json.dump(
        {
            "sdk": f"stripe-python {version('stripe')}",
            "runtime": f"CPython {sys.version.split()[0]}",
            "verdicts": verdicts,
            "signed": signed,
        },
        sys.stdout,
        ensure_ascii=True,
    )


if __name__ == "__main__":
    main()
