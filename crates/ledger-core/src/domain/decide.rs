//! The decision logic: given the state and a command, the events to record
//! or the reason for refusing. Pure: no I/O, no clock, no randomness; the
//! day the command is recorded (UTC) is passed in as `today`.

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};

use super::error::DomainError;
use super::events::{
    BudgetAllocated, BudgetReallocated, CashReinsertionPaid, DonorRegistered, EntryReversed, EventBody, FundingCommitted,
    FundingReceived, InKindGrantDelivered, MoneyEntry, ProgrammeRegistered, RATE_DECIMALS,
};
use super::payment_lists::{self, Confirmation, PaymentListRow};
use super::state::{BudgetLineKey, ProgrammeInfo, State, money_text};
use super::types::{
    BeneficiaryRef, CountryCode, Currency, Dimension, DonorCode, Level, Money, PaymentMethod, ProgrammeCode, Seq,
    TOTAL_MINOR_UNITS_MAX, parse_text,
};

/// Most countries a programme may list.
pub const PROGRAMME_COUNTRIES_MAX: usize = 64;

/// Who received an in-kind grant: one returnee (by pseudonym) or a community.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    Beneficiary(BeneficiaryRef),
    Community(String),
}

/// A request to change the ledger. Codes are already parsed; amounts are
/// checked here against the programme's currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    RegisterDonor {
        code: DonorCode,
        name: String,
        kind: String,
        /// Its IATI organisation identifier, if it has one.
        iati_identifier: Option<String>,
    },
    RegisterProgramme {
        code: ProgrammeCode,
        name: String,
        currency: Currency,
        countries: Vec<CountryCode>,
        implementer: String,
        starts_on: NaiveDate,
        ends_on: NaiveDate,
        /// Approvals each of its payment lists needs; `None`: the default,
        /// `APPROVALS_REQUIRED_DEFAULT` (and nothing stored).
        approvals_required: Option<u32>,
    },
    /// The admin sets how many approvals a programme's lists need from now on.
    SetProgrammeApprovals {
        programme: ProgrammeCode,
        approvals_required: u32,
    },
    /// Imports a payment list for one budget line and holds its total.
    /// `list` is chosen by the caller (a new UUID); `by` is the actor (the
    /// token's name), for four-eyes.
    ImportPaymentList {
        list: uuid::Uuid,
        by: String,
        programme: ProgrammeCode,
        donor: DonorCode,
        country: CountryCode,
        planned_on: NaiveDate,
        rows: Vec<PaymentListRow>,
    },
    /// One approval of a list, naming the content hash it approves.
    ApprovePaymentList {
        list: uuid::Uuid,
        by: String,
        content_hash: String,
    },
    /// Releases an approved list: one payment reference per row, in row
    /// order (drawn at random by the caller).
    ReleasePaymentList {
        list: uuid::Uuid,
        by: String,
        references: Vec<String>,
    },
    /// One part of the provider's confirmation file.
    ConfirmPayments {
        list: uuid::Uuid,
        by: String,
        confirmations: Vec<Confirmation>,
    },
    CancelPaymentList {
        list: uuid::Uuid,
        by: String,
        reason: String,
    },
    CommitFunding {
        programme: ProgrammeCode,
        donor: DonorCode,
        amount: Decimal,
        /// The currency the amount is stated in, if the caller stated it:
        /// it must be the programme's.
        currency: Option<Currency>,
        reference: String,
        committed_on: NaiveDate,
    },
    ReceiveFunding {
        programme: ProgrammeCode,
        donor: DonorCode,
        amount: Decimal,
        /// The currency the amount is stated in, if the caller stated it:
        /// it must be the programme's.
        currency: Option<Currency>,
        received_on: NaiveDate,
    },
    AllocateBudget {
        programme: ProgrammeCode,
        donor: DonorCode,
        country: CountryCode,
        amount: Decimal,
        /// The currency the amount is stated in, if the caller stated it:
        /// it must be the programme's.
        currency: Option<Currency>,
    },
    ReallocateBudget {
        programme: ProgrammeCode,
        donor: DonorCode,
        from_country: CountryCode,
        to_country: CountryCode,
        amount: Decimal,
        /// The currency the amount is stated in, if the caller stated it:
        /// it must be the programme's.
        currency: Option<Currency>,
        reason: String,
    },
    PayCash {
        programme: ProgrammeCode,
        donor: DonorCode,
        country: CountryCode,
        beneficiary: BeneficiaryRef,
        amount: Decimal,
        /// The currency the amount is stated in, if the caller stated it:
        /// it must be the programme's.
        currency: Option<Currency>,
        paid_amount: Decimal,
        paid_currency: Currency,
        method: PaymentMethod,
        paid_on: NaiveDate,
    },
    DeliverInKind {
        programme: ProgrammeCode,
        donor: DonorCode,
        country: CountryCode,
        recipient: Recipient,
        level: Level,
        dimension: Dimension,
        category: String,
        description: String,
        amount: Decimal,
        /// The currency the amount is stated in, if the caller stated it:
        /// it must be the programme's.
        currency: Option<Currency>,
        delivered_on: NaiveDate,
    },
    Reverse {
        seq: Seq,
        reason: String,
    },
}

