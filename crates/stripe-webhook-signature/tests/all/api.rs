//! Behaviour of the public API: rotation, every error variant, tolerance
//! semantics, signing and redaction of secrets.

use std::time::Duration;

use stripe_webhook_signature::{
    DEFAULT_TOLERANCE, HeaderDefect, InvalidSecrets, Secret, SignatureError, Verified, Verifier,
    sign, sign_header,
};

const NOW: i64 = 1_700_000_000;
const CURRENT: &str = "whsec_current_Zq8wNn3kL0pA";
const PREVIOUS: &str = "whsec_previous_Yb4cVx7mT2sD";
const BODY: &[u8] = br#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#;

fn verifier() -> Verifier {
    Verifier::new([CURRENT]).unwrap()
}

fn header(t: i64) -> String {
    sign(BODY, CURRENT, t)
}

fn v1(t: i64, secret: &str) -> String {
    sign_header(BODY, secret, t).v1().to_owned()
}

fn malformed(defect: HeaderDefect) -> Result<Verified, SignatureError> {
    Err(SignatureError::MalformedHeader(defect))
}

#[test]
fn accepts_a_fresh_signature_and_reports_what_it_verified() {
    let verified = verifier().verify_at(BODY, &header(NOW - 10), NOW).unwrap();
    assert_eq!(verified.timestamp(), NOW - 10);
    assert_eq!(verified.secret_index(), 0);
}

#[test]
fn verify_uses_the_system_clock() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(verifier().verify(BODY, &header(now)).is_ok());
    assert!(verifier().verify_opt(BODY, Some(&header(now))).is_ok());
    assert!(matches!(
        verifier().verify(BODY, &header(now - 3600)),
        Err(SignatureError::TimestampOutsideTolerance { .. })
    ));
}

#[test]
fn rotation_accepts_old_and_new_and_tells_which_matched() {
    let both = Verifier::new([CURRENT, PREVIOUS]).unwrap();
    assert_eq!(both.secret_count(), 2);

    let by_new = both
        .verify_at(BODY, &sign(BODY, CURRENT, NOW), NOW)
        .unwrap();
    assert_eq!(by_new.secret_index(), 0);
    let by_old = both
        .verify_at(BODY, &sign(BODY, PREVIOUS, NOW), NOW)
        .unwrap();
    assert_eq!(by_old.secret_index(), 1);

    // Stripe sends one v1 per active secret during a rotation.
    let dual = format!("t={NOW},v1={},v1={}", v1(NOW, PREVIOUS), v1(NOW, CURRENT));
    assert_eq!(both.verify_at(BODY, &dual, NOW).unwrap().secret_index(), 0);
    assert_eq!(
        Verifier::new([PREVIOUS])
            .unwrap()
            .verify_at(BODY, &dual, NOW)
            .unwrap()
            .secret_index(),
        0
    );

    // Once the old secret is dropped, its signatures stop verifying.
    assert_eq!(
        verifier().verify_at(BODY, &sign(BODY, PREVIOUS, NOW), NOW),
        Err(SignatureError::NoSignatureMatched)
    );
}

#[test]
fn secrets_can_be_given_in_many_forms() {
    let owned = String::from(CURRENT);
    let h = header(NOW);
    assert!(
        Verifier::new([owned.clone()])
            .unwrap()
            .verify_at(BODY, &h, NOW)
            .is_ok()
    );
    assert!(
        Verifier::new(vec![&owned])
            .unwrap()
            .verify_at(BODY, &h, NOW)
            .is_ok()
    );
    assert!(
        Verifier::new([Secret::new(CURRENT)])
            .unwrap()
            .verify_at(BODY, &h, NOW)
            .is_ok()
    );
    let secrets = vec![Secret::from(PREVIOUS), Secret::from(CURRENT)];
    assert!(
        Verifier::new(&secrets)
            .unwrap()
            .verify_at(BODY, &h, NOW)
            .is_ok()
    );
    // Used verbatim: surrounding whitespace is part of the key.
    assert_eq!(
        Verifier::new([format!("{CURRENT}\n")])
            .unwrap()
            .verify_at(BODY, &h, NOW),
        Err(SignatureError::NoSignatureMatched)
    );
}

