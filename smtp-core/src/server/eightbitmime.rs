//! `8BITMIME` (RFC 6152): `BODY=7BIT` or `BODY=8BITMIME` at MAIL, recorded in the envelope;
//! the octets pass unchanged. `BODY=BINARYMIME` needs BINARYMIME (RFC 3030), not offered.

use super::ParamError;
use crate::event::BodyType;

/// Reads `BODY=value`.
pub(super) fn mail_param(value: Option<&str>) -> Result<BodyType, ParamError> {
    match value {
        Some(v) if v.eq_ignore_ascii_case("7BIT") => Ok(BodyType::SevenBit),
        Some(v) if v.eq_ignore_ascii_case("8BITMIME") => Ok(BodyType::EightBitMime),
        Some(v) if v.eq_ignore_ascii_case("BINARYMIME") => {
            Err(ParamError::NotImplemented("BODY=BINARYMIME"))
        }
        _ => Err(ParamError::Syntax("bad BODY value")),
    }
}
