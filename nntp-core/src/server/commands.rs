//! What each command does: checks that need nothing from the host are answered here at
//! once; the rest become a [`Request`], finished in [`ServerSession::complete`].

use line_protocol::sasl::{Credentials, Mechanism, Secret};

use super::replies::{self, Block};
use super::{Current, Listing, Part, Pending, ServerSession};
use crate::event::{Answer, Request};
use crate::syntax::{ArticleRef, Command, CommandError, ListKind, Range, Target, date_digits};

impl ServerSession {
    /// Runs one command line.
    pub(super) fn command(&mut self, text: &str) {
        let cmd = match Command::parse(text) {
            Ok(c) => c,
            Err(CommandError::Unknown) => return self.error("500 Unknown command"),
            Err(CommandError::Syntax(why)) => return self.error(&format!("501 Syntax: {why}")),
        };
        if needs_login(&cmd) && !self.logged_in {
            return self.line("480 Authentication required");
        }
        match cmd {
            Command::Capabilities => {
                let caps = self.capabilities();
                self.block("101 Capability list:", caps);
            }
            Command::ModeReader => self.line("201 Reader mode, posting not permitted"),
            Command::Quit => {
                self.line("205 Connection closing");
                self.closed = true;
            }
            Command::Help => self.block("100 Help text follows", replies::help()),
            Command::Date => self.request(Request::Date, Pending::Date),
            Command::Post => self.line("440 Posting not permitted: these groups are read-only"),
            // RFC 3977 erratum 1533: a known command the server will not run is 502.
            Command::Ihave(_) => self.line("502 Transit service not offered here"),
            Command::StartTls => self.starttls(),
            Command::AuthUser(user) => {
                if let Some(refusal) = self.auth_refusal() {
                    return self.line(refusal);
                }
                self.auth_user = Some(user);
                self.line("381 Password required");
            }
            Command::AuthPass(password) => {
                if let Some(refusal) = self.auth_refusal() {
                    return self.line(refusal);
                }
                let Some(user) = self.auth_user.take() else {
                    return self.line("482 Authentication commands issued out of sequence");
                };
                let credentials =
                    Credentials::new(None, user, Secret::new(password.0), Mechanism::Login);
                self.request(Request::Login(credentials), Pending::Login);
            }
            Command::List(kind) => match kind {
                ListKind::OverviewFmt => {
                    let fmt = crate::OVERVIEW_FMT.iter().map(|f| f.to_string()).collect();
                    self.block("215 Order of fields in overview database", fmt);
                }
                ListKind::Headers(_) => {
                    // ":" says any header field can be asked for (RFC 3977 section 8.6.2).
                    let fields = [":", ":bytes", ":lines"].map(String::from).to_vec();
                    self.block("215 Headers and metadata items supported", fields);
                }
                ListKind::Motd => self.block("215 Message of the day follows", replies::motd()),
                ListKind::DistribPats => self.line("503 Distribution patterns are not kept here"),
                kind => self.request(
                    Request::Groups {
                        created_since: None,
                    },
                    Pending::List(kind),
                ),
            },
            Command::NewGroups(since) => self.request(
                Request::Groups {
                    created_since: Some(since),
                },
                Pending::NewGroups,
            ),
            Command::NewNews(wildmat, since) => {
                self.request(Request::NewNews { since }, Pending::NewNews(wildmat))
            }
            Command::Group(name) => {
                self.request(Request::Group(name), Pending::Group { listing: None })
            }
            Command::ListGroup { group, range } => {
                let Some(name) = group.or_else(|| self.group.as_ref().map(|g| g.info.name.clone()))
                else {
                    return self.line("412 No newsgroup selected");
                };
                self.request(
                    Request::Group(name),
                    Pending::Group {
                        listing: Some(range),
                    },
                );
            }
            Command::Article(r) => self.article(Part::Article, r),
            Command::Head(r) => self.article(Part::Head, r),
            Command::Body(r) => self.article(Part::Body, r),
            Command::Stat(r) => self.article(Part::Stat, r),
            Command::Next => self.step(true),
            Command::Last => self.step(false),
            Command::Over { target, legacy } => self.listing(Listing::Over { legacy }, target),
            Command::Hdr {
                field,
                target,
                legacy,
            } => self.listing(Listing::Hdr { field, legacy }, target),
            Command::XPat {
                field,
                target,
                patterns,
            } => self.listing(Listing::XPat { field, patterns }, Some(target)),
        }
    }

