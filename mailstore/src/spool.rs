//! The intake spool: concurrent deliveries share their flushes (group commit).
//!
//! Without it, each message costs two device flushes of its own: `fdatasync` of its file and
//! `fsync` of `new/`. With it, a delivery appends one record (the Maildir name it will get, the
//! mailboxes, the body) to an append-only segment file, and waits until a `fdatasync` of that
//! segment that started after its append has completed. Every delivery that appended while a
//! flush was running is covered by the next one, so a batch of concurrent messages costs one
//! flush. A lone delivery starts its flush at once: nothing waits to fill a batch.
//!
//! Once its record is durable, the delivery links its `tmp/` file into each `new/` (without
//! fsync) and reports success. Those Maildir copies become durable at the next *checkpoint*:
//! the current segment is retired (appends go to a fresh one), the checkpoint waits for the
//! retired segment's deliveries to finish linking, `syncfs` makes the file system's data and
//! directories durable, and only then is the segment removed.
//!
//! After a crash, [`recover`] replays every intact record of the segments left: a mailbox whose
//! `new/` and `cur/` hold no file of the record's unique name gets the message under exactly
//! that name, so replay is idempotent (a second crash during recovery replays the rest). A torn
//! last record (the crash came mid-append) fails its checksum and is ignored: it was never
//! durable, so it was never acknowledged.
//!
//! Removing or moving a message out of a mailbox would make replay deliver it again; callers
//! that do so call [`Spool::settle`] first, which runs a checkpoint if any record is not yet
//! checkpointed.
//!
//! Segment format, little-endian: `BZS1`, meta length (u32), body length (u64), CRC-32 of the
//! meta (u32), CRC-32 of the body (u32), then the meta (the Maildir name, then each mailbox
//! directory relative to the store root, one per line) and the body.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::{FsOp, Inner, Mailbox, NewMail, StoreError};

/// The spool's folder under the store root (a leading dot never names a domain).
pub(crate) const DIR: &str = ".spool";

const MAGIC: &[u8; 4] = b"BZS1";
const HEADER_LEN: usize = 24;
/// More than any name and recipient list a delivery can have (100 recipients of 320 bytes).
const MAX_META: u32 = 1 << 20;
/// A checkpoint runs once the current segment is this large (or its oldest record old enough).
const CHECKPOINT_SIZE: u64 = 64 << 20;
/// How often the checkpoint thread looks.
const TICK: Duration = Duration::from_millis(200);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The spool of one store.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    state: Mutex<State>,
    /// Wakes the checkpoint thread.
    wake: Condvar,
    /// One checkpoint at a time.
    checkpointing: Mutex<()>,
    /// How old the oldest record may get before a checkpoint.
    max_age: Duration,
    /// Larger messages are not spooled (see [`StoreOptions::group_commit_max`]).
    ///
    /// [`StoreOptions::group_commit_max`]: crate::StoreOptions::group_commit_max
    max_body: u64,
    /// Deliveries whose records are appended, for the flusher thread to finish in order.
    queue: Mutex<VecDeque<Job>>,
    /// Wakes the flusher thread.
    queued: Condvar,
    /// The flusher thread runs (else [`enqueue`](Spool::enqueue) runs a job itself).
    flusher: AtomicBool,
}

