//! Campaign types: the audience as a client gives it, and a preflight's
//! answer (totals per verdict and per reason, the contacts of each verdict
//! page by page).

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{ComplexObject, Context, ErrorExtensions, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use rapport_app::aftermath::{Breakdown, CampaignReport, Groups};
use rapport_app::campaign::Launched;
use rapport_app::preflight::{Preflight, VERDICTS, Verdicted};
use rapport_app::suggest::Suggestion;
use rapport_domain::ContactId;
use rapport_domain::audience::{Audience, TagExpr};
use rapport_domain::reengage::Nudge;
use rapport_projections::campaigns::{Alert, Loss, Outcomes};
use uuid::Uuid;

use super::errors::bad_input;
use super::types::{Band, Channel, Contact, ReasonCode, SendMode, Verdict, View};
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
        let after = after.map(|cursor| contact_cursor(&cursor)).transpose()?;
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

/// A campaign to launch now.
#[derive(InputObject, Debug)]
pub struct LaunchCampaignInput {
    pub name: String,
    pub audience: AudienceInput,
    pub mode: SendMode,
    pub channel: Channel,
    /// The share of the allowed audience withheld as a control group (0 to 50).
    pub holdout_percent: Option<i32>,
    /// Names the campaign: launching again with the same key resumes it.
    pub idempotency_key: Uuid,
}

/// A contact the sending tool is to deliver to.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct Delivery {
    pub contact_id: Uuid,
    pub channel: Channel,
    /// In their active hours, at their best reply hour if one is still
    /// ahead today, in the first wave with room.
    pub planned_at: DateTime<Utc>,
    /// The wave of the send plan, from 0 (at once): at most the channel's
    /// sends a minute each, the policy's pause between two.
    pub wave: i32,
}

/// The personal chats one owner is to have instead of the mass send.
#[derive(Clone, Debug)]
pub struct OwnerTasks {
    owner: String,
    contacts: Vec<ContactId>,
}

#[Object]
impl OwnerTasks {
    async fn owner(&self) -> &str {
        &self.owner
    }

    async fn count(&self) -> i32 {
        self.contacts.len() as i32
    }

    /// The first of them, in id order.
    async fn contact_ids(&self, first: Option<i32>) -> async_graphql::Result<Vec<Uuid>> {
        first_ids(&self.contacts, first)
    }
}

/// Up to `first` (a page) of `ids`.
fn first_ids(ids: &[ContactId], first: Option<i32>) -> async_graphql::Result<Vec<Uuid>> {
    Ok(ids.iter().take(page_size(first)?).map(|id| id.0).collect())
}

/// What a launch did.
#[derive(Clone, Debug)]
pub struct LaunchResult(pub Arc<Launched>);

#[Object]
impl LaunchResult {
    async fn campaign_id(&self) -> Uuid {
        self.0.campaign_id.0
    }

    /// Whether this launch resumed one begun before under the same key.
    async fn resumed(&self) -> bool {
        self.0.resumed
    }

    async fn position(&self) -> Option<String> {
        self.0.position.map(|p| p.to_string())
    }

    /// Contacts touched, by this launch or an earlier one of the campaign.
    async fn sent(&self) -> i32 {
        self.0.deliveries.len() as i32
    }

    async fn held_out(&self) -> i32 {
        self.0.held_out.len() as i32
    }

    async fn deferred(&self) -> i32 {
        self.0.deferred.len() as i32
    }

    async fn denied(&self) -> i32 {
        self.0.denied.len() as i32
    }

    /// How many allowed contacts changed while the launch judged them: not
    /// touched; launching again judges them again.
    async fn changed(&self) -> i32 {
        self.0.changed.len() as i32
    }

    async fn changed_contacts(&self, first: Option<i32>) -> async_graphql::Result<Vec<Uuid>> {
        first_ids(&self.0.changed, first)
    }

    /// Touched by an earlier run, but they deleted or blocked us, opted out
    /// or complained since: not to be delivered to.
    async fn withdrawn(&self) -> i32 {
        self.0.withdrawn.len() as i32
    }

    async fn withdrawn_contacts(&self, first: Option<i32>) -> async_graphql::Result<Vec<Uuid>> {
        first_ids(&self.0.withdrawn, first)
    }

