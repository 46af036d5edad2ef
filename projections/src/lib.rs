//! Folds of the ledger into read models: every contact's relationship,
//! the policy history, the touches that broke the gate, and every
//! campaign's aftermath. Pure: events
//! in, state out, with `at` always an argument, so rebuilding from scratch
//! up to any position gives exactly what the live fold held there.

pub mod campaigns;
mod horizon;
mod projection;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod scenarios;

pub use horizon::Horizon;
pub use projection::{Decision, LoadedRest, PolicyInForce, Projection, RestoredRelationships, SavedRest, Violation};
