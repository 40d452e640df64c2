//! Topic and channel name rules (conformance §1.10).

/// Suffix that marks a topic or channel as ephemeral (memory only, auto-deleted).
pub const EPHEMERAL_SUFFIX: &str = "#ephemeral";

/// Longest valid name, in bytes, `#ephemeral` suffix included.
pub const MAX_NAME_LEN: usize = 64;

/// `^[.a-zA-Z0-9_-]+(#ephemeral)?$` and 1..=64 bytes.
pub fn is_valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return false;
    }
    let stem = name.strip_suffix(EPHEMERAL_SUFFIX).unwrap_or(name);
    !stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Topic names follow the common rule.
pub fn is_valid_topic_name(name: &str) -> bool {
    is_valid_name(name)
}

/// Channel names follow the common rule.
pub fn is_valid_channel_name(name: &str) -> bool {
    is_valid_name(name)
}

/// Whether the name carries the `#ephemeral` suffix.
pub fn is_ephemeral(name: &str) -> bool {
    name.ends_with(EPHEMERAL_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_documented_alphabet() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("Topic.name_with-dash09"));
        assert!(is_valid_name("tail1234#ephemeral"));
        assert!(is_valid_name(&"x".repeat(64)));
        assert!(is_valid_name(&format!("{}#ephemeral", "x".repeat(54))));
    }

    #[test]
    fn rejects_everything_else() {
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("#ephemeral"));
        assert!(!is_valid_name(&"x".repeat(65)));
        assert!(!is_valid_name(&format!("{}#ephemeral", "x".repeat(55))));
        assert!(!is_valid_name("has space"));
        assert!(!is_valid_name("slash/"));
        assert!(!is_valid_name("colon:"));
        assert!(!is_valid_name("a#ephemeral#ephemeral"));
        assert!(!is_valid_name("a#other"));
        assert!(!is_valid_name("ünicode"));
    }

    #[test]
    fn ephemeral_suffix() {
        assert!(is_ephemeral("t#ephemeral"));
        assert!(!is_ephemeral("t"));
    }
}
