//! Server configuration: host name, limits and timeouts.

use std::time::Duration;

/// Settings shared by every session of one server.
///
/// ```
/// use smtp_core::ServerConfig;
/// let mut config = ServerConfig::new("mx.example.com");
/// config.limits.message_size = 10 << 20;
/// assert_eq!(config.limits.recipients, 100);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Our name in the greeting, EHLO reply and Received headers.
    pub hostname: String,
    /// Size and count limits.
    pub limits: Limits,
    /// How long a peer may stay silent.
    pub timeouts: Timeouts,
    /// Offer STARTTLS (RFC 3207) on connections that are not TLS yet. Only set it where the
    /// driver of the connection has a certificate to start TLS with.
    pub starttls: bool,
    /// SMTP AUTH (RFC 4954): whether it is offered, where, and whether mail needs it.
    pub auth: AuthPolicy,
}

/// Where SMTP AUTH is offered and whether it is required (RFC 4954; submission, RFC 6409).
///
/// Passwords never cross a plaintext connection by default: AUTH is advertised and accepted
/// only once TLS is up, and `538 5.7.11` answers it before.
///
/// ```
/// use smtp_core::ServerConfig;
/// let mut submission = ServerConfig::new("mx.example");
/// submission.auth.offered = true;
/// submission.auth.required = true;
/// assert!(!submission.auth.plaintext);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AuthPolicy {
    /// The host can check passwords: AUTH PLAIN and LOGIN are advertised (over TLS).
    pub offered: bool,
    /// Also over a plaintext connection (the host sets this only for loopback peers, and only
    /// when the operator asked for it).
    pub plaintext: bool,
    /// MAIL needs a successful AUTH first (`530 5.7.0`), and an authenticated client may use
    /// only the sender addresses its login owns (`553 5.7.1`): a submission listener.
    pub required: bool,
}

impl ServerConfig {
    /// Defaults from RFC 5321 with the given host name.
    pub fn new(hostname: impl Into<String>) -> Self {
        ServerConfig {
            hostname: hostname.into(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            starttls: false,
            auth: AuthPolicy::default(),
        }
    }
}

/// Limits on what a peer may send. Going over one gives the protocol's error reply, never
/// unbounded memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest command line, CRLF included (RFC 5321 section 4.5.3.1.4: 512).
    pub command_line: usize,
    /// Longest line of message text, CRLF included (RFC 5321 section 4.5.3.1.6: 1000).
    pub text_line: usize,
    /// Largest message in octets, advertised with SIZE (RFC 1870).
    pub message_size: u64,
    /// Most recipients per message (RFC 5321 section 4.5.3.1.8 requires at least 100).
    pub recipients: usize,
    /// Bad commands per session: the error reply to the Nth is followed by 421 4.7.0 and the
    /// session ends.
    pub errors: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            command_line: 512,
            text_line: 1000,
            message_size: 25 << 20,
            recipients: 100,
            errors: 20,
        }
    }
}

/// Server timeouts (RFC 5321 section 4.5.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Waiting for the next command (section 4.5.3.2.7: at least 5 minutes).
    pub command: Duration,
    /// Waiting for the next block of message data (the client side of section 4.5.3.2.5
    /// allows 3 minutes between blocks; the server waits as long).
    pub data_block: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: Duration::from_secs(300),
            data_block: Duration::from_secs(180),
        }
    }
}
