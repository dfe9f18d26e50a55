//! A programme's financial statement for one donor over a period of UTC
//! days: the position at the start (the end of the day before `from`), what
//! was recorded in the period (commitments, receipts, allocations,
//! reallocations, disbursements by country and kind, reversals), and the
//! position at the end of `to`.
//!
//! Events belong to the period by the day they were recorded, the same
//! rule the balance endpoints' `as_of` follows, so that the opening and
//! closing positions are exactly the balances as of those days, and
//! opening plus movements is closing (asserted). A reversal counts in the
//! period it was recorded, whatever the date of the entry it cancels.
//!
//! Money held by payment lists (imported, not yet charged or released) is
//! shown as `held` in each position and country, and is not available; a
//! delivered row is a cash reinsertion payment like any other.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ledger_core::domain::payment_lists::PaymentListEvent;
use ledger_core::domain::types::to_minor_units;
use ledger_core::domain::{Currency, DonorCode, EventBody, MoneyEntry, ProgrammeCode, Seq};
use ledger_core::store::Store;
use projections::balances::{Disbursed, Figures};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ReportError, fold_events};

/// What a statement is asked for: a programme, one of its donors, and the
/// first and last UTC days of the period (both included, `from <= to`).
#[derive(Clone, Debug)]
pub struct Period {
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// A donor's position in a programme, in minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub committed: i128,
    pub received: i128,
    pub allocated: i128,
    pub cash: i128,
    pub in_kind: i128,
    /// Held by payment lists.
    pub held: i128,
}

impl Position {
    pub fn disbursed(&self) -> i128 {
        self.cash + self.in_kind
    }

    /// allocated - disbursed - held
    pub fn available(&self) -> i128 {
        self.allocated - self.disbursed() - self.held
    }
}

/// One budget line's position (programme, donor, country), in minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinePosition {
    pub allocated: i128,
    pub cash: i128,
    pub in_kind: i128,
    /// Held by payment lists.
    pub held: i128,
}

/// What was recorded in the period, in minor units. Reversals are kept
/// apart from the entries they cancel and are signed: a reversed
/// commitment is a negative `commitments_reversed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Movements {
    pub commitments: i128,
    pub receipts: i128,
    pub allocations: i128,
    pub cash: i128,
    pub in_kind: i128,
    pub commitments_reversed: i128,
    pub receipts_reversed: i128,
    pub allocations_reversed: i128,
    pub cash_reversed: i128,
    pub in_kind_reversed: i128,
    /// Held by payment lists imported in the period, less what was
    /// charged or released from holds in it.
    pub held: i128,
}

/// One country's lines of the period, in minor units (signed like [`Movements`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountryMovements {
    pub opening: LinePosition,
    pub allocations: i128,
    /// Reallocations into the country less those out of it.
    pub reallocations: i128,
    pub cash: i128,
    pub in_kind: i128,
    /// Reversed allocations and reallocations: the change they made.
    pub allocations_reversed: i128,
    pub cash_reversed: i128,
    pub in_kind_reversed: i128,
    pub closing: LinePosition,
}

/// A statement, folded from the events.
#[derive(Clone, Debug)]
pub struct Statement {
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub currency: Currency,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The last event of the day before `from`, and of `to`.
    pub opening_seq: Seq,
    pub closing_seq: Seq,
    pub opening: Position,
    pub movements: Movements,
    pub closing: Position,
    pub countries: BTreeMap<String, CountryMovements>,
}

/// The fold of the events of one (programme, donor) into a statement.
struct StatementFold {
    programme: ProgrammeCode,
    donor: DonorCode,
    currency: Currency,
    opening_seq: Seq,
    opening: Position,
    movements: Movements,
    closing: Position,
    countries: BTreeMap<String, CountryMovements>,
}

/// What one money entry changes, in minor units, signed (`sign` -1 for a reversal).
struct EntryEffect {
    committed: i128,
    received: i128,
    /// (country, change of allocated)
    allocated: Vec<(String, i128)>,
    cash: Option<(String, i128)>,
    in_kind: Option<(String, i128)>,
    is_reallocation: bool,
}

fn effect_of(entry: &MoneyEntry, sign: i128) -> EntryEffect {
    let (amount, currency) = entry.amount();
    let minor = sign * i128::from(to_minor_units(amount, currency));
    let mut effect =
        EntryEffect { committed: 0, received: 0, allocated: Vec::new(), cash: None, in_kind: None, is_reallocation: false };
    match entry {
        MoneyEntry::FundingCommitted(_) => effect.committed = minor,
        MoneyEntry::FundingReceived(_) => effect.received = minor,
        MoneyEntry::BudgetAllocated(event) => effect.allocated.push((event.country.as_str().to_string(), minor)),
        MoneyEntry::BudgetReallocated(event) => {
            effect.allocated.push((event.from_country.as_str().to_string(), -minor));
            effect.allocated.push((event.to_country.as_str().to_string(), minor));
            effect.is_reallocation = true;
        }
        MoneyEntry::CashReinsertionPaid(event) => effect.cash = Some((event.country.as_str().to_string(), minor)),
        MoneyEntry::InKindGrantDelivered(event) => effect.in_kind = Some((event.country.as_str().to_string(), minor)),
    }
    effect
}

