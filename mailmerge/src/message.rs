//! Assembling the rendered parts into an RFC 5322 / MIME message.
//!
//! mail-builder does the encoding (RFC 2047 words for non-ASCII headers,
//! quoted-printable or base64 bodies, folding). What this module adds is
//! determinism: mail-builder would take MIME boundaries from the clock, so
//! they are derived from the Message-ID here instead, and the same inputs
//! always give the same bytes.

use crate::header_text;
use mail_builder::MessageBuilder;
use mail_builder::headers::HeaderType;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};

/// A display name (if any) and an address.
pub(crate) type Mailbox = (Option<String>, String);

/// Everything that goes into one message, already rendered and checked.
#[derive(Debug)]
pub(crate) struct Draft {
    pub(crate) from: Mailbox,
    pub(crate) sender: Option<Mailbox>,
    pub(crate) reply_to: Vec<Mailbox>,
    pub(crate) to: Vec<Mailbox>,
    pub(crate) cc: Vec<Mailbox>,
    pub(crate) subject: Option<String>,
    /// Other template headers, in template order.
    pub(crate) others: Vec<(String, String)>,
    pub(crate) date: i64,
    /// Without angle brackets.
    pub(crate) message_id: String,
    pub(crate) text: String,
    pub(crate) html: Option<String>,
    pub(crate) attachments: Vec<Attachment>,
}

/// One loaded attachment.
#[derive(Debug)]
pub(crate) struct Attachment {
    filename: String,
    content_type: &'static str,
    data: Vec<u8>,
}

impl Attachment {
    /// `path` is the name given to the loader; only its last component goes
    /// into the message, so local directory names do not leak to recipients.
    pub(crate) fn new(path: &str, data: Vec<u8>) -> Attachment {
        let filename = path.rsplit(['/', '\\']).next().unwrap_or(path).to_owned();
        Attachment {
            content_type: content_type_for(&filename),
            filename,
            data,
        }
    }
}

/// Guesses a MIME type from a file name's extension.
///
/// ```
/// assert_eq!(mailmerge::content_type_for("Report.PDF"), "application/pdf");
/// assert_eq!(mailmerge::content_type_for("notes"), "application/octet-stream");
/// ```
pub fn content_type_for(filename: &str) -> &'static str {
    let ext = match filename.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => String::new(),
    };
    match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "csv" => "text/csv",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Writes the message.
pub(crate) fn build(draft: Draft) -> Vec<u8> {
    let text = crlf(&draft.text);
    let html = draft.html.as_deref().map(crlf);
    let boundary = boundaries(
        &draft.message_id,
        &text,
        html.as_deref(),
        &draft.attachments,
    );

    let mut builder = MessageBuilder::new().header("From", address(&[draft.from]));
    if let Some(sender) = draft.sender {
        builder = builder.header("Sender", address(&[sender]));
    }
    if !draft.reply_to.is_empty() {
        builder = builder.header("Reply-To", address(&draft.reply_to));
    }
    builder = builder.header("To", address(&draft.to));
    if !draft.cc.is_empty() {
        builder = builder.header("Cc", address(&draft.cc));
    }
    // Bcc is envelope only: writing it would show every Bcc recipient to
    // all the others (RFC 5322 section 3.6.3 allows leaving it out).
    if let Some(subject) = draft.subject {
        builder = builder.header("Subject", unstructured(subject));
    }
    for (name, value) in draft.others {
        builder = builder.header(name, unstructured(value));
    }
    builder = builder
        .date(Date::new(draft.date))
        .message_id(MessageId::new(draft.message_id))
        .header("MIME-Version", Raw::new("1.0"));

    let mut body = MimePart::new("text/plain", BodyPart::Text(text.into()));
    if let Some(html) = html {
        let html = MimePart::new("text/html", BodyPart::Text(html.into()));
        body = MimePart::new(multipart("alternative", &boundary[0]), vec![body, html]);
    }
    if !draft.attachments.is_empty() {
        let mut parts = vec![body];
        for a in draft.attachments {
            parts.push(
                MimePart::new(a.content_type, BodyPart::Binary(a.data.into()))
                    .attachment(a.filename),
            );
        }
        body = MimePart::new(multipart("mixed", &boundary[1]), parts);
    }
    builder
        .body(body)
        .write_to_vec()
        .expect("writing to a Vec cannot fail")
}

