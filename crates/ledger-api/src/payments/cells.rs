//! The cells of the payment files, each parsed into its type or refused
//! with a message that names what the cell must be and never repeats what
//! it holds.

use chrono::NaiveDate;
use ledger_core::domain::types::{self, PaymentMethod};
use ledger_core::domain::{Currency, DomainError, Money};

use crate::http::input;

/// The methods, as a file writes them.
pub const METHODS: [&str; 3] = ["cash_in_hand", "mobile_money", "bank_transfer"];

pub fn method_name(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::CashInHand => METHODS[0],
        PaymentMethod::MobileMoney => METHODS[1],
        PaymentMethod::BankTransfer => METHODS[2],
    }
}

/// A cell that must be there.
pub fn required<'a>(cell: Option<&'a str>, what: &str) -> Result<&'a str, String> {
    cell.ok_or_else(|| format!("is empty: give {what}"))
}

/// An amount of `currency`: the plain decimal form, more than zero, no
/// more decimals than the currency has.
pub fn money(text: &str, currency: Currency) -> Result<Money, String> {
    let minor_units = currency.minor_units();
    let decimal = input::plain_decimal(text).ok_or_else(|| {
        format!(
            "is not a decimal amount like {}: digits, an optional point and at most {minor_units} decimals, no sign, spaces or thousands separators",
            example_amount(currency)
        )
    })?;
    Money::parse(decimal, currency).map_err(|error| match error {
        DomainError::NotPositive { .. } => "must be more than zero".to_string(),
        DomainError::TooManyDecimals { .. } => {
            format!("has more decimals than {currency} allows ({minor_units}); round it to at most {minor_units}")
        }
        DomainError::AmountTooLarge { .. } => {
            format!("is larger than a single payment may be ({} {currency})", types::AMOUNT_MAJOR_UNITS_MAX)
        }
        other => other.to_string(),
    })
}

fn example_amount(currency: Currency) -> String {
    match currency.minor_units() {
        0 => "3500".to_string(),
        places => format!("350.{}", "0".repeat(places as usize)),
    }
}

pub fn currency(text: &str) -> Result<Currency, String> {
    Currency::parse(text).map_err(|_| "is not an ISO 4217 currency code in capitals, such as MAD, TND or XOF".to_string())
}

pub fn method(text: &str) -> Result<PaymentMethod, String> {
    let methods = [PaymentMethod::CashInHand, PaymentMethod::MobileMoney, PaymentMethod::BankTransfer];
    methods
        .into_iter()
        .find(|method| method_name(*method) == text)
        .ok_or_else(|| format!("must be one of {}", METHODS.join(", ")))
}

/// One line of free text of at most `chars_max` characters.
pub fn free_text(text: &str, chars_max: usize) -> Result<String, String> {
    if text.chars().count() > chars_max {
        return Err(format!("is longer than {chars_max} characters"));
    }
    types::parse_text("text", text).map_err(|error| match error {
        DomainError::Invalid { message, .. } => message,
        other => other.to_string(),
    })
}

pub fn day(text: &str) -> Result<NaiveDate, String> {
    input::parse_date(text)
        .ok_or_else(|| format!("is not a date YYYY-MM-DD from {} to {}, such as 2025-03-31", input::DATE_FIRST, input::DATE_LAST))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_for_their_currency_and_refused_without_repeating_the_cell() {
        let eur = Currency::parse("EUR").unwrap();
        let xof = Currency::parse("XOF").unwrap();
        assert_eq!(money("350.5", eur).unwrap().amount.to_string(), "350.50");
        assert_eq!(money("12000", xof).unwrap().amount.to_string(), "12000");
        for (text, currency, reason) in [
            ("0", eur, "more than zero"),
            ("12000.5", xof, "more decimals than XOF allows (0)"),
            ("1,200.00", eur, "not a decimal amount like 350.00"),
            ("MA-2024-77", xof, "not a decimal amount like 3500"),
            ("9999999999999", eur, "larger than a single payment"),
        ] {
            let message = money(text, currency).unwrap_err();
            assert!(message.contains(reason), "{text}: {message}");
            assert!(!message.contains(text), "{text} is not repeated: {message}");
        }
    }

    #[test]
    fn currencies_methods_texts_and_days_say_what_they_must_be() {
        assert_eq!(currency("TND").unwrap().minor_units(), 3);
        assert!(currency("mad").unwrap_err().contains("ISO 4217"));
        assert_eq!(method("mobile_money").unwrap(), PaymentMethod::MobileMoney);
        assert!(method("cheque").unwrap_err().contains("cash_in_hand, mobile_money, bank_transfer"));
        assert!(free_text("x".repeat(65).as_str(), 64).unwrap_err().contains("longer than 64"));
        assert!(free_text("a\u{202E}b", 64).unwrap_err().contains("bidirectional"));
        assert_eq!(free_text("batch 7", 64).unwrap(), "batch 7");
        assert!(day("31/03/2025").unwrap_err().contains("YYYY-MM-DD"));
        assert_eq!(required(None, "the case id").unwrap_err(), "is empty: give the case id");
    }
}
