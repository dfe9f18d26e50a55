//! The projection tables as rows keyed by their primary key, and the pure
//! fold of events into changes to those rows. The same fold serves the live
//! append (changes added to existing rows) and a rebuild (changes added to
//! empty tables), so the two cannot drift apart.

mod payment_lists;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use ledger_core::chain::EventRecord;
use ledger_core::domain::events::{CashReinsertionPaid, InKindGrantDelivered};
use ledger_core::domain::postings::{Posting, postings};
use ledger_core::domain::types::to_minor_units;
use ledger_core::domain::{EventBody, MoneyEntry};

/// A column value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Text(String),
    Int(i64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Text(text) => formatter.write_str(text),
            Value::Int(number) => write!(formatter, "{number}"),
        }
    }
}

fn text(value: impl ToString) -> Value {
    Value::Text(value.to_string())
}

/// How a change combines with a row already in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Added to the stored value (money and counters).
    Add,
    /// Replaces the stored value.
    Set,
}

/// One projection table: its name, key columns and value columns.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    pub values: &'static [(&'static str, Merge)],
}

pub const DONORS: Table = Table {
    name: "donors",
    keys: &["code"],
    values: &[("name", Merge::Set), ("kind", Merge::Set), ("registered_seq", Merge::Set)],
};
pub const PROGRAMMES: Table = Table {
    name: "programmes",
    keys: &["code"],
    values: &[
        ("name", Merge::Set),
        ("currency", Merge::Set),
        ("countries", Merge::Set),
        ("implementer", Merge::Set),
        ("starts_on", Merge::Set),
        ("ends_on", Merge::Set),
        ("registered_seq", Merge::Set),
    ],
};
pub const FUNDING: Table = Table {
    name: "funding",
    keys: &["programme", "donor"],
    values: &[("currency", Merge::Set), ("committed", Merge::Add), ("received", Merge::Add), ("allocated", Merge::Add)],
};
pub const BUDGET_LINES: Table = Table {
    name: "budget_lines",
    keys: &["programme", "donor", "country"],
    values: &[
        ("currency", Merge::Set),
        ("allocated", Merge::Add),
        ("disbursed_cash", Merge::Add),
        ("disbursed_in_kind", Merge::Add),
        ("held", Merge::Add),
    ],
};
pub const REVERSALS: Table = Table { name: "reversals", keys: &["reversed_seq"], values: &[("reversal_seq", Merge::Set)] };
/// The postings of each event, as one row: a JSON array of
/// `[account, currency, amount]` arrays in line order (`journal_postings`).
pub const JOURNAL: Table = Table { name: "journal", keys: &["seq"], values: &[("postings", Merge::Set)] };
/// The journal line by line, as the `postings` view shows it; compared by
/// `rebuild::check`, never written.
pub const POSTINGS: Table = Table {
    name: "postings",
    keys: &["seq", "line"],
    values: &[("account", Merge::Set), ("currency", Merge::Set), ("amount", Merge::Set)],
};
pub const ACCOUNT_BALANCES: Table =
    Table { name: "account_balances", keys: &["account", "currency"], values: &[("balance", Merge::Add)] };
pub const LOCAL_PAID: Table =
    Table { name: "local_paid", keys: &["programme", "country", "currency"], values: &[("amount", Merge::Add)] };
pub const DISBURSEMENT_SPLITS: Table = Table {
    name: "disbursement_splits",
    keys: &["programme", "donor", "country", "level", "dimension"],
    values: &[("currency", Merge::Set), ("amount", Merge::Add)],
};
pub const ASSISTANCE: Table = Table {
    name: "assistance",
    keys: &["seq"],
    values: &[
        ("beneficiary_ref", Merge::Set),
        ("programme", Merge::Set),
        ("donor", Merge::Set),
        ("country", Merge::Set),
        ("kind", Merge::Set),
        ("currency", Merge::Set),
        ("amount", Merge::Set),
        ("assisted_on", Merge::Set),
        ("reversed", Merge::Add),
    ],
};
/// Active (not reversed) disbursements per returnee, programme and
/// country; the returnees reached per scope follow from them
/// (`Changes::add_reach_totals`).
pub const REACH: Table =
    Table { name: "reach", keys: &["beneficiary_ref", "programme", "country"], values: &[("disbursements", Merge::Add)] };
