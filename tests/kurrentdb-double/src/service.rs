//! The gRPC services: `Streams` (Read, Append, Delete, Tombstone; BatchAppend
//! answers UNIMPLEMENTED) and `ServerFeatures`. Each handler checks its
//! request, takes the log's lock for one short decision, and answers as the
//! server does.

use std::sync::Arc;

use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::filter::{Filter, Subject};
use crate::log::{self, Committed, Expected, Proposed, Refusal};
use crate::proto::event_store::client::server_features::server_features_server::ServerFeatures;
use crate::proto::event_store::client::server_features::{SupportedMethod, SupportedMethods};
use crate::proto::event_store::client::streams::append_resp::{self, wrong_expected_version as wev};
use crate::proto::event_store::client::streams::read_req::options::{
    self as read_options, CountOption, FilterOption, ReadDirection, StreamOption, filter_options,
};
use crate::proto::event_store::client::streams::streams_server::Streams;
use crate::proto::event_store::client::streams::{
    AppendReq, AppendResp, DeleteReq, DeleteResp, ReadReq, ReadResp, TombstoneReq, TombstoneResp, append_req,
    delete_req, delete_resp, read_req, tombstone_req, tombstone_resp,
};
use crate::proto::event_store::client::{self as shared_proto};
use crate::reading::{self, AllFrom, AllRead, StreamFrom, StreamRead};
use crate::state::Shared;
use crate::status;
use crate::subscription::{self, AllSubscription, StreamSubscription};
use crate::wire::{self, EMPTY, UuidForm};

/// The most bytes one append may carry, the server's default `MaxAppendSize`.
pub(crate) const APPEND_BYTES_MAX: usize = 1024 * 1024;
/// The search window of a filter without `max`: the server's read batch.
const DEFAULT_FILTER_WINDOW: u64 = 32;
/// The server version the double announces.
const SERVER_VERSION: &str = "25.0.0";

/// The `Streams` service.
#[derive(Debug)]
pub(crate) struct StreamsService {
    shared: Arc<Shared>,
}

impl StreamsService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        StreamsService { shared }
    }
}

/// The three request kinds each carry their own copy of the same oneof.
macro_rules! expected_revision {
    ($option:expr, $($kind:ident)::+) => {
        match $option {
            Some($($kind)::+::Revision(revision)) => Ok(Expected::Revision(revision)),
            Some($($kind)::+::NoStream(_)) => Ok(Expected::NoStream),
            Some($($kind)::+::Any(_)) => Ok(Expected::Any),
            Some($($kind)::+::StreamExists(_)) => Ok(Expected::StreamExists),
            None => Err(status::invalid_argument("'expectedStreamRevision' is required")),
        }
    };
}

