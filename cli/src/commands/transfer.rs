//! `import` and `export`. The formats are in docs/import.md. Every line is
//! one entity appended on its own: a bad line is reported and skipped, and
//! never stops the good ones or leaves half an entity. Ids are derived from
//! the content when a line gives none, keyed with the ledger's secret (an id
//! must not confirm a guessed phone number), so importing a file again adds
//! nothing, and an interrupted import resumes by running it again.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use rapport_domain::{
    Channel, ContactId, ContactRegistered, Event, LedgerDigest, NewEvent, Pii, Position, StreamName, Timestamp,
};
use rapport_store::{
    EventStore, ExpectedVersion, Finding, FindingKind, Ledger, LedgerLocation, OpenOptions, RawEvent, StoreError,
    Verification, Verifier,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use uuid::Uuid;

use rapport_app::import::{ImportLine, ImportSummary};

use super::Invocation;
use super::inspect::{open_read_only, parse_moment, resolve};
use crate::Outcome;

/// Lines parsed and appended together, in one commit: a larger chunk
/// writes each index page it touches fewer times (512 lines a chunk
/// imported 56,000 events/s, 8,192 lines 75,000).
const CHUNK_LINES: usize = 8_192;
/// Rejected lines listed in the summary (all are counted).
const REJECTIONS_SHOWN: usize = 20;
/// The longest line read.
const LINE_BYTES_MAX: usize = 256 * 1024;
/// Ids derived from imported content, under the ledger's pseudonym key.
struct DerivedIds([u8; 32]);

impl DerivedIds {
    fn id(&self, what: &str) -> Uuid {
        rapport_store::sealing::pseudonymous_id(&self.0, what)
    }
}

/// A contact, as a CSV row or a JSONL `{"kind": "contact", …}` line.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ContactLine {
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(default, alias = "display_name")]
    display_name: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default, alias = "wechat_id")]
    wechat_id: Option<String>,
    #[serde(default)]
    email: Option<String>,
    owner: String,
    #[serde(default, alias = "primary_channel")]
    primary_channel: Option<String>,
    #[serde(default, alias = "time_zone")]
    time_zone: Option<String>,
    /// In CSV: tags separated by `;`.
    #[serde(default)]
    tags: Option<TagList>,
    #[serde(default, alias = "registered_at")]
    registered_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TagList {
    List(Vec<String>),
    Joined(String),
}

/// An event, as `rapport export` writes it; only `type` and `payload` are
/// required (with `contactId` or `stream`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventLine {
    #[serde(default)]
    event_id: Option<Uuid>,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    contact_id: Option<Uuid>,
    #[serde(default)]
    version: Option<u64>,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    schema_version: Option<u16>,
    occurred_at: String,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    correlation_id: Option<Uuid>,
    #[serde(default)]
    causation_id: Option<Uuid>,
    payload: serde_json::Value,
    #[serde(default)]
    pii: Option<Pii>,
    /// Personal data sealed under the exporting ledger's keys: refused, since
    /// this ledger cannot open it (export with --with-personal-data).
    #[serde(default)]
    sealed_pii: Option<String>,
    // Written by export for readers and `verify --export`; the importing
    // ledger sets its own.
    #[serde(default, rename = "position")]
    _position: Option<String>,
    #[serde(default, rename = "recordedAt")]
    _recorded_at: Option<String>,
    #[serde(default, rename = "piiDigest")]
    _pii_digest: Option<String>,
    #[serde(default, rename = "hash")]
    _hash: Option<String>,
    #[serde(default, rename = "ledgerDigest")]
    _ledger_digest: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum JsonLine {
    Contact(Box<ContactLine>),
    Event(Box<EventLine>),
}

