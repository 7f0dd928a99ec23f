//! The shared adapter conformance suite, under smol.

use std::sync::Arc;

use adapter_conformance::{Runtime, Server};
use session_api::Service;

struct Smol;

impl Runtime for Smol {
    fn start<S: Service>(service: Arc<S>, tls: Option<conn_driver::TlsMode>) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let shutdown = adapter_smol::Shutdown::new();
        let trigger = shutdown.clone();
        let opts = adapter_smol::Options {
            threads: Some(2),
            tls,
            ..Default::default()
        };
        let thread =
            std::thread::spawn(move || adapter_smol::run(listener, service, shutdown, opts));
        Server::new(addr, move || {
            trigger.trigger();
            thread
                .join()
                .expect("the server thread panicked")
                .expect("the server failed");
        })
    }
}

adapter_conformance::suite!(Smol);
