//! IATI 2.03 activity files: one `iati-activity` per programme, folded
//! from the events up to a point. Commitments are incoming commitments
//! (11), receipts incoming funds (1), each with its own date; disbursements
//! to returnees are expenditure (4) summed per country, month and kind,
//! never one per returnee; a reversal is a negative value dated the day it
//! was recorded (an expenditure reversal nets into the month it was
//! recorded). Recipient countries carry percentages of the allocations
//! (equal shares of the programme's countries while nothing is allocated),
//! summing to exactly 100. Only dates up to the report's day are given as
//! actual dates or transaction dates.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use ledger_core::domain::events::ProgrammeRegistered;
use ledger_core::domain::types::to_minor_units;
use ledger_core::domain::{Currency, DonorCode, EventBody, MoneyEntry, ProgrammeCode, Seq};
use ledger_core::store::Store;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::statement::format_amount;
use super::{ReportError, fold_events};

/// The IATI standard version the files follow.
pub const IATI_VERSION: &str = "2.03";
/// The DAC 5-digit sector of migration (vocabulary 1).
pub const SECTOR_MIGRATION: &str = "15190";

/// The organisation that publishes the files (configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportingOrg {
    /// Its IATI organisation identifier, such as `XM-DAC-47066`.
    pub reference: String,
    pub name: String,
    /// IATI OrganisationType code, such as `40` (multilateral).
    pub organisation_type: String,
}

/// Checks an IATI organisation identifier: 1 to 100 characters, no
/// whitespace or control character, none of `/ & | ?`.
pub fn parse_organisation_ref(text: &str) -> Result<String, String> {
    ledger_core::domain::decide::parse_iati_identifier(text).map_err(|error| error.to_string())
}

impl ReportingOrg {
    pub fn parse(reference: &str, name: &str, organisation_type: &str) -> Result<ReportingOrg, String> {
        let reference = parse_organisation_ref(reference).map_err(|reason| format!("reporting organisation: {reason}"))?;
        if name.trim().is_empty() {
            return Err("reporting organisation: give its name".to_string());
        }
        if organisation_type.is_empty() || !organisation_type.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err("reporting organisation: its type is an IATI OrganisationType code, such as 40".to_string());
        }
        Ok(ReportingOrg { reference, name: name.to_string(), organisation_type: organisation_type.to_string() })
    }
}

/// What the file is asked for.
#[derive(Clone, Debug)]
pub struct IatiRequest {
    /// One programme, or every programme.
    pub programme: Option<ProgrammeCode>,
    /// For a donor: only its own funding and spending (the programme's
    /// country shares stay whole, as in its balance).
    pub donor: Option<DonorCode>,
    /// The last event the file reflects, and the day it stands at.
    pub until: Seq,
    pub day: NaiveDate,
}

#[derive(Clone, Debug, Default)]
struct DonorInfo {
    name: String,
    kind: String,
    reference: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Cash,
    InKind,
}

/// One commitment or receipt (or its reversal), as a transaction.
#[derive(Clone, Debug)]
struct Incoming {
    transaction_type: &'static str,
    donor: DonorCode,
    minor: i128,
    date: NaiveDate,
    description: String,
}

