//! Double entry: every money event yields postings (debits positive, credits
//! negative, in minor units) that sum to zero per currency.
//!
//! Accounts, with `P` programme, `D` donor, `C` country, `L` local currency:
//! - `pledges:D:P`        what D has committed to P and not yet paid in
//! - `commitments:P:D`    D's commitments to P not yet allocated (credit)
//! - `bank:P`             money P holds
//! - `budget:P:D:C`       money allocated to a budget line and not yet spent (credit)
//! - `spent:P:D:C`        disbursed from a budget line
//! - `payouts:P:C`        cash and in-kind assistance delivered in C, paid out of `bank:P`
//! - `local_paid:P:C` / `local_fx:P:C`  what reached returnees in local currency L,
//!   against the conversion account (one pair per currency)

use super::events::{EventBody, MoneyEntry};
use super::types::{Currency, to_minor_units};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    pub account: String,
    pub currency: Currency,
    /// Minor units; debit positive, credit negative.
    pub amount: i64,
}

fn pair(postings: &mut Vec<Posting>, debit: String, credit: String, currency: Currency, amount: i64) {
    postings.push(Posting { account: debit, currency, amount });
    postings.push(Posting { account: credit, currency, amount: -amount });
}

/// The postings of a money entry (`sign` -1 mirrors them for a reversal).
fn money_postings(entry: &MoneyEntry, sign: i64) -> Vec<Posting> {
    let (amount, currency) = entry.amount();
    let minor = sign * to_minor_units(amount, currency);
    let (programme, donor) = (entry.programme(), entry.donor());
    let budget = |country: &dyn std::fmt::Display| format!("budget:{programme}:{donor}:{country}");
    let mut postings = Vec::with_capacity(6);
    match entry {
        MoneyEntry::FundingCommitted(_) => {
            pair(
                &mut postings,
                format!("pledges:{donor}:{programme}"),
                format!("commitments:{programme}:{donor}"),
                currency,
                minor,
            );
        }
        MoneyEntry::FundingReceived(_) => {
            pair(&mut postings, format!("bank:{programme}"), format!("pledges:{donor}:{programme}"), currency, minor);
        }
        MoneyEntry::BudgetAllocated(event) => {
            pair(&mut postings, format!("commitments:{programme}:{donor}"), budget(&event.country), currency, minor);
        }
        MoneyEntry::BudgetReallocated(event) => {
            pair(&mut postings, budget(&event.from_country), budget(&event.to_country), currency, minor);
        }
        MoneyEntry::CashReinsertionPaid(event) => {
            let spent = format!("spent:{programme}:{donor}:{}", event.country);
            pair(&mut postings, budget(&event.country), spent, currency, minor);
            pair(&mut postings, format!("payouts:{programme}:{}", event.country), format!("bank:{programme}"), currency, minor);
            let local = sign * to_minor_units(event.paid_amount, event.paid_currency);
            let country = event.country;
            pair(
                &mut postings,
                format!("local_paid:{programme}:{country}"),
                format!("local_fx:{programme}:{country}"),
                event.paid_currency,
                local,
            );
        }
        MoneyEntry::InKindGrantDelivered(event) => {
            let spent = format!("spent:{programme}:{donor}:{}", event.country);
            pair(&mut postings, budget(&event.country), spent, currency, minor);
            pair(&mut postings, format!("payouts:{programme}:{}", event.country), format!("bank:{programme}"), currency, minor);
        }
    }
    postings
}

/// The postings an event yields; registrations yield none.
pub fn postings(body: &EventBody) -> Vec<Posting> {
    let postings = match body {
        // A hold is not a posting: held money is still on its budget line
        // until a delivered row is charged (its cash reinsertion payment).
        EventBody::DonorRegistered(_)
        | EventBody::ProgrammeRegistered(_)
        | EventBody::PaymentList(_)
        | EventBody::ProgrammeApprovalsSet(_) => Vec::new(),
        EventBody::Money(entry) => money_postings(entry, 1),
        EventBody::EntryReversed(event) => money_postings(&event.reversed, -1),
    };
    assert!(sums_to_zero(&postings), "postings of {} do not balance", body.event_type());
    postings
}

/// True when the postings sum to zero in every currency.
pub fn sums_to_zero(postings: &[Posting]) -> bool {
    let mut totals: std::collections::BTreeMap<Currency, i128> = std::collections::BTreeMap::new();
    for posting in postings {
        *totals.entry(posting.currency).or_default() += i128::from(posting.amount);
    }
    totals.values().all(|total| *total == 0)
}
