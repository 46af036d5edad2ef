//! `erase`: a person's request to be erased, answered with a receipt; and
//! `retention`: the contacts silent for longer than the policy keeps them,
//! listed or erased. The token's holder must be allowed to erase (admins,
//! and managers if the policy says so); an erasure cannot be undone.
//! `export CONTACT` answers an access request (`transfer`).

use clap::Args;
use rapport_app::access;
use rapport_app::privacy::{self, EraseRequest, ErasureReceipt};
use rapport_app::tokens::Principal;
use rapport_app::tokens::TokenStore;
use serde_json::json;

use super::Invocation;
use super::inspect::resolve_visible;
use super::record::open_core;
use crate::Outcome;

#[derive(Debug, Args)]
pub struct Erase {
    /// An id, or a name, phone, WeChat id or email.
    contact: String,
    /// Why (the legal basis, the ticket): kept in the ledger.
    #[arg(long)]
    reason: String,
    /// The requester's reference for the request, printed on the receipt.
    #[arg(long)]
    request_id: String,
    /// Your API token (`rapport token create --role admin`).
    #[arg(long, env = "RAPPORT_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Debug, Args)]
pub struct Retention {
    /// Erase them (each with its receipt); without it they are only listed.
    #[arg(long)]
    apply: bool,
    /// Erasures this run makes at most; run it again for the rest.
    #[arg(long, default_value_t = 1_000)]
    limit: usize,
    /// Your API token (`rapport token create --role admin`).
    #[arg(long, env = "RAPPORT_TOKEN", hide_env_values = true)]
    token: String,
}

fn principal_of(ctx: &Invocation, token: &str) -> anyhow::Result<Principal> {
    Ok(TokenStore::open(ctx.store.local_path())?
        .authenticate(token)
        .ok_or(rapport_app::AppError::Unauthenticated(
            "the token is unknown or revoked".to_owned(),
        ))?)
}

pub async fn erase(ctx: &Invocation, command: Erase) -> anyhow::Result<Outcome> {
    let principal = principal_of(ctx, &command.token)?;
    let core = open_core(ctx).await?;
    // The role first: whoever may not erase learns nothing of who exists.
    privacy::may_erase(&core, &principal)?;
    let contact_id = core
        .live
        .read(|model| resolve_visible(model, &command.contact, |id| access::may_access(&principal, model, id)))?;
    let receipt = privacy::erase_contact(
        &core,
        &principal,
        EraseRequest {
            contact_id,
            reason: command.reason,
            request_id: command.request_id,
        },
    )
    .await?;
    print_receipt(ctx, &receipt);
    Ok(Outcome::Yes)
}

pub async fn retention(ctx: &Invocation, command: Retention) -> anyhow::Result<Outcome> {
    let principal = principal_of(ctx, &command.token)?;
    let core = open_core(ctx).await?;
    privacy::may_erase(&core, &principal)?;
    if command.apply {
        let run = privacy::apply_retention(&core, &principal, command.limit).await?;
        for receipt in &run.receipts {
            print_receipt(ctx, receipt);
        }
        for (contact_id, error) in &run.failures {
            if ctx.json {
                let line = json!({ "contactId": contact_id.to_string(), "code": error.code().as_str(), "error": error.to_string() });
                println!("{line}");
            } else {
                println!("{contact_id} not erased: {error}");
            }
        }
        if !ctx.json {
            println!(
                "erased {} contacts, {} not (run again)",
                run.receipts.len(),
                run.failures.len()
            );
        }
        return Ok(if run.failures.is_empty() {
            Outcome::Yes
        } else {
            Outcome::No
        });
    }
    let expired = privacy::expired(&core, ctx.clock.now()).await?;
    for contact in &expired {
        if ctx.json {
            let line = json!({
                "contactId": contact.contact_id.to_string(),
                "lastEvent": contact.last_event.to_rfc3339(),
            });
            println!("{line}");
        } else {
            println!("{}  last event {}", contact.contact_id, contact.last_event.to_rfc3339());
        }
    }
    if !ctx.json {
        println!(
            "{} contacts past the policy's retention; --apply erases them",
            expired.len()
        );
    }
    Ok(Outcome::Yes)
}

fn print_receipt(ctx: &Invocation, receipt: &ErasureReceipt) {
    if ctx.json {
        let answer = json!({
            "contactId": receipt.contact_id.to_string(),
            "eventId": receipt.event_id.to_string(),
            "requestId": receipt.request_id,
            "erasedAt": receipt.erased_at.to_rfc3339(),
            "erasedBy": receipt.erased_by,
            "position": receipt.digest.position.map(|p| p.to_string()),
            "ledgerDigest": receipt.digest.to_string(),
            "alreadyErased": receipt.already_erased,
        });
        println!("{answer}");
    } else {
        let was = if receipt.already_erased {
            "was already erased"
        } else {
            "is erased"
        };
        println!("contact {} {was} (request {})", receipt.contact_id, receipt.request_id);
        println!(
            "erased at    {} by {}",
            receipt.erased_at.to_rfc3339(),
            receipt.erased_by
        );
        println!("receipt      {}", receipt.digest);
        println!("check it any time with: rapport verify --digest {}", receipt.digest);
    }
}