#[derive(Debug)]
struct Activity {
    registration: ProgrammeRegistered,
    incoming: Vec<Incoming>,
    /// (country, first day of month, kind) -> net minor units
    expenditure: BTreeMap<(String, NaiveDate, Kind), i128>,
    allocated: BTreeMap<String, i128>,
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn last_of_month(day: NaiveDate) -> NaiveDate {
    let next = if day.month() == 12 {
        NaiveDate::from_ymd_opt(day.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(day.year(), day.month() + 1, 1)
    };
    next.and_then(|next| next.pred_opt()).unwrap_or(day)
}

fn minor_of(entry: &MoneyEntry) -> i128 {
    let (amount, currency) = entry.amount();
    i128::from(to_minor_units(amount, currency))
}

impl Activity {
    /// Adds a money entry (`reversal_day` set for a reversal of it).
    fn add(&mut self, seq: Seq, entry: &MoneyEntry, reversal_day: Option<NaiveDate>, donor_scope: Option<&DonorCode>) {
        let sign = if reversal_day.is_some() { -1 } else { 1 };
        let minor = sign * minor_of(entry);
        match entry {
            MoneyEntry::BudgetAllocated(event) => *self.allocated.entry(event.country.as_str().to_string()).or_default() += minor,
            MoneyEntry::BudgetReallocated(event) => {
                *self.allocated.entry(event.from_country.as_str().to_string()).or_default() -= minor;
                *self.allocated.entry(event.to_country.as_str().to_string()).or_default() += minor;
            }
            _ => {}
        }
        if donor_scope.is_some_and(|donor| donor != entry.donor()) {
            return;
        }
        let reversal = |what: &str| format!("Reversal of the {what} recorded at seq {seq}");
        match entry {
            MoneyEntry::FundingCommitted(event) => self.incoming.push(Incoming {
                transaction_type: "11",
                donor: event.donor.clone(),
                minor,
                date: reversal_day.unwrap_or(event.committed_on),
                description: if reversal_day.is_some() {
                    reversal("commitment")
                } else {
                    format!("Commitment {}", event.reference)
                },
            }),
            MoneyEntry::FundingReceived(event) => self.incoming.push(Incoming {
                transaction_type: "1",
                donor: event.donor.clone(),
                minor,
                date: reversal_day.unwrap_or(event.received_on),
                description: if reversal_day.is_some() { reversal("receipt") } else { "Funds received".to_string() },
            }),
            MoneyEntry::CashReinsertionPaid(event) => {
                let month = first_of_month(reversal_day.unwrap_or(event.paid_on));
                *self.expenditure.entry((event.country.as_str().to_string(), month, Kind::Cash)).or_default() += minor;
            }
            MoneyEntry::InKindGrantDelivered(event) => {
                let month = first_of_month(reversal_day.unwrap_or(event.delivered_on));
                *self.expenditure.entry((event.country.as_str().to_string(), month, Kind::InKind)).or_default() += minor;
            }
            MoneyEntry::BudgetAllocated(_) | MoneyEntry::BudgetReallocated(_) => {}
        }
    }
}

/// Everything the file is made of, folded from the events.
#[derive(Debug, Default)]
struct Folded {
    donors: BTreeMap<DonorCode, DonorInfo>,
    activities: BTreeMap<ProgrammeCode, Activity>,
}

impl Folded {
    fn apply(&mut self, seq: Seq, recorded_on: NaiveDate, body: EventBody, request: &IatiRequest) {
        let wanted = |programme: &ProgrammeCode| request.programme.as_ref().is_none_or(|asked| asked == programme);
        match body {
            EventBody::DonorRegistered(event) => {
                let info = DonorInfo { name: event.name, kind: event.kind, reference: event.iati_identifier };
                self.donors.insert(event.code, info);
            }
            EventBody::ProgrammeRegistered(event) if wanted(&event.code) => {
                let activity = Activity {
                    registration: event,
                    incoming: Vec::new(),
                    expenditure: BTreeMap::new(),
                    allocated: BTreeMap::new(),
                };
                self.activities.insert(activity.registration.code.clone(), activity);
            }
            EventBody::ProgrammeRegistered(_) => {}
            EventBody::Money(entry) => {
                if let Some(activity) = self.activities.get_mut(entry.programme()) {
                    activity.add(seq, &entry, None, request.donor.as_ref());
                }
            }
            EventBody::EntryReversed(reversal) => {
                if let Some(activity) = self.activities.get_mut(reversal.reversed.programme()) {
                    activity.add(reversal.reversed_seq, &reversal.reversed, Some(recorded_on), request.donor.as_ref());
                }
            }
            // A delivered row is a cash reinsertion payment of its own (a
            // money event, above); holds are not transactions.
            EventBody::PaymentList(_) | EventBody::ProgrammeApprovalsSet(_) => {}
        }
    }
}

/// Shares of 100 with two decimals, in proportion to `weights` (all
/// positive), summing to exactly 100 (largest remainders get the rest).
pub fn percentages(weights: &[i128]) -> Vec<i128> {
    const HUNDRED_PERCENT_HUNDREDTHS: i128 = 10_000;
    let total: i128 = weights.iter().sum();
    assert!(total > 0 && weights.iter().all(|weight| *weight > 0), "shares are of positive weights");
    let mut shares: Vec<(usize, i128, i128)> = weights
        .iter()
        .enumerate()
        .map(|(index, weight)| (index, weight * HUNDRED_PERCENT_HUNDREDTHS / total, weight * HUNDRED_PERCENT_HUNDREDTHS % total))
        .collect();
    let mut rest = HUNDRED_PERCENT_HUNDREDTHS - shares.iter().map(|(_, share, _)| share).sum::<i128>();
    shares.sort_by(|left, right| right.2.cmp(&left.2).then(left.0.cmp(&right.0)));
    for share in shares.iter_mut() {
        if rest == 0 {
            break;
        }
        share.1 += 1;
        rest -= 1;
    }
    shares.sort_by_key(|(index, _, _)| *index);
    let result: Vec<i128> = shares.into_iter().map(|(_, share, _)| share).collect();
    assert_eq!(result.iter().sum::<i128>(), HUNDRED_PERCENT_HUNDREDTHS, "shares sum to 100");
    result
}

/// The IATI activity file of `request`, as XML bytes.
pub async fn iati_file(store: &Store, organisation: &ReportingOrg, request: &IatiRequest) -> Result<Vec<u8>, ReportError> {
    let mut folded = Folded::default();
    fold_events(store, request.until, "", |record, body| {
        folded.apply(record.seq, super::recorded_day(record)?, body, request);
        Ok(())
    })
    .await?;
    if let Some(programme) = &request.programme {
        if !folded.activities.contains_key(programme) {
            return Err(ReportError::UnknownProgramme(programme.clone()));
        }
    }
    if folded.activities.is_empty() {
        return Err(ReportError::Incomplete(
            "an IATI file holds at least one activity, and no programme is registered yet".to_string(),
        ));
    }
    write_file(&folded, organisation, request).map_err(|error| ReportError::Write(error.to_string()))
}

type XmlWriter = Writer<Vec<u8>>;

fn text_element(writer: &mut XmlWriter, name: &str, attributes: &[(&str, &str)], text: &str) -> std::io::Result<()> {
    writer.create_element(name).with_attributes(attributes.iter().copied()).write_text_content(BytesText::new(text))?;
    Ok(())
}

fn narrative_element(writer: &mut XmlWriter, name: &str, attributes: &[(&str, &str)], text: &str) -> std::io::Result<()> {
    writer
        .create_element(name)
        .with_attributes(attributes.iter().copied())
        .write_inner_content(|inner| text_element(inner, "narrative", &[], text))?;
    Ok(())
}

fn empty_element(writer: &mut XmlWriter, name: &str, attributes: &[(&str, &str)]) -> std::io::Result<()> {
    writer.create_element(name).with_attributes(attributes.iter().copied()).write_empty()?;
    Ok(())
}

fn write_file(folded: &Folded, organisation: &ReportingOrg, request: &IatiRequest) -> std::io::Result<Vec<u8>> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let generated = format!("{}T23:59:59Z", request.day);
    writer
        .create_element("iati-activities")
        .with_attributes([("version", IATI_VERSION), ("generated-datetime", generated.as_str())])
        .write_inner_content(|writer| {
            for activity in folded.activities.values() {
                write_activity(writer, activity, &folded.donors, organisation, request)?;
            }
            Ok(())
        })?;
    Ok(writer.into_inner())
}

/// The organisation type of a donor kind, where the IATI code is clear.
fn organisation_type_of(kind: &str) -> Option<&'static str> {
    match kind {
        "national_donor" | "government" => Some("10"),
        "eu_instrument" | "multilateral" => Some("40"),
        _ => None,
    }
}

