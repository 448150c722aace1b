//! Reading the `Stripe-Signature` header the way both official SDKs do.
//!
//! Both SDKs split the header on `,`, then each item on `=`: the key is the
//! text before the first `=`, the value the text between the first and the
//! second `=` (anything after a second `=` is ignored), keys are compared
//! exactly (`t`, `v1`; no trimming, no case folding) and unknown items are
//! skipped. They differ in the details this module reproduces:
//!
//! * stripe-python reads the **first** `t` item with `int()`, which trims
//!   Python whitespace, accepts `+`/`-`, leading zeros and `_` between digits,
//!   refuses trailing garbage and more than 4300 digits, and then signs
//!   `"%d" % t` (the canonical decimal). Any `t` or `v1` item without `=`
//!   makes it fail.
//! * stripe-node reads the **last** `t` item with `parseInt(value, 10)`, which
//!   trims JavaScript whitespace, accepts a sign and stops at the first
//!   non-digit (so `1e9` is 1 and `NaN` is NaN), treats `-1` as "no
//!   timestamp", and signs `` `${t}` `` (JavaScript number formatting). It
//!   throws when a `v1` value is empty, or non-ASCII with exactly 64 UTF-16
//!   code units.
//!
//! A header is accepted here only when both readings give the same signed
//! timestamp string, so one HMAC serves both.

use core::fmt::{self, Write as _};

use crate::error::{HeaderDefect, SignatureError};

/// A header both SDKs read alike: its timestamp and how many `v1` items it has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParsedHeader {
    pub(crate) timestamp: i64,
    pub(crate) v1_count: usize,
}

/// Splits the header into `(key, value)` items as both SDKs do.
///
/// Each item is scanned once for the `,` ending it and its first two `=`;
/// all three are ASCII, so every cut falls on a char boundary.
pub(crate) fn items(header: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let bytes = header.as_bytes();
    let mut start = Some(0usize);
    core::iter::from_fn(move || {
        let from = start?;
        let mut end = bytes.len();
        let mut equals = [None::<usize>; 2];
        let mut cursor = from;
        while let Some(at) = bytes
            .get(cursor..)
            .and_then(find_delimiter)
            .map(|i| cursor + i)
        {
            if bytes.get(at) == Some(&b',') {
                end = at;
                break;
            }
            if equals[0].is_none() {
                equals[0] = Some(at);
            } else if equals[1].is_none() {
                equals[1] = Some(at);
            }
            cursor = at + 1;
        }
        start = (end < bytes.len()).then_some(end + 1);
        Some(match equals {
            [None, _] => (header.get(from..end)?, None),
            [Some(eq), second] => (
                header.get(from..eq)?,
                Some(header.get(eq + 1..second.unwrap_or(end))?),
            ),
        })
    })
}

/// Index of the first `,` or `=`, looking at eight bytes at a time.
fn find_delimiter(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Exact "some byte of `word` equals `byte`" test (classic SWAR zero-byte check).
    let has = |word: u64, byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    let mut skipped = 0;
    while let Some(chunk) = bytes.get(skipped..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        if has(word, b',') || has(word, b'=') {
            break;
        }
        skipped += 8;
    }
    let tail = bytes.get(skipped..)?;
    tail.iter()
        .position(|&b| b == b',' || b == b'=')
        .map(|i| skipped + i)
}

/// The `v1` values in header order.
pub(crate) fn v1_values(header: &str) -> impl Iterator<Item = &str> {
    items(header).filter_map(|(key, value)| if key == "v1" { value } else { None })
}

fn malformed(defect: HeaderDefect) -> SignatureError {
    SignatureError::MalformedHeader(defect)
}

