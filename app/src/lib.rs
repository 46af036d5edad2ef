//! The application layer every adapter (the GraphQL server, the command
//! line) stands on: opening the ledger (`ledger`), the read model and its
//! rebuilds (`read_model`), the live read model a server keeps current
//! (`live`), API tokens (`tokens`) and the one clock (`clock`).
//!
//! Knows neither HTTP nor GraphQL nor the command line.

pub mod clock;
pub mod ledger;
pub mod live;
pub mod read_model;
pub mod tokens;
