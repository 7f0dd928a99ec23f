//! Message size declaration (RFC 1870).
//!
//! The limit is advertised as `SIZE <octets>`; a `SIZE=` parameter of MAIL above it is refused
//! at once with 552 5.3.4 (section 6.1), and the real size is enforced while data arrives, for
//! DATA and BDAT alike: the rest of an oversized message is read and dropped so the session stays
//! in step, then refused with 552 5.3.4.

/// Parses the value of `SIZE=`: 1 to 20 digits (section 3).
///
/// ```
/// assert_eq!(smtp_core::size::parse("1024"), Some(1024));
/// assert_eq!(smtp_core::size::parse("-1"), None);
/// ```
pub fn parse(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Twenty nines overflow u64; such a size is over any limit anyway.
    Some(value.parse::<u64>().unwrap_or(u64::MAX))
}
