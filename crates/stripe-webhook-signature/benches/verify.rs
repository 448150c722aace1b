//! Verification throughput beside raw HMAC-SHA256 over the same body bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use stripe_webhook_signature::{Verifier, sign};

const SECRET: &str = "whsec_bench_5f1d3c9a7b2e4d6f8a0c1e3b5d7f9a2c";
const OLD_SECRET: &str = "whsec_bench_old_0a9b8c7d6e5f4a3b2c1d0e9f8a7b";
const NOW: i64 = 1_700_000_000;

/// A pretty-printed `invoice.paid` event of exactly `len` bytes, shaped like
/// what Stripe sends: mostly ASCII, with the customer's name and address in
/// UTF-8 near the top, then ASCII line items.
fn event_body(len: usize) -> Vec<u8> {
    let mut out = String::from(
        "{\n  \"id\": \"evt_1NG8Du2eZvKYlo2CUI79vXWy\",\n  \"object\": \"event\",\n  \"type\": \"invoice.paid\",\n  \"data\": {\n    \"object\": {\n      \"id\": \"in_1NG8Du2eZvKYlo2C\",\n      \"customer_name\": \"Zoë Müller\",\n      \"customer_address\": {\"city\": \"Köln\", \"line1\": \"Straße 1\"},\n      \"lines\": [\n",
    );
    let item = "        {\"id\": \"il_1NG8Du2eZvKYlo2C\", \"object\": \"line_item\", \"amount\": 1999, \"currency\": \"eur\", \"description\": \"1 x Pro plan (at EUR 19.99 / month)\", \"period\": {\"end\": 1702592000, \"start\": 1700000000}, \"quantity\": 1},\n";
    while out.len() < len {
        out.push_str(item);
    }
    fit(out, len)
}

/// The same size, but every line item carries multi-byte characters (a
/// worst case for the UTF-8 check the SDKs force on us).
fn dense_utf8_body(len: usize) -> Vec<u8> {
    let item =
        "{\"description\": \"1 × Pro plan (à 19,99 € / mois)\", \"name\": \"Zoë Müller, Köln\"},\n";
    let mut out = String::new();
    while out.len() < len {
        out.push_str(item);
    }
    fit(out, len)
}

/// Cuts `text` back to `len` bytes on a char boundary, then pads with spaces.
fn fit(mut text: String, len: usize) -> Vec<u8> {
    let mut cut = len.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    while text.len() < len {
        text.push(' ');
    }
    text.into_bytes()
}

fn raw_hmac(body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn bench_verify(c: &mut Criterion) {
    let verifier = Verifier::new([SECRET]).unwrap();
    let rotating = Verifier::new([SECRET, OLD_SECRET]).unwrap();
    for (label, len) in [("1KiB", 1024), ("16KiB", 16 * 1024), ("256KiB", 256 * 1024)] {
        let body = event_body(len);
        let header = sign(&body, SECRET, NOW - 5);
        let old_header = sign(&body, OLD_SECRET, NOW - 5);
        assert!(verifier.verify_at(&body, &header, NOW).is_ok());
        assert!(rotating.verify_at(&body, &old_header, NOW).is_ok());

        let mut group = c.benchmark_group("verify");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(
            BenchmarkId::new("raw_hmac_sha256", label),
            &body,
            |b, body| b.iter(|| raw_hmac(black_box(body))),
        );
        group.bench_with_input(BenchmarkId::new("verify_at", label), &body, |b, body| {
            b.iter(|| verifier.verify_at(black_box(body), black_box(&header), NOW))
        });
        if len == 16 * 1024 {
            let dense = dense_utf8_body(len);
            let dense_header = sign(&dense, SECRET, NOW - 5);
            assert!(verifier.verify_at(&dense, &dense_header, NOW).is_ok());
            group.bench_with_input(
                BenchmarkId::new("verify_at_dense_utf8_body", label),
                &dense,
                |b, body| {
                    b.iter(|| verifier.verify_at(black_box(body), black_box(&dense_header), NOW))
                },
            );
            // Rotation worst case: the second secret matches, so two MACs run.
            group.bench_with_input(
                BenchmarkId::new("verify_at_second_of_two_secrets", label),
                &body,
                |b, body| {
                    b.iter(|| rotating.verify_at(black_box(body), black_box(&old_header), NOW))
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
