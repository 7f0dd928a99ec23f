//! Settings for `buzon serve`: flags, an optional TOML file, and built-in defaults, in that
//! order of precedence.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::Deserialize;

/// The event loop that drives the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Runtime {
    /// smol: a task per connection, storage on blocking threads.
    #[default]
    Smol,
    /// mio: one poll loop, storage on worker threads.
    Mio,
}

/// How deliveries reach the disk (with fsync on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Commit {
    /// Concurrent messages share one flush of the intake spool (group commit).
    #[default]
    Group,
    /// Each message is flushed on its own (file, then new/): the Maildir protocol as written.
    PerMessage,
}

/// `buzon serve` flags. Every one can also be set in the `--config` file; flags win.
#[derive(Debug, Args, Default)]
pub(crate) struct ServeArgs {
    /// TOML file with any of the settings below (see docs/buzon.example.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Domains to accept mail for, comma-separated [default: localhost].
    #[arg(short = 'd', long, value_delimiter = ',', value_name = "DOM1,DOM2")]
    pub domains: Option<Vec<String>>,
    /// Maildir root: mail lands in STORAGE/DOMAIN/USER/new [default: ./mail].
    #[arg(short = 's', long, value_name = "DIR")]
    pub storage: Option<PathBuf>,
    /// TCP port [default: 2525].
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<IpAddr>,
    /// Name in the greeting and Received headers [default: the machine's host name].
    #[arg(long)]
    pub hostname: Option<String>,
    /// Event loop [default: smol].
    #[arg(long, value_enum)]
    pub runtime: Option<Runtime>,
    /// Write each session as a transcript file into DIR.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Largest message in bytes [default: 26214400].
    #[arg(long, value_name = "BYTES")]
    pub max_message_size: Option<u64>,
    /// Most recipients per message [default: 100].
    #[arg(long, value_name = "N")]
    pub max_recipients: Option<usize>,
    /// Bad commands per session before 421 [default: 20].
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u32>,
    /// Longest command line in bytes, CRLF included [default: 512].
    #[arg(long, value_name = "BYTES")]
    pub max_command_line: Option<usize>,
    /// Longest message text line in bytes, CRLF included [default: 1000].
    #[arg(long, value_name = "BYTES")]
    pub max_text_line: Option<usize>,
    /// Seconds to wait for a command [default: 300].
    #[arg(long, value_name = "SECS")]
    pub command_timeout: Option<u64>,
    /// Seconds to wait for the next block of message data [default: 180].
    #[arg(long, value_name = "SECS")]
    pub data_timeout: Option<u64>,
    /// Most simultaneous connections; more are greeted with 421 4.7.0 [default: 1000].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Most simultaneous connections from one address; more get 421 4.7.0 [default: 100].
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// How a message is made durable before its 250 [default: group]
    #[arg(long, value_enum, value_name = "MODE")]
    pub commit: Option<Commit>,
    /// UNSAFE: do not fsync deliveries (mail acknowledged may be lost in a crash).
    #[arg(long)]
    pub unsafe_no_fsync: bool,
    /// PEM certificate chain (leaf first) for TLS [default: a self-signed one made at the
    /// first start, kept in STORAGE/tls/]. Re-read on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also listen on this port for SMTP over implicit TLS (delivery, not submission).
    #[arg(long, value_name = "PORT")]
    pub tls_port: Option<u16>,
    /// Users file (`buzon user add` writes it): recipients must be users or aliases, and SMTP
    /// AUTH checks their passwords [default: STORAGE/users, if it exists].
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Offer and accept AUTH without TLS, for clients on the loopback address only.
    #[arg(long)]
    pub allow_plaintext_auth_on_loopback: bool,
    /// Port of the submission listener (RFC 6409: STARTTLS, then AUTH, before any mail),
    /// standing in for 587 [default: 5870].
    #[arg(long, value_name = "PORT")]
    pub submission_port: Option<u16>,
    /// Port of the submission listener over implicit TLS (RFC 8314), standing in for 465
    /// [default: 4650].
    #[arg(long, value_name = "PORT")]
    pub submissions_port: Option<u16>,
    /// Do not listen for submission at all.
    #[arg(long, conflicts_with_all = ["submission_port", "submissions_port"])]
    pub no_submission: bool,
    /// Port of the IMAP listener (STARTTLS offered), or `off` [default: 1143].
    #[arg(long, value_name = "PORT|off")]
    pub imap: Option<PortOrOff>,
    /// Port of the IMAP listener over implicit TLS (RFC 8314), or `off` [default: 9930].
    #[arg(long, value_name = "PORT|off")]
    pub imaps: Option<PortOrOff>,
    /// Port of the NNTP listener for new-mail notices (STARTTLS offered), or `off`
    /// [default: 1119].
    #[arg(long, value_name = "PORT|off")]
    pub nntp: Option<PortOrOff>,
    /// Port of the NNTP listener over implicit TLS (NNTPS, RFC 8143), or `off`
    /// [default: 5630].
    #[arg(long, value_name = "PORT|off")]
    pub nntps: Option<PortOrOff>,
    /// Notices kept per mailbox's group; older ones expire [default: 1000].
    #[arg(long, value_name = "N")]
    pub notice_keep: Option<usize>,
    /// Days a notice is kept [default: 30].
    #[arg(long, value_name = "DAYS")]
    pub notice_days: Option<u64>,
    /// Also post every notice to this news server's group, from a queue that survives
    /// restarts and outages: `nntp://[user@]host[:port]/group`. The password comes from
    /// BUZON_NOTIFY_NNTP_PASSWORD or the config file's `notify-nntp-password`.
    #[arg(long, value_name = "URL")]
    pub notify_nntp: Option<String>,
}