pub const REACH_TOTALS: Table = Table { name: "reach_totals", keys: &["scope"], values: &[("beneficiaries", Merge::Add)] };
/// Programmes whose required approvals were stated (at registration or
/// later); the others require `APPROVALS_REQUIRED_DEFAULT`.
pub const PROGRAMME_APPROVALS: Table = Table {
    name: "programme_approvals",
    keys: &["programme"],
    values: &[("approvals_required", Merge::Set), ("set_seq", Merge::Set)],
};
/// A payment list as imported; written once.
pub const PAYMENT_LISTS: Table = Table {
    name: "payment_lists",
    keys: &["id"],
    values: &[
        ("programme", Merge::Set),
        ("donor", Merge::Set),
        ("country", Merge::Set),
        ("currency", Merge::Set),
        ("planned_on", Merge::Set),
        ("imported_by", Merge::Set),
        ("imported_seq", Merge::Set),
        ("imported_at", Merge::Set),
        ("content_hash", Merge::Set),
        ("approvals_required", Merge::Set),
        ("rows", Merge::Set),
        ("total", Merge::Set),
    ],
};
/// Where each list stands: status and totals in minor units of the
/// programme's currency (`failed`: amounts of failed rows; `released_back`:
/// everything released from the hold without a charge).
pub const PAYMENT_LIST_TOTALS: Table = Table {
    name: "payment_list_totals",
    keys: &["id"],
    values: &[
        ("programme", Merge::Set),
        ("status", Merge::Set),
        ("held", Merge::Add),
        ("delivered", Merge::Add),
        ("failed", Merge::Add),
        ("released_back", Merge::Add),
        ("approvals", Merge::Add),
        ("updated_seq", Merge::Set),
    ],
};
pub const PAYMENT_LIST_APPROVALS: Table = Table {
    name: "payment_list_approvals",
    keys: &["list", "approved_by"],
    values: &[("approval", Merge::Set), ("approved_seq", Merge::Set), ("approved_at", Merge::Set)],
};
/// The rows of each list as imported (`row_reference` empty when absent).
pub const PAYMENT_LIST_ROWS: Table = Table {
    name: "payment_list_rows",
    keys: &["list", "row"],
    values: &[
        ("beneficiary_ref", Merge::Set),
        ("amount", Merge::Set),
        ("paid_amount", Merge::Set),
        ("paid_currency", Merge::Set),
        ("method", Merge::Set),
        ("row_reference", Merge::Set),
    ],
};
pub const PAYMENT_REFERENCES: Table =
    Table { name: "payment_references", keys: &["list", "row"], values: &[("reference", Merge::Set)] };
/// Each row's outcome: `delivered_amount` in the row's local currency,
/// `charged` and `released` in the programme's.
pub const PAYMENT_OUTCOMES: Table = Table {
    name: "payment_outcomes",
    keys: &["list", "row"],
    values: &[
        ("status", Merge::Set),
        ("delivered_amount", Merge::Set),
        ("delivered_on", Merge::Set),
        ("provider_transaction_id", Merge::Set),
        ("charged", Merge::Set),
        ("released", Merge::Set),
        ("confirmed_seq", Merge::Set),
    ],
};

/// Every projection table, in the order they are written and compared.
pub const TABLES: [&Table; 19] = [
    &DONORS,
    &PROGRAMMES,
    &FUNDING,
    &BUDGET_LINES,
    &REVERSALS,
    &JOURNAL,
    &ACCOUNT_BALANCES,
    &LOCAL_PAID,
    &DISBURSEMENT_SPLITS,
    &ASSISTANCE,
    &REACH,
    &REACH_TOTALS,
    &PROGRAMME_APPROVALS,
    &PAYMENT_LISTS,
    &PAYMENT_LIST_TOTALS,
    &PAYMENT_LIST_APPROVALS,
    &PAYMENT_LIST_ROWS,
    &PAYMENT_REFERENCES,
    &PAYMENT_OUTCOMES,
];

/// Tables whose first key column is the seq of the event that creates the
/// row: a row keyed by an event of the changes is new and is inserted
/// without looking for a stored one.
pub const KEYED_BY_CREATING_SEQ: [&Table; 2] = [&JOURNAL, &ASSISTANCE];

impl Table {
    /// Whether this table is one of `KEYED_BY_CREATING_SEQ`.
    pub fn is_keyed_by_creating_seq(&self) -> bool {
        KEYED_BY_CREATING_SEQ.iter().any(|keyed| keyed.name == self.name)
    }
}

/// Changes to the rows of one table, keyed by primary key.
pub type TableChanges = BTreeMap<Vec<Value>, Vec<Value>>;

