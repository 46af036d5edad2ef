//! Folds of the ledger into read models: relationship strength and the send
//! gate. Pure: events in, state out, with `at` always an argument.