impl Position {
    fn add(&mut self, effect: &EntryEffect) {
        self.committed += effect.committed;
        self.received += effect.received;
        self.allocated += effect.allocated.iter().map(|(_, change)| change).sum::<i128>();
        self.cash += effect.cash.as_ref().map_or(0, |(_, change)| *change);
        self.in_kind += effect.in_kind.as_ref().map_or(0, |(_, change)| *change);
    }
}

impl LinePosition {
    fn add(&mut self, allocated: i128, cash: i128, in_kind: i128) {
        self.allocated += allocated;
        self.cash += cash;
        self.in_kind += in_kind;
    }
}

/// A country's lines, with the change to its (allocated, cash, in kind)
/// added to its closing position and, before the period, to its opening.
fn line<'a>(
    countries: &'a mut BTreeMap<String, CountryMovements>,
    country: &str,
    in_period: bool,
    (allocated, cash, in_kind): (i128, i128, i128),
) -> &'a mut CountryMovements {
    let lines = countries.entry(country.to_string()).or_default();
    lines.closing.add(allocated, cash, in_kind);
    if !in_period {
        lines.opening.add(allocated, cash, in_kind);
    }
    lines
}

impl StatementFold {
    fn apply(&mut self, seq: Seq, body: &EventBody) {
        let (entry, sign) = match body {
            EventBody::Money(entry) => (entry, 1),
            EventBody::EntryReversed(reversal) => (&reversal.reversed, -1),
            EventBody::PaymentList(event) => return self.apply_hold(seq, event),
            EventBody::DonorRegistered(_) | EventBody::ProgrammeRegistered(_) | EventBody::ProgrammeApprovalsSet(_) => return,
        };
        if entry.programme() != &self.programme || entry.donor() != &self.donor {
            return;
        }
        let effect = effect_of(entry, sign);
        let in_period = seq > self.opening_seq;
        self.closing.add(&effect);
        if !in_period {
            self.opening.add(&effect);
        } else {
            self.add_movement(&effect, sign < 0);
        }
        let countries = &mut self.countries;
        for (country, change) in &effect.allocated {
            let lines = line(countries, country, in_period, (*change, 0, 0));
            match (in_period, sign < 0, effect.is_reallocation) {
                (false, _, _) => {}
                (true, true, _) => lines.allocations_reversed += change,
                (true, false, true) => lines.reallocations += change,
                (true, false, false) => lines.allocations += change,
            }
        }
        if let Some((country, change)) = &effect.cash {
            let lines = line(countries, country, in_period, (0, *change, 0));
            match (in_period, sign < 0) {
                (false, _) => {}
                (true, true) => lines.cash_reversed += change,
                (true, false) => lines.cash += change,
            }
        }
        if let Some((country, change)) = &effect.in_kind {
            let lines = line(countries, country, in_period, (0, 0, *change));
            match (in_period, sign < 0) {
                (false, _) => {}
                (true, true) => lines.in_kind_reversed += change,
                (true, false) => lines.in_kind += change,
            }
        }
    }

    /// What a payment list event changes in the money held.
    fn apply_hold(&mut self, seq: Seq, event: &PaymentListEvent) {
        let (change, donor, country) = match event {
            PaymentListEvent::Imported(imported) => {
                (to_minor_units(imported.total, imported.currency), &imported.donor, imported.country)
            }
            PaymentListEvent::Confirmed(confirmed) => {
                let released: i64 = confirmed
                    .outcomes
                    .iter()
                    .map(|outcome| to_minor_units(outcome.charged + outcome.released, confirmed.currency))
                    .sum();
                (-released, &confirmed.donor, confirmed.country)
            }
            PaymentListEvent::Cancelled(cancelled) => {
                (-to_minor_units(cancelled.released, cancelled.currency), &cancelled.donor, cancelled.country)
            }
            PaymentListEvent::Approved(_) | PaymentListEvent::Released(_) | PaymentListEvent::Closed(_) => return,
        };
        if event.programme() != &self.programme || donor != &self.donor {
            return;
        }
        let change = i128::from(change);
        let in_period = seq > self.opening_seq;
        self.closing.held += change;
        let lines = self.countries.entry(country.as_str().to_string()).or_default();
        lines.closing.held += change;
        if in_period {
            self.movements.held += change;
        } else {
            self.opening.held += change;
            lines.opening.held += change;
        }
    }

