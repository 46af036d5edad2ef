//! The caller of a GraphQL operation, and the application's access rules
//! applied to them (`rapport_app::access`).

use std::sync::Arc;

use async_graphql::Context;
use rapport_app::access;
pub use rapport_app::access::{
    ACCESS_REQUESTERS, AUDITORS, ERASERS, INGESTERS, OVERRIDERS, POLICY_WRITERS, READERS, WRITERS, may_access,
};
use rapport_app::read_model::ReadModel;
use rapport_app::tokens::{Principal, Role};
use rapport_domain::ContactId;

use super::errors::{Code, OrRefusal, error};
use crate::state::AppState;

/// A WebSocket connection's token, kept in its connection data so that
/// every operation on it checks the token again (it may have been revoked).
#[derive(Clone, Debug)]
pub struct SocketToken(pub String);

/// The caller. On a WebSocket, whose principal was fixed when it opened,
/// the token is checked again, so a revoked token runs nothing more.
pub fn principal<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    let principal = ctx
        .data_opt::<Principal>()
        .ok_or_else(|| error(Code::Unauthenticated, "a bearer token is required"))?;
    if let Some(SocketToken(token)) = ctx.data_opt::<SocketToken>() {
        let state = ctx.data::<Arc<AppState>>()?;
        if state.tokens.authenticate(token).is_none() {
            tracing::warn!(name = %principal.name, role = %principal.role, "refused: the token was revoked");
            return Err(error(Code::Unauthenticated, "the token was revoked"));
        }
    }
    Ok(principal)
}

/// The caller, if their role is one of `roles`.
pub fn require<'a>(ctx: &Context<'a>, roles: &[Role], action: &str) -> async_graphql::Result<&'a Principal> {
    let principal = principal(ctx)?;
    access::require(principal, roles, action).or_refusal()?;
    Ok(principal)
}

/// NOT_FOUND, alike for a missing contact and one the caller may not see.
pub fn check_contact(principal: &Principal, model: &ReadModel, contact_id: ContactId) -> async_graphql::Result<()> {
    access::check_contact(principal, model, contact_id).or_refusal()
}