/// A listener's port, or `off` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PortValue")]
pub(crate) enum PortOrOff {
    /// Listen on this port.
    Port(u16),
    /// Do not listen.
    Off,
}

impl PortOrOff {
    fn port(self) -> Option<u16> {
        match self {
            PortOrOff::Port(p) => Some(p),
            PortOrOff::Off => None,
        }
    }
}

impl std::str::FromStr for PortOrOff {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(PortOrOff::Off);
        }
        s.parse()
            .map(PortOrOff::Port)
            .map_err(|_| format!("{s:?} is neither a port number nor `off`"))
    }
}

/// How a port setting may be written in the TOML file: `1143` or `"off"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum PortValue {
    Number(u16),
    Text(String),
}

impl TryFrom<PortValue> for PortOrOff {
    type Error = String;

    fn try_from(v: PortValue) -> Result<Self, String> {
        match v {
            PortValue::Number(n) => Ok(PortOrOff::Port(n)),
            PortValue::Text(t) => t.parse(),
        }
    }
}

/// The same settings as read from the TOML file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileSettings {
    domains: Option<Vec<String>>,
    storage: Option<PathBuf>,
    port: Option<u16>,
    bind: Option<IpAddr>,
    hostname: Option<String>,
    runtime: Option<Runtime>,
    record: Option<PathBuf>,
    max_message_size: Option<u64>,
    max_recipients: Option<usize>,
    max_errors: Option<u32>,
    max_command_line: Option<usize>,
    max_text_line: Option<usize>,
    command_timeout: Option<u64>,
    data_timeout: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    unsafe_no_fsync: Option<bool>,
    commit: Option<Commit>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_port: Option<u16>,
    users: Option<PathBuf>,
    allow_plaintext_auth_on_loopback: Option<bool>,
    submission_port: Option<u16>,
    submissions_port: Option<u16>,
    no_submission: Option<bool>,
    imap: Option<PortOrOff>,
    imaps: Option<PortOrOff>,
    nntp: Option<PortOrOff>,
    nntps: Option<PortOrOff>,
    notice_keep: Option<usize>,
    notice_days: Option<u64>,
    notify_nntp: Option<String>,
    notify_nntp_password: Option<String>,
}

