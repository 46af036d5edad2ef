//! The GraphQL API: schema, limits, and the helpers resolvers share. The
//! names in the schema are a contract with clients; `api/schema.graphql` is
//! its exported SDL and a test fails when the two drift apart.

mod audit;
pub mod auth;
mod campaign;
pub mod errors;
pub mod group;
mod mutation;
pub mod phases;
mod privacy;
mod query;
mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::Schema;
use chrono::{DateTime, Utc};
use rapport_domain::Timestamp;

use crate::state::AppState;
pub use subscription::{
    ConnectionSubscriptions, SUBSCRIPTIONS_PER_CONNECTION_MAX, SUBSCRIPTIONS_PER_PRINCIPAL_MAX, Subscription,
};

/// Every query: the ledger's (contacts, campaigns, audits) and the groups'.
#[derive(async_graphql::MergedObject, Default, Debug)]
pub struct Query(query::LedgerQuery, group::GroupQuery);

/// Every mutation: the ledger's and the groups'.
#[derive(async_graphql::MergedObject, Default, Debug)]
pub struct Mutation(mutation::LedgerMutation, group::GroupMutation);

pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// Limits on what one request may ask for.
pub const DEPTH_MAX: usize = 12;
pub const COMPLEXITY_MAX: usize = 2_000;
pub const RECURSIVE_DEPTH_MAX: usize = 32;
pub const PAGE_SIZE_DEFAULT: usize = 20;
pub const PAGE_SIZE_MAX: usize = 100;
pub const SEARCH_CHARS_MAX: usize = 100;

/// What a field that reads the store costs on top of its selection.
pub const STORE_READ_COST: usize = 10;
/// What a contact seen at a past moment costs: its events are read and
/// folded again (at most `rapport_app::read::CONTACT_EVENTS_FOLDED_MAX`), so a request holds
/// a few dozen such folds at most.
pub const FOLD_COST: usize = 50;
/// A replay folds the ledger (once per position, then cached): at most
/// three per request, and `LEDGER_WALKS_MAX` at once over all requests.
pub const REPLAY_COST: usize = COMPLEXITY_MAX / 4;
/// A preflight judges a whole audience in memory: a few per request, and
/// `LEDGER_WALKS_MAX` at once over all requests.
pub const PREFLIGHT_COST: usize = COMPLEXITY_MAX / 4;
/// A verification walks every event: one per request.
pub const VERIFY_COST: usize = COMPLEXITY_MAX / 2 + 1;

/// The items a page will hold, as counted against `COMPLEXITY_MAX`, so
/// that aliases of large pages cannot multiply the work of one request.
pub fn page_cost(first: Option<i32>) -> usize {
    first.map_or(PAGE_SIZE_DEFAULT, |n| n.clamp(1, PAGE_SIZE_MAX as i32) as usize)
}

pub fn build_schema(state: Arc<AppState>) -> ApiSchema {
    Schema::build(Query::default(), Mutation::default(), Subscription)
        .data(state)
        // Depth and complexity are checked by `phases`, with their own code.
        .extension(phases::Phases::default())
        .limit_recursive_depth(RECURSIVE_DEPTH_MAX)
        .finish()
}

/// The schema's SDL, as exported to `api/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), Subscription)
        .finish()
        .sdl()
}

pub fn timestamp(at: DateTime<Utc>) -> async_graphql::Result<Timestamp> {
    Timestamp::from_datetime(at).map_err(|e| errors::bad_input(e.to_string()))
}

pub fn to_datetime(at: Timestamp) -> DateTime<Utc> {
    at.to_datetime()
}

/// Now, on the server's clock.
pub fn now(ctx: &async_graphql::Context<'_>) -> async_graphql::Result<Timestamp> {
    Ok(ctx.data::<Arc<AppState>>()?.core.clock.now())
}

/// A page size: `first` if given (1 to `PAGE_SIZE_MAX`), else the default.
pub fn page_size(first: Option<i32>) -> async_graphql::Result<usize> {
    match first {
        None => Ok(PAGE_SIZE_DEFAULT),
        Some(n) if n >= 1 && n as usize <= PAGE_SIZE_MAX => Ok(n as usize),
        Some(n) if n < 1 => Err(errors::bad_input(format!("first must be at least 1, got {n}"))),
        Some(n) => Err(errors::error(
            errors::Code::LimitExceeded,
            format!("first is at most {PAGE_SIZE_MAX}, got {n}"),
        )),
    }
}
