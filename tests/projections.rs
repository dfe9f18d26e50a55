//! Projections on both backends: balances after the demo against sums
//! computed here from the events alone, rebuild and check, balances in the
//! past, and a property test over random commands.

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use ledger_api::demo;
use ledger_core::chain::EventRecord;
use ledger_core::domain::{Command, EventBody, MoneyEntry, Seq};
use ledger_core::keys::KeyRing;
use ledger_core::store::{Appender, Backend, Store, UnitOutcome};
use projections::balances::{self, BalanceError, Disbursed, Figures};
use projections::rebuild;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;
use sqlx::Row;

// ---------------------------------------------------------------------------
// An independent fold of the events into the figures a balance must show,
// in decimals, written from the brief rather than from the projections.

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sums {
    committed: Decimal,
    received: Decimal,
    allocated: Decimal,
    cash: Decimal,
    in_kind: Decimal,
}

impl Sums {
    fn add(&mut self, other: &Sums) {
        self.committed += other.committed;
        self.received += other.received;
        self.allocated += other.allocated;
        self.cash += other.cash;
        self.in_kind += other.in_kind;
    }

    fn disbursed(&self) -> Decimal {
        self.cash + self.in_kind
    }
}

/// (programme, donor, country)
type LineKey = (String, String, String);

#[derive(Clone, Debug, Default)]
struct Model {
    currency: BTreeMap<String, String>,
    funding: BTreeMap<(String, String), Sums>,
    lines: BTreeMap<LineKey, Sums>,
    /// Active disbursements to one returnee: seq -> (programme, country, ref).
    assisted: BTreeMap<Seq, (String, String, String)>,
    /// (programme, country, local currency) -> paid.
    local_paid: BTreeMap<(String, String, String), Decimal>,
    /// (programme, country, level, dimension) -> disbursed.
    splits: BTreeMap<(String, String, String, String), Decimal>,
    reversed: BTreeSet<Seq>,
    head: Seq,
}

impl Model {
    fn fold(events: &[EventRecord], until: Seq) -> Model {
        let mut model = Model::default();
        for event in events.iter().filter(|event| event.seq <= until) {
            let body = EventBody::parse(&event.event_type, event.version, &event.payload).expect("stored payloads parse");
            match body {
                EventBody::DonorRegistered(_) => {}
                EventBody::ProgrammeRegistered(registered) => {
                    model.currency.insert(registered.code.to_string(), registered.currency.to_string());
                }
                EventBody::Money(entry) => model.money(event.seq, &entry, Decimal::ONE),
                EventBody::EntryReversed(reversal) => {
                    assert!(model.reversed.insert(reversal.reversed_seq), "seq {} reversed twice", reversal.reversed_seq);
                    model.money(reversal.reversed_seq, &reversal.reversed, Decimal::NEGATIVE_ONE);
                }
                // The scenarios of this model import no payment lists
                // (tests/payment_lists.rs covers holds).
                EventBody::PaymentList(_) | EventBody::ProgrammeApprovalsSet(_) => {}
            }
            model.head = event.seq;
        }
        model
    }

    fn line(&mut self, programme: &str, donor: &str, country: &str) -> &mut Sums {
        self.lines.entry((programme.to_string(), donor.to_string(), country.to_string())).or_default()
    }

    fn money(&mut self, seq: Seq, entry: &MoneyEntry, sign: Decimal) {
        let (programme, donor) = (entry.programme().to_string(), entry.donor().to_string());
        let value = sign * entry.amount().0;
        match entry {
            MoneyEntry::FundingCommitted(_) => self.funding.entry((programme, donor)).or_default().committed += value,
            MoneyEntry::FundingReceived(_) => self.funding.entry((programme, donor)).or_default().received += value,
            MoneyEntry::BudgetAllocated(allocated) => {
                self.line(&programme, &donor, allocated.country.as_str()).allocated += value
            }
            MoneyEntry::BudgetReallocated(moved) => {
                self.line(&programme, &donor, moved.from_country.as_str()).allocated -= value;
                self.line(&programme, &donor, moved.to_country.as_str()).allocated += value;
            }
            MoneyEntry::CashReinsertionPaid(paid) => {
                let country = paid.country.to_string();
                self.line(&programme, &donor, &country).cash += value;
                let local = (programme.clone(), country.clone(), paid.paid_currency.to_string());
                *self.local_paid.entry(local).or_default() += sign * paid.paid_amount;
                let split = (programme.clone(), country.clone(), "individual".to_string(), "economic".to_string());
                *self.splits.entry(split).or_default() += value;
                self.assist(seq, sign, (programme, country, paid.beneficiary_ref.to_string()));
            }
            MoneyEntry::InKindGrantDelivered(grant) => {
                let country = grant.country.to_string();
                self.line(&programme, &donor, &country).in_kind += value;
                let split =
                    (programme.clone(), country.clone(), grant.level.as_str().to_string(), grant.dimension.as_str().to_string());
                *self.splits.entry(split).or_default() += value;
                if let Some(reference) = &grant.beneficiary_ref {
                    self.assist(seq, sign, (programme, country, reference.to_string()));
                }
            }
        }
    }

    fn assist(&mut self, seq: Seq, sign: Decimal, assisted: (String, String, String)) {
        if sign.is_sign_positive() {
            self.assisted.insert(seq, assisted);
        } else {
            assert!(self.assisted.remove(&seq).is_some(), "a reversed disbursement was active");
        }
    }

    fn reached(&self, include: impl Fn(&str, &str) -> bool) -> i64 {
        let references: BTreeSet<&String> = self
            .assisted
            .values()
            .filter(|(programme, country, _)| include(programme, country))
            .map(|(_, _, reference)| reference)
            .collect();
        references.len() as i64
    }

