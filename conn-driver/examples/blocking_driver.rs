//! The SMTP core behind the connection driver, in a plain blocking `std::net` loop (a thread
//! per connection): the driver keeps every connection rule (kept input, backpressure, EOF order,
//! the linger), and this loop only moves bytes and time. Every message is accepted and its size
//! printed; nothing is stored.
//!
//! ```sh
//! cargo run -p conn-driver --example blocking_driver -- 127.0.0.1:2527
//! swaks --server 127.0.0.1:2527 --to someone@example.com
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conn_driver::{Connection, Limits};
use session_api::{Handler, Work};
use smtp_core::{ServerConfig, ServerEvent, ServerSession, Verdict};

/// Accepts every recipient and every message (a real host would store it durably first).
struct AcceptAll;

impl Handler for AcceptAll {
    type Session = ServerSession;
    type Notice = ();

    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent,
        now: Instant,
    ) -> Option<Work<Self>> {
        match event {
            ServerEvent::Recipient { ticket, .. } => {
                let _ = session.decide(ticket, Verdict::Accept, now);
            }
            ServerEvent::MessageEnd { ticket, size } => {
                println!("a message of {size} octets");
                let _ = session.decide(ticket, Verdict::Accept, now);
            }
            _ => {}
        }
        None
    }
}

fn serve(mut stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<()> {
    let now = Instant::now();
    let session = ServerSession::new(config, now);
    let mut conn = Connection::new(session, AcceptAll, Limits::default(), now);
    let mut buf = vec![0; 16 * 1024];
    loop {
        // Work would go to a thread pool; a blocking loop may just run it.
        while let Some((id, work)) = conn.poll_work() {
            let result = conn_driver::run_work(work);
            conn.handle_completion(id, result, Instant::now());
        }
        if conn.poll_half_close() {
            stream.shutdown(Shutdown::Write)?;
        }
        if conn.is_done() {
            return Ok(());
        }
        if !conn.pending_output().is_empty() {
            match stream.write(conn.pending_output()) {
                Ok(n) => conn.handle_written(n, Instant::now()),
                Err(e) => conn.handle_error(e),
            }
            continue;
        }
        // Wait for input, but not past the next deadline.
        let wait = conn.poll_timeout().map(|at| {
            at.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        let room = conn.read_room().min(buf.len());
        if room == 0 {
            // Nothing to read for now (a decision is pending, or the input is full): the
            // deadline is the only thing left to wait for.
            std::thread::sleep(wait.unwrap_or(Duration::from_millis(10)));
            conn.handle_timeout(Instant::now());
            continue;
        }
        stream.set_read_timeout(wait)?;
        match stream.read(&mut buf[..room]) {
            Ok(0) => conn.handle_eof(Instant::now()),
            Ok(n) => conn.handle_read(&buf[..n], Instant::now()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                conn.handle_read_blocked(Instant::now());
                conn.handle_timeout(Instant::now());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => conn.handle_error(e),
        }
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2527".into());
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    let config = Arc::new(ServerConfig::new("mx.example"));
    for stream in listener.incoming() {
        let stream = stream?;
        let config = Arc::clone(&config);
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, config) {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}
