//! Which `$all` records a reader sees: the server's default `$all` rule, and
//! the stream-name or event-type filter a client may add (prefixes or a regex).

use regex::{Regex, RegexBuilder};

/// The longest regex a filter may carry.
const REGEX_BYTES_MAX: usize = 1_024;
/// The compiled size a filter's regex may take.
const REGEX_COMPILED_BYTES_MAX: usize = 1 << 20;
/// The most prefixes a filter may carry.
const PREFIXES_MAX: usize = 1_000;

/// What a filter looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Subject {
    StreamName,
    EventType,
}

#[derive(Debug)]
enum Matcher {
    Prefixes(Vec<String>),
    Regex(Regex),
}

/// A client's `$all` filter. Like the server's `EventFilter`, a non-empty
/// regex wins over prefixes, and the default `$all` rule applies first.
#[derive(Debug)]
pub(crate) struct Filter {
    subject: Subject,
    matcher: Matcher,
}

impl Filter {
    /// Compiles a filter, or says why it cannot be.
    pub(crate) fn new(subject: Subject, regex: &str, prefixes: Vec<String>) -> Result<Filter, String> {
        let matcher = if regex.is_empty() {
            if prefixes.len() > PREFIXES_MAX {
                return Err(format!("a filter takes at most {PREFIXES_MAX} prefixes"));
            }
            Matcher::Prefixes(prefixes)
        } else {
            if regex.len() > REGEX_BYTES_MAX {
                return Err(format!("a filter regex takes at most {REGEX_BYTES_MAX} bytes"));
            }
            let compiled = RegexBuilder::new(regex)
                .size_limit(REGEX_COMPILED_BYTES_MAX)
                .build()
                .map_err(|error| format!("invalid filter regex: {error}"))?;
            Matcher::Regex(compiled)
        };
        Ok(Filter { subject, matcher })
    }

    /// Whether a record of `stream` with `event_type` passes.
    pub(crate) fn allows(&self, stream: &str, event_type: &str) -> bool {
        if !default_all_allows(stream) {
            return false;
        }
        let subject = match self.subject {
            Subject::StreamName => stream,
            Subject::EventType => event_type,
        };
        match &self.matcher {
            Matcher::Prefixes(prefixes) => prefixes.iter().any(|prefix| subject.starts_with(prefix.as_str())),
            Matcher::Regex(regex) => regex.is_match(subject),
        }
    }
}

/// The server's `DefaultAllFilterStrategy`: every `$all` read hides the epoch
/// stream and persistent subscriptions' own `$all` bookkeeping, and nothing
/// else; other system streams (`$`-prefixed) are visible.
pub(crate) fn default_all_allows(stream: &str) -> bool {
    if !stream.starts_with('$') {
        return true;
    }
    if stream == "$epoch-information" {
        return false;
    }
    let bookkeeping = stream.starts_with("$persistentsubscription-$all::")
        && (stream.ends_with("-checkpoint") || stream.ends_with("-parked"));
    !bookkeeping
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_exclude_system_events_regex_hides_dollar_streams() {
        let filter = Filter::new(Subject::StreamName, "^[^\\$].*", Vec::new()).expect("filter");
        assert!(filter.allows("contact-1", "ContactRegistered"));
        assert!(!filter.allows("$$contact-1", "$metadata"));
    }

    #[test]
    fn prefixes_match_the_start_of_the_subject() {
        let filter = Filter::new(Subject::EventType, "", vec!["Contact".to_owned()]).expect("filter");
        assert!(filter.allows("x", "ContactRegistered"));
        assert!(!filter.allows("x", "GroupCreated"));
    }

    #[test]
    fn the_default_rule_hides_only_the_servers_bookkeeping() {
        assert!(default_all_allows("$$contact-1"));
        assert!(!default_all_allows("$epoch-information"));
        assert!(!default_all_allows("$persistentsubscription-$all::g-checkpoint"));
    }
}