    fn add_movement(&mut self, effect: &EntryEffect, reversal: bool) {
        let allocated: i128 = effect.allocated.iter().map(|(_, change)| change).sum();
        let cash = effect.cash.as_ref().map_or(0, |(_, change)| *change);
        let in_kind = effect.in_kind.as_ref().map_or(0, |(_, change)| *change);
        let movements = &mut self.movements;
        if reversal {
            movements.commitments_reversed += effect.committed;
            movements.receipts_reversed += effect.received;
            movements.allocations_reversed += allocated;
            movements.cash_reversed += cash;
            movements.in_kind_reversed += in_kind;
        } else {
            movements.commitments += effect.committed;
            movements.receipts += effect.received;
            movements.allocations += allocated;
            movements.cash += cash;
            movements.in_kind += in_kind;
        }
    }

    /// The statement, after checking that opening plus movements is closing.
    fn finish(self, period: &Period, closing_seq: Seq) -> Statement {
        let (opening, movements, closing) = (self.opening, self.movements, self.closing);
        let expected = Position {
            committed: opening.committed + movements.commitments + movements.commitments_reversed,
            received: opening.received + movements.receipts + movements.receipts_reversed,
            allocated: opening.allocated + movements.allocations + movements.allocations_reversed,
            cash: opening.cash + movements.cash + movements.cash_reversed,
            in_kind: opening.in_kind + movements.in_kind + movements.in_kind_reversed,
            held: opening.held + movements.held,
        };
        assert_eq!(expected, closing, "opening plus movements is the closing position");
        for lines in self.countries.values() {
            let allocated = lines.opening.allocated + lines.allocations + lines.reallocations + lines.allocations_reversed;
            assert_eq!(allocated, lines.closing.allocated, "a country's allocations add up");
            assert_eq!(lines.opening.cash + lines.cash + lines.cash_reversed, lines.closing.cash, "a country's cash adds up");
        }
        Statement {
            programme: self.programme,
            donor: self.donor,
            currency: self.currency,
            from: period.from,
            to: period.to,
            opening_seq: self.opening_seq,
            closing_seq,
            opening,
            movements,
            closing,
            countries: self.countries,
        }
    }
}

/// Folds the statement of `period` from the events up to `closing_seq`,
/// with the position at `opening_seq` as its opening. The caller has
/// checked that the programme, the donor and the funding exist.
pub async fn statement(
    store: &Store,
    period: &Period,
    currency: Currency,
    opening_seq: Seq,
    closing_seq: Seq,
) -> Result<Statement, ReportError> {
    assert!(opening_seq <= closing_seq, "the period's start is not after its end");
    let mut fold = StatementFold {
        programme: period.programme.clone(),
        donor: period.donor.clone(),
        currency,
        opening_seq,
        opening: Position::default(),
        movements: Movements::default(),
        closing: Position::default(),
        countries: BTreeMap::new(),
    };
    let needle = format!("\"{}\"", period.programme.as_str());
    fold_events(store, closing_seq, &needle, |record, body| {
        fold.apply(record.seq, &body);
        Ok(())
    })
    .await?;
    Ok(fold.finish(period, closing_seq))
}

/// A sum of minor units as a decimal string at the currency's scale.
pub fn format_amount(minor: i128, currency: Currency) -> String {
    rust_decimal::Decimal::from_i128_with_scale(minor, currency.minor_units()).to_string()
}

impl Position {
    /// The figures as the balance endpoints give them.
    pub fn figures(&self, currency: Currency) -> Figures {
        let format = |minor| format_amount(minor, currency);
        Figures {
            committed: format(self.committed),
            received: format(self.received),
            allocated: format(self.allocated),
            disbursed: Disbursed { cash: format(self.cash), in_kind: format(self.in_kind), total: format(self.disbursed()) },
            unallocated: format(self.committed - self.allocated),
            held: format(self.held),
            available: format(self.available()),
            cash_position: format(self.received - self.disbursed()),
        }
    }
}

