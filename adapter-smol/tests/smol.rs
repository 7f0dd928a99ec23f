//! What only smol has: an executor with a number of threads, and `drive_connection` on an
//! executor of the caller's. The sessions and tests are the shared ones from
//! `adapter-conformance`.

mod runtime;

use adapter_conformance::client::{Feeder, Job, Script};
use adapter_conformance::peer::Peer;
use adapter_conformance::{LIMIT, inbound, outbound};
use adapter_smol::Shutdown;
use runtime::Smol;

/// With one executor thread, blocking work run on it, a panic that took it down, or a busy
/// connection that never yielded would stall every other connection: the shared tests for
/// those, again, on one thread.
mod one_executor_thread {
    use super::*;

    type One = Smol<1>;

    #[test]
    fn work_does_not_block_other_connections() {
        inbound::work_does_not_block_other_connections::<One>();
    }

    #[test]
    fn a_busy_peer_does_not_starve_the_others() {
        inbound::a_busy_peer_does_not_starve_the_others::<One>();
    }

    #[test]
    fn a_panicking_session_ends_only_its_connection_without_on_close() {
        inbound::a_panicking_session_ends_only_its_connection_without_on_close::<One>();
    }

    #[test]
    fn a_panicking_handler_ends_only_its_connection_without_on_close() {
        inbound::a_panicking_handler_ends_only_its_connection_without_on_close::<One>();
    }

    #[test]
    fn panicking_work_ends_only_its_connection_with_on_close() {
        inbound::panicking_work_ends_only_its_connection_with_on_close::<One>();
    }

    #[test]
    fn outbound_panics_end_only_their_own_connection() {
        outbound::panics_end_only_their_own_connection::<One>();
    }

    #[test]
    fn several_outbound_connections_at_once() {
        outbound::several_connections_at_once_come_back_in_input_order::<One>();
    }
}

#[test]
fn drive_connection_on_a_caller_owned_executor() {
    let peer = Peer::start();
    let drive = async {
        let stream = smol::Async::<std::net::TcpStream>::connect(peer.addr)
            .await
            .expect("connect to the peer");
        let handler = Feeder::new([Job::line("ECHO x"), Job::line("QUIT")]);
        let opts = adapter_smol::Options {
            grace: LIMIT,
            ..Default::default()
        };
        adapter_smol::drive_connection(stream, Script::new(), handler, &Shutdown::new(), &opts)
            .await
    };
    let give_up = async {
        smol::Timer::after(LIMIT).await;
        panic!("drive_connection did not finish within {LIMIT:?}")
    };
    let ended = smol::block_on(smol::future::or(drive, give_up));
    assert_eq!(
        outbound::clean(ended).handler.log,
        ["greeting hi 0", "x", "bye"]
    );
    assert_eq!(peer.received.lines(0), ["ECHO x", "QUIT"]);
}
