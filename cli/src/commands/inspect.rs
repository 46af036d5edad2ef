//! The commands that explain a contact: `check` (may I send, and why),
//! `timeline` (what happened, with the score after each event) and
//! `replay` (what the ledger knew at a past moment).

use anyhow::{Context, bail};
use rapport_domain::gate::best_send_hours;
use rapport_domain::{ContactId, Language, Position, RecordedEvent, SendMode, Timestamp, Verdict, strength};
use rapport_store::{EventStore, Ledger, LedgerLocation, OpenOptions};
use serde_json::json;

use super::Invocation;
use crate::Outcome;
use rapport_app::AppError;
use rapport_app::gate::Judged;
use rapport_app::read::{TimelineEntry, TimelineWindow};
use rapport_app::read_model::{ReadModel, phone_digits};
use rapport_domain::hours::hours_in as hours;
use rapport_projections::Horizon;

/// Candidates shown for an ambiguous contact.
const CANDIDATES_SHOWN: usize = 10;

pub async fn open_read_only(location: &LedgerLocation) -> anyhow::Result<Ledger> {
    Ledger::open(location, OpenOptions::read_only())
        .await
        .with_context(|| format!("opening the ledger {location}"))
}

/// The read model as known at `until` (the whole ledger if `None`), from
/// the snapshot the server keeps beside the ledger when it is usable.
pub async fn known_read_model(store: &Ledger, until: Option<Position>) -> Result<ReadModel, rapport_store::StoreError> {
    let snapshot = rapport_app::snapshot::snapshot_path(store.local_path());
    let key = store.snapshot_key();
    Ok(
        rapport_app::snapshot::load_or_rebuild(store, &snapshot, key.as_ref(), until)
            .await?
            .0,
    )
}

/// A moment given on the command line: RFC 3339, or a date (midnight UTC).
pub fn parse_moment(text: &str) -> anyhow::Result<Timestamp> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").with_context(|| {
        format!("'{text}' is neither an RFC 3339 time (2026-11-21T09:30:00+08:00) nor a date (2026-11-21)")
    })?;
    Ok(Timestamp::from_datetime(
        date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
    )?)
}

/// A business moment from the command line: exact (RFC 3339, with its
/// offset) or on a local clock (a time or a date without one), which only
/// becomes an instant once the zone is known.
#[derive(Clone, Copy, Debug)]
pub enum Moment {
    Exact(Timestamp),
    Local(chrono::NaiveDateTime),
}

impl Moment {
    pub fn parse(text: &str) -> anyhow::Result<Moment> {
        if let Ok(at) = text.parse::<Timestamp>() {
            return Ok(Moment::Exact(at));
        }
        for format in [
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
        ] {
            if let Ok(local) = chrono::NaiveDateTime::parse_from_str(text, format) {
                return Ok(Moment::Local(local));
            }
        }
        let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").with_context(|| {
            format!(
                "'{text}' is neither an RFC 3339 time (2026-11-21T09:30:00+08:00), a local time (2026-11-21T09:30) nor a date (2026-11-21)"
            )
        })?;
        Ok(Moment::Local(date.and_hms_opt(0, 0, 0).unwrap_or_default()))
    }

    /// The instant, reading a local moment on `zone`'s clock; with a note
    /// saying so, for the reader.
    pub fn resolve(self, zone: chrono_tz::Tz, whose: &str) -> anyhow::Result<(Timestamp, Option<String>)> {
        use chrono::TimeZone;
        match self {
            Moment::Exact(at) => Ok((at, None)),
            Moment::Local(local) => {
                let Some(instant) = zone.from_local_datetime(&local).earliest() else {
                    bail!("{local} does not exist in {} (the clocks skip it)", zone.name());
                };
                let at = Timestamp::from_datetime(instant.with_timezone(&chrono::Utc))?;
                let note = format!("{local} read as {whose} local time ({}), {at}", zone.name());
                Ok((at, Some(note)))
            }
        }
    }
}

/// Finds exactly one contact by id, or by name, phone, WeChat id or email
/// (exact match first, then a unique partial match).
pub fn resolve(model: &ReadModel, text: &str) -> anyhow::Result<ContactId> {
    resolve_visible(model, text, |_| true)
}

