//! A sans-IO IMAP server session (RFC 3501, with the extensions listed in `docs/imap.md`).
#![forbid(unsafe_code)]

pub mod message;
