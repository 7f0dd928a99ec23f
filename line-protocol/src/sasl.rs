//! SASL (RFC 4422) as the line protocols carry it: SMTP `AUTH` (RFC 4954), IMAP
//! `AUTHENTICATE` (RFC 9051 section 6.2.2) and NNTP `AUTHINFO SASL` (RFC 4643) all send
//! base64 challenges and responses one per line, with `*` to cancel and `=` for an empty
//! initial response. This module is that exchange for the two mechanisms every mail client
//! has: `PLAIN` (RFC 4616) and `LOGIN` (draft-murchison-sasl-login), and nothing of any one
//! protocol's framing.
//!
//! ```
//! use line_protocol::sasl::{Exchange, Mechanism, Step};
//!
//! // AUTH PLAIN with the credentials on the command line (SASL-IR, RFC 4959).
//! let (_, step) = Exchange::start(Mechanism::Plain, Some(b"AGFsaWNlAHNlY3JldA=="));
//! let Step::Done(c) = step else { panic!() };
//! assert_eq!((c.user.as_str(), c.password.expose()), ("alice", &b"secret"[..]));
//!
//! // AUTH LOGIN: two challenges.
//! let (mut x, step) = Exchange::start(Mechanism::Login, None);
//! assert_eq!(step, Step::Challenge(b"Username:".to_vec()));
//! assert_eq!(x.respond(b"YWxpY2U="), Step::Challenge(b"Password:".to_vec()));
//! let Step::Done(c) = x.respond(b"c2VjcmV0") else { panic!() };
//! assert_eq!(c.user, "alice");
//! ```

use std::fmt;

pub use crate::base64::{decode, encode};

/// A credential (a password, a SASL response): kept out of `Debug` output and logs.
///
/// ```
/// let s = line_protocol::sasl::Secret::new(b"hunter2".to_vec());
/// assert_eq!(format!("{s:?}"), "Secret(..)");
/// assert_eq!(s.expose(), b"hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the code that checks it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Drop for Secret {
    /// Best effort: the password does not linger in freed memory.
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// A SASL mechanism this module speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// RFC 4616: `authzid NUL authcid NUL password` in one response.
    Plain,
    /// The `LOGIN` mechanism: user name and password in answer to two challenges. Not an RFC,
    /// but Outlook and many phones offer nothing else.
    Login,
}

impl Mechanism {
    /// Every mechanism, in the order servers advertise them.
    pub const ALL: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

    /// The mechanism named `name` (any case), if we speak it.
    ///
    /// ```
    /// use line_protocol::sasl::Mechanism;
    /// assert_eq!(Mechanism::parse("plain"), Some(Mechanism::Plain));
    /// assert_eq!(Mechanism::parse("CRAM-MD5"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The registered name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }
}

/// What a client proved, for the host to check.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credentials {
    /// The identity to act as, if the client named one (PLAIN's authzid); the host refuses
    /// any that is not `user` unless it supports acting for others.
    pub authzid: Option<String>,
    /// The login.
    pub user: String,
    /// The password.
    pub password: Secret,
    /// The mechanism that carried them.
    pub mechanism: Mechanism,
}

