//! `SIZE` (RFC 1870) at MAIL: the declared size must be a number, and over the limit the
//! message is refused at once (section 6.1). The real size is enforced as data arrives, for
//! DATA and BDAT alike, in [`message`](super::message) and [`chunking`](super::chunking).

use super::ParamError;

/// Checks `SIZE=value` against `limit`.
pub(super) fn mail_param(value: Option<&str>, limit: u64) -> Result<(), ParamError> {
    // Section 3: `SIZE=` takes a value.
    match value.and_then(crate::size::parse) {
        Some(declared) if declared > limit => Err(ParamError::TooBig),
        Some(_) => Ok(()),
        None => Err(ParamError::Syntax("bad SIZE value")),
    }
}
