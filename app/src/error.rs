//! What a use case answers when it refuses or fails: one closed set of
//! errors, each with a stable code that every adapter shows as it is (the
//! GraphQL `extensions.code`, the command line's `code` on stderr).

use rapport_domain::Language;
use rapport_domain::decide::FactRejection;
use rapport_domain::group::GroupDecision;
use rapport_domain::policy::BusinessTimeError;
use rapport_store::StoreError;

use crate::gate::Judged;

/// The stable error codes, as clients match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadInput,
    Conflict,
    GateDenied,
    LimitExceeded,
    Unavailable,
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
            Code::Unavailable => "UNAVAILABLE",
            Code::Internal => "INTERNAL",
        }
    }
}

/// A refused or failed use case. Everything but `Unavailable` and
/// `Internal` was caused by the caller and wrote nothing; `Unavailable`
/// says in its message whether a write was recorded.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{} {role} token may not {action}", article(role))]
    Forbidden { role: &'static str, action: String },
    #[error("{0} was not found")]
    NotFound(String),
    /// `index`: the item of a batch that was refused.
    #[error("{message}")]
    BadInput { message: String, index: Option<usize> },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("the gate says {}: {}", .0.decision.verdict.as_str(), .0.blocking_summary())]
    GateDenied(Box<Judged>),
    #[error("the group gate says {}: {}", .0.verdict.as_str(), group_refusal(.0))]
    GroupGateDenied(Box<GroupDecision>),
    #[error("{0}")]
    Unavailable(String),
    /// Logged in full where it arises; adapters answer in general terms.
    #[error("{0}")]
    Internal(String),
}

/// The blocking reasons of a group gate's refusal in English, one
/// sentence after another (errors are English; their codes translate).
fn group_refusal(decision: &GroupDecision) -> String {
    decision
        .reasons
        .iter()
        .filter(|reason| reason.blocking)
        .map(|reason| Language::English.reason(reason, ""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// "a" or "an", as the role's name is spoken.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

impl AppError {
    pub fn code(&self) -> Code {
        match self {
            AppError::Unauthenticated(_) => Code::Unauthenticated,
            AppError::Forbidden { .. } => Code::Forbidden,
            AppError::NotFound(_) => Code::NotFound,
            AppError::BadInput { .. } => Code::BadInput,
            AppError::Conflict(_) => Code::Conflict,
            AppError::LimitExceeded(_) => Code::LimitExceeded,
            AppError::GateDenied(_) | AppError::GroupGateDenied(_) => Code::GateDenied,
            AppError::Unavailable(_) => Code::Unavailable,
            AppError::Internal(_) => Code::Internal,
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        AppError::BadInput {
            message: message.into(),
            index: None,
        }
    }

    /// Item `index` of a batch was refused, and with it the whole batch.
    pub fn in_batch(index: usize, problem: impl std::fmt::Display) -> Self {
        AppError::BadInput {
            message: format!("event {index}: {problem}; nothing was written"),
            index: Some(index),
        }
    }

    /// An unexpected failure: logged here, in full.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        AppError::Internal(detail.to_string())
    }
}

/// The code a store error answers with, decided by its kind.
pub fn code_of(error: &StoreError) -> Code {
    match error {
        StoreError::InBatch { source, .. } => code_of(source),
        StoreError::WrongExpectedVersion { .. } | StoreError::IdempotencyConflict { .. } => Code::Conflict,
        StoreError::TooManyEvents { .. } | StoreError::AppendTooLarge { .. } => Code::LimitExceeded,
        StoreError::InvalidEvent { .. }
        | StoreError::EventTooLarge { .. }
        | StoreError::EmptyAppend
        | StoreError::Erased { .. } => Code::BadInput,
        StoreError::Unavailable(_) => Code::Unavailable,
        StoreError::Corrupt { .. }
        | StoreError::Decode { .. }
        | StoreError::NewerFormat { .. }
        | StoreError::NotALedger { .. }
        | StoreError::Io(_)
        | StoreError::MasterKey(_) => Code::Internal,
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        match code_of(&error) {
            Code::Conflict => AppError::Conflict(message),
            Code::LimitExceeded => AppError::LimitExceeded(message),
            Code::BadInput => AppError::BadInput {
                message,
                index: match error {
                    StoreError::InBatch { index, .. } => Some(index),
                    _ => None,
                },
            },
            Code::Unavailable => AppError::Unavailable(message),
            _ => AppError::internal(message),
        }
    }
}

impl From<BusinessTimeError> for AppError {
    fn from(refusal: BusinessTimeError) -> Self {
        AppError::bad_input(refusal.to_string())
    }
}

impl From<FactRejection> for AppError {
    fn from(rejection: FactRejection) -> Self {
        match rejection {
            FactRejection::TooManyTags => AppError::LimitExceeded(rejection.to_string()),
            FactRejection::BusinessTime(_) | FactRejection::Invalid(_) => AppError::bad_input(rejection.to_string()),
        }
    }
}
