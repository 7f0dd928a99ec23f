//! What a server offers and its limits.

use std::time::Duration;

/// A server's settings, shared by its sessions.
///
/// ```
/// let config = imap_core::ServerConfig::new("mail.example.com");
/// assert_eq!(config.append_limit, 64 * 1024 * 1024);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Our name, for the greeting.
    pub hostname: String,
    /// Whether STARTTLS is offered on plaintext connections (the listener has a certificate).
    pub starttls: bool,
    /// Whether LOGIN and AUTHENTICATE PLAIN are allowed without TLS (`LOGINDISABLED`
    /// otherwise, RFC 3501 section 6.2.3): the accounts policy decides, loopback only.
    pub plaintext_auth: bool,
    /// APPENDLIMIT (RFC 7889): the largest message APPEND takes.
    pub append_limit: u64,
    /// The longest command line, and the most octets of literals inside one command other
    /// than APPEND's message. RFC 7162 section 4 asks for at least 8192.
    pub max_command: usize,
    /// The autologout timer before login (RFC 9051 section 5.4 allows it to be short).
    pub login_timeout: Duration,
    /// The autologout timer once logged in: at least 30 minutes (RFC 9051 section 5.4); IDLE
    /// clients restart their IDLE every 29.
    pub idle_timeout: Duration,
    /// How often an IDLE session asks its host for changes that no notice announced (mail
    /// dropped into the Maildir by another program).
    pub idle_poll: Duration,
    /// How many octets of FETCH output a host renders per request.
    pub fetch_chunk: usize,
}

impl ServerConfig {
    /// The defaults: no STARTTLS, no plaintext passwords, 64 MiB messages.
    pub fn new(hostname: impl Into<String>) -> Self {
        ServerConfig {
            hostname: hostname.into(),
            starttls: false,
            plaintext_auth: false,
            append_limit: 64 * 1024 * 1024,
            max_command: 64 * 1024,
            login_timeout: Duration::from_secs(180),
            idle_timeout: Duration::from_secs(30 * 60),
            idle_poll: Duration::from_secs(3),
            fetch_chunk: 256 * 1024,
        }
    }
}
