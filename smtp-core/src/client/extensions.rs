//! What a server offers in its EHLO reply (RFC 5321 section 4.1.1.1).

use crate::Reply;

/// The service extensions a server announced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Extensions {
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// SIZE (RFC 1870): `Some(0)` means no fixed limit.
    pub size: Option<u64>,
    /// 8BITMIME (RFC 6152).
    pub eight_bit_mime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// CHUNKING (RFC 3030).
    pub chunking: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034).
    pub enhanced_status_codes: bool,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// AUTH mechanisms (RFC 4954).
    pub auth: Vec<String>,
}

impl Extensions {
    /// Reads the keywords from an EHLO reply; the first line is the greeting, each later line
    /// one `keyword [params]`, keywords case-insensitive.
    ///
    /// ```
    /// use smtp_core::{Reply, client::Extensions};
    /// let r = Reply::multiline(250, None, ["mx", "pipelining", "SIZE 1000", "AUTH PLAIN LOGIN"]);
    /// let e = Extensions::from_ehlo(&r);
    /// assert!(e.pipelining && !e.chunking);
    /// assert_eq!(e.size, Some(1000));
    /// assert_eq!(e.auth, ["PLAIN", "LOGIN"]);
    /// ```
    pub fn from_ehlo(reply: &Reply) -> Extensions {
        let mut e = Extensions::default();
        for line in reply.lines().iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => e.pipelining = true,
                "SIZE" => e.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "8BITMIME" => e.eight_bit_mime = true,
                "SMTPUTF8" => e.smtputf8 = true,
                "CHUNKING" => e.chunking = true,
                "ENHANCEDSTATUSCODES" => e.enhanced_status_codes = true,
                "STARTTLS" => e.starttls = true,
                "AUTH" => e.auth = words.map(str::to_ascii_uppercase).collect(),
                _ => {}
            }
        }
        e
    }
}

impl std::fmt::Display for Extensions {
    /// The offered keywords, space-separated, as they would appear in EHLO.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut words: Vec<String> = Vec::new();
        let flags = [
            (self.pipelining, "PIPELINING"),
            (self.eight_bit_mime, "8BITMIME"),
            (self.smtputf8, "SMTPUTF8"),
            (self.chunking, "CHUNKING"),
            (self.enhanced_status_codes, "ENHANCEDSTATUSCODES"),
            (self.starttls, "STARTTLS"),
        ];
        words.extend(
            flags
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, w)| (*w).to_owned()),
        );
        if let Some(n) = self.size {
            words.push(format!("SIZE {n}"));
        }
        if !self.auth.is_empty() {
            words.push(format!("AUTH {}", self.auth.join(" ")));
        }
        f.write_str(&words.join(", "))
    }
}