/// As `resolve`, among the contacts `visible` admits only: the others are
/// neither found nor listed.
pub fn resolve_visible(
    model: &ReadModel,
    text: &str,
    visible: impl Fn(ContactId) -> bool,
) -> anyhow::Result<ContactId> {
    if let Ok(id) = text.parse::<uuid::Uuid>() {
        let id = ContactId(id);
        return match model.projection.relationship(id) {
            Some(_) if visible(id) => Ok(id),
            _ => Err(AppError::NotFound(format!("contact {id}")).into()),
        };
    }
    let wanted = text.trim().to_lowercase();
    if wanted.is_empty() {
        return Err(AppError::bad_input("name a contact: an id, name, phone, WeChat id or email").into());
    }
    let wanted_phone = phone_digits(text);
    let exact: Vec<ContactId> = model
        .directory
        .ids_after(None)
        .filter(|id| visible(*id))
        .filter(|id| {
            model.directory.pii(*id).is_some_and(|pii| {
                [&pii.display_name, &pii.phone, &pii.wechat_id, &pii.email]
                    .into_iter()
                    .flatten()
                    .any(|field| field.to_lowercase() == wanted)
                    || wanted_phone.is_some() && pii.phone.as_deref().and_then(phone_digits) == wanted_phone
            })
        })
        .collect();
    let candidates = if exact.is_empty() {
        model
            .directory
            .ids_after(None)
            .filter(|id| visible(*id) && model.directory.matches(*id, &wanted))
            .collect()
    } else {
        exact
    };
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => Err(AppError::NotFound(format!("a contact matching '{text}'")).into()),
        many => {
            let listed: Vec<String> = many
                .iter()
                .take(CANDIDATES_SHOWN)
                .map(|id| format!("  {id}  {}", describe(model, *id)))
                .collect();
            Err(AppError::bad_input(format!(
                "'{text}' matches {} contacts; name one by id:\n{}",
                many.len(),
                listed.join("\n")
            ))
            .into())
        }
    }
}

fn describe(model: &ReadModel, id: ContactId) -> String {
    if model.is_erased(id) {
        return rapport_app::read_model::ERASED.to_owned();
    }
    let pii = model.directory.pii(id);
    let field =
        |pick: fn(&rapport_domain::Pii) -> &Option<String>| pii.and_then(|p| pick(p).clone()).unwrap_or_default();
    format!(
        "{}  {}  {}",
        field(|p| &p.display_name),
        field(|p| &p.phone),
        field(|p| &p.wechat_id)
    )
    .trim()
    .to_owned()
}

pub fn mode_of(text: &str) -> anyhow::Result<SendMode> {
    match text.to_lowercase().replace('_', "-").as_str() {
        "mass" => Ok(SendMode::Mass),
        "one-to-one" | "1:1" | "personal" => Ok(SendMode::OneToOne),
        other => bail!("unknown mode '{other}': use mass or one-to-one"),
    }
}

fn hours_text(set: u32) -> String {
    let list = hours(set);
    if list.is_empty() {
        "not known yet".to_owned()
    } else {
        list.iter().map(|h| format!("{h:02}:00")).collect::<Vec<_>>().join(", ")
    }
}

/// A decision as `--json` prints it; the contact is named as `known` has it.
fn decision_json(
    known: &ReadModel,
    judged: &Judged,
    position: Option<Position>,
    language: Language,
) -> serde_json::Value {
    let (id, decision) = (judged.contact_id, &judged.decision);
    json!({
        "contactId": id.to_string(),
        "name": known.display_name(id),
        "mode": decision.mode.as_str(),
        "channel": decision.channel.as_str(),
        "verdict": decision.verdict.as_str(),
        "allowed": decision.allowed(),
        "reasons": decision.reasons.iter().zip(judged.messages(language)).map(|(r, message)| json!({
            "code": r.code.as_str(), "message": message, "blocking": r.blocking,
        })).collect::<Vec<_>>(),
        "nextAllowedAt": decision.next_allowed_at.map(|t| t.to_rfc3339()),
        "score": decision.strength.score,
        "band": decision.strength.band.as_str(),
        "components": decision.strength.components.iter().map(|c| json!({
            "name": c.name, "points": c.points, "explanation": language.explanation(c),
        })).collect::<Vec<_>>(),
        "bestSendHours": hours(decision.best_send_hours),
        "policyVersion": decision.policy_version,
        "position": position.map(|p| p.to_string()),
        "at": decision.at.to_rfc3339(),
    })
}

