//! What every request handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rapport_domain::Position;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use rapport_app::Core;
use rapport_app::read_model::ReadModel;
use rapport_app::tokens::{Role, TokenStore};

/// Full-ledger walks (replay, verification) that may run at once.
pub const LEDGER_WALKS_MAX: usize = 2;

#[derive(Debug)]
pub struct AppState {
    /// The ledger, the live read model and the clock the use cases work on.
    pub core: Core,
    pub tokens: Arc<TokenStore>,
    pub metrics: Metrics,
    /// The last replayed read model, by position: auditors page through one
    /// past moment with many queries.
    pub last_replay: Mutex<Option<(Option<Position>, Arc<ReadModel>)>>,
    pub ledger_walks: Semaphore,
    pub subscriptions: PrincipalSubscriptions,
}

/// The subscriptions each principal holds open, over all connections.
#[derive(Debug, Default)]
pub struct PrincipalSubscriptions {
    pub held: Mutex<HashMap<(String, Role), usize>>,
}
