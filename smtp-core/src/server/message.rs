//! Receiving message data: DATA (dot-stuffed, RFC 5321 section 4.1.1.4) and BDAT chunks
//! (counted octets, no dot transparency, RFC 3030).

use super::{Pending, ServerSession, replies};
use crate::Reply;
use crate::dot::DotDecoder;
use crate::event::{AbortReason, ServerEvent, Violation};

/// Message data being read.
#[derive(Debug)]
pub(super) enum Reception {
    /// A DATA body, up to `CRLF.CRLF`.
    Data {
        decoder: DotDecoder,
        size: u64,
        /// Set once the message is refused; the rest is read and dropped.
        refused: Option<AbortReason>,
        /// Octets dropped since the refusal.
        dropped: u64,
    },
    /// One accepted BDAT chunk.
    Chunk {
        size: u64,
        remaining: u64,
        last: bool,
    },
    /// The octets of a refused BDAT chunk, dropped; `reply` is sent after them.
    Discard {
        remaining: u64,
        violation: Violation,
        reply: Reply,
        /// The refusal ends the transaction.
        reset: bool,
    },
}

impl Reception {
    pub(super) fn data(max_line: usize) -> Self {
        Reception::Data {
            decoder: DotDecoder::new(max_line),
            size: 0,
            refused: None,
            dropped: 0,
        }
    }

    pub(super) fn chunk(size: u64, last: bool) -> Self {
        Reception::Chunk {
            size,
            remaining: size,
            last,
        }
    }

    pub(super) fn discard(remaining: u64, violation: Violation, reply: Reply, reset: bool) -> Self {
        Reception::Discard {
            remaining,
            violation,
            reply,
            reset,
        }
    }
}

