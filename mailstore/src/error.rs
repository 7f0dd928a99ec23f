//! The crate's one error type.

use std::io;
use std::path::PathBuf;

use crate::fault::FsOp;

/// Everything that can go wrong in [`MailStore`](crate::MailStore) and
/// [`Delivery`](crate::Delivery).
///
/// The SMTP server maps [`is_full`](StoreError::is_full) errors to
/// `452 4.3.1` and every other error to `451 4.3.0` (RFC 3463 3.4).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The mail root could not be created, or is not a writable directory.
    #[error("mail root {path} is not usable (it must be a writable directory): {source}")]
    RootUnusable {
        /// The root given to [`MailStore::open`](crate::MailStore::open).
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// Another process holds this store's intake spool (another `buzon serve` on the same
    /// storage folder?): two would replay and remove each other's records.
    #[error("the spool {path} is in use by another process: {source}")]
    SpoolBusy {
        /// The spool folder.
        path: PathBuf,
        /// What `flock` said.
        source: io::Error,
    },
    /// A domain or local part that cannot safely name a directory.
    #[error("invalid mailbox {part} {value:?}: {reason}")]
    InvalidMailbox {
        /// `"domain"` or `"local part"`.
        part: &'static str,
        /// The value as given (printed escaped).
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A Maildir++ folder name that cannot safely name a directory.
    #[error("invalid folder name {name:?}: {reason}")]
    InvalidFolder {
        /// The name as given (printed escaped).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The folder does not exist.
    #[error("no folder {name:?}")]
    NoSuchFolder {
        /// The name asked for.
        name: String,
    },
    /// A folder of that name exists already.
    #[error("folder {name:?} exists already")]
    FolderExists {
        /// The name.
        name: String,
    },
    /// No message with that UID (it was expunged).
    #[error("no message with UID {uid}")]
    NoSuchMessage {
        /// The UID.
        uid: u32,
    },
    /// [`MailStore::begin`](crate::MailStore::begin) was called with no recipient.
    #[error("a delivery needs at least one recipient")]
    NoRecipients,
    /// An earlier write to this delivery failed, so its file is incomplete
    /// and may not be committed; drop the delivery instead.
    #[error("an earlier write to {path} failed; the delivery cannot continue")]
    Poisoned {
        /// The temporary file of the delivery.
        path: PathBuf,
    },
    /// A file system operation failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// The operation that failed.
        op: FsOp,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(op: FsOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether the folder or message does not exist (IMAP: `NONEXISTENT`, `TRYCREATE`).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::NoSuchFolder { .. } | StoreError::NoSuchMessage { .. }
        )
    }

    /// Whether the folder exists already (IMAP: `ALREADYEXISTS`).
    pub fn is_already_exists(&self) -> bool {
        matches!(self, StoreError::FolderExists { .. })
    }

    /// Whether a name was refused (IMAP: `CANNOT`).
    pub fn is_invalid_name(&self) -> bool {
        matches!(
            self,
            StoreError::InvalidFolder { .. } | StoreError::InvalidMailbox { .. }
        )
    }

    /// The underlying I/O error, if this error came from the file system.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            StoreError::RootUnusable { source, .. } | StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    /// True when the disk or the user's quota is full (`ENOSPC`, `EDQUOT`).
    ///
    /// This is a temporary condition the sender should retry later with the
    /// same message: SMTP answers `452 4.3.1` (RFC 5321 4.2.3, RFC 3463 3.4).
    ///
    /// ```
    /// use std::io;
    /// use mailstore::{FsOp, StoreError};
    ///
    /// let full = StoreError::Io {
    ///     op: FsOp::Write,
    ///     path: "/m/tmp/x".into(),
    ///     source: io::Error::from(io::ErrorKind::StorageFull),
    /// };
    /// assert!(full.is_full());
    /// assert!(!StoreError::NoRecipients.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.io_error().is_some_and(is_full_error)
    }
}

/// `ENOSPC` or `EDQUOT`, by kind (portable) or by Linux errno (28, 122) in
/// case an error was built from a raw code the kind mapping missed.
pub(crate) fn is_full_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || (cfg!(target_os = "linux") && matches!(e.raw_os_error(), Some(28 | 122)))
}

impl From<StoreError> for io::Error {
    /// Keeps the kind of the underlying error, so callers using
    /// [`std::io::Write`] still see `StorageFull` and friends.
    fn from(e: StoreError) -> Self {
        let kind = e.io_error().map_or(io::ErrorKind::Other, io::Error::kind);
        io::Error::new(kind, e)
    }
}
