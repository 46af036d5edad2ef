//! A person's rights over their data: erasure (PIPL Art. 47, GDPR Art. 17)
//! and access (PIPL Art. 45, GDPR Art. 15).
//!
//! Erasure appends a `ContactErased` event, with which the store destroys
//! the contact's key: every sealed copy of their personal data (in the
//! ledger, its backups, its exports) can never be read again, while the
//! relationship signals, which say nothing of who they are, stay and keep
//! the hash chain whole.

use rapport_domain::policy::PrivacyRules;
use rapport_domain::{
    ContactErased, ContactId, Event, LedgerDigest, NewEvent, Pii, RecordedEvent, StreamName, Timestamp,
};
use rapport_projections::Horizon;
use rapport_store::{EventStore, ExpectedVersion, StoreError};
use uuid::Uuid;

use crate::access::{ACCESS_REQUESTERS, ERASERS, check_contact, no_such_contact, require};
use crate::core::Core;
use crate::error::AppError;
use crate::read::contact_events;
use crate::tokens::{Principal, Role};

/// Who asks for an erasure, and why.
#[derive(Clone, Debug)]
pub struct EraseRequest {
    pub contact_id: ContactId,
    pub reason: String,
    /// The requester's reference (a ticket, a letter): it is on the receipt.
    pub request_id: String,
}

/// What the requester keeps as proof: where in the ledger the erasure is,
/// and the ledger digest after it (`rapport verify --digest` checks it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErasureReceipt {
    pub contact_id: ContactId,
    pub event_id: Uuid,
    pub request_id: String,
    pub erased_at: Timestamp,
    pub erased_by: String,
    pub digest: LedgerDigest,
    /// The contact had been erased before this request: this is that receipt.
    pub already_erased: bool,
}

/// The policy's privacy rules now.
fn privacy_rules(core: &Core) -> PrivacyRules {
    core.live
        .read(|model| model.projection.current_policy().policy.privacy.clone())
}

/// Whether `principal` may erase: admins, and managers if the policy says so.
pub fn may_erase(core: &Core, principal: &Principal) -> Result<(), AppError> {
    const WITH_MANAGERS: &[Role] = &[Role::Manager, Role::Admin];
    let erasers = if privacy_rules(core).managers_may_erase {
        WITH_MANAGERS
    } else {
        ERASERS
    };
    require(principal, erasers, "erase contacts")
}

/// Erases a contact's personal data for good, and answers with the receipt.
/// Erasing again answers with the first erasure's receipt.
pub async fn erase_contact(
    core: &Core,
    principal: &Principal,
    request: EraseRequest,
) -> Result<ErasureReceipt, AppError> {
    may_erase(core, principal)?;
    // What an operator types stays in the ledger for good (retention's own
    // words name nobody by construction).
    core.live.read(|model| {
        check_contact(principal, model, request.contact_id)?;
        model
            .directory
            .pii(request.contact_id)
            .map_or(Ok(()), |pii| names_nobody(&request, pii))
    })?;
    match erase_one(core, principal, request).await {
        // Erasing again writes it again too: the first answer may have been
        // lost before the snapshot was written.
        Ok(receipt) => {
            forget_in_snapshot(core).await?;
            Ok(receipt)
        }
        // The append may have been made: the snapshot must not hold them.
        Err(unknown @ (AppError::Unavailable(_) | AppError::Internal(_))) => {
            if let Err(error) = forget_in_snapshot(core).await {
                tracing::warn!(%error, "after an erasure whose outcome is unknown");
            }
            Err(unknown)
        }
        Err(refused) => Err(refused),
    }
}

/// Attempts at an erasure while other writes to the contact keep moving it on.
const ERASE_ATTEMPTS_MAX: usize = 5;

