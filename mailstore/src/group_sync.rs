//! Shared directory fsyncs ("group commit").
//!
//! After linking a message into `new/`, the directory must be fsynced before the delivery is
//! reported (the link itself is not durable until then). When several deliveries into the same
//! mailbox finish at once, one fsync started after all their links covers them all: each
//! delivery takes a ticket after its link, and a fsync that starts once ticket `n` was handed
//! out makes every link with a ticket up to `n` durable. The first delivery to arrive runs the
//! fsync; the others wait for it, or run the next one if theirs came too late.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};

use crate::StoreError;

/// Per-directory fsync bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct DirSyncs {
    state: Mutex<BTreeMap<PathBuf, Epochs>>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct Epochs {
    /// Tickets handed out.
    requested: u64,
    /// Every ticket up to this one is durable.
    completed: u64,
    /// A fsync of this directory is in progress.
    running: bool,
}

impl DirSyncs {
    /// Makes every entry created in `dir` before this call durable, running `fsync` or
    /// sharing one that starts after this call.
    pub(crate) fn sync(
        &self,
        dir: &Path,
        fsync: impl Fn() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = {
            let e = state.entry(dir.to_path_buf()).or_default();
            e.requested += 1;
            e.requested
        };
        loop {
            let e = state.get_mut(dir).expect("entries are never removed");
            if e.completed >= mine {
                return Ok(());
            }
            if !e.running {
                e.running = true;
                let target = e.requested;
                drop(state);
                let result = fsync();
                state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                let e = state.get_mut(dir).expect("entries are never removed");
                e.running = false;
                if result.is_ok() {
                    e.completed = e.completed.max(target);
                }
                // Waiters whose ticket this covered return; the others run the next fsync.
                self.done.notify_all();
                return result;
            }
            state = self
                .done
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn one_fsync_serves_waiters_and_failures_are_not_shared() {
        let syncs = Arc::new(DirSyncs::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let dir = Path::new("/x/new");
        // Sequential calls each need their own fsync.
        for _ in 0..3 {
            syncs
                .sync(dir, || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        // A failing fsync reports its error and does not mark anything durable.
        let failed = syncs.sync(dir, || {
            Err(StoreError::io(
                crate::FsOp::SyncDir,
                dir,
                std::io::Error::from_raw_os_error(5),
            ))
        });
        assert!(failed.is_err());
        // Many threads at once: every call returns Ok, and at most one fsync per call ran.
        runs.store(0, Ordering::SeqCst);
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (syncs, runs) = (syncs.clone(), runs.clone());
                std::thread::spawn(move || {
                    syncs.sync(dir, || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        Ok(())
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let n = runs.load(Ordering::SeqCst);
        assert!((1..=16).contains(&n), "{n} fsyncs");
    }
}