    /// `ROUTE_ONE_TO_ONE`: the personal chats, by owner.
    async fn one_to_one(&self) -> Vec<OwnerTasks> {
        self.0
            .one_to_one
            .iter()
            .map(|(owner, contacts)| OwnerTasks {
                owner: owner.clone(),
                contacts: contacts.clone(),
            })
            .collect()
    }

    /// What the sending tool must deliver, in contact id order.
    #[graphql(complexity = "super::page_cost(first) * child_complexity")]
    async fn deliveries(
        &self,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Delivery>> {
        let first = page_size(first)?;
        let after = after.map(|cursor| contact_cursor(&cursor)).transpose()?;
        let all = &self.0.deliveries;
        let start = after.map_or(0, |after| all.partition_point(|delivery| delivery.contact_id <= after));
        let page = &all[start..all.len().min(start + first)];
        let mut connection = Connection::new(start > 0, start + page.len() < all.len());
        connection.edges.extend(page.iter().map(|delivery| {
            Edge::new(
                delivery.contact_id.to_string(),
                Delivery {
                    contact_id: delivery.contact_id.0,
                    channel: delivery.channel.into(),
                    planned_at: to_datetime(delivery.planned_at),
                    wave: i32::try_from(delivery.wave).unwrap_or(i32::MAX),
                },
            )
        }));
        Ok(connection)
    }
}

fn contact_cursor(cursor: &str) -> async_graphql::Result<ContactId> {
    cursor
        .parse::<Uuid>()
        .map(ContactId)
        .map_err(|_| bad_input(format!("after must be a contact id, got '{cursor}'")))
}

/// How many contacts of the audience got each answer from the gate when
/// the campaign was launched.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct LaunchJudgment {
    /// Allowed and sent to.
    pub sent: i32,
    /// Allowed, and withheld as the control group.
    pub held_out: i32,
    pub routed_one_to_one: i32,
    pub deferred: i32,
    pub denied: i32,
}

impl From<rapport_domain::event::ResolvedAudience> for LaunchJudgment {
    fn from(resolved: rapport_domain::event::ResolvedAudience) -> Self {
        let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        LaunchJudgment {
            sent: count(resolved.sent),
            held_out: count(resolved.held_out),
            routed_one_to_one: count(resolved.routed_one_to_one),
            deferred: count(resolved.deferred),
            denied: count(resolved.denied),
        }
    }
}

/// What contacts of one group did within the window after the send.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct CampaignOutcomes {
    pub contacts: i32,
    pub replied: i32,
    pub deleted_us: i32,
    pub blocked: i32,
    pub complained: i32,
    pub opted_out: i32,
    /// Delivery outcomes the sending tool reported for this campaign.
    pub failed: i32,
    pub read: i32,
    pub clicked: i32,
    pub reply_rate: f64,
    /// Deletions plus blocks.
    pub loss_rate: f64,
    pub complaint_rate: f64,
    pub opt_out_rate: f64,
    pub failed_rate: f64,
    pub read_rate: f64,
    pub click_rate: f64,
}

impl From<Outcomes> for CampaignOutcomes {
    fn from(outcomes: Outcomes) -> Self {
        CampaignOutcomes {
            contacts: outcomes.contacts as i32,
            replied: outcomes.replied as i32,
            deleted_us: outcomes.deleted_us as i32,
            blocked: outcomes.blocked as i32,
            complained: outcomes.complained as i32,
            opted_out: outcomes.opted_out as i32,
            failed: outcomes.failed as i32,
            read: outcomes.read as i32,
            clicked: outcomes.clicked as i32,
            reply_rate: outcomes.reply_rate(),
            loss_rate: outcomes.loss_rate(),
            complaint_rate: outcomes.complaint_rate(),
            opt_out_rate: outcomes.opt_out_rate(),
            failed_rate: outcomes.failed_rate(),
            read_rate: outcomes.read_rate(),
            click_rate: outcomes.click_rate(),
        }
    }
}

#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertKind {
    /// Deletions plus blocks above the policy's share of those sent to (2 %).
    Losses,
    /// Complaints above theirs (3 %).
    Complaints,
    /// Failed deliveries above theirs (5 %).
    FailedDeliveries,
}

