//! Search text for the trigram indexes: substring matches for three characters or more,
//! prefix matches through ordinary indexes below that.
//! Both sides are lower-cased in Rust, which folds all of Unicode (SQLite's `lower` and
//! `LIKE` fold ASCII only).

/// Whether `q` is long enough for the trigram index.
pub fn uses_trigrams(q: &str) -> bool {
    q.chars().count() >= 3
}

/// An FTS5 phrase matching `q` as a substring (quotes doubled).
pub fn phrase(q: &str) -> String {
    format!("\"{}\"", q.replace('"', "\"\""))
}

/// The range of lower-cased keys that start with `q`: `lo <= key < hi`. A range, unlike
/// LIKE, uses a plain index and compares all of Unicode.
pub fn prefix_range(q: &str) -> (String, String) {
    (q.to_owned(), format!("{q}{}", char::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_wildcards_are_escaped() {
        assert_eq!(phrase("a\"b"), "\"a\"\"b\"");
        let (lo, hi) = prefix_range("zo");
        assert!(lo.as_str() <= "zorro" && "zorro" < hi.as_str() && "zp" >= hi.as_str());
        assert!(uses_trigrams("abc") && !uses_trigrams("ab") && uses_trigrams("日本語"));
    }
}
