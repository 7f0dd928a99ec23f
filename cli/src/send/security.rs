//! TLS and login for `buzon send`: which TLS, whose certificates to trust, and the password.
//!
//! Certificates are verified by default, against the system's roots (`rustls-native-certs`)
//! or the PEM file of `--ca-file`; `--insecure-skip-verify` turns that off, for labs. A
//! password is read from `BUZON_SMTP_PASSWORD` or asked for at the terminal, never from a
//! flag (which `ps` shows), and never sent without TLS.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use conn_driver::TlsMode;
use conn_driver::rustls::{self, ClientConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use smtp_core::client::{ClientLogin, StartTls};

/// How the sender uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TlsChoice {
    /// STARTTLS, required: a server without it gets nothing.
    Starttls,
    /// TLS from the first byte (port 465 and the like).
    Implicit,
    /// Plain SMTP; no password can be used.
    None,
}

/// The TLS and login flags of `buzon send`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SecurityArgs {
    /// starttls, implicit or none [default: STARTTLS when the server offers it, required with
    /// --user].
    #[arg(long, value_enum, value_name = "MODE")]
    tls: Option<TlsChoice>,
    /// Log in as USER (AUTH PLAIN or LOGIN, as the server offers). The password comes from
    /// BUZON_SMTP_PASSWORD, or is asked for at the terminal.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Trust the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Do not verify the server's certificate (anyone in the path can read the mail and the
    /// password): for test setups only.
    #[arg(long)]
    insecure_skip_verify: bool,
}

/// What every connection of a run uses.
pub(crate) struct Security {
    pub starttls: StartTls,
    pub tls: Option<TlsMode>,
    pub login: Option<ClientLogin>,
    /// For messages: "STARTTLS", "TLS" or "plain".
    pub describe: &'static str,
}

impl SecurityArgs {
    /// The flags as the page sets them.
    pub(crate) fn new(
        tls: Option<TlsChoice>,
        user: Option<String>,
        ca_file: Option<PathBuf>,
        insecure_skip_verify: bool,
    ) -> SecurityArgs {
        SecurityArgs {
            tls,
            user,
            ca_file,
            insecure_skip_verify,
        }
    }

    /// Checks the flags, reads the password and builds the TLS configuration for `host`.
    pub(crate) fn resolve(&self, host: &str) -> anyhow::Result<Security> {
        let password = match &self.user {
            Some(user) => Some(read_password(user)?),
            None => None,
        };
        self.resolve_with(host, password)
    }

    /// [`resolve`](Self::resolve) with the password given (the page holds it).
    pub(crate) fn resolve_with(
        &self,
        host: &str,
        password: Option<String>,
    ) -> anyhow::Result<Security> {
        let choice = self.tls;
        if self.user.is_some() && choice == Some(TlsChoice::None) {
            bail!("--user with --tls none: a password is never sent without TLS");
        }
        let login = match (&self.user, password) {
            (Some(user), Some(password)) => Some(ClientLogin::new(user.clone(), password)),
            (Some(user), None) => bail!("no password for {user}"),
            (None, _) => None,
        };
        let starttls = match choice {
            Some(TlsChoice::Starttls) => StartTls::Required,
            Some(TlsChoice::Implicit | TlsChoice::None) => StartTls::Never,
            None if login.is_some() => StartTls::Required,
            None => StartTls::IfOffered,
        };
        let describe = match (choice, starttls) {
            (Some(TlsChoice::Implicit), _) => "TLS",
            (Some(TlsChoice::None), _) => "plain",
            (_, StartTls::Required) => "STARTTLS",
            _ => "STARTTLS if offered",
        };
        let tls = if choice == Some(TlsChoice::None) {
            None
        } else {
            let config = Arc::new(self.client_config()?);
            let name = ServerName::try_from(host.to_owned())
                .with_context(|| format!("--server: {host:?} is not a host name or address"))?;
            Some(if choice == Some(TlsChoice::Implicit) {
                TlsMode::ClientImplicit(config, name)
            } else {
                TlsMode::ClientStartTls(config, name)
            })
        };
        Ok(Security {
            starttls,
            tls,
            login,
            describe,
        })
    }

    fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS setup")?;
        if self.insecure_skip_verify {
            return Ok(builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerifier(provider)))
                .with_no_client_auth());
        }
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("cannot read --ca-file {}", path.display()))?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| anyhow::anyhow!("--ca-file {}: not PEM: {e}", path.display()))?;
                if certs.is_empty() {
                    bail!("--ca-file {}: no CERTIFICATE in it", path.display());
                }
                for cert in certs {
                    roots.add(cert).with_context(|| {
                        format!("--ca-file {}: a certificate cannot be used", path.display())
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // A system root rustls cannot parse is skipped, as browsers do.
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    bail!(
                        "no trusted root certificates on this system: give --ca-file (or --insecure-skip-verify)"
                    );
                }
            }
        }
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    }
}

/// The password for `user`: BUZON_SMTP_PASSWORD, or asked for at the terminal.
fn read_password(user: &str) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("BUZON_SMTP_PASSWORD") {
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        bail!("--user {user}: set BUZON_SMTP_PASSWORD, or run at a terminal to be asked");
    }
    Ok(rpassword::prompt_password(format!(
        "password for {user}: "
    ))?)
}

/// Accepts any certificate (`--insecure-skip-verify`), still checking the handshake's
/// signatures so that the connection is at least TLS.
#[derive(Debug)]
struct NoVerifier(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
