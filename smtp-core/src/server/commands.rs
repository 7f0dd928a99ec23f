//! What the server does with each command outside message data.

use super::message::Reception;
use super::{Helo, Pending, ServerSession, Transaction, replies};
use crate::address::AddressError;
use crate::command::{Command, CommandError, Param};
use crate::event::{AbortReason, BodyType, ServerEvent, Violation};
use crate::{Reply, ehlo};

impl ServerSession {
    /// Runs one command line (CRLF removed).
    pub(super) fn command(&mut self, line: &[u8]) {
        let cmd = match Command::parse(line) {
            Ok(cmd) => cmd,
            Err(e) => return self.parse_error(e),
        };
        match cmd {
            Command::Ehlo(name) => self.helo(name, true),
            Command::Helo(name) => self.helo(name, false),
            Command::Mail(from, params) => self.mail(from, params),
            Command::Rcpt(to, params) => self.rcpt(to, params),
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
            Command::Rset => {
                self.abort_message(AbortReason::Reset);
                self.txn = None;
                self.reply(&replies::ok());
            }
            Command::Noop => self.reply(&replies::ok()),
            Command::Quit => {
                // QUIT between BDAT chunks leaves a partial message the host must drop.
                self.abort_message(AbortReason::Disconnected);
                let host = self.config.hostname.clone();
                self.reply(&replies::bye(&host));
                self.close();
            }
            Command::Vrfy(_) => self.reply(&replies::vrfy()),
            Command::Help(_) => self.reply(&replies::help()),
            Command::StartTls if self.config.starttls => self.starttls(),
            // Not advertised, so "not implemented" is the honest answer (RFC 5321 4.2.4).
            Command::Expn(_) | Command::StartTls | Command::Auth(_) => {
                self.violation(Violation::NotImplemented);
                self.error_reply(&replies::not_implemented());
            }
        }
    }

    fn parse_error(&mut self, e: CommandError) {
        let (violation, reply) = match &e {
            CommandError::Unrecognized { .. } => (Violation::Unrecognized, replies::unrecognized()),
            CommandError::NotImplemented { .. } => {
                (Violation::NotImplemented, replies::not_implemented())
            }
            CommandError::ControlCharacter => (Violation::Syntax, replies::control_character()),
            CommandError::BadSender(AddressError::TooLong)
            | CommandError::BadRecipient(AddressError::TooLong) => {
                (Violation::Syntax, replies::address_too_long())
            }
            CommandError::BadSender(_) => (Violation::Syntax, replies::bad_sender()),
            CommandError::BadRecipient(_) => (Violation::Syntax, replies::bad_recipient()),
            _ => (Violation::Syntax, replies::syntax(&e.detail())),
        };
        self.violation(violation);
        self.error_reply(&reply);
    }

    pub(super) fn sequence_error(&mut self, reply: Reply) {
        self.violation(Violation::OutOfSequence);
        self.error_reply(&reply);
    }

    /// EHLO and HELO start over: any transaction is dropped (RFC 5321 section 4.1.4).
    fn helo(&mut self, name: String, esmtp: bool) {
        // Between BDAT chunks a message is in progress: the host must drop it.
        self.abort_message(AbortReason::Reset);
        self.txn = None;
        let host = &self.config.hostname;
        let reply = if esmtp {
            let starttls = self.config.starttls && self.tls.is_none();
            ehlo::reply(host, &name, &self.config.limits, starttls)
        } else {
            Reply::multiline(250, None, [host.clone()])
        };
        self.reply(&reply);
        self.events.push_back(ServerEvent::Helo {
            name: name.clone(),
            esmtp,
        });
        self.helo = Some(Helo { name, esmtp });
    }