impl From<Alert> for CampaignAlert {
    fn from(alert: Alert) -> Self {
        let (kind, rate, threshold) = match alert {
            Alert::Losses { rate, threshold } => (AlertKind::Losses, rate, threshold),
            Alert::Complaints { rate, threshold } => (AlertKind::Complaints, rate, threshold),
            Alert::FailedDeliveries { rate, threshold } => (AlertKind::FailedDeliveries, rate, threshold),
        };
        CampaignAlert { kind, rate, threshold }
    }
}

/// One owner's or one tag's contacts in a campaign.
#[derive(SimpleObject, Clone, Debug)]
pub struct CampaignSlice {
    /// The owner's staff id, or the tag.
    pub key: String,
    pub sent: CampaignOutcomes,
    pub holdout: CampaignOutcomes,
    pub loss_rate_difference: f64,
}

fn slices(rows: Vec<(String, Groups)>) -> Vec<CampaignSlice> {
    rows.into_iter()
        .map(|(key, groups)| CampaignSlice {
            key,
            sent: groups.sent.into(),
            holdout: groups.holdout.into(),
            loss_rate_difference: groups.loss_rate_difference(),
        })
        .collect()
}

/// A campaign's counts by owner and by tag (each contact's as they stand
/// now), the largest groups first, 100 rows at most each.
#[derive(SimpleObject, Clone, Debug)]
pub struct CampaignBreakdown {
    pub by_owner: Vec<CampaignSlice>,
    pub by_tag: Vec<CampaignSlice>,
}

impl From<Breakdown> for CampaignBreakdown {
    fn from(breakdown: Breakdown) -> Self {
        CampaignBreakdown {
            by_owner: slices(breakdown.by_owner),
            by_tag: slices(breakdown.by_tag),
        }
    }
}

#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct CampaignAlert {
    pub kind: AlertKind,
    pub rate: f64,
    pub threshold: f64,
}

#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    DeletedUs,
    Blocked,
}

/// Someone a campaign cost, as they stood before the send.
#[derive(SimpleObject, Clone, Copy, Debug)]
#[graphql(complex)]
pub struct LostContact {
    pub contact_id: Uuid,
    pub loss: LossKind,
    pub at: DateTime<Utc>,
    /// In the holdout: lost without the campaign's send.
    pub held_out: bool,
    pub score_before: i32,
    pub band_before: Band,
}

#[ComplexObject]
impl LostContact {
    /// Their name as the ledger holds it now ("erased" once erased).
    async fn display_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let state = ctx.data::<Arc<crate::state::AppState>>()?;
        Ok(state
            .core
            .live
            .read(|model| model.display_name(ContactId(self.contact_id))))
    }
}

/// A campaign and its aftermath: within the policy's window after each
/// contact's send (seven days), what those sent to did, beside the holdout
/// that was not sent to. Sales staff see their own contacts' part.
#[derive(Clone, Debug)]
pub struct CampaignView(pub CampaignReport);

#[Object(name = "Campaign")]
impl CampaignView {
    async fn id(&self) -> Uuid {
        self.0.record.id.0
    }

    /// Absent when touches name a campaign whose start the ledger lacks.
    async fn name(&self) -> Option<&str> {
        self.0.record.name.as_deref()
    }

    async fn mode(&self) -> SendMode {
        self.0.record.mode.into()
    }

