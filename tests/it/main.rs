//! rapport's end-to-end tests: one binary, one module per capability.

mod api;
mod campaign;
mod cli;
mod conformance;
mod console;
mod crash;
mod graphql_http;
mod groups;
mod kurrentdb;
mod ledger;
mod privacy;
mod snapshot;
mod support;
mod tamper;
mod tidy;
mod trust;
