//! The reference for "final state": the same events replayed one at a time, in the order the
//! server under faults committed them, into a fresh database by a fresh server.

use std::time::Duration;

use crate::cluster::Cluster;
use crate::error::{ChaosError, Result};
use crate::load::Load;
use crate::secrets::Secrets;
use crate::server::{Server, ServerSpec};
use crate::state::{Dump, commit_order, dump, event_statuses, is_final};

/// What the comparison found.
#[derive(Debug)]
pub struct Comparison {
    /// Events in the live database.
    pub events: usize,
    /// Rows per table in the live dump.
    pub rows: Vec<(String, usize)>,
    pub live: Dump,
}

/// Checks that database `live_db` holds exactly the state of replaying `load`'s events one
/// at a time in `live_db`'s commit order into `replay_db` (created here): every event applied
/// (no `failed`/`received` row), every table equal, and every user's entitlements as the
/// `live` server answers them equal to the replay server's. `log` receives the replay
/// server's log.
pub async fn compare_with_serial_replay(
    cluster: &Cluster,
    live_db: &str,
    live: &Server,
    replay_db: &str,
    load: &Load,
    secrets: &Secrets,
    log: std::path::PathBuf,
) -> Result<Comparison> {
    let statuses = event_statuses(cluster, live_db).await?;
    let unfinished: Vec<String> = statuses
        .iter()
        .filter(|(_, s)| !is_final(s))
        .map(|(id, s)| format!("{id}={s}"))
        .collect();
    if !unfinished.is_empty() {
        return Err(ChaosError::Setup(format!(
            "events not applied in the live database: {unfinished:?}"
        )));
    }
    if statuses.len() != load.events.len() {
        return Err(ChaosError::Setup(format!(
            "the live database holds {} events, the load has {}",
            statuses.len(),
            load.events.len()
        )));
    }
    let order = commit_order(cluster, live_db).await?;
    let index = load.index();
    cluster.create_database(replay_db).await?;
    let mut replay = Server::start(ServerSpec::new(
        cluster.url(replay_db),
        secrets.clone(),
        log,
    ))
    .await?;
    let client = replay.client(Duration::from_secs(30));
    for id in &order {
        let Some(&i) = index.get(id.as_str()) else {
            return Err(ChaosError::Setup(format!(
                "{id} is not an event of the load"
            )));
        };
        let exchange = client.webhook(&load.events[i].body, &secrets.webhook).await;
        match &exchange.result {
            Ok(a) if a.status == 200 && a.json()["duplicate"] != true => {}
            Ok(a) => {
                return Err(ChaosError::Setup(format!(
                    "serial replay of {id}: {} {}",
                    a.status,
                    a.text()
                )));
            }
            Err(e) => return Err(ChaosError::Setup(format!("serial replay of {id}: {e}"))),
        }
    }
    let live_dump = dump(cluster, live_db).await?;
    let replay_dump = dump(cluster, replay_db).await?;
    if let Some(difference) = live_dump.difference(&replay_dump) {
        return Err(ChaosError::Setup(format!(
            "the state under faults (<) differs from the serial replay in commit order (>):\n\
             {difference}"
        )));
    }
    let live_client = live.client(Duration::from_secs(30));
    for user in &load.users {
        let path = format!("/v1/users/{user}/entitlements");
        let a = live_client.get(&path, Some(&secrets.api_keys[0])).await;
        let b = client.get(&path, Some(&secrets.api_keys[1])).await;
        let (a, b) = (
            a.result.map(|x| (x.status, x.json())),
            b.result.map(|x| (x.status, x.json())),
        );
        if a != b {
            return Err(ChaosError::Setup(format!(
                "entitlements of {user} differ: live {a:?}, replay {b:?}"
            )));
        }
    }
    replay.stop(Duration::from_secs(20)).await?;
    Ok(Comparison {
        events: statuses.len(),
        rows: live_dump
            .tables
            .iter()
            .map(|(t, r)| (t.clone(), r.len()))
            .collect(),
        live: live_dump,
    })
}