/// What a reversal command targets, looked up by the caller before deciding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReversalTarget {
    Missing,
    Found(Box<EventBody>),
}

impl Command {
    /// The seq a reversal targets, for the caller to look up.
    pub fn reversal_seq(&self) -> Option<Seq> {
        match self {
            Command::Reverse { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// Who a payment list command says it comes from (four-eyes rests on
    /// it): the appender refuses it unless it is the unit's actor.
    pub fn claimed_actor(&self) -> Option<&str> {
        match self {
            Command::ImportPaymentList { by, .. }
            | Command::ApprovePaymentList { by, .. }
            | Command::ReleasePaymentList { by, .. }
            | Command::ConfirmPayments { by, .. }
            | Command::CancelPaymentList { by, .. } => Some(by),
            _ => None,
        }
    }
}

/// What a command decided: the events to record, in order, or nothing to
/// do (the command asks for what the ledger already holds, such as a
/// confirmation file sent again), which is not a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Record(Vec<EventBody>),
    NothingToDo,
}

/// Decides one command that records exactly one event (every command but
/// the payment list ones, whose decisions `decide_events` gives).
pub fn decide(
    state: &State,
    command: &Command,
    target: Option<&ReversalTarget>,
    today: NaiveDate,
) -> Result<EventBody, DomainError> {
    match decide_events(state, command, target, today)? {
        Decision::Record(mut bodies) if bodies.len() == 1 => Ok(bodies.remove(0)),
        other => panic!("decide is for commands of one event; {other:?} needs decide_events"),
    }
}

/// Decides one command recorded on `today` (UTC). `target` must be given
/// for `Command::Reverse`.
pub fn decide_events(
    state: &State,
    command: &Command,
    target: Option<&ReversalTarget>,
    today: NaiveDate,
) -> Result<Decision, DomainError> {
    let decision = match decide_payment_lists(state, command, today) {
        Some(decision) => decision?,
        None => Decision::Record(vec![decide_rules(state, command, target)?]),
    };
    let Decision::Record(bodies) = &decision else { return Ok(decision) };
    for body in bodies {
        check_dates(state, body, today)?;
    }
    check_totals(state, bodies)?;
    Ok(decision)
}

/// The decision of a payment list command (`None` for other commands).
fn decide_payment_lists(state: &State, command: &Command, today: NaiveDate) -> Option<Result<Decision, DomainError>> {
    let decision = match command {
        Command::SetProgrammeApprovals { programme, approvals_required } => {
            payment_lists::decide::set_approvals(state, programme, *approvals_required)
        }
        Command::ImportPaymentList { list, by, programme, donor, country, planned_on, rows } => {
            let request = payment_lists::decide::ImportRequest {
                list: *list,
                by,
                programme,
                donor,
                country: *country,
                planned_on: *planned_on,
                rows,
            };
            payment_lists::decide::import(state, &request)
        }
        Command::ApprovePaymentList { list, by, content_hash } => payment_lists::decide::approve(state, *list, by, content_hash),
        Command::ReleasePaymentList { list, by, references } => payment_lists::decide::release(state, *list, by, references),
        Command::ConfirmPayments { list, by, confirmations } => {
            payment_lists::decide::confirm(state, *list, by, confirmations, today)
        }
        Command::CancelPaymentList { list, by, reason } => payment_lists::decide::cancel(state, *list, by, reason),
        _ => return None,
    };
    Some(decision)
}

/// Refuses a money event dated after `today`, and a payment or grant dated
/// outside its programme's `starts_on..=ends_on` (commitments and receipts
/// may come before a programme starts, or after it ends).
fn check_dates(state: &State, body: &EventBody, today: NaiveDate) -> Result<(), DomainError> {
    let EventBody::Money(entry) = body else { return Ok(()) };
    let (field, date, within_programme) = match entry {
        MoneyEntry::FundingCommitted(event) => ("committed_on", event.committed_on, false),
        MoneyEntry::FundingReceived(event) => ("received_on", event.received_on, false),
        MoneyEntry::CashReinsertionPaid(event) => ("paid_on", event.paid_on, true),
        MoneyEntry::InKindGrantDelivered(event) => ("delivered_on", event.delivered_on, true),
        MoneyEntry::BudgetAllocated(_) | MoneyEntry::BudgetReallocated(_) => return Ok(()),
    };
    if date > today {
        return Err(DomainError::DatedAfterToday { field, date, today });
    }
    let info = programme_of(state, entry.programme())?;
    if within_programme && !(info.starts_on..=info.ends_on).contains(&date) {
        return Err(DomainError::OutsideProgrammeDates {
            field,
            date,
            programme: entry.programme().to_string(),
            starts_on: info.starts_on,
            ends_on: info.ends_on,
        });
    }
    Ok(())
}

/// Refuses an event that would take a total the ledger keeps past
/// `TOTAL_MINOR_UNITS_MAX`, naming the total and the limit in its currency.
fn check_totals(state: &State, bodies: &[EventBody]) -> Result<(), DomainError> {
    match state.totals_past_limit(bodies) {
        None => Ok(()),
        Some(change) => Err(DomainError::TotalPastLimit {
            total: change.total.to_string(),
            requested: money_text(change.minor, change.currency),
            limit: money_text(TOTAL_MINOR_UNITS_MAX, change.currency),
            currency: change.currency.code(),
        }),
    }
}

fn decide_rules(state: &State, command: &Command, target: Option<&ReversalTarget>) -> Result<EventBody, DomainError> {
    match command {
        Command::RegisterDonor { code, name, kind, iati_identifier } => {
            register_donor(state, code, name, kind, iati_identifier.as_deref())
        }
        Command::RegisterProgramme { code, name, currency, countries, implementer, starts_on, ends_on, approvals_required } => {
            if let Some(approvals_required) = approvals_required {
                payment_lists::decide::check_approvals_required(*approvals_required)?;
            }
            let registered = ProgrammeRegistered {
                code: code.clone(),
                name: parse_text("name", name)?,
                currency: *currency,
                countries: countries.clone(),
                implementer: parse_text("implementer", implementer)?,
                starts_on: *starts_on,
                ends_on: *ends_on,
                approvals_required: *approvals_required,
            };
            register_programme(state, registered)
        }
        Command::CommitFunding { programme, donor, amount, currency, reference, committed_on } => {
            let (_, money) = funding_of(state, programme, donor, *amount, *currency)?;
            Ok(EventBody::Money(MoneyEntry::FundingCommitted(FundingCommitted {
                programme: programme.clone(),
                donor: donor.clone(),
                amount: money.amount,
                currency: money.currency,
                reference: parse_text("reference", reference)?,
                committed_on: *committed_on,
            })))
        }
        Command::ReceiveFunding { programme, donor, amount, currency, received_on } => {
            let (_, money) = funding_of(state, programme, donor, *amount, *currency)?;
            Ok(EventBody::Money(MoneyEntry::FundingReceived(FundingReceived {
                programme: programme.clone(),
                donor: donor.clone(),
                amount: money.amount,
                currency: money.currency,
                received_on: *received_on,
            })))
        }
        Command::AllocateBudget { programme, donor, country, amount, currency } => {
            allocate(state, programme, donor, *country, (*amount, *currency))
        }
        Command::ReallocateBudget { programme, donor, from_country, to_country, amount, currency, reason } => {
            reallocate(state, programme, donor, (*from_country, *to_country), (*amount, *currency), reason)
        }
        Command::PayCash { .. } => pay_cash(state, command),
        Command::DeliverInKind { .. } => deliver_in_kind(state, command),
        Command::Reverse { seq, reason } => {
            let target = target.expect("the caller looks up the target of a reversal");
            reverse(state, *seq, reason, target)
        }
        Command::SetProgrammeApprovals { .. }
        | Command::ImportPaymentList { .. }
        | Command::ApprovePaymentList { .. }
        | Command::ReleasePaymentList { .. }
        | Command::ConfirmPayments { .. }
        | Command::CancelPaymentList { .. } => unreachable!("payment list commands are decided by decide_payment_lists"),
    }
}

/// Characters an IATI identifier may not hold, besides whitespace and control characters.
pub const IATI_IDENTIFIER_FORBIDDEN: [char; 4] = ['/', '&', '|', '?'];
/// Longest IATI organisation identifier, in characters.
pub const IATI_IDENTIFIER_CHARS_MAX: usize = 100;

/// An IATI organisation identifier (such as `XM-DAC-47066`): 1 to 100
/// characters, no whitespace or control character, none of `/ & | ?`.
pub fn parse_iati_identifier(text: &str) -> Result<String, DomainError> {
    let well_formed = !text.is_empty()
        && text.chars().count() <= IATI_IDENTIFIER_CHARS_MAX
        && text.chars().all(|character| !character.is_whitespace() && !character.is_control())
        && !text.contains(IATI_IDENTIFIER_FORBIDDEN);
    if !well_formed {
        return Err(DomainError::Invalid {
            field: "iati_identifier",
            message: format!(
                "an IATI organisation identifier is 1 to {IATI_IDENTIFIER_CHARS_MAX} characters without spaces or / & | ?, such as XM-DAC-47066"
            ),
        });
    }
    Ok(text.to_string())
}

fn register_donor(
    state: &State,
    code: &DonorCode,
    name: &str,
    kind: &str,
    iati_identifier: Option<&str>,
) -> Result<EventBody, DomainError> {
    if state.donors.contains(code) {
        return Err(DomainError::DonorExists(code.to_string()));
    }
    Ok(EventBody::DonorRegistered(DonorRegistered {
        code: code.clone(),
        name: parse_text("name", name)?,
        kind: parse_text("kind", kind)?,
        iati_identifier: iati_identifier.map(parse_iati_identifier).transpose()?,
    }))
}

fn register_programme(state: &State, registered: ProgrammeRegistered) -> Result<EventBody, DomainError> {
    if state.programmes.contains_key(&registered.code) {
        return Err(DomainError::ProgrammeExists(registered.code.to_string()));
    }
    if registered.countries.is_empty() || registered.countries.len() > PROGRAMME_COUNTRIES_MAX {
        return Err(DomainError::invalid("countries", format!("list 1 to {PROGRAMME_COUNTRIES_MAX} countries")));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(duplicate) = registered.countries.iter().find(|country| !seen.insert(**country)) {
        return Err(DomainError::inconsistent("countries", format!("{duplicate} is listed twice")));
    }
    if registered.ends_on < registered.starts_on {
        return Err(DomainError::inconsistent("ends_on", "must not be before starts_on".to_string()));
    }
    Ok(EventBody::ProgrammeRegistered(registered))
}

pub(crate) fn programme_of<'state>(
    state: &'state State,
    programme: &ProgrammeCode,
) -> Result<&'state ProgrammeInfo, DomainError> {
    state.programmes.get(programme).ok_or_else(|| DomainError::UnknownProgramme(programme.to_string()))
}

/// Checks that programme and donor exist, that the amount is stated in the
/// programme's currency (when a currency is stated) and is valid in it.
pub(crate) fn funding_of<'state>(
    state: &'state State,
    programme: &ProgrammeCode,
    donor: &DonorCode,
    amount: Decimal,
    stated_currency: Option<Currency>,
) -> Result<(&'state ProgrammeInfo, Money), DomainError> {
    let info = programme_of(state, programme)?;
    if !state.donors.contains(donor) {
        return Err(DomainError::UnknownDonor(donor.to_string()));
    }
    if let Some(stated) = stated_currency.filter(|stated| *stated != info.currency) {
        return Err(DomainError::CurrencyMismatch {
            programme: programme.to_string(),
            expected: info.currency.code(),
            given: stated.code(),
        });
    }
    let money = Money::parse(amount, info.currency)?;
    Ok((info, money))
}

