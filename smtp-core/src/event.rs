//! What a server session asks of its host, and how the host answers.

use crate::Reply;
use crate::address::{ForwardPath, ReversePath};

/// Identifies one pending host decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub(crate) u64);

/// The host's answer to a [`ServerEvent::Recipient`] or [`ServerEvent::MessageEnd`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Accepted with the standard reply.
    Accept,
    /// Message stored under this id; the 250 reply names it (`queued as <id>`).
    AcceptAs(String),
    /// Refused with this 4xx or 5xx reply.
    Refuse(Reply),
    /// An [`ServerEvent::Auth`] whose credentials are good: the client is logged in as this
    /// login. ([`Verdict::Accept`] there means a login that may send only as its own
    /// address.)
    Login(Login),
}

/// A successful login: who, and the sender addresses it may use.
///
/// ```
/// use smtp_core::Login;
/// let l = Login::new("alice@example.com", ["alice@example.com", "sales@example.com"]);
/// assert!(l.may_send_as("Sales@example.com"));
/// assert!(!l.may_send_as("bob@example.com"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Login {
    /// The login, as the host names it.
    pub user: String,
    /// The addresses MAIL FROM may give, compared without regard to case.
    pub send_as: Vec<String>,
}

impl Login {
    /// A login for `user`, which may send as `send_as`.
    pub fn new<I, S>(user: impl Into<String>, send_as: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Login {
            user: user.into(),
            send_as: send_as.into_iter().map(Into::into).collect(),
        }
    }

    /// True if MAIL FROM may give `address`.
    pub fn may_send_as(&self, address: &str) -> bool {
        self.send_as.iter().any(|a| a.eq_ignore_ascii_case(address))
    }
}

impl Verdict {
    /// The reply this verdict gives at the end of a message: `250 2.0.0 Ok: queued [as id]`,
    /// or the refusal.
    ///
    /// ```
    /// use smtp_core::Verdict;
    /// let r = Verdict::AcceptAs("m1".into()).message_reply();
    /// assert_eq!(r.to_string(), "250 2.0.0 Ok: queued as m1");
    /// ```
    pub fn message_reply(&self) -> crate::Reply {
        match self {
            Verdict::Accept => crate::server::message_ok(None),
            Verdict::AcceptAs(id) => crate::server::message_ok(Some(id)),
            Verdict::Refuse(reply) => reply.clone(),
            Verdict::Login(_) => crate::server::message_ok(None),
        }
    }
}

/// The transaction a message belongs to, given when its data begins.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Envelope {
    /// The name the client gave in EHLO or HELO.
    pub helo: String,
    /// True after EHLO (ESMTP), false after HELO.
    pub esmtp: bool,
    /// MAIL FROM.
    pub from: ReversePath,
    /// Accepted recipients, in the order given.
    pub recipients: Vec<ForwardPath>,
    /// True if MAIL carried SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// The BODY parameter of MAIL (RFC 6152).
    pub body: BodyType,
    /// True if the data comes in BDAT chunks (RFC 3030).
    pub chunked: bool,
    /// The TLS session the message came over, if any (STARTTLS or implicit TLS).
    pub tls: Option<session_api::TlsInfo>,
    /// The login the client authenticated as (SMTP AUTH), if any.
    pub login: Option<String>,
}

/// `BODY=` of MAIL FROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BodyType {
    /// No BODY parameter or `BODY=7BIT`.
    #[default]
    SevenBit,
    /// `BODY=8BITMIME` (RFC 6152).
    EightBitMime,
}

