//! Validated value types. Each is parsed once at the edge and trusted after.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::error::DomainError;

/// Largest amount a single event may carry, in major units of its currency
/// (at most 10^15 minor units; totals are bounded by `TOTAL_MINOR_UNITS_MAX`).
pub const AMOUNT_MAJOR_UNITS_MAX: i64 = 1_000_000_000_000;
/// Most any total the ledger keeps may hold, in minor units of its currency
/// (a programme's commitments, a budget line's disbursements, what reached
/// returnees in one local currency). A command that would take a total
/// past it is refused; with it, sums and differences of totals stay far
/// inside `i64`.
pub const TOTAL_MINOR_UNITS_MAX: i64 = 1_000_000_000_000_000_000;
/// Most decimals of an accepted currency: with `AMOUNT_MAJOR_UNITS_MAX`,
/// an event carries at most 10^15 minor units.
pub const CURRENCY_MINOR_UNITS_MAX: u32 = 3;
/// Longest free-text field (names, reasons, descriptions), in characters.
pub const TEXT_CHARS_MAX: usize = 500;
/// Longest code (donor, programme), in characters.
pub const CODE_CHARS_MAX: usize = 32;

/// An ISO 4217 currency with its number of minor units (EUR 2, TND 3, XOF 0).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let code = text;
        let currency = iso_currency::Currency::from_code(code)
            .filter(|_| code.bytes().all(|byte| byte.is_ascii_uppercase()))
            .ok_or_else(|| DomainError::invalid("currency", format!("{text:?} is not an ISO 4217 currency code")))?;
        match currency.exponent() {
            None => {
                return Err(DomainError::invalid("currency", format!("{code} has no minor units and is not a money currency")));
            }
            // Units of account with four decimals (CLF, UYW) are not paid out.
            Some(minor_units) if u32::from(minor_units) > CURRENCY_MINOR_UNITS_MAX => {
                return Err(DomainError::invalid(
                    "currency",
                    format!("{code} has more than {CURRENCY_MINOR_UNITS_MAX} decimals"),
                ));
            }
            Some(_) => {}
        }
        Ok(Currency(currency))
    }

    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Number of decimals an amount in this currency may have.
    pub fn minor_units(&self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(0))
    }
}

impl TryFrom<String> for Currency {
    type Error = DomainError;
    fn try_from(text: String) -> Result<Self, DomainError> {
        Currency::parse(&text)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> String {
        currency.code().to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

/// A strictly positive amount with no more decimals than its currency allows,
/// carried at exactly the currency's scale ("350.00" EUR, "12.500" TND).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    /// Validates `amount` for `currency`. More decimals than the currency has
    /// are refused, never rounded.
    pub fn parse(amount: Decimal, currency: Currency) -> Result<Self, DomainError> {
        if amount <= Decimal::ZERO {
            return Err(DomainError::NotPositive { amount, currency: currency.code() });
        }
        let normalized = amount.normalize();
        if normalized.scale() > currency.minor_units() {
            return Err(DomainError::TooManyDecimals { amount, currency: currency.code(), minor_units: currency.minor_units() });
        }
        if normalized > Decimal::from(AMOUNT_MAJOR_UNITS_MAX) {
            return Err(DomainError::AmountTooLarge { amount, currency: currency.code() });
        }
        let mut exact = normalized;
        exact.rescale(currency.minor_units());
        Ok(Money { amount: exact, currency })
    }

    /// The amount in minor units (cents, millimes, francs).
    pub fn minor_units(&self) -> i64 {
        to_minor_units(self.amount, self.currency)
    }

    pub fn from_minor_units(minor: i64, currency: Currency) -> Decimal {
        Decimal::new(minor, currency.minor_units())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.amount, self.currency)
    }
}

/// Converts an amount already valid for `currency` to minor units.
pub fn to_minor_units(amount: Decimal, currency: Currency) -> i64 {
    let mut scaled = amount;
    scaled.rescale(currency.minor_units());
    let mantissa = scaled.mantissa();
    assert!(mantissa.unsigned_abs() <= i64::MAX as u128, "amount out of the minor-unit range");
    mantissa as i64
}

/// Formats minor units of `currency` as a decimal string at the currency's scale.
pub fn format_minor_units(minor: i64, currency: Currency) -> String {
    Decimal::new(minor, currency.minor_units()).to_string()
}

/// An ISO 3166-1 alpha-2 country code (alpha-3 is accepted and converted).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let code = text;
        let upper_case = code.bytes().all(|byte| byte.is_ascii_uppercase());
        let country = match code.len() {
            2 if upper_case => isocountry::CountryCode::for_alpha2(code).ok(),
            3 if upper_case => isocountry::CountryCode::for_alpha3(code).ok(),
            _ => None,
        }
        .ok_or_else(|| DomainError::invalid("country", format!("{text:?} is not an ISO 3166-1 country code")))?;
        let alpha2 = country.alpha2().as_bytes();
        Ok(CountryCode([alpha2[0], alpha2[1]]))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("country codes are ASCII")
    }
}

impl TryFrom<String> for CountryCode {
    type Error = DomainError;
    fn try_from(text: String) -> Result<Self, DomainError> {
        CountryCode::parse(&text)
    }
}

