//! Producing `Stripe-Signature` headers (for tests, tools and other services).

use core::fmt;

use hmac::Mac;

use crate::secret::keyed_mac;

/// A `Stripe-Signature` header value with one `v1` signature; `Display` gives `t=…,v1=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureHeader {
    timestamp: i64,
    v1: [u8; 64],
}

impl SignatureHeader {
    /// The `t=` timestamp, in Unix seconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The `v1` signature as 64 lowercase hex digits.
    pub fn v1(&self) -> &str {
        // Always ASCII hex digits.
        core::str::from_utf8(&self.v1).unwrap_or_default()
    }
}

impl fmt::Display for SignatureHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={},v1={}", self.timestamp, self.v1())
    }
}

/// Signs `body` with `secret` at Unix time `t`, as Stripe does: HMAC-SHA256 over `"{t}.{body}"`.
///
/// Equivalent to stripe-python's `WebhookSignature.generate_signature_header`
/// and stripe-node's `webhooks.generateTestHeaderString`. The bytes are signed
/// as given; note that [`Verifier`](crate::Verifier) only accepts UTF-8 bodies
/// without a leading byte order mark, like the official SDKs together.
pub fn sign_header(body: &[u8], secret: &str, t: i64) -> SignatureHeader {
    let mut mac = keyed_mac(secret.as_bytes());
    let mut digits = [0u8; 20];
    mac.update(format_i64(t, &mut digits));
    mac.update(b".");
    mac.update(body);
    SignatureHeader {
        timestamp: t,
        v1: hex_lower(&mac.finalize().into_bytes()),
    }
}

/// Signs `body` with `secret` at Unix time `t` and returns the header value `t=…,v1=…`.
pub fn sign(body: &[u8], secret: &str, t: i64) -> String {
    sign_header(body, secret, t).to_string()
}

/// Lowercase hex of a 32-byte digest (extra input bytes are ignored, missing ones read as zero).
pub(crate) fn hex_lower(digest: &[u8]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
    out
}

/// Writes `n` in decimal into `buf` and returns the digits (with a leading `-`).
pub(crate) fn format_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut magnitude = n.unsigned_abs();
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if n < 0 {
        start -= 1;
        buf[start] = b'-';
    }
    &buf[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_i64_extremes() {
        for n in [0, 1, -1, 9, 10, -10, 1_700_000_000, i64::MAX, i64::MIN] {
            let mut buf = [0u8; 20];
            assert_eq!(format_i64(n, &mut buf), n.to_string().as_bytes());
        }
    }

    #[test]
    fn hex_lower_known_value() {
        let digest: Vec<u8> = (0u8..32).collect();
        let hex = hex_lower(&digest);
        assert_eq!(
            core::str::from_utf8(&hex).unwrap(),
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
    }
}
