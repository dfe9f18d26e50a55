//! How path and query parameters are read: every integer in a closed range,
//! dates in the one form request bodies use, unknown parameters refused.
//! Anything else is a 400 that names the parameter and what it may be.

use std::borrow::Cow;
use std::ops::RangeInclusive;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::NaiveDate;
use serde::de::{self, DeserializeOwned, Deserializer};

use super::error::ApiError;

/// The largest seq or tree size: what the databases' 64-bit signed integers hold.
pub const SEQ_MAX: u64 = i64::MAX as u64;
/// The widest duplicate window, in days (ten years).
pub const WINDOW_DAYS_MAX: u64 = 3_660;

/// A query string read strictly: a malformed, out-of-range or unknown
/// parameter is a 400 problem saying which and why.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => {
                let reason = rejection.body_text();
                let reason = reason.strip_prefix("Failed to deserialize query string: ").unwrap_or(&reason);
                Err(ApiError::BadRequest(format!("query string: {reason}")))
            }
        }
    }
}

/// Reads an integer parameter: ASCII digits only, within `range`.
fn bounded<'de, D: Deserializer<'de>>(deserializer: D, name: &str, range: RangeInclusive<u64>) -> Result<u64, D::Error> {
    let text = <Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
    let digits = !text.is_empty() && text.len() <= 20 && text.bytes().all(|byte| byte.is_ascii_digit());
    digits
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .filter(|value| range.contains(value))
        .ok_or_else(|| de::Error::custom(format!("{name} must be an integer from {} to {}", range.start(), range.end())))
}

/// One module per integer parameter, with `required` and `optional`
/// functions for `deserialize_with`, so that a refusal names the parameter.
macro_rules! bounded_parameters {
    ($($name:ident: $range:expr),* $(,)?) => {
        $(
            #[doc = concat!("`deserialize_with` functions for the `", stringify!($name), "` parameter.")]
            pub mod $name {
                use super::*;

                /// The parameter's allowed values.
                pub const RANGE: RangeInclusive<u64> = $range;

                pub fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
                    bounded(deserializer, stringify!($name), RANGE)
                }

                pub fn optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
                    required(deserializer).map(Some)
                }
            }
        )*
    };
}

bounded_parameters! {
    after: 0..=SEQ_MAX,
    seq: 1..=SEQ_MAX,
    size: 1..=SEQ_MAX,
    from: 1..=SEQ_MAX,
    to: 1..=SEQ_MAX,
    as_of_seq: 0..=SEQ_MAX,
    limit: 1..=(crate::http::reads::EVENTS_PAGE_MAX as u64),
    window_days: 0..=WINDOW_DAYS_MAX,
}

/// `deserialize_with` for the `as_of` date: exactly `YYYY-MM-DD`, from
/// 1990-01-01 to 2099-12-31 (whether it may be after today is the
/// endpoint's rule).
pub fn as_of<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NaiveDate>, D::Error> {
    let text = <Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
    super::input::parse_date(&text).map(Some).ok_or_else(|| {
        de::Error::custom(format!(
            "as_of must be a date YYYY-MM-DD from {} to {}",
            super::input::DATE_FIRST,
            super::input::DATE_LAST
        ))
    })
}

/// A required date parameter named `name`: exactly `YYYY-MM-DD`, from
/// 1990-01-01 to 2099-12-31.
fn day<'de, D: Deserializer<'de>>(deserializer: D, name: &str) -> Result<NaiveDate, D::Error> {
    let text = <Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
    super::input::parse_date(&text).ok_or_else(|| {
        de::Error::custom(format!(
            "{name} must be a date YYYY-MM-DD from {} to {}",
            super::input::DATE_FIRST,
            super::input::DATE_LAST
        ))
    })
}

/// `deserialize_with` for a period's first day (`from` of a statement).
pub fn period_from<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    day(deserializer, "from")
}

/// `deserialize_with` for a period's last day (`to` of a statement).
pub fn period_to<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    day(deserializer, "to")
}

/// `deserialize_with` for the day a payment list is planned for.
pub fn planned_on<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    day(deserializer, "planned_on")
}

/// A tree size in a path (`/v1/checkpoints/{size}`), 0 to [`SEQ_MAX`].
#[derive(Clone, Copy, Debug)]
pub struct PathSize(pub u64);

impl<'de> serde::Deserialize<'de> for PathSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bounded(deserializer, "size", 0..=SEQ_MAX).map(PathSize)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Page {
        #[serde(default, deserialize_with = "after::optional")]
        after: Option<u64>,
        #[serde(default, deserialize_with = "limit::optional")]
        limit: Option<u64>,
    }

    fn read(query: &str) -> Result<Page, String> {
        let uri: axum::http::Uri = format!("/x?{query}").parse().unwrap();
        Query::<Page>::try_from_uri(&uri).map(|Query(page)| page).map_err(|rejection| rejection.body_text())
    }

    #[test]
    fn an_integer_parameter_is_read_within_its_range_and_refused_outside_it_naming_the_range() {
        let page = read("after=9223372036854775807&limit=1000").unwrap();
        assert_eq!((page.after, page.limit), (Some(SEQ_MAX), Some(1000)));
        assert_eq!(read("").unwrap().after, None);
        for (query, named) in [
            ("after=9223372036854775808", "after must be an integer from 0 to 9223372036854775807"),
            ("after=18446744073709551616", "after must be an integer from 0 to 9223372036854775807"),
            ("after=-1", "after must be an integer"),
            ("after=+1", "after must be an integer"),
            ("after=1e3", "after must be an integer"),
            ("after=", "after must be an integer"),
            ("limit=0", "limit must be an integer from 1 to 1000"),
            ("limit=1001", "limit must be an integer from 1 to 1000"),
            ("page=2", "unknown field"),
        ] {
            let refusal = read(query).expect_err(query);
            assert!(refusal.contains(named), "{query}: {refusal}");
        }
    }
}