pub(crate) fn check_country(info: &ProgrammeInfo, programme: &ProgrammeCode, country: CountryCode) -> Result<(), DomainError> {
    if info.countries.contains(&country) {
        Ok(())
    } else {
        Err(DomainError::CountryNotInProgramme { programme: programme.to_string(), country: country.to_string() })
    }
}

pub(crate) fn line_key(programme: &ProgrammeCode, donor: &DonorCode, country: CountryCode) -> BudgetLineKey {
    BudgetLineKey { programme: programme.clone(), donor: donor.clone(), country }
}

/// Refuses spending `money` from a line that has less available.
fn check_available(state: &State, key: &BudgetLineKey, money: Money) -> Result<(), DomainError> {
    let available = state.line(key).available();
    if money.minor_units() > available {
        return Err(DomainError::OverSpending {
            line: key.to_string(),
            available: money_text(available, money.currency),
            requested: money.amount,
            currency: money.currency.code(),
        });
    }
    Ok(())
}

fn allocate(
    state: &State,
    programme: &ProgrammeCode,
    donor: &DonorCode,
    country: CountryCode,
    (amount, currency): (Decimal, Option<Currency>),
) -> Result<EventBody, DomainError> {
    let (info, money) = funding_of(state, programme, donor, amount, currency)?;
    check_country(info, programme, country)?;
    let unallocated = state.funding(programme, donor).unallocated();
    if money.minor_units() > unallocated {
        return Err(DomainError::OverAllocation {
            programme: programme.to_string(),
            donor: donor.to_string(),
            available: money_text(unallocated, money.currency),
            requested: money.amount,
            currency: money.currency.code(),
        });
    }
    Ok(EventBody::Money(MoneyEntry::BudgetAllocated(BudgetAllocated {
        programme: programme.clone(),
        donor: donor.clone(),
        country,
        amount: money.amount,
        currency: money.currency,
    })))
}

