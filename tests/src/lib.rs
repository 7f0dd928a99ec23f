//! Helpers for the cross-crate tests: a host that acts out a transcript's decisions, servers on
//! loopback under either adapter, and a client that plays a transcript over a real socket.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use session_api::{Completion, ConnInfo, Handler, Service, Work};
use smtp_core::transcript::{Item, Script, Transcript};
use smtp_core::{ServerConfig, ServerEvent, ServerSession};

/// A service whose every connection decides as the transcript's [`Script`] says. Message ends
/// are decided through [`Work`], as a real host storing mail would.
pub struct ScriptService {
    config: Arc<ServerConfig>,
    script: Script,
    /// Every event of every connection, described, in order.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl ScriptService {
    /// A service acting out `t`.
    pub fn new(t: &Transcript) -> Self {
        ScriptService {
            config: Arc::new(smtp_core::transcript::server_config(t)),
            script: Script::new(t),
            log: Arc::default(),
        }
    }
}

/// One connection of a [`ScriptService`].
pub struct ScriptHandler {
    script: Script,
    log: Arc<Mutex<Vec<String>>>,
}

impl Service for ScriptService {
    type Handler = ScriptHandler;

    fn open(
        &self,
        _conn: &ConnInfo,
        _notifier: session_api::Notifier<()>,
        now: Instant,
    ) -> (ServerSession, ScriptHandler) {
        let handler = ScriptHandler {
            script: self.script.clone(),
            log: self.log.clone(),
        };
        (ServerSession::new(self.config.clone(), now), handler)
    }
}

impl Handler for ScriptHandler {
    type Session = ServerSession;
    type Notice = ();

    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent,
        now: Instant,
    ) -> Option<Work<Self>> {
        self.log
            .lock()
            .unwrap()
            .push(smtp_core::transcript::describe_event(&event));
        match event {
            ServerEvent::Recipient { ticket, to } => {
                let verdict = self.script.recipient(&to);
                session
                    .decide(ticket, verdict, now)
                    .expect("ticket of the event just polled");
                None
            }
            ServerEvent::Auth { ticket, .. } => {
                // Off the loop, as a real host checks passwords.
                let verdict = self.script.login();
                Some(Work::new(move || {
                    Completion::new(move |_, session: &mut ServerSession, now| {
                        let _ = session.decide(ticket, verdict, now);
                    })
                }))
            }
            ServerEvent::MessageEnd { ticket, .. } => {
                let verdict = self.script.message();
                Some(Work::new(move || {
                    Completion::new(move |_, session: &mut ServerSession, now| {
                        // The peer may have left meanwhile; then there is nobody to tell.
                        let _ = session.decide(ticket, verdict, now);
                    })
                }))
            }
            _ => None,
        }
    }
}

/// Which adapter serves a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// adapter-smol.
    Smol,
    /// adapter-mio.
    Mio,
}

/// A server running on a thread until dropped.
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Box<dyn Fn() + Send>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl RunningServer {
    /// Starts `service` on 127.0.0.1 under `runtime`.
    pub fn start<S: Service>(runtime: Runtime, service: S) -> RunningServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let service = Arc::new(service);
        let (stop, thread): (Box<dyn Fn() + Send>, _) = match runtime {
            Runtime::Smol => {
                let shutdown = adapter_smol::Shutdown::new();
                let trigger = shutdown.clone();
                let opts = adapter_smol::Options {
                    threads: Some(2),
                    grace: Duration::from_secs(2),
                    ..Default::default()
                };
                let thread = std::thread::spawn(move || {
                    adapter_smol::run(listener, service, shutdown, opts)
                });
                (Box::new(move || trigger.trigger()), thread)
            }
            Runtime::Mio => {
                let opts = adapter_mio::Options {
                    grace: Duration::from_secs(2),
                    ..Default::default()
                };
                let server = adapter_mio::Server::new(listener, service, opts).expect("mio server");
                let trigger = server.shutdown_handle();
                let thread = std::thread::spawn(move || server.run());
                (Box::new(move || trigger.trigger()), thread)
            }
        };
        RunningServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        (self.stop)();
        if let Some(t) = self.thread.take() {
            let result = t.join().expect("server thread panicked");
            if !std::thread::panicking() {
                result.expect("server stopped with an error");
            }
        }
    }
}

/// Plays the client side of `t` against a server at `addr` over a real socket; returns
/// `Err` with a description at the first difference from the transcript's server lines.
///
/// Before each client write, the server must have sent exactly the server lines above it.
pub fn play_over_socket(t: &Transcript, addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let mut expected: Vec<u8> = Vec::new();
    let mut received: Vec<u8> = Vec::new();
    let mut i = 0;
    let mut closed_by_server = false;
    while i < t.items.len() {
        match &t.items[i] {
            Item::Server(b) => {
                expected.extend_from_slice(b);
                i += 1;
            }
            Item::Client(_) => {
                read_until(
                    &mut stream,
                    &mut received,
                    expected.len(),
                    &mut closed_by_server,
                );
                compare(&expected, &received, i)?;
                let mut group = Vec::new();
                while let Some(Item::Client(b)) = t.items.get(i) {
                    group.extend_from_slice(b);
                    i += 1;
                }
                // After the server closed, writes may fail; the comparison still decides.
                let _ = stream.write_all(&group);
            }
            Item::Eof => {
                let _ = stream.shutdown(Shutdown::Write);
                i += 1;
            }
            Item::Advance(_) => {
                return Err("transcripts that move the clock cannot run live".into());
            }
            Item::Tls => {
                return Err("transcripts that start TLS cannot run over a plain socket".into());
            }
            other => return Err(format!("transcript item {other:?} cannot run live")),
        }
    }
    read_until(
        &mut stream,
        &mut received,
        expected.len(),
        &mut closed_by_server,
    );
    // Anything beyond the expectation would arrive within a short wait.
    let grace = Instant::now() + Duration::from_millis(300);
    let mut buf = [0u8; 4096];
    while !closed_by_server && Instant::now() < grace {
        match stream.read(&mut buf) {
            Ok(0) => closed_by_server = true,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => closed_by_server = true,
        }
    }
    compare(&expected, &received, t.items.len())
}

/// Reads until `received` holds `want` bytes, the server closes, or 10 s pass.
fn read_until(stream: &mut TcpStream, received: &mut Vec<u8>, want: usize, closed: &mut bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 64 * 1024];
    while received.len() < want && !*closed && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => *closed = true,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => *closed = true,
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn compare(expected: &[u8], received: &[u8], item: usize) -> Result<(), String> {
    if expected == received {
        return Ok(());
    }
    Err(format!(
        "before transcript item {}:\n--- expected\n{}\n--- received\n{}",
        item + 1,
        String::from_utf8_lossy(expected),
        String::from_utf8_lossy(received)
    ))
}

/// Every transcript in `folder` (beside this crate's manifest), parsed, sorted by file name.
///
/// # Panics
/// If the folder is missing or empty, or a transcript does not parse: test fixtures are broken.
pub fn load_transcripts(folder: &str) -> Vec<(String, Transcript)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut out: Vec<(String, Transcript)> = std::fs::read_dir(&dir)
        .expect("transcripts folder")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable transcript");
            let t = Transcript::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), t)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no transcripts in {}", dir.display());
    out
}
