//! Errors for bad generator input. Generation itself cannot fail once the input is valid.

/// Why a generator configuration was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenError {
    #[error("invalid generator parameter {name} = {value}: {reason}")]
    InvalidParam {
        name: &'static str,
        value: f64,
        reason: &'static str,
    },
    #[error("invalid generator setting {name}: {reason}")]
    InvalidSetting { name: &'static str, reason: String },
    /// A live event that cannot be applied to the record it targets.
    #[error("rejected: {0}")]
    Rejected(String),
}