/// The statement's summary as (figure, amount) lines, in the order every
/// format writes them.
pub fn summary_lines(statement: &Statement) -> Vec<(&'static str, i128)> {
    let (opening, movements, closing) = (&statement.opening, &statement.movements, &statement.closing);
    let position = |prefix: &str, position: &Position| -> Vec<(&'static str, i128)> {
        let values = [
            position.committed,
            position.received,
            position.allocated,
            position.cash,
            position.in_kind,
            position.disbursed(),
            position.committed - position.allocated,
            position.held,
            position.available(),
            position.received - position.disbursed(),
        ];
        let names: [&'static str; 10] = if prefix == "opening" { OPENING_NAMES } else { CLOSING_NAMES };
        names.into_iter().zip(values).collect()
    };
    let mut lines = position("opening", opening);
    lines.extend([
        ("commitments", movements.commitments),
        ("receipts", movements.receipts),
        ("allocations", movements.allocations),
        ("disbursed cash", movements.cash),
        ("disbursed in kind", movements.in_kind),
        ("commitments reversed", movements.commitments_reversed),
        ("receipts reversed", movements.receipts_reversed),
        ("allocations reversed", movements.allocations_reversed),
        ("disbursed cash reversed", movements.cash_reversed),
        ("disbursed in kind reversed", movements.in_kind_reversed),
        ("held by payment lists", movements.held),
    ]);
    lines.extend(position("closing", closing));
    lines
}

const OPENING_NAMES: [&str; 10] = [
    "opening committed",
    "opening received",
    "opening allocated",
    "opening disbursed cash",
    "opening disbursed in kind",
    "opening disbursed",
    "opening unallocated",
    "opening held",
    "opening available",
    "opening cash position",
];
const CLOSING_NAMES: [&str; 10] = [
    "closing committed",
    "closing received",
    "closing allocated",
    "closing disbursed cash",
    "closing disbursed in kind",
    "closing disbursed",
    "closing unallocated",
    "closing held",
    "closing available",
    "closing cash position",
];

/// The columns of the by-country detail, after the country.
pub const COUNTRY_COLUMNS: [&str; 15] = [
    "opening allocated",
    "opening disbursed cash",
    "opening disbursed in kind",
    "allocations",
    "reallocations",
    "disbursed cash",
    "disbursed in kind",
    "allocations reversed",
    "disbursed cash reversed",
    "disbursed in kind reversed",
    "closing allocated",
    "closing disbursed cash",
    "closing disbursed in kind",
    "closing held",
    "closing available",
];

/// One country's detail, in the order of [`COUNTRY_COLUMNS`].
pub fn country_values(lines: &CountryMovements) -> [i128; 15] {
    let closing = &lines.closing;
    [
        lines.opening.allocated,
        lines.opening.cash,
        lines.opening.in_kind,
        lines.allocations,
        lines.reallocations,
        lines.cash,
        lines.in_kind,
        lines.allocations_reversed,
        lines.cash_reversed,
        lines.in_kind_reversed,
        closing.allocated,
        closing.cash,
        closing.in_kind,
        closing.held,
        closing.allocated - closing.cash - closing.in_kind - closing.held,
    ]
}

/// A statement as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatementView {
    #[schema(example = "MOTUSE")]
    pub programme: String,
    #[schema(example = "EU-AMIF")]
    pub donor: String,
    #[schema(example = "EUR")]
    pub currency: String,
    #[schema(value_type = String, format = Date)]
    pub from: String,
    #[schema(value_type = String, format = Date)]
    pub to: String,
    /// The position at the end of the day before `from`.
    pub opening: Figures,
    /// What was recorded in the period; reversals are negative.
    pub movements: BTreeMap<String, String>,
    /// The position at the end of `to`: the balance endpoints' figures as of that day.
    pub closing: Figures,
    /// Per country: the columns of the by-country detail.
    pub by_country: Vec<CountryView>,
    /// The last event the closing position reflects.
    pub as_of_seq: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountryView {
    #[schema(example = "MA")]
    pub country: String,
    /// Each column of the by-country detail, by name.
    pub figures: BTreeMap<String, String>,
}

impl StatementView {
    pub fn of(statement: &Statement) -> StatementView {
        let currency = statement.currency;
        let format = |minor| format_amount(minor, currency);
        let movements = summary_lines(statement)
            .into_iter()
            .filter(|(name, _)| !name.starts_with("opening") && !name.starts_with("closing"))
            .map(|(name, value)| (name.to_string(), format(value)))
            .collect();
        let by_country = statement
            .countries
            .iter()
            .map(|(country, lines)| CountryView {
                country: country.clone(),
                figures: COUNTRY_COLUMNS
                    .iter()
                    .zip(country_values(lines))
                    .map(|(name, value)| (name.to_string(), format(value)))
                    .collect(),
            })
            .collect();
        StatementView {
            programme: statement.programme.as_str().to_string(),
            donor: statement.donor.as_str().to_string(),
            currency: currency.code().to_string(),
            from: statement.from.to_string(),
            to: statement.to.to_string(),
            opening: statement.opening.figures(currency),
            movements,
            closing: statement.closing.figures(currency),
            by_country,
            as_of_seq: statement.closing_seq,
        }
    }
}