    fn programme_totals(&self, programme: &str) -> Sums {
        let mut totals = Sums::default();
        for ((funded, _), sums) in &self.funding {
            if funded == programme {
                totals.add(sums);
            }
        }
        for ((funded, _, _), sums) in &self.lines {
            if funded == programme {
                totals.add(sums);
            }
        }
        totals
    }
}

/// Reads a figure, checking it is written at its currency's scale.
fn figure(text: &str, scale: u32, what: &str) -> Decimal {
    let value: Decimal = text.parse().unwrap_or_else(|_| panic!("{what}: {text:?} is not a decimal"));
    assert_eq!(value.scale(), scale, "{what}: {text:?} is written with {scale} decimals");
    value
}

fn scale_of(currency_code: &str) -> u32 {
    currency(currency_code).minor_units()
}

fn assert_disbursed(actual: &Disbursed, expected: &Sums, scale: u32, what: &str) {
    assert_eq!(figure(&actual.cash, scale, what), expected.cash, "{what}: disbursed cash");
    assert_eq!(figure(&actual.in_kind, scale, what), expected.in_kind, "{what}: disbursed in kind");
    assert_eq!(figure(&actual.total, scale, what), expected.disbursed(), "{what}: disbursed total");
}

fn assert_figures(actual: &Figures, expected: &Sums, scale: u32, what: &str) {
    assert_eq!(figure(&actual.committed, scale, what), expected.committed, "{what}: committed");
    assert_eq!(figure(&actual.received, scale, what), expected.received, "{what}: received");
    assert_eq!(figure(&actual.allocated, scale, what), expected.allocated, "{what}: allocated");
    assert_disbursed(&actual.disbursed, expected, scale, what);
    assert_eq!(figure(&actual.unallocated, scale, what), expected.committed - expected.allocated, "{what}: unallocated");
    assert_eq!(figure(&actual.available, scale, what), expected.allocated - expected.disbursed(), "{what}: available");
    assert_eq!(figure(&actual.cash_position, scale, what), expected.received - expected.disbursed(), "{what}: cash position");
}

fn assert_programme_balance(actual: &balances::ProgrammeBalance, model: &Model, programme: &str) {
    let currency_code = &model.currency[programme];
    let scale = scale_of(currency_code);
    assert_eq!((&actual.programme[..], &actual.currency), (programme, currency_code));
    assert_eq!(actual.as_of_seq, model.head);
    assert_figures(&actual.figures, &model.programme_totals(programme), scale, programme);
    assert_eq!(
        actual.beneficiaries_reached,
        model.reached(|funded, _| funded == programme),
        "{programme}: beneficiaries reached"
    );

    let mut by_country: BTreeMap<&str, Sums> = BTreeMap::new();
    let mut by_donor: BTreeMap<&str, Sums> = BTreeMap::new();
    for ((_, donor), sums) in model.funding.iter().filter(|((funded, _), _)| funded == programme) {
        by_donor.entry(donor).or_default().add(sums);
    }
    for ((_, donor, country), sums) in model.lines.iter().filter(|((funded, _, _), _)| funded == programme) {
        by_country.entry(country).or_default().add(sums);
        by_donor.entry(donor).or_default().add(sums);
    }
    let countries: Vec<&str> = actual.by_country.iter().map(|figures| figures.country.as_str()).collect();
    assert_eq!(countries, by_country.keys().copied().collect::<Vec<_>>(), "{programme}: countries");
    for figures in &actual.by_country {
        let what = format!("{programme}/{}", figures.country);
        let expected = &by_country[figures.country.as_str()];
        assert_eq!(figure(&figures.allocated, scale, &what), expected.allocated, "{what}: allocated");
        assert_disbursed(&figures.disbursed, expected, scale, &what);
        assert_eq!(figure(&figures.available, scale, &what), expected.allocated - expected.disbursed(), "{what}: available");
        let reached = model.reached(|funded, country| funded == programme && country == figures.country);
        assert_eq!(figures.beneficiaries_reached, reached, "{what}: beneficiaries reached");
    }
    let donors: Vec<&str> = actual.by_donor.iter().map(|figures| figures.donor.as_str()).collect();
    assert_eq!(donors, by_donor.keys().copied().collect::<Vec<_>>(), "{programme}: donors");
    for figures in &actual.by_donor {
        assert_figures(&figures.figures, &by_donor[figures.donor.as_str()], scale, &format!("{programme} by {}", figures.donor));
    }
}

async fn assert_donor_balance(store: &Store, model: &Model, donor: &str) {
    let actual = balances::donor_balance(store, donor).await.unwrap();
    assert_eq!(actual.as_of_seq, model.head);
    let mut expected: BTreeMap<&str, Sums> = BTreeMap::new();
    for ((programme, funder), sums) in &model.funding {
        if funder == donor {
            expected.entry(programme).or_default().add(sums);
        }
    }
    for ((programme, funder, _), sums) in &model.lines {
        if funder == donor {
            expected.entry(programme).or_default().add(sums);
        }
    }
    let programmes: Vec<&str> = actual.programmes.iter().map(|figures| figures.programme.as_str()).collect();
    assert_eq!(programmes, expected.keys().copied().collect::<Vec<_>>(), "{donor}: programmes");
    let mut by_currency: BTreeMap<&str, Sums> = BTreeMap::new();
    for figures in &actual.programmes {
        let currency_code = &model.currency[&figures.programme];
        assert_eq!(&figures.currency, currency_code);
        let sums = &expected[figures.programme.as_str()];
        assert_figures(&figures.figures, sums, scale_of(currency_code), &format!("{donor} in {}", figures.programme));
        by_currency.entry(currency_code).or_default().add(sums);
    }
    let currencies: Vec<&str> = actual.totals_by_currency.iter().map(|totals| totals.currency.as_str()).collect();
    assert_eq!(currencies, by_currency.keys().copied().collect::<Vec<_>>());
    for totals in &actual.totals_by_currency {
        let scale = scale_of(&totals.currency);
        assert_figures(
            &totals.figures,
            &by_currency[totals.currency.as_str()],
            scale,
            &format!("{donor} in {}", totals.currency),
        );
    }
}