#[tonic::async_trait]
impl Streams for StreamsService {
    async fn read(&self, request: Request<ReadReq>) -> Result<Response<BoxStream<ReadResp>>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| status::invalid_argument("'options' is required"))?;
        let shared = self.shared.clone();
        let answer = match plan(options)? {
            Plan::StreamRead(read) => reading::read_stream(shared, read)?,
            Plan::AllRead(read) => reading::read_all(shared, read)?,
            Plan::StreamSubscription(subscription) => subscription::subscribe_to_stream(shared, subscription)?,
            Plan::AllSubscription(subscription) => subscription::subscribe_to_all(shared, subscription)?,
        };
        Ok(Response::new(answer))
    }

    async fn append(&self, request: Request<Streaming<AppendReq>>) -> Result<Response<AppendResp>, Status> {
        let mut messages = request.into_inner();
        let first = messages.message().await?.and_then(|first| first.content);
        let Some(append_req::Content::Options(options)) = first else {
            return Err(status::invalid_argument("an append starts with its options"));
        };
        let stream = wire::stream_name(options.stream_identifier)?;
        let expected = expected_revision!(
            options.expected_stream_revision,
            append_req::options::ExpectedStreamRevision
        )?;
        let mut proposed = Vec::new();
        let mut bytes = 0_usize;
        while let Some(message) = messages.message().await? {
            let Some(append_req::Content::ProposedMessage(message)) = message.content else {
                return Err(status::invalid_argument("an append carries its options once, first"));
            };
            let event = proposed_event(message)?;
            let size = log::record_bytes(&stream, &event.event_type, &event.data, &event.custom_metadata);
            bytes = bytes.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
            if bytes > APPEND_BYTES_MAX {
                return Err(status::max_append_size_exceeded(APPEND_BYTES_MAX));
            }
            proposed.push(event);
        }
        if self.shared.take_append_failure() {
            return Err(status::not_ready());
        }
        let outcome = self.shared.log().append(&stream, expected, proposed, wire::ticks_now());
        match outcome {
            Ok(committed) => {
                if committed.wrote {
                    self.shared.appended();
                }
                if self.shared.take_lost_answer() {
                    return Err(status::not_ready());
                }
                Ok(Response::new(success(committed)))
            }
            Err(Refusal::WrongExpectedVersion { current }) => {
                Ok(Response::new(wrong_expected_version(current, expected)))
            }
            Err(Refusal::StreamDeleted) => Err(status::stream_deleted(&stream)),
            Err(Refusal::Full) => Err(full()),
        }
    }

    async fn delete(&self, request: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| status::invalid_argument("'options' is required"))?;
        let stream = wire::stream_name(options.stream_identifier)?;
        let expected = expected_revision!(
            options.expected_stream_revision,
            delete_req::options::ExpectedStreamRevision
        )?;
        let outcome = self.shared.log().delete(&stream, expected, wire::ticks_now());
        let position = self.deleted(&stream, expected, outcome)?;
        let position = delete_resp::Position {
            commit_position: position,
            prepare_position: position,
        };
        Ok(Response::new(DeleteResp {
            position_option: Some(delete_resp::PositionOption::Position(position)),
        }))
    }

    async fn tombstone(&self, request: Request<TombstoneReq>) -> Result<Response<TombstoneResp>, Status> {
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| status::invalid_argument("'options' is required"))?;
        let stream = wire::stream_name(options.stream_identifier)?;
        let expected = expected_revision!(
            options.expected_stream_revision,
            tombstone_req::options::ExpectedStreamRevision
        )?;
        let outcome = self.shared.log().tombstone(&stream, expected, wire::ticks_now());
        let position = self.deleted(&stream, expected, outcome)?;
        let position = tombstone_resp::Position {
            commit_position: position,
            prepare_position: position,
        };
        Ok(Response::new(TombstoneResp {
            position_option: Some(tombstone_resp::PositionOption::Position(position)),
        }))
    }
}

impl StreamsService {
    /// The answer to a delete or tombstone: the server raises its errors as
    /// statuses here, a wrong expected version included.
    fn deleted(&self, stream: &str, expected: Expected, outcome: Result<u64, Refusal>) -> Result<u64, Status> {
        match outcome {
            Ok(position) => {
                self.shared.appended();
                Ok(position)
            }
            Err(Refusal::WrongExpectedVersion { current }) => {
                let actual = current.map_or(-1, |revision| i64::try_from(revision).unwrap_or(i64::MAX));
                Err(status::wrong_expected_version(stream, expected.as_version(), actual))
            }
            Err(Refusal::StreamDeleted) => Err(status::stream_deleted(stream)),
            Err(Refusal::Full) => Err(full()),
        }
    }
}

fn full() -> Status {
    status::full(format!(
        "the KurrentDB test double holds at most {} records and {} bytes",
        log::EVENTS_MAX,
        log::BYTES_MAX
    ))
}

/// A proposed event, with the metadata the server requires.
fn proposed_event(message: append_req::ProposedMessage) -> Result<Proposed, Status> {
    let id = wire::event_id(message.id)?;
    let mut metadata = message.metadata;
    let event_type = metadata
        .remove("type")
        .ok_or_else(|| status::required_metadata_missing("type"))?;
    let content_type = metadata
        .remove("content-type")
        .ok_or_else(|| status::required_metadata_missing("content-type"))?;
    Ok(Proposed {
        id,
        event_type,
        // Like the server's classic Append, only JSON is remembered: any other
        // content type reads back as application/octet-stream.
        is_json: content_type == "application/json",
        data: message.data,
        custom_metadata: message.custom_metadata,
    })
}

