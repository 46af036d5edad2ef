//! `campaign preflight`: before a mass send, the gate for every contact of
//! an audience (a tag expression, owners, bands, or a file of contact ids
//! or phone numbers), as totals per verdict and per reason, and the
//! contacts of one verdict.

use std::path::Path;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use rapport_app::AppError;
use rapport_app::aftermath::{self, CampaignReport, Groups};
use rapport_app::preflight::{PreflightRequest, VERDICTS, Verdicted};
use rapport_app::read_model::{ReadModel, phone_digits};
use rapport_app::tokens::{Principal, Role};
use rapport_domain::audience::{AUDIENCE_CONTACTS_MAX, Audience, TagExpr};
use rapport_domain::reengage::Nudge;
use rapport_domain::{ContactId, Verdict};
use rapport_projections::campaigns::{Alert, Loss, Outcomes};
use serde_json::json;

use super::Invocation;
use super::inspect::{Moment, mode_of, open_read_only};
use crate::Outcome;

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// The gate for every contact of an audience, before a mass send.
    ///
    /// Example: rapport campaign preflight --tags "new AND NOT price-sensitive" --show defer
    Preflight(PreflightArgs),
    /// Launch a campaign now: a touch for every contact the gate allows,
    /// less a holdout; run it again with the same key to resume it.
    ///
    /// Example: rapport campaign launch --name "Double 11" --tags vip --channel wechat --idempotency-key 0190…
    Launch(LaunchArgs),
    /// Campaigns and their aftermath: who replied, deleted or blocked us
    /// within seven days of the send, beside the holdout, and the alerts.
    ///
    /// Example: rapport campaign report 0190…   (or no id: every campaign)
    Report {
        /// A campaign id; every campaign, one line each, when absent.
        campaign: Option<uuid::Uuid>,
    },
}

/// Who a campaign is for, as flags.
#[derive(Debug, Args)]
pub struct AudienceArgs {
    /// A tag expression: vip, "new AND product-a", "NOT price-sensitive", parentheses.
    #[arg(long)]
    tags: Option<String>,
    /// Only these owners' contacts (repeat for several).
    #[arg(long = "owner")]
    owners: Vec<String>,
    /// Only contacts in these bands now: strong, warm, cool, cold, lost (repeat for several).
    #[arg(long = "band")]
    bands: Vec<String>,
    /// Only the contacts a file names, one a line: an id or a phone number
    /// (CSV: the first column; a header line is skipped).
    #[arg(long)]
    contacts: Option<std::path::PathBuf>,
    /// mass or one-to-one.
    #[arg(long, default_value = "mass")]
    mode: String,
}

#[derive(Debug, Args)]
pub struct PreflightArgs {
    #[command(flatten)]
    audience: AudienceArgs,
    /// When the send would go out: now (default) or later; RFC 3339, or a
    /// local time in the policy's default zone.
    #[arg(long)]
    at: Option<String>,
    /// List the contacts of this verdict: allow, route-one-to-one, defer or deny.
    #[arg(long)]
    show: Option<String>,
    /// Contacts listed by --show (default 50, at most 1,000).
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// Your API token (`rapport token create --role manager`): the launch is yours.
    #[arg(long, env = "RAPPORT_TOKEN", hide_env_values = true)]
    token: String,
    #[arg(long)]
    name: String,
    #[command(flatten)]
    audience: AudienceArgs,
    /// wechat, wecom, sms, email, phone or other.
    #[arg(long)]
    channel: String,
    /// The share of the allowed audience withheld as a control group, 0 to 50.
    #[arg(long, default_value_t = 0)]
    holdout: u8,
    /// Names the campaign: the same key resumes it after an interruption.
    #[arg(long)]
    idempotency_key: uuid::Uuid,
}

/// Whoever holds the ledger file reads all of it, and writes nothing here.
fn file_holder() -> Principal {
    Principal {
        name: "rapport".to_owned(),
        role: Role::Auditor,
    }
}

fn verdict_of(text: &str) -> Result<Verdict, AppError> {
    let wanted = text.trim().to_uppercase().replace('-', "_");
    VERDICTS
        .into_iter()
        .find(|verdict| verdict.as_str() == wanted)
        .ok_or_else(|| {
            AppError::bad_input(format!(
                "unknown verdict '{text}': use allow, route-one-to-one, defer or deny"
            ))
        })
}

