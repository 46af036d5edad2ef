//! The commands that list: `contacts` (find or list contacts, by owner and
//! band) and `violations` (touches the gate would not have allowed). Both
//! read the ledger only, and page: each page ends with the command that
//! prints the next one.

use anyhow::Context as _;
use rapport_app::AppError;
use rapport_app::read_model::ReadModel;
use rapport_domain::{Band, ContactId, Position, StreamName};
use rapport_store::EventStore;
use serde_json::json;

use super::Invocation;
use super::inspect::{open_read_only, resolve};
use crate::Outcome;

/// Rows on one page when no `--limit` is given, and at most.
pub const PAGE_DEFAULT: usize = 50;
pub const PAGE_MAX: usize = 1_000;

pub fn page_size(limit: Option<usize>) -> Result<usize, AppError> {
    match limit {
        None => Ok(PAGE_DEFAULT),
        Some(n) if (1..=PAGE_MAX).contains(&n) => Ok(n),
        Some(n) => Err(AppError::LimitExceeded(format!("--limit is 1 to {PAGE_MAX}, got {n}"))),
    }
}

pub fn band_of(text: &str) -> Result<Band, AppError> {
    let wanted = text.trim().to_uppercase();
    [Band::Strong, Band::Warm, Band::Cool, Band::Cold, Band::Lost]
        .into_iter()
        .find(|band| band.as_str() == wanted)
        .ok_or_else(|| AppError::bad_input(format!("unknown band '{text}': use strong, warm, cool, cold or lost")))
}

async fn read_model(ctx: &Invocation) -> anyhow::Result<ReadModel> {
    let store = open_read_only(&ctx.store).await?;
    super::inspect::known_read_model(&store, None)
        .await
        .context("reading the ledger")
}

/// Which contacts `contacts` lists.
#[derive(Debug)]
pub struct ContactFilter<'a> {
    /// Part of a name, phone (any format), WeChat id or email.
    pub search: Option<&'a str>,
    pub owner: Option<&'a str>,
    pub band: Option<&'a str>,
    /// The last id of the previous page.
    pub after: Option<&'a str>,
    pub limit: Option<usize>,
}

pub async fn contacts(ctx: &Invocation, filter: ContactFilter<'_>) -> anyhow::Result<Outcome> {
    let limit = page_size(filter.limit)?;
    let band = filter.band.map(band_of).transpose()?;
    let after = filter
        .after
        .map(|text| {
            text.parse::<uuid::Uuid>()
                .map(ContactId)
                .map_err(|_| AppError::bad_input(format!("--after takes a contact id, got '{text}'")))
        })
        .transpose()?;
    let model = read_model(ctx).await?;
    let now = ctx.clock.now();
    let symbols = model.projection.symbols();
    let mut rows = Vec::new();
    let mut more = false;
    for id in model.directory.ids_after(after) {
        let Some(relationship) = model.projection.relationship(id) else {
            continue;
        };
        let Some(strength) = model.projection.strength(id, now) else {
            continue;
        };
        let owner = symbols.name(relationship.owner());
        let wanted = filter
            .search
            .is_none_or(|text| model.directory.matches(id, text.trim()))
            && filter.owner.is_none_or(|wanted| wanted.trim() == owner)
            && band.is_none_or(|band| band == strength.band);
        if !wanted {
            continue;
        }
        if rows.len() == limit {
            more = true;
            break;
        }
        let name = model.display_name(id);
        rows.push((id, name, owner, strength, relationship.primary_channel()));
    }
    let next = more.then(|| rows.last().map(|(id, ..)| *id)).flatten();
    if ctx.json {
        let contacts: Vec<_> = rows
            .iter()
            .map(|(id, name, owner, strength, channel)| {
                json!({
                    "contactId": id.to_string(), "name": name, "owner": owner,
                    "score": strength.score, "band": strength.band.as_str(), "primaryChannel": channel.as_str(),
                })
            })
            .collect();
        let answer =
            json!({ "contacts": contacts, "nextAfter": next.map(|id| id.to_string()), "at": now.to_rfc3339() });
        println!("{answer}");
        return Ok(Outcome::Yes);
    }
    println!(
        "{:<36}  {:<20} {:<12} {:>5} {:<6}  channel",
        "id", "name", "owner", "score", "band"
    );
    for (id, name, owner, strength, channel) in &rows {
        println!(
            "{id}  {:<20} {:<12} {:>5} {:<6}  {}",
            name.as_deref().unwrap_or("-"),
            owner,
            strength.score,
            strength.band.as_str(),
            channel.as_str()
        );
    }
    if let Some(id) = next {
        println!("more: add --after {id}");
    }
    Ok(Outcome::Yes)
}

