//! Server push under each runtime: notices from one connection reach others through their
//! notifiers ([`pubsub`]).

use std::sync::Arc;
use std::time::Duration;

use crate::pubsub::{self, Client};
use crate::{Options, Runtime, wait_until};

/// A notice from one connection reaches another at once, in order, between its own answers.
pub fn notices_reach_other_connections<R: Runtime>() {
    let server = R::start(Arc::new(pubsub::PubSub::default()), Options::default());
    let mut reader = Client::connect(server.addr);
    let mut other = Client::connect(server.addr);
    assert_eq!(reader.ask("SUB news"), "subscribed news");
    assert_eq!(other.ask("SUB news"), "subscribed news");
    let mut writer = Client::connect(server.addr);
    assert_eq!(writer.ask("PUB news first"), "published 2");
    assert_eq!(writer.ask("PUB news second"), "published 2");
    assert_eq!(writer.ask("PUB sport nobody"), "published 0");
    for client in [&mut reader, &mut other] {
        assert_eq!(client.line(), "notice news first");
        assert_eq!(client.line(), "notice news second");
    }
    // The reader's own requests still get their answers in order.
    assert_eq!(reader.ask("PING"), "pong");
}

/// A notifier of a connection that is gone says so, and is forgotten.
pub fn a_closed_connection_is_reported_gone<R: Runtime>() {
    let server = R::start(Arc::new(pubsub::PubSub::default()), Options::default());
    let mut reader = Client::connect(server.addr);
    assert_eq!(reader.ask("SUB news"), "subscribed news");
    assert_eq!(reader.ask("QUIT"), "bye");
    reader.expect_eof();
    drop(reader);
    let mut writer = Client::connect(server.addr);
    // The server notices the closed connection at its own pace.
    wait_until("the closed reader to stop counting", || {
        let answer = writer.ask("PUB news anyone");
        assert!(
            answer == "published 0" || answer == "published 1",
            "{answer}"
        );
        if answer == "published 1" {
            std::thread::sleep(Duration::from_millis(10));
        }
        answer == "published 0"
    });
}
