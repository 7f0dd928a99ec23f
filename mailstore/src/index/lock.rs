//! A lock file that works on NFS: the holder makes a uniquely named file and hard-links it to
//! the lock's name (link(2) is atomic there, where O_EXCL was not on NFSv2); the link count
//! of the unique file says whether the link happened even if the reply was lost. The lock's
//! name is Dovecot's, `dovecot-uidlist.lock`, so buzon and Dovecot exclude each other.
//!
//! A holder that died leaves its lock behind: a lock older than [`STALE`] is broken. Holders
//! refresh (touch) the lock while they work, so a long operation is not taken for dead.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A lock not refreshed for this long belongs to a dead holder (Dovecot uses 2 minutes for
/// its uidlist dotlock's stale timeout; we touch ours, so a shorter wait is safe).
pub(crate) const STALE: Duration = Duration::from_secs(30);

/// How long to wait for a live holder before giving up.
const GIVE_UP: Duration = Duration::from_secs(60);

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub(crate) struct Lock {
    path: PathBuf,
}

impl Lock {
    /// Takes the lock at `path`, waiting for another holder to finish.
    pub(crate) fn acquire(path: &Path, host: &str) -> io::Result<Lock> {
        let unique = path.with_extension(format!(
            "lock.{host}.{}.{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let started = SystemTime::now();
        let mut wait = Duration::from_millis(1);
        loop {
            let _ = fs::remove_file(&unique);
            fs::write(&unique, format!("{}\n", std::process::id()))?;
            let linked = fs::hard_link(&unique, path);
            let nlink = fs::metadata(&unique).map(|m| m.nlink()).unwrap_or(1);
            let _ = fs::remove_file(&unique);
            if linked.is_ok() || nlink == 2 {
                return Ok(Lock {
                    path: path.to_owned(),
                });
            }
            if let Ok(meta) = fs::metadata(path)
                && let Ok(age) = meta.modified().and_then(|m| {
                    SystemTime::now()
                        .duration_since(m)
                        .map_err(io::Error::other)
                })
                && age > STALE
            {
                tracing::warn!(lock = %path.display(), age_s = age.as_secs(), "breaking a stale lock");
                let _ = fs::remove_file(path);
                continue;
            }
            if SystemTime::now()
                .duration_since(started)
                .unwrap_or_default()
                > GIVE_UP
            {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{} is held by another process", path.display()),
                ));
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(50));
        }
    }

    /// Takes the lock if nobody holds it, at once.
    pub(crate) fn try_acquire(path: &Path, host: &str) -> Option<Lock> {
        let unique = path.with_extension(format!(
            "lock.{host}.{}.{:?}.try",
            std::process::id(),
            std::thread::current().id()
        ));
        fs::write(&unique, format!("{}\n", std::process::id())).ok()?;
        let linked = fs::hard_link(&unique, path);
        let nlink = fs::metadata(&unique).map(|m| m.nlink()).unwrap_or(1);
        let _ = fs::remove_file(&unique);
        (linked.is_ok() || nlink == 2).then(|| Lock {
            path: path.to_owned(),
        })
    }

    /// Tells waiters the holder is alive.
    pub(crate) fn refresh(&self) {
        let _ = fs::File::options()
            .write(true)
            .open(&self.path)
            .and_then(|f| f.set_modified(SystemTime::now()));
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_and_breaks_stale_locks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dovecot-uidlist.lock");
        let a = Lock::acquire(&path, "h").unwrap();
        assert!(path.exists());
        let t = std::thread::spawn({
            let path = path.clone();
            move || Lock::acquire(&path, "h").map(|_| SystemTime::now())
        });
        std::thread::sleep(Duration::from_millis(100));
        let released = SystemTime::now();
        drop(a);
        assert!(t.join().unwrap().unwrap() >= released);

        // A dead holder's lock, older than STALE.
        fs::write(&path, "999999\n").unwrap();
        let old = SystemTime::now() - STALE - Duration::from_secs(5);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let b = Lock::acquire(&path, "h").unwrap();
        drop(b);
        assert!(!path.exists());
    }
}