async fn assert_country_balance(store: &Store, model: &Model, country: &str) {
    let actual = balances::country_balance(store, country).await.unwrap();
    assert_eq!(actual.as_of_seq, model.head);
    assert_eq!(
        actual.beneficiaries_reached,
        model.reached(|_, assisted_in| assisted_in == country),
        "{country}: beneficiaries reached"
    );
    let mut local_all: BTreeMap<String, Decimal> = BTreeMap::new();
    for ((_, paid_in, local_currency), paid) in &model.local_paid {
        if paid_in == country {
            *local_all.entry(local_currency.clone()).or_default() += paid;
        }
    }
    let actual_local: BTreeMap<String, Decimal> = actual
        .local_currency_paid
        .iter()
        .map(|local| (local.currency.clone(), figure(&local.amount, scale_of(&local.currency), country)))
        .collect();
    assert_eq!(actual_local, local_all, "{country}: local currency paid");

    let mut programmes: BTreeMap<&str, BTreeMap<&str, Sums>> = BTreeMap::new();
    for ((programme, donor, line_country), sums) in &model.lines {
        if line_country == country {
            programmes.entry(programme).or_default().insert(donor, *sums);
        }
    }
    let names: Vec<&str> = actual.programmes.iter().map(|figures| figures.programme.as_str()).collect();
    assert_eq!(names, programmes.keys().copied().collect::<Vec<_>>(), "{country}: programmes");
    for figures in &actual.programmes {
        let programme = figures.programme.as_str();
        let what = format!("{country} in {programme}");
        let scale = scale_of(&model.currency[programme]);
        let donors = &programmes[programme];
        let mut total = Sums::default();
        for (donor_figures, (donor, sums)) in figures.by_donor.iter().zip(donors) {
            assert_eq!(&donor_figures.donor, donor, "{what}: donors");
            assert_eq!(figure(&donor_figures.allocated, scale, &what), sums.allocated);
            assert_disbursed(&donor_figures.disbursed, sums, scale, &what);
            assert_eq!(figure(&donor_figures.available, scale, &what), sums.allocated - sums.disbursed());
            total.add(sums);
        }
        assert_eq!(figures.by_donor.len(), donors.len(), "{what}: donors");
        assert_eq!(figure(&figures.allocated, scale, &what), total.allocated);
        assert_disbursed(&figures.disbursed, &total, scale, &what);
        assert_eq!(figure(&figures.available, scale, &what), total.allocated - total.disbursed());
        let reached = model.reached(|funded, assisted_in| funded == programme && assisted_in == country);
        assert_eq!(figures.beneficiaries_reached, reached, "{what}: beneficiaries reached");
        let local: BTreeMap<String, Decimal> = figures
            .local_currency_paid
            .iter()
            .map(|local| (local.currency.clone(), figure(&local.amount, scale_of(&local.currency), &what)))
            .collect();
        let expected_local: BTreeMap<String, Decimal> = model
            .local_paid
            .iter()
            .filter(|((funded, paid_in, _), _)| funded == programme && paid_in == country)
            .map(|((_, _, local_currency), paid)| (local_currency.clone(), *paid))
            .collect();
        assert_eq!(local, expected_local, "{what}: local currency paid");
        let splits: BTreeMap<(String, String), Decimal> = figures
            .splits
            .iter()
            .map(|split| ((split.level.clone(), split.dimension.clone()), split.amount.parse::<Decimal>().unwrap()))
            .collect();
        let expected_splits: BTreeMap<(String, String), Decimal> = model
            .splits
            .iter()
            .filter(|((funded, split_in, _, _), _)| funded == programme && split_in == country)
            .map(|((_, _, level, dimension), value)| ((level.clone(), dimension.clone()), *value))
            .collect();
        assert_eq!(splits, expected_splits, "{what}: splits by level and dimension");
    }
}

/// The trial balance is balanced, every currency at zero, and the postings
/// themselves sum to zero per currency.
async fn assert_trial_balance_is_zero(store: &Store) -> balances::TrialBalance {
    let trial = balances::trial_balance(store).await.unwrap();
    assert!(trial.balanced, "the trial balance must balance: {trial:?}");
    for currency_balance in &trial.currencies {
        let balance: Decimal = currency_balance.balance.parse().unwrap();
        assert!(balance.is_zero(), "{} balance is {}", currency_balance.currency, currency_balance.balance);
        assert_eq!(currency_balance.debits, currency_balance.credits);
    }
    let unbalanced: Vec<(String, i64)> =
        sqlx::query("SELECT currency, SUM(amount) FROM postings GROUP BY currency HAVING SUM(amount) <> 0")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
    assert_eq!(unbalanced, vec![], "postings sum to zero in every currency");
    trial
}

/// Every balance a user can read, to compare before and after a rebuild.
#[derive(Debug, PartialEq)]
struct AllBalances {
    programmes: Vec<balances::ProgrammeBalance>,
    donors: Vec<balances::DonorBalance>,
    countries: Vec<balances::CountryBalance>,
    trial: balances::TrialBalance,
}

const DEMO_PROGRAMMES: [&str; 4] = ["EUIOM-JI-NA", "MOTUSE", "RADA", "SA-PILOT"];
const DEMO_DONORS: [&str; 4] = ["BMZ", "EU-AMIF", "EU-DEVCO", "EU-EUTF"];
/// Every country of the demo, and one (DE) where nothing happened.
const DEMO_COUNTRIES: [&str; 10] = ["AF", "DZ", "EG", "LY", "MA", "MW", "MZ", "SN", "TN", "DE"];

