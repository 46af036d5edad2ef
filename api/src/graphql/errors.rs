//! The fixed list of error codes every GraphQL error carries in
//! `extensions.code`. Internal details are logged, never sent.

use async_graphql::ErrorExtensions;
use rapport_store::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadInput,
    Conflict,
    GateDenied,
    LimitExceeded,
    Internal,
}

impl Code {
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::BadInput => "BAD_INPUT",
            Code::Conflict => "CONFLICT",
            Code::GateDenied => "GATE_DENIED",
            Code::LimitExceeded => "LIMIT_EXCEEDED",
            Code::Internal => "INTERNAL",
        }
    }
}

pub fn error(code: Code, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, extensions| extensions.set("code", code.as_str()))
}

pub fn bad_input(message: impl Into<String>) -> async_graphql::Error {
    error(Code::BadInput, message)
}

pub fn not_found(what: impl std::fmt::Display) -> async_graphql::Error {
    error(Code::NotFound, format!("{what} was not found"))
}

/// An unexpected failure: logged in full, answered in general terms.
pub fn internal(detail: impl std::fmt::Display) -> async_graphql::Error {
    tracing::error!(%detail, "internal error");
    error(
        Code::Internal,
        "rapport failed to answer; the details are in the server log",
    )
}

pub fn from_store(store_error: StoreError) -> async_graphql::Error {
    let code = match &store_error {
        StoreError::InBatch { source, .. } => match &**source {
            StoreError::WrongExpectedVersion { .. } | StoreError::IdempotencyConflict { .. } => Code::Conflict,
            StoreError::TooManyEvents { .. } => Code::LimitExceeded,
            other if other.is_caller_error() => Code::BadInput,
            _ => return internal(&store_error),
        },
        StoreError::WrongExpectedVersion { .. } | StoreError::IdempotencyConflict { .. } => Code::Conflict,
        StoreError::InvalidEvent { .. } | StoreError::EventTooLarge { .. } | StoreError::EmptyAppend => Code::BadInput,
        StoreError::TooManyEvents { .. } => Code::LimitExceeded,
        _ => return internal(&store_error),
    };
    error(code, store_error.to_string())
}