/// The rest of a delivery whose record is appended: wait for the flush, link, report.
pub(crate) struct Job(pub Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

#[derive(Debug)]
struct State {
    current: Arc<Segment>,
    /// Segments appended to no more, waiting for a checkpoint to remove them.
    retired: Vec<Arc<Segment>>,
    next_id: u64,
    /// When the oldest record not yet checkpointed was appended.
    dirty_since: Option<Instant>,
}

/// One segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    path: PathBuf,
    file: File,
    state: Mutex<SegState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct SegState {
    /// Bytes and records appended.
    len: u64,
    appended: u64,
    /// Records (and bytes) known durable.
    durable: u64,
    durable_len: u64,
    /// A `fdatasync` of this segment is running.
    flushing: bool,
    /// A flush failed: the records not durable then have failed, the file was cut back to
    /// `durable_len`, and nothing more is appended here. The error, to give each of them.
    broken: Option<(io::ErrorKind, Option<i32>)>,
    /// Records appended whose delivery has not finished linking (or failing).
    in_flight: usize,
    /// Durable records whose link into some `new/` failed: the checkpoint tries again.
    unplaced: Vec<Unplaced>,
    /// Mailbox directories that got a link, for the checkpoint's sync.
    touched: HashSet<PathBuf>,
}

/// A durable message not yet in every `new/` it belongs in.
#[derive(Debug)]
pub(crate) struct Unplaced {
    pub tmp: PathBuf,
    /// `(mailbox directory, mailbox, path in new/)` still missing.
    pub targets: Vec<(PathBuf, Mailbox, PathBuf)>,
    pub size: u64,
}

/// A record appended, to wait on and then to report the delivery's end to.
#[derive(Debug)]
pub(crate) struct Ticket {
    seg: Arc<Segment>,
    seq: u64,
}

impl Spool {
    /// Opens the spool of the store at `root`, after [`recover`] has replayed what it held,
    /// with a fresh segment numbered after any left.
    pub(crate) fn open(
        inner: &Inner,
        next_id: u64,
        max_age: Duration,
        max_body: u64,
    ) -> Result<Spool, StoreError> {
        let dir = inner.root.join(DIR);
        let current = Arc::new(Segment::create(inner, &dir, next_id)?);
        Ok(Spool {
            dir,
            state: Mutex::new(State {
                current,
                retired: Vec::new(),
                next_id: next_id + 1,
                dirty_since: None,
            }),
            wake: Condvar::new(),
            checkpointing: Mutex::new(()),
            max_age,
            max_body,
            queue: Mutex::new(VecDeque::new()),
            queued: Condvar::new(),
            flusher: AtomicBool::new(false),
        })
    }

    /// Hands `job` to the flusher thread, which runs the queued jobs in order. The first of a
    /// batch flushes the segment, which covers every record appended before that flush
    /// started, so the rest find theirs durable already: a batch shares one flush and no
    /// delivery holds a thread while it waits. Without the thread, runs `job` here.
    pub(crate) fn enqueue(&self, job: Job) {
        if !self.flusher.load(Ordering::Acquire) {
            (job.0)();
            return;
        }
        lock(&self.queue).push_back(job);
        self.queued.notify_one();
    }

    /// Starts the flusher thread. It holds no store (each job holds its own), and ends once
    /// the store is dropped and the queue is empty.
    pub(crate) fn start_flusher(spool: &Arc<Spool>, inner: &Arc<Inner>) {
        let weak: Weak<Inner> = Arc::downgrade(inner);
        let me = Arc::clone(spool);
        let spawned = std::thread::Builder::new()
            .name("mailstore-flusher".into())
            .spawn(move || {
                loop {
                    let batch = {
                        let mut queue = lock(&me.queue);
                        while queue.is_empty() {
                            if weak.strong_count() == 0 {
                                return;
                            }
                            queue = me
                                .queued
                                .wait_timeout(queue, TICK)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                        std::mem::take(&mut *queue)
                    };
                    for job in batch {
                        (job.0)();
                    }
                }
            });
        match spawned {
            Ok(_) => spool.flusher.store(true, Ordering::Release),
            // Each delivery then waits for its flush on its own thread, as `commit` does.
            Err(e) => tracing::warn!(error = %e, "cannot start the spool flusher thread"),
        }
    }

    /// Appends a record for the message in `body` (its `size` octets, whose CRC-32 is
    /// `body_crc`), to be named `name` in each of `dirs`.
    pub(crate) fn append(
        &self,
        inner: &Inner,
        name: &str,
        dirs: &[PathBuf],
        body: &File,
        size: u64,
        body_crc: u32,
    ) -> Result<Ticket, StoreError> {
        let mut meta = String::with_capacity(name.len() + 64 * dirs.len());
        meta.push_str(name);
        for d in dirs {
            let rel = d.strip_prefix(&inner.root).unwrap_or(d);
            meta.push('\n');
            meta.push_str(&rel.to_string_lossy());
        }
        let mut header = Vec::with_capacity(HEADER_LEN + meta.len());
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        header.extend_from_slice(&size.to_le_bytes());
        header.extend_from_slice(&crc32fast::hash(meta.as_bytes()).to_le_bytes());
        header.extend_from_slice(&body_crc.to_le_bytes());
        header.extend_from_slice(meta.as_bytes());
        loop {
            let seg = lock(&self.state).current.clone();
            let mut st = lock(&seg.state);
            if st.broken.is_some() {
                drop(st);
                self.replace_broken(inner, &seg)?;
                continue;
            }
            let start = st.len;
            inner
                .run(FsOp::Write, &seg.path, || {
                    seg.file.write_all_at(&header, start)?;
                    copy_at(body, size, &seg.file, start + header.len() as u64)
                })
                .inspect_err(|_| {
                    // A partial record is cut off, so the next one starts clean.
                    if let Err(t) = seg.file.set_len(start) {
                        tracing::warn!(error = %t, "cannot cut a failed record off the spool");
                    }
                })?;
            st.len = start + header.len() as u64 + size;
            st.appended += 1;
            st.in_flight += 1;
            let seq = st.appended;
            drop(st);
            let mut state = lock(&self.state);
            state.dirty_since.get_or_insert_with(Instant::now);
            return Ok(Ticket { seg, seq });
        }
    }

    /// After a failed flush: appends go to a new segment.
    fn replace_broken(&self, inner: &Inner, broken: &Arc<Segment>) -> Result<(), StoreError> {
        let _one = lock(&self.checkpointing);
        let mut state = lock(&self.state);
        if !Arc::ptr_eq(&state.current, broken) {
            return Ok(()); // another thread did it
        }
        let fresh = Arc::new(Segment::create(inner, &self.dir, state.next_id)?);
        state.next_id += 1;
        let old = std::mem::replace(&mut state.current, fresh);
        state.retired.push(old);
        Ok(())
    }

    /// The largest message that goes through the spool.
    pub(crate) fn max_body(&self) -> u64 {
        self.max_body
    }

    /// Whether some record is not checkpointed yet.
    fn unsettled(&self) -> bool {
        let state = lock(&self.state);
        state.dirty_since.is_some() || !state.retired.is_empty()
    }

    /// Makes every record appended so far safe to forget: waits until their messages are in
    /// their `new/` (or tries again to put them there), makes the Maildir copies durable, and
    /// removes the segments. Call before removing or moving a message out of a mailbox, so
    /// that a replay after a crash cannot deliver it again.
    pub(crate) fn settle(&self, inner: &Inner) -> Result<(), StoreError> {
        if self.unsettled() {
            self.checkpoint(inner)?;
        }
        Ok(())
    }

    /// See [`settle`](Self::settle); runs whether or not anything is pending.
    pub(crate) fn checkpoint(&self, inner: &Inner) -> Result<(), StoreError> {
        let _one = lock(&self.checkpointing);
        let needs_new = lock(&lock(&self.state).current.state).appended > 0;
        if needs_new {
            // Made (and its name made durable) before it takes appends.
            let next_id = lock(&self.state).next_id;
            let fresh = Arc::new(Segment::create(inner, &self.dir, next_id)?);
            let mut state = lock(&self.state);
            state.next_id += 1;
            let old = std::mem::replace(&mut state.current, fresh);
            state.retired.push(old);
            state.dirty_since = None;
        }
        let retired = lock(&self.state).retired.clone();
        if retired.is_empty() {
            return Ok(());
        }
        let mut touched = HashSet::new();
        let mut settled = Vec::new();
        for seg in &retired {
            let mut st = lock(&seg.state);
            while st.in_flight > 0 || st.flushing {
                st = seg.changed.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            let unplaced = std::mem::take(&mut st.unplaced);
            touched.extend(st.touched.drain());
            drop(st);
            let mut left = Vec::new();
            for u in unplaced {
                match place_unplaced(inner, u, &mut touched) {
                    Ok(()) => {}
                    Err(u) => left.push(u),
                }
            }
            let done = left.is_empty();
            lock(&seg.state).unplaced.extend(left);
            if done {
                settled.push(seg.clone());
            }
        }
        // Linux syncs the whole file system; elsewhere every file in those new/ is synced.
        #[cfg(target_os = "linux")]
        let files: Vec<PathBuf> = Vec::new();
        #[cfg(not(target_os = "linux"))]
        let files: Vec<PathBuf> = touched
            .iter()
            .flat_map(|d| fs::read_dir(d.join("new")).into_iter().flatten())
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        sync_all(inner, &touched, files.iter().map(PathBuf::as_path))?;
        for seg in &settled {
            match inner.hooked(FsOp::Remove, &seg.path, || fs::remove_file(&seg.path)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(FsOp::Remove, &seg.path, e)),
            }
        }
        let mut state = lock(&self.state);
        state
            .retired
            .retain(|s| !settled.iter().any(|d| Arc::ptr_eq(s, d)));
        Ok(())
    }

    /// Runs checkpoints in the background until the store is dropped. The thread holds the
    /// store only while it checkpoints, so dropping the store releases the spool's lock.
    pub(crate) fn start_checkpoints(spool: &Arc<Spool>, inner: &Arc<Inner>) {
        let weak: Weak<Inner> = Arc::downgrade(inner);
        let spool = Arc::clone(spool);
        let spawned = std::thread::Builder::new()
            .name("mailstore-checkpoint".into())
            .spawn(move || {
                loop {
                    if weak.strong_count() == 0 {
                        return;
                    }
                    let due = {
                        let state = lock(&spool.state);
                        let (state, _) = spool
                            .wake
                            .wait_timeout(state, TICK.min(spool.max_age))
                            .unwrap_or_else(PoisonError::into_inner);
                        let big = lock(&state.current.state).len >= CHECKPOINT_SIZE;
                        let old = state
                            .dirty_since
                            .is_some_and(|t| t.elapsed() >= spool.max_age);
                        big || old || !state.retired.is_empty()
                    };
                    if !due {
                        continue;
                    }
                    let Some(inner) = weak.upgrade() else { return };
                    if let Err(e) = spool.checkpoint(&inner) {
                        tracing::warn!(error = %e, "spool checkpoint failed; will try again");
                    }
                }
            });
        if let Err(e) = spawned {
            // Checkpoints still run from `settle`, and recovery replays whatever is left.
            tracing::warn!(error = %e, "cannot start the spool checkpoint thread");
        }
    }
}

impl Segment {
    /// Creates segment `id` in `dir` and makes its name durable.
    fn create(inner: &Inner, dir: &Path, id: u64) -> Result<Segment, StoreError> {
        let path = dir.join(format!("{id:016}.log"));
        let file = inner.run(FsOp::CreateFile, &path, || {
            fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
        })?;
        inner.sync_dir(dir)?;
        Ok(Segment {
            path,
            file,
            state: Mutex::new(SegState::default()),
            changed: Condvar::new(),
        })
    }
}

impl Ticket {
    /// Returns once the record is durable, sharing a flush with the records appended around
    /// it; or the error of the flush that should have made it so.
    pub(crate) fn wait_durable(&self, inner: &Inner) -> Result<(), StoreError> {
        let seg = &*self.seg;
        let mut st = lock(&seg.state);
        loop {
            if st.durable >= self.seq {
                return Ok(());
            }
            if let Some(err) = st.broken {
                return Err(broken_error(&seg.path, err));
            }
            if !st.flushing {
                st.flushing = true;
                let (target, target_len) = (st.appended, st.len);
                drop(st);
                let result = inner.run(FsOp::SyncFile, &seg.path, || seg.file.sync_data());
                st = lock(&seg.state);
                st.flushing = false;
                match &result {
                    Ok(()) => {
                        st.durable = st.durable.max(target);
                        st.durable_len = st.durable_len.max(target_len);
                    }
                    Err(e) => {
                        // After a failed fsync the kernel may have dropped the dirty pages
                        // (so a later fsync could succeed without them): every record not
                        // durable yet fails, and is cut off so a replay cannot deliver it.
                        let io = e.io_error();
                        st.broken = Some((
                            io.map_or(io::ErrorKind::Other, io::Error::kind),
                            io.and_then(io::Error::raw_os_error),
                        ));
                        if let Err(t) = seg.file.set_len(st.durable_len) {
                            tracing::warn!(error = %t, "cannot cut failed records off the spool");
                        }
                    }
                }
                seg.changed.notify_all();
                if st.durable >= self.seq {
                    return Ok(());
                }
                result?;
                continue;
            }
            st = seg.changed.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The delivery is over: its message is linked into the `touched` mailbox directories,
    /// and `unplaced` says where not yet. (Dropping the ticket says the delivery failed.)
    pub(crate) fn finish(self, unplaced: Option<Unplaced>, touched: &[PathBuf]) {
        let mut st = lock(&self.seg.state);
        st.unplaced.extend(unplaced);
        st.touched.extend(touched.iter().cloned());
        drop(st);
        // Dropping `self` now counts the delivery out.
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut st = lock(&self.seg.state);
        st.in_flight -= 1;
        self.seg.changed.notify_all();
    }
}

fn broken_error(path: &Path, (kind, raw): (io::ErrorKind, Option<i32>)) -> StoreError {
    let e = raw.map_or_else(|| io::Error::from(kind), io::Error::from_raw_os_error);
    StoreError::io(FsOp::SyncFile, path, e)
}

/// Copies `len` octets from the start of `from` to `to` at `at`.
fn copy_at(from: &File, len: u64, to: &File, mut at: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let n = from.read_at(&mut buf[..want], done)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the message file is shorter than written",
            ));
        }
        to.write_all_at(&buf[..n], at)?;
        done += n as u64;
        at += n as u64;
    }
    Ok(())
}

