//! Errors from parsing and validating a rule. Each points at the offending text.

use std::ops::Range;

/// A rule that cannot be saved. `span` is a byte range into the rule text; `column` is the
/// 1-based character position of its start, which is what the message shows (`at 23: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {column}: {message}")]
pub struct RuleError {
    pub column: usize,
    pub span: Range<usize>,
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(src: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        let start = span.start.min(src.len());
        // Spans always start on a char boundary: they come from the lexer's char indices.
        let column = src.get(..start).map_or(start, |s| s.chars().count()) + 1;
        RuleError {
            column,
            span,
            message: message.into(),
        }
    }
}
