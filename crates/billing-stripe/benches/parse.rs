//! `parse_event` over the crate's realistic webhook bodies (4–10 KB, pretty-printed as Stripe
//! sends them): a few event types one by one, and every fixture of both API-version stories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use billing_stripe::parse_event;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Every body of the two purchase stories (`tests/fixtures/{basil,pre-basil}`).
fn story_bodies() -> Vec<(String, Vec<u8>)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut bodies = Vec::new();
    for folder in ["basil", "pre-basil"] {
        let mut paths: Vec<_> = std::fs::read_dir(format!("{root}/{folder}"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            bodies.push((format!("{folder}/{name}"), std::fs::read(&path).unwrap()));
        }
    }
    bodies
}

fn bench_parse(c: &mut Criterion) {
    let bodies = story_bodies();
    let mut group = c.benchmark_group("parse_event");
    for wanted in [
        "basil/invoice.paid",
        "pre-basil/invoice.paid",
        "basil/customer.subscription.updated",
        "pre-basil/customer.subscription.updated",
        "basil/checkout.session.completed",
        "basil/payment_intent.succeeded",
        "basil/charge.refunded",
        "basil/customer.created",
    ] {
        let (name, body) = bodies.iter().find(|(name, _)| name == wanted).unwrap();
        assert!(parse_event(body).is_ok(), "{name}");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), body, |b, body| {
            b.iter(|| parse_event(black_box(body)).unwrap());
        });
    }
    // One iteration parses every story body once (38 bodies, 157 KB).
    let total: usize = bodies.iter().map(|(_, body)| body.len()).sum();
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function(BenchmarkId::from_parameter("all-stories"), |b| {
        b.iter(|| {
            for (_, body) in &bodies {
                parse_event(black_box(body)).unwrap();
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