/// The erasure itself, the caller's right to it checked; the snapshot is
/// the caller's to write again.
async fn erase_one(core: &Core, principal: &Principal, request: EraseRequest) -> Result<ErasureReceipt, AppError> {
    let stream = StreamName::Contact(request.contact_id);
    let event = Event::from(ContactErased {
        reason: request.reason.trim().to_owned(),
        request_id: request.request_id.trim().to_owned(),
    });
    event
        .validate(&stream, None)
        .map_err(|problem| AppError::bad_input(format!("{problem}; nothing was erased")))?;
    for _ in 0..ERASE_ATTEMPTS_MAX {
        let (erased, version) = core.live.read(|model| {
            check_contact(principal, model, request.contact_id)?;
            let relationship = model
                .projection
                .relationship(request.contact_id)
                .ok_or_else(|| no_such_contact(request.contact_id))?;
            Ok::<_, AppError>((relationship.erased(), relationship.stream_version()))
        })?;
        if erased {
            let mut receipt = receipt_of(&core.store, request.contact_id).await?;
            receipt.already_erased = true;
            return Ok(receipt);
        }
        // A fresh id: nobody can take an erasure's id ahead of it. The
        // store refuses a second erasure of the same contact.
        let new_event = NewEvent::new(Uuid::now_v7(), event.clone(), core.clock.now(), principal.name.clone());
        let appended = core
            .store
            .append(stream, ExpectedVersion::Exact(version), vec![new_event])
            .await;
        let result = match appended {
            Ok(result) => result,
            // Another write (or erasure) came first: judge again on what it left.
            Err(StoreError::WrongExpectedVersion { .. } | StoreError::Erased { .. }) => {
                if let Some(position) = core.store.head().await?.last_position {
                    core.live
                        .wait_for(position)
                        .await
                        .map_err(|cause| AppError::Unavailable(cause.to_string()))?;
                }
                continue;
            }
            Err(other) => return Err(other.into()),
        };
        core.live.wait_for(result.position).await.map_err(|cause| {
            AppError::Unavailable(format!(
                "the erasure was recorded at position {}, but the read model has not applied it yet ({cause}); \
                 erasing again answers with its receipt",
                result.position
            ))
        })?;
        let mut receipt = receipt_of(&core.store, request.contact_id).await?;
        receipt.already_erased = false;
        return Ok(receipt);
    }
    Err(AppError::Conflict(format!(
        "contact {} kept changing while it was being erased; nothing was erased, try again",
        request.contact_id
    )))
}

/// The erasure's reason and request id stay in the ledger for good: they
/// may not name the person they erase.
fn names_nobody(request: &EraseRequest, pii: &Pii) -> Result<(), AppError> {
    let texts = [request.reason.to_lowercase(), request.request_id.to_lowercase()];
    let digits = |text: &str| -> String { text.chars().filter(char::is_ascii_digit).collect() };
    let named = [&pii.display_name, &pii.wechat_id, &pii.email]
        .into_iter()
        .flatten()
        .map(|field| field.trim().to_lowercase())
        // Two characters name someone in Chinese ("李娜"); in Latin letters
        // that short a field would match ordinary words.
        .filter(|field| field.chars().count() >= if field.is_ascii() { 4 } else { 2 })
        .any(|field| texts.iter().any(|text| text.contains(&field)));
    let phone = pii.phone.as_deref().map(digits).filter(|phone| phone.len() >= 7);
    let dialled = phone.is_some_and(|phone| {
        let local = &phone[phone.len() - 7..];
        texts.iter().any(|text| digits(text).contains(local))
    });
    if named || dialled {
        return Err(AppError::bad_input(
            "the reason and the request id stay in the ledger after the erasure: they may not hold the \
             person's name, phone number, WeChat id or email; nothing was erased",
        ));
    }
    Ok(())
}

/// The snapshot holds the directory: written again without whoever was erased.
async fn forget_in_snapshot(core: &Core) -> Result<(), AppError> {
    core.live.forget_erased_in_snapshot().await.map_err(|e| {
        AppError::internal(format!(
            "the erasure is recorded, but the snapshot still holds them: {e}"
        ))
    })
}

/// Erasures one retention run makes at most; the next run goes on.
pub const RETENTION_ERASURES_MAX: usize = 10_000;
const DAY_MILLIS: i64 = 86_400_000;

/// A contact the retention rule applies to: nothing of theirs happened
/// since `last_event` (the latest business time among their events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expired {
    pub contact_id: ContactId,
    pub last_event: Timestamp,
}

/// The contacts, not yet erased, whose last event is older than the
/// policy's retention at `now`, oldest first; none without a retention.
pub async fn expired(core: &Core, now: Timestamp) -> Result<Vec<Expired>, AppError> {
    let Some(years) = privacy_rules(core).retention_years else {
        return Ok(Vec::new());
    };
    // Calendar years, leap days included.
    let cutoff = now.as_millis() - (i64::from(years) * 365 + i64::from(years / 4)) * DAY_MILLIS;
    let contacts: Vec<ContactId> = core
        .read_blocking(|model| {
            model
                .directory
                .ids_after(None)
                .filter(|id| !model.is_erased(*id))
                .collect()
        })
        .await?;
    let mut expired = Vec::new();
    for contact_id in contacts {
        // The latest business time of all their events, not the last
        // appended: a fact dated in the past may come after a recent one.
        let events = match contact_events(&core.store, contact_id, Horizon::default()).await {
            Ok(events) => events,
            // More history than one read folds: not someone silent for years.
            Err(AppError::LimitExceeded(_)) => continue,
            Err(other) => return Err(other),
        };
        if let Some(last_event) = events.iter().map(|event| event.occurred_at).max()
            && last_event.as_millis() < cutoff
        {
            expired.push(Expired { contact_id, last_event });
        }
    }
    expired.sort_by_key(|expired| expired.last_event);
    Ok(expired)
}

