//! Who may do what. Each resolver names the roles it admits; sales staff
//! are further limited to the contacts they own.

use async_graphql::Context;
use rapport_domain::ContactId;

use super::errors::{Code, error};
use std::sync::Arc;

use crate::server::SocketToken;
use crate::state::AppState;
use rapport_app::read_model::ReadModel;
use rapport_app::tokens::{Principal, Role};

/// Roles that read contacts and decisions.
pub const READERS: &[Role] = &[Role::Sales, Role::Manager, Role::Auditor, Role::Admin];
/// Roles that record what staff did.
pub const WRITERS: &[Role] = &[Role::Sales, Role::Manager, Role::Admin];
/// Roles that may send despite the gate.
pub const OVERRIDERS: &[Role] = &[Role::Manager, Role::Admin];
/// Roles that replay history, verify the ledger and list violations.
pub const AUDITORS: &[Role] = &[Role::Auditor, Role::Manager, Role::Admin];
pub const INGESTERS: &[Role] = &[Role::Ingest, Role::Admin];
pub const POLICY_WRITERS: &[Role] = &[Role::Admin];

fn forbidden(principal: &Principal, action: &str) -> async_graphql::Error {
    tracing::warn!(name = %principal.name, role = %principal.role, action, "refused: role or ownership");
    error(Code::Forbidden, format!("a {} token may not {action}", principal.role))
}

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
    if roles.contains(&principal.role) {
        Ok(principal)
    } else {
        Err(forbidden(principal, action))
    }
}

/// Whether `principal` may see or write this contact: sales only their own.
pub fn may_access(principal: &Principal, model: &ReadModel, contact_id: ContactId) -> bool {
    principal.role != Role::Sales
        || model
            .projection
            .relationship(contact_id)
            .is_some_and(|relationship| model.projection.symbols().name(relationship.owner()) == principal.name)
}

/// Checks access to a contact: NOT_FOUND if it does not exist or a sales
/// caller does not own it. The two answer alike, so that nobody learns
/// which ids exist; the refusal is logged with who asked.
pub fn check_contact(principal: &Principal, model: &ReadModel, contact_id: ContactId) -> async_graphql::Result<()> {
    if model.projection.relationship(contact_id).is_none() {
        return Err(super::errors::not_found(format!("contact {contact_id}")));
    }
    if !may_access(principal, model, contact_id) {
        tracing::warn!(
            name = %principal.name,
            role = %principal.role,
            %contact_id,
            "refused: a contact owned by someone else (answered NOT_FOUND)"
        );
        return Err(super::errors::not_found(format!("contact {contact_id}")));
    }
    Ok(())
}
