//! Crash-test child: appends batches to a ledger from several tasks until
//! killed, printing `ack <batch id> <size> <position>` after each
//! acknowledged append. Every event of a batch carries the batch id as its
//! correlation id and the batch size in its actor, so the parent can tell a
//! partial batch from a whole one after the crash.

use std::io::Write;

use rapport_domain::{Channel, ContactId, NewEvent, ReplyReceived, StreamName, Timestamp};
use rapport_store::{EventStore, ExpectedVersion, SqliteStore};
use uuid::Uuid;

const WRITERS: usize = 4;
const CONTACTS: u128 = 40;
const BATCH_EVENTS_MAX: u64 = 8;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: crash-appender LEDGER_PATH");
        return std::process::ExitCode::from(2);
    };
    let store = match SqliteStore::open(&path) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("crash-appender: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| tokio::spawn(append_forever(store.clone())))
        .collect();
    for task in tasks {
        if let Ok(Err(error)) = task.await {
            eprintln!("crash-appender: {error}");
        }
    }
    std::process::ExitCode::from(1)
}

async fn append_forever(store: SqliteStore) -> Result<(), rapport_store::StoreError> {
    let mut sequence: u64 = 0;
    loop {
        sequence += 1;
        let batch_id = Uuid::new_v4();
        let size = 1 + batch_id.as_u128() as u64 % BATCH_EVENTS_MAX;
        let contact = ContactId(Uuid::from_u128(1 + batch_id.as_u128() % CONTACTS));
        let events = (0..size)
            .map(|_| {
                let mut event = NewEvent::new(
                    Uuid::new_v4(),
                    ReplyReceived {
                        channel: Channel::Wechat,
                    },
                    Timestamp::from_millis_unchecked(1_700_000_000_000 + sequence as i64),
                    format!("crash-appender/{size}"),
                );
                event.correlation_id = batch_id;
                event
            })
            .collect();
        let result = store
            .append(StreamName::Contact(contact), ExpectedVersion::Any, events)
            .await?;
        let mut stdout = std::io::stdout().lock();
        // A broken pipe means the parent is gone: stop quietly.
        if writeln!(stdout, "ack {batch_id} {size} {}", result.position)
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return Ok(());
        }
    }
}