async fn all_balances(store: &Store) -> AllBalances {
    let mut all = AllBalances {
        programmes: Vec::new(),
        donors: Vec::new(),
        countries: Vec::new(),
        trial: balances::trial_balance(store).await.unwrap(),
    };
    for programme in DEMO_PROGRAMMES {
        all.programmes.push(balances::programme_balance(store, programme).await.unwrap());
    }
    for donor in DEMO_DONORS {
        all.donors.push(balances::donor_balance(store, donor).await.unwrap());
    }
    for country in DEMO_COUNTRIES {
        all.countries.push(balances::country_balance(store, country).await.unwrap());
    }
    all
}

async fn demo_ledger(database: &TestDatabase) -> (ledger_api::config::Ledger, Vec<EventRecord>) {
    let ledger = database.open().await;
    let loaded = demo::load(&ledger, ACTOR).await.expect("the demo loads into an empty ledger");
    let events = all_events(&ledger.store).await;
    assert_eq!(events.len() as u64, loaded);
    (ledger, events)
}

/// After the demo, every balance equals the sums of the events computed
/// here, reallocation and reversal included, and the books balance.
async fn balances_after_the_demo_equal_the_sums_of_its_events(database: TestDatabase) {
    let (ledger, events) = demo_ledger(&database).await;
    let model = Model::fold(&events, Seq::MAX);
    assert_eq!(model.currency.keys().map(String::as_str).collect::<Vec<_>>(), DEMO_PROGRAMMES.to_vec());
    for programme in DEMO_PROGRAMMES {
        let balance = balances::programme_balance(&ledger.store, programme).await.unwrap();
        assert_programme_balance(&balance, &model, programme);
    }
    for donor in DEMO_DONORS {
        assert_donor_balance(&ledger.store, &model, donor).await;
    }
    for country in DEMO_COUNTRIES {
        assert_country_balance(&ledger.store, &model, country).await;
    }
    let trial = assert_trial_balance_is_zero(&ledger.store).await;
    let currencies: BTreeSet<&str> = trial.currencies.iter().map(|balance| balance.currency.as_str()).collect();
    for expected in ["EUR", "MAD", "TND", "XOF", "DZD", "EGP", "AFN", "MWK", "MZN"] {
        assert!(currencies.contains(expected), "the trial balance covers {expected}: {currencies:?}");
    }

    // The demo's reallocation moved 150,000.00 from Libya to Tunisia.
    let north_africa = balances::programme_balance(&ledger.store, "EUIOM-JI-NA").await.unwrap();
    let allocated_in =
        |code: &str| north_africa.by_country.iter().find(|figures| figures.country == code).unwrap().allocated.clone();
    assert_eq!((allocated_in("LY"), allocated_in("TN")), ("750000.00".to_string(), "550000.00".to_string()));
    assert_eq!(north_africa.figures.allocated, "2800000.00", "a reallocation leaves the total allocated unchanged");
    // The demo's reversal cancelled a duplicated 350.00 payment in Morocco.
    let motuse = balances::programme_balance(&ledger.store, "MOTUSE").await.unwrap();
    let morocco = motuse.by_country.iter().find(|figures| figures.country == "MA").unwrap();
    assert_eq!(morocco.disbursed.cash, "700.00");
    assert_eq!(morocco.disbursed.in_kind, "1500.00");
    assert_eq!(motuse.beneficiaries_reached, 5);
    let reversed: i64 = sqlx::query("SELECT COUNT(*) FROM reversals").fetch_one(ledger.store.pool()).await.unwrap().get(0);
    assert_eq!(reversed, 1);
    assert_eq!(model.reversed.len(), 1);
}
on_both_backends!(balances_after_the_demo_equal_the_sums_of_its_events);

/// The migration that keeps reach per returnee derives the counts from the
/// assistance table; they equal the counts the appends kept, and the
/// projections still equal a rebuild afterwards.
async fn reach_derived_by_its_migration_equals_the_reach_kept_by_appends(database: TestDatabase) {
    let (ledger, _) = demo_ledger(&database).await;
    let active_reach = || async {
        let sql = "SELECT beneficiary_ref, programme, country, disbursements FROM reach WHERE disbursements <> 0 \
                   ORDER BY beneficiary_ref, programme, country";
        let rows = sqlx::query(sql).fetch_all(ledger.store.pool()).await.unwrap();
        rows.iter()
            .map(|row| (row.get::<String, _>(0), row.get::<String, _>(1), row.get::<String, _>(2), row.get::<i64, _>(3)))
            .collect::<Vec<_>>()
    };
    let kept = active_reach().await;
    assert!(kept.len() >= 10, "the demo assists returnees in several programmes and countries: {kept:?}");
    let migration = match ledger.store.backend() {
        Backend::Sqlite => include_str!("../migrations/sqlite/0003_reach_per_returnee.sql"),
        Backend::Postgres => include_str!("../migrations/postgres/0004_reach_per_returnee.sql"),
    };
    sqlx::raw_sql(migration).execute(ledger.store.pool()).await.unwrap();
    assert_eq!(active_reach().await, kept);
    assert_projections_equal_a_rebuild(&ledger.store).await;
}
on_both_backends!(reach_derived_by_its_migration_equals_the_reach_kept_by_appends);