    /// Why AUTHINFO is refused now, if it is.
    fn auth_refusal(&self) -> Option<&'static str> {
        if self.logged_in {
            Some("502 Already authenticated")
        } else if !self.tls && !self.config.plaintext_auth {
            Some("483 Encryption required: use STARTTLS or the NNTPS port first")
        } else {
            None
        }
    }

    fn starttls(&mut self) {
        if self.tls {
            self.line("502 Already using TLS");
        } else if self.logged_in {
            // RFC 4642 section 2.2.1: not after authentication.
            self.line("502 STARTTLS is not allowed after authentication");
        } else if !self.config.starttls {
            self.line("502 STARTTLS not offered here");
        } else {
            self.line("382 Continue with TLS negotiation");
            self.upgrade = Some(session_api::Upgrade::Tls);
        }
    }

    fn capabilities(&self) -> Vec<String> {
        // VERSION first: tin reads nothing else otherwise (RFC 3977 section 5.2.2 requires it
        // anyway). READER and not MODE-READER: this server is not mode-switching (3.4.2).
        let mut caps = vec![
            "VERSION 2".to_owned(),
            "IMPLEMENTATION buzon".to_owned(),
            "READER".to_owned(),
            "HDR".to_owned(),
            "OVER MSGID".to_owned(),
            "NEWNEWS".to_owned(),
            "LIST ACTIVE ACTIVE.TIMES COUNTS HEADERS MOTD NEWSGROUPS OVERVIEW.FMT SUBSCRIPTIONS"
                .to_owned(),
        ];
        if !self.logged_in {
            // Bare AUTHINFO: possible, but not before TLS (RFC 4643 section 2.1).
            caps.push(if self.tls || self.config.plaintext_auth {
                "AUTHINFO USER".to_owned()
            } else {
                "AUTHINFO".to_owned()
            });
            if !self.tls && self.config.starttls {
                caps.push("STARTTLS".to_owned());
            }
        }
        caps
    }

    fn article(&mut self, part: Part, r: Option<ArticleRef>) {
        let (group, number) = match r {
            Some(ArticleRef::MessageId(id)) => {
                return self.request(
                    Request::ByMessageId(id),
                    Pending::Article { part, number: None },
                );
            }
            Some(ArticleRef::Number(n)) => match &self.group {
                Some(g) => (g.info.name.clone(), n),
                None => return self.line("412 No newsgroup selected"),
            },
            None => match &self.group {
                Some(Current {
                    article: Some(n),
                    info,
                    ..
                }) => (info.name.clone(), *n),
                Some(_) => return self.line("420 Current article number is invalid"),
                None => return self.line("412 No newsgroup selected"),
            },
        };
        self.request(
            Request::Articles {
                group,
                first: number,
                last: number,
            },
            Pending::Article {
                part,
                number: Some(number),
            },
        );
    }

    fn step(&mut self, forward: bool) {
        let Some(g) = &self.group else {
            return self.line("412 No newsgroup selected");
        };
        let Some(current) = g.article else {
            return self.line("420 Current article number is invalid");
        };
        let (first, last) = if forward {
            (current.saturating_add(1), g.info.high)
        } else {
            (g.info.low, current.saturating_sub(1))
        };
        if first > last || (!forward && current == 0) {
            return self.line(if forward {
                "421 No next article in this group"
            } else {
                "422 No previous article in this group"
            });
        }
        let group = g.info.name.clone();
        self.request(
            Request::Articles { group, first, last },
            Pending::Step { forward },
        );
    }

    fn listing(&mut self, listing: Listing, target: Option<Target>) {
        let range = match target {
            Some(Target::MessageId(id)) => {
                return self.request(
                    Request::ByMessageId(id),
                    Pending::Listing {
                        listing,
                        by_message_id: true,
                    },
                );
            }
            Some(Target::Range(r)) => r,
            None => match &self.group {
                Some(Current {
                    article: Some(n), ..
                }) => Range::single(*n),
                Some(_) => return self.line("420 Current article number is invalid"),
                None => return self.line("412 No newsgroup selected"),
            },
        };
        let Some(g) = &self.group else {
            return self.line("412 No newsgroup selected");
        };
        let last = range.last.unwrap_or(g.info.high);
        if range.first > last {
            return self.no_articles(&listing);
        }
        let group = g.info.name.clone();
        self.request(
            Request::Articles {
                group,
                first: range.first,
                last,
            },
            Pending::Listing {
                listing,
                by_message_id: false,
            },
        );
    }

    /// An empty range: RFC 3977 says `423`, but readers of XOVER rely on INN's `224` and no
    /// lines (Outlook Express, Windows Mail; INN issue 122), so XOVER keeps that.
    fn no_articles(&mut self, listing: &Listing) {
        match listing {
            Listing::Over { legacy: true } => {
                self.block("224 Overview information follows", Vec::new())
            }
            Listing::XPat { .. } => self.block("221 Header follows", Vec::new()),
            _ => self.line("423 No articles in that range"),
        }
    }

    /// Finishes the command a request was for.
    pub(super) fn complete(&mut self, pending: Pending, answer: Answer) {
        if let Answer::Failed(why) = &answer {
            let text = format!("403 {}", why.replace(['\r', '\n'], " "));
            return self.line(&text);
        }
        match (pending, answer) {
            (Pending::Login, Answer::LoggedIn) => {
                self.logged_in = true;
                self.line("281 Authentication accepted");
            }
            (Pending::Login, _) => self.error("481 Authentication failed"),
            (Pending::Date, Answer::Date(unix)) => {
                let text = format!("111 {}", date_digits(unix));
                self.line(&text);
            }
            (Pending::List(kind), Answer::Groups(groups)) => {
                let (head, lines) = replies::list(&kind, &groups);
                self.block(head, lines);
            }
            (Pending::NewGroups, Answer::Groups(groups)) => {
                let lines = groups.iter().map(replies::active_line).collect();
                self.block("231 List of new newsgroups follows", lines);
            }
            (Pending::NewNews(wildmat), Answer::MessageIds(ids)) => {
                let lines = ids
                    .into_iter()
                    .filter(|(group, _)| wildmat.matches(group))
                    .map(|(_, id)| id)
                    .collect();
                self.block("230 List of new articles by message-id follows", lines);
            }
            (Pending::Group { listing }, Answer::Group(found)) => {
                let Some(view) = found else {
                    return self.line("411 No such newsgroup");
                };
                let info = view.info;
                let first = view.numbers.first().copied();
                let status = format!(
                    "211 {} {} {} {}",
                    info.count, info.low, info.high, info.name
                );
                match listing {
                    None => self.line(&status),
                    Some(range) => {
                        let lines = view
                            .numbers
                            .iter()
                            .filter(|n| range.is_none_or(|r| r.contains(**n)))
                            .map(u64::to_string)
                            .collect();
                        self.block(&format!("{status} list follows"), lines);
                    }
                }
                self.group = Some(Current {
                    info,
                    article: first,
                });
            }
            (Pending::Article { part, number }, Answer::Articles(found)) => {
                let Some(article) = found.first() else {
                    return self.line(if number.is_some() {
                        "423 No article with that number"
                    } else {
                        "430 No article with that message-id"
                    });
                };
                let id = article.message_id().unwrap_or_else(|| "<>".into());
                // By message-id the number is 0 and the current article stays (6.2.1.2).
                let shown = number.unwrap_or(0);
                if let (Some(n), Some(g)) = (number, self.group.as_mut()) {
                    g.article = Some(n);
                }
                let mut out = std::mem::take(&mut self.out);
                match part {
                    Part::Article => {
                        let head = format!("220 {shown} {id}");
                        replies::text(&mut out, &head, &[article.head(), b"\r\n", article.body()]);
                    }
                    Part::Head => {
                        let head = format!("221 {shown} {id}");
                        replies::text(&mut out, &head, &[article.head()]);
                    }
                    Part::Body => {
                        let head = format!("222 {shown} {id}");
                        replies::text(&mut out, &head, &[article.body()]);
                    }
                    Part::Stat => {
                        out.extend_from_slice(format!("223 {shown} {id}\r\n").as_bytes());
                    }
                }
                self.out = out;
            }
            (Pending::Step { forward }, Answer::Articles(found)) => {
                let next = if forward { found.first() } else { found.last() };
                let Some(article) = next else {
                    return self.line(if forward {
                        "421 No next article in this group"
                    } else {
                        "422 No previous article in this group"
                    });
                };
                if let Some(g) = self.group.as_mut() {
                    g.article = Some(article.number);
                }
                let id = article.message_id().unwrap_or_else(|| "<>".into());
                let text = format!("223 {} {id}", article.number);
                self.line(&text);
            }
            (
                Pending::Listing {
                    listing,
                    by_message_id,
                },
                Answer::Articles(found),
            ) => {
                if found.is_empty() {
                    return if by_message_id {
                        self.line("430 No article with that message-id")
                    } else {
                        self.no_articles(&listing)
                    };
                }
                let (head, lines) = replies::listing(&listing, &found, by_message_id);
                self.block(head, lines);
            }
            (_, other) => {
                self.events
                    .push_back(crate::event::Event::Violation(format!(
                        "host answered with {other:?}"
                    )));
                self.line("403 Internal error");
            }
        }
    }

    /// Queues a multi-line reply: the first line, then `lines` dot-stuffed, then `.`.
    fn block(&mut self, first: &str, lines: Block) {
        replies::block(&mut self.out, first, &lines);
    }
}

/// Commands that read a user's groups: `480` before a login.
fn needs_login(cmd: &Command) -> bool {
    match cmd {
        Command::List(kind) => matches!(
            kind,
            ListKind::Active(_)
                | ListKind::Newsgroups(_)
                | ListKind::ActiveTimes(_)
                | ListKind::Counts(_)
                | ListKind::Subscriptions(_)
        ),
        Command::Group(_)
        | Command::ListGroup { .. }
        | Command::Article(_)
        | Command::Head(_)
        | Command::Body(_)
        | Command::Stat(_)
        | Command::Next
        | Command::Last
        | Command::Over { .. }
        | Command::Hdr { .. }
        | Command::XPat { .. }
        | Command::NewGroups(_)
        | Command::NewNews(..) => true,
        _ => false,
    }
}