fn channel(text: Option<&str>) -> anyhow::Result<Channel> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Channel::Wechat);
    };
    Channel::ALL
        .into_iter()
        .find(|channel| channel.as_str().eq_ignore_ascii_case(text))
        .with_context(|| format!("unknown channel '{text}' (WECHAT, WECOM, SMS, EMAIL, PHONE or OTHER)"))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn contact_entity(
    line: usize,
    contact: ContactLine,
    actor: &str,
    now: Timestamp,
    ids: &DerivedIds,
) -> anyhow::Result<ImportLine> {
    let pii = Pii {
        display_name: non_empty(contact.display_name),
        phone: non_empty(contact.phone),
        wechat_id: non_empty(contact.wechat_id),
        email: non_empty(contact.email),
    };
    let identity = [&pii.phone, &pii.wechat_id, &pii.email, &pii.display_name]
        .into_iter()
        .flatten()
        .next()
        .map(|value| value.to_lowercase());
    let contact_id = match (contact.id, identity) {
        (Some(id), _) => ContactId(id),
        (None, Some(identity)) => ContactId(ids.id(&format!("contact:{identity}"))),
        (None, None) => bail!("a contact needs an id, or a name, phone, WeChat id or email"),
    };
    let tags = match contact.tags {
        None => vec![],
        Some(TagList::List(tags)) => tags,
        Some(TagList::Joined(joined)) => joined
            .split(';')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let registered = ContactRegistered {
        owner: contact.owner.trim().to_owned(),
        primary_channel: channel(contact.primary_channel.as_deref())?,
        time_zone: non_empty(contact.time_zone),
        tags,
    };
    let occurred_at = match non_empty(contact.registered_at) {
        Some(text) => parse_moment(&text)?,
        None => now,
    };
    let event_id = ids.id(&format!("registered:{}", contact_id.0));
    let mut event = NewEvent::new(event_id, registered, occurred_at, actor);
    if pii != Pii::default() {
        event = event.with_pii(pii);
    }
    let stream = StreamName::Contact(contact_id);
    event.validate(&stream)?;
    Ok(ImportLine {
        line,
        stream,
        expected: ExpectedVersion::NoStream,
        event,
    })
}

fn event_entity(line: usize, raw: &str, input: EventLine, actor: &str, ids: &DerivedIds) -> anyhow::Result<ImportLine> {
    if input.sealed_pii.is_some() && input.pii.is_none() {
        bail!(
            "its personal data is sealed under the exporting ledger's keys, which this ledger does not have: \
             export with --with-personal-data and pipe it straight into import"
        );
    }
    let stream: StreamName = match (input.stream.as_deref(), input.contact_id) {
        (Some(stream), _) => stream.parse()?,
        (None, Some(id)) => StreamName::Contact(ContactId(id)),
        (None, None) => bail!("an event needs a stream or a contactId"),
    };
    let payload = serde_json::to_vec(&input.payload)?;
    let schema_version = match input.schema_version {
        Some(version) => version,
        None => Event::decode(&input.event_type, 1, &payload)
            .map(|e| e.schema_version())
            .unwrap_or(1),
    };
    let event = Event::decode(&input.event_type, schema_version, &payload)?;
    let occurred_at = parse_moment(&input.occurred_at)?;
    let event_id = input
        .event_id
        .unwrap_or_else(|| ids.id(&format!("line:{}", raw.trim())));
    let new_event = NewEvent {
        event_id,
        event,
        pii: input.pii,
        occurred_at,
        actor: input.actor.unwrap_or_else(|| actor.to_owned()),
        correlation_id: input.correlation_id.unwrap_or(event_id),
        causation_id: input.causation_id,
    };
    new_event.validate(&stream)?;
    let registration = matches!(new_event.event, Event::ContactRegistered(_));
    // A group's stream opens with its GroupCreated, and only once.
    let creation = matches!(new_event.event, Event::GroupCreated(_));
    // A contact's stream opens with its registration and with nothing
    // else: a fact for a contact never registered would be an orphan.
    let expected = match (stream, input.version) {
        (StreamName::Contact(_), None | Some(0)) if registration => ExpectedVersion::NoStream,
        (StreamName::Contact(_), _) if registration => {
            bail!("ContactRegistered can only be version 0 of a contact's stream")
        }
        (StreamName::Contact(_), Some(0)) => bail!(
            "version 0 of a contact's stream is its ContactRegistered, not {}",
            new_event.event.event_type()
        ),
        (StreamName::Contact(_), None) => ExpectedVersion::StreamExists,
        (StreamName::Group(_), None | Some(0)) if creation => ExpectedVersion::NoStream,
        (StreamName::Group(_), _) if creation => bail!("GroupCreated can only be version 0 of a group's stream"),
        (_, None) => ExpectedVersion::Any,
        (_, Some(0)) => ExpectedVersion::NoStream,
        (_, Some(version)) => ExpectedVersion::Exact(version - 1),
    };
    Ok(ImportLine {
        line,
        stream,
        expected,
        event: new_event,
    })
}

enum Format {
    Csv,
    Jsonl,
}

fn format_of(file: &str) -> anyhow::Result<Format> {
    if file == "-" || file.ends_with(".jsonl") || file.ends_with(".ndjson") {
        Ok(Format::Jsonl)
    } else if file.ends_with(".csv") {
        Ok(Format::Csv)
    } else {
        bail!(
            "'{file}': import reads .csv (contacts) or .jsonl (contacts and events), or - for JSONL on standard input"
        )
    }
}

fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    match total {
        Some(total) => {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} lines  {per_sec}  ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        }
        None => indicatif::ProgressBar::new_spinner(),
    }
}

