//! What rapport says to people, one catalogue per language: every reason
//! the gate gives and every part of the score. Deciding never formats
//! text; adapters ask for the words in the reader's language.

pub mod en;
pub mod zh;

/// A language rapport speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Language {
    #[default]
    English,
    /// Simplified Chinese, as WeChat operators in mainland China write it.
    Chinese,
}

use crate::gate::Reason;
use crate::strength::ScoreComponent;

impl Language {
    /// A reason the gate gave, in a sentence a salesperson understands;
    /// `tag_name` is what `Reason::tag_name` gave.
    pub fn reason(self, reason: &Reason, tag_name: &str) -> String {
        match self {
            Language::English => en::reason(reason, tag_name),
            Language::Chinese => zh::reason(reason, tag_name),
        }
    }

    /// What a part of the score is based on.
    pub fn explanation(self, component: &ScoreComponent) -> &'static str {
        match self {
            Language::English => en::component(component.name),
            Language::Chinese => zh::component(component.name),
        }
    }

    pub const ALL: [Language; 2] = [Language::English, Language::Chinese];

    /// The BCP 47 tag: `en` or `zh-CN`.
    pub const fn tag(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Chinese => "zh-CN",
        }
    }

    /// The language a tag such as `zh`, `zh-CN`, `zh_CN.UTF-8` or `en-GB`
    /// names, or `None` for one rapport does not speak.
    pub fn from_tag(tag: &str) -> Option<Language> {
        let primary = tag
            .trim()
            .split(['-', '_', '.', ';'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Language::English),
            "zh" => Some(Language::Chinese),
            _ => None,
        }
    }

    /// The reader's most preferred language rapport speaks, from an HTTP
    /// `Accept-Language` value (`zh-CN,zh;q=0.9,en;q=0.8`).
    pub fn from_accept_language(header: &str) -> Option<Language> {
        let mut best: Option<(u16, Language)> = None;
        for entry in header.split(',').take(32) {
            let mut parts = entry.split(';');
            let Some(language) = parts.next().and_then(Language::from_tag) else {
                continue;
            };
            let weight = parts
                .find_map(|part| part.trim().strip_prefix("q="))
                .map_or(1000, quality_thousandths);
            // The first of equal weights wins, as the header lists preference.
            if weight > 0 && best.is_none_or(|(held, _)| weight > held) {
                best = Some((weight, language));
            }
        }
        best.map(|(_, language)| language)
    }
}

/// `q=0.853` as 853; an unreadable weight counts as 0 (not acceptable).
fn quality_thousandths(value: &str) -> u16 {
    let value = value.trim();
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1000,
        _ => return 0,
    };
    let digits: String = fraction.chars().take(3).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return 0;
    }
    let thousandths = format!("{digits:0<3}").parse::<u16>().unwrap_or(0);
    (whole + thousandths).min(1000)
}

/// A local minute of the day as `HH:MM`.
fn clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// What a quiet-hours reason says in any language: their time now, their
/// zone, and the window they may be written to in.
struct QuietHours {
    now: String,
    zone: &'static str,
    from: String,
    until: String,
}

impl QuietHours {
    fn of(facts: &crate::gate::Facts) -> Self {
        let window = facts.window.unwrap_or(crate::hours::Window {
            start_minute: 0,
            end_minute: 0,
        });
        QuietHours {
            now: clock(facts.local_minute),
            zone: facts.zone.map_or("UTC", |zone| zone.name()),
            from: clock(window.start_minute),
            until: clock(window.end_minute),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Verdict;
    use crate::gate::{Facts, ReasonCode};

    const COMPONENTS: [&str; 8] = [
        "replyRecency",
        "reciprocity",
        "twoWayFrequency",
        "unansweredStreak",
        "massFatigue",
        "complaints",
        "groupSpeech",
        "groupLeaves",
    ];

    fn reason(code: ReasonCode, blocking: bool) -> Reason {
        Reason {
            code,
            blocking,
            verdict: Verdict::Deny,
            until: None,
            facts: Facts {
                count: 3,
                limit: 7,
                days_ago: 2,
                ..Facts::default()
            },
        }
    }

    fn has_chinese(text: &str) -> bool {
        text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn every_reason_has_words_in_both_languages() {
        for code in ReasonCode::ALL {
            for blocking in [true, false] {
                let reason = reason(code, blocking);
                let english = Language::English.reason(&reason, "VIP");
                let chinese = Language::Chinese.reason(&reason, "VIP");
                assert!(english.len() > 10 && english.is_ascii(), "{code:?}: {english}");
                assert!(has_chinese(&chinese), "{code:?} has no Chinese words: {chinese}");
                assert_ne!(english, chinese);
            }
        }
    }

    #[test]
    fn every_score_component_is_explained_in_both_languages() {
        for name in COMPONENTS {
            let component = ScoreComponent { name, points: 1 };
            assert!(!Language::English.explanation(&component).is_empty(), "{name}");
            assert!(has_chinese(Language::Chinese.explanation(&component)), "{name}");
        }
    }

    #[test]
    fn the_numbers_of_a_reason_appear_in_both_languages() {
        let reason = reason(ReasonCode::RecentComplaint, true);
        for language in Language::ALL {
            let text = language.reason(&reason, "");
            assert!(text.contains('2') && text.contains('7'), "{language:?}: {text}");
        }
    }

    #[test]
    fn the_preferred_language_is_read_from_accept_language() {
        let cases = [
            ("zh-CN,zh;q=0.9,en;q=0.8", Some(Language::Chinese)),
            ("en-US,en;q=0.9,zh-CN;q=0.8", Some(Language::English)),
            ("fr-FR,zh-TW;q=0.5,en;q=0.7", Some(Language::English)),
            ("de, fr;q=0.5", None),
            ("zh;q=0, en;q=0.1", Some(Language::English)),
            ("", None),
            ("zh_CN.UTF-8", Some(Language::Chinese)),
        ];
        for (header, expected) in cases {
            assert_eq!(Language::from_accept_language(header), expected, "{header}");
        }
    }
}