/// Changes to every projection table made by a run of events.
#[derive(Debug, Default)]
pub struct Changes {
    pub tables: BTreeMap<&'static str, TableChanges>,
    /// The seq of the first event folded in since the changes were started
    /// or last split (0: none).
    pub first_seq: u64,
    /// The seq of the last event folded in.
    pub last_seq: u64,
}

impl Changes {
    fn merge(&mut self, table: &Table, key: Vec<Value>, values: Vec<Value>) {
        assert_eq!(key.len(), table.keys.len(), "key of {}", table.name);
        assert_eq!(values.len(), table.values.len(), "values of {}", table.name);
        let rows = self.tables.entry(table.name).or_default();
        match rows.entry(key) {
            Entry::Vacant(vacant) => {
                vacant.insert(values);
            }
            Entry::Occupied(mut occupied) => {
                for ((slot, new), (_, merge)) in occupied.get_mut().iter_mut().zip(values).zip(table.values) {
                    match (merge, &mut *slot, new) {
                        // The decision keeps every total within
                        // TOTAL_MINOR_UNITS_MAX, so a sum past i64 means
                        // events this ledger did not decide.
                        (Merge::Add, Value::Int(total), Value::Int(delta)) => {
                            *total = total.checked_add(delta).expect("projection totals stay within i64");
                        }
                        (_, slot, new) => *slot = new,
                    }
                }
            }
        }
    }

    /// Adds the change in the number of returnees reached per scope, given
    /// every stored reach row of each returnee the changes touch (`before`).
    /// A returnee counts in a programme, a country and a programme's
    /// country while any of their rows there has an active disbursement.
    pub fn add_reach_totals(&mut self, before: &BTreeMap<Vec<Value>, i64>) {
        let Some(reach) = self.tables.get(REACH.name) else { return };
        let mut returnees: BTreeMap<&Value, Places<'_>> = BTreeMap::new();
        for (key, count) in before {
            returnees.entry(&key[0]).or_default().insert((&key[1], &key[2]), (*count, *count));
        }
        for (key, values) in reach {
            let Value::Int(delta) = values[0] else { unreachable!("reach counts are integers") };
            returnees.entry(&key[0]).or_default().entry((&key[1], &key[2])).or_insert((0, 0)).1 += delta;
        }
        let mut totals: BTreeMap<String, i64> = BTreeMap::new();
        for places in returnees.values() {
            let mut reached: BTreeMap<String, (bool, bool)> = BTreeMap::new();
            for ((programme, country), (old, new)) in places {
                for scope in reach_scopes(programme, country) {
                    let (was, is) = reached.entry(scope).or_default();
                    *was |= *old > 0;
                    *is |= *new > 0;
                }
            }
            for (scope, (was, is)) in reached {
                let change = i64::from(is) - i64::from(was);
                if change != 0 {
                    *totals.entry(scope).or_default() += change;
                }
            }
        }
        for (scope, change) in totals {
            self.merge(&REACH_TOTALS, vec![Value::Text(scope)], vec![Value::Int(change)]);
        }
    }

    /// Whether the row of `table` keyed `key` is created by an event of
    /// these changes (and so is not stored yet).
    pub fn creates(&self, table: &Table, key: &[Value]) -> bool {
        let first_seq = i64::try_from(self.first_seq).unwrap_or(i64::MAX);
        table.is_keyed_by_creating_seq()
            && self.first_seq > 0
            && matches!(key.first(), Some(Value::Int(seq)) if *seq >= first_seq)
    }

    /// Moves the rows of `tables` out into changes of their own; the events
    /// folded in from now on start a new run.
    pub fn split_off(&mut self, tables: &[&Table]) -> Changes {
        let mut moved = Changes { first_seq: std::mem::take(&mut self.first_seq), last_seq: self.last_seq, ..Changes::default() };
        for table in tables {
            if let Some(rows) = self.tables.remove(table.name) {
                moved.tables.insert(table.name, rows);
            }
        }
        moved
    }

    pub fn rows(&self, table: &Table) -> Option<&TableChanges> {
        self.tables.get(table.name)
    }