/// Reads the header; fails unless both SDKs would get the same timestamp and
/// neither would give up on the header's shape.
pub(crate) fn parse(header: &str) -> Result<ParsedHeader, SignatureError> {
    let mut first_t = None;
    let mut last_t = None;
    let mut t_items = 0usize;
    let mut v1_count = 0usize;
    for (key, value) in items(header) {
        match key {
            "t" => {
                let value = value.ok_or(malformed(HeaderDefect::ItemWithoutEquals))?;
                first_t.get_or_insert(value);
                last_t = Some(value);
                t_items += 1;
            }
            "v1" => {
                let value = value.ok_or(malformed(HeaderDefect::ItemWithoutEquals))?;
                if value.is_empty() {
                    return Err(malformed(HeaderDefect::EmptySignature));
                }
                // stripe-node's timingSafeEqual throws when the UTF-16 lengths
                // agree (64) but the UTF-8 byte lengths do not.
                if !value.is_ascii() && value.encode_utf16().take(65).count() == 64 {
                    return Err(malformed(HeaderDefect::NonAsciiSignature));
                }
                v1_count += 1;
            }
            _ => {}
        }
    }
    let (Some(first_t), Some(last_t)) = (first_t, last_t) else {
        return Err(malformed(HeaderDefect::NoTimestamp));
    };
    let timestamp = match python_int(first_t) {
        None => return Err(malformed(HeaderDefect::InvalidTimestamp)),
        Some(PyInt::OutOfRange) => return Err(malformed(HeaderDefect::TimestampOutOfRange)),
        Some(PyInt::Value(t)) => t,
    };
    let node = js_parse_int(last_t);
    if node.is_nan() || node == -1.0 {
        return Err(malformed(HeaderDefect::InvalidTimestamp));
    }
    if !js_formats_as(node, timestamp) {
        return Err(malformed(if t_items > 1 {
            HeaderDefect::ConflictingTimestamps
        } else {
            HeaderDefect::InvalidTimestamp
        }));
    }
    Ok(ParsedHeader {
        timestamp,
        v1_count,
    })
}

/// Result of Python's `int(value)` when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PyInt {
    Value(i64),
    /// A valid Python integer that does not fit in an `i64`.
    OutOfRange,
}

/// CPython's `sys.get_int_max_str_digits()` default (3.11+).
const PYTHON_MAX_STR_DIGITS: usize = 4300;

