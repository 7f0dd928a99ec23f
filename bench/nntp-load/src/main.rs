//! A load generator for NNTP reader servers, std only: plain TCP, AUTHINFO, one thread per
//! client.
//!
//! ```text
//! nntp-load read HOST:PORT USER PASS GROUP CLIENTS SECONDS [reader|status]
//! ```
//!
//! Each client logs in once, then repeats what a reader does when it opens a group and reads
//! (`reader`, the default): GROUP, XOVER over the last 50 articles, then ARTICLE, HEAD and
//! STAT of one of them; or only the one-line commands (`status`): GROUP and STAT. Prints
//! one `key=value` line: commands per second over all clients, latency percentiles in
//! milliseconds, errors.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(addr: &str, user: &str, pass: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        let mut c = Conn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        };
        let greeting = c.line()?;
        if !greeting.starts_with('2') {
            return Err(std::io::Error::other(format!("greeting: {greeting}")));
        }
        c.cmd("MODE READER", false)?;
        c.expect(&format!("AUTHINFO USER {user}"), "381")?;
        c.expect(&format!("AUTHINFO PASS {pass}"), "281")?;
        Ok(c)
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut l = String::new();
        if self.r.read_line(&mut l)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(l.trim_end().to_owned())
    }

    /// Sends `line`, reads the status line and, for a multi-line reply, the lines up to `.`;
    /// returns the status line and how many lines followed.
    fn cmd(&mut self, line: &str, multi: bool) -> std::io::Result<(String, usize)> {
        self.w.write_all(format!("{line}\r\n").as_bytes())?;
        let status = self.line()?;
        let mut lines = 0;
        if multi && matches!(status.get(..1), Some("1" | "2")) {
            loop {
                let l = self.line()?;
                if l == "." {
                    break;
                }
                lines += 1;
            }
        }
        Ok((status, lines))
    }

    fn expect(&mut self, line: &str, code: &str) -> std::io::Result<String> {
        let (status, _) = self.cmd(line, false)?;
        if !status.starts_with(code) {
            return Err(std::io::Error::other(format!("{line}: {status}")));
        }
        Ok(status)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn read(
    addr: &str,
    user: &str,
    pass: &str,
    group: &str,
    clients: usize,
    secs: u64,
    status_only: bool,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let lat = Arc::new(Mutex::new(Vec::<f64>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (stop, lat, errors) = (stop.clone(), lat.clone(), errors.clone());
            let (addr, user, pass, group) = (
                addr.to_owned(),
                user.to_owned(),
                pass.to_owned(),
                group.to_owned(),
            );
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                let mut c = match Conn::open(&addr, &user, &pass) {
                    Ok(c) => c,
                    Err(e) => {
                        errors.lock().unwrap().push(e.to_string());
                        return;
                    }
                };
                let mut n = 0u64;
                'outer: while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let t = Instant::now();
                    let (status, _) = match c.cmd(&format!("GROUP {group}"), false) {
                        Ok(r) => r,
                        Err(e) => {
                            errors.lock().unwrap().push(e.to_string());
                            break;
                        }
                    };
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                    let f: Vec<u64> = status.split(' ').filter_map(|w| w.parse().ok()).collect();
                    let (low, high) = match f.as_slice() {
                        [211, _, low, high, ..] if high >= low => (*low, *high),
                        _ => {
                            errors.lock().unwrap().push(format!("GROUP: {status}"));
                            break;
                        }
                    };
                    let k = low + (n * 7 + i as u64) % (high - low + 1);
                    let window = format!("XOVER {}-{high}", high.saturating_sub(49).max(low));
                    let (article, head, stat) = (
                        format!("ARTICLE {k}"),
                        format!("HEAD {k}"),
                        format!("STAT {k}"),
                    );
                    let all = [
                        (window.as_str(), true),
                        (article.as_str(), true),
                        (head.as_str(), true),
                        (stat.as_str(), false),
                    ];
                    let cmds = if status_only { &all[3..] } else { &all[..] };
                    for &(cmd, multi) in cmds {
                        let t = Instant::now();
                        match c.cmd(cmd, multi) {
                            Ok((s, _)) if s.starts_with('2') => {
                                mine.push(t.elapsed().as_secs_f64() * 1000.0)
                            }
                            Ok((s, _)) => {
                                errors.lock().unwrap().push(format!("{cmd}: {s}"));
                                break 'outer;
                            }
                            Err(e) => {
                                errors.lock().unwrap().push(format!("{cmd}: {e}"));
                                break 'outer;
                            }
                        }
                    }
                }
                let _ = c.cmd("QUIT", false);
                lat.lock().unwrap().extend(mine);
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = lat.lock().unwrap().clone();
    l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let errors = errors.lock().unwrap();
    println!(
        "cmds_per_s={:.0} p50_ms={:.3} p99_ms={:.3} commands={} errors={}{}",
        l.len() as f64 / elapsed,
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        l.len(),
        errors.len(),
        errors
            .first()
            .map(|e| format!(" first_error={e:?}"))
            .unwrap_or_default()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: nntp-load read HOST:PORT USER PASS GROUP CLIENTS SECONDS [reader|status]";
    match args.get(1).map(String::as_str) {
        Some("read") if args.len() == 8 || args.len() == 9 => read(
            &args[2],
            &args[3],
            &args[4],
            &args[5],
            args[6].parse().expect(usage),
            args[7].parse().expect(usage),
            args.get(8).is_some_and(|m| m == "status"),
        ),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
