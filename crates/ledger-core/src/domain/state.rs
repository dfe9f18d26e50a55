//! What the decision logic needs to know: registered donors and programmes,
//! the funding of each (programme, donor) and each budget line, in minor
//! units of the programme's currency. Folded from events by `apply`.
//!
//! Every total kept here is one the projections keep too (or bounds one
//! they keep); each is changed with checked arithmetic, and `decide`
//! refuses a command that would take one past `TOTAL_MINOR_UNITS_MAX`
//! (`State::total_past_limit`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;

use super::events::{EventBody, MoneyEntry};
use super::payment_lists::{APPROVALS_REQUIRED_DEFAULT, ListRowState, PaymentListEvent, PaymentListState, PaymentListStatus};
use super::types::{CountryCode, Currency, DonorCode, Money, ProgrammeCode, Seq, TOTAL_MINOR_UNITS_MAX, to_minor_units};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgrammeInfo {
    pub currency: Currency,
    pub countries: BTreeSet<CountryCode>,
    /// The first and last day a payment or grant of the programme may be dated.
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// Approvals each payment list imported from now on needs.
    pub approvals_required: u32,
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

/// One programme's totals, all donors and countries together, in minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgrammeTotals {
    pub committed: i64,
    pub received: i64,
    pub allocated: i64,
    /// Cash payments and in-kind grants.
    pub disbursed: i64,
}

/// One total the ledger keeps, in minor units.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Total {
    ProgrammeCommitted(ProgrammeCode),
    ProgrammeReceived(ProgrammeCode),
    ProgrammeAllocated(ProgrammeCode),
    ProgrammeDisbursed(ProgrammeCode),
    FundingCommitted(ProgrammeCode, DonorCode),
    FundingReceived(ProgrammeCode, DonorCode),
    FundingAllocated(ProgrammeCode, DonorCode),
    LineAllocated(BudgetLineKey),
    LineDisbursedCash(BudgetLineKey),
    LineDisbursedInKind(BudgetLineKey),
    /// What payment lists hold on a budget line.
    LineHeld(BudgetLineKey),
    /// What a programme's cash payments in one country delivered in one
    /// local currency.
    LocalPaid(ProgrammeCode, CountryCode, Currency),
}

impl std::fmt::Display for Total {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Total::ProgrammeCommitted(programme) => write!(formatter, "the committed total of programme {programme}"),
            Total::ProgrammeReceived(programme) => write!(formatter, "the received total of programme {programme}"),
            Total::ProgrammeAllocated(programme) => write!(formatter, "the allocated total of programme {programme}"),
            Total::ProgrammeDisbursed(programme) => write!(formatter, "the disbursed total of programme {programme}"),
            Total::FundingCommitted(programme, donor) => write!(formatter, "the commitments of {donor} to {programme}"),
            Total::FundingReceived(programme, donor) => write!(formatter, "the receipts from {donor} for {programme}"),
            Total::FundingAllocated(programme, donor) => write!(formatter, "the allocations of {donor} to {programme}"),
            Total::LineAllocated(key) => write!(formatter, "the allocations of budget line {key}"),
            Total::LineDisbursedCash(key) => write!(formatter, "the cash paid from budget line {key}"),
            Total::LineDisbursedInKind(key) => write!(formatter, "the in-kind grants of budget line {key}"),
            Total::LineHeld(key) => write!(formatter, "the money payment lists hold on budget line {key}"),
            Total::LocalPaid(programme, country, currency) => {
                write!(formatter, "the {currency} paid in {country} by programme {programme}")
            }
        }
    }
}

/// How one money entry changes one total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotalChange {
    pub total: Total,
    pub currency: Currency,
    /// Minor units; negative when the total goes down.
    pub minor: i64,
}

