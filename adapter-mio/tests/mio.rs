//! What only mio has: a read budget per connection and loop turn (with edge-triggered
//! readiness, a connection stopped by its budget must be stepped again without a new edge),
//! `Server::run` and `Connections` as values prepared before they run. The sessions and peers
//! are the shared ones from `adapter-conformance`.

mod runtime;

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapter_conformance::client::{Feeder, Job, Script};
use adapter_conformance::liner::{Client, LinerService};
use adapter_conformance::peer::Peer;
use adapter_conformance::{Options, Outbound, Runtime, Trigger, inbound, outbound};
use runtime::{Mio, options};

#[test]
fn a_burst_larger_than_the_budget_is_read_to_the_end() {
    // Once the budget stops reading, nothing new arrives to wake the loop: the adapter must come
    // back to this connection on its own.
    let server = Mio::<512>::start(Arc::new(LinerService::default()), Options::default());
    let mut c = Client::greeted(server.addr);
    let batch: String = (0..5000).map(|i| format!("ECHO {i}\r\n")).collect();
    c.send(&batch);
    for i in 0..5000 {
        assert_eq!(c.line(), i.to_string());
    }
}

#[test]
fn ten_mib_echoed_with_tiny_buffers_and_budget() {
    inbound::ten_mib_echo::<Mio<1500>>(inbound::tiny_buffers());
}

#[test]
fn ten_mib_uploads_with_tiny_buffers_and_budget() {
    outbound::ten_mib_uploads::<Mio<1500>>(inbound::tiny_buffers());
}

#[test]
fn a_busy_peer_does_not_starve_the_others_with_a_small_budget() {
    inbound::a_busy_peer_does_not_starve_the_others::<Mio<1500>>();
}

#[test]
fn a_server_shut_down_before_run_returns_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = adapter_mio::Server::new(
        listener,
        Arc::new(LinerService::default()),
        options(64 * 1024, Options::default()),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    server.shutdown_handle().trigger();
    let started = Instant::now();
    server.run().unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    let refused = std::net::TcpStream::connect(addr).map(drop).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn connections_added_after_new_come_back_in_the_order_added() {
    let peer = Peer::start();
    let mut conns = adapter_mio::Connections::new(
        [outbound::conn(
            &peer,
            [Job::line("ECHO a"), Job::line("QUIT")],
        )],
        options(64 * 1024, Options::default()),
    )
    .unwrap();
    assert_eq!((conns.len(), conns.is_empty()), (1, false));
    let second = conns.push(
        peer.connect(),
        Script::new(),
        Feeder::new([Job::line("ECHO b"), Job::line("QUIT")]),
    );
    conns.extend([outbound::conn(&peer, [Job::line("ECHO c")])]);
    assert_eq!((second, conns.len()), (1, 3));
    let shutdown = conns.shutdown_handle();
    let (outcomes, _) = Outbound::new(Trigger::new(move || shutdown.trigger()), move || {
        conns.run()
    })
    .run();
    let logs: Vec<Vec<String>> = outcomes
        .into_iter()
        .map(|o| outbound::clean(o).handler.log)
        .collect();
    assert_eq!(
        logs,
        [
            vec!["greeting hi 0", "a", "bye"],
            vec!["greeting hi 1", "b", "bye"],
            vec!["greeting hi 2", "c"],
        ]
    );
    let empty = adapter_mio::Connections::<Feeder>::new([], Default::default()).unwrap();
    assert!(empty.is_empty());
}