/// Resolved settings for one server run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub domains: Vec<String>,
    pub storage: PathBuf,
    pub port: u16,
    pub bind: IpAddr,
    pub hostname: String,
    pub runtime: Runtime,
    pub record: Option<PathBuf>,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub fsync: bool,
    pub commit: Commit,
    pub smtp: smtp_core::ServerConfig,
    /// The certificate and key files, when TLS is on.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The implicit-TLS SMTP port, if any.
    pub tls_port: Option<u16>,
    /// The users file, and whether it must exist (named by the operator) or is only used if
    /// it does (the default under the storage root).
    pub users: (PathBuf, bool),
    /// AUTH over plaintext for loopback peers.
    pub plaintext_auth_on_loopback: bool,
    /// The submission ports (STARTTLS, implicit TLS), unless submission is off.
    pub submission: Option<(u16, u16)>,
    /// The IMAP port (STARTTLS), unless off.
    pub imap: Option<u16>,
    /// The IMAP port over implicit TLS, unless off.
    pub imaps: Option<u16>,
    /// The NNTP port (STARTTLS), unless off.
    pub nntp: Option<u16>,
    /// The NNTP port over implicit TLS, unless off.
    pub nntps: Option<u16>,
    /// Notices kept per group.
    pub notice_keep: usize,
    /// How long a notice is kept.
    pub notice_age: std::time::Duration,
    /// The external feed, if any.
    pub notify_nntp: Option<crate::feed::FeedTarget>,
}