/// The migration that keeps an event's postings as one journal row derives
/// each row from the postings table of before: the rows are those the
/// appends write, the `postings` view shows the lines the table held, and
/// the projections still equal a rebuild afterwards.
async fn the_journal_derived_by_its_migration_equals_the_journal_kept_by_appends(database: TestDatabase) {
    let (ledger, _) = demo_ledger(&database).await;
    let pool = ledger.store.pool();
    let read = |sql: &'static str| async move {
        let rows = sqlx::query(sql).fetch_all(pool).await.unwrap();
        rows.iter().map(|row| (0..row.len()).map(|index| cell(row, index)).collect::<Vec<_>>()).collect::<Vec<_>>()
    };
    let journal_sql = "SELECT seq, postings FROM journal ORDER BY seq";
    let lines_sql = "SELECT seq, line, account, currency, amount FROM postings ORDER BY seq, line";
    let (kept_journal, kept_lines) = (read(journal_sql).await, read(lines_sql).await);
    assert!(kept_journal.len() >= 20 && kept_lines.len() >= 2 * kept_journal.len(), "every money event has two lines or more");
    // The tables as the migrations before this one left them: one row per line.
    let before = "CREATE TABLE old_postings AS SELECT seq, line, account, currency, amount FROM postings; \
                  DROP VIEW postings; DROP TABLE journal; \
                  CREATE TABLE postings (seq BIGINT NOT NULL, line BIGINT NOT NULL, account TEXT NOT NULL, \
                  currency TEXT NOT NULL, amount BIGINT NOT NULL, PRIMARY KEY (seq, line)); \
                  INSERT INTO postings SELECT * FROM old_postings; DROP TABLE old_postings;";
    sqlx::raw_sql(before).execute(pool).await.unwrap();
    assert_eq!(read(lines_sql).await, kept_lines);
    let migration = match ledger.store.backend() {
        Backend::Sqlite => include_str!("../migrations/sqlite/0004_journal_one_row_per_event.sql"),
        Backend::Postgres => include_str!("../migrations/postgres/0005_journal_one_row_per_event.sql"),
    };
    sqlx::raw_sql(migration).execute(pool).await.unwrap();
    assert_eq!(read(journal_sql).await, kept_journal, "the migration writes the rows the appends write");
    assert_eq!(read(lines_sql).await, kept_lines, "the view shows the lines of before");
    assert_projections_equal_a_rebuild(&ledger.store).await;
}
on_both_backends!(the_journal_derived_by_its_migration_equals_the_journal_kept_by_appends);

/// A cell as text, whatever its type.
fn cell(row: &sqlx::any::AnyRow, index: usize) -> String {
    match row.try_get::<i64, _>(index) {
        Ok(number) => number.to_string(),
        Err(_) => row.get::<String, _>(index),
    }
}

/// The live projections equal a rebuild; a rebuild changes no figure; a
/// tampered projection row is named by the check and repaired by a rebuild.
async fn a_rebuild_reproduces_the_projections_and_the_check_names_a_tampered_row(database: TestDatabase) {
    let (ledger, events) = demo_ledger(&database).await;
    let head = events.last().unwrap().seq;
    let report = rebuild::check(&ledger.store, |_| {}).await.unwrap();
    assert_eq!(report, rebuild::CheckReport { events: head, difference: None });
    let before = all_balances(&ledger.store).await;
    let tables_before = snapshot(&ledger.store).await;
    let indexes = || async {
        let mut connection = ledger.store.pool().acquire().await.unwrap();
        projections::db::secondary_indexes(&mut connection).await.unwrap()
    };
    let indexes_before = indexes().await;
    assert!(indexes_before.iter().any(|index| index.name == "assistance_by_beneficiary"), "{indexes_before:?}");
    assert_eq!(rebuild::rebuild(&ledger.store, |_| {}).await.unwrap(), head);
    assert_eq!(indexes().await, indexes_before, "a rebuild leaves the indexes as the migrations made them");
    assert_eq!(all_balances(&ledger.store).await, before, "a rebuild changes no balance");
    assert_eq!(snapshot(&ledger.store).await, tables_before, "a rebuild changes no projection row");
    // Reversals and reallocations whose events fall in different pages and
    // chunks come out the same.
    for (page_events, chunk_events) in [(1, 1), (2, 5), (7, 3), (50, 10)] {
        let sizes = rebuild::RebuildSizes { page_events, chunk_events };
        let mut reported = Vec::new();
        assert_eq!(rebuild::rebuild_in_pages(&ledger.store, sizes, |seq| reported.push(seq)).await.unwrap(), head);
        assert_eq!(snapshot(&ledger.store).await, tables_before, "a rebuild in pages of {page_events}, chunks of {chunk_events}");
        assert!(reported.is_sorted() && reported.last() == Some(&head), "progress reaches the head: {reported:?}");
    }

    let tamperings = [
        (
            "UPDATE budget_lines SET allocated = allocated + 1 WHERE programme = 'MOTUSE' AND donor = 'EU-AMIF' AND country = 'MA'",
            ["budget_lines", "MOTUSE/EU-AMIF/MA", "allocated"],
        ),
        ("UPDATE funding SET received = received - 100 WHERE programme = 'RADA'", ["funding", "RADA/EU-DEVCO", "received"]),
        ("UPDATE journal SET postings = '[]' WHERE seq = 35", ["postings", "35/0", "missing live"]),
        ("DELETE FROM reversals", ["reversals", "42", "missing live"]),
        (
            "UPDATE reach_totals SET beneficiaries = beneficiaries + 1 WHERE scope = 'country:MA'",
            ["reach_totals", "country:MA", "beneficiaries"],
        ),
    ];
    for (statement, named) in tamperings {
        sqlx::query(statement).execute(ledger.store.pool()).await.unwrap();
        let report = rebuild::check(&ledger.store, |_| {}).await.unwrap();
        let difference = report.difference.unwrap_or_else(|| panic!("the check must notice {statement:?}"));
        for part in named {
            assert!(difference.contains(part), "the difference after {statement:?} names {part:?}: {difference}");
        }
        rebuild::rebuild(&ledger.store, |_| {}).await.unwrap();
        assert_projections_equal_a_rebuild(&ledger.store).await;
        assert_eq!(all_balances(&ledger.store).await, before, "a rebuild repairs {statement:?}");
    }
    // Appending after a rebuild goes on from the rebuilt state.
    let mut appender = ledger.appender();
    let outcome = append_one(&mut appender, pay_cash(&ledger.keys, ("MOTUSE", "EU-AMIF", "MA"), "MA-NEW", "100.00", "EUR")).await;
    assert!(matches!(outcome, UnitOutcome::Appended(_)), "{outcome:?}");
    assert_projections_equal_a_rebuild(&ledger.store).await;
}
on_both_backends!(a_rebuild_reproduces_the_projections_and_the_check_names_a_tampered_row);

