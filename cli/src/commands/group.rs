//! `group check|report|silent`: a customer group from the ledger file —
//! may a post go in now, how healthy the group is, and who has gone
//! quiet (each linked contact with their own gate for a personal word).

use anyhow::{Context as _, bail};
use clap::Subcommand;
use rapport_app::AppError;
use rapport_app::group::{self as groups, Silent};
use rapport_app::read_model::ReadModel;
use rapport_app::tokens::{Principal, Role};
use rapport_domain::group::Group;
use rapport_domain::reengage::Nudge;
use rapport_domain::{GroupId, PostKind, ReasonCode, Verdict};
use serde_json::json;

use super::Invocation;
use super::inspect::{Moment, known_read_model, open_read_only};
use crate::Outcome;

/// Silent members listed at most.
const SILENT_LIMIT_MAX: usize = 1_000;

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// May a post go into this group now? Verdict, every reason, the posts
    /// today against the cap, and the next allowed moment.
    ///
    /// Exit 0 when the post is allowed, 1 when it is not.
    ///
    /// Example: rapport group check "Spring tea" --kind promotion
    Check {
        /// A group id, or its name.
        group: String,
        /// content, interaction or promotion.
        #[arg(long, default_value = "content")]
        kind: String,
        /// The moment of the post: RFC 3339, or a local time in the
        /// group's zone. Default now.
        #[arg(long)]
        at: Option<String>,
    },
    /// A group's health: members, joins and leaves this month, the leave
    /// rate, who still speaks, posts against the cap, the content mix and
    /// which posts cost members; every group, one line each, without one.
    ///
    /// Example: rapport group report "Spring tea"
    Report {
        /// A group id, or its name; every group when absent.
        group: Option<String>,
    },
    /// Members silent a week (a personal greeting) or two (an invitation),
    /// each linked contact with their own gate for a personal chat.
    ///
    /// Example: rapport group silent "Spring tea" --limit 20
    Silent {
        /// A group id, or its name.
        group: String,
        /// Members listed (default 50, at most 1,000).
        #[arg(long)]
        limit: Option<usize>,
    },
}

/// Whoever holds the ledger file reads all of it, and writes nothing here.
fn file_holder() -> Principal {
    Principal {
        name: "rapport".to_owned(),
        role: Role::Auditor,
    }
}

pub async fn group(ctx: &Invocation, command: GroupCommand) -> anyhow::Result<Outcome> {
    let store = open_read_only(&ctx.store).await?;
    let model = known_read_model(&store, None).await.context("reading the ledger")?;
    let now = ctx.clock.now();
    match command {
        GroupCommand::Check { group, kind, at } => {
            let (id, found) = find(&model, &group)?;
            let kind = kind_of(&kind)?;
            let zone = found.zone(model.projection.current_policy().default_time_zone());
            let at = match at {
                Some(text) => Moment::parse(&text)?.resolve(zone, "the group's")?.0,
                None => now,
            };
            check(ctx, &model, id, found, kind, at)
        }
        GroupCommand::Report { group: None } => {
            list(ctx, &model, now);
            Ok(Outcome::Yes)
        }
        GroupCommand::Report { group: Some(group) } => {
            let (id, found) = find(&model, &group)?;
            report(ctx, &model, id, found, now);
            Ok(Outcome::Yes)
        }
        GroupCommand::Silent { group, limit } => {
            let limit = limit.unwrap_or(50);
            if !(1..=SILENT_LIMIT_MAX).contains(&limit) {
                bail!("--limit is 1 to {SILENT_LIMIT_MAX}, got {limit}");
            }
            let (id, found) = find(&model, &group)?;
            silent(ctx, &model, id, found, now, limit);
            Ok(Outcome::Yes)
        }
    }
}