/// What a retention run did: an erasure's receipt per contact, and the
/// contacts it could not erase (the next run tries them again).
#[derive(Debug, Default)]
pub struct RetentionRun {
    pub receipts: Vec<ErasureReceipt>,
    pub failures: Vec<(ContactId, AppError)>,
}

/// Erases up to `limit` (at most `RETENTION_ERASURES_MAX`) contacts the
/// retention rule applies to, each with its receipt, under one request id
/// for the run; one that fails does not stop the others.
pub async fn apply_retention(core: &Core, principal: &Principal, limit: usize) -> Result<RetentionRun, AppError> {
    may_erase(core, principal)?;
    let now = core.clock.now();
    let years = privacy_rules(core).retention_years.unwrap_or_default();
    let request_id = format!("retention-{}", now.to_rfc3339());
    let mut run = RetentionRun::default();
    for expired in expired(core, now)
        .await?
        .into_iter()
        .take(limit.min(RETENTION_ERASURES_MAX))
    {
        let request = EraseRequest {
            contact_id: expired.contact_id,
            reason: format!(
                "retention: no event for {years} years (the last on {})",
                expired.last_event.to_rfc3339()
            ),
            request_id: request_id.clone(),
        };
        match erase_one(core, principal, request).await {
            Ok(receipt) => run.receipts.push(receipt),
            Err(error) => run.failures.push((expired.contact_id, error)),
        }
    }
    forget_in_snapshot(core).await?;
    Ok(run)
}

async fn receipt_of(store: &dyn EventStore, contact_id: ContactId) -> Result<ErasureReceipt, AppError> {
    let stream = StreamName::Contact(contact_id);
    let mut from_version = 0;
    loop {
        let page = store
            .read_stream_raw(stream, from_version, rapport_store::READ_LIMIT_MAX)
            .await?;
        let Some(last) = page.last().map(|event| event.version) else {
            return Err(AppError::internal(format!(
                "the erasure of {contact_id} is not in its stream"
            )));
        };
        if let Some(raw) = page.into_iter().find(|event| event.event_type == "ContactErased") {
            let digest = match raw.ledger_digest {
                Some(digest) => LedgerDigest {
                    position: Some(raw.position),
                    digest,
                },
                // A cluster keeps the digest in checkpoints, not per event.
                None => store
                    .digest_at(raw.position)
                    .await?
                    .ok_or_else(|| AppError::internal("the erasure's position is not in the ledger"))?,
            };
            let recorded = raw.decode()?;
            let Event::ContactErased(erased) = &recorded.event else {
                return Err(AppError::internal("an erasure that does not decode as one"));
            };
            return Ok(ErasureReceipt {
                contact_id,
                event_id: recorded.event_id,
                request_id: erased.request_id.clone(),
                erased_at: recorded.recorded_at,
                erased_by: recorded.actor.clone(),
                digest,
                already_erased: true,
            });
        }
        from_version = last + 1;
    }
}

/// Everything held about a person, decrypted, as an access request is
/// answered: their personal data now and every event of theirs.
#[derive(Clone, Debug)]
pub struct PersonRecord {
    pub contact_id: ContactId,
    pub erased: bool,
    /// What the directory holds now (nothing once erased).
    pub personal_data: Option<Pii>,
    pub events: Vec<RecordedEvent>,
}

/// The answer to an access request: auditors and admins only, since it
/// holds every field of the person's.
pub async fn person_record(
    core: &Core,
    principal: &Principal,
    contact_id: ContactId,
) -> Result<PersonRecord, AppError> {
    require(principal, ACCESS_REQUESTERS, "answer access requests")?;
    let (erased, personal_data) = core.live.read(|model| {
        check_contact(principal, model, contact_id)?;
        Ok::<_, AppError>((model.is_erased(contact_id), model.directory.pii(contact_id).cloned()))
    })?;
    let events = contact_events(&core.store, contact_id, Horizon::default()).await?;
    Ok(PersonRecord {
        contact_id,
        erased,
        personal_data,
        events,
    })
}