/// A balance as of an earlier seq shows the figures of that moment.
async fn a_balance_as_of_an_earlier_seq_shows_the_figures_of_that_moment(database: TestDatabase) {
    let (ledger, events) = demo_ledger(&database).await;
    let head = events.last().unwrap().seq;
    let first_payment = events.iter().find(|event| event.event_type == "cash_reinsertion_paid").unwrap().seq;
    let reversal = events.iter().find(|event| event.event_type == "entry_reversed").unwrap().seq;
    for as_of in [5, first_payment - 1, first_payment, reversal - 1, reversal, head] {
        let model = Model::fold(&events, as_of);
        for programme in model.currency.keys() {
            let balance = balances::programme_balance_at(&ledger.store, programme, as_of).await.unwrap();
            assert_programme_balance(&balance, &model, programme);
        }
    }
    let before_payments = balances::programme_balance_at(&ledger.store, "MOTUSE", first_payment - 1).await.unwrap();
    assert_eq!(before_payments.figures.disbursed.total, "0.00");
    assert_eq!(before_payments.figures.allocated, "1300000.00");
    assert_eq!(before_payments.as_of_seq, first_payment - 1);
    let now = balances::programme_balance(&ledger.store, "MOTUSE").await.unwrap();
    assert_ne!(now.figures.disbursed.total, "0.00");
    assert_eq!(balances::programme_balance_at(&ledger.store, "MOTUSE", head).await.unwrap(), now);
    let past_the_head = balances::programme_balance_at(&ledger.store, "MOTUSE", head + 10).await.unwrap();
    assert_eq!(past_the_head, now, "a seq past the head gives today's figures");
    let before_registration = balances::programme_balance_at(&ledger.store, "MOTUSE", 4).await;
    assert!(matches!(before_registration, Err(BalanceError::NotFound(_))), "{before_registration:?}");
}
on_both_backends!(a_balance_as_of_an_earlier_seq_shows_the_figures_of_that_moment);

/// Every balance of the standard fixture with `as_of_seq` left out, to
/// compare figures across appends.
async fn fixture_figures(store: &Store) -> AllBalances {
    let mut all = AllBalances {
        programmes: Vec::new(),
        donors: Vec::new(),
        countries: Vec::new(),
        trial: balances::trial_balance(store).await.unwrap(),
    };
    all.trial.as_of_seq = 0;
    for programme in [FIXTURE_EUR, FIXTURE_XOF] {
        let mut balance = balances::programme_balance(store, programme).await.unwrap();
        balance.as_of_seq = 0;
        all.programmes.push(balance);
    }
    for donor in [FIXTURE_AMIF, FIXTURE_BMZ] {
        let mut balance = balances::donor_balance(store, donor).await.unwrap();
        balance.as_of_seq = 0;
        all.donors.push(balance);
    }
    for country in ["MA", "TN", "SN", "ML"] {
        let mut balance = balances::country_balance(store, country).await.unwrap();
        balance.as_of_seq = 0;
        all.countries.push(balance);
    }
    all
}

/// Reversing a money event of any kind gives back exactly the figures
/// of before it: funding, budget lines, local currency, splits,
/// beneficiaries reached and the trial balance.
async fn reversing_any_money_event_restores_every_figure_of_before_it(database: TestDatabase) {
    let ledger = database.open().await;
    let keys = test_keys();
    let mut appender = ledger.appender();
    standard_fixture(&mut appender).await;
    let eur = |country| (FIXTURE_EUR, FIXTURE_AMIF, country);
    // One of each kind already, so that no projection row is new below.
    append_all(
        &mut appender,
        vec![
            pay_cash(&keys, eur("MA"), "MA-1", "100.00", "EUR"),
            pay_cash_local(&keys, eur("MA"), "MA-1", "100.00", ("1090.00", "MAD")),
            grant_in_kind(&keys, eur("TN"), "TN-1", "80.00"),
            grant_to_community(eur("TN"), "Sfax youth centre", "90.00"),
            pay_cash(&keys, (FIXTURE_XOF, FIXTURE_BMZ, "SN"), "SN-1", "5000", "XOF"),
        ],
    )
    .await;
    let entries = [
        ("a commitment", commit(FIXTURE_EUR, FIXTURE_AMIF, "500.00")),
        ("a receipt", receive(FIXTURE_EUR, FIXTURE_AMIF, "250.00")),
        ("an allocation", allocate(FIXTURE_EUR, FIXTURE_AMIF, "TN", "300.00")),
        ("a reallocation", reallocate(FIXTURE_EUR, FIXTURE_AMIF, ("MA", "TN"), "200.00")),
        ("a cash payment to a new returnee", pay_cash(&keys, eur("MA"), "MA-2", "50.00", "EUR")),
        ("a second cash payment to a returnee", pay_cash_local(&keys, eur("MA"), "MA-1", "70.00", ("763.00", "MAD"))),
        ("an in-kind grant to a new returnee", grant_in_kind(&keys, eur("TN"), "TN-2", "80.00")),
        ("an in-kind grant to a returnee already reached", grant_in_kind(&keys, eur("MA"), "MA-1", "40.00")),
        ("a community grant", grant_to_community(eur("TN"), "Sfax youth centre", "90.00")),
        ("an XOF cash payment", pay_cash(&keys, (FIXTURE_XOF, FIXTURE_BMZ, "SN"), "SN-2", "7500", "XOF")),
    ];
    for (what, command) in entries {
        let before = fixture_figures(&ledger.store).await;
        let entry = append_ok(&mut appender, command).await;
        assert_ne!(fixture_figures(&ledger.store).await, before, "{what} changes some figure");
        append_ok(&mut appender, reverse(entry.seq)).await;
        assert_eq!(fixture_figures(&ledger.store).await, before, "reversing {what} restores every figure");
        let model = Model::fold(&all_events(&ledger.store).await, Seq::MAX);
        for programme in [FIXTURE_EUR, FIXTURE_XOF] {
            let balance = balances::programme_balance(&ledger.store, programme).await.unwrap();
            assert_programme_balance(&balance, &model, programme);
        }
        assert_trial_balance_is_zero(&ledger.store).await;
        assert_projections_equal_a_rebuild(&ledger.store).await;
    }
    assert_chain_valid(&ledger.store, &keys).await;
}
on_both_backends!(reversing_any_money_event_restores_every_figure_of_before_it);