/// The contacts a file names, by id or phone number (any format).
fn listed_contacts(path: &Path, model: &ReadModel, pseudonyms: Option<&[u8; 32]>) -> anyhow::Result<Vec<ContactId>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let by_phone: std::collections::HashMap<String, ContactId> = model
        .directory
        .ids_after(None)
        .filter_map(|id| {
            let phone = model.directory.pii(id)?.phone.as_deref().and_then(phone_digits)?;
            Some((phone, id))
        })
        .collect();
    let mut contacts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let field = line.split(',').next().unwrap_or_default().trim().trim_matches('"');
        if field.is_empty() {
            continue;
        }
        if let Ok(id) = field.parse::<uuid::Uuid>() {
            contacts.push(ContactId(id));
        } else if let Some(digits) = phone_digits(field) {
            // A number nobody has is a contact nobody is, each its own
            // unknown, under an id that does not give the number away (the
            // campaign's chained digest covers the ids).
            let contact = match by_phone.get(&digits) {
                Some(id) => *id,
                None => {
                    let key = pseudonyms.context(
                        "the ledger was opened without its master key (RAPPORT_MASTER_KEY or RAPPORT_KEY_FILE)",
                    )?;
                    ContactId(rapport_store::sealing::pseudonymous_id(
                        key,
                        &format!("unknown-phone:{digits}"),
                    ))
                }
            };
            contacts.push(contact);
        } else if index > 0 {
            return Err(AppError::bad_input(format!(
                "{} line {}: '{field}' is neither a contact id nor a phone number",
                path.display(),
                index + 1
            ))
            .into());
        }
        if contacts.len() > AUDIENCE_CONTACTS_MAX {
            return Err(AppError::LimitExceeded(format!(
                "{} names over {AUDIENCE_CONTACTS_MAX} contacts",
                path.display()
            ))
            .into());
        }
    }
    Ok(contacts)
}

pub async fn campaign(ctx: &Invocation, command: CampaignCommand) -> anyhow::Result<Outcome> {
    match command {
        CampaignCommand::Preflight(args) => preflight(ctx, args).await,
        CampaignCommand::Launch(args) => launch(ctx, args).await,
        CampaignCommand::Report { campaign } => report(ctx, campaign).await,
    }
}

/// The audience the flags describe (a file of contacts is read against `model`).
fn audience_of(args: AudienceArgs, model: &ReadModel, pseudonyms: Option<&[u8; 32]>) -> anyhow::Result<Audience> {
    let tags = args
        .tags
        .as_deref()
        .map(TagExpr::parse)
        .transpose()
        .map_err(|error| AppError::bad_input(error.to_string()))?;
    let bands = args
        .bands
        .iter()
        .map(|band| super::lists::band_of(band))
        .collect::<Result<Vec<_>, _>>()?;
    let contacts = args
        .contacts
        .as_deref()
        .map(|path| listed_contacts(path, model, pseudonyms))
        .transpose()?;
    Ok(Audience {
        tags,
        owners: args.owners,
        bands,
        contacts,
    })
}