/// Tries again to link a durable message into the `new/` it is missing from.
fn place_unplaced(
    inner: &Inner,
    mut u: Unplaced,
    touched: &mut HashSet<PathBuf>,
) -> Result<(), Unplaced> {
    let mut left = Vec::new();
    for (dir, mailbox, target) in std::mem::take(&mut u.targets) {
        let linked = inner
            .ensure_mailbox(&mailbox)
            .and_then(|_| link(inner, &u.tmp, &target));
        match linked {
            Ok(()) => {
                touched.insert(dir.clone());
                inner.watchers.notify(&NewMail {
                    mailbox: mailbox.clone(),
                    path: target.clone(),
                    size: u.size,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "a durable message is not in new/ yet; will try again");
                left.push((dir, mailbox, target));
            }
        }
    }
    u.targets = left;
    if u.targets.is_empty() {
        let _ = fs::remove_file(&u.tmp);
        Ok(())
    } else {
        Err(u)
    }
}

/// Links `from` to `to`; a name that exists already is the message placed before.
pub(crate) fn link(inner: &Inner, from: &Path, to: &Path) -> Result<(), StoreError> {
    match inner.hooked(FsOp::Link, to, || fs::hard_link(from, to)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::io(FsOp::Link, to, e)),
    }
}

/// Makes the data of `files` and the entries of the `mailboxes`' `new/` durable: one `syncfs`
/// per file system on Linux; elsewhere each file, then each `new/`.
fn sync_all<'a>(
    inner: &Inner,
    mailboxes: &HashSet<PathBuf>,
    files: impl Iterator<Item = &'a Path>,
) -> Result<(), StoreError> {
    if mailboxes.is_empty() || !inner.fsync() {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        drop(files); // syncfs covers them
        let mut by_device = BTreeMap::new();
        for dir in mailboxes {
            if let Ok(m) = fs::metadata(dir) {
                by_device.entry(m.dev()).or_insert(dir);
            }
        }
        for dir in by_device.values() {
            inner.run(FsOp::SyncDir, dir, || {
                let f = File::open(dir)?;
                rustix::fs::syncfs(&f).map_err(io::Error::from)
            })?;
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        for path in files {
            inner.run(FsOp::SyncFile, path, || File::open(path)?.sync_data())?;
        }
        for dir in mailboxes {
            inner.sync_dir(&dir.join("new"))?;
        }
        Ok(())
    }
}

/// What [`recover`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Intact records read.
    pub records: usize,
    /// Copies put into a `new/` (the rest were there already).
    pub replayed: usize,
    /// Segments whose end was torn or damaged (ignored from there on).
    pub torn: usize,
    /// The number the next segment gets.
    pub next_id: u64,
}

