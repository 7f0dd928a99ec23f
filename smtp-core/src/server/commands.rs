//! What the server does with each command outside message data.

use super::message::Reception;
use super::{Helo, ParamError, Pending, ServerSession, Transaction, replies};
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
            Command::Auth(args) if self.config.auth.offered => self.auth(args.expose()),
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
            ehlo::reply(
                host,
                &name,
                &self.config.limits,
                starttls,
                self.auth_offered(),
            )
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
        if !self.may_send_as(&from) {
            return;
        }
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
            let value = p.value.as_deref();
            let outcome = match p.keyword.as_str() {
                "SIZE" => super::size::mail_param(value, self.config.limits.message_size),
                "BODY" => super::eightbitmime::mail_param(value).map(|body| txn.body = body),
                "SMTPUTF8" => super::smtputf8::mail_param(value).map(|()| txn.smtputf8 = true),
                other => Err(ParamError::Unknown(other.to_owned())),
            };
            match outcome {
                Ok(()) => {}
                Err(ParamError::TooBig) => {
                    // RFC 1870 section 6.1: refuse at MAIL when the declared size is too big.
                    self.violation(Violation::MessageTooBig);
                    self.reply(&replies::too_big());
                    return;
                }
                Err(ParamError::Syntax(detail)) => {
                    return self.param_error(replies::syntax(detail));
                }
                Err(ParamError::NotImplemented(what)) => {
                    return self.param_error(replies::param_not_implemented(what));
                }
                Err(ParamError::Unknown(keyword)) => {
                    return self.param_error(replies::unknown_param(&keyword));
                }
            }
        }
        if !super::smtputf8::allows(txn.smtputf8, txn.from.is_ascii()) {
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
        if !super::smtputf8::allows(txn.smtputf8, to.is_ascii()) {
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

    pub(super) fn envelope(&self, chunked: bool) -> crate::event::Envelope {
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
            login: self.login.as_ref().map(|l| l.user.clone()),
        }
    }
}
