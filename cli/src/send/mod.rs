//! `buzon send`: a CSV mail merge through a chosen SMTP server.
//!
//! Dry run by default (shows the first rendered message and sends nothing). With
//! `--no-dry-run`, rows go out over `--concurrency` connections that each carry many messages;
//! every accepted row is journalled durably, so re-running the same command after a crash or
//! Ctrl-C sends to nobody twice.

/// `println!` that tolerates a closed stdout (`buzon send ... | head`): the report is a
/// courtesy, the results file and journal are the record.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub(crate) mod dispatch;
pub(crate) mod engine;
pub(crate) mod journal;
pub(crate) mod report;
pub(crate) mod security;

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::settings::Runtime;
use dispatch::{Campaign, Job, State};
use engine::{Control, Ended, Observer, Plan};
use journal::Journal;
use report::{Report, Status};

/// `buzon send` flags.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// Recipients: a CSV with a header row (an address column such as `email` or an address
    /// book's `E-mail Address`, optionally names, any others), or just addresses without a header.
    #[arg(long, value_name = "FILE")]
    csv: PathBuf,
    /// The CSV's field delimiter: `,`, `;`, `tab` or `|` [default: found from the header line].
    #[arg(long, value_name = "CHAR", value_parser = parse_delimiter)]
    delimiter: Option<u8>,
    /// The CSV's encoding (`utf-8`, `windows-1252`, `latin1`, `utf-16le`...) [default: from its
    /// byte-order mark, else UTF-8, else Windows-1252].
    #[arg(long, value_name = "NAME")]
    encoding: Option<String>,
    /// The column that holds the addresses [default: `email`, `E-mail Address`,
    /// `Primary Email`, `E-mail 1 - Value` and other export names].
    #[arg(long, value_name = "NAME")]
    email_column: Option<String>,
    /// The column that holds the names [default: `name`, `Display Name` and the like, else
    /// `First Name` and `Last Name` joined].
    #[arg(long, value_name = "NAME")]
    name_column: Option<String>,
    /// The message template: headers, a blank line, the body; `{{ column }}` anywhere.
    #[arg(long, value_name = "FILE")]
    template: PathBuf,
    /// An HTML alternative body template.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// SMTP server as host:port.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:2525")]
    server: String,
    /// Sender (`Name <addr>` or `addr`) when the template has no From.
    #[arg(long, value_name = "ADDR")]
    from: Option<String>,
    /// Actually send. Without it, the first message(s) are shown and nothing is sent.
    #[arg(long)]
    no_dry_run: bool,
    /// Send (or show) at most N rows.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Connections used at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,
    /// Most messages per second (`10`, `10/s`) or per minute (`100/m`).
    #[arg(long, value_name = "RATE")]
    rate: Option<String>,
    /// Tries after the first for deferred (4xx) rows and lost connections.
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u32,
    /// Resume journal [default: CSV.journal].
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Results file, one CSV line per row [default: CSV.results.csv].
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Stop at the first bad CSV row instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Name given in EHLO [default: the machine's host name].
    #[arg(long, value_name = "NAME")]
    helo: Option<String>,
    /// Event loop.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
    #[command(flatten)]
    security: security::SecurityArgs,
}

