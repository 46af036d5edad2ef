//! Errors as GraphQL shows them: the message, and the stable code from
//! the application's fixed list in `extensions.code`. Internal details are
//! logged, never sent.

use async_graphql::ErrorExtensions;
use rapport_app::AppError;
pub use rapport_app::Code;
use rapport_app::gate::Judged;
use rapport_domain::Language;
use rapport_store::StoreError;

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
    general_failure()
}

fn general_failure() -> async_graphql::Error {
    error(
        Code::Internal,
        "rapport failed to answer; the details are in the server log",
    )
}

pub fn from_store(store_error: StoreError) -> async_graphql::Error {
    from_app(store_error.into())
}

/// A use case's refusal, with its code and what the caller needs to act
/// on it: the batch item refused, or the gate's decision.
pub fn from_app(refusal: AppError) -> async_graphql::Error {
    let code = refusal.code();
    match refusal {
        // Logged where it arose.
        AppError::Internal(_) => general_failure(),
        AppError::BadInput {
            message,
            index: Some(index),
        } => bad_input(message).extend_with(|_, extensions| extensions.set("index", index as i32)),
        AppError::GateDenied(judged) => gate_denied(&judged, code),
        AppError::GroupGateDenied(decision) => group_gate_denied(&decision, code),
        other => error(code, other.to_string()),
    }
}

/// A refusal is written in English, like every error the API gives; its
/// codes are what clients match and translate.
fn gate_denied(judged: &Judged, code: Code) -> async_graphql::Error {
    let verdict = judged.decision.verdict.as_str();
    let reasons: Vec<async_graphql::Value> = judged
        .decision
        .reasons
        .iter()
        .zip(judged.messages(Language::English))
        .map(|(reason, message)| {
            async_graphql::value!({
                "code": reason.code.as_str(),
                "message": message,
                "blocking": reason.blocking,
            })
        })
        .collect();
    let next = judged.decision.next_allowed_at.map(|at| at.to_rfc3339());
    let message = format!("the gate says {verdict}: {}", judged.blocking_summary());
    error(code, message).extend_with(move |_, extensions| {
        extensions.set("verdict", verdict);
        extensions.set("reasons", async_graphql::Value::List(reasons.clone()));
        if let Some(next) = &next {
            extensions.set("nextAllowedAt", next.clone());
        }
    })
}

/// A group gate's refusal, with the same extensions as a contact's.
fn group_gate_denied(decision: &rapport_domain::group::GroupDecision, code: Code) -> async_graphql::Error {
    let verdict = decision.verdict.as_str();
    let reasons: Vec<async_graphql::Value> = decision
        .reasons
        .iter()
        .map(|reason| {
            async_graphql::value!({
                "code": reason.code.as_str(),
                "message": Language::English.reason(reason, ""),
                "blocking": reason.blocking,
            })
        })
        .collect();
    let next = decision.next_allowed_at.map(|at| at.to_rfc3339());
    let message = rapport_app::AppError::GroupGateDenied(Box::new(decision.clone())).to_string();
    error(code, message).extend_with(move |_, extensions| {
        extensions.set("verdict", verdict);
        extensions.set("reasons", async_graphql::Value::List(reasons.clone()));
        if let Some(next) = &next {
            extensions.set("nextAllowedAt", next.clone());
        }
    })
}

/// Turns a use case's result into a resolver's, keeping the error's code.
pub trait OrRefusal<T> {
    fn or_refusal(self) -> async_graphql::Result<T>;
}

impl<T> OrRefusal<T> for Result<T, AppError> {
    fn or_refusal(self) -> async_graphql::Result<T> {
        self.map_err(from_app)
    }
}
