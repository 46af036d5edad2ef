//! The application layer every adapter (the GraphQL server, the command
//! line) stands on: the use cases that write (`write`), read (`read`) and
//! import (`import`), a person's erasure and access requests (`privacy`), campaigns launched (`campaign`) and what they did
//! (`aftermath`), who may do what (`access`), the gate as adapters show it (`gate`), the typed errors
//! they answer with (`error`), opening the ledger (`core`, `ledger`), the
//! read model and its rebuilds (`read_model`), the live read model a
//! server keeps current (`live`), API tokens (`tokens`) and the one clock
//! (`clock`).
//!
//! Knows neither HTTP nor GraphQL nor the command line.

pub mod access;
pub mod aftermath;
pub mod campaign;
pub mod clock;
pub mod core;
pub mod error;
pub mod gate;
pub mod group;
pub mod import;
pub mod ledger;
pub mod live;
pub mod preflight;
pub mod privacy;
pub mod read;
pub mod read_model;
pub mod snapshot;
pub mod suggest;
pub mod tokens;
pub mod write;

pub use crate::core::Core;
pub use error::{AppError, Code};
