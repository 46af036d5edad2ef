//! Campaign types: the audience as a client gives it, and a preflight's
//! answer (totals per verdict and per reason, the contacts of each verdict
//! page by page).

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{ErrorExtensions, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use rapport_app::preflight::{Preflight, VERDICTS, Verdicted};
use rapport_domain::ContactId;
use rapport_domain::audience::{Audience, TagExpr};
use uuid::Uuid;

use super::errors::bad_input;
use super::types::{Band, Contact, ReasonCode, SendMode, Verdict, View};
use super::{page_size, to_datetime};

/// Who a campaign is for; every condition given must hold.
#[derive(InputObject, Debug)]
pub struct AudienceInput {
    /// A tag expression: `vip`, `new AND product-a`, `NOT price-sensitive`,
    /// parentheses; quote a tag spelled like a keyword (`"and"`).
    pub tags: Option<String>,
    /// Any of these owners (staff ids).
    pub owners: Option<Vec<String>>,
    /// Any of these bands, at the preflight's moment.
    pub bands: Option<Vec<Band>>,
    /// Only these contacts (at most 100,000).
    pub contact_ids: Option<Vec<Uuid>>,
}

impl AudienceInput {
    pub fn into_audience(self) -> async_graphql::Result<Audience> {
        let tags = self
            .tags
            .map(|text| TagExpr::parse(&text))
            .transpose()
            .map_err(|error| {
                let position = error.position as i32;
                bad_input(error.to_string()).extend_with(move |_, extensions| extensions.set("position", position))
            })?;
        Ok(Audience {
            tags,
            owners: self.owners.unwrap_or_default(),
            bands: self.bands.unwrap_or_default().into_iter().map(Into::into).collect(),
            contacts: self.contact_ids.map(|ids| ids.into_iter().map(ContactId).collect()),
        })
    }
}

#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct VerdictCount {
    pub verdict: Verdict,
    pub count: i32,
}

#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct ReasonCount {
    pub code: ReasonCode,
    pub count: i32,
}

/// One contact of a preflight bucket.
#[derive(Clone, Debug)]
pub struct PreflightContact {
    entry: Verdicted,
    verdict: Verdict,
    at: rapport_domain::Timestamp,
}

#[Object]
impl PreflightContact {
    async fn contact_id(&self) -> Uuid {
        self.entry.contact_id.0
    }

    async fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// For `DEFER`: when every deferring rule is satisfied.
    async fn next_allowed_at(&self) -> Option<DateTime<Utc>> {
        self.entry.next_allowed_at.map(to_datetime)
    }

    /// The reasons that decided the verdict.
    async fn reason_codes(&self) -> Vec<ReasonCode> {
        self.entry.blocking.iter().map(Into::into).collect()
    }

    /// The contact now, for its name and details.
    async fn contact(&self) -> Contact {
        Contact::new(self.entry.contact_id, View::Live, self.at, self.at)
    }
}

/// The gate's answer for a whole audience.
#[derive(Clone, Debug)]
pub struct PreflightResult(pub Arc<Preflight>);

#[Object]
impl PreflightResult {
    async fn at(&self) -> DateTime<Utc> {
        to_datetime(self.0.at)
    }

    async fn mode(&self) -> SendMode {
        self.0.mode.into()
    }

    /// The ledger position the answer was read at.
    async fn position(&self) -> Option<String> {
        self.0.position.map(|p| p.to_string())
    }

    async fn policy_version(&self) -> i32 {
        self.0.policy_version as i32
    }

    /// Contacts in the audience (that the caller may see).
    async fn total(&self) -> i32 {
        self.0.total() as i32
    }

    /// Listed contacts that do not exist or that the caller may not see.
    async fn unknown_contacts(&self) -> i32 {
        self.0.unknown as i32
    }

    /// How many contacts got each verdict, every verdict listed.
    async fn verdicts(&self) -> Vec<VerdictCount> {
        VERDICTS
            .iter()
            .map(|verdict| VerdictCount {
                verdict: (*verdict).into(),
                count: self.0.bucket(*verdict).len() as i32,
            })
            .collect()
    }

    /// How many contacts each reason fired for (blocking or not).
    async fn reasons(&self) -> Vec<ReasonCount> {
        self.0
            .reasons
            .iter()
            .map(|(code, count)| ReasonCount {
                code: (*code).into(),
                count: *count as i32,
            })
            .collect()
    }

    /// The contacts of one verdict, in id order; the cursor is the last id seen.
    #[graphql(complexity = "super::page_cost(first) * child_complexity")]
    async fn contacts(
        &self,
        verdict: Verdict,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, PreflightContact>> {
        let first = page_size(first)?;
        let after = after
            .map(|cursor| {
                cursor
                    .parse::<Uuid>()
                    .map(ContactId)
                    .map_err(|_| bad_input(format!("after must be a contact id, got '{cursor}'")))
            })
            .transpose()?;
        let bucket = self.0.bucket(verdict.into());
        let start = after.map_or(0, |after| bucket.partition_point(|entry| entry.contact_id <= after));
        let page = &bucket[start..bucket.len().min(start + first)];
        let mut connection = Connection::new(start > 0, start + page.len() < bucket.len());
        connection.edges.extend(page.iter().map(|entry| {
            Edge::new(
                entry.contact_id.to_string(),
                PreflightContact {
                    entry: *entry,
                    verdict,
                    at: self.0.at,
                },
            )
        }));
        Ok(connection)
    }
}
