//! A load generator for IMAP servers, std only: plain TCP, LOGIN, one thread per client.
//!
//! ```text
//! imap-load mix  HOST:PORT USER PASS CLIENTS SECONDS     mixed operations; prints latency stats
//! imap-load idle HOST:PORT USER PASS CONNECTIONS HOLD_S   open CONNECTIONS sessions in IDLE
//! imap-load select HOST:PORT USER PASS MAILBOX TIMES     time SELECT of a (big) mailbox
//! ```
//!
//! Output is one `key=value` line per result, for bench/imap.sh to collect.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    tag: u64,
}

impl Conn {
    fn open(addr: &str, user: &str, pass: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        let mut c = Conn { r: BufReader::new(s.try_clone()?), w: s, tag: 0 };
        let mut greeting = String::new();
        c.r.read_line(&mut greeting)?;
        c.cmd(&format!("LOGIN \"{user}\" \"{pass}\""))?;
        Ok(c)
    }

    /// Sends a command (with a literal if `literal` is given, LITERAL+ style) and reads to its
    /// tagged completion; returns the completion line. Literals in responses are skipped.
    fn cmd_with(&mut self, line: &str, literal: Option<&[u8]>) -> std::io::Result<String> {
        self.tag += 1;
        let tag = format!("L{}", self.tag);
        match literal {
            Some(data) => {
                self.w.write_all(format!("{tag} {line} {{{}+}}\r\n", data.len()).as_bytes())?;
                self.w.write_all(data)?;
                self.w.write_all(b"\r\n")?;
            }
            None => self.w.write_all(format!("{tag} {line}\r\n").as_bytes())?,
        }
        loop {
            let mut l = String::new();
            if self.r.read_line(&mut l)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if let Some(n) = literal_len(&l) {
                let mut skip = vec![0; n];
                self.r.read_exact(&mut skip)?;
                continue;
            }
            if l.starts_with(&format!("{tag} ")) {
                if !l[tag.len() + 1..].starts_with("OK") {
                    return Err(std::io::Error::other(format!("{line}: {l}")));
                }
                return Ok(l);
            }
        }
    }

    fn cmd(&mut self, line: &str) -> std::io::Result<String> {
        self.cmd_with(line, None)
    }
}

fn literal_len(l: &str) -> Option<usize> {
    let t = l.trim_end();
    let body = t.strip_suffix('}')?;
    let open = body.rfind('{')?;
    body[open + 1..].trim_end_matches('+').parse().ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn mix(addr: &str, user: &str, pass: &str, clients: usize, secs: u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let lat = Arc::new(Mutex::new(Vec::<f64>::new()));
    let errors = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (stop, lat, errors) = (stop.clone(), lat.clone(), errors.clone());
            let (addr, user, pass) = (addr.to_owned(), user.to_owned(), pass.to_owned());
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                let Ok(mut c) = Conn::open(&addr, &user, &pass) else {
                    *errors.lock().unwrap() += 1;
                    return;
                };
                let msg = format!("From: load@example.org\r\nSubject: load {i}\r\n\r\n{}\r\n", "x".repeat(2000));
                let mut n = 0u64;
                let mut stop_me = false;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let k = 1 + (n * 7 + i as u64) % 50;
                    let ops: [(&str, Option<&[u8]>); 9] = [
                        ("SELECT INBOX", None),
                        ("FETCH 1:* (FLAGS)", None),
                        (&*format!("FETCH {k} (BODY.PEEK[HEADER])"), None),
                        (&*format!("FETCH {k} (BODY.PEEK[])"), None),
                        ("SEARCH UNSEEN", None),
                        (&*format!("STORE {k} +FLAGS.SILENT (\\Flagged)"), None),
                        ("APPEND INBOX (\\Deleted)", Some(msg.as_bytes())),
                        ("EXPUNGE", None),
                        ("NOOP", None),
                    ];
                    for (op, lit) in ops {
                        let t = Instant::now();
                        match c.cmd_with(op, lit) {
                            Ok(_) => mine.push(t.elapsed().as_secs_f64() * 1000.0),
                            Err(e) => {
                                let mut n = errors.lock().unwrap();
                                if *n < 5 {
                                    eprintln!("client {i}: {e}");
                                }
                                *n += 1;
                                if e.kind() != std::io::ErrorKind::Other {
                                    // The connection is gone: this client is done.
                                    stop_me = true;
                                    break;
                                }
                            }
                        }
                    }
                    if stop_me {
                        break;
                    }
                }
                let _ = c.cmd("LOGOUT");
                lat.lock().unwrap().extend(mine);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let mut l = lat.lock().unwrap().clone();
    l.sort_by(|a, b| a.total_cmp(b));
    println!(
        "ops={} ops_per_s={:.1} p50_ms={:.3} p99_ms={:.3} errors={}",
        l.len(),
        l.len() as f64 / secs as f64,
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        errors.lock().unwrap()
    );
}

fn idle(addr: &str, user: &str, pass: &str, n: usize, hold: u64) {
    let mut conns = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        match Conn::open(addr, user, pass) {
            Ok(mut c) => {
                if c.cmd("SELECT INBOX").is_err() {
                    break;
                }
                c.tag += 1;
                let _ = c.w.write_all(format!("L{} IDLE\r\n", c.tag).as_bytes());
                let mut l = String::new();
                let _ = c.r.read_line(&mut l);
                if !l.starts_with('+') {
                    break;
                }
                conns.push(c);
            }
            Err(e) => {
                eprintln!("connection {} failed: {e}", conns.len());
                break;
            }
        }
    }
    println!("idle_connections={} setup_s={:.1}", conns.len(), started.elapsed().as_secs_f64());
    std::thread::sleep(Duration::from_secs(hold));
}

fn select(addr: &str, user: &str, pass: &str, mailbox: &str, times: usize) {
    let mut c = Conn::open(addr, user, pass).expect("login");
    for i in 0..times {
        let t = Instant::now();
        c.cmd(&format!("EXAMINE \"{mailbox}\"")).expect("select");
        println!("select_{i}_ms={:.1}", t.elapsed().as_secs_f64() * 1000.0);
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: imap-load mix|idle|select HOST:PORT USER PASS N SECONDS|MAILBOX [TIMES]");
        std::process::exit(2)
    };
    if a.len() < 7 {
        usage();
    }
    let num = |s: &str| s.parse::<u64>().unwrap_or_else(|_| usage());
    match a[1].as_str() {
        "mix" => mix(&a[2], &a[3], &a[4], num(&a[5]) as usize, num(&a[6])),
        "idle" => idle(&a[2], &a[3], &a[4], num(&a[5]) as usize, num(&a[6])),
        "select" => select(&a[2], &a[3], &a[4], &a[5], a.get(6).map_or(2, |t| num(t) as usize)),
        _ => usage(),
    }
}
