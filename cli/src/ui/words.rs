//! What SMTP answers mean, in words a person who is not a mail administrator can act on.

use crate::send::report::Status;

/// What a row's outcome means and what to do about it.
pub(crate) fn meaning(status: Status, reply: &str) -> &'static str {
    let code = reply_code(reply);
    match (status, code.as_deref()) {
        (Status::Sent | Status::Partial, _) => "The server accepted the message.",
        (Status::Invalid, _) => {
            "The message could not be made for this row: fix what the reply names (a field, an attachment, an address), then send it again."
        }
        (Status::Skipped, _) => {
            "This row was not sent: it has no usable address, or repeats an earlier row's."
        }
        (_, Some(c)) if c.starts_with("5.1.") => {
            "The receiving server says this address does not exist: check it for typos."
        }
        (_, Some(c)) if c.starts_with("5.7.") => {
            "The server refuses to take this message from you (not allowed to relay, or the sender is not yours): check the From address, the user and the server."
        }
        (_, Some(c)) if c.starts_with("5.3.4") || c.starts_with("5.2.3") => {
            "The message is too big for the server: attach less."
        }
        (_, Some(c)) if c.starts_with("4.") => {
            "The server asked to try again later (busy, greylisting or over a limit): buzon retried; send again later, or lower the rate."
        }
        (Status::Deferred, _) => {
            "The server did not take the message this time: send again later, or lower the rate."
        }
        _ => "The server refused the message: the reply says why.",
    }
}

/// What it means when no message can go through the server at all.
pub(crate) fn unusable(why: &str) -> &'static str {
    if why.contains("login refused") {
        "The server refused the user or password: check both in Server."
    } else if why.contains("TLS handshake failed") {
        "The secure connection failed: the server's certificate is not trusted or the TLS mode is wrong (port 465 is usually \"TLS from the first byte\", 587 STARTTLS)."
    } else if why.contains("STARTTLS") || why.contains("TLS") {
        "The server does not offer the secure connection the settings require: choose another TLS mode or port."
    } else if why.contains("cannot connect") {
        "Nothing answers at this host and port: check both, and that the server is running."
    } else {
        "The server cannot be used with these settings: the reply says why."
    }
}

/// The enhanced status code of a one-line reply (`550 5.1.1 ...` → `5.1.1`), or the reply code
/// turned into its class (`451 ...` → `4.`), so the words above can match either.
fn reply_code(reply: &str) -> Option<String> {
    // A refused recipient's reply comes as `address: 550 5.1.1 ...`: the first word that is a
    // reply code starts the reply.
    let mut words = reply.split_whitespace().skip_while(|w| {
        !(w.len() == 3
            && w.bytes().all(|b| b.is_ascii_digit())
            && (b'2'..=b'5').contains(&w.as_bytes()[0]))
    });
    let basic = words.next()?;
    match words.next() {
        Some(e) if e.split('.').count() == 3 && e.starts_with(&basic[..1]) => Some(e.to_owned()),
        _ => Some(format!("{}.", &basic[..1])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_explained_by_their_codes() {
        assert!(meaning(Status::Failed, "a@x: 550 5.1.1 no such user").contains("does not exist"));
        assert!(meaning(Status::Failed, "550 5.7.1 Relay access denied").contains("relay"));
        assert!(meaning(Status::Deferred, "451 4.3.0 try later").contains("try again later"));
        assert!(meaning(Status::Deferred, "421 busy").contains("try again later"));
        assert!(meaning(Status::Failed, "554 no").contains("the reply says why"));
        let simulated = "permfail@x.org: 550 5.1.1 test mode: no such user here";
        assert!(meaning(Status::Failed, simulated).contains("does not exist"));
        assert!(
            unusable("x: login refused: 535 5.7.8 bad (STARTTLS)").contains("user or password")
        );
    }
}
