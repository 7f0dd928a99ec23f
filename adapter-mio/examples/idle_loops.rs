//! What one more event loop costs a process: starts `N` servers (one loop and its worker
//! threads each, as `adapter_mio::Servers` runs one per protocol), waits for them to settle and
//! prints the process's resident memory and thread count, then stops them.
//!
//! `cargo run --release -p adapter-mio --example idle_loops -- 4` (used by
//! `docs/architecture.md`, section Listeners).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use adapter_conformance::liner::LinerService;
use adapter_mio::{Options, Server, Servers};

fn status(field: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| "?".to_owned())
}

fn main() -> std::io::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let mut servers = Servers::default();
    for _ in 0..n {
        let socket = TcpListener::bind("127.0.0.1:0")?;
        servers.add(Server::new(
            socket,
            Arc::new(LinerService::default()),
            Options::default(),
        )?);
    }
    let stop = servers.shutdown_handle();
    let report = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        println!(
            "loops={n} rss={} threads={}",
            status("VmRSS:"),
            status("Threads:")
        );
        stop.trigger();
    });
    servers.run()?;
    report.join().expect("the reporting thread");
    Ok(())
}
