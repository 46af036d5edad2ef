// Drives the KurrentDB test double through the official kurrentdb client, one module per area, in one test binary.

mod appends;
mod deletes;
mod faults;
mod reads;
mod subscriptions;
mod support;