async fn preflight(ctx: &Invocation, args: PreflightArgs) -> anyhow::Result<Outcome> {
    let mode = mode_of(&args.audience.mode)?;
    let show = args.show.as_deref().map(verdict_of).transpose()?;
    let limit = super::lists::page_size(args.limit)?;
    let store = open_read_only(&ctx.store).await?;
    let model = super::inspect::known_read_model(&store, None)
        .await
        .context("reading the ledger")?;
    let now = ctx.clock.now();
    let zone = model.projection.current_policy().default_time_zone();
    let at = match args.at.as_deref() {
        Some(text) => Moment::parse(text)?.resolve(zone, "the policy's default")?.0,
        None => now,
    };
    let request = PreflightRequest {
        audience: audience_of(args.audience, &model, store.pseudonym_key().as_ref())?,
        mode,
        channel: None,
        at,
    };
    let answer = rapport_app::preflight::preflight(&model, &file_holder(), &request, now)?;
    let name = |id: ContactId| model.display_name(id);
    let shown: &[Verdicted] = show.map_or(&[], |verdict| answer.bucket(verdict));
    let shown = &shown[..shown.len().min(limit)];
    if ctx.json {
        let verdicts: Vec<_> = VERDICTS
            .iter()
            .map(|verdict| json!({ "verdict": verdict.as_str(), "count": answer.bucket(*verdict).len() }))
            .collect();
        let reasons: Vec<_> = answer
            .reasons
            .iter()
            .map(|(code, count)| json!({ "code": code.as_str(), "count": count }))
            .collect();
        let contacts: Vec<_> = shown
            .iter()
            .map(|entry| {
                json!({
                    "contactId": entry.contact_id.to_string(),
                    "name": name(entry.contact_id),
                    "nextAllowedAt": entry.next_allowed_at.map(|t| t.to_rfc3339()),
                    "reasonCodes": entry.blocking.iter().map(|code| code.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let document = json!({
            "at": answer.at.to_rfc3339(), "mode": answer.mode.as_str(),
            "position": answer.position.map(|p| p.to_string()), "policyVersion": answer.policy_version,
            "total": answer.total(), "unknownContacts": answer.unknown,
            "verdicts": verdicts, "reasons": reasons, "contacts": contacts,
        });
        println!("{document}");
        return Ok(Outcome::Yes);
    }
    println!(
        "preflight   {} send at {}, {} contacts (policy version {})",
        answer.mode.as_str(),
        answer.at,
        answer.total(),
        answer.policy_version
    );
    if answer.unknown > 0 {
        println!("unknown     {} listed contacts are not in the ledger", answer.unknown);
    }
    for verdict in VERDICTS {
        println!("  {:<18} {:>7}", verdict.as_str(), answer.bucket(verdict).len());
    }
    if !answer.reasons.is_empty() {
        println!("reasons");
        for (code, count) in &answer.reasons {
            println!("  {:<22} {:>7}", code.as_str(), count);
        }
    }
    if let Some(verdict) = show {
        println!("{} contacts", verdict.as_str());
        for entry in shown {
            let next = entry.next_allowed_at.map_or(String::new(), |at| format!("  next {at}"));
            let codes: Vec<&str> = entry.blocking.iter().map(|code| code.as_str()).collect();
            println!(
                "  {}  {:<20} {}{next}",
                entry.contact_id,
                name(entry.contact_id).unwrap_or_else(|| "-".to_owned()),
                codes.join(", ")
            );
        }
        let bucket = answer.bucket(verdict).len();
        if bucket > shown.len() {
            println!("  … and {} more (--limit)", bucket - shown.len());
        }
    }
    Ok(Outcome::Yes)
}

async fn launch(ctx: &Invocation, args: LaunchArgs) -> anyhow::Result<Outcome> {
    let mode = mode_of(&args.audience.mode)?;
    let channel = super::record::channel_of(Some(&args.channel))?.context("a channel is needed")?;
    let principal = rapport_app::tokens::TokenStore::open(ctx.store.local_path())?
        .authenticate(&args.token)
        .ok_or(AppError::Unauthenticated("the token is unknown or revoked".to_owned()))?;
    // The role first: whoever may not launch learns nothing of the audience.
    rapport_app::access::require(&principal, rapport_app::campaign::LAUNCHERS, "launch campaigns")?;
    let core = super::record::open_core(ctx).await?;
    let pseudonyms = core.store.pseudonym_key();
    let audience = core
        .live
        .read(|model| audience_of(args.audience, model, pseudonyms.as_ref()))?;
    let request = rapport_app::campaign::LaunchRequest {
        name: args.name,
        audience,
        mode,
        channel,
        holdout_percent: args.holdout,
        idempotency_key: args.idempotency_key,
    };
    let launched = rapport_app::campaign::launch(&core, &principal, request).await?;
    if ctx.json {
        let tasks: Vec<_> = launched
            .one_to_one
            .iter()
            .map(|(owner, contacts)| {
                json!({ "owner": owner, "contactIds": contacts.iter().map(ToString::to_string).collect::<Vec<_>>() })
            })
            .collect();
        let document = json!({
            "campaignId": launched.campaign_id.to_string(),
            "resumed": launched.resumed,
            "position": launched.position.map(|p| p.to_string()),
            "sent": launched.deliveries.len(),
            "heldOut": launched.held_out.len(),
            "deferred": launched.deferred.len(),
            "denied": launched.denied.len(),
            "changed": launched.changed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "withdrawn": launched.withdrawn.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "oneToOne": tasks,
            "deliveries": launched.deliveries.iter().map(|d| d.contact_id.to_string()).collect::<Vec<_>>(),
            "plan": launched.deliveries.iter().map(|d| json!({
                "contactId": d.contact_id.to_string(), "plannedAt": d.planned_at.to_rfc3339(), "wave": d.wave,
            })).collect::<Vec<_>>(),
        });
        println!("{document}");
        return Ok(Outcome::Yes);
    }
    let how = if launched.resumed { "resumed" } else { "launched" };
    println!("campaign    {} {how}", launched.campaign_id);
    println!("  sent       {:>7}", launched.deliveries.len());
    println!("  held out   {:>7}", launched.held_out.len());
    println!("  deferred   {:>7}", launched.deferred.len());
    println!("  denied     {:>7}", launched.denied.len());
    if let (Some(first), Some(last)) = (
        launched.deliveries.iter().map(|d| d.planned_at).min(),
        launched.deliveries.iter().max_by_key(|d| (d.planned_at, d.wave)),
    ) {
        println!(
            "send plan   {} wave(s), from {first} to {} (each contact in their active hours)",
            launched.deliveries.iter().map(|d| d.wave).max().map_or(0, |w| w + 1),
            last.planned_at
        );
    }
    if !launched.withdrawn.is_empty() {
        println!(
            "  withdrawn  {:>7}  (turned away since the first run: do not deliver)",
            launched.withdrawn.len()
        );
    }
    if !launched.changed.is_empty() {
        println!(
            "  changed    {:>7}  (judged again when you run this again)",
            launched.changed.len()
        );
    }
    for (owner, contacts) in &launched.one_to_one {
        println!(
            "one-to-one  {owner}: {} contacts to write to personally",
            contacts.len()
        );
    }
    Ok(Outcome::Yes)
}

fn outcomes_json(outcomes: &Outcomes) -> serde_json::Value {
    json!({
        "contacts": outcomes.contacts, "replied": outcomes.replied, "deletedUs": outcomes.deleted_us,
        "blocked": outcomes.blocked, "complained": outcomes.complained, "optedOut": outcomes.opted_out,
        "failed": outcomes.failed, "read": outcomes.read, "clicked": outcomes.clicked,
        "replyRate": outcomes.reply_rate(), "lossRate": outcomes.loss_rate(),
        "complaintRate": outcomes.complaint_rate(), "optOutRate": outcomes.opt_out_rate(),
        "failedRate": outcomes.failed_rate(), "readRate": outcomes.read_rate(), "clickRate": outcomes.click_rate(),
    })
}

fn alerts_text(report: &CampaignReport) -> Vec<String> {
    report
        .alerts
        .iter()
        .map(|alert| {
            let (what, rate, threshold) = match *alert {
                Alert::Losses { rate, threshold } => ("deleted or blocked us", rate, threshold),
                Alert::Complaints { rate, threshold } => ("complained", rate, threshold),
                Alert::FailedDeliveries { rate, threshold } => ("could not be delivered to", rate, threshold),
            };
            format!("ALERT: {:.1} % {what} (over {:.0} %)", rate * 100.0, threshold * 100.0)
        })
        .collect()
}

fn groups_json(rows: &[(String, Groups)]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|(key, groups)| {
            json!({
                "key": key, "sent": outcomes_json(&groups.sent), "holdout": outcomes_json(&groups.holdout),
                "lossRateDifference": groups.loss_rate_difference(),
            })
        })
        .collect()
}

fn print_slices(title: &str, rows: &[(String, Groups)]) {
    if rows.is_empty() {
        return;
    }
    println!(
        "{title:<28} {:>6} {:>7} {:>7} {:>7}",
        "sent", "replied", "lost", "holdout"
    );
    for (key, groups) in rows {
        println!(
            "  {:<26} {:>6} {:>6.1}% {:>6.1}% {:>6.1}%",
            key,
            groups.sent.contacts,
            groups.sent.reply_rate() * 100.0,
            groups.sent.loss_rate() * 100.0,
            groups.holdout.loss_rate() * 100.0
        );
    }
}

async fn report(ctx: &Invocation, campaign: Option<uuid::Uuid>) -> anyhow::Result<Outcome> {
    let store = open_read_only(&ctx.store).await?;
    let model = super::inspect::known_read_model(&store, None)
        .await
        .context("reading the ledger")?;
    let reader = file_holder();
    let name = |id: ContactId| model.display_name(id);
    let Some(id) = campaign else {
        let (reports, _, _) = aftermath::reports(&model, &reader, None, usize::MAX)?;
        if ctx.json {
            let all: Vec<_> = reports
                .iter()
                .map(|report| {
                    json!({
                        "campaignId": report.record.id.to_string(), "name": report.record.name,
                        "startedAt": report.record.started_at.map(|at| at.to_rfc3339()),
                        "sent": outcomes_json(&report.groups.sent), "alerts": alerts_text(report),
                    })
                })
                .collect();
            println!("{}", json!({ "campaigns": all }));
            return Ok(Outcome::Yes);
        }
        // The name goes last: names are any length, in any script.
        println!(
            "{:<36}  {:>6} {:>6} {:>6}  alerts  name",
            "campaign", "sent", "lost", "loss%"
        );
        for report in &reports {
            println!(
                "{}  {:>6} {:>6} {:>5.1}%  {:>6}  {}",
                report.record.id,
                report.groups.sent.contacts,
                report.groups.sent.lost,
                report.groups.sent.loss_rate() * 100.0,
                alerts_text(report).len(),
                report.record.name.as_deref().unwrap_or("(started elsewhere)"),
            );
        }
        return Ok(Outcome::Yes);
    };
    let id = rapport_domain::CampaignId(id);
    let report = aftermath::report(&model, &reader, id)?;
    let breakdown = aftermath::breakdown(&model, &reader, id)?;
    let (record, groups) = (&report.record, &report.groups);
    let lost: Vec<_> = report
        .lost
        .iter()
        .map(|lost| {
            json!({
                "contactId": lost.contact_id.to_string(), "name": name(lost.contact_id),
                "loss": match lost.loss { Loss::DeletedUs => "DELETED_US", Loss::Blocked => "BLOCKED" },
                "at": lost.at.to_rfc3339(), "heldOut": lost.held_out,
                "scoreBefore": lost.score_before, "bandBefore": lost.band_before.as_str(),
            })
        })
        .collect();
    let window_days = record.rules.window_millis / 86_400_000;
    if ctx.json {
        let document = json!({
            "campaignId": record.id.to_string(), "name": record.name,
            "startedAt": record.started_at.map(|at| at.to_rfc3339()), "holdoutPercent": record.holdout_percent,
            "atLaunch": record.at_launch.map(|judged| json!({
                "sent": judged.sent, "heldOut": judged.held_out, "routedOneToOne": judged.routed_one_to_one,
                "deferred": judged.deferred, "denied": judged.denied,
            })),
            "windowDays": window_days,
            "sent": outcomes_json(&groups.sent), "holdout": outcomes_json(&groups.holdout),
            "lossRateDifference": groups.loss_rate_difference(),
            "alerts": alerts_text(&report), "deletedAfter": lost,
            "byOwner": groups_json(&breakdown.by_owner), "byTag": groups_json(&breakdown.by_tag),
        });
        println!("{document}");
        return Ok(Outcome::Yes);
    }
    println!(
        "campaign   {}  {}",
        record.id,
        record.name.as_deref().unwrap_or("(started elsewhere)")
    );
    if let Some(at) = record.started_at {
        println!("started    {at}");
    }
    match record.at_launch {
        Some(judged) => println!(
            "at launch  the gate allowed {} ({} sent, {} held out), routed {} to a personal chat, deferred {}, denied {}",
            judged.sent + judged.held_out,
            judged.sent,
            judged.held_out,
            judged.routed_one_to_one,
            judged.deferred,
            judged.denied
        ),
        None if report.owner.is_none() => println!("at launch  sent by another tool, without asking the gate"),
        None => {}
    }
    println!(
        "within {window_days} days of the send    {:>8} {:>8}",
        "sent", "holdout"
    );
    let row = |label: &str, sent: u32, held: u32| println!("  {label:<26} {sent:>8} {held:>8}");
    row("contacts", groups.sent.contacts, groups.holdout.contacts);
    row("replied", groups.sent.replied, groups.holdout.replied);
    row("deleted us", groups.sent.deleted_us, groups.holdout.deleted_us);
    row("blocked", groups.sent.blocked, groups.holdout.blocked);
    row("complained", groups.sent.complained, groups.holdout.complained);
    row("opted out", groups.sent.opted_out, groups.holdout.opted_out);
    row("delivery failed", groups.sent.failed, groups.holdout.failed);
    row("read", groups.sent.read, groups.holdout.read);
    println!(
        "  {:<26} {:>7.1}% {:>7.1}%",
        "lost (deleted or blocked)",
        groups.sent.loss_rate() * 100.0,
        groups.holdout.loss_rate() * 100.0
    );
    for alert in alerts_text(&report) {
        println!("{alert}");
    }
    print_slices("by owner", &breakdown.by_owner);
    print_slices("by tag", &breakdown.by_tag);
    if !report.lost.is_empty() {
        println!("who we lost after it (score and band before the send)");
        for lost in &report.lost {
            let how = match lost.loss {
                Loss::DeletedUs => "deleted us",
                Loss::Blocked => "blocked us",
            };
            let group = if lost.held_out { "  (holdout)" } else { "" };
            println!(
                "  {}  {:<20} {how:<11} {}  {:>3} {}{group}",
                lost.contact_id,
                name(lost.contact_id).unwrap_or_else(|| "-".to_owned()),
                lost.at,
                lost.score_before,
                lost.band_before.as_str()
            );
        }
    }
    Ok(Outcome::Yes)
}

/// Whom to write to personally today (`rapport suggest`).
pub async fn suggest(ctx: &Invocation, owner: Option<&str>, limit: Option<usize>) -> anyhow::Result<Outcome> {
    let store = open_read_only(&ctx.store).await?;
    let model = super::inspect::known_read_model(&store, None)
        .await
        .context("reading the ledger")?;
    let now = ctx.clock.now();
    let found = rapport_app::suggest::suggestions(&model, &file_holder(), owner, now, limit)?;
    let policy = model.projection.current_policy();
    let name = |id: ContactId| model.display_name(id);
    let what = |nudge: Nudge| match nudge {
        Nudge::Greeting => "GREETING",
        Nudge::Invitation => "INVITATION",
    };
    if ctx.json {
        let suggestions: Vec<_> = found
            .iter()
            .map(|s| {
                json!({
                    "contactId": s.contact_id.to_string(), "name": name(s.contact_id), "kind": what(s.nudge),
                    "silentDays": s.silent_days, "score": s.score, "band": s.band.as_str(),
                    "verdict": s.verdict.as_str(), "nextAllowedAt": s.next_allowed_at.map(|t| t.to_rfc3339()),
                    "bestSendHours": rapport_domain::hours::hours_in(s.best_send_hours),
                })
            })
            .collect();
        println!("{}", json!({ "at": now.to_rfc3339(), "suggestions": suggestions }));
        return Ok(Outcome::Yes);
    }
    println!(
        "{:<36}  {:<20} {:<10} {:>6} {:>5} {:<6}  when",
        "contact", "name", "write", "silent", "score", "band"
    );
    for s in &found {
        let zone = model
            .projection
            .relationship(s.contact_id)
            .map_or(chrono_tz::Tz::UTC, |relationship| policy.zone_of(relationship));
        let when = match s.next_allowed_at {
            Some(at) if s.verdict == Verdict::Defer => {
                format!(
                    "from {} their time",
                    at.to_datetime().with_timezone(&zone).format("%m-%d %H:%M")
                )
            }
            _ => "now".to_owned(),
        };
        println!(
            "{}  {:<20} {:<10} {:>5}d {:>5} {:<6}  {when}",
            s.contact_id,
            name(s.contact_id).unwrap_or_else(|| "-".to_owned()),
            what(s.nudge),
            s.silent_days,
            s.score,
            s.band.as_str()
        );
    }
    Ok(Outcome::Yes)
}
