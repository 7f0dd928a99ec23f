//! `CHUNKING` (RFC 3030): `BDAT size [LAST]`, message data in counted chunks.
//!
//! A chunk's octets follow whatever the server answers: they are always read, and dropped
//! when the command fails (section 2), so the session stays in step. There is no dot
//! transparency. The final `250` waits for the host's verdict like DATA's; `DATA` after a
//! `BDAT` in the same transaction is out of sequence. CHUNKING is offered only after EHLO.

use super::message::Reception;
use super::{ServerSession, replies};
use crate::event::{AbortReason, ServerEvent, Violation};

impl ServerSession {
    pub(super) fn bdat(&mut self, size: u64, last: bool) {
        // The chunk's octets follow whatever we answer: they are always read, and dropped if
        // the command fails (RFC 3030 section 2), so the session stays in step.
        let helo_only = self.helo.as_ref().is_some_and(|h| !h.esmtp);
        let refusal = match &self.txn {
            // CHUNKING is offered only in the EHLO reply (RFC 3030 section 2).
            _ if helo_only => Some((Violation::OutOfSequence, replies::bdat_needs_ehlo())),
            None if self.helo.is_none() => Some((Violation::OutOfSequence, replies::need_helo())),
            None => Some((Violation::OutOfSequence, replies::need_mail())),
            Some(txn) if txn.recipients.is_empty() => {
                Some((Violation::OutOfSequence, replies::no_valid_recipients()))
            }
            Some(txn) if txn.bdat_size.saturating_add(size) > self.config.limits.message_size => {
                Some((Violation::MessageTooBig, replies::too_big()))
            }
            Some(_) => None,
        };
        if let Some((violation, reply)) = refusal {
            // A message refused for its size is over: the transaction ends with it.
            let reset = violation == Violation::MessageTooBig;
            if reset && size > self.config.limits.message_size.saturating_mul(2) {
                // Reading a chunk this far over the limit would only waste time: refuse and
                // close rather than stay in step.
                self.abort_message(AbortReason::TooBig);
                self.txn = None;
                self.violation(violation);
                self.reply(&reply);
                return self.give_up();
            }
            if reset {
                self.abort_message(AbortReason::TooBig);
            }
            self.reception = Some(Reception::discard(size, violation, reply, reset));
        } else {
            let txn = self
                .txn
                .as_mut()
                .expect("refusal covers a missing transaction");
            if !txn.chunked {
                txn.chunked = true;
                txn.receiving = true;
                let envelope = self.envelope(true);
                self.events.push_back(ServerEvent::MessageStart(envelope));
            }
            self.reception = Some(Reception::chunk(size, last));
        }
        if size == 0 {
            // Nothing follows the command line, so no input would ever finish the chunk.
            self.receive(&[]);
        }
    }
}