    /// Folds one event in.
    pub fn add_event(&mut self, record: &EventRecord, body: &EventBody) {
        let seq = i64::try_from(record.seq).expect("seq fits in i64");
        if self.first_seq == 0 {
            self.first_seq = record.seq;
        }
        self.last_seq = record.seq;
        match body {
            EventBody::DonorRegistered(event) => {
                self.merge(&DONORS, vec![text(&event.code)], vec![text(&event.name), text(&event.kind), Value::Int(seq)]);
            }
            EventBody::ProgrammeRegistered(event) => {
                let countries: Vec<&str> = event.countries.iter().map(|country| country.as_str()).collect();
                self.merge(
                    &PROGRAMMES,
                    vec![text(&event.code)],
                    vec![
                        text(&event.name),
                        text(event.currency),
                        text(countries.join(",")),
                        text(&event.implementer),
                        text(event.starts_on),
                        text(event.ends_on),
                        Value::Int(seq),
                    ],
                );
                if let Some(approvals_required) = event.approvals_required {
                    self.merge(
                        &PROGRAMME_APPROVALS,
                        vec![text(&event.code)],
                        vec![Value::Int(i64::from(approvals_required)), Value::Int(seq)],
                    );
                }
            }
            EventBody::ProgrammeApprovalsSet(event) => {
                self.merge(
                    &PROGRAMME_APPROVALS,
                    vec![text(&event.programme)],
                    vec![Value::Int(i64::from(event.approvals_required)), Value::Int(seq)],
                );
            }
            EventBody::PaymentList(event) => self.add_payment_list(record, event),
            EventBody::Money(entry) => self.add_money(seq, entry, 1),
            EventBody::EntryReversed(event) => {
                let reversed_seq = i64::try_from(event.reversed_seq).expect("seq fits in i64");
                self.merge(&REVERSALS, vec![Value::Int(reversed_seq)], vec![Value::Int(seq)]);
                self.add_money(reversed_seq, &event.reversed, -1);
            }
        }
        let postings = postings(body);
        if !postings.is_empty() {
            self.merge(&JOURNAL, vec![Value::Int(seq)], vec![Value::Text(journal_postings(&postings))]);
        }
        for posting in postings {
            self.merge(
                &ACCOUNT_BALANCES,
                vec![Value::Text(posting.account), text(posting.currency)],
                vec![Value::Int(posting.amount)],
            );
        }
    }

    /// A money entry's effect; `sign` -1 cancels it. `seq` is the entry's
    /// own seq (for a reversal, the seq of the reversed entry).
    fn add_money(&mut self, seq: i64, entry: &MoneyEntry, sign: i64) {
        let (amount, currency) = entry.amount();
        let minor = sign * to_minor_units(amount, currency);
        let (programme, donor) = (text(entry.programme()), text(entry.donor()));
        let funding_key = vec![programme.clone(), donor.clone()];
        let line = |country: &dyn ToString| vec![programme.clone(), donor.clone(), text(country.to_string())];
        let currency_text = text(currency);
        let funding = |committed, received, allocated| {
            vec![currency_text.clone(), Value::Int(committed), Value::Int(received), Value::Int(allocated)]
        };
        let line_values = |allocated, cash, in_kind| {
            vec![currency_text.clone(), Value::Int(allocated), Value::Int(cash), Value::Int(in_kind), Value::Int(0)]
        };
        match entry {
            MoneyEntry::FundingCommitted(_) => self.merge(&FUNDING, funding_key, funding(minor, 0, 0)),
            MoneyEntry::FundingReceived(_) => self.merge(&FUNDING, funding_key, funding(0, minor, 0)),
            MoneyEntry::BudgetAllocated(event) => {
                self.merge(&FUNDING, funding_key, funding(0, 0, minor));
                self.merge(&BUDGET_LINES, line(&event.country), line_values(minor, 0, 0));
            }
            MoneyEntry::BudgetReallocated(event) => {
                self.merge(&BUDGET_LINES, line(&event.from_country), line_values(-minor, 0, 0));
                self.merge(&BUDGET_LINES, line(&event.to_country), line_values(minor, 0, 0));
            }
            MoneyEntry::CashReinsertionPaid(event) => {
                self.merge(&BUDGET_LINES, line(&event.country), line_values(0, minor, 0));
                self.add_cash_details(seq, event, sign);
            }
            MoneyEntry::InKindGrantDelivered(event) => {
                self.merge(&BUDGET_LINES, line(&event.country), line_values(0, 0, minor));
                self.add_in_kind_details(seq, event, sign);
            }
        }
    }

