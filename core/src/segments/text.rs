//! Text comparisons shared by the rule language and the tag plan.

/// Case-insensitive equality; Unicode-aware, with an allocation-free ASCII fast path.
pub fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// Whole-tag match, trimmed and case-insensitive (Shopify treats tags case-insensitively).
pub fn has_tag(tags: &[String], wanted: &str) -> bool {
    tags.iter().any(|t| eq_ignore_case(t.trim(), wanted))
}