/// How a verdict stands out on a terminal: green to go, yellow to wait or
/// write personally, red to stop.
fn verdict_style(verdict: Verdict) -> anstyle::Style {
    let colour = match verdict {
        Verdict::Allow => anstyle::AnsiColor::Green,
        Verdict::Defer | Verdict::RouteOneToOne => anstyle::AnsiColor::Yellow,
        Verdict::Deny => anstyle::AnsiColor::Red,
    };
    anstyle::Style::new().bold().fg_color(Some(colour.into()))
}

/// Prints a decision taken in `model`; the contact is named as `known` has
/// it. The verdict is coloured on a terminal (never in a pipe, nor with
/// NO_COLOR set); `verbose` adds the score's breakdown.
fn print_decision(known: &ReadModel, model: &ReadModel, judged: &Judged, verbose: bool, language: Language) {
    let (id, decision) = (judged.contact_id, &judged.decision);
    println!("contact     {id}  {}", describe(known, id));
    println!(
        "mode        {} on {}",
        decision.mode.as_str(),
        decision.channel.as_str()
    );
    let style = verdict_style(decision.verdict);
    anstream::println!("verdict     {style}{}{style:#}", decision.verdict.as_str());
    for (reason, message) in decision.reasons.iter().zip(judged.messages(language)) {
        let mark = if reason.blocking { "x" } else { "!" };
        println!("  {mark} {:<22} {message}", reason.code.as_str());
    }
    if let Some(next) = decision.next_allowed_at {
        // Salespeople think in the contact's clock; the UTC instant is exact.
        let zone = model
            .projection
            .relationship(id)
            .map(|r| model.projection.current_policy().zone_of(r));
        match zone {
            Some(zone) => {
                let local = next.to_datetime().with_timezone(&zone).format("%Y-%m-%d %H:%M");
                println!("next send   {local} their time ({}), {next}", zone.name());
            }
            None => println!("next send   {next}"),
        }
    }
    println!(
        "score       {} ({})",
        decision.strength.score,
        decision.strength.band.as_str()
    );
    if verbose {
        for component in &decision.strength.components {
            println!(
                "  {:>4}  {:<18} {}",
                component.points,
                component.name,
                language.explanation(component)
            );
        }
    }
    println!("best hours  {}", hours_text(decision.best_send_hours));
    println!("policy      version {}, at {}", decision.policy_version, decision.at);
}

pub async fn check(
    ctx: &Invocation,
    contact: &str,
    mode: &str,
    at: Option<&str>,
    position: Option<&str>,
    verbose: bool,
) -> anyhow::Result<Outcome> {
    let json = ctx.json;
    let mode = mode_of(mode)?;
    let moment = at.map(Moment::parse).transpose()?;
    let known_at = position.map(parse_position).transpose()?;
    let store = open_read_only(&ctx.store).await?;
    let head = store.head().await?.last_position;
    if let Some(position) = known_at
        && head.is_none_or(|head| position > head)
    {
        bail!("position {position} is past the ledger's head");
    }
    let known = known_read_model(&store, known_at).await.context("reading the ledger")?;
    let id = resolve(&known, contact)?;
    let zone = known
        .projection
        .relationship(id)
        .map(|r| known.projection.current_policy().zone_of(r))
        .context("the contact vanished")?;
    let (at, note) = match moment {
        Some(moment) => moment.resolve(zone, "their")?,
        None => (ctx.clock.now(), None),
    };
    // Only what had happened by `at` counts.
    let (judged, then) = rapport_app::read::check(&store, &known, id, mode, None, at).await?;
    if json {
        let mut answer = decision_json(&known, &judged, known.projection.position(), ctx.language);
        answer["atNote"] = json!(note);
        println!("{answer}");
    } else {
        if let Some(note) = &note {
            println!("at          {note}");
        }
        print_decision(&known, &then, &judged, verbose, ctx.language);
    }
    Ok(if judged.decision.allowed() {
        Outcome::Yes
    } else {
        Outcome::No
    })
}