/// An unstructured header value (RFC 5322 section 3.2.5), folded by
/// mail-builder at the spaces [`header_text`] leaves.
fn unstructured(value: String) -> HeaderType<'static> {
    Raw::new(header_text::unstructured(&value)).into()
}

/// An address-list header value.
///
/// Written here rather than by mail-builder, which splits encoded words in
/// the middle of words and quotes names that hold encoded words. Addresses
/// were checked (no spaces, controls or specials), so they go as they are.
fn address(list: &[Mailbox]) -> HeaderType<'static> {
    let items: Vec<String> = list
        .iter()
        .map(|(name, email)| match name {
            Some(name) => format!("{} <{email}>", header_text::phrase(name)),
            None => email.clone(),
        })
        .collect();
    Raw::new(items.join(", ")).into()
}

fn multipart(subtype: &str, boundary: &str) -> ContentType<'static> {
    ContentType::new(format!("multipart/{subtype}")).attribute("boundary", boundary.to_owned())
}

/// Converts every line ending (CRLF, bare LF, bare CR) to CRLF, as RFC 5322
/// section 2.3 requires of a message body.
fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

/// Two MIME boundaries (alternative, mixed) derived from the Message-ID.
///
/// RFC 2046 section 5.1.1 requires that a boundary not occur in any
/// encapsulated part. Base64 and quoted-printable output cannot contain `=_`,
/// but a 7bit text part may hold anything, so every raw part is checked and
/// a counter changes the boundary until none contains it.
fn boundaries(id: &str, text: &str, html: Option<&str>, attachments: &[Attachment]) -> [String; 2] {
    let hash = fnv1a(id.as_bytes());
    let mut parts: Vec<&[u8]> = vec![text.as_bytes()];
    parts.extend(html.map(str::as_bytes));
    parts.extend(attachments.iter().map(|a| a.data.as_slice()));
    let clear = |b: &str| !parts.iter().any(|p| contains(p, b.as_bytes()));
    let mut counter = 0u32;
    loop {
        let pair = [
            format!("=_alt{counter}_{hash:016x}"),
            format!("=_mix{counter}_{hash:016x}"),
        ];
        if pair.iter().all(|b| clear(b)) {
            return pair;
        }
        counter += 1;
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// FNV-1a, 64 bits: a stable, dependency-free hash. Uniqueness comes from
/// the Message-ID itself; the hash only spreads it into boundary characters.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_normalises_every_line_ending() {
        assert_eq!(crlf("a\nb\r\nc\rd\r"), "a\r\nb\r\nc\r\nd\r\n");
        assert_eq!(crlf("\r\r\n\n"), "\r\n\r\n\r\n");
    }

    #[test]
    fn content_types_by_extension() {
        for (name, want) in [
            ("a.pdf", "application/pdf"),
            ("a.TXT", "text/plain"),
            ("a.html", "text/html"),
            ("a.png", "image/png"),
            ("a.jpg", "image/jpeg"),
            ("a.jpeg", "image/jpeg"),
            ("a.gif", "image/gif"),
            ("a.csv", "text/csv"),
            ("a.zip", "application/zip"),
            ("a.tar.gz", "application/octet-stream"),
            ("noext", "application/octet-stream"),
        ] {
            assert_eq!(content_type_for(name), want, "{name}");
        }
    }

    #[test]
    fn attachment_keeps_only_the_file_name() {
        assert_eq!(
            Attachment::new("dir/sub/report.pdf", vec![]).filename,
            "report.pdf"
        );
        assert_eq!(Attachment::new(r"C:\x\y.txt", vec![]).filename, "y.txt");
    }

    #[test]
    fn boundaries_are_stable_and_avoid_the_content() {
        let first = boundaries("a@b", "hi", None, &[]);
        assert_eq!(first, boundaries("a@b", "hi", None, &[]));
        assert_ne!(first, boundaries("c@d", "hi", None, &[]));
        // A body that happens to contain the first choice moves it.
        let sneaky = format!("--{}\r\n", first[0]);
        let moved = boundaries("a@b", &sneaky, None, &[]);
        assert_ne!(moved[0], first[0]);
        assert!(!sneaky.contains(&moved[0]) && !sneaky.contains(&moved[1]));
    }
}
