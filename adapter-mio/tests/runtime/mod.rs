//! `adapter-mio` as an [`adapter_conformance::Runtime`], reading at most `BUDGET` bytes per
//! connection and loop turn.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use adapter_conformance::{Outbound, Runtime, Server, Trigger};
use session_api::{Handler, Service};

/// `adapter_mio::Server` and `adapter_mio::Connections` with two workers and a read budget of
/// `BUDGET` (mio's default, 64 KiB, unless told otherwise).
pub(crate) struct Mio<const BUDGET: usize = { 64 * 1024 }>;

/// The suite's options as mio's.
pub(crate) fn options(budget: usize, opts: adapter_conformance::Options) -> adapter_mio::Options {
    adapter_mio::Options {
        workers: 2,
        read_buffer: opts.read_buffer,
        max_output: opts.max_output,
        budget,
        grace: opts.grace,
        linger: opts.linger,
        max_connections: opts.max_connections,
        tls: opts.tls,
    }
}

impl<const BUDGET: usize> Runtime for Mio<BUDGET> {
    fn start<S: Service>(service: Arc<S>, opts: adapter_conformance::Options) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let server = adapter_mio::Server::new(listener, service, options(BUDGET, opts))
            .expect("start the mio server");
        let addr = server.local_addr().expect("the listener's address");
        let shutdown = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run());
        Server::new(addr, Trigger::new(move || shutdown.trigger()), thread)
    }

    fn start_two<A: Service, B: Service>(
        a: Arc<A>,
        b: Arc<B>,
        opts: adapter_conformance::Options,
    ) -> (Server, SocketAddr) {
        let bind = || TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let opts = options(BUDGET, opts);
        let mut servers = adapter_mio::Servers::default();
        servers
            .add(adapter_mio::Server::new(bind(), a, opts.clone()).expect("start the first server"))
            .add(adapter_mio::Server::new(bind(), b, opts).expect("start the second server"));
        let addrs = servers.local_addrs().to_vec();
        let shutdown = servers.shutdown_handle();
        let thread = std::thread::spawn(move || servers.run());
        let server = Server::new(addrs[0], Trigger::new(move || shutdown.trigger()), thread);
        (server, addrs[1])
    }

    fn connections<H: Handler>(
        conns: Vec<(TcpStream, H::Session, H)>,
        opts: adapter_conformance::Options,
    ) -> Outbound<H> {
        let conns = adapter_mio::Connections::new(conns, options(BUDGET, opts))
            .expect("prepare the connections");
        let shutdown = conns.shutdown_handle();
        Outbound::new(Trigger::new(move || shutdown.trigger()), move || {
            conns.run()
        })
    }
}