fn write_activity(
    writer: &mut XmlWriter,
    activity: &Activity,
    donors: &BTreeMap<DonorCode, DonorInfo>,
    organisation: &ReportingOrg,
    request: &IatiRequest,
) -> std::io::Result<()> {
    let registration = &activity.registration;
    let currency = registration.currency;
    let identifier = format!("{}-{}", organisation.reference, registration.code.as_str());
    writer
        .create_element("iati-activity")
        .with_attributes([("xml:lang", "en"), ("default-currency", currency.code())])
        .write_inner_content(|writer| {
            text_element(writer, "iati-identifier", &[], &identifier)?;
            narrative_element(
                writer,
                "reporting-org",
                &[("ref", &organisation.reference), ("type", &organisation.organisation_type)],
                &organisation.name,
            )?;
            narrative_element(writer, "title", &[], &registration.name)?;
            let description = format!(
                "Reintegration assistance to returning migrants: cash reinsertion and in-kind reintegration grants, implemented by {}",
                registration.implementer
            );
            narrative_element(writer, "description", &[("type", "1")], &description)?;
            write_participants(writer, activity, donors, request)?;
            write_status_and_dates(writer, registration, request.day)?;
            write_countries(writer, activity)?;
            writer.create_element("sector").with_attributes([("vocabulary", "1"), ("code", SECTOR_MIGRATION)]).write_inner_content(
                |writer| text_element(writer, "narrative", &[], "Facilitation of orderly, safe, regular and responsible migration and mobility"),
            )?;
            write_transactions(writer, activity, donors, currency, request.day)
        })?;
    Ok(())
}

