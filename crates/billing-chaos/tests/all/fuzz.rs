//! Time-boxed fuzzing (structured mutations of the real Stripe fixtures, seeded): the
//! signature header and the event parser in-process at scale, and the webhook handler of the
//! real server binary over HTTP. No panic anywhere; the handler never answers 5xx to
//! malformed input and never drops a connection. `CHAOS_FUZZ_SECONDS` sets each time box;
//! `CHAOS_SEED` replays a run.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing_chaos::client::unix_now;
use billing_chaos::load::{Fixtures, stripe_id};
use billing_chaos::mutate::{corrupt_bytes, mutate_header, mutate_json, random_json};
use billing_chaos::scenario::Scenario;
use billing_chaos::{seconds_from_env, seed};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use stripe_webhook_signature::{Verifier, sign, sign_header};

fn time_box() -> Duration {
    seconds_from_env("CHAOS_FUZZ_SECONDS", 10)
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn signature_header_verification_never_panics_and_accepts_only_a_valid_v1() {
    let seed = seed();
    eprintln!("signature fuzz: CHAOS_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let fixtures = Fixtures::load().unwrap();
    let bodies: Vec<Vec<u8>> = fixtures
        .all()
        .map(|v| serde_json::to_vec_pretty(v).unwrap())
        .collect();
    let secrets = ["whsec_fuzz_current_3f9a1c", "whsec_fuzz_previous_77e0b2"];
    let verifier = Verifier::new(secrets).unwrap();
    let now = unix_now();
    let deadline = Instant::now() + time_box();
    let (mut cases, mut accepted, mut valid_checked) = (0_u64, 0_u64, 0_u64);
    while Instant::now() < deadline {
        for _ in 0..200 {
            cases += 1;
            let body = bodies.choose(&mut rng).unwrap().clone();
            let secret = *secrets.choose(&mut rng).unwrap();
            let t = now - rng.random_range(-400..400);
            let valid = sign(&body, secret, t);
            if rng.random_bool(0.05) {
                // The unmutated header verifies within the tolerance (so this test can fail).
                valid_checked += 1;
                let verdict = verifier.verify_at_opt(&body, Some(&valid), now);
                // Refused only when at least the tolerance old: future timestamps pass as in
                // the official SDKs; exactly 300 s is refused (see the crate's own tests).
                assert_eq!(
                    verdict.is_ok(),
                    now - t < 300,
                    "valid header {valid}: {verdict:?}"
                );
            }
            let mut body = body;
            if rng.random_bool(0.1) {
                corrupt_bytes(&mut rng, &mut body);
            }
            let header_bytes = mutate_header(&mut rng, &valid);
            let header = String::from_utf8_lossy(&header_bytes).into_owned();
            let verdict = catch_unwind(AssertUnwindSafe(|| {
                verifier.verify_at_opt(&body, Some(&header), now)
            }));
            let verdict = verdict.unwrap_or_else(|p| {
                panic!(
                    "verify panicked ({}) on header {header:?}, seed {seed}",
                    panic_text(&*p)
                )
            });
            if let Ok(verified) = verdict {
                accepted += 1;
                let secret = secrets[verified.secret_index()];
                let expected = sign_header(&body, secret, verified.timestamp());
                assert!(
                    header.contains(expected.v1()),
                    "accepted {header:?} without the valid v1 for its timestamp"
                );
                assert!(
                    now - verified.timestamp() < 300,
                    "accepted a stale {header:?}"
                );
            }
        }
    }
    eprintln!(
        "signature fuzz: {cases} headers in {:?} ({accepted} still valid after mutation), \
         {valid_checked} unmutated checked",
        time_box()
    );
    assert!(cases > 1_000);
}

#[test]
fn the_event_parser_never_panics_on_mutated_fixtures() {
    let seed = seed();
    eprintln!("parser fuzz: CHAOS_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let fixtures: Vec<Value> = Fixtures::load().unwrap().all().cloned().collect();
    let deadline = Instant::now() + time_box();
    let mut outcomes: BTreeMap<&str, u64> = BTreeMap::new();
    while Instant::now() < deadline {
        for _ in 0..50 {
            let mut value = fixtures.choose(&mut rng).unwrap().clone();
            let body = match rng.random_range(0..10) {
                0 => serde_json::to_vec(&random_json(&mut rng, 4)).unwrap(),
                1 | 2 => {
                    let mut bytes = serde_json::to_vec(&value).unwrap();
                    corrupt_bytes(&mut rng, &mut bytes);
                    bytes
                }
                _ => {
                    mutate_json(&mut rng, &mut value);
                    serde_json::to_vec(&value).unwrap()
                }
            };
            let result = catch_unwind(|| {
                (
                    billing_stripe::parse_event(&body),
                    billing_stripe::peek_envelope(&body),
                )
            });
            let (parsed, peeked) = result.unwrap_or_else(|p| {
                panic!(
                    "the parser panicked ({}) on {:?}, seed {seed}",
                    panic_text(&*p),
                    String::from_utf8_lossy(&body)
                )
            });
            let label = match (&parsed, &peeked) {
                (Ok(event), Ok(envelope)) => {
                    assert_eq!(
                        (&event.id, &event.event_type),
                        (&envelope.id, &envelope.event_type)
                    );
                    "parsed"
                }
                (Ok(_), Err(e)) => panic!("parsed but the envelope is unreadable: {e}"),
                (Err(_), Ok(_)) => "envelope only (422)",
                (Err(_), Err(_)) => "refused (400)",
            };
            *outcomes.entry(label).or_default() += 1;
        }
    }
    eprintln!("parser fuzz: {outcomes:?} in {:?}", time_box());
    assert!(outcomes.values().sum::<u64>() > 1_000);
    assert!(outcomes.contains_key("parsed") && outcomes.contains_key("envelope only (422)"));
}

/// What one handler case sends and what it may get.
struct Case {
    kind: &'static str,
    body: Vec<u8>,
    header: Option<Vec<u8>>,
    allowed: &'static [u16],
}

/// A case whose answer was not one of the allowed statuses.
#[derive(Debug, Clone)]
struct Failed {
    text: String,
}

/// Body limit of the fuzzed server (small, so the 413 path is cheap to reach).
const BODY_LIMIT: usize = 256 * 1024;

fn fresh_id(value: &mut Value, rng: &mut impl Rng) {
    if value.get("id").is_some_and(Value::is_string) {
        value["id"] = json!(stripe_id(rng, "evt_1", 23));
    }
}

fn case(rng: &mut impl Rng, fixtures: &[Value], secret: &str) -> Case {
    let mut value = fixtures.choose(rng).cloned().unwrap_or(Value::Null);
    fresh_id(&mut value, rng);
    let signed = |body: &[u8]| Some(sign(body, secret, unix_now()).into_bytes());
    match rng.random_range(0..20) {
        0..=9 => {
            mutate_json(rng, &mut value);
            if rng.random_bool(0.9) {
                fresh_id(&mut value, rng);
            }
            let body = serde_json::to_vec_pretty(&value).unwrap_or_default();
            Case {
                kind: "mutated event, signed",
                header: signed(&body),
                body,
                allowed: &[200, 400, 413, 422],
            }
        }
        10..=12 => {
            let body = serde_json::to_vec_pretty(&value).unwrap_or_default();
            let header = mutate_header(rng, &sign(&body, secret, unix_now()));
            Case {
                kind: "mutated signature header",
                header: Some(header),
                body,
                allowed: &[200, 400],
            }
        }
        13..=15 => {
            let mut body = serde_json::to_vec_pretty(&value).unwrap_or_default();
            corrupt_bytes(rng, &mut body);
            Case {
                kind: "corrupted bytes, signed",
                header: signed(&body),
                body,
                allowed: &[200, 400, 422],
            }
        }
        16 => {
            let body = serde_json::to_vec(&random_json(rng, 4)).unwrap_or_default();
            Case {
                kind: "random JSON, signed",
                header: signed(&body),
                body,
                allowed: &[400, 422],
            }
        }
        17 => {
            let mut big = value.clone();
            big["data"]["object"]["metadata"]["padding"] =
                json!("p".repeat(BODY_LIMIT + rng.random_range(1..100_000)));
            let body = serde_json::to_vec(&big).unwrap_or_default();
            Case {
                kind: "over the body limit, signed",
                header: signed(&body),
                body,
                allowed: &[413],
            }
        }
        18 => {
            let body = serde_json::to_vec_pretty(&value).unwrap_or_default();
            Case {
                kind: "no signature",
                header: None,
                body,
                allowed: &[400],
            }
        }
        _ => {
            let body = serde_json::to_vec_pretty(&value).unwrap_or_default();
            let wrong = sign(&body, "whsec_not_the_configured_secret", unix_now()).into_bytes();
            Case {
                kind: "wrong secret",
                header: Some(wrong),
                body,
                allowed: &[400],
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_webhook_handler_never_answers_5xx_or_drops_a_connection_on_malformed_input() {
    fuzz_the_webhook_handler("fuzz-webhook").await;
}

async fn fuzz_the_webhook_handler(name: &str) {
    let begun = Instant::now();
    let mut s = Scenario::new(name).unwrap();
    let spec = s
        .spec("live", "live")
        .await
        .unwrap()
        .env("WEBHOOK_BODY_LIMIT", &BODY_LIMIT.to_string());
    let mut server = billing_chaos::server::Server::start(spec).await.unwrap();
    let pid = server.pid();
    let client = server.client(Duration::from_secs(20));
    let fixtures: Arc<Vec<Value>> = Arc::new(s.fixtures.all().cloned().collect());
    let setup = begun.elapsed();
    let deadline = Instant::now() + time_box() * 2;
    let tallies = Arc::new(Mutex::new(BTreeMap::<(String, String), u64>::new()));
    let failures = Arc::new(Mutex::new(Vec::<Failed>::new()));
    let failure_dir = s.artifacts.path("failures");
    std::fs::create_dir_all(&failure_dir).unwrap();
    let mut workers = Vec::new();
    for worker in 0..16 {
        let (client, fixtures, tallies, failures) = (
            client.clone(),
            fixtures.clone(),
            tallies.clone(),
            failures.clone(),
        );
        let (secret, failure_dir) = (s.secrets.webhook.clone(), failure_dir.clone());
        let mut rng = StdRng::seed_from_u64(s.rng.random());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let case = case(&mut rng, &fixtures, &secret);
                let exchange = client
                    .webhook_raw(case.body.clone(), case.header.as_deref())
                    .await;
                let label = exchange.label();
                let ok = exchange
                    .status()
                    .is_some_and(|st| case.allowed.contains(&st));
                *tallies
                    .lock()
                    .unwrap()
                    .entry((case.kind.to_owned(), label.clone()))
                    .or_default() += 1;
                if !ok {
                    let file = failure_dir.join(format!("{worker}-{n}.body"));
                    std::fs::write(&file, &case.body).unwrap();
                    let answer = exchange
                        .result
                        .as_ref()
                        .map(|a| a.text())
                        .unwrap_or_else(|e| e.to_string());
                    failures.lock().unwrap().push(Failed {
                        text: format!(
                            "{}: {label} {answer} (header {:?}; body in {})",
                            case.kind,
                            case.header.as_deref().map(String::from_utf8_lossy),
                            file.display()
                        ),
                    });
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let tallies = tallies.lock().unwrap().clone();
    let cases: u64 = tallies.values().sum();
    eprintln!(
        "webhook fuzz: {cases} cases in {:?}: {tallies:?}",
        time_box() * 2
    );
    let failures: Vec<String> = failures
        .lock()
        .unwrap()
        .iter()
        .map(|f| f.text.clone())
        .collect();
    assert!(
        failures.is_empty(),
        "{cases} malformed deliveries: these got a 5xx, a dropped connection or an unexpected \
         status:\n{}",
        failures
            .iter()
            .take(8)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(cases > 200, "only {cases} cases ran");
    // Still the same, healthy process, and still applying valid events.
    assert!(
        server.is_running() && server.pid() == pid,
        "the server died under fuzzing"
    );
    let mut valid = fixtures[0].clone();
    fresh_id(&mut valid, &mut s.rng);
    let answer = client
        .webhook(&serde_json::to_vec(&valid).unwrap(), &s.secrets.webhook)
        .await;
    assert_eq!(answer.status(), Some(200), "{:?}", answer.result);
    server.stop(Duration::from_secs(30)).await.unwrap();
    let panics = billing_chaos::logs::count_lines_with(server.log(), "panicked").unwrap();
    assert_eq!(
        panics,
        0,
        "panics in the server log {}",
        server.log().display()
    );
    let stopped = begun.elapsed();
    let scanned = s.assert_no_secrets_in_logs().unwrap();
    eprintln!(
        "webhook fuzz: setup {setup:.1?}, until stopped {stopped:.1?}, total {:.1?}; {scanned} \
         log bytes scanned for secrets",
        begun.elapsed()
    );
}