pub async fn import(ctx: &Invocation, file: &str) -> anyhow::Result<Outcome> {
    let json = ctx.json;
    let format = format_of(file)?;
    // No default policy yet: an imported export brings its own.
    let store = match Ledger::open(&ctx.store, OpenOptions::writing_on(Arc::clone(&ctx.clock))).await {
        Ok(store) => store,
        Err(StoreError::Unavailable(why)) if matches!(ctx.store, LedgerLocation::File(_)) => bail!(
            "{why}: stop `rapport serve` and import again, or send the events to the running server with the ingestEvents mutation (docs/import.md)"
        ),
        Err(error) => return Err(error).with_context(|| format!("opening the ledger {}", ctx.store)),
    };
    let ids = DerivedIds(
        store
            .pseudonym_key()
            .context("the ledger was opened without its master key")?,
    );
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("opening {file}"))?,
        ))
    };
    let total = if file == "-" {
        None
    } else {
        let counted = std::io::BufReader::new(std::fs::File::open(file)?).lines().count() as u64;
        Some(counted.saturating_sub(u64::from(matches!(format, Format::Csv))))
    };
    let bar = progress_bar(total);
    let now = ctx.clock.now();
    let actor = "rapport-import";
    let mut summary = ImportSummary::default();
    let mut chunk = Vec::with_capacity(CHUNK_LINES);
    let mut lines = reader.lines().enumerate();
    let mut csv_header: Option<csv::StringRecord> = None;
    let mut policy_settled = false;
    let mut in_flight: Option<tokio::task::JoinHandle<Result<ImportSummary, rapport_app::error::AppError>>> = None;
    loop {
        let next = lines.next();
        let finished = next.is_none();
        if let Some((index, line)) = next {
            let number = index + 1;
            let line = match line {
                Ok(line) => line,
                Err(error) => {
                    summary.rejected.push((number, format!("unreadable: {error}")));
                    continue;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            if line.len() > LINE_BYTES_MAX {
                summary
                    .rejected
                    .push((number, format!("longer than {LINE_BYTES_MAX} bytes")));
                continue;
            }
            let entity = match format {
                Format::Csv if csv_header.is_none() => {
                    csv_header = Some(parse_csv_record(&line)?);
                    continue;
                }
                Format::Csv => parse_csv_record(&line).and_then(|record| {
                    let header = csv_header.as_ref().context("no header")?;
                    let contact: ContactLine = record
                        .deserialize(Some(header))
                        .context("the row does not fit the header")?;
                    contact_entity(number, contact, actor, now, &ids)
                }),
                Format::Jsonl => serde_json::from_str::<JsonLine>(&line)
                    .context("not a contact or event line")
                    .and_then(|parsed| match parsed {
                        JsonLine::Contact(contact) => contact_entity(number, *contact, actor, now, &ids),
                        JsonLine::Event(event) => event_entity(number, &line, *event, actor, &ids),
                    }),
            };
            match entity {
                Ok(entity) => chunk.push(entity),
                Err(error) => summary.rejected.push((number, format!("{error:#}"))),
            }
            bar.inc(1);
        }
        if chunk.len() >= CHUNK_LINES || (finished && !chunk.is_empty()) {
            // A new ledger starts with its policy: the file's own (an export
            // begins with it), or else the default, before any contact.
            if !policy_settled {
                if chunk.first().is_some_and(|entity| entity.stream != StreamName::Policy) {
                    rapport_app::ledger::ensure_policy(&store, actor, ctx.clock.now()).await?;
                }
                policy_settled = true;
            }
            // The next chunk is parsed while this one is written; it is
            // appended only once this one is, so the ledger's head before
            // each chunk still tells duplicates from new lines.
            if let Some(writing) = in_flight.take() {
                summary.absorb(writing.await.context("the import's append task failed")??);
            }
            let (store, now, lines) = (store.clone(), ctx.clock.now(), std::mem::take(&mut chunk));
            in_flight = Some(tokio::spawn(async move {
                let mut appended = ImportSummary::default();
                rapport_app::import::append_lines(&store, now, lines, &mut appended)
                    .await
                    .map(|()| appended)
            }));
        }
        if finished {
            break;
        }
    }
    if let Some(writing) = in_flight.take() {
        summary.absorb(writing.await.context("the import's append task failed")??);
    }
    bar.finish_and_clear();
    rapport_app::ledger::ensure_policy(&store, actor, ctx.clock.now()).await?;
    summary.rejected.sort();
    if json {
        let rejected: Vec<_> = summary
            .rejected
            .iter()
            .map(|(line, reason)| json!({ "line": line, "reason": reason }))
            .collect();
        println!(
            "{}",
            json!({ "imported": summary.imported, "duplicates": summary.duplicates, "rejected": rejected })
        );
    } else {
        println!("imported    {}", summary.imported);
        println!("duplicates  {} (already in the ledger, skipped)", summary.duplicates);
        println!("rejected    {}", summary.rejected.len());
        for (line, reason) in summary.rejected.iter().take(REJECTIONS_SHOWN) {
            println!("  line {line}: {reason}");
        }
        if summary.rejected.len() > REJECTIONS_SHOWN {
            println!(
                "  … and {} more (use --json for all)",
                summary.rejected.len() - REJECTIONS_SHOWN
            );
        }
    }
    Ok(if summary.rejected.is_empty() {
        Outcome::Yes
    } else {
        Outcome::No
    })
}

fn parse_csv_record(line: &str) -> anyhow::Result<csv::StringRecord> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let record = reader
        .records()
        .next()
        .context("an empty CSV line")?
        .context("not a CSV line")?;
    Ok(record.iter().map(str::trim).collect())
}