impl Settings {
    /// Merges flags over the file over the defaults, and checks the result.
    pub(crate) fn resolve(args: ServeArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let domains: Vec<String> = args
            .domains
            .or(file.domains)
            .unwrap_or_else(|| vec!["localhost".into()])
            .into_iter()
            .map(|d| d.trim().to_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        if domains.is_empty() {
            bail!("--domains: at least one domain is needed");
        }
        for d in &domains {
            if !smtp_core::command::is_valid_helo(d) || d.starts_with('[') {
                bail!("--domains: {d:?} is not a domain name");
            }
        }
        let hostname = match args.hostname.or(file.hostname) {
            Some(h) => h,
            None => system_hostname(),
        };
        if !smtp_core::command::is_valid_helo(&hostname) {
            bail!("--hostname: {hostname:?} is not a domain name");
        }
        let mut smtp = smtp_core::ServerConfig::new(hostname.clone());
        let l = &mut smtp.limits;
        if let Some(v) = args.max_message_size.or(file.max_message_size) {
            l.message_size = v;
        }
        if let Some(v) = args.max_recipients.or(file.max_recipients) {
            if v == 0 {
                bail!("--max-recipients must be at least 1");
            }
            l.recipients = v;
        }
        if let Some(v) = args.max_errors.or(file.max_errors) {
            l.errors = v.max(1);
        }
        if let Some(v) = args.max_command_line.or(file.max_command_line) {
            if v < 512 {
                bail!("--max-command-line must be at least 512 (RFC 5321 section 4.5.3.1.4)");
            }
            l.command_line = v;
        }
        if let Some(v) = args.max_text_line.or(file.max_text_line) {
            if v < 1000 {
                bail!("--max-text-line must be at least 1000 (RFC 5321 section 4.5.3.1.6)");
            }
            l.text_line = v;
        }
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => bail!("--tls-cert needs --tls-key (the certificate's private key)"),
            (None, Some(_)) => bail!("--tls-key needs --tls-cert"),
        };
        let tls_port = args.tls_port.or(file.tls_port);
        // There is always a certificate: the operator's, or the one made at the first start.
        smtp.starttls = true;
        let submission = if args.no_submission || file.no_submission.unwrap_or(false) {
            None
        } else {
            Some((
                args.submission_port
                    .or(file.submission_port)
                    .unwrap_or(5870),
                args.submissions_port
                    .or(file.submissions_port)
                    .unwrap_or(4650),
            ))
        };
        let t = &mut smtp.timeouts;
        if let Some(v) = args.command_timeout.or(file.command_timeout) {
            t.command = std::time::Duration::from_secs(v.max(1));
        }
        if let Some(v) = args.data_timeout.or(file.data_timeout) {
            t.data_block = std::time::Duration::from_secs(v.max(1));
        }
        let storage = args
            .storage
            .or(file.storage)
            .unwrap_or_else(|| PathBuf::from("mail"));
        let users = match args.users.or(file.users) {
            Some(path) => (path, true),
            None => (storage.join("users"), false),
        };
        let imap = args
            .imap
            .or(file.imap)
            .unwrap_or(PortOrOff::Port(1143))
            .port();
        let imaps = args
            .imaps
            .or(file.imaps)
            .unwrap_or(PortOrOff::Port(9930))
            .port();
        let nntp = args
            .nntp
            .or(file.nntp)
            .unwrap_or(PortOrOff::Port(1119))
            .port();
        let nntps = args
            .nntps
            .or(file.nntps)
            .unwrap_or(PortOrOff::Port(5630))
            .port();
        let notify_nntp = match args.notify_nntp.or(file.notify_nntp) {
            Some(url) => {
                let password = std::env::var("BUZON_NOTIFY_NNTP_PASSWORD")
                    .ok()
                    .or(file.notify_nntp_password);
                Some(crate::feed::FeedTarget::parse(&url, password)?)
            }
            None => None,
        };
        let notice_keep = args.notice_keep.or(file.notice_keep).unwrap_or(1000).max(1);
        let notice_days = args.notice_days.or(file.notice_days).unwrap_or(30).max(1);
        Ok(Settings {
            domains,
            storage,
            users,
            submission,
            imap,
            imaps,
            nntp,
            nntps,
            notice_keep,
            notice_age: std::time::Duration::from_secs(notice_days.saturating_mul(86_400)),
            notify_nntp,
            plaintext_auth_on_loopback: args.allow_plaintext_auth_on_loopback
                || file.allow_plaintext_auth_on_loopback.unwrap_or(false),
            port: args.port.or(file.port).unwrap_or(2525),
            bind: args
                .bind
                .or(file.bind)
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            hostname,
            runtime: args.runtime.or(file.runtime).unwrap_or_default(),
            record: args.record.or(file.record),
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(1000)
                .max(1),
            max_connections_per_ip: args
                .max_connections_per_ip
                .or(file.max_connections_per_ip)
                .unwrap_or(100)
                .max(1),
            fsync: !(args.unsafe_no_fsync || file.unsafe_no_fsync.unwrap_or(false)),
            commit: args.commit.or(file.commit).unwrap_or_default(),
            smtp,
            tls,
            tls_port,
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        // toml's message spans several lines with a source excerpt; one line is enough here.
        let msg = e.message().to_owned();
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start].matches('\n').count() + 1;
                format!(" (line {line})")
            })
            .unwrap_or_default();
        anyhow::anyhow!("config file {}{at}: {msg}", path.display())
    })
}

/// The machine's host name, or `localhost` if it cannot be read.
pub(crate) fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| smtp_core::command::is_valid_helo(s))
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("buzon-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("b.toml");
        std::fs::write(
            &file,
            "domains = [\"a.example\"]\nport = 2600\nmax-recipients = 7\n",
        )
        .unwrap();
        let s = Settings::resolve(ServeArgs {
            config: Some(file.clone()),
            port: Some(2700),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.domains, ["a.example"]);
        assert_eq!(s.port, 2700);
        assert_eq!(s.smtp.limits.recipients, 7);
        assert_eq!(s.storage, PathBuf::from("mail"));

        std::fs::write(&file, "prot = 1\n").unwrap();
        let err = Settings::resolve(ServeArgs {
            config: Some(file),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unknown field `prot`") && err.contains("line 1"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