impl ServerSession {
    /// Reads message data from `rest`; returns the octets consumed.
    pub(super) fn receive(&mut self, rest: &[u8]) -> usize {
        let max_size = self.config.limits.message_size;
        let Some(reception) = &mut self.reception else {
            return 0;
        };
        match reception {
            Reception::Data {
                decoder,
                size,
                refused,
                dropped,
            } => {
                let before = refused.is_none().then(|| decoder.clone());
                let mut body = Vec::with_capacity(rest.len());
                let (used, done) = decoder.decode(rest, &mut body);
                let decoded = body.len() as u64;
                let mut newly_refused = None;
                if let Some(before) = before {
                    newly_refused = refusal(decoder, *size + body.len() as u64, max_size);
                    if let Some(reason) = newly_refused {
                        // The host gets the body up to the octet that broke a rule, and the
                        // first rule broken decides the reply, however the input was cut.
                        let (accepted, first) =
                            first_refusal(before, &rest[..used], *size, max_size);
                        body = accepted;
                        newly_refused = Some(first.unwrap_or(reason));
                    }
                    *size += body.len() as u64;
                    *dropped += decoded - body.len() as u64;
                    *refused = newly_refused;
                    if !body.is_empty() {
                        self.events.push_back(ServerEvent::MessageData(body));
                    }
                } else {
                    *dropped += decoded;
                }
                // A refused message is read to its end so the session stays in step, but not
                // without bound: past another `max_size` the peer is not sending a message.
                let endless = *dropped > max_size;
                if let Some(reason) = newly_refused {
                    self.abort_message(reason);
                }
                if endless {
                    self.reception = None;
                    self.txn = None;
                    self.violation(Violation::MessageTooBig);
                    self.reply(&replies::too_big());
                    self.give_up();
                    return used;
                }
                if done {
                    self.data_done();
                }
                used
            }
            Reception::Chunk { remaining, .. } => {
                let n = clamp(*remaining, rest.len());
                *remaining -= n as u64;
                let finished = *remaining == 0;
                if n > 0 {
                    if let Some(txn) = &mut self.txn {
                        txn.bdat_size += n as u64;
                    }
                    self.events
                        .push_back(ServerEvent::MessageData(rest[..n].to_vec()));
                }
                if finished {
                    self.chunk_done();
                }
                n
            }
            Reception::Discard { remaining, .. } => {
                let n = clamp(*remaining, rest.len());
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.discard_done();
                }
                n
            }
        }
    }

    fn data_done(&mut self) {
        let Some(Reception::Data { size, refused, .. }) = self.reception.take() else {
            unreachable!("data_done runs at the end of DATA");
        };
        let refusal = match refused {
            None => None,
            Some(AbortReason::TooBig) => Some((Violation::MessageTooBig, replies::too_big())),
            Some(AbortReason::BareLineEnding) => {
                Some((Violation::BareLineEnding, replies::bare_line_ending()))
            }
            Some(_) => Some((
                Violation::LongTextLine,
                replies::long_text_line(self.config.limits.text_line),
            )),
        };
        match refusal {
            Some((violation, reply)) => {
                self.violation(violation);
                self.reply(&reply);
                self.txn = None;
                if self.shutting_down {
                    self.say_goodbye();
                }
            }
            None => self.message_end(size),
        }
    }

    fn chunk_done(&mut self) {
        let Some(Reception::Chunk { size, last, .. }) = self.reception.take() else {
            unreachable!("chunk_done runs at the end of a chunk");
        };
        if last {
            let total = self.txn.as_ref().map_or(0, |t| t.bdat_size);
            self.message_end(total);
        } else {
            self.reply(&replies::chunk_ok(size));
            if self.shutting_down {
                self.say_goodbye();
            }
        }
    }

    fn discard_done(&mut self) {
        let Some(Reception::Discard {
            violation,
            reply,
            reset,
            ..
        }) = self.reception.take()
        else {
            unreachable!("discard_done runs at the end of a refused chunk");
        };
        self.violation(violation);
        if reset {
            self.txn = None;
        }
        if violation == Violation::MessageTooBig || reply.code() == 554 {
            // Refusals of size or for want of recipients are what a pipelining client meets
            // in normal operation, not protocol errors: they do not count towards 421.
            self.reply(&reply);
        } else {
            self.error_reply(&reply);
        }
        if self.shutting_down && !self.closed {
            self.say_goodbye();
        }
    }

    /// The message is complete: the host stores it, then decides (the 250 waits for that).
    fn message_end(&mut self, size: u64) {
        if let Some(txn) = &mut self.txn {
            txn.receiving = false;
        }
        let ticket = self.ticket();
        self.events
            .push_back(ServerEvent::MessageEnd { ticket, size });
        self.pending = Some(Pending::MessageEnd { ticket });
    }

    /// Tells the host to drop a message it is storing, if there is one.
    pub(super) fn abort_message(&mut self, reason: AbortReason) {
        if let Some(txn) = &mut self.txn
            && std::mem::take(&mut txn.receiving)
        {
            self.events.push_back(ServerEvent::MessageAborted(reason));
        }
    }
}

/// Why a DATA body of `size` octets so far, read by `decoder`, must be refused, if it must.
fn refusal(decoder: &DotDecoder, size: u64, max_size: u64) -> Option<AbortReason> {
    if size > max_size {
        Some(AbortReason::TooBig)
    } else if decoder.saw_bare_line_ending() {
        Some(AbortReason::BareLineEnding)
    } else if decoder.saw_long_line() {
        Some(AbortReason::LongLine)
    } else {
        None
    }
}

/// Decodes `input` again one octet at a time from `decoder`, the state before it, to find the
/// octet at which the body (`size` octets before `input`) must be refused. Returns the body
/// decoded before that octet and the reason (`None` only if no octet breaks a rule, which
/// cannot happen when decoding `input` at once did).
///
/// Only the read that breaks a rule takes this path, once per message.
fn first_refusal(
    mut decoder: DotDecoder,
    input: &[u8],
    size: u64,
    max_size: u64,
) -> (Vec<u8>, Option<AbortReason>) {
    let mut body = Vec::with_capacity(input.len());
    let mut piece = Vec::with_capacity(2);
    for octet in input.chunks(1) {
        piece.clear();
        decoder.decode(octet, &mut piece);
        let total = size + (body.len() + piece.len()) as u64;
        if let Some(reason) = refusal(&decoder, total, max_size) {
            return (body, Some(reason));
        }
        body.extend_from_slice(&piece);
    }
    (body, None)
}

/// `min(remaining, available)` without truncating a 64-bit count on 32-bit targets.
fn clamp(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}