// ---------------------------------------------------------------------------
// Property: any sequence of commands, valid or not, keeps the projections
// equal to a rebuild, the books balanced, every budget line at or above
// zero and the chain valid.

/// (code, currency, countries); the last is never registered.
const PROPERTY_PROGRAMMES: [(&str, &str, &[&str]); 4] =
    [("P-EUR", "EUR", &["MA", "TN"]), ("P-XOF", "XOF", &["SN", "ML"]), ("P-TND", "TND", &["TN"]), ("P-NONE", "EUR", &["MA"])];
/// The last is never registered.
const PROPERTY_DONORS: [&str; 3] = ["D-ONE", "D-TWO", "D-NONE"];
/// A country in none of the programmes.
const PROPERTY_FOREIGN_COUNTRY: &str = "DZ";
/// What each registered donor commits to each registered programme before
/// the random commands, in minor units; half is allocated to its first country.
const PROPERTY_COMMITTED_MINOR: i64 = 200_000;
const PROPERTY_CASES: u32 = 20;

/// An amount as minor units, possibly with one decimal too many.
#[derive(Clone, Copy, Debug)]
struct Amount {
    minor: i64,
    extra_decimal: bool,
}

impl Amount {
    fn in_currency(self, currency_code: &str) -> String {
        let scale = scale_of(currency_code) + u32::from(self.extra_decimal);
        Decimal::new(self.minor, scale).to_string()
    }
}

/// One of the programme's countries (by position), or `None` for a country
/// outside every programme.
type CountrySlot = Option<usize>;

#[derive(Clone, Debug)]
enum Step {
    Commit { programme: usize, donor: usize, amount: Amount },
    Receive { programme: usize, donor: usize, amount: Amount },
    Allocate { programme: usize, donor: usize, country: CountrySlot, amount: Amount },
    Reallocate { programme: usize, donor: usize, from: CountrySlot, to: CountrySlot, amount: Amount },
    PayCash { programme: usize, donor: usize, country: CountrySlot, case: usize, amount: Amount },
    Grant { programme: usize, donor: usize, country: CountrySlot, case: Option<usize>, amount: Amount },
    Reverse { target: Index },
    RegisterDonor { donor: usize },
}

fn amounts() -> impl Strategy<Value = Amount> {
    let minor = prop_oneof![8 => 1..PROPERTY_COMMITTED_MINOR / 2, 1 => Just(0_i64), 1 => -5_000..0_i64];
    (minor, prop::bool::weighted(0.1)).prop_map(|(minor, extra_decimal)| Amount { minor, extra_decimal })
}

fn steps() -> impl Strategy<Value = Step> {
    // Mostly registered programmes and donors, sometimes not.
    let programme = prop_oneof![9 => 0..3_usize, 1 => Just(3_usize)];
    let donor = prop_oneof![9 => 0..2_usize, 1 => Just(2_usize)];
    let country = prop_oneof![9 => (0..2_usize).prop_map(Some), 1 => Just(None)];
    let case = 0..6_usize;
    prop_oneof![
        2 => (programme.clone(), donor.clone(), amounts()).prop_map(|(programme, donor, amount)| Step::Commit { programme, donor, amount }),
        1 => (programme.clone(), donor.clone(), amounts()).prop_map(|(programme, donor, amount)| Step::Receive { programme, donor, amount }),
        3 => (programme.clone(), donor.clone(), country.clone(), amounts())
            .prop_map(|(programme, donor, country, amount)| Step::Allocate { programme, donor, country, amount }),
        1 => (programme.clone(), donor.clone(), country.clone(), country.clone(), amounts())
            .prop_map(|(programme, donor, from, to, amount)| Step::Reallocate { programme, donor, from, to, amount }),
        3 => (programme.clone(), donor.clone(), country.clone(), case.clone(), amounts())
            .prop_map(|(programme, donor, country, case, amount)| Step::PayCash { programme, donor, country, case, amount }),
        2 => (programme, donor, country, prop::option::of(case), amounts())
            .prop_map(|(programme, donor, country, case, amount)| Step::Grant { programme, donor, country, case, amount }),
        3 => any::<Index>().prop_map(|target| Step::Reverse { target }),
        1 => (0..3_usize).prop_map(|donor| Step::RegisterDonor { donor }),
    ]
}

/// Batches (one `append` call each) of units of one or two commands.
fn batches() -> impl Strategy<Value = Vec<Vec<Vec<Step>>>> {
    prop::collection::vec(prop::collection::vec(prop::collection::vec(steps(), 1..=2), 1..=2), 1..=10)
}