/// Events of a server session, drained with `ServerSession::poll_event`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// The client introduced itself.
    Helo {
        /// The EHLO/HELO argument.
        name: String,
        /// EHLO rather than HELO.
        esmtp: bool,
    },
    /// A transaction began.
    MailFrom(ReversePath),
    /// Decide whether to accept this recipient; no input is consumed until you do.
    Recipient {
        /// Pass to `decide`.
        ticket: Ticket,
        /// The recipient as given.
        to: ForwardPath,
    },
    /// Message data begins: open somewhere to store it.
    MessageStart(Envelope),
    /// The next piece of the message, dot-unstuffed. Pieces arrive in order.
    MessageData(Vec<u8>),
    /// The whole message has arrived: store it durably, then decide. The 250 waits for you.
    MessageEnd {
        /// Pass to `decide`.
        ticket: Ticket,
        /// Octets of message data.
        size: u64,
    },
    /// The message will not be completed: drop what was stored of it.
    MessageAborted(AbortReason),
    /// Check these credentials (SMTP AUTH, RFC 4954), off the event loop: password hashes are
    /// slow on purpose. Answer with [`Verdict::Login`] (or `Accept`), or refuse with
    /// `535 5.7.8`. The password is a [`Secret`](line_protocol::sasl::Secret): it shows in no
    /// `Debug` output.
    Auth {
        /// Pass to `decide`.
        ticket: Ticket,
        /// What the client sent.
        credentials: line_protocol::sasl::Credentials,
    },
    /// The peer broke a rule; the session has already replied.
    Violation(Violation),
}

/// Why a message in progress was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// Over the size limit; the rest is read and discarded, then refused with 552.
    TooBig,
    /// A CR or LF outside a CRLF pair: refused with 554 once the body ends.
    BareLineEnding,
    /// A text line over the limit: refused with 554 once the body ends.
    LongLine,
    /// The peer went silent.
    Timeout,
    /// The peer closed the connection.
    Disconnected,
    /// The transaction was reset (RSET, or an error inside a BDAT sequence).
    Reset,
    /// The server is shutting down.
    Shutdown,
}

/// Peer misbehaviour, reported after the session has answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// 500: not a command.
    Unrecognized,
    /// 502: a command we do not offer.
    NotImplemented,
    /// 501 or 555: bad arguments.
    Syntax,
    /// 503: a command out of order.
    OutOfSequence,
    /// 500: a command line over the limit.
    LineTooLong,
    /// 552: a message over the size limit.
    MessageTooBig,
    /// 452: more recipients than allowed.
    TooManyRecipients,
    /// 553: a non-ASCII address without SMTPUTF8.
    NonAsciiAddress,
    /// 554: a bare CR or LF in DATA.
    BareLineEnding,
    /// 554: a text line over the limit in DATA.
    LongTextLine,
    /// 421: too many errors.
    TooManyErrors,
    /// 421: the peer stayed silent past a timeout.
    Timeout(TimerKind),
    /// 535: credentials the host refused.
    AuthFailed,
    /// 501: a SASL response that was cancelled or could not be read.
    AuthAborted,
    /// 538: AUTH tried before TLS.
    AuthWithoutTls,
    /// 530 or 553: mail without the login it needs, or from an address the login does not own.
    NotAuthorized,
}

/// Which of the server's timers a deadline belongs to (RFC 5321 section 4.5.3.2, set in
/// [`Timeouts`](crate::Timeouts)).
///
/// Through [`Session`](session_api::Session) these are reported as the
/// [`session_api::TimerKind`] every core shares: `Command` is `Idle`, `DataBlock` is
/// `Transfer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerKind {
    /// Waiting for a command (section 4.5.3.2.7), including between BDAT chunks.
    Command,
    /// Waiting for the next block of message data, after DATA or inside a BDAT chunk.
    DataBlock,
}

impl From<TimerKind> for session_api::TimerKind {
    fn from(kind: TimerKind) -> Self {
        match kind {
            TimerKind::Command => session_api::TimerKind::Idle,
            TimerKind::DataBlock => session_api::TimerKind::Transfer,
        }
    }
}

/// Misuse of the session API by the embedding program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// `decide` with a ticket the session is not waiting on.
    #[error("no decision is pending for ticket {0:?}")]
    UnknownTicket(Ticket),
    /// A refusal must be a 4xx or 5xx reply.
    #[error("a refusal needs a 4xx or 5xx reply, not {0}")]
    NotARefusal(u16),
    /// [`Verdict::Login`] answers only [`ServerEvent::Auth`].
    #[error("a login answers only an AUTH event")]
    LoginOutsideAuth,
}
