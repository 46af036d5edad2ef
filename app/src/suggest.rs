//! Suggestions: whom to write to personally today, among the contacts gone
//! quiet, the most valuable relationships first, each with the gate's
//! answer for a personal chat and the best hours to write. A contact the
//! gate refuses is never suggested.

use rapport_domain::reengage::{Nudge, nudge};
use rapport_domain::{Band, ContactId, SendMode, Timestamp, Verdict, gate};

use crate::access::{READERS, may_access, require};
use crate::error::AppError;
use crate::read_model::ReadModel;
use crate::tokens::{Principal, Role};

/// Suggestions answered when no limit is given, and at most.
pub const SUGGESTIONS_DEFAULT: usize = 20;
pub const SUGGESTIONS_MAX: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suggestion {
    pub contact_id: ContactId,
    pub nudge: Nudge,
    pub silent_days: i64,
    pub score: u8,
    pub band: Band,
    /// The gate for a personal chat now: `ALLOW`, or `DEFER` until `next_allowed_at`.
    pub verdict: Verdict,
    pub next_allowed_at: Option<Timestamp>,
    /// Local hours they usually reply in (bit per hour).
    pub best_send_hours: u32,
}

/// The contacts of `owner` (sales staff: their own) due a personal word at
/// `now`, by score, highest first.
pub fn suggestions(
    model: &ReadModel,
    principal: &Principal,
    owner: Option<&str>,
    now: Timestamp,
    limit: Option<usize>,
) -> Result<Vec<Suggestion>, AppError> {
    require(principal, READERS, "read suggestions")?;
    let limit = match limit {
        None => SUGGESTIONS_DEFAULT,
        Some(n) if (1..=SUGGESTIONS_MAX).contains(&n) => n,
        Some(n) => {
            return Err(AppError::LimitExceeded(format!(
                "at most {SUGGESTIONS_MAX} suggestions at once, not {n}"
            )));
        }
    };
    let owner = match (principal.role, owner.map(str::trim)) {
        (Role::Sales, Some(other)) if other != principal.name => {
            return Err(AppError::Forbidden {
                role: principal.role.as_str(),
                action: "read suggestions for someone else's contacts".to_owned(),
            });
        }
        (_, owner) => owner,
    };
    let projection = &model.projection;
    let policy = projection.current_policy();
    let owner_symbol = owner.map(|owner| projection.symbols().lookup(owner));
    let mut found: Vec<Suggestion> = projection
        .contacts()
        .filter(|(id, relationship)| {
            relationship.is_registered()
                && may_access(principal, model, *id)
                && owner_symbol.is_none_or(|wanted| wanted == Some(relationship.owner()))
        })
        .filter_map(|(contact_id, relationship)| {
            let (nudge, silent_days) = nudge(relationship, &policy.policy.campaigns, now)?;
            let decision = gate(relationship, policy, SendMode::OneToOne, None, now);
            (decision.verdict != Verdict::Deny).then_some(Suggestion {
                contact_id,
                nudge,
                silent_days,
                score: decision.strength.score,
                band: decision.strength.band,
                verdict: decision.verdict,
                next_allowed_at: decision.next_allowed_at,
                best_send_hours: decision.best_send_hours,
            })
        })
        .collect();
    found.sort_by(|a, b| b.score.cmp(&a.score).then(a.contact_id.cmp(&b.contact_id)));
    found.truncate(limit);
    Ok(found)
}
