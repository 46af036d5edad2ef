//! `record`: an operator with the ledger file at hand logs what happened in
//! a chat: a touch (gated exactly like the API's `recordTouch`), a reply, a
//! block, a deletion, a complaint, a consent or a tag. The write is the
//! token holder's, under their role's rules (the application's use cases);
//! staff without the file use the API.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use rapport_app::tokens::{Principal, TokenStore};
use rapport_app::write::{self, TouchRequest, WriteOptions, Written};
use rapport_app::{Core, access};
use rapport_domain::decide::Fact;
use rapport_domain::{Channel, ContactId, Timestamp};
use rapport_store::StoreError;
use serde_json::json;

use super::Invocation;
use super::inspect::{Moment, mode_of, resolve_visible};
use crate::Outcome;

#[derive(Debug, Args)]
pub struct Record {
    /// Your API token (`rapport token create`): the write is yours, with
    /// your role's rights.
    #[arg(long, env = "RAPPORT_TOKEN", hide_env_values = true)]
    token: String,
    /// Makes a retry safe: running the same command again with the same
    /// key records nothing more.
    #[arg(long, global = true)]
    idempotency_key: Option<uuid::Uuid>,
    /// When it happened: RFC 3339, or a local time without an offset (the
    /// contact's clock). Default now.
    #[arg(long, global = true)]
    at: Option<String>,
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// A send, if the gate allows it now (a manager may --override).
    ///
    /// Example: rapport record touch "Wang Fang" --mode one-to-one
    Touch {
        /// An id, or a name, phone, WeChat id or email.
        contact: String,
        /// mass or one-to-one.
        #[arg(long)]
        mode: String,
        /// The contact's primary channel when absent.
        #[arg(long)]
        channel: Option<String>,
        /// Managers only: send although the gate says no, for this reason.
        #[arg(long = "override")]
        override_reason: Option<String>,
    },
    #[command(flatten)]
    Fact(FactCommand),
}