/// Takes the spool's lock and replays the segments a crash left: see the module docs.
/// Returns the lock file, to hold while the spool is in use.
pub(crate) fn recover(inner: &Inner) -> Result<(File, Recovered), StoreError> {
    let dir = inner.root.join(DIR);
    if inner.mkdir(&dir)? {
        inner.sync_dir(&inner.root)?;
    }
    let lock_path = dir.join("lock");
    let lock_file = inner.run(FsOp::CreateFile, &lock_path, || {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
    })?;
    #[cfg(target_os = "linux")]
    rustix::fs::flock(
        &lock_file,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )
    .map_err(|e| StoreError::SpoolBusy {
        path: dir.clone(),
        source: io::Error::from(e),
    })?;

    let mut segments = BTreeMap::new();
    for entry in inner.read_dir(&dir)? {
        let entry = entry.map_err(|e| StoreError::io(FsOp::ReadDir, &dir, e))?;
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        segments.insert(id, entry.path());
    }
    let mut out = Recovered {
        next_id: segments.keys().next_back().map_or(1, |id| id + 1),
        ..Recovered::default()
    };
    let left: u64 = segments
        .values()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    if left > 0 {
        tracing::info!(
            segments = segments.len(),
            bytes = left,
            "spool: replaying what the last run left"
        );
    }
    // Phase 1: each missing copy written into its mailbox's tmp/; phase 2, once a file system
    // sync has made them durable: linked into new/. Two syncs in all, not two per message.
    let mut present: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    let mut todo: Vec<(PathBuf, PathBuf)> = Vec::new(); // (tmp file, name in new/)
    let mut touched = HashSet::new();
    for path in segments.values() {
        let data = inner.run(FsOp::Read, path, || {
            let mut v = Vec::new();
            File::open(path)?.read_to_end(&mut v)?;
            Ok(v)
        })?;
        let mut at = 0;
        while at < data.len() {
            let Some((record, next)) = parse(&data, at) else {
                tracing::warn!(segment = %path.display(), offset = at, "spool record torn or damaged: ignored from here");
                out.torn += 1;
                break;
            };
            at = next;
            out.records += 1;
            for rel in &record.dirs {
                let mailbox_dir = inner.root.join(rel);
                let names = match present.entry(mailbox_dir.clone()) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(unique_names(inner, &mailbox_dir)?)
                    }
                };
                let unique = unique_part(record.name);
                if names.contains(unique) {
                    continue;
                }
                let tmp = write_replay(inner, &mailbox_dir, record.name, record.body)?;
                todo.push((tmp, mailbox_dir.join("new").join(record.name)));
                names.insert(unique.to_owned());
                touched.insert(mailbox_dir);
                out.replayed += 1;
            }
        }
    }
    sync_all(inner, &touched, todo.iter().map(|(tmp, _)| tmp.as_path()))?;
    for (tmp, target) in &todo {
        link(inner, tmp, target)?;
        let _ = fs::remove_file(tmp);
    }
    for mailbox_dir in &touched {
        inner.sync_dir(&mailbox_dir.join("new"))?;
    }
    for path in segments.values() {
        inner.run(FsOp::Remove, path, || fs::remove_file(path))?;
    }
    if out.records > 0 || out.torn > 0 {
        tracing::info!(
            records = out.records,
            replayed = out.replayed,
            torn = out.torn,
            "spool recovered"
        );
    }
    Ok((lock_file, out))
}