fn write_participants(
    writer: &mut XmlWriter,
    activity: &Activity,
    donors: &BTreeMap<DonorCode, DonorInfo>,
    request: &IatiRequest,
) -> std::io::Result<()> {
    let mut funders: Vec<&DonorCode> = activity.incoming.iter().map(|incoming| &incoming.donor).collect();
    funders.sort();
    funders.dedup();
    for code in funders {
        if request.donor.as_ref().is_some_and(|donor| donor != code) {
            continue;
        }
        let info = donors.get(code).cloned().unwrap_or_default();
        let mut attributes = vec![("role", "1")];
        if let Some(reference) = &info.reference {
            attributes.push(("ref", reference.as_str()));
        }
        if let Some(organisation_type) = organisation_type_of(&info.kind) {
            attributes.push(("type", organisation_type));
        }
        narrative_element(writer, "participating-org", &attributes, &info.name)?;
    }
    narrative_element(writer, "participating-org", &[("role", "4")], &activity.registration.implementer)
}

fn write_status_and_dates(writer: &mut XmlWriter, registration: &ProgrammeRegistered, day: NaiveDate) -> std::io::Result<()> {
    let status = if day < registration.starts_on {
        "1"
    } else if day > registration.ends_on {
        "3"
    } else {
        "2"
    };
    empty_element(writer, "activity-status", &[("code", status)])?;
    let (starts_on, ends_on) = (registration.starts_on.to_string(), registration.ends_on.to_string());
    empty_element(writer, "activity-date", &[("type", "1"), ("iso-date", &starts_on)])?;
    if registration.starts_on <= day {
        empty_element(writer, "activity-date", &[("type", "2"), ("iso-date", &starts_on)])?;
    }
    empty_element(writer, "activity-date", &[("type", "3"), ("iso-date", &ends_on)])?;
    if registration.ends_on < day {
        empty_element(writer, "activity-date", &[("type", "4"), ("iso-date", &ends_on)])?;
    }
    Ok(())
}

