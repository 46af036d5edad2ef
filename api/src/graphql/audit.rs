//! The ledger as an auditor replays it: every view of a past position,
//! seen at a business moment, contacts and groups alike.

use std::sync::Arc;

use async_graphql::{Context, Object};
use chrono::{DateTime, Utc};
use rapport_app::read_model::ReadModel;
use rapport_domain::{ContactId, Position, Timestamp};
use uuid::Uuid;

use super::errors::OrRefusal;
use super::group::GroupView;
use super::types::{Contact, GateDecision, SendMode, View};
use super::{timestamp, to_datetime};

/// The ledger as known at a past position, seen at a business moment.
#[derive(Clone, Debug)]
pub struct AuditView {
    pub model: Arc<ReadModel>,
    pub position: Option<Position>,
    pub recorded_at: Option<Timestamp>,
    /// The business moment answers default to: `at`, else when the
    /// position was recorded.
    pub default_at: Timestamp,
}

#[Object]
impl AuditView {
    async fn position(&self) -> Option<String> {
        self.position.map(|p| p.to_string())
    }

    async fn recorded_at(&self) -> Option<DateTime<Utc>> {
        self.recorded_at.map(to_datetime)
    }

    async fn policy_version(&self) -> i32 {
        self.model.projection.current_policy().version as i32
    }

    #[graphql(complexity = "super::FOLD_COST + child_complexity")]
    async fn contact(&self, ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<Contact>> {
        let principal = super::auth::principal(ctx)?;
        let contact_id = ContactId(id);
        super::auth::check_contact(principal, &self.model, contact_id)?;
        Ok(Some(Contact::new(
            contact_id,
            View::Replay(Arc::clone(&self.model)),
            self.default_at,
            super::now(ctx)?,
        )))
    }

    /// A group as the ledger knew it at this position.
    async fn group(&self, ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<GroupView>> {
        let principal = super::auth::principal(ctx)?;
        let group_id = rapport_domain::GroupId(id);
        rapport_app::group::check_group(principal, &self.model, group_id).or_refusal()?;
        Ok(Some(GroupView::new(
            group_id,
            View::Replay(Arc::clone(&self.model)),
            self.default_at,
            super::now(ctx)?,
        )))
    }

    #[graphql(complexity = "super::FOLD_COST + child_complexity")]
    async fn gate(
        &self,
        ctx: &Context<'_>,
        contact_id: Uuid,
        mode: SendMode,
        at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<GateDecision> {
        let principal = super::auth::principal(ctx)?;
        let at = at.map(timestamp).transpose()?.unwrap_or(self.default_at);
        let contact_id = ContactId(contact_id);
        super::auth::check_contact(principal, &self.model, contact_id)?;
        Contact::new(
            contact_id,
            View::Replay(Arc::clone(&self.model)),
            self.default_at,
            super::now(ctx)?,
        )
        .decide(ctx, mode, None, at)
        .await
    }
}