/// The command a step stands for; reversals pick a seq up to one past `head`.
fn command_of(step: &Step, head: Seq, keys: &KeyRing) -> Command {
    let code = |programme: usize| PROPERTY_PROGRAMMES[programme].0;
    let money = |programme: usize, amount: Amount| amount.in_currency(PROPERTY_PROGRAMMES[programme].1);
    let case_id = |case: usize| format!("case {case}");
    let country = |programme: usize, slot: CountrySlot| {
        let countries = PROPERTY_PROGRAMMES[programme].2;
        slot.map_or(PROPERTY_FOREIGN_COUNTRY, |index| countries[index % countries.len()])
    };
    match *step {
        Step::Commit { programme, donor, amount } => commit(code(programme), PROPERTY_DONORS[donor], &money(programme, amount)),
        Step::Receive { programme, donor, amount } => receive(code(programme), PROPERTY_DONORS[donor], &money(programme, amount)),
        Step::Allocate { programme, donor, country: slot, amount } => {
            allocate(code(programme), PROPERTY_DONORS[donor], country(programme, slot), &money(programme, amount))
        }
        Step::Reallocate { programme, donor, from, to, amount } => reallocate(
            code(programme),
            PROPERTY_DONORS[donor],
            (country(programme, from), country(programme, to)),
            &money(programme, amount),
        ),
        Step::PayCash { programme, donor, country: slot, case, amount } => {
            let line = (code(programme), PROPERTY_DONORS[donor], country(programme, slot));
            match PROPERTY_PROGRAMMES[programme].1 {
                // Paid in dirhams at 11 to the euro.
                "EUR" => {
                    let paid = Decimal::new(amount.minor.saturating_mul(11), 2).to_string();
                    pay_cash_local(keys, line, &case_id(case), &money(programme, amount), (&paid, "MAD"))
                }
                programme_currency => pay_cash(keys, line, &case_id(case), &money(programme, amount), programme_currency),
            }
        }
        Step::Grant { programme, donor, country: slot, case, amount } => {
            let line = (code(programme), PROPERTY_DONORS[donor], country(programme, slot));
            match case {
                Some(case) => grant_in_kind(keys, line, &case_id(case), &money(programme, amount)),
                None => grant_to_community(line, "Village council", &money(programme, amount)),
            }
        }
        Step::Reverse { target } => reverse(target.index(usize::try_from(head).unwrap() + 2) as Seq),
        Step::RegisterDonor { donor } => register_donor(PROPERTY_DONORS[donor]),
    }
}

/// The invariants that hold after every append.
async fn assert_ledger_is_sound(store: &Store, keys: &KeyRing) {
    assert_projections_equal_a_rebuild(store).await;
    assert_trial_balance_is_zero(store).await;
    for (line, allocated, available) in budget_line_availability(store).await {
        assert!(allocated >= 0 && available >= 0, "budget line {line}: {allocated} allocated, {available} available");
    }
    let overallocated: Vec<(String, String)> =
        sqlx::query("SELECT programme, donor FROM funding WHERE allocated > committed OR allocated < 0 OR received < 0")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
    assert_eq!(overallocated, vec![], "no donor has more allocated than committed");
    assert_chain_valid(store, keys).await;
}

async fn append_batch(appender: &mut Appender, store: &Store, batch: &[Vec<Step>], keys: &KeyRing) {
    let (head, _) = store.head().await.unwrap();
    let units: Vec<_> = batch.iter().map(|steps| unit(steps.iter().map(|step| command_of(step, head, keys)).collect())).collect();
    let outcomes = appender.append(&units).await.expect("the database accepts the batch");
    let mut appended = 0;
    for (outcome, unit) in outcomes.iter().zip(&units) {
        match outcome {
            UnitOutcome::Appended(receipts) => {
                assert_eq!(receipts.len(), unit.commands.len(), "every command of an appended unit is appended");
                appended += receipts.len() as u64;
            }
            UnitOutcome::Refused { index, .. } => assert!(*index < unit.commands.len()),
            other => panic!("a unit without an idempotency key cannot end as {other:?}"),
        }
    }
    assert_eq!(store.head().await.unwrap().0, head + appended, "the head moved by the events appended");
}

async fn run_property_case(database: &TestDatabase, batches: &[Vec<Vec<Step>>]) {
    let ledger = database.open().await;
    let keys = test_keys();
    let mut appender = ledger.appender();
    let mut registrations: Vec<Command> = PROPERTY_DONORS[..2].iter().map(|code| register_donor(code)).collect();
    for (code, currency_code, countries) in &PROPERTY_PROGRAMMES[..3] {
        registrations.push(register_programme(code, currency_code, countries));
    }
    for (code, currency_code, countries) in &PROPERTY_PROGRAMMES[..3] {
        for donor_code in &PROPERTY_DONORS[..2] {
            let minor_units = scale_of(currency_code);
            let committed = Decimal::new(PROPERTY_COMMITTED_MINOR, minor_units).to_string();
            let half = Decimal::new(PROPERTY_COMMITTED_MINOR / 2, minor_units).to_string();
            registrations.push(commit(code, donor_code, &committed));
            registrations.push(receive(code, donor_code, &half));
            registrations.push(allocate(code, donor_code, countries[0], &half));
        }
    }
    append_all(&mut appender, registrations).await;
    for batch in batches {
        append_batch(&mut appender, &ledger.store, batch, &keys).await;
        assert_ledger_is_sound(&ledger.store, &keys).await;
    }
    // The figures equal the sums folded here from the events.
    let model = Model::fold(&all_events(&ledger.store).await, Seq::MAX);
    for (line, sums) in &model.lines {
        assert!(sums.allocated >= sums.disbursed() && sums.allocated >= Decimal::ZERO, "{line:?} is overspent: {sums:?}");
    }
    for programme in model.currency.keys() {
        let balance = balances::programme_balance(&ledger.store, programme).await.unwrap();
        assert_programme_balance(&balance, &model, programme);
    }
}

/// Any sequence of commands, valid or not, reversals of random seqs
/// included, keeps the projections equal to a rebuild, the trial balance
/// at zero, every budget line at or above zero and the chain valid.
async fn any_sequence_of_commands_keeps_projections_books_and_chain_sound(database: TestDatabase) {
    let config = Config { cases: PROPERTY_CASES, max_shrink_iters: 64, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let runtime = tokio::runtime::Handle::current();
    let result = tokio::task::block_in_place(|| {
        runner.run(&batches(), |batches| {
            runtime.block_on(async {
                // A fresh database per case, so a shrunk case starts clean.
                let case_database = database.another().await;
                run_property_case(&case_database, &batches).await;
            });
            Ok(())
        })
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
on_both_backends!(any_sequence_of_commands_keeps_projections_books_and_chain_sound);
