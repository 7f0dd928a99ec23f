//! The fixed replies of the server, in one place so their codes are easy to audit against
//! RFC 5321 section 4.3.2 and RFC 3463.

use crate::{EnhancedCode, Reply};

pub(super) fn ok() -> Reply {
    Reply::new(250, EnhancedCode(2, 0, 0), "Ok")
}

pub(super) fn sender_ok() -> Reply {
    Reply::new(250, EnhancedCode(2, 1, 0), "Ok")
}

pub(super) fn recipient_ok() -> Reply {
    Reply::new(250, EnhancedCode(2, 1, 5), "Ok")
}

pub(crate) fn message_ok(id: Option<&str>) -> Reply {
    match id {
        Some(id) => Reply::new(250, EnhancedCode(2, 0, 0), format!("Ok: queued as {id}")),
        None => Reply::new(250, EnhancedCode(2, 0, 0), "Ok: queued"),
    }
}

pub(super) fn chunk_ok(size: u64) -> Reply {
    Reply::new(
        250,
        EnhancedCode(2, 0, 0),
        format!("Ok: {size} octets received"),
    )
}

pub(super) fn start_data() -> Reply {
    // 3xx replies have no enhanced status code: RFC 3463 defines classes 2, 4 and 5 only.
    Reply::multiline(354, None, ["End data with <CR><LF>.<CR><LF>"])
}

pub(super) fn bye(host: &str) -> Reply {
    Reply::new(
        221,
        EnhancedCode(2, 0, 0),
        format!("{host} closing connection"),
    )
}

pub(super) fn vrfy() -> Reply {
    // RFC 5321 section 3.5.3: 252 when we will not verify but will take mail for the user.
    Reply::new(
        252,
        EnhancedCode(2, 0, 0),
        "Cannot VRFY user, but will accept message and attempt delivery",
    )
}

pub(super) fn help() -> Reply {
    Reply::multiline(
        214,
        Some(EnhancedCode(2, 0, 0)),
        [
            "buzon SMTP server (RFC 5321)",
            "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP",
            "End of HELP",
        ],
    )
}

pub(super) fn unrecognized() -> Reply {
    Reply::new(500, EnhancedCode(5, 5, 2), "Command unrecognized")
}

pub(super) fn line_too_long() -> Reply {
    Reply::new(500, EnhancedCode(5, 5, 2), "Line too long")
}

pub(super) fn syntax(detail: &str) -> Reply {
    Reply::new(
        501,
        EnhancedCode(5, 5, 4),
        format!("Syntax error: {detail}"),
    )
}

pub(super) fn control_character() -> Reply {
    Reply::new(
        501,
        EnhancedCode(5, 5, 2),
        "Syntax error: control character in the argument",
    )
}

pub(super) fn bad_sender() -> Reply {
    Reply::new(501, EnhancedCode(5, 1, 7), "Bad sender address syntax")
}

pub(super) fn bad_recipient() -> Reply {
    Reply::new(501, EnhancedCode(5, 1, 3), "Bad recipient address syntax")
}

pub(super) fn address_too_long() -> Reply {
    Reply::new(
        501,
        EnhancedCode(5, 5, 4),
        "Address too long (RFC 5321 section 4.5.3.1)",
    )
}

pub(super) fn not_implemented() -> Reply {
    Reply::new(502, EnhancedCode(5, 5, 1), "Command not implemented")
}

pub(super) fn starttls_needs_ehlo() -> Reply {
    Reply::new(
        503,
        EnhancedCode(5, 5, 1),
        "STARTTLS needs EHLO: it is an ESMTP extension",
    )
}

pub(super) fn auth_needs_ehlo() -> Reply {
    Reply::new(
        503,
        EnhancedCode(5, 5, 1),
        "AUTH needs EHLO: it is an ESMTP extension",
    )
}

pub(super) fn need_helo() -> Reply {
    Reply::new(503, EnhancedCode(5, 5, 1), "Send EHLO or HELO first")
}

pub(super) fn need_mail() -> Reply {
    Reply::new(503, EnhancedCode(5, 5, 1), "Need MAIL command first")
}

pub(super) fn nested_mail() -> Reply {
    Reply::new(503, EnhancedCode(5, 5, 1), "Nested MAIL command")
}

pub(super) fn data_after_bdat() -> Reply {
    Reply::new(
        503,
        EnhancedCode(5, 5, 1),
        "DATA not allowed after BDAT in one transaction",
    )
}

pub(super) fn bdat_needs_ehlo() -> Reply {
    Reply::new(
        503,
        EnhancedCode(5, 5, 1),
        "BDAT needs EHLO: CHUNKING is an ESMTP extension",
    )
}

pub(super) fn no_valid_recipients() -> Reply {
    Reply::new(554, EnhancedCode(5, 5, 1), "No valid recipients")
}

pub(super) fn param_not_implemented(what: &str) -> Reply {
    Reply::new(
        504,
        EnhancedCode(5, 5, 4),
        format!("{what} not implemented"),
    )
}

pub(super) fn unknown_param(keyword: &str) -> Reply {
    Reply::new(
        555,
        EnhancedCode(5, 5, 4),
        format!("Unsupported parameter {keyword}"),
    )
}

pub(super) fn too_big() -> Reply {
    Reply::new(
        552,
        EnhancedCode(5, 3, 4),
        "Message size exceeds fixed maximum message size",
    )
}

pub(super) fn too_many_recipients() -> Reply {
    Reply::new(452, EnhancedCode(4, 5, 3), "Too many recipients")
}

pub(super) fn non_ascii_address() -> Reply {
    // RFC 6531 section 3.5.
    Reply::new(
        553,
        EnhancedCode(5, 6, 7),
        "Non-ASCII address requires SMTPUTF8",
    )
}

pub(super) fn bare_line_ending() -> Reply {
    Reply::new(
        554,
        EnhancedCode(5, 6, 0),
        "Message refused: bare CR or LF in data (RFC 5321 section 2.3.8)",
    )
}

pub(super) fn long_text_line(limit: usize) -> Reply {
    Reply::new(
        554,
        EnhancedCode(5, 6, 0),
        format!("Message refused: line longer than {limit} octets (RFC 5321 section 4.5.3.1.6)"),
    )
}

pub(super) fn timeout(host: &str) -> Reply {
    Reply::new(
        421,
        EnhancedCode(4, 4, 2),
        format!("{host} Timeout, closing connection"),
    )
}

pub(super) fn too_many_errors(host: &str) -> Reply {
    Reply::new(
        421,
        EnhancedCode(4, 7, 0),
        format!("{host} Too many errors, closing connection"),
    )
}

pub(super) fn shutting_down(host: &str) -> Reply {
    Reply::new(
        421,
        EnhancedCode(4, 3, 2),
        format!("{host} Service shutting down"),
    )
}
