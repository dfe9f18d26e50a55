//! Payment references: what a released row is known by to the payment
//! provider. 128 random bits from the operating system, written in
//! Crockford's base 32 (digits and capitals without I, L, O, U, so that a
//! reference read aloud or copied by hand is not mistaken): 26 characters.
//! A reference holds no personal data and says nothing about the row, the
//! list or the returnee; it cannot be guessed from another one.

use std::fmt;

/// Crockford's base-32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters of a reference: 128 bits, 5 per character.
pub const REFERENCE_CHARS: usize = 26;
/// The form of a reference, for the OpenAPI description. The first
/// character carries the top 3 bits, so it is 0 to 7.
pub const REFERENCE_PATTERN: &str = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$";

/// A payment reference, in its canonical (upper-case) form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentReference(String);

impl PaymentReference {
    /// A new reference from the operating system's randomness.
    pub fn random() -> Result<PaymentReference, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes)?;
        Ok(PaymentReference::from_bits(u128::from_be_bytes(bytes)))
    }

    fn from_bits(bits: u128) -> PaymentReference {
        let text =
            (0..REFERENCE_CHARS).rev().map(|position| char::from(ALPHABET[((bits >> (5 * position)) & 0x1F) as usize])).collect();
        PaymentReference(text)
    }

    /// Reads a reference as a provider writes it back: upper or lower case.
    pub fn parse(text: &str) -> Option<PaymentReference> {
        let upper = text.to_ascii_uppercase();
        let bytes = upper.as_bytes();
        let shaped = bytes.len() == REFERENCE_CHARS
            && (b'0'..=b'7').contains(&bytes[0])
            && bytes.iter().all(|byte| ALPHABET.contains(byte));
        shaped.then_some(PaymentReference(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaymentReference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for PaymentReference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "PaymentReference({})", self.0)
    }
}

/// `count` distinct new references.
pub fn new_references(count: usize) -> Result<Vec<PaymentReference>, getrandom::Error> {
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut references = Vec::with_capacity(count);
    while references.len() < count {
        let reference = PaymentReference::random()?;
        // Two equal draws of 128 bits do not happen; if they did, draw again.
        if seen.insert(reference.clone()) {
            references.push(reference);
        }
    }
    Ok(references)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_writes_all_128_bits_in_26_characters_of_the_alphabet() {
        assert_eq!(PaymentReference::from_bits(0).as_str(), "0".repeat(26));
        assert_eq!(PaymentReference::from_bits(u128::MAX).as_str(), format!("7{}", "Z".repeat(25)));
        assert_eq!(PaymentReference::from_bits(32).as_str(), format!("{}10", "0".repeat(24)));
        let pattern_alphabet: Vec<u8> = ALPHABET.iter().copied().filter(|byte| !b"ILOU".contains(byte)).collect();
        assert_eq!(pattern_alphabet.len(), 32, "no I, L, O or U");
    }

    #[test]
    fn new_references_are_distinct_parse_back_and_are_read_in_either_case() {
        let references = new_references(1_000).unwrap();
        let distinct: std::collections::HashSet<_> = references.iter().collect();
        assert_eq!(distinct.len(), 1_000);
        for reference in &references {
            assert_eq!(PaymentReference::parse(reference.as_str()).as_ref(), Some(reference));
            assert_eq!(PaymentReference::parse(&reference.as_str().to_lowercase()).as_ref(), Some(reference));
        }
        for text in [
            "",
            "8ZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "0000000000000000000000000I",
            "000000000000000000000000000",
            "00000000000000000000000-00",
        ] {
            assert_eq!(PaymentReference::parse(text), None, "{text}");
        }
    }
}
