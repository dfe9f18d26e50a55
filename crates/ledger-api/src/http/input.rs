//! How request bodies are read, strictly: JSON objects without a duplicate
//! key, amounts in one decimal form, dates in one calendar form and range.
//! Each is parsed once here and trusted after.

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::error::ApiError;

/// Longest amount text accepted, in characters.
pub const AMOUNT_CHARS_MAX: usize = 32;
/// The form of an amount, as the OpenAPI description states it. The
/// currency's decimals are checked later, by the money rules.
pub const AMOUNT_PATTERN: &str = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$";
/// The first and last day a request body may name.
pub const DATE_FIRST: &str = "1990-01-01";
pub const DATE_LAST: &str = "2099-12-31";
/// The form of a date, as the OpenAPI description states it.
pub const DATE_PATTERN: &str = r"^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";

/// An amount: digits, an optional point followed by at least one digit, no
/// leading zero (a single `0` before the point is fine), no sign, exponent
/// or space, at most [`AMOUNT_CHARS_MAX`] characters.
pub fn amount(field: &'static str, text: &str) -> Result<Decimal, ApiError> {
    let refused = || {
        let shown = if text.chars().count() <= AMOUNT_CHARS_MAX {
            format!("{text:?}")
        } else {
            format!("a text of more than {AMOUNT_CHARS_MAX} characters")
        };
        ApiError::BadRequest(format!(
            "{field}: {shown} is not a decimal amount like \"350.00\": digits, an optional point and the currency's decimals, no leading zeros"
        ))
    };
    if text.len() > AMOUNT_CHARS_MAX || !is_plain_decimal(text) {
        return Err(refused());
    }
    text.parse::<Decimal>().map_err(|_| refused())
}

/// The amount a text holds, in the form [`amount`] reads, or `None`; for
/// callers that word their own refusal (a file's cells are never echoed).
pub fn plain_decimal(text: &str) -> Option<Decimal> {
    (text.len() <= AMOUNT_CHARS_MAX && is_plain_decimal(text)).then(|| text.parse::<Decimal>().ok()).flatten()
}

fn is_plain_decimal(text: &str) -> bool {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    let whole_ok = all_digits(whole) && (whole == "0" || !whole.starts_with('0'));
    whole_ok && fraction.is_none_or(all_digits)
}

/// Reads the date of `field`: exactly `YYYY-MM-DD`, a real calendar day
/// from [`DATE_FIRST`] to [`DATE_LAST`]. The message names the field and
/// never repeats the text (a case id sent in the wrong field must not be
/// echoed).
fn date<'de, D: Deserializer<'de>>(field: &'static str, deserializer: D) -> Result<NaiveDate, D::Error> {
    let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
    parse_date(&text).ok_or_else(|| {
        de::Error::custom(format!("{field}: expected a date YYYY-MM-DD from {DATE_FIRST} to {DATE_LAST}, such as 2025-03-31"))
    })
}

/// One `deserialize_with` function per date field of the request bodies,
/// so that the refusal names the field, in a batch command too.
macro_rules! date_fields {
    ($($field:ident),* $(,)?) => {
        /// `deserialize_with` functions for the dates of request bodies (see [`date`]).
        pub mod dates {
            $(
                pub fn $field<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<chrono::NaiveDate, D::Error> {
                    super::date(stringify!($field), deserializer)
                }
            )*
        }
    };
}

date_fields!(starts_on, ends_on, committed_on, received_on, paid_on, delivered_on);

pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes
            .iter()
            .enumerate()
            .all(|(index, byte)| if index == 4 || index == 7 { *byte == b'-' } else { byte.is_ascii_digit() });
    if !shaped {
        return None;
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let first = NaiveDate::parse_from_str(DATE_FIRST, "%Y-%m-%d").ok()?;
    let last = NaiveDate::parse_from_str(DATE_LAST, "%Y-%m-%d").ok()?;
    (first..=last).contains(&day).then_some(day)
}

