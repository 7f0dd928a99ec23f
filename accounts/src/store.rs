//! The users file on disk: atomic changes under a lock, and a live copy for the server.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::users::{Users, UsersError};

/// A users file that cannot be read or changed, named in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Reading or writing failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said (in the message, not a separate cause, so that an error
        /// chain does not print it twice).
        error: io::Error,
    },
    /// The file's text is not a users file.
    #[error("{}: {error}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Which line, and why.
        error: UsersError,
    },
    /// The change asked for does not fit the accounts (a duplicate, a missing user).
    #[error(transparent)]
    Change(UsersError),
}

/// The users file: read it, or change it atomically.
///
/// A change takes an exclusive lock (`<file>.lock`, so concurrent `buzon user add`s queue up
/// instead of losing each other's users), reads the current file, applies the change, writes
/// a temporary file (mode 0600: the hashes are secrets to an offline attacker), fsyncs it,
/// renames it over the file and fsyncs the directory. A running server sees either the old
/// file or the new one, never a half-written one.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use accounts::UserFile;
/// let file = UserFile::new(dir.path().join("users"));
/// file.update(|u| u.add("alice@example.com", accounts::hash_password(b"pw")).map(|_| ())).unwrap();
/// assert!(file.load().unwrap().account("alice@example.com").is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFile {
    path: PathBuf,
}

impl UserFile {
    /// The users file at `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UserFile { path: path.into() }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if the file exists.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Reads the accounts; a missing file is an error.
    pub fn load(&self) -> Result<Users, FileError> {
        let text = fs::read_to_string(&self.path).map_err(|e| self.io(e))?;
        Users::parse(&text).map_err(|error| FileError::Parse {
            path: self.path.clone(),
            error,
        })
    }

    /// Reads the accounts; a missing file has none.
    pub fn load_or_empty(&self) -> Result<Users, FileError> {
        match self.load() {
            Err(FileError::Io { error, .. }) if error.kind() == io::ErrorKind::NotFound => {
                Ok(Users::default())
            }
            other => other,
        }
    }

    /// Applies `change` to the accounts and writes them back atomically; the file is created
    /// if missing. Nothing is written if `change` fails.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Users) -> Result<T, UsersError>,
    ) -> Result<T, FileError> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(self.sibling("lock"))
            .map_err(|e| self.io(e))?;
        lock.lock().map_err(|e| self.io(e))?;
        let mut users = self.load_or_empty()?;
        let value = change(&mut users).map_err(FileError::Change)?;
        let temp = self.sibling("tmp");
        let written = (|| {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&temp)?;
            f.write_all(users.to_string().as_bytes())?;
            f.sync_all()?;
            fs::rename(&temp, &self.path)?;
            File::open(dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written.map_err(|e| self.io(e))?;
        Ok(value)
    }

    /// `.<name>.<what>` beside the file: hidden, and on the same file system for the rename.
    fn sibling(&self, what: &str) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map_or_else(|| "users".into(), |n| n.to_string_lossy());
        self.path.with_file_name(format!(".{name}.{what}"))
    }

    fn io(&self, error: io::Error) -> FileError {
        FileError::Io {
            path: self.path.clone(),
            error,
        }
    }
}

/// What a running server holds: the accounts of a users file, re-read when the file changes.
///
/// [`current`](LiveUsers::current) looks at the file's identity (inode, size, change time)
/// each time, which costs one `stat`; a changed file is read again. A file that turns corrupt
/// or disappears while the server runs is reported and the accounts read last stay in force:
/// a broken file never opens the server to anyone.
#[derive(Debug)]
pub struct LiveUsers {
    file: UserFile,
    loaded: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    /// The file's identity when it was last read; `None` while it has never existed.
    stamp: Option<Stamp>,
    users: Arc<Users>,
    /// A problem with the file has been logged and has not changed since.
    reported: bool,
}

/// What tells a rewritten file from the one read before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    ctime: (i64, i64),
    mtime: (i64, i64),
}

impl Stamp {
    fn of(path: &Path) -> io::Result<Stamp> {
        let m = fs::metadata(path)?;
        Ok(Stamp {
            inode: m.ino(),
            len: m.size(),
            ctime: (m.ctime(), m.ctime_nsec()),
            mtime: (m.mtime(), m.mtime_nsec()),
        })
    }
}

impl LiveUsers {
    /// Reads the file, which must exist and be valid.
    pub fn open(file: UserFile) -> Result<LiveUsers, FileError> {
        let stamp = Stamp::of(file.path()).map_err(|e| file.io(e))?;
        let users = Arc::new(file.load()?);
        Ok(LiveUsers {
            file,
            loaded: Mutex::new(Loaded {
                stamp: Some(stamp),
                users,
                reported: false,
            }),
        })
    }

