//! Importing another tool's history, line by line: each line is one
//! atomic append of its own, so a bad line is reported and skipped and
//! never stops the good ones or leaves half an entity; a line the ledger
//! already holds (by its ids) is a duplicate, so importing a file again
//! adds nothing. Reading a file's format into lines is the adapter's.

use rapport_domain::{NewEvent, StreamName, Timestamp};
use rapport_store::{EventStore, ExpectedVersion, StoreError};

use crate::error::AppError;

/// One line made ready to append: a new contact (`NoStream`) or a fact
/// about one already registered (`StreamExists`), or a policy.
#[derive(Debug)]
pub struct ImportLine {
    /// Its line number in the file, for the summary.
    pub line: usize,
    pub stream: StreamName,
    pub expected: ExpectedVersion,
    pub event: NewEvent,
}

/// What an import did, line by line.
#[derive(Debug, Default)]
pub struct ImportSummary {
    pub imported: u64,
    pub duplicates: u64,
    /// Line numbers and why each was refused.
    pub rejected: Vec<(usize, String)>,
}

impl ImportSummary {
    /// Adds what another chunk's import did.
    pub fn absorb(&mut self, other: ImportSummary) {
        self.imported += other.imported;
        self.duplicates += other.duplicates;
        self.rejected.extend(other.rejected);
    }
}

/// Appends a chunk in file order, each line an atomic append of its own,
/// all in one batch: positions follow the file and the lines share commits.
pub async fn append_lines(
    store: &dyn EventStore,
    now: Timestamp,
    lines: Vec<ImportLine>,
    summary: &mut ImportSummary,
) -> Result<(), AppError> {
    let head = store.head().await?.last_position;
    let clock = crate::ledger::clock_rules(store).await?;
    // Nothing dated beyond the clock's skew into the future.
    let lines: Vec<ImportLine> = lines
        .into_iter()
        .filter_map(|line| match clock.check_fact(line.event.occurred_at, now) {
            Ok(()) => Some(line),
            Err(refusal) => {
                summary.rejected.push((line.line, refusal.to_string()));
                None
            }
        })
        .collect();
    let asked: Vec<(usize, StreamName, ExpectedVersion)> = lines
        .iter()
        .map(|line| (line.line, line.stream, line.expected))
        .collect();
    let appends = lines
        .into_iter()
        .map(|line| (line.stream, line.expected, vec![line.event]))
        .collect();
    let results = store.append_batch(appends).await?;
    // A line repeated within the batch is answered with its twin's position.
    let mut written = std::collections::HashSet::new();
    for ((line, stream, expected), result) in asked.into_iter().zip(results) {
        match result {
            Ok(appended) if Some(appended.position) <= head || !written.insert(appended.position) => {
                summary.duplicates += 1;
            }
            Ok(_) => summary.imported += 1,
            Err(StoreError::WrongExpectedVersion { .. }) if expected == ExpectedVersion::NoStream => {
                summary
                    .rejected
                    .push((line, format!("{stream} already exists with other content")));
            }
            Err(StoreError::WrongExpectedVersion { .. }) if expected == ExpectedVersion::StreamExists => {
                summary.rejected.push((
                    line,
                    format!("{stream} was never registered: its contact line must come first"),
                ));
            }
            Err(error) if error.is_caller_error() => summary.rejected.push((line, error.to_string())),
            Err(error) => return Err(AppError::internal(format!("appending line {line}: {error}"))),
        }
    }
    Ok(())
}