impl Credentials {
    /// Credentials that came another way than an [`Exchange`] (IMAP's LOGIN command).
    ///
    /// ```
    /// use line_protocol::sasl::{Credentials, Mechanism, Secret};
    /// let c = Credentials::new(None, "alice", Secret::new("pw"), Mechanism::Plain);
    /// assert_eq!(c.user, "alice");
    /// assert!(!format!("{c:?}").contains("pw"));
    /// ```
    pub fn new(
        authzid: Option<String>,
        user: impl Into<String>,
        password: Secret,
        mechanism: Mechanism,
    ) -> Self {
        Credentials {
            authzid,
            user: user.into(),
            password,
            mechanism,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &self.authzid)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

/// Why an exchange ended without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The client sent `*` (RFC 4954 section 4: answered 501).
    #[error("authentication cancelled")]
    Cancelled,
    /// A response that is not base64.
    #[error("response is not base64")]
    BadBase64,
    /// Base64 that does not decode to what the mechanism carries.
    #[error("{0}")]
    Malformed(&'static str),
}

/// The next step of an exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (base64-encode it: see [`encode`]) and pass the client's answer to
    /// [`Exchange::respond`].
    Challenge(Vec<u8>),
    /// The client is done: check these.
    Done(Credentials),
    /// The exchange failed; answer with the protocol's error for it.
    Failed(SaslError),
}

/// One exchange in progress, server side.
#[derive(Debug)]
pub struct Exchange {
    state: State,
}

#[derive(Debug)]
enum State {
    Plain,
    LoginUser,
    LoginPassword { user: String },
    Finished,
}

impl Exchange {
    /// Starts `mechanism`, with the initial response if the command carried one (base64 text,
    /// or `=` for an empty one).
    pub fn start(mechanism: Mechanism, initial: Option<&[u8]>) -> (Exchange, Step) {
        let mut x = Exchange {
            state: match mechanism {
                Mechanism::Plain => State::Plain,
                Mechanism::Login => State::LoginUser,
            },
        };
        let step = match (initial, mechanism) {
            (Some(b"="), Mechanism::Plain) => x.challenge(),
            (Some(text), _) => x.respond(text),
            (None, _) => x.challenge(),
        };
        (x, step)
    }

    /// True if the client's next response carries a password: PLAIN's response, LOGIN's
    /// second. A recorder passes such a line through [`redact_response`].
    pub fn expects_password(&self) -> bool {
        matches!(self.state, State::Plain | State::LoginPassword { .. })
    }

    /// The client's response line (without its line ending).
    pub fn respond(&mut self, line: &[u8]) -> Step {
        if line == b"*" {
            return self.fail(SaslError::Cancelled);
        }
        let decoded = if line == b"=" {
            Some(Vec::new())
        } else {
            decode(line)
        };
        let Some(bytes) = decoded else {
            return self.fail(SaslError::BadBase64);
        };
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Plain => match parse_plain(bytes) {
                Ok(c) => Step::Done(c),
                Err(e) => Step::Failed(e),
            },
            State::LoginUser => match String::from_utf8(bytes) {
                Ok(user) if !user.is_empty() => {
                    self.state = State::LoginPassword { user };
                    self.challenge()
                }
                _ => Step::Failed(SaslError::Malformed("the user name is empty or not UTF-8")),
            },
            State::LoginPassword { user } => Step::Done(Credentials {
                authzid: None,
                user,
                password: Secret::new(bytes),
                mechanism: Mechanism::Login,
            }),
            State::Finished => Step::Failed(SaslError::Malformed("the exchange is over")),
        }
    }

    fn challenge(&self) -> Step {
        Step::Challenge(match self.state {
            State::LoginUser => b"Username:".to_vec(),
            State::LoginPassword { .. } => b"Password:".to_vec(),
            // PLAIN's challenge is empty (RFC 4616 section 2).
            State::Plain | State::Finished => Vec::new(),
        })
    }

    fn fail(&mut self, e: SaslError) -> Step {
        self.state = State::Finished;
        Step::Failed(e)
    }
}

/// `[authzid] NUL authcid NUL passwd`, each UTF-8, the last two not empty (RFC 4616 section 2).
fn parse_plain(bytes: Vec<u8>) -> Result<Credentials, SaslError> {
    let bad = SaslError::Malformed("expected authzid NUL user NUL password");
    let mut parts = bytes.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(user), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    if user.is_empty() || password.is_empty() || password.contains(&0) {
        return Err(bad);
    }
    let text = |b: &[u8]| {
        String::from_utf8(b.to_vec()).map_err(|_| SaslError::Malformed("a name is not UTF-8"))
    };
    Ok(Credentials {
        authzid: (!authzid.is_empty()).then(|| text(authzid)).transpose()?,
        user: text(user)?,
        password: Secret::new(password.to_vec()),
        mechanism: Mechanism::Plain,
    })
}

