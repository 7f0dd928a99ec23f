//! buzon's user accounts, on the host side: no protocol here.
//!
//! - [`Users`]: the accounts of a users file (address, argon2id hash, enabled, aliases).
//! - [`UserFile`]: that file on disk, changed atomically under a lock while the server runs.
//! - [`LiveUsers`]: what a server holds: the accounts, re-read when the file changes.
//! - [`hash_password`], [`verify_password`], [`verify_unknown`]: the password checks.
//! - [`Throttle`]: a growing delay for the sources of failed logins.
#![forbid(unsafe_code)]

mod password;
mod store;
mod throttle;
mod users;

pub use password::{hash_password, verify_password, verify_unknown};
pub use store::{FileError, LiveUsers, UserFile};
pub use throttle::Throttle;
pub use users::{Account, Users, UsersError};
