//! Recording a live session as a transcript.

use std::time::{Duration, Instant};

use crate::format::{Item, Transcript};

/// Builds a [`Transcript`] from what a live session saw: the bytes each side sent, the
/// transport changes and the time between them. The protocol adds its settings and directives
/// (through [`transcript_mut`](Recorder::transcript_mut)) and keeps credentials out before
/// handing bytes over. Pure: the caller writes the result where it likes.
///
/// ```
/// use std::time::{Duration, Instant};
/// use transcript::{Recorder, Transcript};
///
/// let now = Instant::now();
/// let mut r = Recorder::new(Transcript::<()>::default(), now);
/// r.server(b"220 ready\r\n", now);
/// r.client(b"QUIT\r\n", now + Duration::from_millis(1500));
/// assert_eq!(r.finish().to_string(), "S: 220 ready\n@ +2s\nC: QUIT\n");
/// ```
#[derive(Debug, Clone)]
pub struct Recorder<D> {
    t: Transcript<D>,
    last: Instant,
}

impl<D> Recorder<D> {
    /// Starts a recording at `now`, with the settings and directives already in `t`.
    pub fn new(t: Transcript<D>, now: Instant) -> Self {
        Recorder { t, last: now }
    }

    /// Notes the passage of time. Gaps of a second or more become `@ +Ns` lines, rounded up so
    /// that a timeout that fired live also fires in replay.
    fn tick(&mut self, now: Instant) {
        let gap = now.saturating_duration_since(self.last);
        if gap >= Duration::from_secs(1) {
            let secs = gap.as_secs() + u64::from(gap.subsec_nanos() > 0);
            self.t.items.push(Item::Advance(Duration::from_secs(secs)));
            self.last = now;
        }
    }

    /// Bytes the client sent, as they should appear in the recording.
    pub fn client(&mut self, bytes: &[u8], now: Instant) {
        self.tick(now);
        match self.t.items.last_mut() {
            Some(Item::Client(b)) => b.extend_from_slice(bytes),
            _ => self.t.items.push(Item::Client(bytes.to_vec())),
        }
    }

    /// Bytes the server sent.
    pub fn server(&mut self, bytes: &[u8], now: Instant) {
        self.tick(now);
        match self.t.items.last_mut() {
            Some(Item::Server(b)) => b.extend_from_slice(bytes),
            _ => self.t.items.push(Item::Server(bytes.to_vec())),
        }
    }

    /// A timer fired at `now`.
    pub fn timeout(&mut self, now: Instant) {
        self.tick(now);
    }

    /// The transport became TLS.
    pub fn tls(&mut self, now: Instant) {
        self.tick(now);
        self.t.items.push(Item::Tls);
    }

    /// The client closed its side.
    pub fn eof(&mut self, now: Instant) {
        self.tick(now);
        self.t.items.push(Item::Eof);
    }

    /// True if the client has sent nothing yet (a port probe, a health check).
    pub fn is_silent(&self) -> bool {
        !self.t.items.iter().any(|i| matches!(i, Item::Client(_)))
    }

    /// The recording so far, for the protocol to add its settings and directives.
    pub fn transcript_mut(&mut self) -> &mut Transcript<D> {
        &mut self.t
    }

    /// The transcript.
    pub fn finish(self) -> Transcript<D> {
        self.t
    }
}