/// The totals a money entry changes (`sign` -1 for its reversal). The
/// programme's totals come first: they are the largest.
fn total_changes(entry: &MoneyEntry, sign: i64) -> Vec<TotalChange> {
    let (amount, currency) = entry.amount();
    let minor = sign * to_minor_units(amount, currency);
    let (programme, donor) = (entry.programme().clone(), entry.donor().clone());
    let line = |country: CountryCode| BudgetLineKey { programme: programme.clone(), donor: donor.clone(), country };
    let change = |total: Total, minor: i64| TotalChange { total, currency, minor };
    match entry {
        MoneyEntry::FundingCommitted(_) => vec![
            change(Total::ProgrammeCommitted(programme.clone()), minor),
            change(Total::FundingCommitted(programme.clone(), donor.clone()), minor),
        ],
        MoneyEntry::FundingReceived(_) => vec![
            change(Total::ProgrammeReceived(programme.clone()), minor),
            change(Total::FundingReceived(programme.clone(), donor.clone()), minor),
        ],
        MoneyEntry::BudgetAllocated(event) => vec![
            change(Total::ProgrammeAllocated(programme.clone()), minor),
            change(Total::FundingAllocated(programme.clone(), donor.clone()), minor),
            change(Total::LineAllocated(line(event.country)), minor),
        ],
        MoneyEntry::BudgetReallocated(event) => vec![
            change(Total::LineAllocated(line(event.from_country)), -minor),
            change(Total::LineAllocated(line(event.to_country)), minor),
        ],
        MoneyEntry::CashReinsertionPaid(event) => vec![
            change(Total::ProgrammeDisbursed(programme.clone()), minor),
            change(Total::LineDisbursedCash(line(event.country)), minor),
            TotalChange {
                total: Total::LocalPaid(programme.clone(), event.country, event.paid_currency),
                currency: event.paid_currency,
                minor: sign * to_minor_units(event.paid_amount, event.paid_currency),
            },
        ],
        MoneyEntry::InKindGrantDelivered(event) => vec![
            change(Total::ProgrammeDisbursed(programme.clone()), minor),
            change(Total::LineDisbursedInKind(line(event.country)), minor),
        ],
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
    /// Held by payment lists: imported, not yet charged or released.
    pub held: i64,
}

impl BudgetLine {
    pub fn disbursed(&self) -> i64 {
        self.disbursed_cash + self.disbursed_in_kind
    }

    /// Allocated − disbursed − held.
    pub fn available(&self) -> i64 {
        self.allocated - self.disbursed() - self.held
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub donors: HashSet<DonorCode>,
    pub programmes: HashMap<ProgrammeCode, ProgrammeInfo>,
    pub programme_totals: HashMap<ProgrammeCode, ProgrammeTotals>,
    pub funding: HashMap<(ProgrammeCode, DonorCode), Funding>,
    pub lines: HashMap<BudgetLineKey, BudgetLine>,
    /// Minor units of each local currency paid per (programme, country).
    pub local_paid: HashMap<(ProgrammeCode, CountryCode, Currency), i64>,
    pub reversed: HashSet<Seq>,
    /// Every payment list, shared so that cloning the state stays cheap
    /// (a list is copied only when an event changes it).
    pub payment_lists: HashMap<uuid::Uuid, Arc<PaymentListState>>,
    /// Every payment reference issued, in every list (shared, like the
    /// lists, so that cloning the state does not copy them).
    pub payment_references: Arc<HashSet<String>>,
    /// The seq of the last event folded in (0 for an empty ledger).
    pub head_seq: Seq,
}

/// Payment lists that are closed or cancelled, by id. Such a list never
/// changes again, so a copy known once stays true.
pub type FinalPaymentLists = HashMap<uuid::Uuid, Arc<PaymentListState>>;

impl State {
    /// The closed and cancelled lists of this state.
    pub fn final_payment_lists(&self) -> FinalPaymentLists {
        let finals = self.payment_lists.iter().filter(|(_, list)| list.status.is_final());
        finals.map(|(id, list)| (*id, list.clone())).collect()
    }

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
                let info = ProgrammeInfo {
                    currency: event.currency,
                    countries: event.countries.iter().copied().collect(),
                    starts_on: event.starts_on,
                    ends_on: event.ends_on,
                    approvals_required: event.approvals_required.unwrap_or(APPROVALS_REQUIRED_DEFAULT),
                };
                self.programmes.insert(event.code.clone(), info);
            }
            EventBody::ProgrammeApprovalsSet(event) => {
                let info = self.programmes.get_mut(&event.programme).expect("approvals are set for a registered programme");
                info.approvals_required = event.approvals_required;
            }
            EventBody::PaymentList(event) => self.apply_payment_list(event),
            EventBody::Money(entry) => self.apply_money(entry, 1),
            EventBody::EntryReversed(event) => {
                self.reversed.insert(event.reversed_seq);
                self.apply_money(&event.reversed, -1);
            }
        }
    }

    /// Folds in a payment list event: the list's own state, its hold on
    /// its budget line, the references issued.
    fn apply_payment_list(&mut self, event: &PaymentListEvent) {
        if let PaymentListEvent::Imported(imported) = event {
            let list = imported_list(imported);
            let line = self.lines.entry(list.line.clone()).or_default();
            line.held = line.held.checked_add(list.held).expect("decided lists keep every total within TOTAL_MINOR_UNITS_MAX");
            self.payment_lists.insert(imported.list, Arc::new(list));
            return;
        }
        let list = Arc::make_mut(self.payment_lists.get_mut(&event.list()).expect("events follow their list's import"));
        let held_before = list.held;
        list.apply(event);
        if let PaymentListEvent::Released(released) = event {
            let references = released.references.iter().map(|reference| reference.reference.clone());
            Arc::make_mut(&mut self.payment_references).extend(references);
        }
        let released = held_before - list.held;
        let line = self.lines.entry(list.line.clone()).or_default();
        line.held -= released;
    }

    /// Applies a money entry's effect; `sign` is -1 for its reversal.
    fn apply_money(&mut self, entry: &MoneyEntry, sign: i64) {
        for change in total_changes(entry, sign) {
            let slot = self.total_mut(&change.total);
            *slot = slot.checked_add(change.minor).expect("decided entries keep every total within TOTAL_MINOR_UNITS_MAX");
        }
    }

    /// The current value of a total.
    pub fn total(&self, total: &Total) -> i64 {
        let funding = |programme: &ProgrammeCode, donor: &DonorCode| self.funding(programme, donor);
        let programme = |programme: &ProgrammeCode| self.programme_totals.get(programme).copied().unwrap_or_default();
        match total {
            Total::ProgrammeCommitted(code) => programme(code).committed,
            Total::ProgrammeReceived(code) => programme(code).received,
            Total::ProgrammeAllocated(code) => programme(code).allocated,
            Total::ProgrammeDisbursed(code) => programme(code).disbursed,
            Total::FundingCommitted(code, donor) => funding(code, donor).committed,
            Total::FundingReceived(code, donor) => funding(code, donor).received,
            Total::FundingAllocated(code, donor) => funding(code, donor).allocated,
            Total::LineAllocated(key) => self.line(key).allocated,
            Total::LineDisbursedCash(key) => self.line(key).disbursed_cash,
            Total::LineDisbursedInKind(key) => self.line(key).disbursed_in_kind,
            Total::LineHeld(key) => self.line(key).held,
            Total::LocalPaid(code, country, currency) => {
                self.local_paid.get(&(code.clone(), *country, *currency)).copied().unwrap_or_default()
            }
        }
    }

    fn total_mut(&mut self, total: &Total) -> &mut i64 {
        fn funding<'state>(state: &'state mut State, programme: &ProgrammeCode, donor: &DonorCode) -> &'state mut Funding {
            state.funding.entry((programme.clone(), donor.clone())).or_default()
        }
        match total {
            Total::ProgrammeCommitted(code) => &mut self.programme_totals.entry(code.clone()).or_default().committed,
            Total::ProgrammeReceived(code) => &mut self.programme_totals.entry(code.clone()).or_default().received,
            Total::ProgrammeAllocated(code) => &mut self.programme_totals.entry(code.clone()).or_default().allocated,
            Total::ProgrammeDisbursed(code) => &mut self.programme_totals.entry(code.clone()).or_default().disbursed,
            Total::FundingCommitted(code, donor) => &mut funding(self, code, donor).committed,
            Total::FundingReceived(code, donor) => &mut funding(self, code, donor).received,
            Total::FundingAllocated(code, donor) => &mut funding(self, code, donor).allocated,
            Total::LineAllocated(key) => &mut self.lines.entry(key.clone()).or_default().allocated,
            Total::LineDisbursedCash(key) => &mut self.lines.entry(key.clone()).or_default().disbursed_cash,
            Total::LineDisbursedInKind(key) => &mut self.lines.entry(key.clone()).or_default().disbursed_in_kind,
            Total::LineHeld(key) => &mut self.lines.entry(key.clone()).or_default().held,
            Total::LocalPaid(code, country, currency) => self.local_paid.entry((code.clone(), *country, *currency)).or_default(),
        }
    }

    /// The first total that folding in `body` would take past
    /// `TOTAL_MINOR_UNITS_MAX`, if any.
    pub fn total_past_limit(&self, body: &EventBody) -> Option<TotalChange> {
        let changes = match body {
            EventBody::Money(entry) => total_changes(entry, 1),
            EventBody::EntryReversed(event) => total_changes(&event.reversed, -1),
            EventBody::PaymentList(PaymentListEvent::Imported(imported)) => {
                let key = BudgetLineKey {
                    programme: imported.programme.clone(),
                    donor: imported.donor.clone(),
                    country: imported.country,
                };
                let minor = to_minor_units(imported.total, imported.currency);
                vec![TotalChange { total: Total::LineHeld(key), currency: imported.currency, minor }]
            }
            // The other list events only lower the hold; their payments
            // are checked as money entries of their own.
            EventBody::DonorRegistered(_)
            | EventBody::ProgrammeRegistered(_)
            | EventBody::ProgrammeApprovalsSet(_)
            | EventBody::PaymentList(_) => return None,
        };
        changes.into_iter().find(|change| self.past_limit(change, 0))
    }

    /// Whether `change`, on top of `already` minor units added to the same
    /// total earlier in the unit, takes it past `TOTAL_MINOR_UNITS_MAX`.
    fn past_limit(&self, change: &TotalChange, already: i64) -> bool {
        let minor = change.minor.saturating_add(already);
        minor > 0 && self.total(&change.total).checked_add(minor).is_none_or(|after| after > TOTAL_MINOR_UNITS_MAX)
    }

    /// As `total_past_limit`, for the events of one decision together:
    /// each total's changes are summed before the check.
    pub fn totals_past_limit(&self, bodies: &[EventBody]) -> Option<TotalChange> {
        if let [body] = bodies {
            return self.total_past_limit(body);
        }
        let mut sums: HashMap<Total, i64> = HashMap::new();
        for body in bodies {
            let changes = match body {
                EventBody::Money(entry) => total_changes(entry, 1),
                EventBody::EntryReversed(event) => total_changes(&event.reversed, -1),
                other => self.total_past_limit(other).into_iter().collect(),
            };
            for change in changes {
                let already = sums.get(&change.total).copied().unwrap_or_default();
                if self.past_limit(&change, already) {
                    return Some(change);
                }
                *sums.entry(change.total.clone()).or_default() = already.saturating_add(change.minor);
            }
        }
        None
    }

    /// Sets each programme's totals from its funding and budget lines (for
    /// a state loaded from the projections rather than folded).
    pub fn total_programmes(&mut self) -> Result<(), String> {
        let overflow = |programme: &ProgrammeCode| format!("the totals of programme {programme} are past the ledger's limit");
        let mut totals: HashMap<ProgrammeCode, ProgrammeTotals> = HashMap::new();
        for ((programme, _), funding) in &self.funding {
            let sum = totals.entry(programme.clone()).or_default();
            let add = |total: i64, minor: i64| total.checked_add(minor).filter(|after| *after <= TOTAL_MINOR_UNITS_MAX);
            sum.committed = add(sum.committed, funding.committed).ok_or_else(|| overflow(programme))?;
            sum.received = add(sum.received, funding.received).ok_or_else(|| overflow(programme))?;
            sum.allocated = add(sum.allocated, funding.allocated).ok_or_else(|| overflow(programme))?;
        }
        for (key, line) in &self.lines {
            let sum = totals.entry(key.programme.clone()).or_default();
            sum.disbursed = sum
                .disbursed
                .checked_add(line.disbursed())
                .filter(|after| *after <= TOTAL_MINOR_UNITS_MAX)
                .ok_or_else(|| overflow(&key.programme))?;
        }
        self.programme_totals = totals;
        Ok(())
    }

    /// The money-rule invariants, asserted in tests and after loading.
    pub fn check_invariants(&self) -> Result<(), String> {
        for ((programme, donor), funding) in &self.funding {
            if funding.allocated > funding.committed || funding.allocated < 0 || funding.received < 0 {
                return Err(format!("funding {programme}/{donor} breaks its bounds: {funding:?}"));
            }
        }
        for (key, line) in &self.lines {
            let negative = line.allocated < 0 || line.disbursed_cash < 0 || line.disbursed_in_kind < 0 || line.held < 0;
            if line.available() < 0 || negative {
                return Err(format!("budget line {key} breaks its bounds: {line:?}"));
            }
        }
        Ok(())
    }
}

/// A list as its import leaves it.
fn imported_list(imported: &super::payment_lists::PaymentListImported) -> PaymentListState {
    let rows: Vec<ListRowState> = imported
        .rows
        .iter()
        .map(|row| ListRowState {
            row: row.row,
            beneficiary_ref: row.beneficiary_ref.clone(),
            amount_minor: to_minor_units(row.amount, imported.currency),
            paid_minor: to_minor_units(row.paid_amount, row.paid_currency),
            paid_currency: row.paid_currency,
            method: row.method,
            reference: None,
            outcome: None,
        })
        .collect();
    PaymentListState {
        line: BudgetLineKey { programme: imported.programme.clone(), donor: imported.donor.clone(), country: imported.country },
        currency: imported.currency,
        status: PaymentListStatus::Imported,
        imported_by: imported.imported_by.clone(),
        content_hash: imported.content_hash.clone(),
        approvals_required: imported.approvals_required,
        approvals: Vec::new(),
        rows,
        by_reference: HashMap::new(),
        held: to_minor_units(imported.total, imported.currency),
    }
}

/// Formats minor units of a programme currency for messages.
pub fn money_text(minor: i64, currency: Currency) -> rust_decimal::Decimal {
    Money::from_minor_units(minor, currency)
}
