//! Test support (feature `testing`): a fresh database per test ([`TestDatabase`]), copied from
//! a migrated template; [`on_both_backends!`](crate::on_both_backends) to run one test on
//! Postgres and on SQLite; and a TCP proxy that stalls or cuts a test's database connections
//! ([`FreezableProxy`]).

mod database;
mod proxy;

use std::future::Future;

pub use database::{TestDatabase, admin_url};
pub use proxy::FreezableProxy;

use crate::{Backend, DieselStore};

/// The value of the run-time setting `name` on `conn` (what `SHOW name` prints).
pub async fn setting(conn: &mut diesel_async::AsyncPgConnection, name: &str) -> String {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Value {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let value: Value = diesel::sql_query("SELECT current_setting($1) AS value")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result(conn)
        .await
        .unwrap_or_else(|error| panic!("setting {name}: {error}"));
    value.value
}

/// Runs each listed `async fn` as a `#[tokio::test]` on Postgres (in module `postgres`) and on
/// SQLite (in module `sqlite`).
///
/// A listed function takes either the [`Backend`](crate::Backend), and sets up what it needs
/// itself (usually `TestDatabase::new(backend)`), or a [`DieselStore`](crate::DieselStore)
/// on a fresh migrated database of that backend, dropped when the test ends. The caller needs
/// `tokio` (features `macros`, `rt-multi-thread`) among its dev-dependencies.
///
/// ```ignore
/// use billing_store_diesel::{Backend, DieselStore, on_both_backends};
///
/// on_both_backends!(claims_once, counts_usage);
///
/// async fn claims_once(backend: Backend) { /* … */ }
/// async fn counts_usage(store: DieselStore) { /* … */ }
/// ```
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::testing::BackendTest::run(super::$name, $crate::Backend::Postgres).await
            })+
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::testing::BackendTest::run(super::$name, $crate::Backend::Sqlite).await
            })+
        }
    };
}

/// A test [`on_both_backends!`](crate::on_both_backends) can run: an `async fn` taking the
/// backend (`Arg` = [`Backend`]) or a store on a fresh database of it (`Arg` =
/// [`DieselStore`]). `Arg` only tells the two apart; the compiler infers it from the function.
pub trait BackendTest<Arg> {
    /// Runs the test on `backend`.
    fn run(self, backend: Backend) -> impl Future<Output = ()>;
}

impl<F, Fut> BackendTest<Backend> for F
where
    F: FnOnce(Backend) -> Fut,
    Fut: Future<Output = ()>,
{
    fn run(self, backend: Backend) -> impl Future<Output = ()> {
        self(backend)
    }
}

impl<F, Fut> BackendTest<DieselStore> for F
where
    F: FnOnce(DieselStore) -> Fut,
    Fut: Future<Output = ()>,
{
    async fn run(self, backend: Backend) {
        let db = TestDatabase::new(backend).await;
        self(db.store().clone()).await;
        // The database outlives the test's store.
        drop(db);
    }
}
