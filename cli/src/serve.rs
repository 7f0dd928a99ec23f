//! `buzon serve`: wires settings, storage and the SMTP host to the chosen runtime.

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mailstore::{MailStore, StoreOptions};
use smtp_core::policy::LocalDomains;

use crate::host::{ConnectionLimits, SmtpService};
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
    let addr = SocketAddr::new(settings.bind, settings.port);
    let listener = TcpListener::bind(addr).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => " (is another server running on that port?)",
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
            _ => "",
        };
        anyhow::anyhow!("cannot listen on {addr}: {e}{hint}")
    })?;
    if !settings.fsync {
        tracing::warn!("--unsafe-no-fsync: accepted mail can be lost if the machine crashes");
    }
    tracing::info!(
        %addr,
        domains = %settings.domains.join(","),
        storage = %settings.storage.display(),
        runtime = ?settings.runtime,
        "buzon SMTP server ready"
    );
    let service = Arc::new(SmtpService {
        config: Arc::new(settings.smtp.clone()),
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
    match settings.runtime {
        Runtime::Smol => {
            let shutdown = adapter_smol::Shutdown::new();
            let trigger = shutdown.clone();
            watch_signals(move || trigger.trigger())?;
            let opts = adapter_smol::Options {
                max_connections: hard_cap,
                ..Default::default()
            };
            adapter_smol::run(listener, service, shutdown, opts).context("smol runtime")?;
        }
        Runtime::Mio => {
            let opts = adapter_mio::Options {
                max_connections: hard_cap,
                ..Default::default()
            };
            let server =
                adapter_mio::Server::new(listener, service, opts).context("mio runtime")?;
            let trigger = server.shutdown_handle();
            watch_signals(move || trigger.trigger())?;
            server.run().context("mio runtime")?;
        }
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
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
