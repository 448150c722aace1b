//! The store's own database thread: a thread running a single-threaded tokio runtime, on
//! which every pooled Postgres connection is opened (so the task that drives its socket runs
//! there) and on which callers may run their hot units of work (ingest's lanes, the usage
//! batch), so that a statement's round trip wakes no other thread.

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::error::SetupError;

/// A running database thread; it stops (its tasks dropped, their transactions rolled back)
/// when this is dropped.
#[derive(Debug)]
pub(crate) struct DriverThread {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl DriverThread {
    /// Starts the thread, named `billing-db`. Its runtime is built on the thread itself, so
    /// that no failure here drops a runtime inside the caller's (which would panic).
    pub(crate) fn start() -> Result<Self, SetupError> {
        let (started, handle) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("billing-db".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started.send(Err(error.to_string()));
                        return;
                    }
                };
                let _ = started.send(Ok(runtime.handle().clone()));
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| SetupError::Thread(e.to_string()))?;
        let handle = handle
            .recv()
            .map_err(|e| SetupError::Thread(e.to_string()))?
            .map_err(SetupError::Thread)?;
        Ok(Self {
            handle,
            stop: Some(stop),
        })
    }

    /// The thread's runtime.
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for DriverThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