fn reallocate(
    state: &State,
    programme: &ProgrammeCode,
    donor: &DonorCode,
    (from_country, to_country): (CountryCode, CountryCode),
    (amount, currency): (Decimal, Option<Currency>),
    reason: &str,
) -> Result<EventBody, DomainError> {
    let (info, money) = funding_of(state, programme, donor, amount, currency)?;
    check_country(info, programme, from_country)?;
    check_country(info, programme, to_country)?;
    if from_country == to_country {
        return Err(DomainError::inconsistent("to_country", "must differ from from_country".to_string()));
    }
    check_available(state, &line_key(programme, donor, from_country), money)?;
    Ok(EventBody::Money(MoneyEntry::BudgetReallocated(BudgetReallocated {
        programme: programme.clone(),
        donor: donor.clone(),
        from_country,
        to_country,
        amount: money.amount,
        currency: money.currency,
        reason: parse_text("reason", reason)?,
    })))
}

fn pay_cash(state: &State, command: &Command) -> Result<EventBody, DomainError> {
    let Command::PayCash {
        programme,
        donor,
        country,
        beneficiary,
        amount,
        currency,
        paid_amount,
        paid_currency,
        method,
        paid_on,
    } = command
    else {
        unreachable!("pay_cash is called with a cash payment");
    };
    let (info, money) = funding_of(state, programme, donor, *amount, *currency)?;
    check_country(info, programme, *country)?;
    let paid = Money::parse(*paid_amount, *paid_currency)?;
    if paid.currency == money.currency && paid.amount != money.amount {
        return Err(DomainError::inconsistent(
            "paid_amount",
            format!("is in the programme's currency {} and must equal amount {}", money.currency, money.amount),
        ));
    }
    check_available(state, &line_key(programme, donor, *country), money)?;
    let rate = (paid.amount / money.amount).round_dp_with_strategy(RATE_DECIMALS, RoundingStrategy::MidpointNearestEven);
    Ok(EventBody::Money(MoneyEntry::CashReinsertionPaid(CashReinsertionPaid {
        programme: programme.clone(),
        donor: donor.clone(),
        country: *country,
        beneficiary_ref: beneficiary.clone(),
        amount: money.amount,
        currency: money.currency,
        paid_amount: paid.amount,
        paid_currency: paid.currency,
        rate: rate.normalize(),
        method: *method,
        paid_on: *paid_on,
        payment_list: None,
        row: None,
    })))
}

