//! What an NNTP server session is told about its server.

use std::time::Duration;

/// Settings shared by every session of one listener.
///
/// ```
/// let c = nntp_core::ServerConfig::new("news.example.com");
/// assert!(!c.plaintext_auth && c.starttls);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The name in the greeting and in notices' `Path`.
    pub hostname: String,
    /// Offer STARTTLS (RFC 4642) on a cleartext connection.
    pub starttls: bool,
    /// Accept AUTHINFO USER/PASS without TLS (RFC 4643 section 2.2 says a server should
    /// not; buzon allows it only to loopback clients, when the operator asks).
    pub plaintext_auth: bool,
    /// How long a reader may stay silent between commands (RFC 3977 section 3.1: at least
    /// three minutes).
    pub idle_timeout: Duration,
    /// Bad commands before the connection is closed.
    pub max_errors: u32,
}

impl ServerConfig {
    /// Defaults for `hostname`: STARTTLS offered, passwords only over TLS, ten minutes of
    /// silence, twenty bad commands.
    pub fn new(hostname: impl Into<String>) -> Self {
        ServerConfig {
            hostname: hostname.into(),
            starttls: true,
            plaintext_auth: false,
            idle_timeout: Duration::from_secs(600),
            max_errors: 20,
        }
    }
}
