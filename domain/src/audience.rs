//! Who a campaign is for: a tag expression (`vip`, `new AND product-a`,
//! `NOT price-sensitive`, parentheses), owners, bands, or an explicit list
//! of contacts. Segment first, then send: the audience is parsed here, with
//! the position of whatever is wrong, and matched against a contact's
//! state without any I/O.

use crate::ids::ContactId;
use crate::relationship::Relationship;
use crate::strength::Band;
use crate::symbols::{SymbolId, Symbols};

/// The longest tag expression, in characters.
pub const EXPRESSION_CHARS_MAX: usize = 1_000;
/// How deeply `NOT` and parentheses may nest.
pub const EXPRESSION_DEPTH_MAX: usize = 32;
/// The most contacts an explicit list may name.
pub const AUDIENCE_CONTACTS_MAX: usize = 100_000;

/// A tag expression. `NOT` binds tightest, then `AND`, then `OR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagExpr {
    Tag(String),
    Not(Box<TagExpr>),
    And(Box<TagExpr>, Box<TagExpr>),
    Or(Box<TagExpr>, Box<TagExpr>),
}

/// The expression written back, with the parentheses its structure needs
/// (and no others), and tags quoted where they would not parse bare.
impl std::fmt::Display for TagExpr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn tight(expression: &TagExpr, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match expression {
                TagExpr::Or(..) => write!(f, "({expression})"),
                other => write!(f, "{other}"),
            }
        }
        match self {
            TagExpr::Tag(tag) => {
                let bare = !tag.chars().any(|c| c.is_whitespace() || matches!(c, '(' | ')' | '"'))
                    && !matches!(tag.to_uppercase().as_str(), "AND" | "OR" | "NOT");
                if bare {
                    write!(f, "{tag}")
                } else {
                    write!(f, "\"{tag}\"")
                }
            }
            TagExpr::Not(inner) => match **inner {
                TagExpr::And(..) | TagExpr::Or(..) => write!(f, "NOT ({inner})"),
                _ => write!(f, "NOT {inner}"),
            },
            TagExpr::And(left, right) => {
                tight(left, f)?;
                f.write_str(" AND ")?;
                tight(right, f)
            }
            TagExpr::Or(left, right) => write!(f, "{left} OR {right}"),
        }
    }
}

/// What is wrong with a tag expression, and where (the 1-based character).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{problem} at character {position} of the tag expression")]
pub struct ExpressionError {
    pub position: usize,
    pub problem: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Tag(String),
    And,
    Or,
    Not,
    Open,
    Close,
}