fn success(committed: Committed) -> AppendResp {
    let current_revision_option = Some(match committed.current_revision {
        Some(revision) => append_resp::success::CurrentRevisionOption::CurrentRevision(revision),
        None => append_resp::success::CurrentRevisionOption::NoStream(EMPTY),
    });
    let position_option = Some(match committed.position {
        Some(position) => append_resp::success::PositionOption::Position(append_resp::Position {
            commit_position: position,
            prepare_position: position,
        }),
        None => append_resp::success::PositionOption::NoPosition(EMPTY),
    });
    let success = append_resp::Success {
        current_revision_option,
        position_option,
    };
    AppendResp {
        result: Some(append_resp::Result::Success(success)),
    }
}

/// The server fills both the current fields and the 20.6.0 ones.
fn wrong_expected_version(current: Option<u64>, expected: Expected) -> AppendResp {
    let (current_now, current_old) = match current {
        Some(revision) => (
            wev::CurrentRevisionOption::CurrentRevision(revision),
            wev::CurrentRevisionOption2060::CurrentRevision2060(revision),
        ),
        None => (
            wev::CurrentRevisionOption::CurrentNoStream(EMPTY),
            wev::CurrentRevisionOption2060::NoStream2060(EMPTY),
        ),
    };
    let (expected_now, expected_old) = match expected {
        Expected::Any => (
            wev::ExpectedRevisionOption::ExpectedAny(EMPTY),
            wev::ExpectedRevisionOption2060::Any2060(EMPTY),
        ),
        Expected::StreamExists => (
            wev::ExpectedRevisionOption::ExpectedStreamExists(EMPTY),
            wev::ExpectedRevisionOption2060::StreamExists2060(EMPTY),
        ),
        Expected::NoStream => (
            wev::ExpectedRevisionOption::ExpectedNoStream(EMPTY),
            wev::ExpectedRevisionOption2060::ExpectedRevision2060(u64::MAX),
        ),
        Expected::Revision(revision) => (
            wev::ExpectedRevisionOption::ExpectedRevision(revision),
            wev::ExpectedRevisionOption2060::ExpectedRevision2060(revision),
        ),
    };
    let wrong = append_resp::WrongExpectedVersion {
        current_revision_option_20_6_0: Some(current_old),
        expected_revision_option_20_6_0: Some(expected_old),
        current_revision_option: Some(current_now),
        expected_revision_option: Some(expected_now),
    };
    AppendResp {
        result: Some(append_resp::Result::WrongExpectedVersion(wrong)),
    }
}

/// What a read request asks for: the server's four supported combinations.
enum Plan {
    StreamRead(StreamRead),
    AllRead(AllRead),
    StreamSubscription(StreamSubscription),
    AllSubscription(AllSubscription),
}

fn plan(options: read_req::Options) -> Result<Plan, Status> {
    let form = UuidForm::from_option(options.uuid_option)?;
    let backwards = match ReadDirection::try_from(options.read_direction) {
        Ok(ReadDirection::Forwards) => false,
        Ok(ReadDirection::Backwards) => true,
        Err(_) => return Err(status::invalid_argument("'readDirection' is not a valid direction")),
    };
    let stream_option = options
        .stream_option
        .ok_or_else(|| status::invalid_argument("'streamOption' is required"))?;
    let count_option = options
        .count_option
        .ok_or_else(|| status::invalid_argument("'countOption' is required"))?;
    let filter = match options.filter_option {
        Some(FilterOption::Filter(filter)) => Some(filter),
        Some(FilterOption::NoFilter(_)) => None,
        None => return Err(status::invalid_argument("'filterOption' is required")),
    };
    let invalid =
        || status::invalid_argument("The combination of stream, count, direction and filter options is invalid.");
    match (stream_option, count_option) {
        (StreamOption::Stream(stream), CountOption::Count(count)) => {
            if filter.is_some() {
                return Err(invalid());
            }
            let compatibility = options.control_option.map_or(0, |control| control.compatibility);
            Ok(Plan::StreamRead(StreamRead {
                stream: wire::stream_name(stream.stream_identifier)?,
                from: stream_from(stream.revision_option)?,
                backwards,
                count,
                ends_with_last_position: compatibility >= 1,
                form,
            }))
        }
        (StreamOption::All(all), CountOption::Count(count)) => Ok(Plan::AllRead(AllRead {
            from: all_from(all.all_option)?,
            backwards,
            count,
            filter: filter
                .map(|filter| compile(filter).map(|(filter, _)| filter))
                .transpose()?,
            form,
        })),
        (StreamOption::Stream(stream), CountOption::Subscription(_)) => {
            if backwards || filter.is_some() {
                return Err(invalid());
            }
            Ok(Plan::StreamSubscription(StreamSubscription {
                stream: wire::stream_name(stream.stream_identifier)?,
                from: stream_from(stream.revision_option)?,
                form,
            }))
        }
        (StreamOption::All(all), CountOption::Subscription(_)) => {
            if backwards {
                return Err(invalid());
            }
            let filter = filter.map(compile).transpose()?;
            Ok(Plan::AllSubscription(AllSubscription {
                from: all_from(all.all_option)?,
                filter,
                form,
            }))
        }
    }
}

