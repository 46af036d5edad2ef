//! What every use case works on: the ledger, the live read model that
//! follows it, and the one clock.

use std::path::Path;
use std::sync::Arc;

use rapport_store::{SharedClock, SqliteStore, StoreError};

use crate::ledger::open_for_writing;
use crate::live::Live;

#[derive(Clone, Debug)]
pub struct Core {
    pub store: SqliteStore,
    pub live: Arc<Live>,
    pub clock: SharedClock,
}

impl Core {
    /// Opens the ledger at `path` for writing (creating it with the
    /// default policy if need be), commits recorded on `clock`, and starts
    /// the live read model.
    pub async fn open(path: &Path, clock: SharedClock) -> Result<Core, StoreError> {
        let store = open_for_writing(path, "rapport", Arc::clone(&clock)).await?;
        let live = Live::start(&store).await?;
        Ok(Core { store, live, clock })
    }
}