/// Splits the text into tokens, each with its 1-based character position.
/// A tag is any run of characters but spaces, parentheses and quotes, or
/// anything in double quotes (for a tag spelled like a keyword).
fn tokens(text: &str) -> Result<Vec<(usize, Token)>, ExpressionError> {
    let mut found = Vec::new();
    let mut chars = text.chars().enumerate().peekable();
    while let Some((index, c)) = chars.next() {
        let position = index + 1;
        match c {
            c if c.is_whitespace() => {}
            '(' => found.push((position, Token::Open)),
            ')' => found.push((position, Token::Close)),
            '"' => {
                let mut tag = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, c)) => tag.push(c),
                        None => {
                            return Err(ExpressionError {
                                position,
                                problem: "a quoted tag is not closed".to_owned(),
                            });
                        }
                    }
                }
                found.push((position, Token::Tag(tag)));
            }
            c => {
                let mut word = String::from(c);
                while let Some((_, next)) = chars.peek().copied() {
                    if next.is_whitespace() || matches!(next, '(' | ')' | '"') {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                let token = match word.to_uppercase().as_str() {
                    "AND" => Token::And,
                    "OR" => Token::Or,
                    "NOT" => Token::Not,
                    _ => Token::Tag(word),
                };
                found.push((position, token));
            }
        }
    }
    Ok(found)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
    /// The position just past the text, for "ends too soon".
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(_, token)| token)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.next).map_or(self.end, |(position, _)| *position)
    }

    fn fail<T>(&self, problem: impl Into<String>) -> Result<T, ExpressionError> {
        Err(ExpressionError {
            position: self.position(),
            problem: problem.into(),
        })
    }

    fn or(&mut self, depth: usize) -> Result<TagExpr, ExpressionError> {
        let mut left = self.and(depth)?;
        while self.peek() == Some(&Token::Or) {
            self.next += 1;
            left = TagExpr::Or(Box::new(left), Box::new(self.and(depth)?));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<TagExpr, ExpressionError> {
        let mut left = self.unary(depth)?;
        while self.peek() == Some(&Token::And) {
            self.next += 1;
            left = TagExpr::And(Box::new(left), Box::new(self.unary(depth)?));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<TagExpr, ExpressionError> {
        if depth > EXPRESSION_DEPTH_MAX {
            return self.fail(format!("NOT and parentheses nest at most {EXPRESSION_DEPTH_MAX} deep"));
        }
        match self.peek().cloned() {
            Some(Token::Not) => {
                self.next += 1;
                Ok(TagExpr::Not(Box::new(self.unary(depth + 1)?)))
            }
            Some(Token::Open) => {
                self.next += 1;
                let inner = self.or(depth + 1)?;
                if self.peek() != Some(&Token::Close) {
                    return self.fail("expected ')'");
                }
                self.next += 1;
                Ok(inner)
            }
            Some(Token::Tag(tag)) => {
                crate::tags::check_tag(&tag).or_else(|problem| self.fail(problem))?;
                self.next += 1;
                Ok(TagExpr::Tag(tag))
            }
            Some(Token::Close) => self.fail("expected a tag, NOT or '(' before ')'"),
            Some(Token::And | Token::Or) => self.fail("expected a tag, NOT or '(' before AND or OR"),
            None => self.fail("the expression ends where a tag was expected"),
        }
    }
}

impl TagExpr {
    /// Parses a tag expression.
    pub fn parse(text: &str) -> Result<TagExpr, ExpressionError> {
        let length = text.chars().count();
        if length > EXPRESSION_CHARS_MAX {
            return Err(ExpressionError {
                position: EXPRESSION_CHARS_MAX + 1,
                problem: format!("a tag expression is at most {EXPRESSION_CHARS_MAX} characters"),
            });
        }
        let mut parser = Parser {
            tokens: tokens(text)?,
            next: 0,
            end: length + 1,
        };
        let expression = parser.or(0)?;
        if parser.peek().is_some() {
            return parser.fail("expected AND, OR or the end (join tags with AND or OR)");
        }
        Ok(expression)
    }

    /// The expression over interned tags: a tag nobody carries matches
    /// nobody.
    pub fn compile(&self, symbols: &Symbols) -> CompiledTags {
        match self {
            TagExpr::Tag(tag) => CompiledTags::Tag(symbols.lookup(tag)),
            TagExpr::Not(inner) => CompiledTags::Not(Box::new(inner.compile(symbols))),
            TagExpr::And(left, right) => {
                CompiledTags::And(Box::new(left.compile(symbols)), Box::new(right.compile(symbols)))
            }
            TagExpr::Or(left, right) => {
                CompiledTags::Or(Box::new(left.compile(symbols)), Box::new(right.compile(symbols)))
            }
        }
    }
}

/// A tag expression ready to match a contact's tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompiledTags {
    Tag(Option<SymbolId>),
    Not(Box<CompiledTags>),
    And(Box<CompiledTags>, Box<CompiledTags>),
    Or(Box<CompiledTags>, Box<CompiledTags>),
}

impl CompiledTags {
    pub fn matches(&self, tags: &[SymbolId]) -> bool {
        match self {
            CompiledTags::Tag(tag) => tag.is_some_and(|tag| tags.contains(&tag)),
            CompiledTags::Not(inner) => !inner.matches(tags),
            CompiledTags::And(left, right) => left.matches(tags) && right.matches(tags),
            CompiledTags::Or(left, right) => left.matches(tags) || right.matches(tags),
        }
    }
}

/// Who a campaign or a preflight is for: every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audience {
    pub tags: Option<TagExpr>,
    /// Any of these owners (staff ids); everyone's when empty.
    pub owners: Vec<String>,
    /// Any of these bands, at the preflight's moment; every band when empty.
    pub bands: Vec<Band>,
    /// Only these contacts, when given.
    pub contacts: Option<Vec<ContactId>>,
}

/// An audience checked and made ready to match contacts quickly.
#[derive(Clone, Debug)]
pub struct CompiledAudience {
    tags: Option<CompiledTags>,
    /// `None`: any owner. Owners nobody is are dropped: they match nobody.
    owners: Option<Vec<SymbolId>>,
    bands: Vec<Band>,
}

impl Audience {
    /// Refuses an explicit list over `AUDIENCE_CONTACTS_MAX`.
    pub fn check(&self) -> Result<(), String> {
        match &self.contacts {
            Some(contacts) if contacts.len() > AUDIENCE_CONTACTS_MAX => Err(format!(
                "an audience names at most {AUDIENCE_CONTACTS_MAX} contacts, got {}",
                contacts.len()
            )),
            _ => Ok(()),
        }
    }

    pub fn compile(&self, symbols: &Symbols) -> CompiledAudience {
        CompiledAudience {
            tags: self.tags.as_ref().map(|tags| tags.compile(symbols)),
            owners: (!self.owners.is_empty()).then(|| {
                self.owners
                    .iter()
                    .filter_map(|owner| symbols.lookup(owner.trim()))
                    .collect()
            }),
            bands: self.bands.clone(),
        }
    }
}

impl CompiledAudience {
    /// Whether the contact belongs, by tags and owner (what its state says
    /// at once); the band is checked by `admits_band` once it is scored.
    pub fn admits(&self, relationship: &Relationship) -> bool {
        self.tags.as_ref().is_none_or(|tags| tags.matches(relationship.tags()))
            && self
                .owners
                .as_ref()
                .is_none_or(|owners| owners.contains(&relationship.owner()))
    }

    pub fn admits_band(&self, band: Band) -> bool {
        self.bands.is_empty() || self.bands.contains(&band)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str) -> TagExpr {
        TagExpr::Tag(name.to_owned())
    }

    fn not(inner: TagExpr) -> TagExpr {
        TagExpr::Not(Box::new(inner))
    }

    fn and(left: TagExpr, right: TagExpr) -> TagExpr {
        TagExpr::And(Box::new(left), Box::new(right))
    }

    fn or(left: TagExpr, right: TagExpr) -> TagExpr {
        TagExpr::Or(Box::new(left), Box::new(right))
    }

    fn error_at(text: &str) -> usize {
        TagExpr::parse(text).expect_err(text).position
    }

    #[test]
    fn not_binds_tighter_than_and_and_and_tighter_than_or() {
        assert_eq!(TagExpr::parse("vip"), Ok(tag("vip")));
        assert_eq!(
            TagExpr::parse("new AND product-a OR NOT price-sensitive"),
            Ok(or(and(tag("new"), tag("product-a")), not(tag("price-sensitive"))))
        );
        assert_eq!(
            TagExpr::parse("new and (a or b)"),
            Ok(and(tag("new"), or(tag("a"), tag("b")))),
            "keywords in any case, parentheses first"
        );
        assert_eq!(TagExpr::parse("NOT NOT 老客户"), Ok(not(not(tag("老客户")))));
        assert_eq!(TagExpr::parse("\"and\" OR x"), Ok(or(tag("and"), tag("x"))));
    }

    #[test]
    fn an_expression_written_back_parses_to_itself() {
        for text in [
            "vip",
            "new AND product-a OR NOT price-sensitive",
            "new AND (a OR b)",
            "NOT (a AND b)",
            "\"and\" OR x",
        ] {
            let parsed = TagExpr::parse(text).expect(text);
            assert_eq!(parsed.to_string(), text);
            assert_eq!(TagExpr::parse(&parsed.to_string()), Ok(parsed));
        }
    }

    #[test]
    fn a_bad_expression_says_where() {
        assert_eq!(error_at("new AND"), 8, "ends where a tag was expected");
        assert_eq!(error_at("new product-a"), 5, "two tags need AND or OR");
        assert_eq!(error_at("(vip"), 5);
        assert_eq!(error_at("vip)"), 4);
        assert_eq!(error_at("AND vip"), 1);
        assert_eq!(error_at("vip OR \"open"), 8);
        assert_eq!(error_at(""), 1);
        let problem = TagExpr::parse("a AND").expect_err("incomplete").to_string();
        assert_eq!(
            problem,
            "the expression ends where a tag was expected at character 6 of the tag expression"
        );
    }

    #[test]
    fn an_expression_has_its_limits() {
        let deep = format!("{}vip{}", "(".repeat(40), ")".repeat(40));
        assert!(TagExpr::parse(&deep).expect_err("too deep").problem.contains("nest"));
        let long = vec!["vip"; 300].join(" OR ");
        assert_eq!(error_at(&long), EXPRESSION_CHARS_MAX + 1);
        let tag_too_long = "x".repeat(40);
        assert_eq!(error_at(&format!("vip OR {tag_too_long}")), 8);
    }

    #[test]
    fn a_compiled_expression_matches_by_interned_tags_and_unknown_tags_match_nobody() {
        let mut symbols = Symbols::default();
        let vip = symbols.intern("vip");
        let new = symbols.intern("new");
        let expression = TagExpr::parse("vip AND NOT new OR ghost").expect("parse");
        let compiled = expression.compile(&symbols);
        assert!(compiled.matches(&[vip]));
        assert!(!compiled.matches(&[vip, new]));
        assert!(!compiled.matches(&[]), "nobody carries 'ghost'");
        let only_ghost = TagExpr::parse("NOT ghost").expect("parse").compile(&symbols);
        assert!(only_ghost.matches(&[new]));
    }

    #[test]
    fn an_audience_of_owners_nobody_is_matches_nobody() {
        let mut symbols = Symbols::default();
        symbols.intern("alice");
        let audience = Audience {
            owners: vec!["zed".to_owned()],
            ..Audience::default()
        };
        let compiled = audience.compile(&symbols);
        assert!(!compiled.admits(&Relationship::default()));
        let everyone = Audience::default().compile(&symbols);
        assert!(everyone.admits(&Relationship::default()));
    }

    #[test]
    fn an_explicit_list_has_a_limit() {
        let audience = Audience {
            contacts: Some(vec![ContactId(uuid::Uuid::nil()); AUDIENCE_CONTACTS_MAX + 1]),
            ..Audience::default()
        };
        assert!(audience.check().is_err());
    }
}