/// One event as `export` writes it: everything import needs, and, with
/// the stored payload byte for byte and the hashes, everything `verify
/// --export` needs to check the chain against a saved digest.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportedEvent {
    kind: String,
    event_id: Uuid,
    stream: String,
    version: u64,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: u16,
    occurred_at: String,
    actor: String,
    correlation_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    causation_id: Option<Uuid>,
    /// The stored bytes, never re-encoded: the event hash covers them.
    payload: Box<RawValue>,
    /// Only with --with-personal-data (an access request, or a move to
    /// another ledger through a pipe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pii: Option<Box<RawValue>>,
    /// Otherwise: as the ledger holds it, sealed with the contact's key (hex),
    /// unreadable without the ledger and for good once they are erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed_pii: Option<String>,
    position: String,
    recorded_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pii_digest: Option<String>,
    hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ledger_digest: Option<String>,
}

fn raw_json(bytes: &[u8], position: Position, what: &str) -> anyhow::Result<Box<RawValue>> {
    let text =
        String::from_utf8(bytes.to_vec()).with_context(|| format!("the {what} at position {position} is not UTF-8"))?;
    RawValue::from_string(text).with_context(|| format!("the {what} at position {position} is not JSON"))
}

fn export_line(event: &RawEvent, with_personal_data: bool) -> anyhow::Result<String> {
    let plain = match event.pii.as_ref().map(|pii| &pii.opened) {
        Some(rapport_store::Opened::Plain { json, .. }) if with_personal_data => {
            Some(raw_json(json, event.position, "personal data")?)
        }
        Some(rapport_store::Opened::Locked) if with_personal_data => bail!(
            "the personal data at position {} is sealed and this ledger was opened without its master key \
             (set RAPPORT_MASTER_KEY or RAPPORT_KEY_FILE)",
            event.position
        ),
        Some(rapport_store::Opened::Damaged) if with_personal_data => {
            bail!(
                "the personal data at position {} does not open under its contact's key",
                event.position
            )
        }
        _ => None,
    };
    let millis = |millis| Timestamp::from_millis_unchecked(millis).to_rfc3339();
    let line = ExportedEvent {
        kind: "event".to_owned(),
        event_id: event.event_id,
        stream: event.stream.clone(),
        version: event.version,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        occurred_at: millis(event.occurred_at_millis),
        actor: event.actor.clone(),
        correlation_id: event.correlation_id,
        causation_id: event.causation_id,
        payload: raw_json(&event.payload, event.position, "payload")?,
        sealed_pii: event
            .pii
            .as_ref()
            .filter(|_| plain.is_none())
            .map(|pii| hex::encode(&pii.sealed)),
        pii: plain,
        position: event.position.to_string(),
        recorded_at: millis(event.recorded_at_millis),
        pii_digest: event.pii_digest.map(hex::encode),
        hash: hex::encode(event.hash),
        ledger_digest: event.ledger_digest.map(hex::encode),
    };
    Ok(serde_json::to_string(&line)?)
}

