//! `buzon`: the command line of the buzon mail system.
//!
//! - `buzon serve`: an SMTP server delivering into Maildir, over smol or mio.
//! - `buzon send`: CSV mail merge through an SMTP server, over smol or mio.
//! - `buzon ui`: the same mail merge as a local web page.
//! - `buzon replay FILE`: replays a recorded SMTP transcript against the current core.
//! - `buzon user ...`: accounts (users file, passwords, aliases).

mod certs;
mod feed;
mod host;
mod imap_host;
mod logins;
mod nntp_host;
mod record;
mod replay;
mod send;
mod serve;
mod settings;
mod ui;
mod user;

use clap::{Parser, Subcommand};

/// The buzon mail system.
#[derive(Debug, Parser)]
#[command(name = "buzon", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the SMTP server: accept mail for the configured domains into Maildir.
    Serve(settings::ServeArgs),
    /// Mail merge: send a templated message to every row of a CSV through an SMTP server.
    Send(send::SendArgs),
    /// Mail merge in a local web page: compose, check, test and send, with the same engine.
    Ui(ui::UiArgs),
    /// Replay recorded SMTP transcripts against the current server core and show differences.
    Replay(replay::ReplayArgs),
    /// Manage accounts: add, passwd, del, list, alias.
    User(user::UserArgs),
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // clap's report spans several lines with usage; one line naming the problem is
            // what a script's log needs, and --help has the rest.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("buzon: error: {first} (see buzon --help)");
            return std::process::ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Send(args) => send::run(args),
        Command::Ui(args) => ui::run(args),
        Command::User(args) => user::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One line naming the problem: the chain of causes joined, no backtrace.
            eprintln!("buzon: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
