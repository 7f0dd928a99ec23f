//! Driving the SMTP core from a plain blocking `std::net` loop: no async runtime, no adapter.
//!
//! Run it with `cargo run -p smtp-core --example blocking_server -- 127.0.0.1:2526`, then send
//! mail to `anyone@example.com`; each message is printed to stdout.
//!
//! One thread per connection. The socket's read timeout is set from the session's next
//! deadline, so the core's command and data timeouts work without any timer machinery.

// This is host code: it reads the clock and hands `now` to the core.
#![allow(clippy::disallowed_methods)]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use smtp_core::policy::LocalDomains;
use smtp_core::{ServerConfig, ServerEvent, ServerSession, Verdict};

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2526".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("listening on {addr}");
    let config = Arc::new(ServerConfig::new("mx.example.com"));
    let policy = Arc::new(LocalDomains::new(["example.com"]));
    for stream in listener.incoming() {
        let (config, policy) = (config.clone(), policy.clone());
        let stream = stream?;
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, config, &policy) {
                eprintln!("connection error: {e}");
            }
        });
    }
    Ok(())
}

fn serve(
    mut stream: TcpStream,
    config: Arc<ServerConfig>,
    policy: &LocalDomains,
) -> io::Result<()> {
    let mut session = ServerSession::new(config, Instant::now());
    let mut input = Vec::new(); // bytes read but not yet consumed by the session
    let mut output = Vec::new();
    let mut message = Vec::new(); // a real host would stream this to disk
    let mut buf = [0u8; 16 * 1024];
    loop {
        // 1. Feed kept input and answer events until the session needs more bytes.
        loop {
            let used = session.handle_input(&input, Instant::now());
            input.drain(..used);
            let mut decided = false;
            while let Some(event) = session.poll_event() {
                match event {
                    ServerEvent::Recipient { ticket, to } => {
                        let verdict = match policy.check(&to) {
                            Ok(_) => Verdict::Accept,
                            Err(reply) => Verdict::Refuse(reply),
                        };
                        session
                            .decide(ticket, verdict, Instant::now())
                            .expect("pending ticket");
                        decided = true;
                    }
                    ServerEvent::MessageStart(_) => message.clear(),
                    ServerEvent::MessageData(bytes) => message.extend_from_slice(&bytes),
                    ServerEvent::MessageEnd { ticket, .. } => {
                        // Store durably here; only then accept.
                        println!("{}", String::from_utf8_lossy(&message));
                        session
                            .decide(ticket, Verdict::Accept, Instant::now())
                            .expect("pending ticket");
                        decided = true;
                    }
                    _ => {}
                }
            }
            if !decided || input.is_empty() {
                break;
            }
        }
        // 2. Send everything the session has to say (a pipelined group's replies go together).
        output.clear();
        session.poll_transmit(&mut output);
        stream.write_all(&output)?;
        if session.is_closed() {
            return Ok(());
        }
        // 3. Wait for bytes, but no longer than the session's next deadline.
        let wait = session
            .poll_timeout()
            .map(|(deadline, _)| deadline.saturating_duration_since(Instant::now()));
        stream.set_read_timeout(wait.map(|d| d.max(std::time::Duration::from_millis(1))))?;
        match stream.read(&mut buf) {
            Ok(0) => session.handle_eof(Instant::now()),
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                session.handle_timeout(Instant::now());
            }
            Err(e) => return Err(e),
        }
    }
}
