//! Unique file names, as the Maildir spec (<https://cr.yp.to/proto/maildir.html>)
//! describes them and Dovecot writes them: `<secs>.M<usec>P<pid>Q<n>.<host>`.
//!
//! Uniqueness comes from the triple (host, pid, per-process counter): the
//! spec's "Q" is a delivery counter within one process, so two deliveries in
//! the same microsecond still differ. The time only makes names sort by
//! arrival. `create_new` on top of that refuses to clobber a file should a
//! name ever repeat (for example after a pid is reused within a microsecond
//! across a reboot with a clock step back).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Process-wide: every store in the process shares it, so two `MailStore`s
/// over the same root cannot produce the same name either.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new unique base name (no `,S=` and no `:2,` info part).
///
/// `host` must already be escaped with [`escape_host`].
pub(crate) fn unique(host: &str) -> String {
    // A clock before 1970 is a broken host; a zero time still gives a unique
    // name thanks to the counter.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let q = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    format(
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        q,
        host,
    )
}

fn format(secs: u64, usec: u32, pid: u32, q: u64, host: &str) -> String {
    format!("{secs}.M{usec}P{pid}Q{q}.{host}")
}

/// The name a message gets in `new/`: Dovecot reads `,S=<size>` as the
/// physical size so it need not `stat` the file (Dovecot wiki, "Maildir:
/// filename extensions").
pub(crate) fn with_size(base: &str, size: u64) -> String {
    format!("{base},S={size}")
}

/// Escapes a host name for use in a file name.
///
/// The spec: "replace / with \057 and : with \072". `:` separates the info
/// part (`:2,S`) once the file is in `cur/`, and `/` would be a directory.
/// We also escape `,`, which Dovecot uses to start `,S=` fields, and control
/// characters; an empty name becomes `localhost`.
pub(crate) fn escape_host(host: &str) -> String {
    let host = host.trim();
    if host.is_empty() {
        return "localhost".to_owned();
    }
    let mut out = String::with_capacity(host.len());
    for c in host.chars() {
        if matches!(c, '/' | ':' | ',') || c.is_ascii_control() {
            // Infallible: writing to a String.
            let _ = write!(out, "\\{:03o}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// The host name when the caller gives none: Linux's kernel host name, or
/// `localhost`.
pub(crate) fn default_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn format_matches_dovecot() {
        assert_eq!(
            format(1_700_000_000, 42, 1234, 7, "mx.example.com"),
            "1700000000.M42P1234Q7.mx.example.com"
        );
        assert_eq!(with_size("1.M2P3Q4.h", 1260), "1.M2P3Q4.h,S=1260");
    }

    #[test]
    fn host_escaping() {
        assert_eq!(escape_host("mx.example.com"), "mx.example.com");
        assert_eq!(escape_host("a/b:c,d"), "a\\057b\\072c\\054d");
        assert_eq!(escape_host("a\nb"), "a\\012b");
        assert_eq!(escape_host(""), "localhost");
        assert_eq!(escape_host("  "), "localhost");
    }

    #[test]
    fn unique_in_a_tight_loop_across_threads() {
        let names: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..5000).map(|_| unique("h")).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("thread panicked"))
                .collect()
        });
        let set: HashSet<&String> = names.iter().collect();
        assert_eq!(set.len(), names.len());
        let pid = format!("P{}Q", std::process::id());
        assert!(names.iter().all(|n| n.contains(&pid) && n.ends_with(".h")));
    }
}