/// Reads a non-negative whole number, also when written as `7.0` or `7e0`
/// (JSON, and JSON Schema's `integer`, do not tell them apart).
pub fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = <Number as serde::Deserialize>::deserialize(deserializer)?;
    if let Some(whole) = number.as_u64() {
        return Ok(whole);
    }
    match number.as_f64() {
        Some(value) if value >= 0.0 && value.fract() == 0.0 && value <= u64::MAX as f64 => Ok(value as u64),
        _ => Err(de::Error::custom(format!("{number} is not a whole number of 0 or more"))),
    }
}

/// As [`whole_number`], for an optional field (`#[serde(default)]`).
pub fn optional_whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let number = <Option<Number> as serde::Deserialize>::deserialize(deserializer)?;
    number.map(|number| whole_number(number).map_err(|error| de::Error::custom(error.to_string()))).transpose()
}

/// Parses a JSON document, refusing an object that holds one key twice, at
/// any depth (serde_json alone keeps the last one, so two readers could
/// understand one body differently). Nesting is bounded by serde_json's own
/// recursion limit.
pub fn json_with_unique_keys(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = de::DeserializeSeed::deserialize(UniqueKeys, &mut deserializer).and_then(|value| {
        deserializer.end()?;
        Ok(value)
    });
    parsed.map_err(|error| ApiError::BadRequest(format!("body is not valid JSON: {error}")))
}

#[derive(Clone, Copy)]
struct UniqueKeys;

impl<'de> de::DeserializeSeed<'de> for UniqueKeys {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value).map(Value::Number).ok_or_else(|| E::custom("a number is not finite"))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut list = Vec::new();
        while let Some(item) = items.next_element_seed(UniqueKeys)? {
            list.push(item);
        }
        Ok(Value::Array(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("the key {key:?} appears twice in one object; send it once")));
            }
            let value = entries.next_value_seed(UniqueKeys)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_the_plain_decimal_form_are_read() {
        for text in ["0.50", "5", "350.00", "1000000", "0", "10.125"] {
            assert!(amount("amount", text).is_ok(), "{text} is an amount");
        }
    }

    #[test]
    fn amounts_in_any_other_form_are_refused() {
        let too_long = "1".repeat(AMOUNT_CHARS_MAX + 1);
        for text in ["00005", "05", "5.", ".5", "1e3", "-5", "+5", " 5", "5 ", "", ".", "1.2.3", "1,5", "٥", too_long.as_str()] {
            assert!(amount("amount", text).is_err(), "{text:?} is refused");
        }
    }

    #[test]
    fn dates_are_read_only_as_real_days_in_range() {
        assert_eq!(parse_date("2025-02-28"), NaiveDate::from_ymd_opt(2025, 2, 28));
        assert_eq!(parse_date(DATE_FIRST), NaiveDate::from_ymd_opt(1990, 1, 1));
        assert_eq!(parse_date(DATE_LAST), NaiveDate::from_ymd_opt(2099, 12, 31));
        for text in [
            "2025-1-1",
            " 2025-01-01",
            "2025-01-01 ",
            "0000-01-01",
            "+10000-01-01",
            "2025-02-30",
            "1989-12-31",
            "2100-01-01",
            "2025/01/01",
        ] {
            assert_eq!(parse_date(text), None, "{text:?} is refused");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        assert!(json_with_unique_keys(br#"{"a": 1, "b": {"c": [1, {"d": 2}]}}"#).is_ok());
        for body in [r#"{"a": 1, "a": 1}"#, r#"{"b": {"c": 1, "c": 2}}"#, r#"{"l": [{"x": 1, "x": 2}]}"#] {
            let error = json_with_unique_keys(body.as_bytes()).err().map(|error| error.to_string()).unwrap_or_default();
            assert!(error.contains("appears twice"), "{body}: {error}");
        }
        assert!(json_with_unique_keys(b"{} x").is_err(), "trailing characters are refused");
    }
}