pub async fn violations(
    ctx: &Invocation,
    contact: Option<&str>,
    after: Option<&str>,
    limit: Option<usize>,
) -> anyhow::Result<Outcome> {
    let limit = page_size(limit)?;
    let after = after
        .map(|text| {
            text.parse::<Position>()
                .map_err(|_| AppError::bad_input(format!("--after takes a position, got '{text}'")))
        })
        .transpose()?;
    let store = open_read_only(&ctx.store).await?;
    let model = super::inspect::known_read_model(&store, None)
        .await
        .context("reading the ledger")?;
    let contact = contact.map(|text| resolve(&model, text)).transpose()?;
    let all = model.projection.violations();
    let start = after.map_or(0, |after| all.partition_point(|v| v.position <= after));
    let mut matching = all[start..]
        .iter()
        .filter(|violation| contact.is_none_or(|id| violation.contact_id == id));
    let rows: Vec<_> = matching.by_ref().take(limit).collect();
    let next = matching.next().and(rows.last()).map(|violation| violation.position);
    let name = |id: ContactId| model.display_name(id);
    // An override's reason is in its touch's event.
    let mut override_reasons = Vec::with_capacity(rows.len());
    for violation in &rows {
        let reason = match violation.overridden {
            true => store
                .read_event(StreamName::Contact(violation.contact_id), violation.event_id)
                .await
                .context("reading an overridden touch")?
                .and_then(|event| event.event.override_reason().map(str::to_owned)),
            false => None,
        };
        override_reasons.push(reason);
    }
    if ctx.json {
        let violations: Vec<_> = rows
            .iter()
            .zip(&override_reasons)
            .map(|(v, override_reason)| {
                json!({
                    "position": v.position.to_string(), "eventId": v.event_id.to_string(),
                    "contactId": v.contact_id.to_string(), "name": name(v.contact_id), "mode": v.mode.as_str(),
                    "verdict": v.verdict.as_str(),
                    "reasons": v.reasons.iter().map(|code| code.as_str()).collect::<Vec<_>>(),
                    "policyVersion": v.policy_version, "overrideReason": override_reason,
                })
            })
            .collect();
        let answer = json!({ "violations": violations, "nextAfter": next.map(|p| p.to_string()) });
        println!("{answer}");
        return Ok(Outcome::Yes);
    }
    println!(
        "{:>8}  {:<36}  {:<20} {:<10} {:<16}  reasons",
        "position", "contact", "name", "mode", "verdict"
    );
    for (v, override_reason) in rows.iter().zip(&override_reasons) {
        let reasons: Vec<&str> = v.reasons.iter().map(|code| code.as_str()).collect();
        let why = override_reason
            .as_deref()
            .map_or(String::new(), |reason| format!("  (override: {reason})"));
        println!(
            "{:>8}  {}  {:<20} {:<10} {:<16}  {}{why}",
            v.position.to_string(),
            v.contact_id,
            name(v.contact_id).unwrap_or_else(|| "-".to_owned()),
            v.mode.as_str(),
            v.verdict.as_str(),
            reasons.join(", ")
        );
    }
    if let Some(position) = next {
        println!("more: add --after {position}");
    }
    Ok(Outcome::Yes)
}