fn parse_position(text: &str) -> anyhow::Result<Position> {
    text.parse()
        .map_err(|e: rapport_domain::PositionError| anyhow::anyhow!(e))
}

/// Which page of a timeline to print, as given on the command line.
#[derive(Clone, Copy, Debug)]
pub struct Page<'a> {
    /// A business moment: RFC 3339, or a local time or date on the contact's clock.
    pub since: Option<&'a str>,
    /// The version the previous page ended at.
    pub after: Option<u64>,
    pub limit: Option<usize>,
}

pub async fn timeline(ctx: &Invocation, contact: &str, page: Page<'_>) -> anyhow::Result<Outcome> {
    let store = open_read_only(&ctx.store).await?;
    let model = known_read_model(&store, None).await.context("reading the ledger")?;
    let id = resolve(&model, contact)?;
    let zone = model
        .projection
        .relationship(id)
        .map(|r| model.projection.current_policy().zone_of(r))
        .context("the contact vanished")?;
    let since = page
        .since
        .map(|text| Ok::<_, anyhow::Error>(Moment::parse(text)?.resolve(zone, "their")?.0))
        .transpose()?;
    let window = TimelineWindow {
        since,
        after: page.after,
        limit: page.limit,
    };
    let shown = rapport_app::read::timeline(&store, &model, id, window).await?;
    let next = shown.next_after;
    if ctx.json {
        let events: Vec<_> = shown
            .entries
            .iter()
            .map(|TimelineEntry { event, score, violation }| {
                json!({
                    "version": event.version, "position": event.position.to_string(), "type": event.event.event_type(),
                    "occurredAt": event.occurred_at.to_rfc3339(), "recordedAt": event.recorded_at.to_rfc3339(),
                    "actor": event.actor, "score": score.score, "band": score.band.as_str(), "detail": detail(event),
                    "violation": violation.as_ref().map(|v| json!({
                        "verdict": v.verdict.as_str(),
                        "reasons": v.reasons.iter().map(|code| code.as_str()).collect::<Vec<_>>(),
                    })),
                })
            })
            .collect();
        let answer = json!({
            "contactId": id.to_string(),
            "name": model.display_name(id),
            "timeZone": zone.name(),
            "events": events,
            "nextAfter": next,
        });
        println!("{answer}");
        return Ok(Outcome::Yes);
    }
    println!("{id}  {}  (local times: {})", describe(&model, id), zone.name());
    println!(
        "{:>8} {:>4}  {:<16}  {:<20}  {:<14} {:>5} {:<6}  detail",
        "position", "ver", "local", "UTC", "event", "score", "band"
    );
    for TimelineEntry {
        event,
        score,
        violation,
    } in &shown.entries
    {
        let occurred = event.occurred_at.to_datetime();
        let mut detail = detail(event);
        if let Some(violation) = violation {
            let codes: Vec<&str> = violation.reasons.iter().map(|code| code.as_str()).collect();
            detail.push_str(&format!(
                "  VIOLATION: the gate said {} ({})",
                violation.verdict.as_str(),
                codes.join(", ")
            ));
        }
        println!(
            "{:>8} {:>4}  {:<16}  {:<20}  {:<14} {:>5} {:<6}  {detail}",
            event.position.to_string(),
            event.version,
            occurred.with_timezone(&zone).format("%Y-%m-%d %H:%M"),
            occurred.format("%Y-%m-%dT%H:%M:%SZ"),
            event.event.event_type().trim_start_matches("Contact"),
            score.score,
            score.band.as_str()
        );
    }
    if let Some(after) = next {
        let since = page.since.map_or(String::new(), |since| format!(" --since {since}"));
        println!("more: rapport timeline {id}{since} --after {after}");
    }
    Ok(Outcome::Yes)
}

