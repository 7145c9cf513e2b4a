//! Shopify's custom scalars: `DateTime`, `Decimal`, `URL` and `UnsignedInt64` (a string).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Debug, Clone, Copy)]
pub struct DateTimeScalar(pub DateTime<Utc>);

#[Scalar(name = "DateTime")]
impl ScalarType for DateTimeScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| DateTimeScalar(t.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom(format!("invalid DateTime '{s}'"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

impl From<DateTime<Utc>> for DateTimeScalar {
    fn from(t: DateTime<Utc>) -> Self {
        DateTimeScalar(t)
    }
}

/// A decimal number, serialised as a string ("12.30").
#[derive(Debug, Clone)]
pub struct Decimal(pub String);

#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => Ok(Decimal(s.clone())),
            Value::Number(n) => Ok(Decimal(n.to_string())),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

#[derive(Debug, Clone)]
pub struct Url(pub String);

#[Scalar(name = "URL")]
impl ScalarType for Url {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => url::Url::parse(s)
                .map(|_| Url(s.clone()))
                .map_err(|e| InputValueError::custom(format!("invalid URL '{s}': {e}"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// Shopify encodes 64-bit unsigned integers as strings.
#[derive(Debug, Clone, Copy)]
pub struct UnsignedInt64(pub u64);

#[Scalar(name = "UnsignedInt64")]
impl ScalarType for UnsignedInt64 {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => s
                .parse()
                .map(UnsignedInt64)
                .map_err(|_| InputValueError::custom(format!("invalid UnsignedInt64 '{s}'"))),
            Value::Number(n) => n
                .as_u64()
                .map(UnsignedInt64)
                .ok_or_else(|| InputValueError::custom("invalid UnsignedInt64")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}
