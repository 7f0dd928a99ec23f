//! `buzon user ...`: accounts in the users file (`accounts` crate), changed safely while
//! `buzon serve` runs (it re-reads the file when it changes).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mailstore::{MailStore, Mailbox};

/// The folders a new account gets beside its INBOX (Maildir++ names, as IMAP clients expect
/// them: RFC 6154's special-use folders).
pub(crate) const FOLDERS: [&str; 4] = ["Sent", "Drafts", "Trash", "Junk"];

/// `buzon user` flags.
#[derive(Debug, Args)]
pub(crate) struct UserArgs {
    /// Maildir root, as given to `buzon serve` [default: ./mail].
    #[arg(short = 's', long, value_name = "DIR", global = true)]
    storage: Option<PathBuf>,
    /// The users file [default: STORAGE/users].
    #[arg(long, value_name = "FILE", global = true)]
    users: Option<PathBuf>,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add an account: asks for its password (twice at a terminal, else one line from stdin),
    /// creates its Maildir and prints what a mail client needs.
    Add {
        /// The address, which is also the login.
        address: String,
    },
    /// Set a new password.
    Passwd {
        /// The account's address.
        address: String,
    },
    /// Remove an account; its mail stays unless --purge.
    Del {
        /// The account's address.
        address: String,
        /// Also delete the account's Maildir.
        #[arg(long)]
        purge: bool,
    },
    /// List the accounts.
    List,
    /// Aliases: more addresses that deliver to an account and that it may send as.
    Alias {
        #[command(subcommand)]
        command: AliasCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AliasCommand {
    /// Add ALIAS to the account ADDRESS.
    Add {
        /// The account's address.
        address: String,
        /// The new alias.
        alias: String,
    },
    /// Remove an alias.
    Del {
        /// The alias.
        alias: String,
    },
}

pub(crate) fn run(args: UserArgs) -> anyhow::Result<ExitCode> {
    let storage = args.storage.unwrap_or_else(|| PathBuf::from("mail"));
    let file = accounts::UserFile::new(args.users.unwrap_or_else(|| storage.join("users")));
    match args.command {
        UserCommand::Add { address } => {
            let password = read_password(&format!("password for {address}"))?;
            let hash = accounts::hash_password(password.as_bytes());
            let account = file.update(|u| u.add(&address, hash).map(|a| a.address.clone()))?;
            let (local, domain) = account.rsplit_once('@').expect("checked by the users file");
            let store = MailStore::open(&storage)
                .with_context(|| format!("cannot open the mail storage {}", storage.display()))?;
            let mailbox = Mailbox::new(domain, local)?;
            store.create_mailbox(&mailbox, &FOLDERS)?;
            println!(
                "added {account}; mail in {}",
                store.mailbox_dir(&mailbox).display()
            );
            print_client_settings(&account);
        }
        UserCommand::Passwd { address } => {
            if file.load()?.account(&address).is_none() {
                bail!("no user {address} in {}", file.path().display());
            }
            let password = read_password(&format!("new password for {address}"))?;
            let hash = accounts::hash_password(password.as_bytes());
            file.update(|u| u.set_hash(&address, hash))?;
            println!("password of {address} changed");
        }
        UserCommand::Del { address, purge } => {
            let account = file.update(|u| u.remove(&address))?;
            let (local, domain) = account.address.rsplit_once('@').expect("an address");
            let dir = storage.join(domain).join(local);
            if purge {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .with_context(|| format!("cannot delete {}", dir.display()))?;
                }
                println!("removed {}; its mail is deleted", account.address);
            } else {
                println!(
                    "removed {}; its mail stays in {} (--purge deletes it)",
                    account.address,
                    dir.display()
                );
            }
        }
        UserCommand::List => {
            for a in file.load_or_empty()?.iter() {
                let state = if a.enabled { "" } else { " (disabled)" };
                let aliases = if a.aliases.is_empty() {
                    String::new()
                } else {
                    format!(" aliases: {}", a.aliases.join(", "))
                };
                println!("{}{state}{aliases}", a.address);
            }
        }
        UserCommand::Alias { command } => match command {
            AliasCommand::Add { address, alias } => {
                file.update(|u| u.add_alias(&address, &alias))?;
                println!("{alias} now delivers to {address}");
            }
            AliasCommand::Del { alias } => {
                file.update(|u| u.remove_alias(&alias))?;
                println!("alias {alias} removed");
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// What to type into a mail client, as `buzon serve` listens by default (like `mox
/// quickstart`, the settings a user would otherwise hunt for).
fn print_client_settings(address: &str) {
    println!("mail client settings (buzon serve's defaults):");
    println!("  user name:  {address}");
    println!("  password:   the one just given");
    println!(
        "  outgoing:   127.0.0.1 port 5870, STARTTLS (or port 4650, SSL/TLS), normal password"
    );
    println!("  TLS:        self-signed until --tls-cert is given; its SHA-256 is in serve's log");
    println!("  incoming:   mail for {address} is delivered on port 2525 into its Maildir");
}

/// A password: at a terminal, asked twice without echo; otherwise the first line of stdin.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("{prompt}: "))?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}
