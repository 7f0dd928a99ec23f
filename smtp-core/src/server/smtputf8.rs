//! `SMTPUTF8` (RFC 6531): UTF-8 addresses only in a transaction whose MAIL carried the
//! `SMTPUTF8` parameter (section 3.4; it takes no value); otherwise `553 5.6.7` (section 3.5).

use super::ParamError;

/// Reads the `SMTPUTF8` parameter.
pub(super) fn mail_param(value: Option<&str>) -> Result<(), ParamError> {
    match value {
        None => Ok(()),
        Some(_) => Err(ParamError::Syntax("SMTPUTF8 takes no value")),
    }
}

/// Whether an address may be used: ASCII always, UTF-8 only with `SMTPUTF8`.
pub(super) fn allows(smtputf8: bool, ascii: bool) -> bool {
    smtputf8 || ascii
}
