//! `buzon replay FILE...`: runs recorded transcripts against the current server core.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use smtp_core::transcript::{Transcript, replay};

/// `buzon replay` flags.
#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// Transcript files (as written by `buzon serve --record`).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Also print the host events of each replay.
    #[arg(long)]
    events: bool,
}

pub(crate) fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let mut failed = 0;
    for file in &args.files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let t = Transcript::parse(&text).with_context(|| file.display().to_string())?;
        let outcome = replay(&t, std::time::Instant::now());
        if args.events {
            for e in &outcome.events {
                println!("  {e}");
            }
        }
        if outcome.is_match() {
            println!("{}: ok", file.display());
        } else {
            failed += 1;
            println!("{}: DIFFERS\n{}", file.display(), outcome.report());
        }
    }
    println!("{} passed, {failed} failed", args.files.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