struct Record<'a> {
    name: &'a str,
    dirs: Vec<&'a Path>,
    body: &'a [u8],
}

/// The record at `at`, and where the next starts; `None` if it is torn, damaged, or names a
/// place outside the store.
fn parse(data: &[u8], at: usize) -> Option<(Record<'_>, usize)> {
    let header = data.get(at..at.checked_add(HEADER_LEN)?)?;
    if &header[..4] != MAGIC {
        return None;
    }
    let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let meta_len = word(4);
    let body_len = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    let (meta_crc, body_crc) = (word(16), word(20));
    if meta_len > MAX_META {
        return None;
    }
    let meta_start = at + HEADER_LEN;
    let body_start = meta_start + meta_len as usize;
    let end = body_start.checked_add(usize::try_from(body_len).ok()?)?;
    let meta = data.get(meta_start..body_start)?;
    let body = data.get(body_start..end)?;
    if crc32fast::hash(meta) != meta_crc || crc32fast::hash(body) != body_crc {
        return None;
    }
    let meta = std::str::from_utf8(meta).ok()?;
    let mut lines = meta.split('\n');
    let name = lines.next()?;
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    let dirs: Vec<&Path> = lines.map(Path::new).collect();
    let inside = |p: &&Path| {
        !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
    };
    if dirs.is_empty() || !dirs.iter().all(inside) {
        return None;
    }
    Some((Record { name, dirs, body }, end))
}