/// Facts about a contact: no gate, but the same limits and time bounds.
#[derive(Debug, Subcommand)]
enum FactCommand {
    /// The contact replied.
    ///
    /// Example: rapport record reply "Wang Fang"
    Reply(OnChannel),
    /// The contact blocked us.
    ///
    /// Example: rapport record block "Wang Fang" --channel wechat
    Block(OnChannel),
    /// The contact unblocked us.
    ///
    /// Example: rapport record unblock "Wang Fang"
    Unblock(OnChannel),
    /// The contact deleted us (removed the friend).
    ///
    /// Example: rapport record deletion "Wang Fang"
    Deletion(OnChannel),
    /// The contact added us again.
    ///
    /// Example: rapport record readd "Wang Fang"
    Readd(OnChannel),
    /// The contact complained.
    ///
    /// Example: rapport record complaint "Wang Fang" --reason "too many promotions"
    Complaint {
        #[command(flatten)]
        on: OnChannel,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The contact opted in (or, with --withdrawn, out).
    ///
    /// Example: rapport record consent "Wang Fang" --withdrawn
    Consent {
        contact: String,
        #[arg(long)]
        withdrawn: bool,
        /// Where the consent was given or withdrawn.
        #[arg(long)]
        source: Option<String>,
    },
    /// File the contact under a tag.
    ///
    /// Example: rapport record tag "Wang Fang" vip
    Tag { contact: String, tag: String },
    /// Take a tag off the contact.
    ///
    /// Example: rapport record untag "Wang Fang" vip
    Untag { contact: String, tag: String },
}

#[derive(Debug, Args)]
struct OnChannel {
    /// An id, or a name, phone, WeChat id or email.
    contact: String,
    /// The contact's primary channel when absent.
    #[arg(long)]
    channel: Option<String>,
}

pub fn channel_of(text: Option<&str>) -> anyhow::Result<Option<Channel>> {
    let Some(text) = text else { return Ok(None) };
    let wanted = text.trim().to_uppercase().replace('-', "_");
    Channel::ALL
        .into_iter()
        .find(|channel| channel.as_str() == wanted)
        .map(Some)
        .with_context(|| format!("unknown channel '{text}': use wechat, wecom, sms, email, phone or other"))
}

/// The ledger opened for writing, with its live read model; refused with
/// advice while a server holds it.
pub async fn open_core(ctx: &Invocation) -> anyhow::Result<Core> {
    match Core::open(&ctx.store, std::sync::Arc::clone(&ctx.clock)).await {
        Ok(core) => Ok(core),
        Err(StoreError::Unavailable(why)) if matches!(ctx.store, rapport_store::LedgerLocation::File(_)) => {
            Err(rapport_app::AppError::Unavailable(format!(
                "{why}: write through the running server's API instead, or stop it first"
            ))
            .into())
        }
        Err(error) => Err(error).with_context(|| format!("opening the ledger {}", ctx.store)),
    }
}

/// The contact `text` names, as the caller may see it, and its time zone.
fn contact_of(core: &Core, principal: &Principal, text: &str) -> anyhow::Result<(ContactId, chrono_tz::Tz)> {
    core.live.read(|model| {
        // Sales staff see only their own: a contact of someone else's is
        // neither found nor listed among the candidates.
        let id = resolve_visible(model, text, |id| access::may_access(principal, model, id))?;
        let zone = model
            .projection
            .relationship(id)
            .map(|relationship| model.projection.current_policy().zone_of(relationship))
            .context("the contact vanished")?;
        Ok((id, zone))
    })
}

fn occurred_at(at: Option<&str>, zone: chrono_tz::Tz) -> anyhow::Result<Option<Timestamp>> {
    at.map(|text| Ok(Moment::parse(text)?.resolve(zone, "their")?.0))
        .transpose()
}

pub async fn record(ctx: &Invocation, command: Record) -> anyhow::Result<Outcome> {
    let principal = TokenStore::open(ctx.store.local_path())?
        .authenticate(&command.token)
        .ok_or(rapport_app::AppError::Unauthenticated(
            "the token is unknown or revoked".to_owned(),
        ))?;
    // The role first: whoever may not write finds no contact at all.
    access::require(&principal, access::WRITERS, "record what happened")?;
    if matches!(
        &command.what,
        What::Touch {
            override_reason: Some(_),
            ..
        }
    ) {
        access::require(&principal, access::OVERRIDERS, "override the gate")?;
    }
    let core = open_core(ctx).await?;
    let at = command.at.as_deref();
    let idempotency_key = command.idempotency_key;
    let (written, decision) = match command.what {
        What::Touch {
            contact,
            mode,
            channel,
            override_reason,
        } => {
            let mode = mode_of(&mode)?;
            let (contact_id, zone) = contact_of(&core, &principal, &contact)?;
            let request = TouchRequest {
                contact_id,
                mode,
                channel: channel_of(channel.as_deref())?,
                campaign_id: None,
                override_reason,
                options: WriteOptions {
                    occurred_at: occurred_at(at, zone)?,
                    idempotency_key,
                    expected_version: None,
                },
            };
            let touched = write::record_touch(&core, &principal, request).await?;
            (touched.written, Some(touched.judged))
        }
        What::Fact(command) => {
            let (contact, fact) = fact_of(command)?;
            let (contact_id, zone) = contact_of(&core, &principal, &contact)?;
            let options = WriteOptions {
                occurred_at: occurred_at(at, zone)?,
                idempotency_key,
                expected_version: None,
            };
            let written = write::record_fact(&core, &principal, contact_id, fact, &options).await?;
            (written, None)
        }
    };
    print_written(ctx, &written, decision.as_ref());
    Ok(Outcome::Yes)
}

/// The contact a fact is about, and the fact.
fn fact_of(command: FactCommand) -> anyhow::Result<(String, Fact)> {
    let on = |on: OnChannel, fact: fn(Option<Channel>) -> Fact| -> anyhow::Result<(String, Fact)> {
        let channel = channel_of(on.channel.as_deref())?;
        Ok((on.contact, fact(channel)))
    };
    match command {
        FactCommand::Reply(at) => on(at, |channel| Fact::Replied { channel }),
        FactCommand::Block(at) => on(at, |channel| Fact::Blocked { channel }),
        FactCommand::Unblock(at) => on(at, |channel| Fact::Unblocked { channel }),
        FactCommand::Deletion(at) => on(at, |channel| Fact::DeletedUs { channel }),
        FactCommand::Readd(at) => on(at, |channel| Fact::Readded { channel }),
        FactCommand::Complaint { on: at, reason } => {
            let channel = channel_of(at.channel.as_deref())?;
            Ok((at.contact, Fact::Complained { channel, reason }))
        }
        FactCommand::Consent {
            contact,
            withdrawn,
            source,
        } => Ok((
            contact,
            Fact::Consented {
                granted: !withdrawn,
                source,
            },
        )),
        FactCommand::Tag { contact, tag } => Ok((contact, Fact::Tagged { tag })),
        FactCommand::Untag { contact, tag } => Ok((contact, Fact::Untagged { tag })),
    }
}

fn print_written(ctx: &Invocation, written: &Written, decision: Option<&rapport_app::gate::Judged>) {
    if ctx.json {
        let answer = json!({
            "eventId": written.event_id.to_string(),
            "contactId": written.contact_id.to_string(),
            "position": written.position.to_string(),
            "contactVersion": written.contact_version,
            "verdict": decision.map(|judged| judged.decision.verdict.as_str()),
        });
        println!("{answer}");
    } else {
        println!(
            "recorded at position {} (contact {}, version {})",
            written.position, written.contact_id, written.contact_version
        );
        if let Some(judged) = decision {
            println!("the gate said {}", judged.decision.verdict.as_str());
        }
    }
}
