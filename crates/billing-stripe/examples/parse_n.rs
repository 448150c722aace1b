//! Parses every body of the two fixture stories N times (`parse_n N`), for instruction counts:
//! `valgrind --tool=callgrind` on this binary with two values of N gives the instructions per
//! parse as the difference divided by the extra parses (38 per round).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(1, |arg| arg.parse().expect("N, a number of rounds"));
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
            bodies.push(std::fs::read(&path).unwrap());
        }
    }
    let mut parsed = 0_usize;
    for _ in 0..rounds {
        for body in &bodies {
            black_box(billing_stripe::parse_event(black_box(body)).unwrap());
            parsed += 1;
        }
    }
    println!("{parsed} bodies parsed");
}
