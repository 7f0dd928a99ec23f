//! The TLS transport: rustls's connection (server or client side), which is sans-IO already,
//! between the socket's bytes and the session's plaintext. One implementation for every runtime
//! and protocol.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use session_api::TlsInfo;

/// How a connection uses TLS: a listener's connections (the server side) or a connection we
/// opened (the client side, as `buzon send` does).
#[derive(Clone)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain at first; the session may ask for TLS (`STARTTLS`).
    StartTls(Arc<ServerConfig>),
    /// TLS from the first byte (SMTP submission on 465, IMAPS, NNTPS).
    Implicit(Arc<ServerConfig>),
    /// Client side, plain at first: the session asks for TLS after the server said yes to its
    /// STARTTLS; the server's certificate must be valid for the name.
    ClientStartTls(Arc<ClientConfig>, ServerName<'static>),
    /// Client side, TLS from the first byte.
    ClientImplicit(Arc<ClientConfig>, ServerName<'static>),
}

impl TlsMode {
    /// Whether this mode starts with TLS.
    pub fn is_implicit(&self) -> bool {
        matches!(self, TlsMode::Implicit(_) | TlsMode::ClientImplicit(..))
    }

    /// The end of the TLS session this mode makes, and whether it starts at once.
    pub(crate) fn into_end(self) -> (End, bool) {
        match self {
            TlsMode::StartTls(c) => (End::Server(c), false),
            TlsMode::Implicit(c) => (End::Server(c), true),
            TlsMode::ClientStartTls(c, name) => (End::Client(c, name), false),
            TlsMode::ClientImplicit(c, name) => (End::Client(c, name), true),
        }
    }
}

/// Which end of a TLS session a connection is, with its configuration.
#[derive(Clone)]
pub(crate) enum End {
    Server(Arc<ServerConfig>),
    Client(Arc<ClientConfig>, ServerName<'static>),
}

impl fmt::Debug for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsMode::StartTls(_) => f.write_str("StartTls"),
            TlsMode::Implicit(_) => f.write_str("Implicit"),
            TlsMode::ClientStartTls(_, name) => write!(f, "ClientStartTls({})", name.to_str()),
            TlsMode::ClientImplicit(_, name) => write!(f, "ClientImplicit({})", name.to_str()),
        }
    }
}

impl PartialEq for TlsMode {
    /// The same mode with the same configuration object (and server name).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (TlsMode::StartTls(a), TlsMode::StartTls(b))
            | (TlsMode::Implicit(a), TlsMode::Implicit(b)) => Arc::ptr_eq(a, b),
            (TlsMode::ClientStartTls(a, x), TlsMode::ClientStartTls(b, y))
            | (TlsMode::ClientImplicit(a, x), TlsMode::ClientImplicit(b, y)) => {
                Arc::ptr_eq(a, b) && x == y
            }
            _ => false,
        }
    }
}

impl Eq for TlsMode {}

/// A certificate or key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfigError(String);

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsConfigError {}

/// A server configuration (ring provider, TLS 1.2 and 1.3, no client certificates) from PEM
/// text: a certificate chain, leaf first, and its private key (PKCS#8, PKCS#1 or SEC1).
///
/// ```
/// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// let config = conn_driver::server_config_from_pem(
///     cert.cert.pem().as_bytes(),
///     cert.signing_key.serialize_pem().as_bytes(),
/// )?;
/// # let _ = config;
/// assert!(conn_driver::server_config_from_pem(b"", b"").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let store = Arc::new(ReloadableCert::from_pem(cert_pem, key_pem)?);
    Ok(Arc::new(store.server_config()))
}

