//! One mailbox's notices on disk, under `<mailbox>/buzon-news/`:
//!
//! - `articles/<number>.<uidvalidity>.<uid>`: one file per notice, its article text. The name
//!   says which message it is for, so the folder itself is the index; the file's mtime is when
//!   the notice was made.
//! - `state`: how far the notices have caught up with the INBOX (its UIDVALIDITY, the last UID
//!   given a notice, the mod-sequence read up to) and the next article number.
//!
//! A notice is written to a temporary name, flushed and renamed; the folder is flushed before
//! `state` is replaced (itself written, flushed and renamed). So after a crash every notice
//! `state` counts is on disk, and one on disk that `state` does not yet count is counted again
//! when the book is read: the next number and the last UID are the larger of what `state` and
//! the files say. No notice is made twice, and no number is ever given twice.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use nntp_core::Article;

/// What one notice file stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) uid_validity: u32,
    pub(crate) uid: u32,
    /// When it was made (Unix seconds).
    pub(crate) made: i64,
}

/// A mailbox's notices.
#[derive(Debug)]
pub(crate) struct Book {
    dir: PathBuf,
    fsync: bool,
    pub(crate) uid_validity: u32,
    pub(crate) last_uid: u32,
    pub(crate) modseq: u64,
    pub(crate) next: u64,
    /// When the group was made (Unix seconds).
    pub(crate) created: i64,
    pub(crate) entries: BTreeMap<u64, Entry>,
    /// Files removed since the folder was last flushed.
    unlinked: bool,
    /// The articles read or written so far, so that readers' OVER, STAT and ARTICLE cost no
    /// file reads (at most `keep` per group, about a kilobyte each).
    cache: BTreeMap<u64, Arc<Article>>,
}

impl Book {
    /// Reads the book in `dir` (empty if there is none yet; nothing is written until
    /// [`save`](Self::save)).
    pub(crate) fn open(dir: PathBuf, fsync: bool, now: i64) -> io::Result<Book> {
        let mut book = Book {
            dir,
            fsync,
            uid_validity: 0,
            last_uid: 0,
            modseq: 0,
            next: 1,
            created: now,
            entries: BTreeMap::new(),
            unlinked: false,
            cache: BTreeMap::new(),
        };
        match fs::read_to_string(book.dir.join("state")) {
            Ok(text) => book.read_state(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let articles = book.dir.join("articles");
        let listing = match fs::read_dir(&articles) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(book),
            Err(e) => return Err(e),
        };
        for entry in listing {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(".tmp.") {
                // A notice whose write did not finish: it was never counted.
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some((number, uid_validity, uid)) = parse_name(name) else {
                continue;
            };
            let made = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(unix)
                .unwrap_or(now);
            book.entries.insert(
                number,
                Entry {
                    uid_validity,
                    uid,
                    made,
                },
            );
            book.next = book.next.max(number + 1);
            if uid_validity == book.uid_validity {
                book.last_uid = book.last_uid.max(uid);
            }
        }
        Ok(book)
    }

    fn read_state(&mut self, text: &str) {
        for line in text.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            match key {
                "uidvalidity" => self.uid_validity = value.parse().unwrap_or(0),
                "last-uid" => self.last_uid = value.parse().unwrap_or(0),
                "modseq" => self.modseq = value.parse().unwrap_or(0),
                "next" => self.next = value.parse().unwrap_or(1).max(1),
                "created" => self.created = value.parse().unwrap_or(self.created),
                _ => {}
            }
        }
    }

    /// The lowest number present, or one past the highest given when there is none (RFC 3977
    /// section 6.1.1.2).
    pub(crate) fn low(&self) -> u64 {
        self.entries.keys().next().copied().unwrap_or(self.next)
    }

    /// The highest number ever given.
    pub(crate) fn high(&self) -> u64 {
        self.next - 1
    }

    /// Stores `article` as notice number [`next`](Self::next), the one it was written for.
    pub(crate) fn add(
        &mut self,
        uid_validity: u32,
        uid: u32,
        made: i64,
        article: &Arc<Article>,
    ) -> io::Result<u64> {
        let number = self.next;
        let text = article.text();
        let articles = self.dir.join("articles");
        fs::create_dir_all(&articles)?;
        let tmp = articles.join(format!(".tmp.{number}"));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text)?;
        if self.fsync {
            f.sync_data()?;
        }
        drop(f);
        fs::rename(&tmp, articles.join(file_name(number, uid_validity, uid)))?;
        self.next = number + 1;
        self.entries.insert(
            number,
            Entry {
                uid_validity,
                uid,
                made,
            },
        );
        self.last_uid = self.last_uid.max(uid);
        self.cache.insert(number, Arc::clone(article));
        Ok(number)
    }