#[test]
fn invalid_secrets() {
    assert_eq!(
        Verifier::new(Vec::<String>::new()).unwrap_err(),
        InvalidSecrets::NoSecrets
    );
    assert_eq!(
        Verifier::new([CURRENT, ""]).unwrap_err(),
        InvalidSecrets::BlankSecret { index: 1 }
    );
    assert_eq!(
        Verifier::new([" \t\r\n"]).unwrap_err(),
        InvalidSecrets::BlankSecret { index: 0 }
    );
    assert!(Secret::new("").is_blank());
}

#[test]
fn missing_header_variants() {
    let v = verifier();
    assert_eq!(
        v.verify_at(BODY, "", NOW),
        Err(SignatureError::MissingHeader)
    );
    assert_eq!(
        v.verify_at(BODY, " \t ", NOW),
        Err(SignatureError::MissingHeader)
    );
    assert_eq!(
        v.verify_at_opt(BODY, None, NOW),
        Err(SignatureError::MissingHeader)
    );
    assert_eq!(v.verify_opt(BODY, None), Err(SignatureError::MissingHeader));
    assert!(v.verify_at_opt(BODY, Some(&header(NOW)), NOW).is_ok());
}

#[test]
fn malformed_header_variants() {
    let v = verifier();
    let good = v1(NOW, CURRENT);
    let check = |h: &str, defect| assert_eq!(v.verify_at(BODY, h, NOW), malformed(defect), "{h}");

    check("garbage", HeaderDefect::NoTimestamp);
    check(&format!("v1={good}"), HeaderDefect::NoTimestamp);
    check(&format!("v1={good}, t={NOW}"), HeaderDefect::NoTimestamp);
    check(
        &format!("t,t={NOW},v1={good}"),
        HeaderDefect::ItemWithoutEquals,
    );
    check(
        &format!("t={NOW},v1,v1={good}"),
        HeaderDefect::ItemWithoutEquals,
    );
    check(&format!("t=NaN,v1={good}"), HeaderDefect::InvalidTimestamp);
    check(
        &format!("t={NOW}abc,v1={good}"),
        HeaderDefect::InvalidTimestamp,
    );
    check(&format!("t=1e9,v1={good}"), HeaderDefect::InvalidTimestamp);
    check(
        &format!("t=1_700_000_000,v1={good}"),
        HeaderDefect::InvalidTimestamp,
    );
    check(&format!("t=-1,v1={good}"), HeaderDefect::InvalidTimestamp);
    check(&format!("t=,v1={good}"), HeaderDefect::InvalidTimestamp);
    check(
        &format!("t={NOW},t={},v1={good}", NOW + 1),
        HeaderDefect::ConflictingTimestamps,
    );
    check(
        &format!("t=99999999999999999999,v1={good}"),
        HeaderDefect::TimestampOutOfRange,
    );
    check(
        &format!("t={NOW},v1=,v1={good}"),
        HeaderDefect::EmptySignature,
    );
    check(
        &format!("t={NOW},v1={},v1={good}", "é".repeat(64)),
        HeaderDefect::NonAsciiSignature,
    );
    check(
        &format!("t={NOW},v1=é,v1={good}"),
        HeaderDefect::NonAsciiSignature,
    );
}

#[test]
fn timestamp_spellings_both_sdks_accept() {
    let v = verifier();
    let good = v1(NOW, CURRENT);
    for t in [
        format!("{NOW}"),
        format!("+{NOW}"),
        format!("00{NOW}"),
        format!(" {NOW}"),
        format!("{NOW} "),
        format!("\t{NOW}\n"),
        format!("\u{3000}{NOW}"),
        format!("{NOW}=ignored"),
    ] {
        let h = format!("t={t},v1={good}");
        assert_eq!(
            v.verify_at(BODY, &h, NOW).map(|x| x.timestamp()),
            Ok(NOW),
            "{h:?}"
        );
    }
    // Identical duplicates are read alike by both SDKs.
    let dup = format!("t={NOW},t=0{NOW},v1={good}");
    assert!(v.verify_at(BODY, &dup, NOW).is_ok());
}

