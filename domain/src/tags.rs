//! Tags: how contacts are segmented (new, returning, high value, a
//! product, price sensitivity). WeChat's own rules for custom tags apply.

/// The longest tag, in characters.
pub const TAG_CHARS_MAX: usize = 32;

/// A tag is 1 to 32 characters with no spaces or control characters.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() || tag.chars().count() > TAG_CHARS_MAX {
        return Err(format!(
            "tag '{}' must be 1 to {TAG_CHARS_MAX} characters",
            tag.chars().take(40).collect::<String>()
        ));
    }
    if tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("tag '{tag}' must not contain spaces or control characters"));
    }
    Ok(())
}
