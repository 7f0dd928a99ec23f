//! Property: any CSV value used as a display name in From, To and Cc, and
//! inside the Subject, comes back from an independent parser (mail-parser)
//! as the same text, with every run of whitespace and control characters
//! read as one space; each address is exactly one recipient, and no value
//! can add a header or a recipient.

use mail_parser::{Address, HeaderName, MessageParser};
use mailmerge::{ReadOptions, RenderContext, Template, read_recipients};
use proptest::prelude::*;

const TEMPLATE: &str = "\
From: {{ sender }} <sender@example.org>
To: {{ name }} <{{ email }}>
Cc: {{ other }} <cc@example.net>, \"{{ name }}\" <quoted@example.net>, {{ contact }}
Subject: Re: {{ name }} [{{ other }}]
X-Note: {{ other }}

Hello {{ name }}
";

/// What a value should read as in a header: control characters and
/// whitespace are spaces, runs of them one space, no space at the ends.
fn normalise(value: &str) -> String {
    value
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes one CSV record the way a spreadsheet would, quoting as needed.
fn csv_row(fields: &[&str]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields).unwrap();
    w.into_inner().unwrap()
}

/// Names made of what breaks naive mail code: line breaks, tabs, quotes,
/// commas, colons, semicolons, angle brackets, parentheses, backslashes,
/// encoded-word markers, non-ASCII of every width, emoji, right-to-left
/// text and its marks, and arbitrary Unicode.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ a-zA-Z0-9,;:\"'<>@()\\[\\]\\\\\r\n\t=?._\\-éÆñ日本語🙂\u{7f}]{0,40}",
        "[ a-zA-Zשלוםعربي\u{200f}\u{202e},\"]{0,30}",
        // Long values exercise folding and splitting into encoded words.
        "[ a-zA-Z,\"\r\néñÜ]{60,200}",
        "[ 李小龍ÉéÑñ]{40,120}",
        // Something shaped like an injection attempt.
        "[a-z]{1,8}".prop_map(|s| format!("{s}\r\nBcc: {s}@evil.example\r\n")),
        // Something shaped like an RFC 2047 encoded word.
        "[a-z]{0,8}".prop_map(|s| format!("=?utf-8?q?{s}?=")),
        "\\PC{0,30}",
    ]
}

fn mailboxes(list: Option<&Address<'_>>) -> Vec<(Option<String>, String)> {
    list.map(|l| {
        l.iter()
            .map(|a| {
                (
                    a.name().map(normalise).filter(|n| !n.is_empty()),
                    a.address().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

fn named(name: &str, addr: &str) -> (Option<String>, String) {
    let name = normalise(name);
    ((!name.is_empty()).then_some(name), addr.to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn names_round_trip_through_address_headers(
        sender in name(),
        name in name(),
        other in name(),
        // Quotes around a lone mailbox's name are syntax (they are taken
        // off), so the contact's name has none.
        contact_name in name().prop_map(|n| n.replace(['"', '\\'], "")),
    ) {
        let contact = format!("{contact_name} <contact@example.com>");
        let mut csv = b"email,name,sender,other,contact\n".to_vec();
        csv.extend(csv_row(&["ana@example.org", &name, &sender, &other, &contact]));
        let recipients = read_recipients(&csv, &ReadOptions::default()).unwrap();
        let row = &recipients.rows[0];
        prop_assert_eq!(&row.fields["other"], &other);

        let template = Template::parse(TEMPLATE, None).unwrap();
        template.check_columns(&recipients.columns).unwrap();
        let ctx = RenderContext { from: None, date: 1_700_000_000, message_id: "<p.1@example.org>".into() };
        let out = template.render(row, &ctx, &|_| unreachable!()).unwrap();
        prop_assert_eq!(
            &out.recipients,
            &["ana@example.org", "cc@example.net", "quoted@example.net", "contact@example.com"]
        );

        let msg = MessageParser::new().parse(&out.message).unwrap();
        let names: Vec<&str> = msg.headers().iter().map(|h| h.name()).collect();
        let mut expected = vec!["From", "To", "Cc", "Subject"];
        if !normalise(&other).is_empty() {
            expected.push("X-Note");
        }
        expected.extend(["Date", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"]);
        prop_assert_eq!(names, expected);

        prop_assert_eq!(mailboxes(msg.from()), vec![named(&sender, "sender@example.org")]);
        prop_assert_eq!(mailboxes(msg.to()), vec![named(&name, "ana@example.org")]);
        prop_assert_eq!(
            mailboxes(msg.cc()),
            vec![
                named(&other, "cc@example.net"),
                named(&name, "quoted@example.net"),
                named(&contact_name, "contact@example.com"),
            ]
        );

        let subject = msg.subject().map(normalise).unwrap_or_default();
        // Values are trimmed where they are substituted.
        let want = normalise(&format!("Re: {} [{}]", normalise(&name), normalise(&other)));
        prop_assert_eq!(subject, want);

        if !normalise(&other).is_empty() {
            // Registering one header parser replaces all the defaults, so
            // the unstructured X-Note gets a parser of its own.
            let note_parser = MessageParser::new().header_text(HeaderName::Other("X-Note".into()));
            let note_msg = note_parser.parse(&out.message).unwrap();
            let got = note_msg.header("X-Note").and_then(|v| v.as_text()).map(normalise);
            prop_assert_eq!(got, Some(normalise(&other)));
        }
    }
}