fn hash_of(text: &str, field: &str) -> anyhow::Result<rapport_domain::Hash> {
    let bytes = hex::decode(text).with_context(|| format!("{field} is not hex"))?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("{field} is not 32 bytes"))
}

impl ExportedEvent {
    fn into_raw(self) -> anyhow::Result<RawEvent> {
        if self.kind != "event" {
            bail!("a whole-ledger export holds only event lines, not '{}'", self.kind);
        }
        let moment = |text: &str, field: &str| -> anyhow::Result<i64> {
            Ok(text
                .parse::<Timestamp>()
                .with_context(|| format!("{field} '{text}'"))?
                .as_millis())
        };
        Ok(RawEvent {
            position: self
                .position
                .parse()
                .map_err(|e: rapport_domain::PositionError| anyhow::anyhow!(e))?,
            stream: self.stream,
            version: self.version,
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: self.schema_version,
            occurred_at_millis: moment(&self.occurred_at, "occurredAt")?,
            recorded_at_millis: moment(&self.recorded_at, "recordedAt")?,
            actor: self.actor,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            payload: self.payload.get().as_bytes().to_vec(),
            pii_digest: self
                .pii_digest
                .as_deref()
                .map(|h| hash_of(h, "piiDigest"))
                .transpose()?,
            // The chain covers the personal data's digest, which is checked;
            // the data itself is keyed by what only the ledger holds.
            pii: (self.pii.is_some() || self.sealed_pii.is_some()).then(|| rapport_store::StoredPii {
                sealed: Vec::new(),
                opened: rapport_store::Opened::Locked,
            }),
            hash: hash_of(&self.hash, "hash")?,
            ledger_digest: self
                .ledger_digest
                .as_deref()
                .map(|h| hash_of(h, "ledgerDigest"))
                .transpose()?,
        })
    }
}

/// Checks a whole-ledger export line by line: every hash link, and, with
/// `saved`, that it reaches and matches a digest recorded earlier.
pub fn verify_export(file: &str, saved: Option<LedgerDigest>) -> anyhow::Result<Verification> {
    let reader = std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("opening {file}"))?);
    let mut verifier = Verifier::new(saved);
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let event = line
            .context("reading")
            .and_then(|line| Ok(serde_json::from_str::<ExportedEvent>(&line)?))
            .and_then(ExportedEvent::into_raw);
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                let finding = Finding {
                    position: verifier.position(),
                    stream: None,
                    kind: FindingKind::Unreadable(format!("line {number}: {error:#}")),
                };
                return Ok(verifier.report(Some(finding)));
            }
        };
        if let Err(finding) = verifier.check(&event) {
            return Ok(verifier.report(Some(finding)));
        }
    }
    Ok(verifier.report(None))
}

/// Writes the ledger (or one contact's history, personal data included,
/// for a data-access request) as JSONL that `import` reads back and, for
/// the whole ledger, `verify --export` checks.
pub async fn export(ctx: &Invocation, contact: Option<&str>, with_personal_data: bool) -> anyhow::Result<Outcome> {
    let store = open_read_only(&ctx.store).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match contact {
        Some(text) => {
            let model = super::inspect::known_read_model(&store, None).await?;
            let id = resolve(&model, text)?;
            let mut from = 0;
            loop {
                let page = store
                    .read_stream_raw(StreamName::Contact(id), from, rapport_store::READ_LIMIT_MAX)
                    .await?;
                let Some(last) = page.last().map(|event| event.version) else {
                    break;
                };
                for event in &page {
                    writeln!(out, "{}", export_line(event, true)?)?;
                }
                from = last + 1;
            }
        }
        None => {
            let mut after: Option<Position> = None;
            loop {
                let page = store.read_all_raw(after, rapport_store::READ_LIMIT_MAX).await?;
                let Some(last) = page.last().map(|event| event.position) else {
                    break;
                };
                for event in &page {
                    writeln!(out, "{}", export_line(event, with_personal_data)?)?;
                }
                after = Some(last);
            }
        }
    }
    out.flush()?;
    Ok(Outcome::Yes)
}