fn deliver_in_kind(state: &State, command: &Command) -> Result<EventBody, DomainError> {
    let Command::DeliverInKind {
        programme,
        donor,
        country,
        recipient,
        level,
        dimension,
        category,
        description,
        amount,
        currency,
        delivered_on,
    } = command
    else {
        unreachable!("deliver_in_kind is called with an in-kind grant");
    };
    let (info, money) = funding_of(state, programme, donor, *amount, *currency)?;
    check_country(info, programme, *country)?;
    let (beneficiary_ref, community) = match (recipient, level) {
        (Recipient::Beneficiary(reference), Level::Individual) => (Some(reference.clone()), None),
        (Recipient::Community(name), Level::Community | Level::Structural) => (None, Some(parse_text("community", name)?)),
        (Recipient::Beneficiary(_), _) => {
            return Err(DomainError::inconsistent("level", "a grant to one returnee (case_id) has level individual".to_string()));
        }
        (Recipient::Community(_), Level::Individual) => {
            return Err(DomainError::inconsistent(
                "level",
                "a grant to a community has level community or structural".to_string(),
            ));
        }
    };
    check_available(state, &line_key(programme, donor, *country), money)?;
    Ok(EventBody::Money(MoneyEntry::InKindGrantDelivered(InKindGrantDelivered {
        programme: programme.clone(),
        donor: donor.clone(),
        country: *country,
        beneficiary_ref,
        community,
        level: *level,
        dimension: *dimension,
        category: parse_text("category", category)?,
        description: parse_text("description", description)?,
        amount: money.amount,
        currency: money.currency,
        delivered_on: *delivered_on,
    })))
}

