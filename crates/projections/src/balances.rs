//! Balances as donors, auditors and governments read them. Each is built
//! from a few indexed rows (never a scan of the events), or, for a past
//! point in history, from the events up to that point.

use std::collections::BTreeMap;

use ledger_core::domain::Currency;
use ledger_core::domain::types::format_minor_units;
use ledger_core::store::{self, Store, StoreError};
use serde::Serialize;
use sqlx::{AnyConnection, Connection, Row};
use utoipa::ToSchema;

use crate::rows::{BUDGET_LINES, Changes, FUNDING, PROGRAMMES, REACH_TOTALS, Value};

#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rebuild(#[from] crate::rebuild::RebuildError),
    #[error("{0}")]
    NotFound(String),
    #[error("stored figure is unreadable: {0}")]
    Corrupt(String),
}

/// Distinct returnees reached: the exact count, or, in figures for donors
/// (aggregates only), "fewer than 5" when the count is below
/// [`SMALL_COUNT_THRESHOLD`], so that no single returnee can be told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    Exact(i64),
    /// Fewer than the threshold (the count itself is not given).
    FewerThan(i64),
}

/// Counts of returnees below this are shown to donors as "fewer than 5".
pub const SMALL_COUNT_THRESHOLD: i64 = 5;

impl Reached {
    /// The count as a donor may see it.
    pub fn for_donor(self) -> Reached {
        match self {
            Reached::Exact(count) if count < SMALL_COUNT_THRESHOLD => Reached::FewerThan(SMALL_COUNT_THRESHOLD),
            other => other,
        }
    }
}

impl PartialEq<i64> for Reached {
    fn eq(&self, other: &i64) -> bool {
        *self == Reached::Exact(*other)
    }
}

impl Serialize for Reached {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Reached::Exact(count) => serializer.serialize_i64(*count),
            Reached::FewerThan(threshold) => serializer.serialize_str(&format!("fewer than {threshold}")),
        }
    }
}

/// The schema of [`Reached`]: an integer, or the string "fewer than 5".
fn reached_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Integer))
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
                .minimum(Some(0)),
        )
        .item(ObjectBuilder::new().schema_type(SchemaType::new(Type::String)).enum_values(Some(["fewer than 5"])))
        .description(Some("Distinct returnees reached; for donors, counts below 5 are \"fewer than 5\""))
        .build()
        .into()
}

/// One funding row: (programme, donor), minor units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FundingRow {
    pub programme: String,
    pub donor: String,
    pub currency: String,
    pub committed: i64,
    pub received: i64,
    pub allocated: i64,
}

/// One budget line row: (programme, donor, country), minor units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRow {
    pub programme: String,
    pub donor: String,
    pub country: String,
    pub currency: String,
    pub allocated: i64,
    pub disbursed_cash: i64,
    pub disbursed_in_kind: i64,
    /// Held by payment lists.
    pub held: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct Disbursed {
    #[schema(example = "350.00")]
    pub cash: String,
    pub in_kind: String,
    pub total: String,
}

/// The figures of one slice of a programme (all of it, a country, a donor).
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct Figures {
    #[schema(example = "1000000.00")]
    pub committed: String,
    pub received: String,
    pub allocated: String,
    pub disbursed: Disbursed,
    /// committed - allocated
    pub unallocated: String,
    /// What payment lists hold: imported, not yet charged or released.
    pub held: String,
    /// allocated - disbursed - held
    pub available: String,
    /// received - disbursed
    pub cash_position: String,
}

/// Sums of rows, in minor units. Each row's figure is within the ledger's
/// limit, but a sum over programmes (a donor's totals per currency) need
/// not be: sums are kept in `i128`, which no number of `i64` rows the
/// ledger can hold overflows.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    committed: i128,
    received: i128,
    allocated: i128,
    cash: i128,
    in_kind: i128,
    held: i128,
}

impl Totals {
    fn add_funding(&mut self, row: &FundingRow) {
        self.committed += i128::from(row.committed);
        self.received += i128::from(row.received);
    }

    fn add_line(&mut self, row: &LineRow) {
        self.allocated += i128::from(row.allocated);
        self.cash += i128::from(row.disbursed_cash);
        self.in_kind += i128::from(row.disbursed_in_kind);
        self.held += i128::from(row.held);
    }

    fn add(&mut self, other: &Totals) {
        self.committed += other.committed;
        self.received += other.received;
        self.allocated += other.allocated;
        self.cash += other.cash;
        self.in_kind += other.in_kind;
        self.held += other.held;
    }