fn of_campaign(campaign_id: Option<rapport_domain::CampaignId>) -> String {
    campaign_id.map_or(String::new(), |id| format!(" (campaign {id})"))
}

fn detail(event: &RecordedEvent) -> String {
    use rapport_domain::{Event, TouchAuthorization};
    match &event.event {
        Event::TouchRecorded(touch) => {
            let how = match &touch.authorization {
                TouchAuthorization::Gate { verdict, .. } => format!("gate said {}", verdict.as_str()),
                TouchAuthorization::Override { reason } => format!("OVERRIDE: {reason}"),
                TouchAuthorization::External { source } => format!("from {source}"),
            };
            format!(
                "{} on {} by {}, {how}",
                touch.mode.as_str(),
                touch.channel.as_str(),
                touch.sender
            )
        }
        Event::ContactRegistered(e) => format!("owner {}, {}", e.owner, e.primary_channel.as_str()),
        Event::ContactProfileChanged(_) => "profile changed".to_owned(),
        Event::ReplyReceived(e) => format!("on {}", e.channel.as_str()),
        Event::ContactBlocked(e) => format!("on {}", e.channel.as_str()),
        Event::ContactUnblocked(e) => format!("on {}", e.channel.as_str()),
        Event::ContactDeletedUs(e) => format!("on {}", e.channel.as_str()),
        Event::ContactReadded(e) => format!("on {}", e.channel.as_str()),
        Event::ComplaintFiled(e) => format!(
            "on {}{}",
            e.channel.as_str(),
            e.reason.as_ref().map_or(String::new(), |r| format!(": {r}"))
        ),
        Event::ContactTagged(e) => e.tag.clone(),
        Event::ContactUntagged(e) => e.tag.clone(),
        Event::ConsentGranted(e) => e.source.clone().unwrap_or_default(),
        Event::ConsentWithdrawn(e) => e.source.clone().unwrap_or_default(),
        Event::CampaignHeldOut(e) => format!("held out of campaign {}", e.campaign_id),
        Event::DeliveryFailed(e) => format!(
            "on {}{}{}",
            e.channel.as_str(),
            of_campaign(e.campaign_id),
            e.reason.as_ref().map_or(String::new(), |r| format!(": {r}"))
        ),
        Event::MessageRead(e) => format!("on {}{}", e.channel.as_str(), of_campaign(e.campaign_id)),
        Event::LinkClicked(e) => format!("on {}{}", e.channel.as_str(), of_campaign(e.campaign_id)),
        Event::ContactErased(e) => format!("personal data erased (request {})", e.request_id),
        Event::ContactSpokeInGroup(e) => format!("in group {}", e.group_id),
        Event::ContactLeftGroup(e) => format!(
            "group {}{}",
            e.group_id,
            if e.after_post { ", within a day of a post" } else { "" }
        ),
        Event::PolicyChanged(_)
        | Event::CampaignStarted(_)
        | Event::GroupCreated(_)
        | Event::GroupMemberJoined(_)
        | Event::GroupMemberLeft(_)
        | Event::GroupMemberRemoved(_)
        | Event::GroupMemberSpoke(_)
        | Event::GroupPostRecorded(_)
        | Event::GroupArchived(_) => String::new(),
    }
}

/// A `--diff` point: digits are a position (knowledge), anything else a
/// business moment.
enum Point {
    Moment(Moment),
    Position(Position),
}

fn point_of(text: &str) -> anyhow::Result<Point> {
    if text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        Ok(Point::Position(parse_position(text)?))
    } else {
        Moment::parse(text).map(Point::Moment)
    }
}

/// What `replay` was asked for, on both axes.
#[derive(Clone, Copy, Debug)]
pub struct When<'a> {
    /// Business time.
    pub as_of: Option<&'a str>,
    /// Knowledge, as a position or as a moment.
    pub position: Option<&'a str>,
    pub known_at: Option<&'a str>,
}

