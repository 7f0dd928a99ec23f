//! The shared adapter conformance suite, under mio.

use std::sync::Arc;

use adapter_conformance::{Runtime, Server};
use session_api::Service;

struct Mio;

impl Runtime for Mio {
    fn start<S: Service>(service: Arc<S>, tls: Option<conn_driver::TlsMode>) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("the listener's address");
        let server = adapter_mio::Server::new(
            listener,
            service,
            adapter_mio::Options {
                tls,
                ..Default::default()
            },
        )
        .expect("start the mio server");
        let shutdown = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run());
        Server::new(addr, move || {
            shutdown.trigger();
            thread
                .join()
                .expect("the server thread panicked")
                .expect("the server failed");
        })
    }
}

adapter_conformance::suite!(Mio);