    fn figures(&self, currency: Currency) -> Figures {
        let format = |minor| format_sum(minor, currency);
        let disbursed = self.cash + self.in_kind;
        Figures {
            committed: format(self.committed),
            received: format(self.received),
            allocated: format(self.allocated),
            disbursed: Disbursed { cash: format(self.cash), in_kind: format(self.in_kind), total: format(disbursed) },
            unallocated: format(self.committed - self.allocated),
            held: format(self.held),
            available: format(self.allocated - disbursed - self.held),
            cash_position: format(self.received - disbursed),
        }
    }
}

/// Formats a sum of minor units of `currency` at the currency's scale.
fn format_sum(minor: i128, currency: Currency) -> String {
    rust_decimal::Decimal::from_i128_with_scale(minor, currency.minor_units()).to_string()
}

/// A programme's budget lines in one country, all donors together.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct CountryFigures {
    #[schema(example = "MA")]
    pub country: String,
    pub allocated: String,
    pub disbursed: Disbursed,
    /// Held by payment lists.
    pub held: String,
    pub available: String,
    #[schema(schema_with = reached_schema)]
    pub beneficiaries_reached: Reached,
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct DonorFigures {
    #[schema(example = "EU-EUTF")]
    pub donor: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct ProgrammeBalance {
    #[schema(example = "MOTUSE")]
    pub programme: String,
    #[schema(example = "EUR")]
    pub currency: String,
    #[serde(flatten)]
    pub figures: Figures,
    /// Distinct returnees with at least one disbursement not reversed.
    #[schema(schema_with = reached_schema)]
    pub beneficiaries_reached: Reached,
    pub by_country: Vec<CountryFigures>,
    pub by_donor: Vec<DonorFigures>,
    /// The seq of the last event these figures reflect.
    pub as_of_seq: u64,
    /// The UTC day at whose end these figures stand, when they were asked
    /// as of a day (donors always see figures as of a closed day).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<String>,
}

fn currency_of(text: &str) -> Result<Currency, BalanceError> {
    Currency::parse(text).map_err(|error| BalanceError::Corrupt(error.to_string()))
}

/// Builds a programme's balance from its funding and budget line rows.
pub fn programme_balance_from(
    programme: &str,
    currency: &str,
    funding: &[FundingRow],
    lines: &[LineRow],
    reach: &BTreeMap<String, i64>,
    as_of_seq: u64,
) -> Result<ProgrammeBalance, BalanceError> {
    let money = currency_of(currency)?;
    let mut total = Totals::default();
    let mut by_country: BTreeMap<&str, Totals> = BTreeMap::new();
    let mut by_donor: BTreeMap<&str, Totals> = BTreeMap::new();
    for row in funding {
        total.add_funding(row);
        by_donor.entry(&row.donor).or_default().add_funding(row);
    }
    for row in lines {
        total.add_line(row);
        by_country.entry(&row.country).or_default().add_line(row);
        by_donor.entry(&row.donor).or_default().add_line(row);
    }
    let reached = |scope: String| Reached::Exact(reach.get(&scope).copied().unwrap_or(0));
    Ok(ProgrammeBalance {
        programme: programme.to_string(),
        currency: currency.to_string(),
        figures: total.figures(money),
        beneficiaries_reached: reached(format!("programme:{programme}")),
        by_country: by_country
            .iter()
            .map(|(country, totals)| {
                let figures = totals.figures(money);
                CountryFigures {
                    country: country.to_string(),
                    allocated: figures.allocated,
                    disbursed: figures.disbursed,
                    held: figures.held,
                    available: figures.available,
                    beneficiaries_reached: reached(format!("programme-country:{programme}:{country}")),
                }
            })
            .collect(),
        by_donor: by_donor
            .iter()
            .map(|(donor, totals)| DonorFigures { donor: donor.to_string(), figures: totals.figures(money) })
            .collect(),
        as_of_seq,
        as_of: None,
    })
}

async fn head_seq(connection: &mut AnyConnection) -> Result<u64, BalanceError> {
    let row = sqlx::query("SELECT seq FROM events ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *connection).await?;
    let seq: i64 = match row {
        Some(row) => row.try_get(0)?,
        None => 0,
    };
    Ok(u64::try_from(seq).unwrap_or_default())
}

fn funding_from_row(row: &sqlx::any::AnyRow) -> Result<FundingRow, sqlx::Error> {
    Ok(FundingRow {
        programme: row.try_get("programme")?,
        donor: row.try_get("donor")?,
        currency: row.try_get("currency")?,
        committed: row.try_get("committed")?,
        received: row.try_get("received")?,
        allocated: row.try_get("allocated")?,
    })
}

fn line_from_row(row: &sqlx::any::AnyRow) -> Result<LineRow, sqlx::Error> {
    Ok(LineRow {
        programme: row.try_get("programme")?,
        donor: row.try_get("donor")?,
        country: row.try_get("country")?,
        currency: row.try_get("currency")?,
        allocated: row.try_get("allocated")?,
        disbursed_cash: row.try_get("disbursed_cash")?,
        disbursed_in_kind: row.try_get("disbursed_in_kind")?,
        held: row.try_get("held")?,
    })
}

const FUNDING_COLUMNS: &str = "programme, donor, currency, committed, received, allocated";
const LINE_COLUMNS: &str = "programme, donor, country, currency, allocated, disbursed_cash, disbursed_in_kind, held";

/// A programme's current balance, read in one snapshot.
pub async fn programme_balance(store: &Store, programme: &str) -> Result<ProgrammeBalance, BalanceError> {
    let mut connection = store.pool().acquire().await?;
    let mut transaction = connection.begin().await?;
    store::snapshot(&mut transaction, store.backend()).await?;
    let as_of_seq = head_seq(&mut transaction).await?;
    let currency: Option<String> = sqlx::query("SELECT currency FROM programmes WHERE code = $1")
        .bind(programme)
        .fetch_optional(&mut *transaction)
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    let currency = currency.ok_or_else(|| BalanceError::NotFound(format!("unknown programme {programme}")))?;
    let funding = sqlx::query(&format!("SELECT {FUNDING_COLUMNS} FROM funding WHERE programme = $1"))
        .bind(programme)
        .fetch_all(&mut *transaction)
        .await?
        .iter()
        .map(funding_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let lines = sqlx::query(&format!("SELECT {LINE_COLUMNS} FROM budget_lines WHERE programme = $1"))
        .bind(programme)
        .fetch_all(&mut *transaction)
        .await?
        .iter()
        .map(line_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let mut scopes = vec![format!("programme:{programme}")];
    scopes.extend(lines.iter().map(|line| format!("programme-country:{programme}:{}", line.country)));
    let reach = read_reach_totals(&mut transaction, &scopes).await?;
    transaction.rollback().await?;
    programme_balance_from(programme, &currency, &funding, &lines, &reach, as_of_seq)
}

async fn read_reach_totals(connection: &mut AnyConnection, scopes: &[String]) -> Result<BTreeMap<String, i64>, BalanceError> {
    let mut totals = BTreeMap::new();
    for scope in scopes {
        let row = sqlx::query("SELECT beneficiaries FROM reach_totals WHERE scope = $1")
            .bind(scope.clone())
            .fetch_optional(&mut *connection)
            .await?;
        if let Some(row) = row {
            totals.insert(scope.clone(), row.try_get::<i64, _>(0)?);
        }
    }
    Ok(totals)
}

/// A programme's balance as it stood just after event `as_of_seq`, folded
/// from the events (for reconciling with reports sent in the past).
pub async fn programme_balance_at(store: &Store, programme: &str, as_of_seq: u64) -> Result<ProgrammeBalance, BalanceError> {
    let changes = crate::rebuild::fold_until(store, as_of_seq).await?;
    programme_balance_in(&changes, programme)
}

/// A programme's balance from projection rows folded from the events (as
/// `fold_until` gives them), as of the last event folded in.
pub fn programme_balance_in(changes: &Changes, programme: &str) -> Result<ProgrammeBalance, BalanceError> {
    let as_of_seq = changes.last_seq;
    let text_of = |value: &Value| value.to_string();
    let int_of = |value: &Value| match value {
        Value::Int(number) => *number,
        Value::Text(_) => 0,
    };
    let programmes = changes.rows(&PROGRAMMES).cloned().unwrap_or_default();
    let Some(programme_row) = programmes.get(&vec![Value::Text(programme.to_string())]) else {
        return Err(BalanceError::NotFound(format!("programme {programme} was not registered by seq {as_of_seq}")));
    };
    let currency = text_of(&programme_row[1]);
    let (funding, lines) = folded_rows(changes, |key| text_of(&key[0]) == programme);
    let reach: BTreeMap<String, i64> =
        changes.rows(&REACH_TOTALS).into_iter().flatten().map(|(key, values)| (text_of(&key[0]), int_of(&values[0]))).collect();
    programme_balance_from(programme, &currency, &funding, &lines, &reach, as_of_seq)
}

/// The funding and budget line rows of folded changes whose key
/// (programme, donor[, country]) `keep` selects.
fn folded_rows(changes: &Changes, keep: impl Fn(&[Value]) -> bool) -> (Vec<FundingRow>, Vec<LineRow>) {
    let text_of = |value: &Value| value.to_string();
    let int_of = |value: &Value| match value {
        Value::Int(number) => *number,
        Value::Text(_) => 0,
    };
    let funding = changes
        .rows(&FUNDING)
        .into_iter()
        .flatten()
        .filter(|(key, _)| keep(key))
        .map(|(key, values)| FundingRow {
            programme: text_of(&key[0]),
            donor: text_of(&key[1]),
            currency: text_of(&values[0]),
            committed: int_of(&values[1]),
            received: int_of(&values[2]),
            allocated: int_of(&values[3]),
        })
        .collect();
    let lines = changes
        .rows(&BUDGET_LINES)
        .into_iter()
        .flatten()
        .filter(|(key, _)| keep(key))
        .map(|(key, values)| LineRow {
            programme: text_of(&key[0]),
            donor: text_of(&key[1]),
            country: text_of(&key[2]),
            currency: text_of(&values[0]),
            allocated: int_of(&values[1]),
            disbursed_cash: int_of(&values[2]),
            disbursed_in_kind: int_of(&values[3]),
            held: int_of(&values[4]),
        })
        .collect();
    (funding, lines)
}

/// A donor's balance from projection rows folded from the events, as of
/// the last event folded in.
pub fn donor_balance_in(changes: &Changes, donor: &str) -> Result<DonorBalance, BalanceError> {
    let text_of = |value: &Value| value.to_string();
    let (funding, lines) = folded_rows(changes, |key| text_of(&key[1]) == donor);
    donor_balance_from(donor, &funding, &lines, changes.last_seq)
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct DonorProgrammeFigures {
    pub programme: String,
    pub currency: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct CurrencyTotals {
    pub currency: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct DonorBalance {
    pub donor: String,
    pub programmes: Vec<DonorProgrammeFigures>,
    /// The same figures summed per currency over the donor's programmes.
    pub totals_by_currency: Vec<CurrencyTotals>,
    pub as_of_seq: u64,
    /// The UTC day at whose end these figures stand, when they were asked
    /// as of a day (donors always see figures as of a closed day).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<String>,
}

/// A donor's funding of each programme, read in one snapshot.
pub async fn donor_balance(store: &Store, donor: &str) -> Result<DonorBalance, BalanceError> {
    let mut connection = store.pool().acquire().await?;
    let mut transaction = connection.begin().await?;
    store::snapshot(&mut transaction, store.backend()).await?;
    let as_of_seq = head_seq(&mut transaction).await?;
    let known = sqlx::query("SELECT code FROM donors WHERE code = $1").bind(donor).fetch_optional(&mut *transaction).await?;
    if known.is_none() {
        return Err(BalanceError::NotFound(format!("unknown donor {donor}")));
    }
    let funding = sqlx::query(&format!("SELECT {FUNDING_COLUMNS} FROM funding WHERE donor = $1 ORDER BY programme"))
        .bind(donor)
        .fetch_all(&mut *transaction)
        .await?
        .iter()
        .map(funding_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let lines = sqlx::query(&format!("SELECT {LINE_COLUMNS} FROM budget_lines WHERE donor = $1"))
        .bind(donor)
        .fetch_all(&mut *transaction)
        .await?
        .iter()
        .map(line_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    transaction.rollback().await?;
    donor_balance_from(donor, &funding, &lines, as_of_seq)
}

/// Builds a donor's balance from its funding and budget line rows.
fn donor_balance_from(
    donor: &str,
    funding: &[FundingRow],
    lines: &[LineRow],
    as_of_seq: u64,
) -> Result<DonorBalance, BalanceError> {
    let mut by_programme: BTreeMap<(&str, &str), Totals> = BTreeMap::new();
    for row in funding {
        by_programme.entry((&row.programme, &row.currency)).or_default().add_funding(row);
    }
    for row in lines {
        by_programme.entry((&row.programme, &row.currency)).or_default().add_line(row);
    }
    let mut by_currency: BTreeMap<&str, Totals> = BTreeMap::new();
    let mut programmes = Vec::with_capacity(by_programme.len());
    for ((programme, currency), totals) in &by_programme {
        by_currency.entry(currency).or_default().add(totals);
        programmes.push(DonorProgrammeFigures {
            programme: programme.to_string(),
            currency: currency.to_string(),
            figures: totals.figures(currency_of(currency)?),
        });
    }
    let totals_by_currency = by_currency
        .iter()
        .map(|(currency, totals)| {
            Ok(CurrencyTotals { currency: currency.to_string(), figures: totals.figures(currency_of(currency)?) })
        })
        .collect::<Result<Vec<_>, BalanceError>>()?;
    Ok(DonorBalance { donor: donor.to_string(), programmes, totals_by_currency, as_of_seq, as_of: None })
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct LocalAmount {
    #[schema(example = "MAD")]
    pub currency: String,
    #[schema(example = "3800.00")]
    pub amount: String,
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct Split {
    pub level: String,
    pub dimension: String,
    pub amount: String,
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct CountryDonorFigures {
    pub donor: String,
    pub allocated: String,
    pub disbursed: Disbursed,
    /// Held by payment lists.
    pub held: String,
    pub available: String,
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct CountryProgrammeFigures {
    pub programme: String,
    pub currency: String,
    pub allocated: String,
    pub disbursed: Disbursed,
    /// Held by payment lists.
    pub held: String,
    pub available: String,
    pub by_donor: Vec<CountryDonorFigures>,
    pub local_currency_paid: Vec<LocalAmount>,
    pub beneficiaries_reached: i64,
    /// Disbursed amounts by level and dimension (cash counts as individual, economic).
    pub splits: Vec<Split>,
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct CountryBalance {
    #[schema(example = "MA")]
    pub country: String,
    pub programmes: Vec<CountryProgrammeFigures>,
    /// What reached returnees in each local currency, all programmes together.
    pub local_currency_paid: Vec<LocalAmount>,
    pub beneficiaries_reached: i64,
    pub as_of_seq: u64,
}

/// What was allocated, spent and paid in one country, read in one snapshot.
pub async fn country_balance(store: &Store, country: &str) -> Result<CountryBalance, BalanceError> {
    let mut connection = store.pool().acquire().await?;
    let mut transaction = connection.begin().await?;
    store::snapshot(&mut transaction, store.backend()).await?;
    let as_of_seq = head_seq(&mut transaction).await?;
    let lines = sqlx::query(&format!("SELECT {LINE_COLUMNS} FROM budget_lines WHERE country = $1 ORDER BY programme, donor"))
        .bind(country)
        .fetch_all(&mut *transaction)
        .await?
        .iter()
        .map(line_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let local_rows =
        sqlx::query("SELECT programme, currency, amount FROM local_paid WHERE country = $1 ORDER BY programme, currency")
            .bind(country)
            .fetch_all(&mut *transaction)
            .await?;
    let split_rows = sqlx::query(
        "SELECT programme, level, dimension, currency, amount FROM disbursement_splits WHERE country = $1 ORDER BY programme, level, dimension",
    )
    .bind(country)
    .fetch_all(&mut *transaction)
    .await?;
    let mut scopes = vec![format!("country:{country}")];
    scopes.extend(lines.iter().map(|line| format!("programme-country:{}:{country}", line.programme)));
    let reach = read_reach_totals(&mut transaction, &scopes).await?;
    transaction.rollback().await?;
    let mut programmes: BTreeMap<String, CountryProgrammeFigures> = BTreeMap::new();
    for line in &lines {
        let money = currency_of(&line.currency)?;
        let format = |minor| format_sum(minor, money);
        let entry = programmes.entry(line.programme.clone()).or_insert_with(|| CountryProgrammeFigures {
            programme: line.programme.clone(),
            currency: line.currency.clone(),
            allocated: String::new(),
            disbursed: Disbursed { cash: String::new(), in_kind: String::new(), total: String::new() },
            held: String::new(),
            available: String::new(),
            by_donor: Vec::new(),
            local_currency_paid: Vec::new(),
            beneficiaries_reached: reach.get(&format!("programme-country:{}:{country}", line.programme)).copied().unwrap_or(0),
            splits: Vec::new(),
        });
        let (allocated, cash, in_kind, held) = (
            i128::from(line.allocated),
            i128::from(line.disbursed_cash),
            i128::from(line.disbursed_in_kind),
            i128::from(line.held),
        );
        entry.by_donor.push(CountryDonorFigures {
            donor: line.donor.clone(),
            allocated: format(allocated),
            disbursed: Disbursed { cash: format(cash), in_kind: format(in_kind), total: format(cash + in_kind) },
            held: format(held),
            available: format(allocated - cash - in_kind - held),
        });
    }
    for entry in programmes.values_mut() {
        let money = currency_of(&entry.currency)?;
        let mut totals = Totals::default();
        for line in lines.iter().filter(|line| line.programme == entry.programme) {
            totals.add_line(line);
        }
        let figures = totals.figures(money);
        (entry.allocated, entry.disbursed, entry.held, entry.available) =
            (figures.allocated, figures.disbursed, figures.held, figures.available);
    }
    let mut all_local: BTreeMap<String, i128> = BTreeMap::new();
    for row in &local_rows {
        let (programme, currency, amount): (String, String, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        *all_local.entry(currency.clone()).or_default() += i128::from(amount);
        if let Some(entry) = programmes.get_mut(&programme) {
            entry.local_currency_paid.push(LocalAmount { amount: format_minor_units(amount, currency_of(&currency)?), currency });
        }
    }
    for row in &split_rows {
        let (programme, level, dimension, currency, amount): (String, String, String, String, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
        if let Some(entry) = programmes.get_mut(&programme) {
            let amount = format_minor_units(amount, currency_of(&currency)?);
            match entry.splits.iter_mut().find(|split| split.level == level && split.dimension == dimension) {
                // Several donors' splits of one programme add up.
                Some(split) => split.amount = add_decimal_text(&split.amount, &amount),
                None => entry.splits.push(Split { level, dimension, amount }),
            }
        }
    }
    let local_currency_paid = all_local
        .into_iter()
        .map(|(currency, amount)| Ok(LocalAmount { amount: format_sum(amount, currency_of(&currency)?), currency }))
        .collect::<Result<Vec<_>, BalanceError>>()?;
    Ok(CountryBalance {
        country: country.to_string(),
        programmes: programmes.into_values().collect(),
        local_currency_paid,
        beneficiaries_reached: reach.get(&format!("country:{country}")).copied().unwrap_or(0),
        as_of_seq,
    })
}

fn add_decimal_text(left: &str, right: &str) -> String {
    let parse = |text: &str| text.parse::<rust_decimal::Decimal>().unwrap_or_default();
    (parse(left) + parse(right)).to_string()
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct CurrencyTrialBalance {
    pub currency: String,
    pub debits: String,
    pub credits: String,
    /// debits - credits: zero when the books balance.
    pub balance: String,
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct TrialBalance {
    pub currencies: Vec<CurrencyTrialBalance>,
    /// True when every currency's balance is zero.
    pub balanced: bool,
    pub as_of_seq: u64,
}

/// Debits and credits per currency over all account balances.
pub async fn trial_balance(store: &Store) -> Result<TrialBalance, BalanceError> {
    let mut connection = store.pool().acquire().await?;
    let mut transaction = connection.begin().await?;
    store::snapshot(&mut transaction, store.backend()).await?;
    let as_of_seq = head_seq(&mut transaction).await?;
    let rows = sqlx::query("SELECT currency, balance FROM account_balances").fetch_all(&mut *transaction).await?;
    transaction.rollback().await?;
    let mut sums: BTreeMap<String, (i128, i128)> = BTreeMap::new();
    for row in rows {
        let (currency, balance): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        let entry = sums.entry(currency).or_default();
        if balance >= 0 {
            entry.0 += i128::from(balance);
        } else {
            entry.1 -= i128::from(balance);
        }
    }
    let mut currencies = Vec::with_capacity(sums.len());
    let mut balanced = true;
    for (currency, (debits, credits)) in sums {
        let money = currency_of(&currency)?;
        let scale = money.minor_units();
        let format = |minor: i128| rust_decimal::Decimal::from_i128_with_scale(minor, scale).to_string();
        balanced &= debits == credits;
        currencies.push(CurrencyTrialBalance {
            currency,
            debits: format(debits),
            credits: format(credits),
            balance: format(debits - credits),
        });
    }
    Ok(TrialBalance { currencies, balanced, as_of_seq })
}