/// Recipient countries with the share of the allocations each holds, or
/// equal shares of the programme's countries while nothing is allocated.
fn write_countries(writer: &mut XmlWriter, activity: &Activity) -> std::io::Result<()> {
    let allocated: Vec<(String, i128)> =
        activity.allocated.iter().filter(|(_, minor)| **minor > 0).map(|(country, minor)| (country.clone(), *minor)).collect();
    let weighted = if allocated.is_empty() {
        activity.registration.countries.iter().map(|country| (country.as_str().to_string(), 1)).collect()
    } else {
        allocated
    };
    if weighted.is_empty() {
        return Ok(());
    }
    let weights: Vec<i128> = weighted.iter().map(|(_, weight)| *weight).collect();
    for ((country, _), share) in weighted.iter().zip(percentages(&weights)) {
        let percentage = rust_decimal::Decimal::from_i128_with_scale(share, 2).to_string();
        empty_element(writer, "recipient-country", &[("code", country), ("percentage", &percentage)])?;
    }
    Ok(())
}

fn write_transaction(
    writer: &mut XmlWriter,
    transaction_type: &str,
    (date, minor, currency): (NaiveDate, i128, Currency),
    description: &str,
    provider: Option<&DonorInfo>,
) -> std::io::Result<()> {
    let (date, value) = (date.to_string(), format_amount(minor, currency));
    writer.create_element("transaction").write_inner_content(|writer| {
        empty_element(writer, "transaction-type", &[("code", transaction_type)])?;
        empty_element(writer, "transaction-date", &[("iso-date", &date)])?;
        text_element(writer, "value", &[("currency", currency.code()), ("value-date", &date)], &value)?;
        narrative_element(writer, "description", &[], description)?;
        if let Some(provider) = provider {
            let attributes: Vec<(&str, &str)> =
                provider.reference.as_deref().map(|reference| ("ref", reference)).into_iter().collect();
            narrative_element(writer, "provider-org", &attributes, &provider.name)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_transactions(
    writer: &mut XmlWriter,
    activity: &Activity,
    donors: &BTreeMap<DonorCode, DonorInfo>,
    currency: Currency,
    day: NaiveDate,
) -> std::io::Result<()> {
    for incoming in &activity.incoming {
        let provider = donors.get(&incoming.donor);
        let date = incoming.date.min(day);
        write_transaction(writer, incoming.transaction_type, (date, incoming.minor, currency), &incoming.description, provider)?;
    }
    for ((country, month, kind), minor) in &activity.expenditure {
        if *minor == 0 {
            continue;
        }
        let what = match kind {
            Kind::Cash => "Cash reinsertion assistance to returnees",
            Kind::InKind => "In-kind reintegration assistance",
        };
        let description = format!("{what} in {country}, {}", month.format("%Y-%m"));
        let date = last_of_month(*month).min(day);
        write_transaction(writer, "4", (date, *minor, currency), &description, None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_shares_sum_to_exactly_100_with_the_rest_to_the_largest_remainders() {
        assert_eq!(percentages(&[1, 1, 1]), vec![3334, 3333, 3333]);
        assert_eq!(percentages(&[500, 300]), vec![6250, 3750]);
        assert_eq!(percentages(&[7]), vec![10_000]);
        assert_eq!(percentages(&[1, 2, 3, 4, 5, 6]).iter().sum::<i128>(), 10_000);
    }

    #[test]
    fn an_organisation_identifier_has_no_space_nor_any_of_slash_ampersand_bar_question_mark() {
        assert!(parse_organisation_ref("XM-DAC-47066").is_ok());
        for bad in ["", "XM DAC", "XM/DAC", "A&B", "A|B", "A?B"] {
            assert!(parse_organisation_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_month_ends_on_its_last_day() {
        let day = |text: &str| NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        assert_eq!(last_of_month(day("2024-02-01")), day("2024-02-29"));
        assert_eq!(last_of_month(day("2025-12-01")), day("2025-12-31"));
        assert_eq!(first_of_month(day("2025-03-17")), day("2025-03-01"));
    }
}