/// A certificate and key that can be replaced while connections use them: the next handshake
/// gets the new pair, handshakes already done keep theirs. For a certificate renewed on disk
/// and re-read on SIGHUP.
///
/// ```
/// use std::sync::Arc;
/// use conn_driver::ReloadableCert;
///
/// let pem = |c: &rcgen::CertifiedKey<rcgen::KeyPair>| {
///     (c.cert.pem(), c.signing_key.serialize_pem())
/// };
/// let (cert, key) = pem(&rcgen::generate_simple_self_signed(vec!["localhost".into()])?);
/// let store = Arc::new(ReloadableCert::from_pem(cert.as_bytes(), key.as_bytes())?);
/// let config = store.server_config(); // for every listener
/// let (cert2, key2) = pem(&rcgen::generate_simple_self_signed(vec!["localhost".into()])?);
/// store.reload(cert2.as_bytes(), key2.as_bytes())?;
/// assert!(store.reload(b"junk", key2.as_bytes()).is_err()); // the old pair stays
/// # let _ = config;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ReloadableCert {
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl ReloadableCert {
    /// Reads a certificate chain (leaf first) and its private key from PEM text.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsConfigError> {
        Ok(ReloadableCert {
            current: std::sync::RwLock::new(Arc::new(certified_key(cert_pem, key_pem)?)),
        })
    }

    /// Replaces the pair for the handshakes to come; on an error the old one stays.
    pub fn reload(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), TlsConfigError> {
        let key = Arc::new(certified_key(cert_pem, key_pem)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
        Ok(())
    }

    /// The leaf certificate now in use, DER-encoded (for its fingerprint).
    pub fn leaf_der(&self) -> Vec<u8> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.cert.first().map(|c| c.to_vec()).unwrap_or_default()
    }

    /// A server configuration (ring provider, TLS 1.2 and 1.3, no client certificates) that
    /// takes its certificate from this store at every handshake.
    pub fn server_config(self: &Arc<Self>) -> ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn rustls::server::ResolvesServerCert>)
    }
}

impl rustls::server::ResolvesServerCert for ReloadableCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::sign::CertifiedKey, TlsConfigError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError(format!("the certificate file is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(TlsConfigError(
            "the certificate file holds no CERTIFICATE block".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsConfigError(format!("the key file holds no usable private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| TlsConfigError(format!("the certificate and key do not go together: {e}")))
}

/// One connection's TLS state.
pub(crate) struct TlsTransport {
    conn: rustls::Connection,
    /// The handshake's end has been reported.
    told: bool,
    /// `close_notify` has been queued.
    closing: bool,
    /// Plaintext from the session on its way in, kept for its capacity.
    pub(crate) plain: Vec<u8>,
}

impl TlsTransport {
    pub(crate) fn new(end: End) -> io::Result<Self> {
        let mut conn: rustls::Connection = match end {
            End::Server(config) => ServerConnection::new(config)
                .map_err(io::Error::other)?
                .into(),
            End::Client(config, name) => ClientConnection::new(config, name)
                .map_err(io::Error::other)?
                .into(),
        };
        // The driver bounds its own output and moves every record out at once, so rustls's
        // limit on buffered plaintext (which would make writes partial before the handshake
        // ends) is not needed.
        conn.set_buffer_limit(None);
        Ok(TlsTransport {
            conn,
            told: false,
            closing: false,
            plain: Vec::new(),
        })
    }

    /// Feeds bytes from the socket; appends the plaintext they carry to `plain`. Returns whether
    /// the peer closed the TLS session (`close_notify`). `Err` is a TLS failure; any alert to
    /// send is then left for [`drain`](TlsTransport::drain).
    pub(crate) fn read(&mut self, mut raw: &[u8], plain: &mut Vec<u8>) -> io::Result<bool> {
        let mut closed = false;
        while !raw.is_empty() {
            if self.conn.read_tls(&mut raw)? == 0 {
                break;
            }
            let state = self
                .conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                self.conn.reader().read_exact(&mut plain[start..])?;
            }
            closed |= state.peer_has_closed();
        }
        Ok(closed)
    }

    /// True until the handshake is done.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Encrypts plaintext for the peer (buffered by rustls until the handshake is done).
    pub(crate) fn write(&mut self, plain: &[u8]) {
        // With no buffer limit, rustls takes everything.
        let _ = self.conn.writer().write_all(plain);
    }

    /// Moves every TLS record waiting to be sent to `out`.
    pub(crate) fn drain(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            if self.conn.write_tls(out).unwrap_or(0) == 0 {
                break;
            }
        }
    }

    /// Queues the `close_notify` alert that ends the TLS session cleanly (RFC 8446 section
    /// 6.1); [`drain`](TlsTransport::drain) then has it. Once only.
    pub(crate) fn close(&mut self) -> bool {
        if self.closing {
            return false;
        }
        self.closing = true;
        self.conn.send_close_notify();
        true
    }

    /// Once, when the handshake has completed: what it settled.
    pub(crate) fn take_established(&mut self) -> Option<TlsInfo> {
        if self.told || self.conn.is_handshaking() {
            return None;
        }
        self.told = true;
        let version = match self.conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        };
        let cipher = self
            .conn
            .negotiated_cipher_suite()
            .map(|suite| format!("{:?}", suite.suite()))
            .unwrap_or_default();
        let server_name = match &self.conn {
            rustls::Connection::Server(c) => c.server_name().map(str::to_owned),
            rustls::Connection::Client(_) => None,
        };
        Some(TlsInfo::new(version, cipher, server_name))
    }
}