/// Non-ASCII characters for which CPython's `str.isspace()` is true; `int()`
/// turns them into ASCII spaces before parsing. (ASCII 0x1C–0x1F are also
/// `isspace()` but `int()` keeps ASCII as-is and then rejects them.)
fn is_python_unicode_space(c: char) -> bool {
    matches!(
        c,
        '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

/// JavaScript's `StrWhiteSpaceChar` (WhiteSpace and LineTerminator).
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// Emulates CPython 3.11+ `int(value)` (base 10) for values made of ASCII and
/// Unicode whitespace; `None` where Python raises. Non-ASCII decimal digits
/// (which Python accepts) are refused: stripe-node stops at them, so the two
/// readings could only agree on a timestamp of zero.
fn python_int(value: &str) -> Option<PyInt> {
    if value.is_ascii() {
        python_int_ascii(value.bytes().map(Some))
    } else {
        python_int_ascii(value.chars().map(|c| {
            if c.is_ascii() {
                Some(c as u8)
            } else if is_python_unicode_space(c) {
                Some(b' ')
            } else {
                None
            }
        }))
    }
}

/// Python's ASCII-level `int()` parse over transformed characters (`None`
/// stands for a non-ASCII character that is neither a space nor accepted).
fn python_int_ascii(bytes: impl Iterator<Item = Option<u8>>) -> Option<PyInt> {
    let mut bytes = bytes.peekable();
    let is_space =
        |b: &Option<u8>| matches!(b, Some(b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'));

    while bytes.next_if(is_space).is_some() {}
    let negative = match bytes.peek() {
        Some(Some(b'-')) => {
            bytes.next();
            true
        }
        Some(Some(b'+')) => {
            bytes.next();
            false
        }
        _ => false,
    };
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    let mut digits = 0usize;
    let mut after_underscore = false;
    loop {
        match bytes.peek() {
            Some(Some(d @ b'0'..=b'9')) => {
                let d = u64::from(d - b'0');
                match magnitude.checked_mul(10).and_then(|m| m.checked_add(d)) {
                    Some(m) => magnitude = m,
                    None => overflow = true,
                }
                digits += 1;
                after_underscore = false;
            }
            // One underscore, only between digits.
            Some(Some(b'_')) if digits > 0 && !after_underscore => after_underscore = true,
            _ => break,
        }
        bytes.next();
    }
    if digits == 0 || after_underscore || digits > PYTHON_MAX_STR_DIGITS {
        return None;
    }
    while bytes.next_if(is_space).is_some() {}
    if bytes.next().is_some() {
        return None;
    }
    if overflow {
        return Some(PyInt::OutOfRange);
    }
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    };
    Some(value.map_or(PyInt::OutOfRange, PyInt::Value))
}

/// Significant digits beyond which a decimal integer is surely infinite as an `f64`.
const F64_INFINITE_DIGITS: usize = 310;

/// Emulates JavaScript's `parseInt(value, 10)`.
fn js_parse_int(value: &str) -> f64 {
    let rest = value.trim_start_matches(is_js_space);
    let (negative, rest) = match rest.as_bytes().first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 {
        return f64::NAN;
    }
    let significant = rest[..len].trim_start_matches('0');
    let magnitude = if significant.len() > F64_INFINITE_DIGITS {
        f64::INFINITY
    } else if significant.len() <= 15 {
        // Below 10^15 the integer is exact in an f64.
        significant
            .bytes()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')) as f64
    } else {
        // V8 rounds decimal digit strings correctly, like Rust's parser.
        significant.parse::<f64>().unwrap_or(f64::INFINITY)
    };
    if negative { -magnitude } else { magnitude }
}

/// Whether JavaScript's `${number}` gives the same text as Python's `"%d" % timestamp`.
fn js_formats_as(number: f64, timestamp: i64) -> bool {
    if !number.is_finite() || number.abs() >= 1e21 {
        // "NaN", "Infinity" or exponent notation: never a plain integer.
        return false;
    }
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if number.abs() <= EXACT {
        // Integers up to 2^53 print exactly in both languages (and -0 as "0").
        return timestamp.unsigned_abs() <= 1 << 53 && number == timestamp as f64;
    }
    // Below 1e21 Rust's Display matches JavaScript's Number#toString for
    // integral values: shortest round-trip digits, no exponent.
    let mut js = StackStr::<32>::new();
    let mut py = StackStr::<32>::new();
    write!(js, "{number}").is_ok()
        && write!(py, "{timestamp}").is_ok()
        && js.as_str() == py.as_str()
}

/// A small fixed-capacity string, to format numbers without allocating.
struct StackStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackStr<N> {
    const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever appended, so this never fails.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl<const N: usize> fmt::Write for StackStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_int_matches_cpython() {
        let ok = |s: &str, v: i64| assert_eq!(python_int(s), Some(PyInt::Value(v)), "{s:?}");
        let err = |s: &str| assert_eq!(python_int(s), None, "{s:?}");
        ok("123", 123);
        ok(" 123 ", 123);
        ok("+0123", 123);
        ok("-5", -5);
        ok("-0", 0);
        ok("1_000", 1000);
        ok("0_0", 0);
        ok("\u{3000}12\u{85}", 12);
        ok("\t\n\x0b\x0c\r 7\r\n", 7);
        ok("-9223372036854775808", i64::MIN);
        ok("9223372036854775807", i64::MAX);
        assert_eq!(python_int("9223372036854775808"), Some(PyInt::OutOfRange));
        assert_eq!(python_int("-9223372036854775809"), Some(PyInt::OutOfRange));
        assert_eq!(python_int(&"9".repeat(4300)), Some(PyInt::OutOfRange));
        err(&"9".repeat(4301));
        ok(&format!("{}1", "0".repeat(4299)), 1);
        err(&format!("{}1", "0".repeat(4300)));
        for s in [
            "",
            " ",
            "+",
            "-",
            "_1",
            "1_",
            "1__0",
            "+_1",
            "+ 1",
            "1 2",
            "1e9",
            "NaN",
            "0x10",
            "12abc",
            "1.0",
            "\x1c1",
            "1\x1c",
            "\u{feff}1",
            "1\u{200b}",
            "1\0",
            "١٢",
            "++1",
        ] {
            err(s);
        }
    }

    #[test]
    fn js_parse_int_matches_v8() {
        assert_eq!(js_parse_int("123"), 123.0);
        assert_eq!(js_parse_int("  +123abc"), 123.0);
        assert_eq!(js_parse_int("\u{feff}\u{3000}-7"), -7.0);
        assert_eq!(js_parse_int("1e9"), 1.0);
        assert_eq!(js_parse_int("1_000"), 1.0);
        assert_eq!(js_parse_int("0x10"), 0.0);
        assert!(js_parse_int("NaN").is_nan());
        assert!(js_parse_int("").is_nan());
        assert!(js_parse_int("-").is_nan());
        assert!(js_parse_int("\u{85}1").is_nan());
        assert!(js_parse_int("+-1").is_nan());
        assert_eq!(js_parse_int("9007199254740993"), 9_007_199_254_740_992.0);
        assert_eq!(js_parse_int(&"9".repeat(400)), f64::INFINITY);
        assert!(js_parse_int("-0").is_sign_negative());
    }

    #[test]
    fn js_formatting_agreement() {
        assert!(js_formats_as(1_700_000_000.0, 1_700_000_000));
        assert!(js_formats_as(-0.0, 0));
        assert!(js_formats_as(
            9_007_199_254_740_994.0,
            9_007_199_254_740_994
        ));
        assert!(!js_formats_as(
            9_007_199_254_740_992.0,
            9_007_199_254_740_993
        ));
        // 2^60 prints as 1152921504606847000 in JavaScript.
        assert!(!js_formats_as(
            1_152_921_504_606_846_976.0,
            1_152_921_504_606_846_976
        ));
        assert!(!js_formats_as(f64::NAN, 0));
        assert!(!js_formats_as(1e21, i64::MAX));
    }

    #[test]
    fn items_split_like_the_sdks() {
        let got: Vec<_> = items("t=1=2,v1,,x=,=y").collect();
        assert_eq!(
            got,
            vec![
                ("t", Some("1")),
                ("v1", None),
                ("", None),
                ("x", Some("")),
                ("", Some("y"))
            ]
        );
    }

    #[test]
    fn delimiter_search_matches_a_byte_scan() {
        let samples = [
            "",
            ",",
            "=",
            "abcdefgh",
            "abcdefgh,",
            "abcdefghi=",
            "t=1700000000,v1=0123456789abcdef",
            "\u{2c}\u{3d}",
            "é,=",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=",
        ];
        for s in samples {
            for start in 0..=s.len() {
                let bytes = &s.as_bytes()[start..];
                let expected = bytes.iter().position(|&b| b == b',' || b == b'=');
                assert_eq!(find_delimiter(bytes), expected, "{s:?} from {start}");
            }
        }
        for byte in 0..=255u8 {
            let mut buf = [b'x'; 17];
            buf[11] = byte;
            let expected = buf.iter().position(|&b| b == b',' || b == b'=');
            assert_eq!(find_delimiter(&buf), expected, "byte {byte}");
        }
    }

    proptest::proptest! {
        #[test]
        fn items_match_a_naive_split(s in "[,=aé1 ]{0,40}") {
            let naive: Vec<(&str, Option<&str>)> = s
                .split(',')
                .map(|item| {
                    let mut parts = item.split('=');
                    let key = parts.next().unwrap_or_default();
                    (key, parts.next())
                })
                .collect();
            let ours: Vec<_> = items(&s).collect();
            proptest::prop_assert_eq!(ours, naive);
        }
    }

    #[test]
    fn stack_str_refuses_overflow() {
        let mut s = StackStr::<4>::new();
        assert!(write!(s, "1234").is_ok());
        assert!(write!(s, "5").is_err());
        assert_eq!(s.as_str(), "1234");
    }
}
