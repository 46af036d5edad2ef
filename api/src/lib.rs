//! rapport's HTTP and GraphQL adapter: the router and server (`server`),
//! the console and GraphiQL with their embedded files (`console`), the
//! schema and its resolvers (`graphql`), what handlers share (`state`)
//! and the Prometheus counters (`metrics`). Resolvers translate requests
//! into the application layer's calls and render its answers.
//!
//! Knows neither the command line nor how the ledger is stored.

pub mod console;
pub mod graphql;
pub mod metrics;
pub mod server;
pub mod state;