#[test]
fn no_v1_signature() {
    let v = verifier();
    let good = v1(NOW, CURRENT);
    for h in [
        format!("t={NOW}"),
        format!("t={NOW},v0={good}"),
        format!("t={NOW},V1={good}"),
        format!("t={NOW}, v1={good}"),
    ] {
        assert_eq!(
            v.verify_at(BODY, &h, NOW),
            Err(SignatureError::NoV1Signature),
            "{h}"
        );
    }
}

#[test]
fn body_encoding_errors() {
    let v = verifier();
    let latin1 = b"caf\xe9";
    assert_eq!(
        v.verify_at(latin1, &sign(latin1, CURRENT, NOW), NOW),
        Err(SignatureError::BodyNotUtf8)
    );
    let bom = b"\xEF\xBB\xBF{}";
    assert_eq!(
        v.verify_at(bom, &sign(bom, CURRENT, NOW), NOW),
        Err(SignatureError::BodyStartsWithByteOrderMark)
    );
    // A BOM elsewhere, NUL bytes and an empty body are fine.
    for body in [&b"{}\xEF\xBB\xBF"[..], b"{\"a\":\"\0\"}", b""] {
        assert!(v.verify_at(body, &sign(body, CURRENT, NOW), NOW).is_ok());
    }
}

#[test]
fn no_signature_matched() {
    let v = verifier();
    let good = v1(NOW, CURRENT);
    let tampered = br#"{"id":"evt_1","object":"event","type":"invoice.paid"} "#;
    assert_eq!(
        v.verify_at(tampered, &header(NOW), NOW),
        Err(SignatureError::NoSignatureMatched)
    );
    for h in [
        sign(BODY, "whsec_other", NOW),
        format!("t={NOW},v1={}", good.to_uppercase()),
        format!("t={NOW},v1={}", &good[1..]),
        format!("t={NOW},v1= {good}"),
        format!("t={},v1={good}", NOW - 1),
    ] {
        assert_eq!(
            v.verify_at(BODY, &h, NOW),
            Err(SignatureError::NoSignatureMatched),
            "{h}"
        );
    }
    // Many decoys, the good one last.
    let decoys: Vec<String> = (0..1000)
        .map(|i| format!("v1={}", v1(NOW, &format!("whsec_{i}"))))
        .collect();
    let long = format!("t={NOW},{},v1={good}", decoys.join(","));
    assert!(v.verify_at(BODY, &long, NOW).is_ok());
    // A signature is checked before the age: a forged stale header reports the mismatch.
    assert_eq!(
        v.verify_at(BODY, &sign(BODY, "whsec_other", NOW - 10_000), NOW),
        Err(SignatureError::NoSignatureMatched)
    );
}

#[test]
fn tolerance_semantics() {
    let v = verifier();
    assert_eq!(v.tolerance(), Some(DEFAULT_TOLERANCE));
    assert_eq!(DEFAULT_TOLERANCE, Duration::from_secs(300));

    assert!(v.verify_at(BODY, &header(NOW - 299), NOW).is_ok());
    // Exactly at the tolerance: stripe-python rejects (fractional clock), so do we.
    assert_eq!(
        v.verify_at(BODY, &header(NOW - 300), NOW),
        Err(SignatureError::TimestampOutsideTolerance {
            age_secs: 300,
            tolerance_secs: 300
        })
    );
    // Future timestamps are accepted by both SDKs, far future too.
    assert!(v.verify_at(BODY, &header(NOW + 3600), NOW).is_ok());
    assert!(v.verify_at(BODY, &header(4_102_444_800), NOW).is_ok());

    let short = verifier().with_tolerance(Duration::from_millis(60_900));
    assert_eq!(short.tolerance(), Some(Duration::from_secs(60)));
    assert!(short.verify_at(BODY, &header(NOW - 59), NOW).is_ok());
    assert!(short.verify_at(BODY, &header(NOW - 60), NOW).is_err());

    let zero = verifier().with_tolerance(Duration::ZERO);
    assert!(zero.verify_at(BODY, &header(NOW), NOW).is_err());
    assert!(zero.verify_at(BODY, &header(NOW + 1), NOW).is_ok());

    let off = verifier().without_timestamp_check();
    assert_eq!(off.tolerance(), None);
    assert!(off.verify_at(BODY, &header(0), NOW).is_ok());
    assert!(off.verify_at(BODY, &header(-5), NOW).is_ok());

    // Extreme clocks do not overflow (2^53 is the largest timestamp both SDKs print alike).
    let limit = 9_007_199_254_740_992;
    assert!(matches!(
        v.verify_at(BODY, &header(-limit), i64::MAX),
        Err(SignatureError::TimestampOutsideTolerance {
            age_secs: i64::MAX,
            ..
        })
    ));
    assert!(v.verify_at(BODY, &header(limit), i64::MIN).is_ok());
    assert_eq!(
        v.verify_at(BODY, &header(i64::MAX), NOW),
        malformed(HeaderDefect::InvalidTimestamp)
    );
}

