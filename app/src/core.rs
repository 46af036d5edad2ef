//! What every use case works on: the ledger, the live read model that
//! follows it, and the one clock.

use std::sync::Arc;

use rapport_store::{Ledger, LedgerLocation, SharedClock, StoreError};

use crate::error::AppError;
use crate::ledger::open_for_writing;
use crate::live::{Live, Snapshots};
use crate::read_model::ReadModel;

#[derive(Clone, Debug)]
pub struct Core {
    pub store: Ledger,
    pub live: Arc<Live>,
    pub clock: SharedClock,
}

impl Core {
    /// Runs `read` against the live read model on a blocking thread: for
    /// reads that judge a whole audience, so that no async worker (and no
    /// request queued behind it) waits on them.
    pub async fn read_blocking<R: Send + 'static>(
        &self,
        read: impl FnOnce(&ReadModel) -> R + Send + 'static,
    ) -> Result<R, AppError> {
        let live = Arc::clone(&self.live);
        tokio::task::spawn_blocking(move || live.read(read))
            .await
            .map_err(|stopped| AppError::internal(format!("a read of the whole read model stopped: {stopped}")))
    }

    /// Opens the ledger at `location` for writing (creating it with the
    /// default policy if need be), commits recorded on `clock`, and starts
    /// the live read model.
    pub async fn open(location: &LedgerLocation, clock: SharedClock) -> Result<Core, StoreError> {
        let store = open_for_writing(location, "rapport", Arc::clone(&clock)).await?;
        let live = Live::start(&store, Snapshots::beside(&store)).await?;
        Ok(Core { store, live, clock })
    }
}
