//! Tamper evidence. Each event's hash chains to the previous event of its
//! stream; a ledger digest chains every event hash in global order, so a
//! digest saved outside the ledger later exposes truncation or rewriting.
//!
//! Personal data is hashed separately, under a key of its contact's, and
//! only that digest enters the chain: erasing the data (and destroying the
//! key) leaves every link verifiable and the digest unsearchable.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::envelope::Position;

pub type Hash = [u8; 32];

/// The hash a stream's first event chains to, and the digest of an empty ledger.
pub const GENESIS: Hash = [0; 32];

const EVENT_DOMAIN: &[u8] = b"rapport/event/v1";
const LEDGER_DOMAIN: &[u8] = b"rapport/ledger/v1";
const PII_DOMAIN: &[u8] = b"rapport/pii/v2";

/// Every stored field of an event, exactly as stored.
#[derive(Clone, Copy, Debug)]
pub struct HashedFields<'a> {
    pub event_id: Uuid,
    pub stream: &'a str,
    pub version: u64,
    pub event_type: &'a str,
    pub schema_version: u16,
    pub occurred_at_millis: i64,
    pub recorded_at_millis: i64,
    pub actor: &'a str,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub payload: &'a [u8],
    pub pii_digest: Option<&'a Hash>,
}

fn update_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    // Length prefixes make the encoding unambiguous: no two field lists
    // produce the same byte string.
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// `SHA-256(previous hash in the stream ‖ canonical bytes of the event)`.
pub fn event_hash(previous_in_stream: &Hash, fields: &HashedFields<'_>) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(EVENT_DOMAIN);
    hasher.update(previous_in_stream);
    hasher.update(fields.event_id.as_bytes());
    update_bytes(&mut hasher, fields.stream.as_bytes());
    hasher.update(fields.version.to_be_bytes());
    update_bytes(&mut hasher, fields.event_type.as_bytes());
    hasher.update(fields.schema_version.to_be_bytes());
    hasher.update(fields.occurred_at_millis.to_be_bytes());
    hasher.update(fields.recorded_at_millis.to_be_bytes());
    update_bytes(&mut hasher, fields.actor.as_bytes());
    hasher.update(fields.correlation_id.as_bytes());
    match fields.causation_id {
        Some(id) => {
            hasher.update([1]);
            hasher.update(id.as_bytes());
        }
        None => hasher.update([0]),
    }
    update_bytes(&mut hasher, fields.payload);
    match fields.pii_digest {
        Some(digest) => {
            hasher.update([1]);
            hasher.update(digest);
        }
        None => hasher.update([0]),
    }
    hasher.finalize().into()
}

/// The digest of the ledger up to and including `position`.
pub fn ledger_digest(previous: &Hash, position: Position, event_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(LEDGER_DOMAIN);
    hasher.update(previous);
    hasher.update(position.commit.to_be_bytes());
    hasher.update(position.prepare.to_be_bytes());
    hasher.update(event_hash);
    hasher.finalize().into()
}

/// Keyed by a secret of the contact's: without it, trying every phone
/// number finds nothing, and once it is destroyed nobody can.
pub fn pii_digest(key: &[u8], pii_json: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(PII_DOMAIN);
    update_bytes(&mut hasher, key);
    update_bytes(&mut hasher, pii_json);
    hasher.finalize().into()
}

/// A ledger digest as recorded outside the ledger: `sha256:<hex>@<position>`,
/// or `sha256:<hex>@empty` for an empty ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerDigest {
    pub position: Option<Position>,
    pub digest: Hash,
}

impl LedgerDigest {
    pub const EMPTY: LedgerDigest = LedgerDigest {
        position: None,
        digest: GENESIS,
    };
}

impl fmt::Display for LedgerDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}@", hex::encode(self.digest))?;
        match self.position {
            Some(position) => write!(f, "{position}"),
            None => f.write_str("empty"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a ledger digest (expected sha256:<64 hex digits>@<position>)")]
pub struct LedgerDigestError(pub String);

impl FromStr for LedgerDigest {
    type Err = LedgerDigestError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || LedgerDigestError(text.chars().take(100).collect());
        let rest = text.trim().strip_prefix("sha256:").ok_or_else(refuse)?;
        let (hex_digest, position) = rest.split_once('@').ok_or_else(refuse)?;
        let mut digest = GENESIS;
        hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| refuse())?;
        let position = match position {
            "empty" => None,
            other => Some(other.parse().map_err(|_| refuse())?),
        };
        Ok(LedgerDigest { position, digest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(payload: &[u8]) -> HashedFields<'_> {
        HashedFields {
            event_id: Uuid::from_u128(1),
            stream: "policy",
            version: 0,
            event_type: "PolicyChanged",
            schema_version: 1,
            occurred_at_millis: 10,
            recorded_at_millis: 20,
            actor: "system",
            correlation_id: Uuid::from_u128(1),
            causation_id: None,
            payload,
            pii_digest: None,
        }
    }

    #[test]
    fn any_change_to_a_field_or_its_predecessor_changes_the_hash() {
        let original = event_hash(&GENESIS, &fields(b"{}"));
        assert_ne!(original, event_hash(&GENESIS, &fields(b"{ }")));
        assert_ne!(original, event_hash(&[1; 32], &fields(b"{}")));
        let mut moved = fields(b"{}");
        moved.version = 1;
        assert_ne!(original, event_hash(&GENESIS, &moved));
        let mut caused = fields(b"{}");
        caused.causation_id = Some(Uuid::nil());
        assert_ne!(original, event_hash(&GENESIS, &caused));
    }

    #[test]
    fn ledger_digests_round_trip_through_text() {
        let digest = LedgerDigest {
            position: Some(Position::from_sequence(9)),
            digest: [0xab; 32],
        };
        assert_eq!(digest.to_string().parse(), Ok(digest));
        assert_eq!(LedgerDigest::EMPTY.to_string().parse(), Ok(LedgerDigest::EMPTY));
        assert!("sha256:zz@1".parse::<LedgerDigest>().is_err());
    }
}