/// One view of the past: the read model within a horizon, and the moment
/// its gates are evaluated at (the business moment, else when its last
/// event was recorded).
struct PastView {
    model: ReadModel,
    horizon: Horizon,
    at: Timestamp,
    note: Option<String>,
}

async fn past_view(
    ctx: &Invocation,
    store: &Ledger,
    known_at: Option<Position>,
    business: Option<Moment>,
    zone: chrono_tz::Tz,
    whose: &str,
) -> anyhow::Result<PastView> {
    let (occurred_by, note) = match business {
        Some(moment) => {
            let (at, note) = moment.resolve(zone, whose)?;
            (Some(at), note)
        }
        None => (None, None),
    };
    let horizon = Horizon { known_at, occurred_by };
    let model = rapport_app::read_model::rebuild_within(store, horizon).await?;
    let at = occurred_by.or(model.recorded_at).unwrap_or_else(|| ctx.clock.now());
    Ok(PastView {
        model,
        horizon,
        at,
        note,
    })
}

fn summary(model: &ReadModel, at: Timestamp) -> serde_json::Value {
    let mut bands = std::collections::BTreeMap::new();
    let mut mass = std::collections::BTreeMap::new();
    let policy = model.projection.current_policy();
    for (_, relationship) in model.projection.contacts() {
        *bands
            .entry(strength(relationship, &policy.policy.scoring, at).band.as_str())
            .or_insert(0u64) += 1;
        let decision = rapport_domain::gate(relationship, policy, SendMode::Mass, None, at);
        *mass.entry(decision.verdict.as_str()).or_insert(0u64) += 1;
    }
    json!({
        "contacts": model.projection.contact_count(),
        "violations": model.projection.violations().len(),
        "policyVersion": policy.version,
        "bands": bands,
        "massVerdicts": mass,
    })
}

fn contact_view(model: &ReadModel, id: ContactId, at: Timestamp, language: Language) -> serde_json::Value {
    let Some(relationship) = model.projection.relationship(id) else {
        return json!({ "contactId": id.to_string(), "known": false });
    };
    let policy = model.projection.current_policy();
    let decide = |mode| {
        let judged = Judged::new(model, id, rapport_domain::gate(relationship, policy, mode, None, at));
        decision_json(model, &judged, model.projection.position(), language)
    };
    json!({
        "contactId": id.to_string(),
        "known": true,
        "version": relationship.stream_version(),
        "bestSendHours": hours(best_send_hours(relationship, policy, at)),
        "mass": decide(SendMode::Mass),
        "oneToOne": decide(SendMode::OneToOne),
    })
}

