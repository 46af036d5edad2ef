//! Between the log and the protocol: request fields read into the log's
//! types (with a clear INVALID_ARGUMENT when they are missing or malformed),
//! and log records written out as the messages the server sends.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tonic::Status;
use uuid::Uuid;

use crate::log::Record;
use crate::proto::event_store::client::Uuid as ProtoUuid;
use crate::proto::event_store::client::streams::read_resp::{self, read_event};
use crate::proto::event_store::client::streams::{ReadResp, read_req};
use crate::proto::event_store::client::{Empty, StreamIdentifier, uuid as proto_uuid};
use crate::status;

/// The longest stream name the double takes.
const STREAM_NAME_BYTES_MAX: usize = 4_096;

/// Ticks (100 ns) since 1970-01-01 UTC: the server's "created" metadata
/// (`DateTime.ToTicksSinceEpoch`), which the client reads as such.
pub(crate) fn ticks_now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_nanos() / 100).unwrap_or(i64::MAX)
}

/// The server's clock, for checkpoints and caught-up messages.
pub(crate) fn timestamp_now() -> prost_types::Timestamp {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0),
    }
}

/// A stream name from its identifier: present, UTF-8, not empty, bounded.
pub(crate) fn stream_name(identifier: Option<StreamIdentifier>) -> Result<String, Status> {
    let identifier = identifier.ok_or_else(|| status::invalid_argument("'streamIdentifier' is required"))?;
    let name = String::from_utf8(identifier.stream_name.to_vec())
        .map_err(|_| status::invalid_argument("a stream name must be UTF-8"))?;
    if name.is_empty() {
        return Err(status::invalid_argument("a stream name must not be empty"));
    }
    if name.len() > STREAM_NAME_BYTES_MAX {
        return Err(status::invalid_argument(format!(
            "a stream name takes at most {STREAM_NAME_BYTES_MAX} bytes in the test double"
        )));
    }
    Ok(name)
}

/// An event id in either of the protocol's forms.
pub(crate) fn event_id(id: Option<ProtoUuid>) -> Result<Uuid, Status> {
    let value = id
        .and_then(|id| id.value)
        .ok_or_else(|| status::invalid_argument("a proposed event needs an id"))?;
    match value {
        proto_uuid::Value::Structured(structured) => {
            let most = u128::from(structured.most_significant_bits as u64);
            let least = u128::from(structured.least_significant_bits as u64);
            Ok(Uuid::from_u128((most << 64) | least))
        }
        proto_uuid::Value::String(text) => text
            .parse()
            .map_err(|_| status::invalid_argument(format!("'{text}' is not a valid event id"))),
    }
}

/// How the reader asked for ids back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UuidForm {
    Structured,
    String,
}

impl UuidForm {
    /// The form from a read's options; the server requires the option.
    pub(crate) fn from_option(option: Option<read_req::options::UuidOption>) -> Result<UuidForm, Status> {
        let option = option.ok_or_else(|| status::invalid_argument("'uuidOption' is a required argument"))?;
        match option.content {
            Some(read_req::options::uuid_option::Content::String(_)) => Ok(UuidForm::String),
            Some(read_req::options::uuid_option::Content::Structured(_)) | None => Ok(UuidForm::Structured),
        }
    }

    fn encode(self, id: Uuid) -> ProtoUuid {
        let value = match self {
            UuidForm::String => proto_uuid::Value::String(id.hyphenated().to_string()),
            UuidForm::Structured => {
                let bits = id.as_u128();
                proto_uuid::Value::Structured(proto_uuid::Structured {
                    most_significant_bits: (bits >> 64) as u64 as i64,
                    least_significant_bits: bits as u64 as i64,
                })
            }
        };
        ProtoUuid { value: Some(value) }
    }
}

/// An event as the server sends it in a read or a subscription.
pub(crate) fn event(record: &Record, form: UuidForm) -> ReadResp {
    let content_type = if record.is_json {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let metadata = HashMap::from([
        ("type".to_owned(), record.event_type.to_string()),
        ("created".to_owned(), record.created_ticks.to_string()),
        ("content-type".to_owned(), content_type.to_owned()),
    ]);
    let recorded = read_event::RecordedEvent {
        id: Some(form.encode(record.id)),
        stream_identifier: Some(StreamIdentifier {
            stream_name: Bytes::copy_from_slice(record.stream.as_bytes()),
        }),
        stream_revision: record.revision,
        prepare_position: record.position,
        commit_position: record.position,
        metadata,
        custom_metadata: record.custom_metadata.clone(),
        data: record.data.clone(),
    };
    let event = read_resp::ReadEvent {
        event: Some(recorded),
        link: None,
        position: Some(read_event::Position::CommitPosition(record.position)),
    };
    ReadResp {
        content: Some(read_resp::Content::Event(event)),
    }
}

/// The first message of every subscription.
pub(crate) fn confirmation(subscription_id: String) -> ReadResp {
    let confirmation = read_resp::SubscriptionConfirmation { subscription_id };
    ReadResp {
        content: Some(read_resp::Content::Confirmation(confirmation)),
    }
}

/// A filtered `$all` subscription's checkpoint.
pub(crate) fn checkpoint(position: (u64, u64)) -> ReadResp {
    let checkpoint = read_resp::Checkpoint {
        commit_position: position.0,
        prepare_position: position.1,
        timestamp: Some(timestamp_now()),
    };
    ReadResp {
        content: Some(read_resp::Content::Checkpoint(checkpoint)),
    }
}

/// A stream subscription going live, at the last revision it considered.
pub(crate) fn caught_up_in_stream(revision: Option<u64>) -> ReadResp {
    let caught_up = read_resp::CaughtUp {
        timestamp: Some(timestamp_now()),
        stream_revision: revision.and_then(|revision| i64::try_from(revision).ok()),
        position: None,
    };
    ReadResp {
        content: Some(read_resp::Content::CaughtUp(caught_up)),
    }
}

/// A `$all` subscription going live, at the last position it considered.
pub(crate) fn caught_up_in_all(position: Option<(u64, u64)>) -> ReadResp {
    let caught_up = read_resp::CaughtUp {
        timestamp: Some(timestamp_now()),
        stream_revision: None,
        position: position.map(|(commit, prepare)| read_resp::Position {
            commit_position: commit,
            prepare_position: prepare,
        }),
    };
    ReadResp {
        content: Some(read_resp::Content::CaughtUp(caught_up)),
    }
}

/// The answer to a read of a stream that does not exist.
pub(crate) fn stream_not_found(stream: &str) -> ReadResp {
    let identifier = StreamIdentifier {
        stream_name: Bytes::copy_from_slice(stream.as_bytes()),
    };
    let not_found = read_resp::StreamNotFound {
        stream_identifier: Some(identifier),
    };
    ReadResp {
        content: Some(read_resp::Content::StreamNotFound(not_found)),
    }
}

/// The last message of a stream read for clients that ask for it
/// (`ControlOption.compatibility >= 1`).
pub(crate) fn last_stream_position(revision: u64) -> ReadResp {
    ReadResp {
        content: Some(read_resp::Content::LastStreamPosition(revision)),
    }
}

/// The `Empty` message the protocol uses as a unit.
pub(crate) const EMPTY: Empty = Empty {};