    fn add_cash_details(&mut self, seq: i64, event: &CashReinsertionPaid, sign: i64) {
        let minor = sign * to_minor_units(event.amount, event.currency);
        let local = sign * to_minor_units(event.paid_amount, event.paid_currency);
        self.merge(
            &LOCAL_PAID,
            vec![text(&event.programme), text(event.country), text(event.paid_currency)],
            vec![Value::Int(local)],
        );
        let split_key =
            vec![text(&event.programme), text(&event.donor), text(event.country), text("individual"), text("economic")];
        self.merge(&DISBURSEMENT_SPLITS, split_key, vec![text(event.currency), Value::Int(minor)]);
        let assisted = Assisted {
            seq,
            beneficiary_ref: event.beneficiary_ref.as_str(),
            programme: event.programme.as_str(),
            donor: event.donor.as_str(),
            country: event.country.as_str(),
            kind: "cash",
            currency: event.currency.code(),
            amount: to_minor_units(event.amount, event.currency),
            assisted_on: event.paid_on.to_string(),
        };
        self.add_assistance(&assisted, sign);
    }

    fn add_in_kind_details(&mut self, seq: i64, event: &InKindGrantDelivered, sign: i64) {
        let minor = sign * to_minor_units(event.amount, event.currency);
        let split_key = vec![
            text(&event.programme),
            text(&event.donor),
            text(event.country),
            text(event.level.as_str()),
            text(event.dimension.as_str()),
        ];
        self.merge(&DISBURSEMENT_SPLITS, split_key, vec![text(event.currency), Value::Int(minor)]);
        if let Some(reference) = &event.beneficiary_ref {
            let assisted = Assisted {
                seq,
                beneficiary_ref: reference.as_str(),
                programme: event.programme.as_str(),
                donor: event.donor.as_str(),
                country: event.country.as_str(),
                kind: "in_kind",
                currency: event.currency.code(),
                amount: to_minor_units(event.amount, event.currency),
                assisted_on: event.delivered_on.to_string(),
            };
            self.add_assistance(&assisted, sign);
        }
    }

    /// Records (sign 1) or cancels (sign -1) assistance to one returnee.
    fn add_assistance(&mut self, assisted: &Assisted<'_>, sign: i64) {
        let reversed = if sign < 0 { 1 } else { 0 };
        self.merge(
            &ASSISTANCE,
            vec![Value::Int(assisted.seq)],
            vec![
                text(assisted.beneficiary_ref),
                text(assisted.programme),
                text(assisted.donor),
                text(assisted.country),
                text(assisted.kind),
                text(assisted.currency),
                Value::Int(assisted.amount),
                text(&assisted.assisted_on),
                Value::Int(reversed),
            ],
        );
        self.merge(
            &REACH,
            vec![text(assisted.beneficiary_ref), text(assisted.programme), text(assisted.country)],
            vec![Value::Int(sign)],
        );
    }
}

/// An event's postings as its journal row holds them: a JSON array of
/// `[account, currency, amount]` arrays in line order.
fn journal_postings(postings: &[Posting]) -> String {
    let lines: Vec<(&str, &str, i64)> =
        postings.iter().map(|posting| (posting.account.as_str(), posting.currency.code(), posting.amount)).collect();
    serde_json::to_string(&lines).expect("postings serialize")
}

/// The journal rows of `journal` line by line, as the `postings` view
/// shows them.
pub(crate) fn posting_lines(journal: &TableChanges) -> Result<TableChanges, serde_json::Error> {
    let mut lines = TableChanges::new();
    for (key, values) in journal {
        let postings: Vec<(String, String, i64)> = serde_json::from_str(&values[0].to_string())?;
        for (line, (account, currency, amount)) in postings.into_iter().enumerate() {
            let line = i64::try_from(line).expect("few postings per event");
            lines.insert(
                vec![key[0].clone(), Value::Int(line)],
                vec![Value::Text(account), Value::Text(currency), Value::Int(amount)],
            );
        }
    }
    Ok(lines)
}

/// A returnee's reach rows: (programme, country) -> (count before, count after).
type Places<'v> = BTreeMap<(&'v Value, &'v Value), (i64, i64)>;

/// The scopes of `reach_totals` a returnee assisted in `programme` and
/// `country` counts in.
fn reach_scopes(programme: &Value, country: &Value) -> [String; 3] {
    [format!("programme:{programme}"), format!("country:{country}"), format!("programme-country:{programme}:{country}")]
}

struct Assisted<'a> {
    seq: i64,
    beneficiary_ref: &'a str,
    programme: &'a str,
    donor: &'a str,
    country: &'a str,
    kind: &'static str,
    currency: &'static str,
    amount: i64,
    assisted_on: String,
}