/// A response that carries a password, with the password replaced by `[redacted]` and
/// everything else kept, so that a recording shows who logged in and still replays to the same
/// replies: a PLAIN response keeps its authzid and user, any other decodable response becomes
/// the base64 of `[redacted]`, text that is not base64 becomes `[redacted]` (not base64
/// either), and `*` and `=` stay.
///
/// ```
/// use line_protocol::sasl::{decode, redact_response};
/// let r = redact_response(b"AGFsaWNlAHNlY3JldA==");
/// assert_eq!(decode(&r).unwrap(), b"\0alice\0[redacted]");
/// assert_eq!(redact_response(b"c2VjcmV0"), b"W3JlZGFjdGVkXQ==");
/// assert_eq!(redact_response(b"hunter2 typed by hand"), b"[redacted]");
/// assert_eq!(redact_response(b"*"), b"*");
/// ```
pub fn redact_response(text: &[u8]) -> Vec<u8> {
    const REDACTED: &[u8] = b"[redacted]";
    if text == b"*" || text == b"=" {
        return text.to_vec();
    }
    let Some(decoded) = decode(text) else {
        return REDACTED.to_vec();
    };
    let mut parts = decoded.splitn(3, |&b| b == 0);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(authzid), Some(user), Some(_)) => {
            encode(&[authzid, b"\0", user, b"\0", REDACTED].concat()).into_bytes()
        }
        _ => encode(REDACTED).into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode(&bytes);
            assert_eq!(decode(text.as_bytes()), Some(bytes.clone()), "{text}");
            let unpadded = text.trim_end_matches('=');
            assert_eq!(decode(unpadded.as_bytes()), Some(bytes));
        }
        for bad in [
            &b"A"[..],
            b"AB=C",
            b"A===",
            b"QQ=",
            b"QR==",
            b"Q Q=",
            b"=",
            b"QUJD\r\n",
        ] {
            assert_eq!(decode(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn plain_asks_for_an_empty_challenge_without_initial_response() {
        for initial in [None, Some(&b"="[..])] {
            let (mut x, step) = Exchange::start(Mechanism::Plain, initial);
            assert_eq!(step, Step::Challenge(Vec::new()));
            let Step::Done(c) = x.respond(encode(b"admin\0alice\0pw").as_bytes()) else {
                panic!()
            };
            assert_eq!(c.authzid.as_deref(), Some("admin"));
            assert_eq!(c.user, "alice");
            assert_eq!(c.mechanism, Mechanism::Plain);
        }
    }

    #[test]
    fn bad_responses_fail_the_exchange() {
        let plain = |bytes: &[u8]| Exchange::start(Mechanism::Plain, Some(bytes)).1;
        assert_eq!(plain(b"*"), Step::Failed(SaslError::Cancelled));
        assert_eq!(plain(b"%%%"), Step::Failed(SaslError::BadBase64));
        for bad in [&b"alice\0pw"[..], b"\0\0pw", b"\0alice\0", b"\0\xff\0pw"] {
            assert!(
                matches!(
                    plain(encode(bad).as_bytes()),
                    Step::Failed(SaslError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        let (mut x, _) = Exchange::start(Mechanism::Login, None);
        assert_eq!(x.respond(b"*"), Step::Failed(SaslError::Cancelled));
        assert!(matches!(
            x.respond(b"YQ=="),
            Step::Failed(SaslError::Malformed(_))
        ));
    }

    #[test]
    fn login_takes_the_user_name_as_initial_response() {
        let (mut x, step) = Exchange::start(Mechanism::Login, Some(b"YWxpY2U="));
        assert_eq!(step, Step::Challenge(b"Password:".to_vec()));
        let Step::Done(c) = x.respond(b"cHc=") else {
            panic!()
        };
        assert_eq!(
            (c.user.as_str(), c.password.expose()),
            ("alice", &b"pw"[..])
        );
        assert!(!format!("{c:?}").contains("pw\""));
    }
}
