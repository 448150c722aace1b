#!/usr/bin/env python3
"""Builds the signature test cases (no SDK needed: plain hmac + hashlib).

Writes a JSON list of cases to stdout. Each case has: name, category, body_hex,
header, secrets, now, tolerance. The verdicts are added later by asking the
official SDKs (sdk_python.py, sdk_node.cjs) and merged by merge.py.

Everything is deterministic (fixed clock, fixed PRNG seed), so regenerating
gives the same file unless an SDK changes its behaviour.
"""

import hashlib
import hmac
import json
import random
import sys

NOW = 1_700_000_000
TOL = 300
SECRET = "whsec_test_0123456789abcdefghijklmnop"
OLD_SECRET = "whsec_old_zyxwvutsrqponmlkjihgfedcba"
OTHER_SECRET = "whsec_someone_else_entirely_000000"
BODY = (
    b'{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","api_version":"2023-10-16",'
    b'"created":1700000000,"data":{"object":{"id":"in_1","object":"invoice","amount_paid":1999,'
    b'"currency":"eur","customer":"cus_123","status":"paid"}},"livemode":false,'
    b'"pending_webhooks":1,"type":"invoice.paid"}'
)
FUZZ_BODY = b'{"id":"evt_fuzz","object":"event","data":{"name":"Zo\xc3\xab"}}'
BOM = b"\xef\xbb\xbf"
MAX_SAFE = 2**53 - 1

CASES = []


def mac(content: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), content, hashlib.sha256).hexdigest()


def sig(body: bytes, ts, secret: str = SECRET) -> str:
    """HMAC over f"{ts}.{body}" where ts is used verbatim (str or int)."""
    return mac(str(ts).encode("utf-8") + b"." + body, secret)


def add(name, category, header, body=BODY, secrets=None, now=NOW, tolerance=TOL):
    if secrets is None:
        secrets = [SECRET]
    if any(c["name"] == name for c in CASES):
        raise SystemExit(f"duplicate case name {name}")
    CASES.append(
        {
            "name": name,
            "category": category,
            "body_hex": body.hex(),
            "header": header,
            "secrets": list(secrets),
            "now": now,
            "tolerance": tolerance,
        }
    )


def std(ts=NOW - 10, body=BODY, secret=SECRET):
    return f"t={ts},v1={sig(body, ts, secret)}"


