//! Who may do what. Each use case names the roles it admits; sales staff
//! are further limited to the contacts they own. Every refusal is logged
//! with who asked.

use rapport_domain::ContactId;

use crate::error::AppError;
use crate::read_model::ReadModel;
use crate::tokens::{Principal, Role};

/// Roles that read contacts and decisions.
pub const READERS: &[Role] = &[Role::Sales, Role::Manager, Role::Auditor, Role::Admin];
/// Roles that record what staff did.
pub const WRITERS: &[Role] = &[Role::Sales, Role::Manager, Role::Admin];
/// Roles that may send despite the gate.
pub const OVERRIDERS: &[Role] = &[Role::Manager, Role::Admin];
/// Roles that replay history, verify the ledger and list violations.
pub const AUDITORS: &[Role] = &[Role::Auditor, Role::Manager, Role::Admin];
/// Roles that hand in facts other tools saw.
pub const INGESTERS: &[Role] = &[Role::Ingest, Role::Admin];
pub const POLICY_WRITERS: &[Role] = &[Role::Admin];
/// Who launches campaigns (and sends as part of one): those who answer
/// for a mass send.
pub const LAUNCHERS: &[Role] = &[Role::Manager, Role::Admin];
/// Who erases a person's data: it cannot be undone.
pub const ERASERS: &[Role] = &[Role::Admin];
/// Who answers access requests: the answer holds every field of a person's.
pub const ACCESS_REQUESTERS: &[Role] = &[Role::Auditor, Role::Admin];

/// Refuses `principal` unless their role is one of `roles`.
pub fn require(principal: &Principal, roles: &[Role], action: &str) -> Result<(), AppError> {
    if roles.contains(&principal.role) {
        return Ok(());
    }
    tracing::warn!(name = %principal.name, role = %principal.role, action, "refused: role");
    Err(AppError::Forbidden {
        role: principal.role.as_str(),
        action: action.to_owned(),
    })
}

/// Whether `principal` may see or write this contact: sales only their own.
pub fn may_access(principal: &Principal, model: &ReadModel, contact_id: ContactId) -> bool {
    principal.role != Role::Sales
        || model
            .projection
            .relationship(contact_id)
            .is_some_and(|relationship| model.projection.symbols().name(relationship.owner()) == principal.name)
}

/// The one answer for a contact the caller may not see, whether it exists or not.
pub fn no_such_contact(contact_id: ContactId) -> AppError {
    AppError::NotFound(format!("contact {contact_id}"))
}

/// Checks access to a contact: NOT_FOUND if it does not exist or a sales
/// caller does not own it. The two answer alike, so that nobody learns
/// which ids exist.
pub fn check_contact(principal: &Principal, model: &ReadModel, contact_id: ContactId) -> Result<(), AppError> {
    if model.projection.relationship(contact_id).is_none() {
        return Err(no_such_contact(contact_id));
    }
    if !may_access(principal, model, contact_id) {
        tracing::warn!(
            name = %principal.name,
            role = %principal.role,
            %contact_id,
            "refused: a contact owned by someone else (answered NOT_FOUND)"
        );
        return Err(no_such_contact(contact_id));
    }
    Ok(())
}
