//! What the adapter's integration tests share.

/// Runs each listed `async fn(Backend)` as a test on Postgres and on SQLite, each in a fresh
/// database.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(billing_store_diesel::Backend::Postgres).await }) +
        }
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(billing_store_diesel::Backend::Sqlite).await }) +
        }
    };
}