    async fn channel(&self) -> Option<Channel> {
        self.0.record.channel.map(Into::into)
    }

    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.record.started_at.map(to_datetime)
    }

    async fn position(&self) -> Option<String> {
        self.0.record.started_position.map(|p| p.to_string())
    }

    async fn holdout_percent(&self) -> i32 {
        i32::from(self.0.record.holdout_percent)
    }

    /// The gate's answers for the whole audience at launch. Absent for
    /// campaigns other tools sent, and for sales staff (it is not their part).
    async fn at_launch(&self) -> Option<LaunchJudgment> {
        self.0.record.at_launch.map(Into::into)
    }

    /// For sales staff: the owner whose contacts these counts are (theirs).
    async fn owner(&self) -> Option<&str> {
        self.0.owner.as_deref()
    }

    /// How long after each send what a contact does counts, in seconds
    /// (the policy's when the campaign started).
    async fn window_secs(&self) -> i64 {
        self.0.record.rules.window_millis / 1_000
    }

    async fn sent(&self) -> CampaignOutcomes {
        self.0.groups.sent.into()
    }

    async fn holdout(&self) -> CampaignOutcomes {
        self.0.groups.holdout.into()
    }

    /// The loss rate of those sent to, less the holdout's: what the send
    /// itself cost (positive: more were lost than without it).
    async fn loss_rate_difference(&self) -> f64 {
        self.0.groups.loss_rate_difference()
    }

    /// The rates of those sent to above their thresholds.
    async fn alerts(&self) -> Vec<CampaignAlert> {
        self.0.alerts.iter().copied().map(CampaignAlert::from).collect()
    }

    /// The counts by owner and by tag: one walk of the campaign's members.
    #[graphql(complexity = "super::PREFLIGHT_COST + child_complexity")]
    async fn breakdown(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<CampaignBreakdown> {
        use super::errors::OrRefusal;
        let principal = super::auth::principal(ctx)?.clone();
        let state = ctx.data::<Arc<crate::state::AppState>>()?;
        let _turn = state.ledger_walks.acquire().await.map_err(super::errors::internal)?;
        let id = self.0.record.id;
        let breakdown = state
            .core
            .read_blocking(move |model| rapport_app::aftermath::breakdown(model, &principal, id))
            .await
            .or_refusal()?
            .or_refusal()?;
        Ok(breakdown.into())
    }

    /// Who deleted or blocked us within the window, in the order the
    /// ledger learned of it.
    #[graphql(complexity = "super::page_cost(first) * child_complexity")]
    async fn deleted_after(&self, first: Option<i32>, after: Option<i32>) -> async_graphql::Result<Vec<LostContact>> {
        let first = page_size(first)?;
        let start = match after {
            None => 0,
            Some(index) if index >= 0 => index as usize + 1,
            Some(index) => return Err(bad_input(format!("after is an index, 0 or more, got {index}"))),
        };
        Ok(self
            .0
            .lost
            .iter()
            .skip(start)
            .take(first)
            .map(|lost| LostContact {
                contact_id: lost.contact_id.0,
                loss: match lost.loss {
                    Loss::DeletedUs => LossKind::DeletedUs,
                    Loss::Blocked => LossKind::Blocked,
                },
                at: to_datetime(lost.at),
                held_out: lost.held_out,
                score_before: i32::from(lost.score_before),
                band_before: lost.band_before.into(),
            })
            .collect())
    }
}

#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NudgeKind {
    /// Silent a week: a personal greeting.
    Greeting,
    /// Silent two weeks and more: an invitation to an activity.
    Invitation,
}

/// A contact gone quiet, due a personal word.
#[derive(Clone, Debug)]
pub struct SuggestionView {
    pub suggestion: Suggestion,
    pub at: rapport_domain::Timestamp,
}

#[Object(name = "Suggestion")]
impl SuggestionView {
    async fn contact(&self) -> Contact {
        Contact::new(self.suggestion.contact_id, View::Live, self.at, self.at)
    }

    async fn kind(&self) -> NudgeKind {
        match self.suggestion.nudge {
            Nudge::Greeting => NudgeKind::Greeting,
            Nudge::Invitation => NudgeKind::Invitation,
        }
    }

    async fn silent_days(&self) -> i32 {
        i32::try_from(self.suggestion.silent_days).unwrap_or(i32::MAX)
    }

    async fn score(&self) -> i32 {
        i32::from(self.suggestion.score)
    }

    async fn band(&self) -> Band {
        self.suggestion.band.into()
    }

    /// The gate for a personal chat now: `ALLOW`, or `DEFER` until `nextAllowedAt`.
    async fn verdict(&self) -> Verdict {
        self.suggestion.verdict.into()
    }

    async fn next_allowed_at(&self) -> Option<DateTime<Utc>> {
        self.suggestion.next_allowed_at.map(to_datetime)
    }

    /// Local hours (0 to 23) they usually reply in.
    async fn best_send_hours(&self) -> Vec<i32> {
        super::types::hours(self.suggestion.best_send_hours)
    }
}
