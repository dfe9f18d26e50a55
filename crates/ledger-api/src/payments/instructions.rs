//! The instruction file for the payment provider: one line per released
//! row, `reference, amount, currency, method`, the amount in the local
//! currency at its decimals. It holds no personal data: the implementer
//! joins it with its own contact data outside the ledger, by reference.

use ledger_core::domain::Money;
use ledger_core::domain::types::PaymentMethod;

use super::cells::method_name;

/// The header of the instruction file.
pub const INSTRUCTION_COLUMNS: [&str; 4] = ["reference", "amount", "currency", "method"];

/// One instruction: what to pay under a reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub reference: String,
    pub paid: Money,
    pub method: PaymentMethod,
}

/// The instruction file, CSV with a header row and CRLF line ends.
pub fn write(instructions: &[Instruction]) -> String {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let mut write = |record: &[&str]| writer.write_record(record).expect("writing CSV into memory does not fail");
    write(&INSTRUCTION_COLUMNS);
    for instruction in instructions {
        let amount = instruction.paid.amount.to_string();
        write(&[&instruction.reference, &amount, instruction.paid.currency.code(), method_name(instruction.method)]);
    }
    let bytes = writer.into_inner().expect("an in-memory writer flushes");
    String::from_utf8(bytes).expect("the file is built from UTF-8 text")
}

#[cfg(test)]
mod tests {
    use ledger_core::domain::Currency;

    use super::*;

    #[test]
    fn the_instruction_file_has_one_line_per_row_at_the_local_currencys_decimals() {
        let tnd = Currency::parse("TND").unwrap();
        let xof = Currency::parse("XOF").unwrap();
        let file = write(&[
            Instruction {
                reference: "0ABC".into(),
                paid: Money::parse("1200.5".parse().unwrap(), tnd).unwrap(),
                method: PaymentMethod::MobileMoney,
            },
            Instruction {
                reference: "0DEF".into(),
                paid: Money::parse("15000".parse().unwrap(), xof).unwrap(),
                method: PaymentMethod::CashInHand,
            },
        ]);
        assert_eq!(file, "reference,amount,currency,method\r\n0ABC,1200.500,TND,mobile_money\r\n0DEF,15000,XOF,cash_in_hand\r\n");
    }
}
