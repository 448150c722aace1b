//! Property tests: verification never panics, whatever the bytes, and the
//! accept/reject decisions keep their invariants.

use std::time::Duration;

use proptest::prelude::*;
use stripe_webhook_signature::{SignatureError, Verifier, sign, sign_header};

const SECRET: &str = "whsec_prop_secret";
const OLD: &str = "whsec_prop_old";

fn verifier() -> Verifier {
    Verifier::new([SECRET, OLD]).unwrap()
}

/// Characters that matter to the parsers, plus arbitrary ones.
fn header_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            ',', '=', 't', 'v', '1', '0', '9', '-', '+', '_', ' ', '\t', '\n', 'e', 'N', 'a', 'f',
            '.', '\u{a0}', '\u{85}', '\u{3000}', '\u{feff}', '\u{1c}', 'é', '🔑', '\0',
        ]),
        1 => any::<char>(),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, String),
    Delete(usize, usize),
    Replace(usize, char),
    DuplicateItem(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let token = prop_oneof![
        header_char().prop_map(String::from),
        prop::sample::select(vec![
            ",", "t=", "v1=", ",v1=", ",t=", "==", ",,", " ", "00", "NaN", "1e9", "-1", "_",
        ])
        .prop_map(String::from),
    ];
    prop_oneof![
        (any::<usize>(), token).prop_map(|(at, s)| Edit::Insert(at, s)),
        (any::<usize>(), 1usize..4).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), header_char()).prop_map(|(at, c)| Edit::Replace(at, c)),
        any::<usize>().prop_map(Edit::DuplicateItem),
    ]
}

/// Applies an edit at a char boundary (positions are taken modulo the length).
fn apply(header: &str, edit: &Edit) -> String {
    let chars: Vec<char> = header.chars().collect();
    let at = |i: usize| i % (chars.len() + 1);
    match edit {
        Edit::Insert(i, s) => {
            let i = at(*i);
            chars[..i].iter().collect::<String>() + s + &chars[i..].iter().collect::<String>()
        }
        Edit::Delete(i, n) => {
            let i = at(*i);
            let end = (i + n).min(chars.len());
            chars[..i].iter().chain(&chars[end..]).collect()
        }
        Edit::Replace(i, c) => {
            let mut chars = chars.clone();
            if !chars.is_empty() {
                let i = *i % chars.len();
                chars[i] = *c;
            }
            chars.into_iter().collect()
        }
        Edit::DuplicateItem(i) => {
            let items: Vec<&str> = header.split(',').collect();
            let item = items[*i % items.len()];
            format!("{header},{item}")
        }
    }
}

fn utf8_body() -> impl Strategy<Value = Vec<u8>> {
    ".{0,200}"
        .prop_map(String::into_bytes)
        .prop_filter("no leading BOM", |b| !b.starts_with(b"\xEF\xBB\xBF"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_header_and_body_never_panic(
        header in prop::collection::vec(header_char(), 0..300).prop_map(|c| c.into_iter().collect::<String>()),
        body in prop::collection::vec(any::<u8>(), 0..300),
        now in any::<i64>(),
    ) {
        let v = verifier();
        let _ = v.verify_at(&body, &header, now);
        let _ = v.verify_at_opt(&body, Some(&header), now);
        let _ = v.clone().without_timestamp_check().verify_at(&body, &header, now);
        let _ = v.with_tolerance(Duration::MAX).verify_at(&body, &header, now);
    }

    #[test]
    fn arbitrary_strings_never_panic(header in any::<String>(), body in any::<Vec<u8>>(), now in any::<i64>()) {
        let _ = verifier().verify_at(&body, &header, now);
        let _ = sign(&body, &header, now);
    }

    #[test]
    fn mutated_valid_headers_never_panic_and_only_accept_genuine_signatures(
        body in utf8_body(),
        t in 1_600_000_000i64..1_800_000_000,
        age in -1000i64..1000,
        use_old in any::<bool>(),
        edits in prop::collection::vec(edit(), 0..4),
    ) {
        let secret = if use_old { OLD } else { SECRET };
        let mut header = sign(&body, secret, t);
        for e in &edits {
            header = apply(&header, e);
        }
        let now = t + age;
        if let Ok(verified) = verifier().verify_at(&body, &header, now) {
            let ts = verified.timestamp();
            // The header must carry the genuine signature for the timestamp it was read with.
            let genuine = sign_header(&body, [SECRET, OLD][verified.secret_index()], ts);
            prop_assert!(header.contains(genuine.v1()), "accepted {header:?} without a genuine v1");
            prop_assert!(now - ts < 300, "accepted a stale timestamp {ts} at {now}");
        }
    }

    #[test]
    fn sign_then_verify_round_trips(
        body in utf8_body(),
        secret in "[ -~]{1,80}".prop_filter("not blank", |s| !s.trim().is_empty()),
        t in -9_007_199_254_740_992i64..=9_007_199_254_740_992,
        age in i64::MIN / 4..300,
    ) {
        prop_assume!(t != -1);
        let now = t.saturating_add(age);
        let v = Verifier::new([secret.as_str()]).unwrap();
        let header = sign(&body, &secret, t);
        let verified = v.verify_at(&body, &header, now).unwrap();
        prop_assert_eq!(verified.timestamp(), t);
        // Flipping any single byte of the body (keeping it UTF-8) breaks it.
        if let Some(pos) = body.iter().position(u8::is_ascii_alphanumeric) {
            let mut tampered = body.clone();
            tampered[pos] ^= 0x01;
            prop_assert_eq!(v.verify_at(&tampered, &header, now), Err(SignatureError::NoSignatureMatched));
        }
    }

    #[test]
    fn acceptance_is_monotonic_in_time(t in 0i64..2_000_000_000, age in 0i64..600) {
        let v = verifier();
        let body = br#"{"id":"evt"}"#;
        let header = sign(body, SECRET, t);
        let accepted = v.verify_at(body, &header, t + age).is_ok();
        if accepted {
            let earlier = v.verify_at(body, &header, t + age - 1).is_ok();
            prop_assert!(earlier);
        }
        prop_assert_eq!(accepted, age < 300);
    }
}
