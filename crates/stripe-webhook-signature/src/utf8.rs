//! UTF-8 validation tuned for JSON bodies, which are mostly ASCII.
//!
//! The remainder of the body is first tested with the standard library's
//! vectorised `is_ascii` (which stops at the first non-ASCII byte); when that
//! fails, the next block goes through `core::str::from_utf8`, resuming at a
//! character boundary when a multi-byte sequence straddles the block's end.
//! A body whose non-ASCII text sits in one place (a customer's name, say)
//! thus costs little more than one `is_ascii` pass. The verdict is exactly
//! `core::str::from_utf8(bytes).is_ok()`, which is also what CPython's strict
//! UTF-8 decoder accepts.

const BLOCK: usize = 512;

/// Whether `bytes` is well-formed UTF-8 (same verdict as `core::str::from_utf8`).
pub(crate) fn is_utf8(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    loop {
        if rest.is_ascii() {
            return true;
        }
        let (block, after) = rest.split_at(BLOCK.min(rest.len()));
        match core::str::from_utf8(block) {
            Ok(_) => rest = after,
            // A sequence cut by the block's end: resume at its first byte.
            Err(e) if e.error_len().is_none() && !after.is_empty() && e.valid_up_to() > 0 => {
                rest = rest.get(e.valid_up_to()..).unwrap_or_default();
            }
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BLOCK, is_utf8};
    use proptest::prelude::*;

    #[test]
    fn known_cases() {
        let valid: [&[u8]; 8] = [
            b"",
            b"plain ascii that is longer than thirty-two bytes, certainly",
            "Zoë — 東京 🚀".as_bytes(),
            b"\xF4\x8F\xBF\xBF",
            b"\xEF\xBB\xBF{}",
            b"\0",
            b"\xED\x9F\xBF",
            b"\xE0\xA0\x80",
        ];
        for v in valid {
            assert!(is_utf8(v), "{v:?}");
        }
        let invalid: [&[u8]; 11] = [
            b"\x80",
            b"\xC0\xAF",
            b"\xC1\xBF",
            b"\xE0\x80\x80",
            b"\xED\xA0\x80",
            b"\xF0\x80\x80\x80",
            b"\xF4\x90\x80\x80",
            b"\xF5\x80\x80\x80",
            b"\xFF",
            b"\xE2\x82",
            b"0123456789abcdef0123456789abcdef\xC3",
        ];
        for v in invalid {
            assert!(!is_utf8(v), "{v:?}");
        }
    }

    #[test]
    fn every_one_to_three_byte_sequence_matches_std() {
        for a in 0..=255u8 {
            assert_eq!(is_utf8(&[a]), core::str::from_utf8(&[a]).is_ok());
            for b in 0..=255u8 {
                assert_eq!(is_utf8(&[a, b]), core::str::from_utf8(&[a, b]).is_ok());
                for c in [
                    0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xED,
                    0xF0, 0xF4, 0xFF,
                ] {
                    let s = [a, b, c];
                    assert_eq!(is_utf8(&s), core::str::from_utf8(&s).is_ok(), "{s:x?}");
                }
            }
        }
    }

    #[test]
    fn sequences_straddling_block_boundaries() {
        let pieces: [&[u8]; 9] = [
            "é".as_bytes(),
            "€".as_bytes(),
            "🚀".as_bytes(),
            b"\xC3",
            b"\xE2\x82",
            b"\xF0\x9F\x9A",
            b"\xED\xA0\x80",
            b"\x80",
            b"\xF0\x9F\x9A\x80\x80",
        ];
        for len in [BLOCK - 1, BLOCK, BLOCK + 1, BLOCK + 2, 2 * BLOCK + 3] {
            for at in (BLOCK - 4)..=(BLOCK + 1) {
                for piece in pieces {
                    let mut bytes = vec![b'a'; len];
                    let at = at.min(len);
                    bytes.splice(at..at, piece.iter().copied());
                    assert_eq!(
                        is_utf8(&bytes),
                        core::str::from_utf8(&bytes).is_ok(),
                        "len {len} at {at} piece {piece:x?}"
                    );
                    bytes.truncate(at + piece.len());
                    assert_eq!(is_utf8(&bytes), core::str::from_utf8(&bytes).is_ok());
                }
            }
        }
    }

    fn mostly_text() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(b"abc {}\":,0123".to_vec()).prop_map(|b| vec![b]),
                2 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
                1 => any::<u8>().prop_map(|b| vec![b]),
                1 => prop::collection::vec(any::<u8>(), 0..5),
            ],
            0..2500,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn agrees_with_std(bytes in mostly_text()) {
            prop_assert_eq!(is_utf8(&bytes), core::str::from_utf8(&bytes).is_ok());
        }

        #[test]
        fn agrees_with_std_on_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(is_utf8(&bytes), core::str::from_utf8(&bytes).is_ok());
        }
    }
}
