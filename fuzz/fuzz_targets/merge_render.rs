//! The mail merge on fuzzed data. Byte 0 holds options (bit 0: strict; bits 1-2: a fixed
//! delimiter or none; bit 3: read as Windows-1252); the rest is split at
//! the first 0x00: before it, a CSV file for `read_recipients`; after it, row values for a
//! fixed template, separated by 0x1F (email, name, cc, bcc, plan, subject, file).
//! Every row read from the CSV and the fuzzed row are rendered with a loader that always
//! fails. Asserts: no panic, and a rendered message has CRLF-only lines of at most 998 octets
//! (RFC 5322 section 2.1.1) in its header section and no `Bcc:` header.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mailmerge::{ReadOptions, RenderContext, Row, Template, read_recipients};

const TEMPLATE: &str = "From: Shop <shop@example.com>\n\
To: {{ name }} <{{ email }}>\n\
Cc: {{ cc }}\n\
Bcc: {{ bcc }}\n\
Subject: Hola {{ name }}, {{ subject }}\n\
X-Plan: {{ plan }}\n\
Attach: {{ file }}\n\
\n\
Dear {{ name }},\n\
your plan: {{ plan }}\n\
{% if cc %}copy to {{ cc }}\n{% endif %}\
.\n\
bye\n";

const HTML: &str = "<p>Dear {{ name }}</p><p>{{ plan }}</p>";

fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| Template::parse(TEMPLATE, Some(HTML)).expect("the fixed template parses"))
}

fn render(row: &Row) {
    let ctx = RenderContext {
        from: None,
        date: 1_700_000_000,
        message_id: "<1.merge@example.com>".into(),
    };
    let fail = |name: &str| -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            name.to_owned(),
        ))
    };
    let Ok(out) = template().render(row, &ctx, &fail) else {
        return;
    };
    let msg = &out.message;
    let end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a rendered message has a header section");
    let head = &msg[..end + 2];
    for line in head.split_inclusive(|b| *b == b'\n') {
        let line = line
            .strip_suffix(b"\r\n")
            .unwrap_or_else(|| panic!("bare LF in headers: {:?}", String::from_utf8_lossy(head)));
        assert!(line.len() <= 998, "header line over 998 octets: {line:?}");
        assert!(
            !line.contains(&b'\r'),
            "bare CR in headers: {:?}",
            String::from_utf8_lossy(head)
        );
        assert!(
            !(line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:")),
            "Bcc header in message: {:?}",
            String::from_utf8_lossy(head)
        );
    }
    assert!(!out.from.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Some((&opts, data)) = data.split_first() else {
        return;
    };
    let (csv, values) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let options = ReadOptions {
        strict: opts & 1 != 0,
        // The other option bits try a fixed delimiter and a named encoding.
        delimiter: [None, Some(b';'), Some(b'\t'), Some(b',')][usize::from(opts >> 1 & 3)],
        encoding: (opts & 8 != 0).then(|| "windows-1252".to_owned()),
        ..ReadOptions::default()
    };
    if let Ok(recipients) = read_recipients(csv, &options) {
        for row in recipients.rows.iter().take(4) {
            render(row);
        }
    }
    let mut v = values
        .split(|b| *b == 0x1f)
        .map(|s| String::from_utf8_lossy(s).into_owned());
    let email = v.next().unwrap_or_default();
    let name = v.next().filter(|n| !n.is_empty());
    let mut fields = BTreeMap::new();
    for key in ["cc", "bcc", "plan", "subject", "file"] {
        fields.insert(key.to_owned(), v.next().unwrap_or_default());
    }
    fields.insert("email".to_owned(), email.clone());
    if let Some(n) = &name {
        fields.insert("name".to_owned(), n.clone());
    }
    let row = Row {
        line: 2,
        index: 0,
        email,
        name,
        fields,
    };
    render(&row);
});