#[test]
fn sign_and_sign_header_agree() {
    let h = sign_header(BODY, CURRENT, NOW);
    assert_eq!(h.timestamp(), NOW);
    assert_eq!(h.v1().len(), 64);
    assert!(
        h.v1()
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(h.to_string(), sign(BODY, CURRENT, NOW));
    assert_eq!(h.to_string(), format!("t={NOW},v1={}", h.v1()));
    assert_eq!(sign(b"", "k", -3).split(',').next(), Some("t=-3"));
}

#[test]
fn known_answer() {
    // Computed independently with
    // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test_secret",b"1700000000.{}",hashlib.sha256).hexdigest())'
    assert_eq!(
        sign(b"{}", "whsec_test_secret", 1_700_000_000),
        "t=1700000000,v1=ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3"
    );
}

#[test]
fn nothing_prints_a_secret() {
    let secret = "whsec_SUPER_SECRET_VALUE_42";
    let v = Verifier::new([secret, PREVIOUS]).unwrap();
    let debug = format!("{v:?} {v:#?} {:?}", Secret::new(secret));
    assert!(
        !debug.contains(secret) && !debug.contains("SUPER_SECRET"),
        "{debug}"
    );
    assert!(!debug.contains(PREVIOUS));
    assert!(debug.contains("Secret(***)"));
    assert!(debug.contains("x2"), "{debug}");

    let errors = [
        v.verify_at(BODY, "", NOW),
        v.verify_at(BODY, "t=x,v1=y", NOW),
        v.verify_at(BODY, "t=1", NOW),
        v.verify_at(b"\xff", &sign(b"\xff", secret, NOW), NOW),
        v.verify_at(b"\xEF\xBB\xBF", &sign(b"\xEF\xBB\xBF", secret, NOW), NOW),
        v.verify_at(BODY, &sign(BODY, "whsec_x", NOW), NOW),
        v.verify_at(BODY, &sign(BODY, secret, 0), NOW),
    ];
    for error in errors {
        let error = error.unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(
            !text.contains("SUPER_SECRET") && !text.contains("whsec"),
            "{text}"
        );
    }
    let config = Verifier::new([secret, " "]).unwrap_err();
    assert!(!format!("{config} {config:?}").contains("SUPER_SECRET"));
}

#[test]
fn error_messages_are_helpful() {
    let stale = verifier()
        .verify_at(BODY, &header(NOW - 1000), NOW)
        .unwrap_err();
    assert_eq!(
        stale.to_string(),
        "the signed timestamp is 1000 s old, outside the tolerance of 300 s"
    );
    assert_eq!(
        SignatureError::MalformedHeader(HeaderDefect::NoTimestamp).to_string(),
        "the Stripe-Signature header is malformed: no t= timestamp"
    );
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(stale);
    assert!(boxed.to_string().contains("tolerance"));
}

#[test]
fn types_are_shareable() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    assert_traits::<Verifier>();
    assert_traits::<Secret>();
    assert_traits::<SignatureError>();
    assert_traits::<InvalidSecrets>();
    assert_traits::<Verified>();
}
