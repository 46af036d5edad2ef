//! The command line: argument parsing, dispatch, and exit codes.

use rapport_store::LedgerLocation;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use rapport_app::Code;
use rapport_domain::Language;

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "rapport",
    version,
    about = "An event-sourced relationship ledger that gates mass sends",
    long_about = "rapport records every touch, reply, block, opt-out, complaint and deletion as an event in an \
                  append-only, tamper-evident ledger, and derives from it whether a contact may be messaged."
)]
pub struct Cli {
    /// The ledger: a file (created if missing, except where a command only
    /// reads), or a KurrentDB cluster's connection string, e.g.
    /// kurrentdb://node1:2113?tls=false (also esdb://, kurrentdb+discover://;
    /// prefix=, local= and appendBytesMax= are rapport's own settings; see
    /// docs/operations.md).
    #[arg(long, global = true, env = "RAPPORT_STORE", default_value = "rapport.db")]
    pub store: LedgerLocation,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// The language of reasons and explanations: en or zh (Simplified
    /// Chinese). Without it, LC_ALL, LC_MESSAGES or LANG decide; English
    /// when they name neither.
    #[arg(long, global = true, value_parser = parse_language)]
    pub lang: Option<Language>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// May I message this contact now? Verdict, every reason, score and best hours.
    ///
    /// Exit 0 when the send is allowed, 1 when it is not.
    ///
    /// Example: rapport check "Wang Fang" --mode mass
    Check {
        /// An id, or a name, phone, WeChat id or email that identifies one contact.
        contact: String,
        /// mass or one-to-one.
        #[arg(long, default_value = "mass")]
        mode: String,
        /// The business moment to decide at: only what had happened by then
        /// counts. RFC 3339, or a local time or date without an offset (the
        /// contact's own clock). Default now.
        #[arg(long)]
        at: Option<String>,
        /// Decide as the ledger knew it at this position (default: everything recorded).
        #[arg(long)]
        position: Option<String>,
        /// Also show how the score is made up, component by component.
        #[arg(short, long)]
        verbose: bool,
    },
    /// A contact's history, one line per event, with the score after each,
    /// in their local time and UTC; violations of the gate are marked.
    ///
    /// Example: rapport timeline "Wang Fang" --since 2026-11-01 --limit 20
    Timeline {
        /// An id, or a name, phone, WeChat id or email.
        contact: String,
        /// Only what occurred at or after this business moment (RFC 3339,
        /// or a local time or date on the contact's clock).
        #[arg(long)]
        since: Option<String>,
        /// The version the previous page ended at (its `more:` line says it).
        #[arg(long)]
        after: Option<u64>,
        /// Events on one page (default 100, at most 10,000).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Find or list contacts: by part of a name, phone (any format), WeChat
    /// id or email, by owner and by band, with their score now.
    ///
    /// Example: rapport contacts --owner alice --band cold
    Contacts {
        /// Part of a name, phone, WeChat id or email.
        search: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        /// strong, warm, cool, cold or lost.
        #[arg(long)]
        band: Option<String>,
        /// The last id of the previous page (its `more:` line says it).
        #[arg(long)]
        after: Option<String>,
        /// Contacts on one page (default 50, at most 1,000).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Touches the gate would not have allowed when they were recorded,
    /// overrides included, oldest first.
    ///
    /// Example: rapport violations --contact "Sun Li"
    Violations {
        /// Only this contact's (an id, name, phone, WeChat id or email).
        #[arg(long)]
        contact: Option<String>,
        /// The last position of the previous page (its `more:` line says it).
        #[arg(long)]
        after: Option<String>,
        /// Violations on one page (default 50, at most 1,000).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// The past on two axes: what had happened by a business moment
    /// (--as-of), as the ledger knew it at a position (--position or
    /// --known-at). State, gates, policy, and what changed.
    ///
    /// Example: rapport replay --as-of 2026-11-01 "Wang Fang" --diff 2026-11-21
    Replay {
        /// Business time: only facts that had occurred by then count. RFC 3339,
        /// or a local time or date without an offset (the contact's clock, or
        /// the policy's default zone).
        #[arg(long, required_unless_present_any = ["position", "known_at"])]
        as_of: Option<String>,
        /// Knowledge: only what the ledger had recorded by this position.
        #[arg(long, conflicts_with = "known_at")]
        position: Option<String>,
        /// Knowledge: only what the ledger had recorded by this moment.
        #[arg(long)]
        known_at: Option<String>,
        /// Show this contact's state and gates then.
        contact: Option<String>,
        /// Compare with another point: a position (knowledge) or a moment (business time).
        #[arg(long)]
        diff: Option<String>,
    },
    /// Import contacts (.csv) or contacts and events (.jsonl, or - for stdin).
    ///
    /// Idempotent: importing a file again adds nothing, so an interrupted
    /// import resumes by running it again. Exit 1 if any line was rejected.
    /// Formats: docs/import.md.
    ///
    /// Example: rapport import contacts.csv
    Import {
        /// The file, or - for JSONL on standard input.
        file: String,
    },
    /// Write the ledger, or one contact's whole history, as JSONL.
    ///
    /// `import` reads it back; for one contact it answers a data-access request.
    ///
    /// Example: rapport export "Wang Fang"
    Export {
        /// Only this contact (id, name, phone, WeChat id or email): the
        /// answer to their access request, personal data decrypted.
        contact: Option<String>,
        /// Write personal data decrypted, to move the ledger into another
        /// (`rapport export --with-personal-data | rapport import -`): pipe
        /// it, never keep it in a file. Without it personal data stays
        /// sealed with each contact's key.
        #[arg(long)]
        with_personal_data: bool,
    },
    /// Show the ledger's head position, event count and digest.
    ///
    /// Example: rapport ledger --store ./rapport.db
    Ledger,
    /// Walk every hash link and print the ledger digest; exit 1 on tampering.
    ///
    /// Save the digest somewhere outside the ledger; passing it back later
    /// also detects truncated or rewritten history.
    ///
    /// With --export, checks an export file instead of the ledger: its
    /// hash chain, and that it reaches the saved digest.
    ///
    /// Example: rapport verify --digest sha256:3f…@1200
    Verify {
        /// A digest printed earlier by `rapport verify` or `rapport ledger`.
        #[arg(long)]
        digest: Option<String>,
        /// A whole-ledger export (`rapport export > FILE`) to check instead.
        #[arg(long)]
        export: Option<String>,
    },
    /// Serve the GraphQL API (and GraphiQL) over HTTP.
    ///
    /// Example: rapport serve --demo
    Serve {
        /// Address to listen on.
        #[arg(long, env = "RAPPORT_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// On an empty ledger, first write a demo data set (about 2,000
        /// contacts, six months); then create a token per role and print them.
        #[arg(long)]
        demo: bool,
        /// Contacts in the demo data set.
        #[arg(long, default_value_t = 2_000, requires = "demo")]
        demo_contacts: usize,
    },
    /// Campaigns: the gate for a whole audience before a mass send.
    ///
    /// Example: rapport campaign preflight --tags vip
    #[command(subcommand)]
    Campaign(commands::campaign::CampaignCommand),
    /// Customer groups: may a post go in now, the group's health, and its silent members.
    ///
    /// Example: rapport group check "Spring tea" --kind promotion
    #[command(subcommand)]
    Group(commands::group::GroupCommand),
    /// Whom to write to personally today: contacts silent a week (a
    /// greeting) or two weeks (an invitation), the most valuable first,
    /// never one the gate refuses.
    ///
    /// Example: rapport suggest --owner alice
    Suggest {
        /// Only this owner's contacts.
        #[arg(long)]
        owner: Option<String>,
        /// Suggestions at most (default 20, at most 100).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Log what happened in a chat: a touch (gated like the API), a reply,
    /// a block, a deletion, a complaint, a consent or a tag.
    ///
    /// The write is the token holder's, with their role's rights.
    ///
    /// Example: RAPPORT_TOKEN=… rapport record touch "Wang Fang" --mode one-to-one
    Record(commands::record::Record),
    /// Erase a person's personal data for good, at their request: their key
    /// is destroyed, their relationship signals stay; prints the receipt.
    ///
    /// Give their contact id: a name typed here stays in the shell's history.
    ///
    /// Example: RAPPORT_TOKEN=… rapport erase 0193c5e2-… --reason "PIPL Art. 47" --request-id REQ-17
    Erase(commands::privacy::Erase),
    /// Contacts with no event for the policy's `privacy.retentionYears`:
    /// listed, or with --apply erased, each with its receipt. Schedule it
    /// (cron, a systemd timer).
    ///
    /// Example: RAPPORT_TOKEN=… rapport retention --apply
    Retention(commands::privacy::Retention),
    /// Print the GraphQL schema (SDL); `api/schema.graphql` is its output.
    ///
    /// Example: rapport schema > api/schema.graphql
    Schema,
    /// Create, list or revoke API tokens.
    ///
    /// Example: rapport token create --role sales --name alice
    #[command(subcommand)]
    Token(commands::TokenCommand),
}

/// Parses the process arguments, runs the command, and returns its exit code.
pub fn main() -> ExitCode {
    // `rapport export | head` ends quietly, as any Unix tool does, instead
    // of panicking on the closed pipe.
    sigpipe::reset();
    let cli = Cli::parse();
    // A server logs refusals for whoever watches it; a one-shot command
    // prints its own error, so its log would only say it twice.
    // Except the one warning an operator must not miss: where a new
    // ledger's master key was made, to be backed up apart from it.
    let default_log = if matches!(cli.command, Command::Serve { .. }) {
        "warn"
    } else {
        "error,rapport_store::sealing=warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAPPORT_LOG").unwrap_or_else(|_| default_log.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let json = cli.json;
    let outcome = tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match outcome {
        Ok(crate::Outcome::Yes) => ExitCode::SUCCESS,
        Ok(crate::Outcome::No) => ExitCode::from(1),
        Err(error) => {
            print_error(&error, json);
            ExitCode::from(2)
        }
    }
}

/// An error on stderr: its cause chain, and with `--json` one JSON
/// document carrying the stable code too.
fn print_error(error: &anyhow::Error, json: bool) {
    let message = format!("{error:#}");
    if json {
        let code = code_of(error).as_str();
        eprintln!(
            "{}",
            serde_json::json!({ "error": { "code": code, "message": message } })
        );
    } else {
        eprintln!("error: {message}");
    }
}

/// The stable code of an error: the application's, the store's by kind,
/// and otherwise the caller's input (a name, a file, a moment) refused.
fn code_of(error: &anyhow::Error) -> Code {
    if let Some(refusal) = error.downcast_ref::<rapport_app::AppError>() {
        return refusal.code();
    }
    if let Some(store) = error.downcast_ref::<rapport_store::StoreError>() {
        return rapport_app::error::code_of(store);
    }
    Code::BadInput
}

fn parse_language(tag: &str) -> Result<Language, String> {
    Language::from_tag(tag).ok_or_else(|| format!("'{tag}' is not a language rapport speaks: use en or zh"))
}

/// The language the locale environment names, as POSIX ranks its variables.
fn language_of_locale() -> Language {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        .and_then(|value| Language::from_tag(&value))
        .unwrap_or_default()
}

pub async fn run(cli: Cli) -> anyhow::Result<crate::Outcome> {
    let ctx = commands::Invocation {
        store: cli.store,
        json: cli.json,
        language: cli.lang.unwrap_or_else(language_of_locale),
        clock: rapport_app::clock::system_clock(),
    };
    match cli.command {
        Command::Ledger => commands::ledger(&ctx).await,
        Command::Check {
            contact,
            mode,
            at,
            position,
            verbose,
        } => commands::inspect::check(&ctx, &contact, &mode, at.as_deref(), position.as_deref(), verbose).await,
        Command::Timeline {
            contact,
            since,
            after,
            limit,
        } => {
            let page = commands::inspect::Page {
                since: since.as_deref(),
                after,
                limit,
            };
            commands::inspect::timeline(&ctx, &contact, page).await
        }
        Command::Replay {
            as_of,
            position,
            known_at,
            contact,
            diff,
        } => {
            let when = commands::inspect::When {
                as_of: as_of.as_deref(),
                position: position.as_deref(),
                known_at: known_at.as_deref(),
            };
            commands::inspect::replay(&ctx, when, contact.as_deref(), diff.as_deref()).await
        }
        Command::Contacts {
            search,
            owner,
            band,
            after,
            limit,
        } => {
            let filter = commands::lists::ContactFilter {
                search: search.as_deref(),
                owner: owner.as_deref(),
                band: band.as_deref(),
                after: after.as_deref(),
                limit,
            };
            commands::lists::contacts(&ctx, filter).await
        }
        Command::Violations { contact, after, limit } => {
            commands::lists::violations(&ctx, contact.as_deref(), after.as_deref(), limit).await
        }
        Command::Import { file } => commands::transfer::import(&ctx, &file).await,
        Command::Export {
            contact,
            with_personal_data,
        } => commands::transfer::export(&ctx, contact.as_deref(), with_personal_data).await,
        Command::Verify { digest, export } => commands::verify(&ctx, digest.as_deref(), export.as_deref()).await,
        Command::Serve {
            listen,
            demo,
            demo_contacts,
        } => commands::serve(&ctx, listen, demo.then_some(demo_contacts.clamp(10, 100_000))).await,
        Command::Token(command) => commands::token(&ctx, command),
        Command::Campaign(command) => commands::campaign::campaign(&ctx, command).await,
        Command::Group(command) => commands::group::group(&ctx, command).await,
        Command::Suggest { owner, limit } => commands::campaign::suggest(&ctx, owner.as_deref(), limit).await,
        Command::Record(command) => commands::record::record(&ctx, command).await,
        Command::Erase(command) => commands::privacy::erase(&ctx, command).await,
        Command::Retention(command) => commands::privacy::retention(&ctx, command).await,
        Command::Schema => {
            print!("{}", rapport_api::graphql::sdl());
            Ok(crate::Outcome::Yes)
        }
    }
}