pub(crate) fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    crate::serve::init_logging("warn");
    let csv_bytes = std::fs::read(&args.csv)
        .with_context(|| format!("cannot read CSV {}", args.csv.display()))?;
    let options = mailmerge::ReadOptions {
        strict: args.strict,
        delimiter: args.delimiter,
        encoding: args.encoding.clone(),
        email_column: args.email_column.clone(),
        name_column: args.name_column.clone(),
    };
    let recipients = mailmerge::read_recipients(&csv_bytes, &options)
        .with_context(|| format!("CSV {}", args.csv.display()))?;
    for warning in &recipients.warnings {
        eprintln!("buzon: warning: {}: {warning}", args.csv.display());
    }
    for bad in &recipients.skipped {
        eprintln!(
            "buzon: warning: {} line {}: {} (row skipped)",
            args.csv.display(),
            bad.line,
            bad.reason
        );
    }
    let template_text = std::fs::read_to_string(&args.template)
        .with_context(|| format!("cannot read template {}", args.template.display()))?;
    let html = match &args.html {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let template = mailmerge::Template::parse(&template_text, html.as_deref())
        .with_context(|| format!("template {}", args.template.display()))?;
    template
        .check_columns(&recipients.columns)
        .with_context(|| {
            format!(
                "template {} and CSV {}",
                args.template.display(),
                args.csv.display()
            )
        })?;
    let interval = args.rate.as_deref().map(parse_rate).transpose()?;
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let journal_path = args
        .journal
        .clone()
        .unwrap_or_else(|| sibling(&args.csv, "journal"));
    let journal = Journal::open(&journal_path)?;
    if journal.uncertain() > 0 && args.no_dry_run {
        eprintln!(
            "buzon: warning: the last run stopped abruptly with {} row(s) in flight; they are sent again and may arrive twice",
            journal.uncertain()
        );
    }
    let total = recipients.rows.len();
    let already_sent = recipients
        .rows
        .iter()
        .filter(|r| journal.is_done(r.index, &r.email))
        .count();
    let pending: Vec<usize> = recipients
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| !journal.is_done(r.index, &r.email))
        .map(|(i, _)| i)
        .take(args.limit.unwrap_or(usize::MAX))
        .collect();
    let helo = args
        .helo
        .clone()
        .unwrap_or_else(crate::settings::system_hostname);
    let attach_dir = args
        .template
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();

    if !args.no_dry_run {
        return dry_run(&args, &recipients, &template, &pending, &helo, &attach_dir);
    }
    if pending.is_empty() {
        outln!(
            "nothing to send: all {total} rows were sent already (journal {})",
            journal_path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let server = resolve(&args.server)?;
    let host = host_of(&args.server);
    let security = args.security.resolve(host)?;
    let results_path = args
        .results
        .clone()
        .unwrap_or_else(|| sibling(&args.csv, "results.csv"));
    let columns = output_columns(&recipients);
    let mut report = Report::create(&results_path, &columns)?;
    for bad in &recipients.skipped {
        report.record_skipped(bad, "");
    }
    let progress = Arc::new(Terminal(progress_bar(pending.len() as u64)));
    let campaign = Arc::new(Campaign {
        rows: recipients.rows.clone(),
        template,
        from: args.from.clone(),
        id_domain: helo.clone(),
        load: Box::new(move |name: &str| std::fs::read(attach_dir.join(name))),
        redirect: None,
        retries: args.retries,
        observer: progress.clone(),
        state: Mutex::new(State::new(
            pending
                .iter()
                .map(|&row| Job {
                    row,
                    attempt: 0,
                    only: None,
                })
                .collect::<VecDeque<_>>(),
            journal,
            report,
        )),
        interval,
        fatal: Mutex::new(None),
    });

    let control = Arc::new(Control::default());
    {
        let control = control.clone();
        crate::serve::watch_signals(move || control.stop(), None)?;
    }
    let plan = Plan {
        server,
        server_name: args.server.clone(),
        security,
        helo,
        concurrency: args.concurrency,
        retries: args.retries,
        runtime: args.runtime,
    };
    let ended = engine::run(&campaign, &plan, &control);
    progress.0.finish_and_clear();
    match ended? {
        Ended::Unreachable(why) => bail!("{why}"),
        Ended::Unusable(why) => bail!("{why}; nothing was sent"),
        Ended::Finished | Ended::Stopped => {}
    }

    // Rows still queued or waiting for a retry were not sent (interrupted).
    let mut st = campaign.lock();
    let unsent = st.queue.len() + st.retry.len();
    let failed_path = sibling(&args.csv, "failed.csv");
    let failed_file = st.report.write_failed(&failed_path)?;
    let t = st.report.tally.clone();
    outln!(
        "sent {}, partly refused {}, failed {}, deferred {}, invalid {}, skipped {}{}; {} sent before",
        t.sent,
        t.partial,
        t.failed,
        t.deferred,
        t.invalid,
        t.skipped,
        if unsent > 0 {
            format!(", not sent {unsent}")
        } else {
            String::new()
        },
        already_sent,
    );
    outln!("results: {}", st.report.path().display());
    if let Some(p) = failed_file {
        outln!("failed rows (usable as --csv): {}", p.display());
    }
    if control.is_stopped() {
        outln!(
            "interrupted: run the same command again to send the rest (journal {})",
            st.journal.path().display()
        );
        return Ok(ExitCode::from(130));
    }
    if t.refused_recipients > 0 {
        outln!(
            "{} recipient(s) in partly refused rows were refused permanently (see the results)",
            t.refused_recipients
        );
    }
    let permanent = t.failed + t.invalid + t.skipped + t.refused_recipients;
    Ok(if permanent > 0 || t.deferred > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The columns of the failed-rows file: the CSV's own (`email` for a bare list of addresses).
pub(crate) fn output_columns(recipients: &mailmerge::Recipients) -> Vec<String> {
    if recipients.columns.is_empty() {
        vec!["email".to_owned()]
    } else {
        recipients.columns.clone()
    }
}

/// The terminal's view of a run: a progress bar, with problems printed above it.
struct Terminal(ProgressBar);

impl Observer for Terminal {
    fn settled(&self, line: u64, email: &str, status: Status, reply: &str) {
        self.0.inc(1);
        if status != Status::Sent {
            self.say(&format!(
                "line {line}: {email} {}: {reply}",
                status_word(status)
            ));
        }
    }

    fn say(&self, line: &str) {
        // A hidden bar (stderr is not a terminal) drops what it is asked to print.
        if self.0.is_hidden() {
            eprintln!("{line}");
        } else {
            self.0.println(line);
        }
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Sent => "sent",
        Status::Partial => "partly refused",
        Status::Failed => "failed",
        Status::Deferred => "deferred",
        Status::Invalid => "invalid",
        Status::Skipped => "skipped",
    }
}

fn dry_run(
    args: &SendArgs,
    recipients: &mailmerge::Recipients,
    template: &mailmerge::Template,
    pending: &[usize],
    helo: &str,
    attach_dir: &Path,
) -> anyhow::Result<ExitCode> {
    outln!(">>> {}", describe_csv(&args.csv, recipients));
    let show = args.limit.unwrap_or(1).min(pending.len());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    for (n, &i) in pending.iter().take(show).enumerate() {
        let row = &recipients.rows[i];
        let ctx = mailmerge::RenderContext {
            from: args.from.clone(),
            date: now,
            message_id: format!("<dry-run.{}@{helo}>", row.index),
        };
        let load = |name: &str| std::fs::read(attach_dir.join(name));
        let r = template
            .render(row, &ctx, &load)
            .with_context(|| format!("line {}", row.line))?;
        outln!(
            ">>> message {} of {} (line {}): from {} to {}",
            n + 1,
            pending.len(),
            row.line,
            r.from,
            r.recipients.join(", ")
        );
        outln!(
            "{}",
            String::from_utf8_lossy(&r.message).replace("\r\n", "\n")
        );
    }
    outln!(
        ">>> dry run: {} message(s) would be sent through {}; nothing was sent. Add --no-dry-run to send.",
        pending.len(),
        args.server
    );
    Ok(ExitCode::SUCCESS)
}

/// How the CSV was read, in one line: so a user sees at once whether the right columns, encoding
/// and delimiter were found.
fn describe_csv(path: &Path, r: &mailmerge::Recipients) -> String {
    let delimiter = match r.delimiter {
        b'\t' => "tab".to_owned(),
        d => format!("'{}'", char::from(d)),
    };
    let mut line = format!(
        "{}: {} row(s), {} skipped; {}, {delimiter}-separated",
        path.display(),
        r.rows.len(),
        r.skipped.len(),
        r.encoding
    );
    match &r.email_column {
        Some(column) => line.push_str(&format!("; addresses from {column:?}")),
        None => line.push_str("; bare addresses, no header"),
    }
    match (&r.name_column, r.name_parts.as_slice()) {
        (None, []) => line.push_str(", no names"),
        (Some(whole), []) => line.push_str(&format!(", names from {whole:?}")),
        (Some(whole), parts) => line.push_str(&format!(
            ", names from {whole:?} (else {})",
            join_quoted(parts)
        )),
        (None, parts) => line.push_str(&format!(", names from {}", join_quoted(parts))),
    }
    line
}

fn join_quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// `--delimiter`: one ASCII character, or `tab` (also `\t`, as shells pass it).
fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "TAB" | "\\t" | "\t" => Ok(b'\t'),
        _ => match s.as_bytes() {
            [b] if b.is_ascii() && !b.is_ascii_alphanumeric() && *b != b'"' => Ok(*b),
            _ => Err(format!(
                "{s:?} is not a delimiter: use one character such as ',' or ';', or tab"
            )),
        },
    }
}

/// `10`, `10/s`, `100/m` → the interval between message starts.
pub(crate) fn parse_rate(s: &str) -> anyhow::Result<Duration> {
    let (n, per) = match s.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some(_) => bail!("--rate {s:?}: use N, N/s or N/m"),
        None => (s, 1.0),
    };
    let n: f64 = n
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| *n > 0.0 && n.is_finite())
        .with_context(|| format!("--rate {s:?}: use a positive number, N/s or N/m"))?;
    Ok(Duration::from_secs_f64(per / n))
}

pub(crate) fn resolve(server: &str) -> anyhow::Result<SocketAddr> {
    server
        .to_socket_addrs()
        .with_context(|| format!("--server {server:?}: expected host:port"))?
        .next()
        .with_context(|| format!("--server {server:?}: no address found"))
}

/// `dir/name.csv` → `dir/name.csv.<suffix>`.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} sent or settled, {per_sec}, eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// The host part of `host:port` (without the brackets of an IPv6 address), for TLS.
pub(crate) fn host_of(server: &str) -> &str {
    let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}
