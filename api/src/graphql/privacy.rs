//! A person's rights over their data: the erasure's input and receipt, and
//! the record an access request is answered with.

use async_graphql::{InputObject, Json, SimpleObject};
use chrono::{DateTime, Utc};
use rapport_app::privacy::{ErasureReceipt as Receipt, PersonRecord as Record};
use rapport_domain::{Pii, RecordedEvent};
use uuid::Uuid;

use super::to_datetime;

#[derive(InputObject, Debug)]
pub struct EraseContactInput {
    pub contact_id: Uuid,
    /// Why (the legal basis, the ticket): kept in the ledger.
    pub reason: String,
    /// The requester's reference for the request, on the receipt.
    pub request_id: String,
}

/// What the requester keeps as proof: where in the ledger the erasure is
/// and the ledger digest after it (`verifyLedger(digest:)` checks it).
#[derive(SimpleObject, Debug)]
pub struct ErasureReceipt {
    pub contact_id: Uuid,
    pub event_id: Uuid,
    pub request_id: String,
    pub erased_at: DateTime<Utc>,
    pub erased_by: String,
    pub position: Option<String>,
    pub ledger_digest: String,
    /// They had been erased before: this is the first erasure's receipt.
    pub already_erased: bool,
}

impl From<Receipt> for ErasureReceipt {
    fn from(receipt: Receipt) -> Self {
        ErasureReceipt {
            contact_id: receipt.contact_id.0,
            event_id: receipt.event_id,
            request_id: receipt.request_id,
            erased_at: to_datetime(receipt.erased_at),
            erased_by: receipt.erased_by,
            position: receipt.digest.position.map(|p| p.to_string()),
            ledger_digest: receipt.digest.to_string(),
            already_erased: receipt.already_erased,
        }
    }
}

#[derive(SimpleObject, Debug, Default)]
pub struct PersonalData {
    pub display_name: Option<String>,
    pub phone: Option<String>,
    pub wechat_id: Option<String>,
    pub email: Option<String>,
}

impl From<Pii> for PersonalData {
    fn from(pii: Pii) -> Self {
        PersonalData {
            display_name: pii.display_name,
            phone: pii.phone,
            wechat_id: pii.wechat_id,
            email: pii.email,
        }
    }
}

/// One event of the person's, with the personal data it carried.
#[derive(SimpleObject, Debug)]
pub struct PersonEvent {
    pub event_id: Uuid,
    #[graphql(name = "type")]
    pub event_type: String,
    pub version: i64,
    pub position: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    pub payload: Json<serde_json::Value>,
    pub personal_data: Option<PersonalData>,
}

impl From<RecordedEvent> for PersonEvent {
    fn from(event: RecordedEvent) -> Self {
        let payload = serde_json::from_slice(&event.event.encode()).unwrap_or(serde_json::Value::Null);
        PersonEvent {
            event_id: event.event_id,
            event_type: event.event.event_type().to_owned(),
            version: event.version as i64,
            position: event.position.to_string(),
            occurred_at: to_datetime(event.occurred_at),
            recorded_at: to_datetime(event.recorded_at),
            actor: event.actor,
            payload: Json(payload),
            personal_data: event.pii.map(PersonalData::from),
        }
    }
}

/// Everything held about a person, decrypted: the answer to their access
/// request (PIPL Art. 45, GDPR Art. 15).
#[derive(SimpleObject, Debug)]
pub struct PersonRecord {
    pub contact_id: Uuid,
    pub erased: bool,
    /// What the directory holds now; nothing once erased.
    pub personal_data: Option<PersonalData>,
    pub events: Vec<PersonEvent>,
}

impl From<Record> for PersonRecord {
    fn from(record: Record) -> Self {
        PersonRecord {
            contact_id: record.contact_id.0,
            erased: record.erased,
            personal_data: record.personal_data.map(PersonalData::from),
            events: record.events.into_iter().map(PersonEvent::from).collect(),
        }
    }
}
