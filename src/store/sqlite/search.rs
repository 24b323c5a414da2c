//! Search text for the trigram indexes: substring matches for three characters or more,
//! prefix matches through ordinary indexes below that.

/// Whether `q` is long enough for the trigram index.
pub fn uses_trigrams(q: &str) -> bool {
    q.chars().count() >= 3
}

/// An FTS5 phrase matching `q` as a substring (quotes doubled).
pub fn phrase(q: &str) -> String {
    format!("\"{}\"", q.replace('"', "\"\""))
}

/// A LIKE pattern matching names that start with `q` (`\` escapes wildcards).
pub fn prefix(q: &str) -> String {
    let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_wildcards_are_escaped() {
        assert_eq!(phrase("a\"b"), "\"a\"\"b\"");
        assert_eq!(prefix("a_%\\"), "a\\_\\%\\\\%");
        assert!(uses_trigrams("abc") && !uses_trigrams("ab") && uses_trigrams("日本語"));
    }
}
