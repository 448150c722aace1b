//! What every fault scenario starts with: a seed, a private cluster, random secrets, the
//! fixtures, an artifacts folder; and what every scenario ends with: the secret scan.

use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::cluster::Cluster;
use crate::error::{ChaosError, Result};
use crate::load::Fixtures;
use crate::paths::Artifacts;
use crate::secrets::Secrets;
use crate::server::{Server, ServerSpec};

/// One scenario's fixtures. Fields drop in order: the cluster stops (copying its log into
/// the artifacts) before the artifacts folder is removed or kept.
pub struct Scenario {
    /// The seed (`CHAOS_SEED` replays it).
    pub seed: u64,
    /// Randomness derived from the seed.
    pub rng: StdRng,
    /// The private Postgres cluster.
    pub cluster: Cluster,
    /// The secrets the servers are started with.
    pub secrets: Secrets,
    pub fixtures: Fixtures,
    /// Logs and failing inputs.
    pub artifacts: Artifacts,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("seed", &self.seed)
            .field("artifacts", &self.artifacts)
            .finish_non_exhaustive()
    }
}

impl Scenario {
    /// Starts a cluster and prepares everything else; prints the seed.
    pub fn new(name: &str) -> Result<Self> {
        let seed = crate::seed();
        eprintln!("{name}: CHAOS_SEED={seed}");
        let rng = StdRng::seed_from_u64(seed);
        let artifacts = Artifacts::new(name)?;
        let mut cluster = Cluster::start()?;
        cluster.keep_log_in(artifacts.dir());
        // Secrets come from the OS, not from the seed: a replayed seed must not reproduce them
        // in generated ids (the scan would then find "leaks" that are ids).
        let secrets = Secrets::random(&mut rand::rng());
        Ok(Self {
            seed,
            rng,
            cluster,
            secrets,
            fixtures: Fixtures::load()?,
            artifacts,
        })
    }

    /// The spec of a server on database `db` (created here), logging to `<log>.log`; its
    /// `DATABASE_URL` carries the scenario's password.
    pub async fn spec(&self, db: &str, log: &str) -> Result<ServerSpec> {
        self.cluster.create_database(db).await?;
        Ok(ServerSpec::new(
            self.cluster
                .url_with_password(db, &self.secrets.db_password),
            self.secrets.clone(),
            self.artifacts.path(&format!("{log}.log")),
        ))
    }

    /// A started server on a new database `db`.
    pub async fn server(&self, db: &str) -> Result<Server> {
        Server::start(self.spec(db, db).await?).await
    }

    /// Fails when a secret appears in any `*.log` of the artifacts folder; returns the bytes
    /// scanned (the logs are at `RUST_LOG=trace`, so they are never small).
    pub fn assert_no_secrets_in_logs(&self) -> Result<usize> {
        let logs: Vec<std::path::PathBuf> = std::fs::read_dir(self.artifacts.dir())
            .map_err(crate::error::io("list the artifacts"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("log"))
            .filter(|p| p.file_name().and_then(|n| n.to_str()) != Some("postgres.log"))
            .collect();
        let paths: Vec<&Path> = logs.iter().map(|p| p.as_path()).collect();
        let (found, scanned) = self.secrets.scan_files(&paths)?;
        if !found.is_empty() {
            return Err(ChaosError::Setup(format!("secrets in logs: {found:?}")));
        }
        if scanned == 0 {
            return Err(ChaosError::Setup("no server log to scan".to_owned()));
        }
        Ok(scanned)
    }
}
