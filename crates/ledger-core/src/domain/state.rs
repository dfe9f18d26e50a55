//! What the decision logic needs to know: registered donors and programmes,
//! the funding of each (programme, donor) and each budget line, in minor
//! units of the programme's currency. Folded from events by `apply`.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::events::{EventBody, MoneyEntry};
use super::types::{CountryCode, Currency, DonorCode, Money, ProgrammeCode, Seq, to_minor_units};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgrammeInfo {
    pub currency: Currency,
    pub countries: BTreeSet<CountryCode>,
}

/// Funding of one programme by one donor, in minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Funding {
    pub committed: i64,
    pub received: i64,
    /// Sum of the allocations to all budget lines of (programme, donor).
    pub allocated: i64,
}

impl Funding {
    pub fn unallocated(&self) -> i64 {
        self.committed - self.allocated
    }
}

/// A budget line is (programme, donor, country).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BudgetLineKey {
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub country: CountryCode,
}

impl std::fmt::Display for BudgetLineKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}/{}/{}", self.programme, self.donor, self.country)
    }
}

/// One budget line's figures, in minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetLine {
    /// Allocations, after reallocations and reversals.
    pub allocated: i64,
    pub disbursed_cash: i64,
    pub disbursed_in_kind: i64,
}

impl BudgetLine {
    pub fn disbursed(&self) -> i64 {
        self.disbursed_cash + self.disbursed_in_kind
    }

    pub fn available(&self) -> i64 {
        self.allocated - self.disbursed()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub donors: HashSet<DonorCode>,
    pub programmes: HashMap<ProgrammeCode, ProgrammeInfo>,
    pub funding: HashMap<(ProgrammeCode, DonorCode), Funding>,
    pub lines: HashMap<BudgetLineKey, BudgetLine>,
    pub reversed: HashSet<Seq>,
    /// The seq of the last event folded in (0 for an empty ledger).
    pub head_seq: Seq,
}

impl State {
    pub fn funding(&self, programme: &ProgrammeCode, donor: &DonorCode) -> Funding {
        self.funding.get(&(programme.clone(), donor.clone())).copied().unwrap_or_default()
    }

    pub fn line(&self, key: &BudgetLineKey) -> BudgetLine {
        self.lines.get(key).copied().unwrap_or_default()
    }

    /// Folds one event in. `seq` must follow `head_seq`.
    pub fn apply(&mut self, seq: Seq, body: &EventBody) {
        assert_eq!(seq, self.head_seq + 1, "events are folded in seq order without gaps");
        self.head_seq = seq;
        match body {
            EventBody::DonorRegistered(event) => {
                self.donors.insert(event.code.clone());
            }
            EventBody::ProgrammeRegistered(event) => {
                let info = ProgrammeInfo { currency: event.currency, countries: event.countries.iter().copied().collect() };
                self.programmes.insert(event.code.clone(), info);
            }
            EventBody::Money(entry) => self.apply_money(entry, 1),
            EventBody::EntryReversed(event) => {
                self.reversed.insert(event.reversed_seq);
                self.apply_money(&event.reversed, -1);
            }
        }
    }

    /// Applies a money entry's effect; `sign` is -1 for its reversal.
    fn apply_money(&mut self, entry: &MoneyEntry, sign: i64) {
        let (amount, currency) = entry.amount();
        let minor = sign * to_minor_units(amount, currency);
        let funding_key = (entry.programme().clone(), entry.donor().clone());
        let line_key =
            |country: CountryCode| BudgetLineKey { programme: entry.programme().clone(), donor: entry.donor().clone(), country };
        match entry {
            MoneyEntry::FundingCommitted(_) => self.funding.entry(funding_key).or_default().committed += minor,
            MoneyEntry::FundingReceived(_) => self.funding.entry(funding_key).or_default().received += minor,
            MoneyEntry::BudgetAllocated(event) => {
                self.funding.entry(funding_key).or_default().allocated += minor;
                self.lines.entry(line_key(event.country)).or_default().allocated += minor;
            }
            MoneyEntry::BudgetReallocated(event) => {
                self.lines.entry(line_key(event.from_country)).or_default().allocated -= minor;
                self.lines.entry(line_key(event.to_country)).or_default().allocated += minor;
            }
            MoneyEntry::CashReinsertionPaid(event) => {
                self.lines.entry(line_key(event.country)).or_default().disbursed_cash += minor;
            }
            MoneyEntry::InKindGrantDelivered(event) => {
                self.lines.entry(line_key(event.country)).or_default().disbursed_in_kind += minor;
            }
        }
    }

    /// The money-rule invariants, asserted in tests and after loading.
    pub fn check_invariants(&self) -> Result<(), String> {
        for ((programme, donor), funding) in &self.funding {
            if funding.allocated > funding.committed || funding.allocated < 0 || funding.received < 0 {
                return Err(format!("funding {programme}/{donor} breaks its bounds: {funding:?}"));
            }
        }
        for (key, line) in &self.lines {
            if line.available() < 0 || line.allocated < 0 || line.disbursed_cash < 0 || line.disbursed_in_kind < 0 {
                return Err(format!("budget line {key} breaks its bounds: {line:?}"));
            }
        }
        Ok(())
    }
}

/// Formats minor units of a programme currency for messages.
pub fn money_text(minor: i64, currency: Currency) -> rust_decimal::Decimal {
    Money::from_minor_units(minor, currency)
}