    /// Like [`open`](LiveUsers::open), but a file that does not exist yet is no error: there
    /// are no accounts until it appears (the first `buzon user add` while the server runs).
    /// A file that exists must be valid.
    pub fn open_optional(file: UserFile) -> Result<LiveUsers, FileError> {
        if file.exists() {
            return LiveUsers::open(file);
        }
        Ok(LiveUsers {
            file,
            loaded: Mutex::new(Loaded {
                stamp: None,
                users: Arc::default(),
                reported: false,
            }),
        })
    }

    /// True once a users file has been read: recipients are then checked against it.
    pub fn is_configured(&self) -> bool {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded.stamp.is_some()
    }

    /// The file.
    pub fn file(&self) -> &UserFile {
        &self.file
    }

    /// The accounts as the file has them now. Problems are logged once each.
    pub fn current(&self) -> Arc<Users> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.file.path().display();
        match Stamp::of(self.file.path()) {
            Ok(stamp) if Some(stamp) == loaded.stamp => {}
            Ok(stamp) => match self.file.load() {
                Ok(users) => {
                    tracing::info!(file = %path, accounts = users.len(), "users file read");
                    loaded.stamp = Some(stamp);
                    loaded.users = Arc::new(users);
                    loaded.reported = false;
                }
                Err(e) => {
                    if !loaded.reported {
                        tracing::error!(error = %e, "users file unreadable; the accounts read before stay in force");
                    }
                    // Not read: the stamp of the good file stays, so a fix is picked up. A
                    // file that has never been good still counts as configured: mail for
                    // unknown users is refused rather than let through.
                    loaded.stamp = loaded.stamp.or(Some(stamp));
                    loaded.reported = true;
                }
            },
            Err(_) if loaded.stamp.is_none() => {}
            Err(e) => {
                if !loaded.reported {
                    tracing::error!(file = %path, error = %e, "users file gone; the accounts read before stay in force");
                }
                loaded.reported = true;
            }
        }
        Arc::clone(&loaded.users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA";

    fn add(file: &UserFile, address: &str) {
        file.update(|u| u.add(address, HASH.into()).map(|_| ()))
            .unwrap();
    }

    #[test]
    fn changes_are_seen_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = UserFile::new(dir.path().join("users"));
        add(&file, "alice@example.com");
        let live = LiveUsers::open(file.clone()).unwrap();
        assert_eq!(live.current().len(), 1);
        add(&file, "bob@example.com");
        assert!(live.current().resolve("bob@example.com").is_some());
        let mode = fs::metadata(file.path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_broken_file_keeps_the_accounts_read_before() {
        let dir = tempfile::tempdir().unwrap();
        let file = UserFile::new(dir.path().join("users"));
        add(&file, "alice@example.com");
        let live = LiveUsers::open(file.clone()).unwrap();
        fs::write(file.path(), "garbage\n").unwrap();
        assert!(live.current().resolve("alice@example.com").is_some());
        fs::remove_file(file.path()).unwrap();
        assert!(live.current().resolve("alice@example.com").is_some());
        let e = LiveUsers::open(UserFile::new(dir.path().join("users"))).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("No such file or directory (os error 2)"),
            "{e}"
        );
        fs::write(file.path(), "garbage\n").unwrap();
        let e = LiveUsers::open(file.clone()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: line 1: expected 4 fields separated by ':' (address:hash:state:aliases), found 1",
                file.path().display()
            )
        );
    }

    #[test]
    fn a_file_made_after_the_start_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let file = UserFile::new(dir.path().join("users"));
        let live = LiveUsers::open_optional(file.clone()).unwrap();
        assert!(!live.is_configured());
        assert!(live.current().is_empty());
        add(&file, "alice@example.com");
        assert!(live.current().resolve("alice@example.com").is_some());
        assert!(live.is_configured());
    }

    #[test]
    fn a_failed_change_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = UserFile::new(dir.path().join("users"));
        add(&file, "alice@example.com");
        let before = fs::read(file.path()).unwrap();
        let e = file
            .update(|u| u.add("alice@example.com", HASH.into()).map(|_| ()))
            .unwrap_err();
        assert_eq!(e.to_string(), "alice@example.com already exists");
        assert_eq!(fs::read(file.path()).unwrap(), before);
    }

    #[test]
    fn concurrent_changes_lose_no_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let file = UserFile::new(&path);
                std::thread::spawn(move || add(&file, &format!("user{i}@example.com")))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(UserFile::new(&path).load().unwrap().len(), 8);
    }
}
