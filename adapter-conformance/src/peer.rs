//! The far end of the client-mode tests: a blocking line server on loopback, one thread per
//! connection, each line handled before the next is read (so while an answer cannot be
//! written, it reads nothing: an echoing peer that deadlocks against a client that stops
//! reading).
//!
//! On connecting it greets `hi <n>` (`n` counts accepted connections from 0; see [`Greet`] for
//! the other openings), then answers line by line:
//!
//! - `ECHO x` answers `x`;
//! - `QUIT` answers `bye`, reads until the client's EOF and closes;
//! - `LAST x` answers `x` and `bye` in one write and closes (a pipelined goodbye);
//! - `CLOSE` closes without a word;
//! - `WAIT` answers nothing (and reads on);
//! - `GATE x` answers `x` once `gate` connections have sent a `GATE` line, or `late` if that did
//!   not happen within [`LIMIT`] (so only a client that drives its connections at once gets `x`);
//! - `RAW` echoes every following byte as it is until EOF;
//! - `HOLD` answers `holding` and then neither reads nor closes until the peer is dropped;
//! - `FLOOD` writes lines of `z` without end, reading nothing, until the socket fails or the
//!   peer is dropped;
//! - anything else answers `err`.
//!
//! Every line received is recorded per connection.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{LIMIT, wait_until};

/// How the peer opens a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greet {
    /// `hi <n>`, then the protocol.
    Hi,
    /// Nothing: it only reads, answering as usual, and closes at the client's EOF.
    Never,
    /// Closes the connection at once, before any greeting.
    CloseAtOnce,
}

/// Counts `GATE` lines across connections.
#[derive(Default)]
struct Gate {
    count: Mutex<usize>,
    all_in: Condvar,
}

/// What the peer received, per connection in accept order.
#[derive(Clone, Default)]
pub struct Received {
    lines: Arc<Mutex<Vec<Vec<String>>>>,
    total: Arc<AtomicUsize>,
}

impl Received {
    fn push(&self, conn: usize, line: String) {
        let mut all = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if all.len() <= conn {
            all.resize(conn + 1, Vec::new());
        }
        all[conn].push(line);
        self.total.fetch_add(1, Ordering::SeqCst);
    }

    /// The lines connection `conn` sent, in order.
    pub fn lines(&self, conn: usize) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(conn)
            .cloned()
            .unwrap_or_default()
    }

    /// Lines received over all connections.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// Waits until each of the first `conns` connections has sent `line`; panics after
    /// [`LIMIT`].
    pub fn wait_for(&self, line: &str, conns: usize) {
        wait_until(&format!("{line:?} on {conns} connections"), || {
            let all = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
            all.len() >= conns && all[..conns].iter().all(|l| l.iter().any(|l| l == line))
        });
    }
}

/// The peer: an accepting thread and a thread per connection, stopped when dropped.
pub struct Peer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it received.
    pub received: Received,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Peer {
    /// A peer that greets `hi <n>`.
    pub fn start() -> Peer {
        Peer::with(Greet::Hi, 0)
    }

    /// A peer that opens connections as `greet` says; `gate` is how many connections must send
    /// `GATE` before any is answered.
    pub fn with(greet: Greet, gate: usize) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("the peer's address");
        let received = Received::default();
        let stop = Arc::new(AtomicBool::new(false));
        let gate = Arc::new((Gate::default(), gate));
        let thread = {
            let received = received.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for (n, stream) in listener.incoming().enumerate() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let conn = Conn {
                        n,
                        greet,
                        received: received.clone(),
                        gate: Arc::clone(&gate),
                        stop: Arc::clone(&stop),
                    };
                    std::thread::spawn(move || {
                        // Errors (timeouts included) end the connection; the client's
                        // assertions then fail.
                        let _ = conn.serve(stream);
                    });
                }
            })
        };
        Peer {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// A blocking stream connected to the peer, as the runtimes take it.
    pub fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).expect("connect to the peer")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One accepted connection.
struct Conn {
    n: usize,
    greet: Greet,
    received: Received,
    gate: Arc<(Gate, usize)>,
    stop: Arc<AtomicBool>,
}

impl Conn {
    fn serve(self, stream: TcpStream) -> io::Result<()> {
        stream.set_read_timeout(Some(LIMIT))?;
        stream.set_write_timeout(Some(LIMIT))?;
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        match self.greet {
            Greet::Hi => writer.write_all(format!("hi {}\r\n", self.n).as_bytes())?,
            Greet::Never => {}
            Greet::CloseAtOnce => return Ok(()),
        }
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let text = line.trim_end_matches(['\r', '\n']).to_owned();
            self.received.push(self.n, text.clone());
            let (verb, arg) = text.split_once(' ').unwrap_or((&text, ""));
            match verb {
                "ECHO" => writer.write_all(format!("{arg}\r\n").as_bytes())?,
                "QUIT" => {
                    writer.write_all(b"bye\r\n")?;
                    // Read what the client still sends until its EOF, so closing sends a FIN.
                    let mut rest = Vec::new();
                    let _ = reader.read_to_end(&mut rest);
                    return Ok(());
                }
                "LAST" => {
                    writer.write_all(format!("{arg}\r\nbye\r\n").as_bytes())?;
                    return Ok(());
                }
                "CLOSE" => return Ok(()),
                "WAIT" => {}
                "GATE" => {
                    let (gate, size) = &*self.gate;
                    let mut count = gate.count.lock().unwrap_or_else(PoisonError::into_inner);
                    *count += 1;
                    gate.all_in.notify_all();
                    let (count, timeout) = gate
                        .all_in
                        .wait_timeout_while(count, LIMIT, |c| *c < *size)
                        .unwrap_or_else(PoisonError::into_inner);
                    drop(count);
                    let reply = if timeout.timed_out() { "late" } else { arg };
                    writer.write_all(format!("{reply}\r\n").as_bytes())?;
                }
                "RAW" => {
                    // Whatever the line reader already buffered comes first.
                    let buffered = reader.buffer().to_vec();
                    reader.consume(buffered.len());
                    writer.write_all(&buffered)?;
                    let mut chunk = vec![0; 64 * 1024];
                    loop {
                        let got = reader.get_mut().read(&mut chunk)?;
                        if got == 0 {
                            return Ok(());
                        }
                        writer.write_all(&chunk[..got])?;
                    }
                }
                "HOLD" => {
                    writer.write_all(b"holding\r\n")?;
                    while !self.stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    return Ok(());
                }
                "FLOOD" => {
                    let flood = [b'z'; 1022]
                        .iter()
                        .chain(b"\r\n")
                        .copied()
                        .collect::<Vec<_>>();
                    while !self.stop.load(Ordering::SeqCst) {
                        writer.write_all(&flood)?;
                    }
                    return Ok(());
                }
                _ => writer.write_all(b"err\r\n")?,
            }
        }
    }
}
