//! Several protocols in one process: listeners whose services have different handler types.

use std::sync::Arc;

use crate::liner::{self, LinerService};
use crate::pubsub::{self, PubSub};
use crate::{Options, Runtime};

/// A [`liner`] listener and a [`pubsub`] listener in one process each speak their own protocol
/// to their own connections, at the same time, and one shutdown stops both: the liner says
/// its goodbye on both.
pub fn two_protocols_in_one_process_stop_together<R: Runtime>() {
    let lines = LinerService::default();
    let stats = Arc::clone(&lines.stats);
    let (mut server, other) = R::start_two(
        Arc::new(lines),
        Arc::new(PubSub::default()),
        Options::default(),
    );
    let mut a = liner::Client::greeted(server.addr);
    let mut b = pubsub::Client::connect(other);
    a.send("ECHO from the liner\r\n");
    assert_eq!(b.ask("SUB news"), "subscribed news");
    assert_eq!(a.line(), "from the liner");
    let mut writer = pubsub::Client::connect(other);
    assert_eq!(writer.ask("PUB news both"), "published 1");
    assert_eq!(b.line(), "notice news both");
    // Each port speaks only its own protocol.
    assert_eq!(writer.ask("ECHO x"), "?");
    assert_eq!(stats.opened(), 1);
    server.stop();
    assert_eq!(a.line(), "shutdown");
    a.expect_eof();
    assert_eq!(b.line(), "shutdown");
    b.expect_eof();
}
