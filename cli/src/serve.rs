//! `buzon serve`: wires settings, storage and the SMTP host to the chosen runtime.

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mailstore::{MailStore, StoreOptions};
use smtp_core::policy::LocalDomains;

use crate::certs::Certs;
use crate::host::{ConnectionLimits, SmtpService};
use crate::imap_host::ImapService;
use crate::logins::Logins;
use crate::nntp_host::NntpService;
use crate::settings::{Runtime, ServeArgs, Settings};

/// What a listener is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Mail for the local domains (port 25's job): no AUTH needed.
    Mx,
    /// Mail from the users (RFC 6409): AUTH before MAIL, own addresses only.
    Submission,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging("info");
    let settings = Settings::resolve(args)?;
    let store = MailStore::open_with(
        &settings.storage,
        StoreOptions::new()
            .hostname(settings.hostname.clone())
            .fsync(settings.fsync)
            .group_commit(settings.commit == crate::settings::Commit::Group),
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
    // The accounts and the certificate (made now if there is none) are ready before any
    // port is bound: a client that connects at once finds the server complete.
    let users = accounts::UserFile::new(&settings.users.0);
    let users = if settings.users.1 {
        accounts::LiveUsers::open(users)
    } else {
        accounts::LiveUsers::open_optional(users)
    }
    .context("users file")?;
    let certs = Arc::new(Certs::load(
        settings.tls.as_ref(),
        &settings.storage,
        &settings.hostname,
    )?);
    let at = |port| SocketAddr::new(settings.bind, port);
    // Every port is bound before anything is served, so a busy one fails the start at once.
    let mut sockets = vec![(bind(at(settings.port))?, Role::Mx, false)];
    if let Some(port) = settings.tls_port {
        sockets.push((bind(at(port))?, Role::Mx, true));
    }
    if let Some((starttls, implicit)) = settings.submission {
        sockets.push((bind(at(starttls))?, Role::Submission, false));
        sockets.push((bind(at(implicit))?, Role::Submission, true));
    }
    let mut imap_sockets = Vec::new();
    if let Some(port) = settings.imap {
        imap_sockets.push((bind(at(port))?, false));
    }
    if let Some(port) = settings.imaps {
        imap_sockets.push((bind(at(port))?, true));
    }
    let mut nntp_sockets = Vec::new();
    if let Some(port) = settings.nntp {
        nntp_sockets.push((bind(at(port))?, false));
    }
    if let Some(port) = settings.nntps {
        nntp_sockets.push((bind(at(port))?, true));
    }
    // Logged only now, so that a failed start prints nothing but its error.
    certs.log(settings.tls.is_none());
    if users.is_configured() {
        tracing::info!(file = %settings.users.0.display(), accounts = users.current().len(), "accounts loaded");
    } else {
        tracing::info!(file = %settings.users.0.display(), "no users file yet: any local part of a local domain receives mail; `buzon user add` makes one");
    }
    let tls = Arc::new(certs.store.server_config());
    let sockets: Vec<_> = sockets
        .into_iter()
        .map(|(socket, role, implicit)| {
            let mode = if implicit {
                conn_driver::TlsMode::Implicit(tls.clone())
            } else {
                conn_driver::TlsMode::StartTls(tls.clone())
            };
            (socket, role, mode)
        })
        .collect();
    if !settings.fsync {
        tracing::warn!("--unsafe-no-fsync: accepted mail can be lost if the machine crashes");
    }
    let logins = Arc::new(Logins::new(users));
    let connections = Arc::new(ConnectionLimits::new(
        settings.max_connections,
        settings.max_connections_per_ip,
    ));
    let service_for = |role: Role| {
        let mut smtp = settings.smtp.clone();
        smtp.auth.offered = true;
        smtp.auth.required = role == Role::Submission;
        let loopback_config = settings.plaintext_auth_on_loopback.then(|| {
            let mut c = smtp.clone();
            c.auth.plaintext = true;
            Arc::new(c)
        });
        Arc::new(SmtpService {
            config: Arc::new(smtp),
            loopback_config,
            logins: Some(logins.clone()),
            policy: LocalDomains::new(&settings.domains),
            store: store.clone(),
            record_dir: settings.record.clone(),
            connections: connections.clone(),
        })
    };
    let (mx, submission) = (service_for(Role::Mx), service_for(Role::Submission));
    let imap_for = |implicit_tls: bool| {
        let mut config = imap_core::ServerConfig::new(settings.hostname.clone());
        config.starttls = !implicit_tls;
        let loopback_config = settings.plaintext_auth_on_loopback.then(|| {
            let mut c = config.clone();
            c.plaintext_auth = true;
            Arc::new(c)
        });
        Arc::new(ImapService {
            config: Arc::new(config),
            loopback_config,
            implicit_tls,
            logins: logins.clone(),
            store: store.clone(),
        })
    };
    let (imap, imaps) = (imap_for(false), imap_for(true));
    // Notices are kept whether or not NNTP is served (the feed and a later start read them).
    let notices = {
        let mut options = notices::NoticeOptions::new(settings.hostname.clone());
        let url_host = if settings.bind.is_unspecified() {
            settings.hostname.clone()
        } else {
            settings.bind.to_string()
        };
        options.imap = settings.imap.map(|p| (url_host, p));
        options.keep = settings.notice_keep;
        options.max_age = settings.notice_age;
        options.fsync = settings.fsync;
        notices::Notices::new(store.clone(), options)
    };
    // The feed's queue takes each notice before it is stored: set up before the notifier.
    let _feed = match &settings.notify_nntp {
        Some(target) => Some(crate::feed::start(
            target.clone(),
            &settings.storage.join(".buzon-feed"),
            settings.fsync,
            &notices,
            settings.runtime,
        )?),
        None => None,
    };
    // The notifier runs only when someone can read the notices.
    let _watching =
        if settings.nntp.is_some() || settings.nntps.is_some() || settings.notify_nntp.is_some() {
            Some(
                notices
                    .watch()
                    .context("cannot start the new-mail notifier")?,
            )
        } else {
            None
        };
    let nntp_for = |implicit_tls: bool| {
        let mut config = nntp_core::ServerConfig::new(settings.hostname.clone());
        config.starttls = !implicit_tls;
        let loopback_config = settings.plaintext_auth_on_loopback.then(|| {
            let mut c = config.clone();
            c.plaintext_auth = true;
            Arc::new(c)
        });
        Arc::new(NntpService {
            config: Arc::new(config),
            loopback_config,
            implicit_tls,
            logins: logins.clone(),
            notices: notices.clone(),
        })
    };
    let (nntp, nntps) = (nntp_for(false), nntp_for(true));
    for (socket, role, mode) in &sockets {
        let tls = if mode.is_implicit() {
            "implicit TLS"
        } else {
            "STARTTLS"
        };
        let what = match role {
            Role::Mx => "SMTP (mail for the local domains)",
            Role::Submission => "submission (AUTH required)",
        };
        tracing::info!(addr = %socket.local_addr()?, tls, "{what} ready");
    }
    for (socket, implicit) in &imap_sockets {
        let tls = if *implicit {
            "implicit TLS"
        } else {
            "STARTTLS"
        };
        tracing::info!(addr = %socket.local_addr()?, tls, "IMAP ready");
    }
    for (socket, implicit) in &nntp_sockets {
        let tls = if *implicit {
            "implicit TLS"
        } else {
            "STARTTLS"
        };
        tracing::info!(addr = %socket.local_addr()?, tls, "NNTP (new-mail notices) ready");
    }
    let nntp_listeners: Vec<_> = nntp_sockets
        .into_iter()
        .map(|(socket, implicit)| {
            let (service, mode) = if implicit {
                (
                    Arc::clone(&nntps),
                    conn_driver::TlsMode::Implicit(tls.clone()),
                )
            } else {
                (
                    Arc::clone(&nntp),
                    conn_driver::TlsMode::StartTls(tls.clone()),
                )
            };
            (socket, service, Some(mode))
        })
        .collect();
    let imap_listeners: Vec<_> = imap_sockets
        .into_iter()
        .map(|(socket, implicit)| {
            let (service, mode) = if implicit {
                (
                    Arc::clone(&imaps),
                    conn_driver::TlsMode::Implicit(tls.clone()),
                )
            } else {
                (
                    Arc::clone(&imap),
                    conn_driver::TlsMode::StartTls(tls.clone()),
                )
            };
            (socket, service, Some(mode))
        })
        .collect();
    tracing::info!(
        domains = %settings.domains.join(","),
        storage = %settings.storage.display(),
        runtime = ?settings.runtime,
        "buzon serving"
    );
    let listeners: Vec<_> = sockets
        .into_iter()
        .map(|(socket, role, mode)| {
            let service = match role {
                Role::Mx => Arc::clone(&mx),
                Role::Submission => Arc::clone(&submission),
            };
            (socket, service, Some(mode))
        })
        .collect();
    // The adapters hold connections beyond this in the kernel's backlog; below it the host
    // answers the ones over its limits with 421 instead of leaving them waiting.
    let hard_cap = Some(
        settings
            .max_connections
            .saturating_mul(2)
            .saturating_add(64),
    );
    let reload: Option<Box<dyn Fn() + Send>> = {
        let certs = Arc::clone(&certs);
        Some(Box::new(move || certs.reload()))
    };
    match settings.runtime {
        Runtime::Smol => {
            let shutdown = adapter_smol::Shutdown::new();
            let trigger = shutdown.clone();
            watch_signals(move || trigger.trigger(), reload)?;
            let opts = adapter_smol::Options {
                max_connections: hard_cap,
                // One executor thread, like mio's one loop per protocol: storage, logins and
                // the spool's flushes have threads of their own, and a session's few
                // microseconds of protocol work cannot pay for waking a second executor
                // thread (2 KiB, 1 session: 1.25x the rate and 25-30% less CPU per message,
                // no change at 64 sessions; docs/benchmarks.md, "Group commit").
                threads: Some(1),
                ..Default::default()
            };
            let listeners = listeners
                .into_iter()
                .map(|(socket, service, tls)| adapter_smol::Listener::new(socket, service, tls))
                .chain(imap_listeners.into_iter().map(|(socket, service, tls)| {
                    adapter_smol::Listener::new(socket, service, tls)
                }))
                .chain(nntp_listeners.into_iter().map(|(socket, service, tls)| {
                    adapter_smol::Listener::new(socket, service, tls)
                }))
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
                .map(|(socket, service, tls)| adapter_mio::Listener {
                    socket,
                    service,
                    tls,
                })
                .collect();
            // One event loop per protocol (see docs/architecture.md, "Listeners").
            let mut servers = adapter_mio::Servers::default();
            servers.add(
                adapter_mio::Server::with_listeners(listeners, opts.clone())
                    .context("mio runtime")?,
            );
            if !imap_listeners.is_empty() {
                let imap_listeners = imap_listeners
                    .into_iter()
                    .map(|(socket, service, tls)| adapter_mio::Listener {
                        socket,
                        service,
                        tls,
                    })
                    .collect();
                servers.add(
                    adapter_mio::Server::with_listeners(imap_listeners, opts.clone())
                        .context("mio runtime")?,
                );
            }
            if !nntp_listeners.is_empty() {
                let nntp_listeners = nntp_listeners
                    .into_iter()
                    .map(|(socket, service, tls)| adapter_mio::Listener {
                        socket,
                        service,
                        tls,
                    })
                    .collect();
                servers.add(
                    adapter_mio::Server::with_listeners(nntp_listeners, opts)
                        .context("mio runtime")?,
                );
            }
            let trigger = servers.shutdown_handle();
            watch_signals(move || trigger.trigger(), reload)?;
            servers.run().context("mio runtime")?;
        }
    }
    // Every delivery into its Maildir for good, so the next start has nothing to replay.
    if let Err(e) = store.checkpoint() {
        tracing::warn!(error = %e, "spool checkpoint at shutdown failed; the next start replays it");
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

/// Calls `stop` on the first SIGINT or SIGTERM (the runtime then stops accepting, lets
/// deliveries in flight finish and returns) and `reload` on each SIGHUP.
pub(crate) fn watch_signals(
    stop: impl Fn() + Send + 'static,
    reload: Option<Box<dyn Fn() + Send>>,
) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut wanted = vec![SIGINT, SIGTERM];
    if reload.is_some() {
        wanted.push(SIGHUP);
    }
    let mut signals =
        signal_hook::iterator::Signals::new(wanted).context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("buzon-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if let (SIGHUP, Some(reload)) = (sig, &reload) {
                    tracing::info!("SIGHUP: re-reading the TLS certificate");
                    reload();
                    continue;
                }
                tracing::info!(signal = sig, "shutting down");
                stop();
                break;
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