/// The group an id or a name names; a name more than one group has is refused.
fn find<'a>(model: &'a ReadModel, text: &str) -> anyhow::Result<(GroupId, &'a Group)> {
    let reader = file_holder();
    if let Ok(id) = text.trim().parse::<uuid::Uuid>() {
        let id = GroupId(id);
        let group = groups::check_group(&reader, model, id)?;
        return Ok((id, group));
    }
    let named: Vec<_> = groups::groups(&reader, model, None)
        .filter(|(_, group)| group.name == text.trim())
        .take(10)
        .collect();
    match named.as_slice() {
        [one] => Ok(*one),
        [] => Err(AppError::NotFound(format!("a group named '{text}' (`rapport group report` lists them)")).into()),
        many => bail!(
            "{} groups are named '{text}': give one of their ids ({})",
            many.len(),
            many.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn kind_of(text: &str) -> anyhow::Result<PostKind> {
    let wanted = text.trim().to_uppercase();
    PostKind::ALL
        .into_iter()
        .find(|kind| kind.as_str() == wanted)
        .with_context(|| format!("unknown post kind '{text}': use content, interaction or promotion"))
}

fn check(
    ctx: &Invocation,
    model: &ReadModel,
    id: GroupId,
    group: &Group,
    kind: PostKind,
    at: rapport_domain::Timestamp,
) -> anyhow::Result<Outcome> {
    let decision = groups::decide(model, group, kind, at);
    let messages: Vec<String> = decision
        .reasons
        .iter()
        .map(|reason| ctx.language.reason(reason, ""))
        .collect();
    let hours = rapport_domain::hours::hours_in(decision.active_hours);
    if ctx.json {
        let reasons: Vec<_> = decision
            .reasons
            .iter()
            .zip(&messages)
            .map(|(reason, message)| {
                json!({ "code": reason.code.as_str(), "blocking": reason.blocking, "message": message })
            })
            .collect();
        println!(
            "{}",
            json!({
                "groupId": id.to_string(), "name": group.name, "kind": kind.as_str(),
                "verdict": decision.verdict.as_str(), "reasons": reasons,
                "nextAllowedAt": decision.next_allowed_at.map(|at| at.to_rfc3339()),
                "postsToday": decision.posts_today, "postsPerDayCap": decision.posts_per_day_cap,
                "activeHours": hours, "timeZone": decision.zone.name(),
                "policyVersion": decision.policy_version, "at": at.to_rfc3339(),
            })
        );
    } else {
        println!("{}  {}  {}", decision.verdict.as_str(), kind.as_str(), group.name);
        println!(
            "posts today {} of {}   active hours {:?} ({})",
            decision.posts_today,
            decision.posts_per_day_cap,
            hours,
            decision.zone.name()
        );
        for (reason, message) in decision.reasons.iter().zip(&messages) {
            println!("  {:<20} {message}", reason.code.as_str());
        }
        if let Some(next) = decision.next_allowed_at {
            let local = next.to_datetime().with_timezone(&decision.zone);
            println!(
                "next allowed {}  ({})",
                local.format("%Y-%m-%d %H:%M"),
                next.to_rfc3339()
            );
        }
    }
    Ok(if decision.allowed() { Outcome::Yes } else { Outcome::No })
}

fn alerts(health: &rapport_domain::group::GroupHealth) -> Vec<&'static str> {
    [
        (health.leave_rate_alert, "LEAVE_RATE"),
        (health.promotion_share_alert, "PROMOTION_SHARE"),
    ]
    .into_iter()
    .filter_map(|(up, name)| up.then_some(name))
    .collect()
}

fn list(ctx: &Invocation, model: &ReadModel, now: rapport_domain::Timestamp) {
    let reader = file_holder();
    let rows: Vec<_> = groups::groups(&reader, model, None)
        .map(|(id, group)| (id, group, groups::health(model, group, now)))
        .collect();
    if ctx.json {
        let all: Vec<_> = rows
            .iter()
            .map(|(id, group, health)| {
                json!({
                    "groupId": id.to_string(), "name": group.name, "owner": group.owner,
                    "members": health.members, "leaveRatePerMille": health.leave_rate_per_mille,
                    "postsToday": health.posts_today, "alerts": alerts(health),
                })
            })
            .collect();
        println!("{}", json!({ "groups": all }));
        return;
    }
    // The name goes last: names are any length, in any script.
    println!(
        "{:<36}  {:>7} {:>6} {:>5}  {:<12} {:<16} name",
        "group", "members", "leave%", "today", "owner", "alerts"
    );
    for (id, group, health) in &rows {
        println!(
            "{id}  {:>7} {:>5.1}% {:>2}/{:<2}  {:<12} {:<16} {}",
            health.members,
            f64::from(health.leave_rate_per_mille) / 10.0,
            health.posts_today,
            health.posts_per_day_cap,
            group.owner,
            alerts(health).join(","),
            group.name
        );
    }
}

fn report(ctx: &Invocation, model: &ReadModel, id: GroupId, group: &Group, now: rapport_domain::Timestamp) {
    let health = groups::health(model, group, now);
    let costly: Vec<_> = group
        .posts
        .iter()
        .rev()
        .filter(|post| post.leaves_after > 0)
        .take(10)
        .map(|post| json!({ "at": post.at.to_rfc3339(), "kind": post.kind.as_str(), "membersLeft": post.leaves_after }))
        .collect();
    let broken: Vec<_> = group
        .posts
        .iter()
        .rev()
        .filter(|post| post.broke.is_some())
        .take(10)
        .map(|post| {
            json!({
                "at": post.at.to_rfc3339(), "kind": post.kind.as_str(),
                "verdict": post.broke.map(Verdict::as_str),
                "rules": post.reasons.iter().map(ReasonCode::as_str).collect::<Vec<_>>(),
            })
        })
        .collect();
    if ctx.json {
        println!(
            "{}",
            json!({
                "groupId": id.to_string(), "name": group.name, "owner": group.owner, "kind": group.kind,
                "members": health.members, "windowDays": health.window_days,
                "joined": health.joined, "left": health.left, "removed": health.removed,
                "leaveRatePerMille": health.leave_rate_per_mille, "activeMembers": health.active_members,
                "postsToday": health.posts_today, "postsPerDayCap": health.posts_per_day_cap,
                "mix": { "content": health.mix[0], "interaction": health.mix[1], "promotion": health.mix[2] },
                "alerts": alerts(&health), "postsThatCostMembers": costly, "postsThatBrokeTheGate": broken,
                "archivedAt": group.archived_at.map(|at| at.to_rfc3339()),
            })
        );
        return;
    }
    let zone = group.zone(model.projection.current_policy().default_time_zone());
    println!("{}  ({}, owner {}, {})", group.name, group.kind, group.owner, id);
    println!(
        "members {}   last {} days: joined {}, left {}, removed {}, leave rate {:.1}%",
        health.members,
        health.window_days,
        health.joined,
        health.left,
        health.removed,
        f64::from(health.leave_rate_per_mille) / 10.0
    );
    println!(
        "spoke in the last 7 days {} of {}   posts today {} of {}",
        health.active_members, health.members, health.posts_today, health.posts_per_day_cap
    );
    println!(
        "mix (recent posts): content {}, interaction {}, promotion {}",
        health.mix[0], health.mix[1], health.mix[2]
    );
    for alert in alerts(&health) {
        println!("ALERT {alert}");
    }
    for post in group.posts.iter().rev().filter(|post| post.broke.is_some()).take(10) {
        let rules: Vec<&str> = post.reasons.iter().map(ReasonCode::as_str).collect();
        println!(
            "post {} {:<11} broke the gate ({}: {}), {:?}",
            post.at.to_datetime().with_timezone(&zone).format("%Y-%m-%d %H:%M"),
            post.kind.as_str(),
            post.broke.map_or("", Verdict::as_str),
            rules.join(", "),
            post.authorized
        );
    }
    for post in group.posts.iter().rev().filter(|post| post.leaves_after > 0).take(10) {
        println!(
            "post {} {:<11} cost {} member(s) within a day",
            post.at.to_datetime().with_timezone(&zone).format("%Y-%m-%d %H:%M"),
            post.kind.as_str(),
            post.leaves_after
        );
    }
}

fn nudge_name(nudge: Nudge) -> &'static str {
    match nudge {
        Nudge::Greeting => "GREETING",
        Nudge::Invitation => "INVITATION",
    }
}

fn silent(
    ctx: &Invocation,
    model: &ReadModel,
    id: GroupId,
    group: &Group,
    now: rapport_domain::Timestamp,
    limit: usize,
) {
    let reader = file_holder();
    let rows: Vec<Silent> = groups::silent_members(&reader, model, group, now, limit);
    if ctx.json {
        let all: Vec<_> = rows
            .iter()
            .map(|row| {
                json!({
                    "member": row.member, "silentDays": row.silent_days, "nudge": nudge_name(row.nudge),
                    "contactId": row.contact_id.map(|id| id.to_string()),
                    "name": row.contact_id.and_then(|id| model.display_name(id)),
                    "contactVerdict": row.contact_gate.as_ref().map(|judged| judged.decision.verdict.as_str()),
                    "mayBeGreeted": row.may_be_greeted(),
                })
            })
            .collect();
        println!("{}", json!({ "groupId": id.to_string(), "silent": all }));
        return;
    }
    println!(
        "{:<24} {:>5}  {:<10} {:<16} contact",
        "member", "days", "nudge", "their gate"
    );
    for row in &rows {
        let verdict = row
            .contact_gate
            .as_ref()
            .map_or("no contact", |judged| judged.decision.verdict.as_str());
        let name = row.contact_id.and_then(|id| model.display_name(id)).unwrap_or_default();
        println!(
            "{:<24} {:>5}  {:<10} {:<16} {name}",
            row.member,
            row.silent_days,
            nudge_name(row.nudge),
            verdict
        );
    }
}