def build():
    t = NOW - 10
    good = sig(BODY, t)

    # --- valid -------------------------------------------------------------
    add("valid_basic", "valid", std())
    add("valid_signed_now", "valid", std(NOW))
    add("valid_with_v0", "valid", f"t={t},v1={good},v0={sig(BODY, t, OTHER_SECRET)}")
    add("valid_v0_first", "valid", f"t={t},v0=deadbeef,v1={good}")
    add("valid_signature_before_timestamp", "valid", f"v1={good},t={t}")
    add("valid_trailing_comma", "valid", f"t={t},v1={good},")
    add("valid_leading_comma", "valid", f",t={t},v1={good}")
    add("valid_empty_items", "valid", f"t={t},,,v1={good},,")
    add("valid_unicode_secret", "valid", std(secret="whsec_ünïcødé_🔑"), secrets=["whsec_ünïcødé_🔑"])
    add(
        "valid_secret_with_surrounding_space",
        "valid",
        std(secret=" whsec_spaced "),
        secrets=[" whsec_spaced "],
    )
    add("valid_large_tolerance", "valid", std(NOW - 86_400), tolerance=86_400 * 2)
    add("valid_tolerance_zero_skips_check", "tolerance_zero", std(NOW - 10_000_000), tolerance=0)
    add("valid_tolerance_zero_epoch", "tolerance_zero", std(0), tolerance=0)
    add("valid_multiline_body", "valid", std(body=b'{\n  "a": 1,\r\n  "b": [1, 2]\n}\n'),
        body=b'{\n  "a": 1,\r\n  "b": [1, 2]\n}\n')
    utf8_body = '{"name":"Zoë — 東京 🚀"}'.encode("utf-8")
    add("valid_utf8_multibyte_body", "valid", std(body=utf8_body), body=utf8_body)

    # --- wrong secret --------------------------------------------------------
    add("wrong_secret", "wrong_secret", std(secret=OTHER_SECRET))
    add("wrong_secret_prefix_only", "wrong_secret", std(secret="whsec_"))
    add("secret_case_differs", "wrong_secret", std(secret=SECRET.upper()))
    add("secret_trailing_newline_differs", "wrong_secret", std(), secrets=[SECRET + "\n"])
    add("blank_secret_empty", "blank_secret", std(secret=""), secrets=[""])
    add("blank_secret_whitespace", "blank_secret", std(secret=" \t\n"), secrets=[" \t\n"])

    # --- tampered body -------------------------------------------------------
    flipped = bytearray(BODY)
    flipped[40] ^= 0x01
    add("tampered_one_bit", "tampered_body", std(), body=bytes(flipped))
    add("tampered_amount", "tampered_body", std(), body=BODY.replace(b"1999", b"9999"))
    add("tampered_trailing_newline", "tampered_body", std(), body=BODY + b"\n")
    add("tampered_leading_space", "tampered_body", std(), body=b" " + BODY)
    add("tampered_crlf", "tampered_body", std(body=b"{}\n"), body=b"{}\r\n")
    reserialised = json.dumps(json.loads(BODY), indent=2).encode("utf-8")
    add("tampered_reserialised_json", "tampered_body", std(), body=reserialised)
    add("tampered_key_order", "tampered_body", std(), body=json.dumps(json.loads(BODY), sort_keys=True, separators=(",", ":")).encode())
    add("tampered_truncated", "tampered_body", std(), body=BODY[:-1])
    add("tampered_empty_body", "tampered_body", std(), body=b"")
    add("tampered_signature_over_other_timestamp", "tampered_body", f"t={t},v1={sig(BODY, t - 1)}")

    # --- timestamps vs tolerance --------------------------------------------
    add("stale_one_second_over", "stale", std(NOW - TOL - 1))
    add("stale_one_day", "stale", std(NOW - 86_400))
    add("stale_epoch", "stale", std(0))
    add("exactly_at_tolerance", "at_tolerance", std(NOW - TOL))
    add("exactly_at_tolerance_60", "at_tolerance", std(NOW - 60), tolerance=60)
    add("exactly_at_tolerance_1", "at_tolerance", std(NOW - 1), tolerance=1)
    add("one_second_inside_tolerance", "inside_tolerance", std(NOW - TOL + 1))
    add("one_second_inside_tolerance_1", "inside_tolerance", std(NOW), tolerance=1)
    add("future_one_second", "future", std(NOW + 1))
    add("future_one_hour", "future", std(NOW + 3600))
    add("future_far_year_2100", "future_far", std(4_102_444_800))
    add("future_far_max_safe_integer", "future_far", std(MAX_SAFE))
    add("future_far_2pow53", "future_far", std(2**53))
    # Above 2^53 JavaScript's parseInt rounds; Python keeps the exact value.
    add("future_far_2pow53_plus1", "future_far", std(2**53 + 1))
    add("future_far_2pow53_plus2", "future_far", std(2**53 + 2))
    add("future_far_2pow60", "future_far", std(2**60))
    add("future_far_2pow60_js_spelling", "future_far",
        f"t={2**60},v1={sig(BODY, 1152921504606847000)}")
    add("future_far_i64_max", "future_far", std(2**63 - 1))
    add("future_far_1e18", "future_far", std(10**18))
    add("future_far_beyond_i64", "future_far", std(10**20))
    add("future_far_1e21", "future_far", std(10**21))
    add("future_far_1e21_js_spelling", "future_far", f"t={10**21},v1={sig(BODY, '1e+21')}")
    add("now_tiny_epoch_start", "inside_tolerance", std(5), now=10)

    # --- negative timestamps ----------------------------------------------
    add("negative_timestamp_default_tolerance", "negative_timestamp", std(-5))
    add("negative_timestamp_tolerance_zero", "negative_timestamp", std(-5), tolerance=0)
    add("negative_one_timestamp_tolerance_zero", "negative_timestamp", std(-1), tolerance=0)
    add("negative_one_leading_zero_tolerance_zero", "negative_timestamp",
        f"t=-01,v1={sig(BODY, -1)}", tolerance=0)
    add("negative_zero_tolerance_zero", "negative_timestamp", f"t=-0,v1={sig(BODY, 0)}", tolerance=0)
    add("negative_zero_signed_verbatim", "negative_timestamp", f"t=-0,v1={sig(BODY, '-0')}", tolerance=0)
    add("negative_timestamp_within_tolerance_of_tiny_now", "negative_timestamp", std(-5), now=100)
    add("negative_large_tolerance_zero", "negative_timestamp", std(-MAX_SAFE), tolerance=0)

    # --- missing / empty / garbage headers ----------------------------------
    add("header_empty", "missing_header", "")
    add("header_single_space", "missing_header", " ")
    add("header_whitespace", "missing_header", " \t ")
    add("garbage_word", "garbage_header", "garbage")
    add("garbage_comma_only", "garbage_header", ",,,")
    add("garbage_equals_only", "garbage_header", "=")
    add("garbage_t_only", "garbage_header", "t")
    add("garbage_t_empty", "garbage_header", "t=")
    add("garbage_t_empty_with_sig", "garbage_header", f"t=,v1={sig(BODY, '')}")
    add("garbage_no_timestamp", "garbage_header", f"v1={good}")
    add("garbage_binaryish", "garbage_header", "\x00\x01\x02t=1\x7f")
    add("garbage_json", "garbage_header", '{"t":1700000000,"v1":"abc"}')
    add("garbage_semicolons", "garbage_header", f"t={t};v1={good}")
    add("garbage_key_uppercase_T", "garbage_header", f"T={t},v1={good}")
    add("timestamp_only", "no_v1", f"t={t}")

    # --- schemes ------------------------------------------------------------
    add("only_v0", "only_v0", f"t={t},v0={sig(BODY, t)}")
    add("only_v0_wrong", "only_v0", f"t={t},v0=deadbeef")
    add("unknown_scheme_v2", "unknown_scheme", f"t={t},v2={good}")
    add("unknown_scheme_uppercase_V1", "unknown_scheme", f"t={t},V1={good}")
    add("unknown_scheme_v1a", "unknown_scheme", f"t={t},v1a={good}")
    add("unknown_scheme_v10", "unknown_scheme", f"t={t},v10={good}")
    add("unknown_scheme_alongside_v1", "unknown_scheme", f"t={t},v2=zzz,v1={good},x=y")
    add("unknown_item_without_equals", "unknown_scheme", f"t={t},hello,v1={good}")

    # --- several v1 ---------------------------------------------------------
    bad = sig(BODY, t, OTHER_SECRET)
    add("multi_v1_second_matches", "multi_v1", f"t={t},v1={bad},v1={good}")
    add("multi_v1_first_matches", "multi_v1", f"t={t},v1={good},v1={bad}")
    add("multi_v1_none_match", "multi_v1", f"t={t},v1={bad},v1={bad[::-1]}")
    add("multi_v1_interleaved_schemes", "multi_v1", f"t={t},v0=00,v1={bad},v0=11,v1={good}")
    add("multi_v1_duplicate_good", "multi_v1", f"t={t},v1={good},v1={good}")

    # --- secret rotation ---------------------------------------------------
    old_sig = sig(BODY, t, OLD_SECRET)
    add("rotation_signed_with_old", "rotation", f"t={t},v1={old_sig}", secrets=[SECRET, OLD_SECRET])
    add("rotation_signed_with_new", "rotation", f"t={t},v1={good}", secrets=[SECRET, OLD_SECRET])
    add("rotation_signed_with_both", "rotation", f"t={t},v1={good},v1={old_sig}", secrets=[SECRET, OLD_SECRET])
    add("rotation_signed_with_both_reversed", "rotation", f"t={t},v1={old_sig},v1={good}", secrets=[OLD_SECRET, SECRET])
    add("rotation_signed_with_neither", "rotation", f"t={t},v1={bad}", secrets=[SECRET, OLD_SECRET])
    add("rotation_old_removed", "rotation", f"t={t},v1={old_sig}", secrets=[SECRET])
    add("rotation_three_secrets", "rotation", f"t={t},v1={old_sig}", secrets=[OTHER_SECRET, SECRET, OLD_SECRET])
    add("rotation_stale_with_old", "rotation", f"t={NOW - 1000},v1={sig(BODY, NOW - 1000, OLD_SECRET)}", secrets=[SECRET, OLD_SECRET])

    # --- hex casing and signature shape ------------------------------------
    add("uppercase_hex", "uppercase_hex", f"t={t},v1={good.upper()}")
    add("mixed_case_hex", "uppercase_hex", f"t={t},v1={good[:32].upper()}{good[32:]}")
    add("uppercase_hex_then_lowercase", "uppercase_hex", f"t={t},v1={good.upper()},v1={good}")
    add("signature_truncated", "signature_shape", f"t={t},v1={good[:-1]}")
    add("signature_extended", "signature_shape", f"t={t},v1={good}0")
    add("signature_with_space", "signature_shape", f"t={t},v1= {good}")
    add("signature_trailing_space", "signature_shape", f"t={t},v1={good} ")
    add("signature_base64_not_hex", "signature_shape", f"t={t},v1=" + "A" * 43 + "=")

    # --- long headers ------------------------------------------------------
    many = ",".join(f"v1={sig(BODY, t, f'whsec_decoy_{i}')}" for i in range(999))
    add("long_1000_v1_last_matches", "long_header", f"t={t},{many},v1={good}")
    add("long_1000_v1_none_match", "long_header", f"t={t},{many},v1={bad}")
    add("long_100kb_padding_item", "long_header", f"t={t},v1={good},x={'a' * 100_000}")
    add("long_100kb_many_unknown_items", "long_header", f"t={t}," + ",".join(["v0=" + "b" * 60] * 1600) + f",v1={good}")
    add("long_100kb_signature_value", "long_header", f"t={t},v1={'f' * 100_000}")
    add("long_100kb_timestamp_value", "long_header", f"t={'1' * 100_000},v1={good}")

    # --- bodies -----------------------------------------------------------
    add("empty_body", "empty_body", std(body=b""), body=b"")
    add("empty_body_wrong_sig", "empty_body", std(), body=b"")
    invalid = b'{"a":"\xff\xfe"}'
    add("non_utf8_signed_raw_bytes", "non_utf8_body", std(body=invalid), body=invalid)
    lossy = invalid.decode("utf-8", errors="replace").encode("utf-8")
    add("non_utf8_signed_lossy_decoding", "non_utf8_body", std(body=lossy), body=invalid)
    add("non_utf8_signed_both_ways", "non_utf8_body", f"t={t},v1={sig(invalid, t)},v1={sig(lossy, t)}", body=invalid)
    latin1 = "café".encode("latin-1")
    add("non_utf8_latin1", "non_utf8_body", std(body=latin1), body=latin1)
    surrogate = b'"\xed\xa0\x80"'  # UTF-8-encoded surrogate: invalid for both decoders
    add("non_utf8_encoded_surrogate", "non_utf8_body", std(body=surrogate), body=surrogate)
    overlong = b'"\xc0\xaf"'
    add("non_utf8_overlong", "non_utf8_body", std(body=overlong), body=overlong)
    add("non_utf8_truncated_sequence", "non_utf8_body", std(body=b'"\xe2\x82"'), body=b'"\xe2\x82"')
    all_bytes = bytes(range(256))
    add("binary_all_bytes", "non_utf8_body", std(body=all_bytes), body=all_bytes)
    nul = b'{"a":"\x00"}'
    add("body_with_nul", "valid", std(body=nul), body=nul)
    bom_body = BOM + BODY
    add("bom_body_signed_with_bom", "bom_body", std(body=bom_body), body=bom_body)
    add("bom_body_signed_without_bom", "bom_body", std(body=BODY), body=bom_body)
    add("bom_body_signed_both_ways", "bom_body", f"t={t},v1={sig(bom_body, t)},v1={sig(BODY, t)}", body=bom_body)
    add("bom_in_middle_of_body", "bom_body", std(body=b"{}" + BOM), body=b"{}" + BOM)

    # --- duplicate t ------------------------------------------------------
    add("duplicate_t_same_value", "duplicate_t", f"t={t},t={t},v1={good}")
    add("duplicate_t_same_number_different_spelling", "duplicate_t", f"t={t},t=0{t},v1={good}")
    add("duplicate_t_signed_first", "duplicate_t", f"t={t},t={t + 1},v1={good}")
    add("duplicate_t_signed_last", "duplicate_t", f"t={t - 1},t={t},v1={good}")
    add("duplicate_t_both_signatures", "duplicate_t", f"t={t},t={t + 1},v1={good},v1={sig(BODY, t + 1)}")
    add("duplicate_t_second_garbage", "duplicate_t", f"t={t},t=garbage,v1={good}")
    add("duplicate_t_first_garbage", "duplicate_t", f"t=garbage,t={t},v1={good}")
    add("duplicate_t_middle_garbage", "duplicate_t", f"t={t},t=garbage,t={t},v1={good}")
    add("t_without_equals_then_t", "duplicate_t", f"t,t={t},v1={good}")
    add("t_then_t_without_equals", "duplicate_t", f"t={t},t,v1={good}")

    # --- timestamp spellings -------------------------------------------------
    add("t_nan_signed_nan", "t_nan", f"t=NaN,v1={sig(BODY, 'NaN')}")
    add("t_nan_tolerance_zero", "t_nan", f"t=NaN,v1={sig(BODY, 'NaN')}", tolerance=0)
    add("t_infinity", "t_nan", f"t=Infinity,v1={sig(BODY, 'NaN')}")
    add("t_exponent_1e9_signed_1", "t_exponent", f"t=1e9,v1={sig(BODY, 1)}", tolerance=0)
    add("t_exponent_1e9_signed_1e9", "t_exponent", f"t=1e9,v1={sig(BODY, 10**9)}", tolerance=0)
    add("t_exponent_1e9_signed_verbatim", "t_exponent", f"t=1e9,v1={sig(BODY, '1e9')}", tolerance=0)
    add("t_exponent_suffix_e0", "t_exponent", f"t={t}e0,v1={good}")
    add("t_plus_sign", "t_plus", f"t=+{t},v1={good}")
    add("t_plus_sign_signed_verbatim", "t_plus", f"t=+{t},v1={sig(BODY, '+' + str(t))}")
    add("t_double_plus", "t_plus", f"t=++{t},v1={good}")
    add("t_plus_minus", "t_plus", f"t=+-{t},v1={good}")
    add("t_leading_space", "t_space", f"t= {t},v1={good}")
    add("t_leading_space_signed_verbatim", "t_space", f"t= {t},v1={sig(BODY, ' ' + str(t))}")
    add("t_trailing_space", "t_space", f"t={t} ,v1={good}")
    add("t_space_before_equals", "t_space", f"t ={t},v1={good}")
    add("t_space_inside_number", "t_space", f"t={str(t)[:5]} {str(t)[5:]},v1={good}")
    add("t_leading_tab", "t_space", f"t=\t{t},v1={good}")
    add("t_trailing_tab_newline", "t_space", f"t={t}\t\n,v1={good}")
    add("t_space_after_sign", "t_space", f"t=+ {t},v1={good}")
    add("t_trailing_garbage_letters", "trailing_garbage", f"t={t}abc,v1={good}")
    add("t_trailing_garbage_decimal", "trailing_garbage", f"t={t}.5,v1={good}")
    add("t_trailing_garbage_decimal_zero", "trailing_garbage", f"t={t}.0,v1={good}")
    add("t_trailing_garbage_signed_verbatim", "trailing_garbage", f"t={t}abc,v1={sig(BODY, str(t) + 'abc')}")
    add("t_hex_prefix", "trailing_garbage", f"t=0x{t:x},v1={sig(BODY, 0)}", tolerance=0)
    add("t_leading_zeros", "t_leading_zeros", f"t=000{t},v1={good}")
    add("t_leading_zeros_signed_verbatim", "t_leading_zeros", f"t=000{t},v1={sig(BODY, '000' + str(t))}")
    add("t_underscores", "t_underscore", f"t={t:_},v1={good}")
    add("t_underscores_zero", "t_underscore", f"t=0_0,v1={sig(BODY, 0)}", tolerance=0)
    add("t_underscore_trailing", "t_underscore", f"t={t}_,v1={good}")
    add("t_fullwidth_digits", "t_unicode", f"t={str(t).translate(str.maketrans('0123456789', '０１２３４５６７８９'))},v1={good}")
    add("t_arabic_indic_digits", "t_unicode", f"t={str(t).translate(str.maketrans('0123456789', '٠١٢٣٤٥٦٧٨٩'))},v1={good}")
    add("t_ascii_then_arabic_indic_zero", "t_unicode", f"t={t}٠,v1={good}")
    add("t_zero_then_arabic_indic_zero_tolerance_zero", "t_unicode", f"t=0٠,v1={sig(BODY, 0)}", tolerance=0)

    # Leading and trailing characters around the t value, one by one.
    probe_chars = {
        "space": " ", "tab": "\t", "lf": "\n", "vt": "\x0b", "ff": "\x0c", "cr": "\r",
        "x1c": "\x1c", "x1f": "\x1f", "nel_x85": "\x85", "nbsp_xa0": "\xa0",
        "ogham_1680": "\u1680", "en_quad_2000": "\u2000", "hair_space_200a": "\u200a",
        "zwsp_200b": "\u200b", "line_sep_2028": "\u2028", "para_sep_2029": "\u2029",
        "nnbsp_202f": "\u202f", "mmsp_205f": "\u205f", "ideographic_3000": "\u3000",
        "bom_feff": "\ufeff", "mongolian_vs_180e": "\u180e", "nul": "\x00",
    }
    for label, ch in probe_chars.items():
        add(f"t_probe_leading_{label}", "t_whitespace_probe", f"t={ch}{t},v1={good}")
        add(f"t_probe_trailing_{label}", "t_whitespace_probe", f"t={t}{ch},v1={good}")

    # Python caps int() at 4300 digits (leading zeros count).
    for total in (4300, 4301):
        padded = "0" * (total - len(str(t))) + str(t)
        add(f"t_python_digit_limit_{total}", "t_leading_zeros", f"t={padded},v1={good}")

    # --- v1 value shapes ----------------------------------------------------
    add("empty_v1_only", "empty_v1", f"t={t},v1=")
    add("empty_v1_then_valid", "empty_v1", f"t={t},v1=,v1={good}")
    add("valid_then_empty_v1", "empty_v1", f"t={t},v1={good},v1=")
    add("v1_without_equals_then_valid", "empty_v1", f"t={t},v1,v1={good}")
    add("valid_then_v1_without_equals", "empty_v1", f"t={t},v1={good},v1")
    add("non_ascii_v1_before_valid", "non_ascii_v1", f"t={t},v1=é,v1={good}")
    add("non_ascii_v1_after_valid", "non_ascii_v1", f"t={t},v1={good},v1=é")
    add("non_ascii_v1_64_units_after_valid", "non_ascii_v1", f"t={t},v1={good},v1={'é' * 64}")
    add("non_ascii_v1_64_units_before_valid", "non_ascii_v1", f"t={t},v1={'é' * 64},v1={good}")
    add("non_ascii_v1_astral_after_valid", "non_ascii_v1", f"t={t},v1={good},v1={'🔑' * 32}")
    add("non_ascii_v1_only", "non_ascii_v1", f"t={t},v1=é")

    # --- whitespace around items ------------------------------------------
    add("space_after_comma_before_v1", "spaces_after_commas", f"t={t}, v1={good}")
    add("space_after_comma_before_t", "spaces_after_commas", f"v1={good}, t={t}")
    add("spaces_everywhere", "spaces_after_commas", f"t={t}, v1={good}, v0=abc")
    add("space_before_v1_key_with_valid_too", "spaces_after_commas", f"t={t}, v1={bad},v1={good}")
    add("leading_space_header", "spaces_after_commas", f" t={t},v1={good}")
    add("trailing_space_header", "spaces_after_commas", f"t={t},v1={good} ")
    add("space_around_equals_v1", "spaces_after_commas", f"t={t},v1 ={good}")

    # --- '=' inside values ------------------------------------------------
    add("equals_in_v1_value", "equals_in_value", f"t={t},v1={good}=extra")
    add("equals_in_v1_value_trailing", "equals_in_value", f"t={t},v1={good}=")
    add("equals_in_t_value", "equals_in_value", f"t={t}=123,v1={good}")
    add("equals_double_before_t_value", "equals_in_value", f"t=={t},v1={good}")
    add("equals_in_unknown_item", "equals_in_value", f"t={t},x=a=b=c,v1={good}")
    add("equals_many_in_v1_value", "equals_in_value", f"t={t},v1={good}===")

    # --- dual-interpretation headers (only a secret holder can build these) --
    add("dual_t_nan_and_number", "dual_signature",
        f"t={t},t=NaN,v1={good},v1={sig(BODY, 'NaN')}", tolerance=0)

    fuzz()
    fuzz_timestamps()


