//! `buzon ui`: the mail merge as a local web page (server, recipients, message, check, test,
//! send), over the same engine, journal and results as `buzon send`.
//!
//! The page is served on 127.0.0.1 with a random access key in its URL, so other users of the
//! machine cannot drive it, and every asset is in the binary (no request leaves the machine).
//! The campaign lives in a folder ([`workspace`]), so closing the tab, or buzon, loses nothing.

mod api;
mod http;
mod lint;
mod probe;
mod runner;
mod simulator;
mod words;
mod workspace;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Args;

use crate::settings::Runtime;

/// `buzon ui` flags.
#[derive(Debug, Args)]
pub(crate) struct UiArgs {
    /// Address for the page. Anything but loopback lets other machines reach it (the access
    /// key is still needed).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8025")]
    listen: SocketAddr,
    /// The campaign folder (settings, CSV, journal, results, attachments)
    /// [default: $XDG_DATA_HOME/buzon/ui, else ~/.local/share/buzon/ui].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Open the page in the default browser.
    #[arg(long)]
    open: bool,
    /// Name given in EHLO and in Message-IDs [default: the machine's host name].
    #[arg(long, value_name = "NAME")]
    helo: Option<String>,
    /// Trust the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Event loop for sending.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
}

pub(crate) fn run(args: UiArgs) -> anyhow::Result<ExitCode> {
    crate::serve::init_logging("warn");
    let dir = match args.dir {
        Some(d) => d,
        None => default_dir()?,
    };
    let ws = Arc::new(workspace::Workspace::open(&dir)?);
    let settings = ws.settings()?;
    let loaded = ws
        .csv()?
        .and_then(|(bytes, name)| api::Loaded::parse(&bytes, &name).ok());
    let hub = Arc::new(runner::Hub::load(
        &ws,
        loaded.as_ref().map(|l| &l.recipients),
    ));
    let listener = TcpListener::bind(args.listen).with_context(|| {
        format!(
            "cannot listen on {} (another buzon ui? give --listen 127.0.0.1:0 for any free port)",
            args.listen
        )
    })?;
    let addr = listener.local_addr()?;
    let token = new_token()?;
    let app = Arc::new(api::App {
        ws: ws.clone(),
        hub: hub.clone(),
        settings: Mutex::new(settings),
        password: Mutex::new(runner::Password::default()),
        recipients: Mutex::new(loaded.map(Arc::new)),
        size_limit: Mutex::new(None),
        options: runner::Options {
            helo: args.helo.unwrap_or_else(crate::settings::system_hostname),
            runtime: args.runtime,
            ca_file: args.ca_file,
        },
        token: token.clone(),
        addr,
    });
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let url = format!("http://{shown}/?token={token}");
    // Printed even when nobody reads stdout any more (a closed pipe is not an error here).
    {
        use std::io::Write as _;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "buzon ui: open {url}");
        let _ = writeln!(out, "campaign folder: {}", dir.display());
        let _ = out.flush();
    }
    if args.open {
        open_browser(&url);
    }
    {
        let (hub, dir) = (hub.clone(), dir.clone());
        crate::serve::watch_signals(
            move || {
                // A run going on finishes its messages in flight and is journalled: the next
                // start shows it paused, and Resume goes on.
                hub.shut_down();
                println!(
                    "buzon ui: stopped; the campaign is kept in {}",
                    dir.display()
                );
                std::process::exit(0);
            },
            None,
        )?;
    }
    http::serve(listener, app)?;
    Ok(ExitCode::SUCCESS)
}

fn default_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("buzon").join("ui"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("no HOME: give the campaign folder with --dir")?;
    Ok(PathBuf::from(home).join(".local/share/buzon/ui"))
}

/// 128 random bits, hex.
fn new_token() -> anyhow::Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no random numbers for the access key"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Starts the desktop's browser; a failure is only a warning (the URL is printed).
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        eprintln!("buzon: warning: cannot start a browser ({opener}: {e}); open the address above");
    }
}
