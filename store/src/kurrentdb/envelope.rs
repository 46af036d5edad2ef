//! How a rapport event sits in a KurrentDB event: the payload as the event's
//! JSON data, the event type as its type, the event id as its id, and the
//! rest of the envelope (business and recorded time, actor, correlation,
//! schema version, the per-stream hash, the personal-data digest and the
//! sealed personal data) as JSON in its custom metadata. Pure: no client,
//! no I/O, so the mapping is unit-tested on its own.

use rapport_domain::Position;
use rapport_domain::hashing::Hash;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{RawEvent, StoreError};

/// Everything of a rapport event that KurrentDB has no field for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    pub schema_version: u16,
    pub occurred_at: i64,
    /// The writing node's clock when it appended: the hash covers it, and
    /// the server's own `created` stamp is only known after the write.
    pub recorded_at: i64,
    pub actor: String,
    pub correlation_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Hex of the event's hash in its stream's chain.
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii_digest: Option<String>,
    /// Hex of the personal data sealed with the contact's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii: Option<String>,
}

/// An event as the server returned it, before the envelope is unpacked.
#[derive(Clone, Copy, Debug)]
pub struct ServerEvent<'a> {
    /// The stream name without the ledger's prefix.
    pub stream: &'a str,
    pub revision: u64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub position: Position,
    pub data: &'a [u8],
    pub custom_metadata: &'a [u8],
}

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        // A struct of strings and integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Unpacks a server event into the stored form every backend shares;
    /// sealed personal data comes back locked, for the caller to open.
    pub fn unpack(event: &ServerEvent<'_>) -> Result<(RawEvent, Option<Vec<u8>>), StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            position: Some(event.position),
            detail,
        };
        let envelope: Envelope = serde_json::from_slice(event.custom_metadata)
            .map_err(|e| corrupt(format!("the event's rapport metadata does not parse: {e}")))?;
        let hash =
            hash_from_hex(&envelope.hash).ok_or_else(|| corrupt("the event hash is not 64 hex digits".into()))?;
        let pii_digest = envelope
            .pii_digest
            .as_deref()
            .map(|text| {
                hash_from_hex(text).ok_or_else(|| corrupt("the personal-data digest is not 64 hex digits".into()))
            })
            .transpose()?;
        let sealed = envelope
            .pii
            .as_deref()
            .map(|text| hex::decode(text).map_err(|_| corrupt("the sealed personal data is not hex".into())))
            .transpose()?;
        let raw = RawEvent {
            position: event.position,
            stream: event.stream.to_owned(),
            version: event.revision,
            event_id: event.event_id,
            event_type: event.event_type.to_owned(),
            schema_version: envelope.schema_version,
            occurred_at_millis: envelope.occurred_at,
            recorded_at_millis: envelope.recorded_at,
            actor: envelope.actor,
            correlation_id: envelope.correlation_id,
            causation_id: envelope.causation_id,
            payload: event.data.to_vec(),
            pii_digest,
            pii: None,
            hash,
            // The ledger digest is kept in the digest stream, not per event.
            ledger_digest: None,
        };
        Ok((raw, sealed))
    }
}

fn hash_from_hex(text: &str) -> Option<Hash> {
    let mut hash = [0; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            schema_version: 2,
            occurred_at: 1_700_000_000_000,
            recorded_at: 1_700_000_000_500,
            actor: "alice".into(),
            correlation_id: Uuid::from_u128(7),
            causation_id: Some(Uuid::from_u128(8)),
            hash: hex::encode([3u8; 32]),
            pii_digest: Some(hex::encode([4u8; 32])),
            pii: Some(hex::encode(b"sealed")),
        }
    }

    fn server_event<'a>(metadata: &'a [u8]) -> ServerEvent<'a> {
        ServerEvent {
            stream: "contact-00000000-0000-0000-0000-000000000001",
            revision: 4,
            event_id: Uuid::from_u128(9),
            event_type: "ReplyReceived",
            position: Position::new(1_000, 990),
            data: br#"{"channel":"WECHAT"}"#,
            custom_metadata: metadata,
        }
    }

    #[test]
    fn an_envelope_survives_the_trip_through_metadata_field_for_field() {
        let metadata = envelope().encode();
        let (raw, sealed) = Envelope::unpack(&server_event(&metadata)).expect("unpacks");
        assert_eq!(raw.schema_version, 2);
        assert_eq!(raw.occurred_at_millis, 1_700_000_000_000);
        assert_eq!(raw.recorded_at_millis, 1_700_000_000_500);
        assert_eq!(raw.actor, "alice");
        assert_eq!(raw.correlation_id, Uuid::from_u128(7));
        assert_eq!(raw.causation_id, Some(Uuid::from_u128(8)));
        assert_eq!(raw.hash, [3; 32]);
        assert_eq!(raw.pii_digest, Some([4; 32]));
        assert_eq!(sealed.as_deref(), Some(&b"sealed"[..]));
        assert_eq!(raw.version, 4);
        assert_eq!(raw.position, Position::new(1_000, 990));
        assert_eq!(raw.payload, br#"{"channel":"WECHAT"}"#);
        assert_eq!(raw.ledger_digest, None);
    }

    #[test]
    fn optional_fields_are_left_out_of_the_metadata_and_read_back_as_absent() {
        let bare = Envelope {
            causation_id: None,
            pii_digest: None,
            pii: None,
            ..envelope()
        };
        let metadata = bare.encode();
        let text = String::from_utf8(metadata.clone()).expect("utf-8");
        assert!(!text.contains("causationId") && !text.contains("pii"), "{text}");
        let (raw, sealed) = Envelope::unpack(&server_event(&metadata)).expect("unpacks");
        assert_eq!((raw.causation_id, raw.pii_digest, sealed), (None, None, None));
    }

    #[test]
    fn metadata_that_is_not_ours_is_corrupt_at_its_position_never_a_guess() {
        let position = Position::new(1_000, 990);
        let mut with_extra: serde_json::Value = serde_json::from_slice(&envelope().encode()).expect("json");
        with_extra["sneaked"] = serde_json::json!(true);
        let mut short_hash = envelope();
        short_hash.hash = "abcd".into();
        let cases = [
            b"not json".to_vec(),
            Vec::new(),
            serde_json::to_vec(&with_extra).expect("json"),
            short_hash.encode(),
        ];
        for metadata in cases {
            match Envelope::unpack(&server_event(&metadata)) {
                Err(StoreError::Corrupt { position: found, .. }) => assert_eq!(found, Some(position)),
                other => panic!("{other:?}"),
            }
        }
    }
}
