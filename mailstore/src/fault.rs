//! Fault injection seam for tests.
//!
//! Every file system operation the store performs first asks the
//! [`FaultHook`] installed with [`StoreOptions::fault_hook`]
//! (`crate::StoreOptions::fault_hook`), if any. When the hook returns an
//! error, the store behaves exactly as if the operation itself had failed
//! with that error. A hook may also act on the file system before returning
//! `Ok` (for instance remove a folder to simulate one vanishing), so the real
//! operation then fails by itself.
//!
//! Production code installs no hook; the cost is one `Option` check per
//! operation.
//!
//! [`StoreOptions::fault_hook`]: crate::StoreOptions::fault_hook

use std::fmt;
use std::io;
use std::path::Path;

/// A file system operation, as reported to a [`FaultHook`] and carried in
/// [`StoreError::Io`](crate::StoreError::Io).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FsOp {
    /// Create a directory (mail root, domain, mailbox, `tmp`/`new`/`cur`).
    CreateDir,
    /// Create a new file (a message in `tmp/`, or the writability probe).
    CreateFile,
    /// Write message bytes (called once per [`Delivery::write_all`](crate::Delivery::write_all)).
    Write,
    /// `fsync` a file.
    SyncFile,
    /// `fsync` a directory, making a new entry in it durable.
    SyncDir,
    /// Hard-link a file from `tmp/` into `new/`.
    Link,
    /// Copy a message into another mailbox's `tmp/` when linking is impossible.
    Copy,
    /// Remove a file.
    Remove,
    /// List a directory.
    ReadDir,
    /// Rename a file (a flag change, a move, an index file replaced).
    Rename,
    /// Read a file.
    Read,
    /// Take a folder's lock file.
    Lock,
}

impl fmt::Display for FsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsOp::CreateDir => "create directory",
            FsOp::CreateFile => "create file",
            FsOp::Write => "write",
            FsOp::SyncFile => "fsync file",
            FsOp::SyncDir => "fsync directory",
            FsOp::Link => "link",
            FsOp::Copy => "copy to",
            FsOp::Remove => "remove",
            FsOp::ReadDir => "read directory",
            FsOp::Rename => "rename",
            FsOp::Read => "read",
            FsOp::Lock => "lock",
        })
    }
}

/// Decides, before each file system operation, whether it should fail.
///
/// ```
/// use std::io;
/// use std::path::Path;
/// use mailstore::{FaultHook, FsOp, MailStore, Mailbox, StoreOptions};
///
/// /// Every write fails as if the disk were full.
/// struct DiskFull;
/// impl FaultHook for DiskFull {
///     fn check(&self, op: FsOp, _path: &Path) -> io::Result<()> {
///         if op == FsOp::Write {
///             return Err(io::ErrorKind::StorageFull.into());
///         }
///         Ok(())
///     }
/// }
///
/// let dir = tempfile::tempdir()?;
/// let store = MailStore::open_with(dir.path(), StoreOptions::new().fault_hook(DiskFull))?;
/// let mut d = store.begin(&[Mailbox::new("example.com", "alice")?])?;
/// let err = d.write_all(b"Subject: hi\r\n").unwrap_err();
/// assert!(err.is_full());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait FaultHook: Send + Sync {
    /// Called before `op` is applied to `path`; an `Err` makes the operation
    /// fail with that error.
    fn check(&self, op: FsOp, path: &Path) -> io::Result<()>;
}

/// Lets a test keep a handle on its hook (to flip it on and off, or read
/// counters) while the store holds another.
impl<T: FaultHook + ?Sized> FaultHook for std::sync::Arc<T> {
    fn check(&self, op: FsOp, path: &Path) -> io::Result<()> {
        (**self).check(op, path)
    }
}