FUZZ_TOKENS = [",", "=", " ", "\t", "t", "v1", "v0", "0", "1", "-", "+", "_", "a", "A", "é",
               "\u3000", "\xa0", "\x85", "\ufeff", "\x1c", "N", "e", ".", "v1=", "t=", ",,"]


def fuzz():
    rng = random.Random(20240601)
    bodies = [FUZZ_BODY, FUZZ_BODY + b" ", BOM + FUZZ_BODY, FUZZ_BODY[:-1], b"\xff" + FUZZ_BODY, b"", b"{}"]
    secret_sets = [[SECRET], [SECRET, OLD_SECRET], [OLD_SECRET], [OLD_SECRET, SECRET]]
    for i in range(400):
        body = bodies[0] if rng.random() < 0.7 else rng.choice(bodies)
        signed_body = body if rng.random() < 0.8 else rng.choice(bodies)
        ts = NOW - rng.choice([0, 10, 299, 300, 301, 5000, -100])
        signer = SECRET if rng.random() < 0.8 else OLD_SECRET
        items = [f"t={ts}", f"v1={sig(signed_body, ts, signer)}"]
        if rng.random() < 0.3:
            items.append(f"v0={sig(signed_body, ts, signer)}")
        if rng.random() < 0.3:
            items.insert(rng.randrange(len(items) + 1), f"v1={sig(signed_body, ts, OTHER_SECRET)}")
        if rng.random() < 0.3:
            rng.shuffle(items)
        header = ",".join(items)
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            op = rng.random()
            pos = rng.randrange(len(header) + 1)
            if op < 0.5:
                header = header[:pos] + rng.choice(FUZZ_TOKENS) + header[pos:]
            elif op < 0.75:
                header = header[:pos] + header[pos + rng.randint(1, 3):]
            else:
                header = header[:pos] + rng.choice(FUZZ_TOKENS) + header[pos + 1:]
        tolerance = 0 if rng.random() < 0.1 else TOL
        add(f"fuzz_{i:03}", "fuzz", header, body=body, secrets=rng.choice(secret_sets), tolerance=tolerance)


