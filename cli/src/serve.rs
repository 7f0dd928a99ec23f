//! `buzon serve`: wires settings, storage and the SMTP host to the chosen runtime.

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mailstore::{MailStore, StoreOptions};
use smtp_core::policy::LocalDomains;

use crate::host::{ConnectionLimits, SmtpService};
use crate::logins::Logins;
use crate::settings::{Runtime, ServeArgs, Settings};

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging("info");
    let settings = Settings::resolve(args)?;
    let store = MailStore::open_with(
        &settings.storage,
        StoreOptions::new()
            .hostname(settings.hostname.clone())
            .fsync(settings.fsync),
    )
    .with_context(|| format!("storage folder {}", settings.storage.display()))?;
    let cleaned = store
        .clean_tmp()
        .with_context(|| format!("cleaning tmp/ under {}", settings.storage.display()))?;
    if cleaned > 0 {
        tracing::info!(files = cleaned, "removed unfinished deliveries from tmp/");
    }
    if let Some(dir) = &settings.record {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --record folder {}", dir.display()))?;
    }
    let tls = settings.tls.as_ref().map(load_tls).transpose()?;
    let addr = SocketAddr::new(settings.bind, settings.port);
    let listener = bind(addr)?;
    let tls_listener = match settings.tls_port {
        Some(port) => Some(bind(SocketAddr::new(settings.bind, port))?),
        None => None,
    };
    if !settings.fsync {
        tracing::warn!("--unsafe-no-fsync: accepted mail can be lost if the machine crashes");
    }
    tracing::info!(
        %addr,
        domains = %settings.domains.join(","),
        storage = %settings.storage.display(),
        runtime = ?settings.runtime,
        starttls = tls.is_some(),
        "buzon SMTP server ready"
    );
    if let Some(port) = settings.tls_port {
        tracing::info!(addr = %SocketAddr::new(settings.bind, port), "SMTP over implicit TLS ready");
    }
    let logins = open_users(&settings)?.map(|users| Arc::new(Logins::new(users)));
    let mut smtp = settings.smtp.clone();
    smtp.auth.offered = logins.is_some();
    let loopback_config = (logins.is_some() && settings.plaintext_auth_on_loopback).then(|| {
        let mut c = smtp.clone();
        c.auth.plaintext = true;
        Arc::new(c)
    });
    let service = Arc::new(SmtpService {
        config: Arc::new(smtp),
        loopback_config,
        logins,
        policy: LocalDomains::new(&settings.domains),
        store,
        record_dir: settings.record.clone(),
        connections: Arc::new(ConnectionLimits::new(
            settings.max_connections,
            settings.max_connections_per_ip,
        )),
    });
    // The adapters hold connections beyond this in the kernel's backlog; below it the host
    // answers the ones over its limits with 421 instead of leaving them waiting.
    let hard_cap = Some(
        settings
            .max_connections
            .saturating_mul(2)
            .saturating_add(64),
    );
    // The SMTP port, with STARTTLS when there is a certificate; then the implicit-TLS port.
    let mut listeners = vec![(listener, tls.clone().map(conn_driver::TlsMode::StartTls))];
    if let (Some(socket), Some(config)) = (tls_listener, tls) {
        listeners.push((socket, Some(conn_driver::TlsMode::Implicit(config))));
    }
    match settings.runtime {
        Runtime::Smol => {
            let shutdown = adapter_smol::Shutdown::new();
            let trigger = shutdown.clone();
            watch_signals(move || trigger.trigger())?;
            let opts = adapter_smol::Options {
                max_connections: hard_cap,
                ..Default::default()
            };
            let listeners = listeners
                .into_iter()
                .map(|(socket, tls)| adapter_smol::Listener::new(socket, Arc::clone(&service), tls))
                .collect();
            adapter_smol::run_listeners(listeners, shutdown, opts).context("smol runtime")?;
        }
        Runtime::Mio => {
            let opts = adapter_mio::Options {
                max_connections: hard_cap,
                ..Default::default()
            };
            let listeners = listeners
                .into_iter()
                .map(|(socket, tls)| adapter_mio::Listener {
                    socket,
                    service: Arc::clone(&service),
                    tls,
                })
                .collect();
            let server =
                adapter_mio::Server::with_listeners(listeners, opts).context("mio runtime")?;
            let trigger = server.shutdown_handle();
            watch_signals(move || trigger.trigger())?;
            server.run().context("mio runtime")?;
        }
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Binds a listening socket, saying what to do when that fails.
fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => " (is another server running on that port?)",
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
            _ => "",
        };
        anyhow::anyhow!("cannot listen on {addr}: {e}{hint}")
    })
}

/// Reads the certificate chain and key (PEM) into a TLS server configuration.
fn load_tls(
    (cert, key): &(std::path::PathBuf, std::path::PathBuf),
) -> anyhow::Result<Arc<conn_driver::rustls::ServerConfig>> {
    let cert_pem = std::fs::read(cert)
        .with_context(|| format!("cannot read --tls-cert {}", cert.display()))?;
    let key_pem =
        std::fs::read(key).with_context(|| format!("cannot read --tls-key {}", key.display()))?;
    conn_driver::server_config_from_pem(&cert_pem, &key_pem).with_context(|| {
        format!(
            "--tls-cert {} / --tls-key {}",
            cert.display(),
            key.display()
        )
    })
}

/// Calls `stop` on the first SIGINT or SIGTERM; the runtime then stops accepting, lets
/// deliveries in flight finish and returns.
pub(crate) fn watch_signals(stop: impl Fn() + Send + 'static) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("buzon-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                tracing::info!(signal = sig, "shutting down");
                stop();
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

pub(crate) fn init_logging(default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("BUZON_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The accounts, if there is a users file: one named with `--users` must exist and be valid;
/// the default one under the storage root is used if it exists.
fn open_users(settings: &Settings) -> anyhow::Result<Option<accounts::LiveUsers>> {
    let (path, required) = &settings.users;
    let file = accounts::UserFile::new(path);
    if !required && !file.exists() {
        tracing::info!(file = %path.display(), "no users file: any local part of a local domain receives mail, AUTH is off");
        return Ok(None);
    }
    let users = accounts::LiveUsers::open(file).context("users file")?;
    tracing::info!(file = %path.display(), accounts = users.current().len(), "accounts loaded");
    Ok(Some(users))
}