fn stream_from(option: Option<read_options::stream_options::RevisionOption>) -> Result<StreamFrom, Status> {
    use read_options::stream_options::RevisionOption;
    match option {
        Some(RevisionOption::Start(_)) => Ok(StreamFrom::Start),
        Some(RevisionOption::End(_)) => Ok(StreamFrom::End),
        Some(RevisionOption::Revision(revision)) => Ok(StreamFrom::Revision(revision)),
        None => Err(status::invalid_argument("'revisionOption' is required")),
    }
}

fn all_from(option: Option<read_options::all_options::AllOption>) -> Result<AllFrom, Status> {
    use read_options::all_options::AllOption;
    match option {
        Some(AllOption::Start(_)) => Ok(AllFrom::Start),
        Some(AllOption::End(_)) => Ok(AllFrom::End),
        Some(AllOption::Position(position)) => Ok(AllFrom::Position {
            commit: position.commit_position,
            prepare: position.prepare_position,
        }),
        None => Err(status::invalid_argument("'allOption' is required")),
    }
}

/// A client's filter, and its checkpoint interval in considered records.
fn compile(options: read_options::FilterOptions) -> Result<(Filter, u64), Status> {
    let (subject, expression) = match options.filter {
        Some(filter_options::Filter::StreamIdentifier(expression)) => (Subject::StreamName, expression),
        Some(filter_options::Filter::EventType(expression)) => (Subject::EventType, expression),
        None => {
            return Err(status::invalid_argument(
                "a filter needs a stream identifier or an event type expression",
            ));
        }
    };
    let window = match options.window {
        Some(filter_options::Window::Max(max)) => u64::from(max),
        Some(filter_options::Window::Count(_)) => DEFAULT_FILTER_WINDOW,
        None => return Err(status::invalid_argument("a filter needs a window")),
    };
    let filter = Filter::new(subject, &expression.regex, expression.prefix).map_err(status::invalid_argument)?;
    let interval = u64::from(options.checkpoint_interval_multiplier).saturating_mul(window);
    Ok((filter, interval))
}

/// The `ServerFeatures` service: the client asks it when it connects.
#[derive(Debug)]
pub(crate) struct FeaturesService;

#[tonic::async_trait]
impl ServerFeatures for FeaturesService {
    async fn get_supported_methods(
        &self,
        _request: Request<shared_proto::Empty>,
    ) -> Result<Response<SupportedMethods>, Status> {
        // Lower-case names, as the server lists them. BatchAppend is left out,
        // so the client's `batch_append` says the feature is unsupported;
        // `append_to_stream` always uses Append.
        let streams = "event_store.client.streams.streams";
        let method = |name: &str, service: &str, features: &[&str]| SupportedMethod {
            method_name: name.to_owned(),
            service_name: service.to_owned(),
            features: features.iter().map(|feature| (*feature).to_owned()).collect(),
        };
        let methods = vec![
            method("read", streams, &["position", "events"]),
            method("append", streams, &[]),
            method("delete", streams, &[]),
            method("tombstone", streams, &[]),
            method(
                "getsupportedmethods",
                "event_store.client.server_features.serverfeatures",
                &[],
            ),
        ];
        Ok(Response::new(SupportedMethods {
            methods,
            event_store_server_version: SERVER_VERSION.to_owned(),
        }))
    }
}