T_PIECES_WS = [""] * 8 + [" ", "\t", "\n", "\xa0", "\u3000", "\x85", "\ufeff", "\x1c", "\u200b"]
T_PIECES_SIGN = ["", "", "", "+", "-", "--", "+-"]
T_PIECES_TAIL = [""] * 10 + ["0", "_0", "_", "e3", ".0", "x", "abc", "٠", "=9", "NaN"]


def random_t_value(rng, ts):
    digits = str(abs(ts))
    if rng.random() < 0.3:
        digits = "0" * rng.randint(1, 3) + digits
    if len(digits) > 1 and rng.random() < 0.15:
        cut = rng.randint(1, len(digits) - 1)
        digits = digits[:cut] + "_" + digits[cut:]
    sign = "-" if ts < 0 else rng.choice(T_PIECES_SIGN)
    return rng.choice(T_PIECES_WS) + sign + digits + rng.choice(T_PIECES_TAIL) + rng.choice(T_PIECES_WS)


def fuzz_timestamps():
    """Random spellings of the t value (and duplicates), each signed under one
    SDK's reading, so that accepted and rejected verdicts both show up."""
    rng = random.Random(77)
    for i in range(250):
        ts = NOW - rng.choice([0, 5, 5, 299, 299, 300, 301]) if rng.random() < 0.85 else rng.choice([-5, -1, 0, 1, 7])
        tolerance = TOL if ts > 1000 and rng.random() < 0.85 else 0
        values = [random_t_value(rng, ts)]
        if rng.random() < 0.25:
            values.append(random_t_value(rng, ts if rng.random() < 0.5 else ts + 1))
        py_reading = values[0]
        node_reading = values[-1]
        reading = py_reading if rng.random() < 0.5 else node_reading
        try:
            signed_ts = str(int(reading))
        except ValueError:
            signed_ts = reading.strip()
        if rng.random() < 0.15:
            signed_ts = reading  # verbatim spelling
        items = [f"t={v}" for v in values] + [f"v1={sig(FUZZ_BODY, signed_ts)}"]
        if rng.random() < 0.3:
            rng.shuffle(items)
        add(f"fuzz_t_{i:03}", "fuzz", ",".join(items), body=FUZZ_BODY, tolerance=tolerance)


def sign_cases():
    """(body, secret, t) triples for which the SDKs' own header generators run."""
    return [
        {"name": "sign_basic", "body_hex": BODY.hex(), "secret": SECRET, "t": NOW},
        {"name": "sign_empty_body", "body_hex": "", "secret": SECRET, "t": NOW},
        {"name": "sign_unicode", "body_hex": '{"x":"東京"}'.encode().hex(), "secret": "whsec_ü", "t": 1},
        {"name": "sign_small_time", "body_hex": "7b7d", "secret": OLD_SECRET, "t": 7},
        {"name": "sign_large_time", "body_hex": "7b7d", "secret": SECRET, "t": 4_102_444_800},
    ]


if __name__ == "__main__":
    build()
    json.dump({"cases": CASES, "sign_cases": sign_cases()}, sys.stdout, ensure_ascii=True)
