//! `adapter-smol` as an [`adapter_conformance::Runtime`], with `THREADS` executor threads.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use adapter_conformance::{Outbound, Runtime, Server, Trigger};
use adapter_smol::Shutdown;
use session_api::{Handler, Service};

/// `adapter_smol::run` and `adapter_smol::run_connections` on `THREADS` executor threads.
pub(crate) struct Smol<const THREADS: usize>;

/// The suite's options as smol's.
fn options(threads: usize, opts: adapter_conformance::Options) -> adapter_smol::Options {
    adapter_smol::Options {
        read_buffer: opts.read_buffer,
        max_output: opts.max_output,
        grace: opts.grace,
        linger: opts.linger,
        max_connections: opts.max_connections,
        threads: Some(threads),
        tls: opts.tls,
    }
}

impl<const THREADS: usize> Runtime for Smol<THREADS> {
    fn start<S: Service>(service: Arc<S>, opts: adapter_conformance::Options) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        let opts = options(THREADS, opts);
        let thread =
            std::thread::spawn(move || adapter_smol::run(listener, service, shutdown, opts));
        Server::new(addr, Trigger::new(move || trigger.trigger()), thread)
    }

    fn start_two<A: Service, B: Service>(
        a: Arc<A>,
        b: Arc<B>,
        opts: adapter_conformance::Options,
    ) -> (Server, SocketAddr) {
        let bind = || TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let (la, lb) = (bind(), bind());
        let addrs = [la.local_addr(), lb.local_addr()].map(|a| a.expect("the listener's address"));
        let tls = opts.tls.clone();
        let listeners = vec![
            adapter_smol::Listener::new(la, a, tls.clone()),
            adapter_smol::Listener::new(lb, b, tls),
        ];
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        let opts = options(THREADS, opts);
        let thread =
            std::thread::spawn(move || adapter_smol::run_listeners(listeners, shutdown, opts));
        let server = Server::new(addrs[0], Trigger::new(move || trigger.trigger()), thread);
        (server, addrs[1])
    }

    fn connections<H: Handler>(
        conns: Vec<(TcpStream, H::Session, H)>,
        opts: adapter_conformance::Options,
    ) -> Outbound<H> {
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        let opts = options(THREADS, opts);
        Outbound::new(Trigger::new(move || trigger.trigger()), move || {
            adapter_smol::run_connections(conns, shutdown, opts)
        })
    }
}
