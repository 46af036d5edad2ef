//! The gRPC errors the double answers with: the server's own (`RpcExceptions`
//! in KurrentDB, with the same codes, messages and trailing metadata, which
//! the client's `Error::from_grpc` reads), and the double's own limits and
//! injected faults.

use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

/// The metadata key the server names its exception in.
const EXCEPTION: &str = "exception";

fn with_metadata(code: Code, message: String, pairs: &[(&'static str, &str)]) -> Status {
    let mut metadata = MetadataMap::new();
    for (key, value) in pairs {
        // A value that is not valid header text (a stream name with non-ASCII
        // characters) is left out rather than failing the answer.
        if let Ok(value) = MetadataValue::try_from(*value) {
            metadata.insert(*key, value);
        }
    }
    Status::with_metadata(code, message, metadata)
}

/// `RpcExceptions.StreamDeleted`: the client maps it to `Error::ResourceDeleted`.
pub(crate) fn stream_deleted(stream: &str) -> Status {
    with_metadata(
        Code::FailedPrecondition,
        format!("Event stream '{stream}' is deleted."),
        &[(EXCEPTION, "stream-deleted"), ("stream-name", stream)],
    )
}

/// `RpcExceptions.WrongExpectedVersion`, which Delete and Tombstone raise (an
/// append answers a `wrong_expected_version` message instead). The client has
/// no typed mapping for it: it becomes `Error::Grpc { FailedPrecondition, .. }`.
pub(crate) fn wrong_expected_version(stream: &str, expected: i64, actual: i64) -> Status {
    let expected_text = expected.to_string();
    let actual_text = actual.to_string();
    with_metadata(
        Code::FailedPrecondition,
        format!(
            "Delete failed due to WrongExpectedVersion. Stream: {stream}, Expected version: {expected}, Actual version: {actual}"
        ),
        &[
            (EXCEPTION, "wrong-expected-version"),
            ("stream-name", stream),
            ("expected-version", &expected_text),
            ("actual-version", &actual_text),
        ],
    )
}

/// `RpcExceptions.RequiredMetadataPropertyMissing`: a proposed event without
/// "type" or "content-type".
pub(crate) fn required_metadata_missing(property: &str) -> Status {
    with_metadata(
        Code::InvalidArgument,
        format!("Required Metadata Property '{property}' is missing"),
        &[
            (EXCEPTION, "missing-required-metadata-property"),
            ("required-metadata-properties", "type,content-type"),
        ],
    )
}

/// `RpcExceptions.MaxAppendSizeExceeded`.
pub(crate) fn max_append_size_exceeded(max: usize) -> Status {
    let max_text = max.to_string();
    with_metadata(
        Code::InvalidArgument,
        format!("Maximum Append Size of {max} Exceeded."),
        &[
            (EXCEPTION, "maximum-append-size-exceeded"),
            ("maximum-append-size", &max_text),
        ],
    )
}

/// A malformed request, as the server's `RpcExceptions.InvalidArgument`.
pub(crate) fn invalid_argument(message: impl Into<String>) -> Status {
    Status::invalid_argument(message)
}

/// One of the double's own limits: no real-server equivalent, so the client
/// sees `Error::Grpc { ResourceExhausted, .. }`.
pub(crate) fn full(message: impl Into<String>) -> Status {
    Status::resource_exhausted(message)
}

/// An injected append failure or a lost answer: UNAVAILABLE, as the server's
/// `ServerNotReady`; the client maps it to `Error::ServerError`.
pub(crate) fn not_ready() -> Status {
    Status::unavailable("Server Is Not Ready (injected by the KurrentDB test double)")
}

/// The end of a subscription dropped by the test (or by `stop`): UNAVAILABLE,
/// what a client sees when the connection to its node goes away.
pub(crate) fn subscription_dropped() -> Status {
    Status::unavailable("Subscription dropped (by the KurrentDB test double)")
}