    fn mail(&mut self, from: crate::address::ReversePath, params: Vec<Param>) {
        let Some(helo) = &self.helo else {
            return self.sequence_error(replies::need_helo());
        };
        if self.txn.is_some() {
            return self.sequence_error(replies::nested_mail());
        }
        let esmtp = helo.esmtp;
        let mut txn = Transaction {
            from,
            recipients: Vec::new(),
            smtputf8: false,
            body: BodyType::SevenBit,
            chunked: false,
            bdat_size: 0,
            receiving: false,
        };
        let mut seen: Vec<&str> = Vec::new();
        for p in &params {
            // Parameters are ESMTP: after HELO none were offered (RFC 5321 section 4.1.1.11).
            if !esmtp {
                return self.param_error(replies::unknown_param(&p.keyword));
            }
            if seen.contains(&p.keyword.as_str()) {
                return self.param_error(replies::syntax("duplicate parameter"));
            }
            seen.push(&p.keyword);
            match (p.keyword.as_str(), p.value.as_deref()) {
                ("SIZE", Some(v)) => match crate::size::parse(v) {
                    Some(declared) if declared > self.config.limits.message_size => {
                        // RFC 1870 section 6.1: refuse at MAIL when the declared size is too big.
                        self.violation(Violation::MessageTooBig);
                        self.reply(&replies::too_big());
                        return;
                    }
                    Some(_) => {}
                    None => return self.param_error(replies::syntax("bad SIZE value")),
                },
                // RFC 1870 section 3: `SIZE=` takes a value; RFC 6531 section 3.4: `SMTPUTF8`
                // takes none. Both keywords are offered, so a wrong form is a syntax error.
                ("SIZE", None) => return self.param_error(replies::syntax("bad SIZE value")),
                ("SMTPUTF8", Some(_)) => {
                    return self.param_error(replies::syntax("SMTPUTF8 takes no value"));
                }
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => {
                    txn.body = BodyType::SevenBit;
                }
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => {
                    txn.body = BodyType::EightBitMime;
                }
                ("BODY", Some(v)) if v.eq_ignore_ascii_case("BINARYMIME") => {
                    return self.param_error(replies::param_not_implemented("BODY=BINARYMIME"));
                }
                ("BODY", _) => return self.param_error(replies::syntax("bad BODY value")),
                ("SMTPUTF8", None) => txn.smtputf8 = true,
                (k, _) => {
                    let k = k.to_owned();
                    return self.param_error(replies::unknown_param(&k));
                }
            }
        }
        if !txn.smtputf8 && !txn.from.is_ascii() {
            self.violation(Violation::NonAsciiAddress);
            return self.error_reply(&replies::non_ascii_address());
        }
        self.events
            .push_back(ServerEvent::MailFrom(txn.from.clone()));
        self.txn = Some(txn);
        self.reply(&replies::sender_ok());
    }

    fn param_error(&mut self, reply: Reply) {
        self.violation(Violation::Syntax);
        self.error_reply(&reply);
    }

    fn rcpt(&mut self, to: crate::address::ForwardPath, params: Vec<Param>) {
        let Some(txn) = &self.txn else {
            return self.sequence_error(replies::need_mail());
        };
        if let Some(p) = params.first() {
            // No RCPT parameter is offered (DSN's NOTIFY and ORCPT need RFC 3461).
            return self.param_error(replies::unknown_param(&p.keyword.clone()));
        }
        if !txn.smtputf8 && !to.is_ascii() {
            self.violation(Violation::NonAsciiAddress);
            return self.error_reply(&replies::non_ascii_address());
        }
        if txn.recipients.len() >= self.config.limits.recipients {
            // RFC 5321 section 4.5.3.1.10: 452, and the client retries the rest later.
            self.violation(Violation::TooManyRecipients);
            return self.reply(&replies::too_many_recipients());
        }
        let ticket = self.ticket();
        self.events.push_back(ServerEvent::Recipient {
            ticket,
            to: to.clone(),
        });
        self.pending = Some(Pending::Recipient { ticket, to });
    }

    fn data(&mut self) {
        let Some(txn) = &self.txn else {
            return self.sequence_error(replies::need_mail());
        };
        if txn.chunked {
            return self.sequence_error(replies::data_after_bdat());
        }
        if txn.recipients.is_empty() {
            // RFC 5321 section 3.3 allows 503 or 554 here; 554 tells the client why. A
            // pipelining client meets this whenever every RCPT was refused (RFC 2920 section
            // 3.1), so it does not count towards the error limit.
            self.violation(Violation::OutOfSequence);
            return self.reply(&replies::no_valid_recipients());
        }
        self.reply(&replies::start_data());
        if let Some(txn) = &mut self.txn {
            txn.receiving = true;
        }
        let envelope = self.envelope(false);
        self.events.push_back(ServerEvent::MessageStart(envelope));
        self.reception = Some(Reception::data(self.config.limits.text_line));
    }

    fn bdat(&mut self, size: u64, last: bool) {
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

    fn envelope(&self, chunked: bool) -> crate::event::Envelope {
        let txn = self.txn.as_ref().expect("a message needs a transaction");
        let helo = self.helo.as_ref().expect("a transaction needs HELO");
        crate::event::Envelope {
            helo: helo.name.clone(),
            esmtp: helo.esmtp,
            from: txn.from.clone(),
            recipients: txn.recipients.clone(),
            smtputf8: txn.smtputf8,
            body: txn.body,
            chunked,
            tls: self.tls.clone(),
        }
    }
}