/// The unique part of a Maildir name: before its `,S=...` fields and `:2,` flags.
fn unique_part(name: &str) -> &str {
    name.split([',', ':']).next().unwrap_or(name)
}

/// The unique parts of the names in a mailbox's `new/` and `cur/`.
fn unique_names(inner: &Inner, mailbox_dir: &Path) -> Result<HashSet<String>, StoreError> {
    let mut names = HashSet::new();
    for sub in ["new", "cur"] {
        let dir = mailbox_dir.join(sub);
        for entry in inner.read_dir(&dir)? {
            let entry = entry.map_err(|e| StoreError::io(FsOp::ReadDir, &dir, e))?;
            if let Some(n) = entry.file_name().to_str() {
                names.insert(unique_part(n).to_owned());
            }
        }
    }
    Ok(names)
}

/// Writes `body` into `mailbox_dir`'s `tmp/` (not yet durable: the caller syncs) and returns
/// the file's path.
fn write_replay(
    inner: &Inner,
    mailbox_dir: &Path,
    name: &str,
    body: &[u8],
) -> Result<PathBuf, StoreError> {
    for sub in ["", "tmp", "new", "cur"] {
        let d = mailbox_dir.join(sub);
        if !d.is_dir() {
            fs::create_dir_all(&d).map_err(|e| StoreError::io(FsOp::CreateDir, &d, e))?;
            if let Some(parent) = d.parent() {
                inner.sync_dir(parent)?;
            }
        }
    }
    let tmp = mailbox_dir
        .join("tmp")
        .join(format!("{}.replay", unique_part(name)));
    let file = inner.run(FsOp::CreateFile, &tmp, || {
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
    })?;
    inner.run(FsOp::Write, &tmp, || file.write_all_at(body, 0))?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, dirs: &[&str], body: &[u8]) -> Vec<u8> {
        let meta = std::iter::once(name)
            .chain(dirs.iter().copied())
            .collect::<Vec<_>>()
            .join("\n");
        let mut v = Vec::new();
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        v.extend_from_slice(&(body.len() as u64).to_le_bytes());
        v.extend_from_slice(&crc32fast::hash(meta.as_bytes()).to_le_bytes());
        v.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        v.extend_from_slice(meta.as_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn records_parse_and_every_torn_or_damaged_one_is_refused() {
        let a = record("1.M1P1Q1.h,S=5", &["example.com/alice"], b"hello");
        let b = record(
            "1.M1P1Q2.h,S=2",
            &["example.com/bob", "example.com/carol"],
            b"hi",
        );
        let data = [a.clone(), b.clone()].concat();
        let (r, next) = parse(&data, 0).unwrap();
        assert_eq!((r.name, r.body), ("1.M1P1Q1.h,S=5", &b"hello"[..]));
        assert_eq!(r.dirs, [Path::new("example.com/alice")]);
        let (r, end) = parse(&data, next).unwrap();
        assert_eq!(r.dirs.len(), 2);
        assert_eq!(end, data.len());
        // Cut anywhere inside the second record: it is refused, the first still reads.
        for cut in next..data.len() {
            assert!(parse(&data[..cut], next).is_none(), "cut at {cut}");
            assert!(parse(&data[..cut], 0).is_some());
        }
        // Any flipped bit in a record is caught.
        for i in 0..a.len() {
            let mut bad = a.clone();
            bad[i] ^= 0x10;
            assert!(parse(&bad, 0).is_none(), "bit flip at {i} accepted");
        }
        // A record naming a place outside the store is refused.
        for dirs in [&["../etc"][..], &["/etc"], &["a/../../b"], &[""]] {
            assert!(parse(&record("n", dirs, b"x"), 0).is_none(), "{dirs:?}");
        }
    }

    #[test]
    fn the_unique_part_ignores_size_and_flags() {
        assert_eq!(unique_part("1.M2P3Q4.h,S=10"), "1.M2P3Q4.h");
        assert_eq!(unique_part("1.M2P3Q4.h,S=10,W=12:2,RS"), "1.M2P3Q4.h");
        assert_eq!(unique_part("1.M2P3Q4.h:2,"), "1.M2P3Q4.h");
    }
}