fn reverse(state: &State, seq: Seq, reason: &str, target: &ReversalTarget) -> Result<EventBody, DomainError> {
    let reason = parse_text("reason", reason)?;
    let entry = match target {
        ReversalTarget::Missing => return Err(DomainError::UnknownSeq(seq)),
        ReversalTarget::Found(body) => match body.as_ref() {
            EventBody::Money(entry) => entry,
            other => {
                return Err(DomainError::NotReversible { seq, event_type: other.event_type().to_string() });
            }
        },
    };
    if state.reversed.contains(&seq) {
        return Err(DomainError::AlreadyReversed { seq });
    }
    check_reversal_keeps_balances(state, seq, entry)?;
    Ok(EventBody::EntryReversed(EntryReversed { reversed_seq: seq, reason, reversed: entry.clone() }))
}

/// Cancelling an entry must not leave any figure below zero: unallocated
/// commitments, or the available amount of the budget line it fed.
fn check_reversal_keeps_balances(state: &State, seq: Seq, entry: &MoneyEntry) -> Result<(), DomainError> {
    let (amount, currency) = entry.amount();
    let requested = Money::parse(amount, currency)?;
    let refuse = |what: String, available: i64| DomainError::ReversalWouldGoNegative {
        seq,
        what,
        available: money_text(available, currency),
        requested: requested.amount,
        currency: currency.code(),
    };
    let (programme, donor) = (entry.programme(), entry.donor());
    let line_available = |country: CountryCode| {
        let key = line_key(programme, donor, country);
        (state.line(&key).available(), format!("budget line {key}"))
    };
    let (available, what) = match entry {
        MoneyEntry::FundingCommitted(_) => {
            let unallocated = state.funding(programme, donor).unallocated();
            (unallocated, format!("the unallocated commitments of {donor} to {programme}"))
        }
        MoneyEntry::BudgetAllocated(event) => line_available(event.country),
        MoneyEntry::BudgetReallocated(event) => line_available(event.to_country),
        MoneyEntry::FundingReceived(_) | MoneyEntry::CashReinsertionPaid(_) | MoneyEntry::InKindGrantDelivered(_) => {
            return Ok(());
        }
    };
    if requested.minor_units() > available {
        return Err(refuse(what, available));
    }
    Ok(())
}
