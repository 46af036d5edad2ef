//! Reading what campaigns did: the whole aftermath for auditors, managers
//! and admins; for sales staff, their own contacts' part of it (the counts,
//! rates, alerts and losses among the contacts they own).

use std::collections::HashMap;

use rapport_domain::{CampaignId, SymbolId};
use rapport_projections::campaigns::{Alert, CampaignRecord, Lost, MemberOutcome, Outcomes};

use crate::access::{READERS, may_access, require};
use crate::error::AppError;
use crate::read_model::ReadModel;
use crate::tokens::{Principal, Role};

/// Rows of a breakdown by owner or by tag, the largest groups first.
pub const BREAKDOWN_ROWS_MAX: usize = 100;

/// Those sent to and the holdout, side by side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Groups {
    pub sent: Outcomes,
    pub holdout: Outcomes,
}

impl Groups {
    fn count(&mut self, member: &MemberOutcome) {
        if member.held_out {
            self.holdout.count(member.did);
        } else {
            self.sent.count(member.did);
        }
    }

    /// The loss rate of those sent to, less the holdout's: what the send
    /// itself cost.
    pub fn loss_rate_difference(&self) -> f64 {
        self.sent.loss_rate() - self.holdout.loss_rate()
    }
}

/// A campaign's aftermath as one reader may see it.
#[derive(Clone, Debug)]
pub struct CampaignReport {
    /// What the campaign is (name, channel, start, rules); its counts are
    /// the whole campaign's, which `groups` restates for this reader.
    pub record: CampaignRecord,
    /// `Some(owner)`: only the contacts this salesperson owns.
    pub owner: Option<String>,
    pub groups: Groups,
    /// The rates of those sent to above the campaign's thresholds.
    pub alerts: Vec<Alert>,
    /// Who deleted or blocked us within the window, in the order the
    /// ledger learned of it.
    pub lost: Vec<Lost>,
}

/// The same counts by each contact's owner and by each tag they carry,
/// as the read model knows them now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Breakdown {
    pub by_owner: Vec<(String, Groups)>,
    pub by_tag: Vec<(String, Groups)>,
}

/// Whether `principal` may read campaigns at all (sales: their own part).
pub fn may_read_campaigns(principal: &Principal) -> Result<(), AppError> {
    require(principal, READERS, "read campaigns")
}

fn not_found(id: CampaignId) -> AppError {
    AppError::NotFound(format!("campaign {id}"))
}

/// The members of `id` whom `principal` may see.
fn visible_members<'a>(
    model: &'a ReadModel,
    principal: &'a Principal,
    id: CampaignId,
) -> impl Iterator<Item = MemberOutcome> + 'a {
    model
        .projection
        .campaigns()
        .member_outcomes(id)
        .filter(move |member| may_access(principal, model, member.contact_id))
}

fn report_of(model: &ReadModel, principal: &Principal, record: &CampaignRecord) -> CampaignReport {
    let (owner, groups, lost) = if principal.role == Role::Sales {
        let mut groups = Groups::default();
        visible_members(model, principal, record.id).for_each(|member| groups.count(&member));
        let lost = record
            .lost
            .iter()
            .filter(|lost| may_access(principal, model, lost.contact_id))
            .copied()
            .collect();
        (Some(principal.name.clone()), groups, lost)
    } else {
        let groups = Groups {
            sent: record.sent,
            holdout: record.holdout,
        };
        (None, groups, record.lost.clone())
    };
    let alerts = groups.sent.alerts(&record.rules);
    let mut record = record.clone();
    if principal.role == Role::Sales {
        // The gate's answers for the whole audience are not their part.
        record.at_launch = None;
    }
    CampaignReport {
        record,
        owner,
        alerts,
        groups,
        lost,
    }
}

/// One campaign's aftermath.
pub fn report(model: &ReadModel, principal: &Principal, id: CampaignId) -> Result<CampaignReport, AppError> {
    may_read_campaigns(principal)?;
    let record = model.projection.campaigns().get(id).ok_or_else(|| not_found(id))?;
    Ok(report_of(model, principal, record))
}

/// A page of campaigns in the order the ledger learned of them, after the
/// one named `after`; and whether there are more either side.
pub fn reports(
    model: &ReadModel,
    principal: &Principal,
    after: Option<CampaignId>,
    first: usize,
) -> Result<(Vec<CampaignReport>, bool, bool), AppError> {
    may_read_campaigns(principal)?;
    let all = model.projection.campaigns().all();
    let start = match after {
        None => 0,
        Some(after) => {
            all.iter()
                .position(|record| record.id == after)
                .ok_or_else(|| AppError::bad_input(format!("after names no campaign: {after}")))?
                + 1
        }
    };
    let page = &all[start..all.len().min(start.saturating_add(first))];
    let reports = page.iter().map(|record| report_of(model, principal, record)).collect();
    Ok((reports, start > 0, start + page.len() < all.len()))
}

/// Campaign `id`'s counts by owner and by tag (sales: among their own).
pub fn breakdown(model: &ReadModel, principal: &Principal, id: CampaignId) -> Result<Breakdown, AppError> {
    may_read_campaigns(principal)?;
    if model.projection.campaigns().get(id).is_none() {
        return Err(not_found(id));
    }
    let mut by_owner: HashMap<SymbolId, Groups> = HashMap::new();
    let mut by_tag: HashMap<SymbolId, Groups> = HashMap::new();
    for member in visible_members(model, principal, id) {
        let Some(relationship) = model.projection.relationship(member.contact_id) else {
            continue;
        };
        by_owner.entry(relationship.owner()).or_default().count(&member);
        for tag in relationship.tags() {
            by_tag.entry(*tag).or_default().count(&member);
        }
    }
    let symbols = model.projection.symbols();
    let rows = |groups: HashMap<SymbolId, Groups>| {
        let mut rows: Vec<(String, Groups)> = groups
            .into_iter()
            .map(|(symbol, groups)| (symbols.name(symbol).to_owned(), groups))
            .collect();
        rows.sort_unstable_by(|(a_name, a), (b_name, b)| {
            let size = |groups: &Groups| groups.sent.contacts + groups.holdout.contacts;
            size(b).cmp(&size(a)).then_with(|| a_name.cmp(b_name))
        });
        rows.truncate(BREAKDOWN_ROWS_MAX);
        rows
    };
    Ok(Breakdown {
        by_owner: rows(by_owner),
        by_tag: rows(by_tag),
    })
}