fn print_view(title: &str, view: &PastView, contact: Option<ContactId>, language: Language) {
    let (model, at) = (&view.model, view.at);
    println!("{title}");
    println!(
        "  known at        {}",
        view.horizon
            .known_at
            .map_or("(before the first event)".to_owned(), |p| format!("position {p}"))
    );
    match (&view.note, view.horizon.occurred_by) {
        (Some(note), _) => println!("  happened by     {note}"),
        (None, Some(by)) => println!("  happened by     {by}"),
        (None, None) => println!("  happened by     (everything known)"),
    }
    println!(
        "  recorded until  {}",
        model.recorded_at.map_or("-".to_owned(), |t| t.to_string())
    );
    println!("  gates at        {at}");
    let overview = summary(model, at);
    println!("  policy          version {}", overview["policyVersion"]);
    println!(
        "  contacts        {}   violations so far {}",
        overview["contacts"], overview["violations"]
    );
    println!("  bands           {}", overview["bands"]);
    println!("  mass verdicts   {}", overview["massVerdicts"]);
    if let Some(id) = contact {
        let view = contact_view(model, id, at, language);
        if view["known"] == false {
            println!("  contact {id} was not known yet");
            return;
        }
        for mode in ["mass", "oneToOne"] {
            let decision = &view[mode];
            let reasons: Vec<String> = decision["reasons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| r["code"].as_str().unwrap_or_default().to_owned())
                .collect();
            println!(
                "  {:<10} {:<17} score {:>3} {:<6} {}",
                decision["mode"].as_str().unwrap_or_default(),
                decision["verdict"].as_str().unwrap_or_default(),
                decision["score"],
                decision["band"].as_str().unwrap_or_default(),
                reasons.join(", ")
            );
        }
    }
}

pub async fn replay(
    ctx: &Invocation,
    when: When<'_>,
    contact: Option<&str>,
    diff: Option<&str>,
) -> anyhow::Result<Outcome> {
    let json = ctx.json;
    let store = open_read_only(&ctx.store).await?;
    let head = store.head().await?.last_position;
    let known_at = match (when.position, when.known_at) {
        (Some(text), _) => {
            let position = parse_position(text)?;
            if head.is_none_or(|head| position > head) {
                bail!("position {position} is past the ledger's head");
            }
            Some(position)
        }
        (None, Some(text)) => {
            let (moment, _) = Moment::parse(text)?.resolve(chrono_tz::Tz::UTC, "UTC")?;
            store.position_at(moment).await?
        }
        (None, None) => head,
    };
    let business = when.as_of.map(Moment::parse).transpose()?;
    // Contacts are named as the ledger knows them now (personal data may
    // have changed or been erased since); local moments are on their clock.
    let now = known_read_model(&store, None).await?;
    let contact = contact.map(|text| resolve(&now, text)).transpose()?;
    let policy = now.projection.current_policy();
    let (zone, whose) = match contact.and_then(|id| now.projection.relationship(id)) {
        Some(relationship) => (policy.zone_of(relationship), "their"),
        None => (policy.default_time_zone(), "the policy's default"),
    };
    let view = past_view(ctx, &store, known_at, business, zone, whose).await?;
    let other = match diff.map(point_of).transpose()? {
        Some(Point::Position(position)) => Some(past_view(ctx, &store, Some(position), business, zone, whose).await?),
        Some(Point::Moment(moment)) => Some(past_view(ctx, &store, known_at, Some(moment), zone, whose).await?),
        None => None,
    };
    if json {
        let render = |view: &PastView| {
            json!({
                "position": view.horizon.known_at.map(|p| p.to_string()),
                "occurredBy": view.horizon.occurred_by.map(|t| t.to_rfc3339()),
                "atNote": view.note,
                "recordedAt": view.model.recorded_at.map(|t| t.to_rfc3339()),
                "at": view.at.to_rfc3339(),
                "summary": summary(&view.model, view.at),
                "contact": contact.map(|id| contact_view(&view.model, id, view.at, ctx.language)),
            })
        };
        let mut output = json!({ "asOf": render(&view) });
        if let Some(other) = &other {
            output["other"] = render(other);
        }
        println!("{output}");
    } else {
        print_view("then", &view, contact, ctx.language);
        if let Some(other) = &other {
            println!();
            print_view("compared with", other, contact, ctx.language);
            print_changes(&view.model, view.at, &other.model, other.at);
        }
    }
    Ok(Outcome::Yes)
}

/// Contacts whose mass-send verdict differs between the two points.
fn print_changes(before: &ReadModel, before_at: Timestamp, after: &ReadModel, after_at: Timestamp) {
    const SHOWN: usize = 20;
    let verdict = |model: &ReadModel, id: ContactId, at: Timestamp| -> Option<Verdict> {
        let relationship = model.projection.relationship(id)?;
        Some(
            rapport_domain::gate(
                relationship,
                model.projection.current_policy(),
                SendMode::Mass,
                None,
                at,
            )
            .verdict,
        )
    };
    let changed: Vec<(ContactId, Option<Verdict>, Option<Verdict>)> = after
        .projection
        .contacts()
        .map(|(id, _)| (id, verdict(before, id, before_at), verdict(after, id, after_at)))
        .filter(|(_, a, b)| a != b)
        .collect();
    println!();
    println!("mass verdicts that changed: {}", changed.len());
    for (id, was, now) in changed.iter().take(SHOWN) {
        let name = |v: &Option<Verdict>| v.map_or("(unknown)", Verdict::as_str);
        println!(
            "  {id}  {:<17} -> {:<17} {}",
            name(was),
            name(now),
            describe(after, *id)
        );
    }
}