impl From<CountryCode> for String {
    fn from(country: CountryCode) -> String {
        country.as_str().to_string()
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The form of a donor or programme code, exactly as it must be sent: the
/// ledger neither trims nor upper-cases it.
pub const CODE_PATTERN: &str = "^[A-Z0-9][A-Z0-9_-]{0,31}$";

fn parse_code(field: &'static str, text: &str) -> Result<String, DomainError> {
    let valid_characters =
        text.bytes().all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_');
    let starts_well = text.bytes().next().is_some_and(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit());
    if text.is_empty() || text.len() > CODE_CHARS_MAX || !valid_characters || !starts_well {
        return Err(DomainError::invalid(
            field,
            format!(
                "{text:?} is not a code: use 1 to {CODE_CHARS_MAX} upper-case letters, digits, '-' or '_', starting with a letter or digit"
            ),
        ));
    }
    Ok(text.to_string())
}

macro_rules! code_type {
    ($name:ident, $field:literal) => {
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, DomainError> {
                parse_code($field, text).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(text: String) -> Result<Self, DomainError> {
                $name::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(code: $name) -> String {
                code.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }
    };
}

code_type!(DonorCode, "donor");
code_type!(ProgrammeCode, "programme");

/// Characters that reorder how the text around them is shown (embeddings,
/// overrides and isolates: U+202A to U+202E, U+2066 to U+2069), so that
/// what a reader sees is not what is stored.
pub const BIDI_CONTROLS: [char; 9] =
    ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}'];

/// The form of single-line free text, as the OpenAPI description states
/// it (ECMA-262 regular expression): no control character, line or
/// paragraph separator or bidirectional control anywhere, and no space of
/// any kind first or last.
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\\ufeff]\
     ([^\\u0000-\\u001f\\u007f-\\u009f\\u2028-\\u202e\\u2066-\\u2069]*\
     [^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\\ufeff])?$";

/// A space that may not begin or end a text: the space separators and the
/// byte order mark (what ECMA-262 calls white space, less the controls,
/// which are refused anywhere).
fn is_edge_space(character: char) -> bool {
    matches!(character, ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}')
}

/// Validated single-line free text (names, references, reasons,
/// categories, descriptions): non-empty, bounded, with no control
/// character (line breaks and tabs included), no line or paragraph
/// separator and no bidirectional control, and taken exactly as sent: a
/// text that begins or ends with a space is refused, not trimmed. No field
/// of the ledger is multi-line. [`TEXT_PATTERN`] says the same.
pub fn parse_text(field: &'static str, text: &str) -> Result<String, DomainError> {
    if text.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty".to_string()));
    }
    if text.chars().count() > TEXT_CHARS_MAX {
        return Err(DomainError::invalid(field, format!("is longer than {TEXT_CHARS_MAX} characters")));
    }
    let line_break = |character: char| matches!(character, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
    if text.chars().any(line_break) {
        return Err(DomainError::invalid(field, "must be one line: remove the line breaks".to_string()));
    }
    if text.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, "contains control characters: remove them".to_string()));
    }
    if text.chars().any(|character| BIDI_CONTROLS.contains(&character)) {
        return Err(DomainError::invalid(
            field,
            "contains a bidirectional control (U+202A to U+202E, U+2066 to U+2069), which makes text read otherwise than it is stored: remove it"
                .to_string(),
        ));
    }
    if text.starts_with(is_edge_space) || text.ends_with(is_edge_space) {
        return Err(DomainError::invalid(field, "must not begin or end with a space".to_string()));
    }
    Ok(text.to_string())
}

/// Every currency code `Currency::parse` accepts, in order.
pub fn currency_codes() -> Vec<String> {
    let letters = b'A'..=b'Z';
    let mut codes = Vec::new();
    for first in letters.clone() {
        for second in letters.clone() {
            for third in letters.clone() {
                let code = String::from_utf8(vec![first, second, third]).expect("ASCII letters");
                if Currency::parse(&code).is_ok() {
                    codes.push(code);
                }
            }
        }
    }
    codes
}

/// Every country code `CountryCode::parse` accepts (ISO 3166-1 alpha-2,
/// then alpha-3), in order.
pub fn country_codes() -> Vec<String> {
    let mut alpha2: Vec<String> = isocountry::CountryCode::iter().map(|country| country.alpha2().to_string()).collect();
    let mut alpha3: Vec<String> = isocountry::CountryCode::iter().map(|country| country.alpha3().to_string()).collect();
    alpha2.sort();
    alpha3.sort();
    alpha2.extend(alpha3);
    alpha2.retain(|code| CountryCode::parse(code).is_ok());
    alpha2.dedup();
    alpha2
}

/// A returnee's pseudonym: HMAC-SHA256 of the normalised case id under the
/// pseudonymisation key, as 64 lower-case hex characters. See `keys`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BeneficiaryRef(String);

impl BeneficiaryRef {
    pub fn from_digest(digest: [u8; 32]) -> Self {
        BeneficiaryRef(hex::encode(digest))
    }

    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let valid = text.len() == 64 && text.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(DomainError::invalid("beneficiary_ref", "is not 64 lower-case hex characters".to_string()));
        }
        Ok(BeneficiaryRef(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BeneficiaryRef {
    type Error = DomainError;
    fn try_from(text: String) -> Result<Self, DomainError> {
        BeneficiaryRef::parse(&text)
    }
}

impl From<BeneficiaryRef> for String {
    fn from(reference: BeneficiaryRef) -> String {
        reference.0
    }
}

impl fmt::Display for BeneficiaryRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for BeneficiaryRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// How a cash payment reached the returnee.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    CashInHand,
    MobileMoney,
    BankTransfer,
}

/// Who an in-kind grant served.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Individual,
    Community,
    Structural,
}

/// Which need an in-kind grant addressed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Economic,
    Social,
    Psychosocial,
}

impl Level {
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Individual => "individual",
            Level::Community => "community",
            Level::Structural => "structural",
        }
    }
}

impl Dimension {
    pub fn as_str(&self) -> &'static str {
        match self {
            Dimension::Economic => "economic",
            Dimension::Social => "social",
            Dimension::Psychosocial => "psychosocial",
        }
    }
}

/// The position of an event in the one global chain: 1, 2, 3, ...
pub type Seq = u64;