    /// Removes notice `number`; false if there was none.
    pub(crate) fn withdraw(&mut self, number: u64) -> io::Result<bool> {
        let Some(e) = self.entries.remove(&number) else {
            return Ok(false);
        };
        self.cache.remove(&number);
        match fs::remove_file(self.path(number, &e)) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => {
                self.entries.insert(number, e);
                return Err(err);
            }
        }
        self.unlinked = true;
        Ok(true)
    }

    /// The notice for message `uid` of the current UIDVALIDITY, if any.
    pub(crate) fn number_of(&self, uid: u32) -> Option<u64> {
        self.entries
            .iter()
            .find(|(_, e)| e.uid == uid && e.uid_validity == self.uid_validity)
            .map(|(n, _)| *n)
    }

    /// The notices numbered `first..=last` if every one of them is in memory.
    pub(crate) fn cached(&self, first: u64, last: u64) -> Option<Vec<Arc<Article>>> {
        self.entries
            .range(first..=last)
            .map(|(n, _)| self.cache.get(n).cloned())
            .collect()
    }

    /// Notice `number`, if it is here: from memory, or read once from its file.
    pub(crate) fn article(&mut self, number: u64) -> io::Result<Option<Arc<Article>>> {
        if let Some(a) = self.cache.get(&number) {
            return Ok(Some(Arc::clone(a)));
        }
        let Some(e) = self.entries.get(&number) else {
            return Ok(None);
        };
        match fs::read(self.path(number, e)) {
            Ok(text) => {
                let a = Arc::new(Article::new(number, text));
                self.cache.insert(number, Arc::clone(&a));
                Ok(Some(a))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Makes everything done so far durable: the folder of notices, then `state`.
    pub(crate) fn save(&mut self) -> io::Result<()> {
        fs::create_dir_all(self.dir.join("articles"))?;
        if self.fsync {
            sync_dir(&self.dir.join("articles"))?;
        }
        self.unlinked = false;
        let text = format!(
            "buzon-news 1\nuidvalidity {}\nlast-uid {}\nmodseq {}\nnext {}\ncreated {}\n",
            self.uid_validity, self.last_uid, self.modseq, self.next, self.created
        );
        let tmp = self.dir.join(".state.tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        if self.fsync {
            f.sync_data()?;
        }
        drop(f);
        fs::rename(&tmp, self.dir.join("state"))?;
        if self.fsync {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Whether `state` has ever been written.
    pub(crate) fn exists(&self) -> bool {
        self.dir.join("state").exists()
    }

    fn path(&self, number: u64, e: &Entry) -> PathBuf {
        self.dir
            .join("articles")
            .join(file_name(number, e.uid_validity, e.uid))
    }
}

fn file_name(number: u64, uid_validity: u32, uid: u32) -> String {
    format!("{number}.{uid_validity}.{uid}")
}

fn parse_name(name: &str) -> Option<(u64, u32, u32)> {
    let mut parts = name.split('.');
    let n = parts.next()?.parse().ok()?;
    let v = parts.next()?.parse().ok()?;
    let u = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((n, v, u))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Seconds since the epoch.
pub(crate) fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_uids_survive_a_lost_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buzon-news");
        let mut b = Book::open(path.clone(), true, 100).unwrap();
        b.uid_validity = 7;
        b.save().unwrap();
        b.add(7, 3, 100, &Arc::new(Article::new(1, b"n1".to_vec())))
            .unwrap();
        b.add(7, 5, 100, &Arc::new(Article::new(2, b"n2".to_vec())))
            .unwrap();
        // A crash before `state` was written again: the files still count.
        drop(b);
        let mut b = Book::open(path.clone(), true, 200).unwrap();
        assert_eq!((b.next, b.last_uid), (3, 5));
        assert_eq!(b.article(2).unwrap().unwrap().text(), b"n2");
        assert!(b.withdraw(2).unwrap());
        b.save().unwrap();
        let b = Book::open(path, true, 300).unwrap();
        assert_eq!(b.next, 3, "a withdrawn number is never given again");
        assert_eq!(b.entries.keys().copied().collect::<Vec<_>>(), [1]);
        assert_eq!((b.low(), b.high()), (1, 2));
        assert_eq!(b.created, 100);
    }

    #[test]
    fn unfinished_writes_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buzon-news");
        fs::create_dir_all(path.join("articles")).unwrap();
        fs::write(path.join("articles/.tmp.1"), b"half").unwrap();
        fs::write(path.join("articles/stray"), b"?").unwrap();
        let b = Book::open(path.clone(), false, 0).unwrap();
        assert!(b.entries.is_empty());
        assert!(!path.join("articles/.tmp.1").exists());
        assert_eq!((b.low(), b.high()), (1, 0));
    }
}
