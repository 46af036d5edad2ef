//! What every request handler shares.

use std::sync::{Arc, Mutex};

use rapport_domain::Position;
use rapport_store::SqliteStore;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::graphql::PrincipalSubscriptions;
use crate::live::{Live, ReadModel};
use crate::metrics::Metrics;
use crate::tokens::TokenStore;

/// Full-ledger walks (replay, verification) that may run at once.
pub const LEDGER_WALKS_MAX: usize = 2;

#[derive(Debug)]
pub struct AppState {
    pub store: SqliteStore,
    pub live: Arc<Live>,
    pub tokens: TokenStore,
    pub metrics: Metrics,
    /// The last replayed read model, by position: auditors page through one
    /// past moment with many queries.
    pub last_replay: Mutex<Option<(Option<Position>, Arc<ReadModel>)>>,
    pub ledger_walks: Semaphore,
    pub subscriptions: PrincipalSubscriptions,
    pub clock: Clock,
}
