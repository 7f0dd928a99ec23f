//! Property: any CSV value used as the display name and inside the Subject
//! comes back from a standard parser as the same text (CR and LF turned into
//! spaces, whitespace runs folded), and the message has exactly the headers
//! the template asked for: no value can add one.

use mail_parser::{HeaderName, MessageParser};
use mailmerge::{RenderContext, Template, read_recipients};
use proptest::prelude::*;

const TEMPLATE: &str = "From: Sender <sender@example.org>\nSubject: Re: {{ name }} [{{ note }}]\nX-Note: {{ note }}\n\nHello {{ name }}\n";

/// What the value should look like after the trip: one line, whitespace
/// runs as single spaces, no outer whitespace.
fn normalise(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Writes one CSV record the way a spreadsheet would, quoting as needed.
fn csv_row(fields: &[&str]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields).unwrap();
    w.into_inner().unwrap()
}

/// Values made of the characters that break naive mail code: line breaks,
/// quotes, commas, angle brackets, colons, backslashes, encoded-word
/// markers, tabs and non-ASCII of several widths.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ a-zA-Z0-9,;:\"'<>@()\\\\\r\n\t=?._\\-éÆñ日本語🙂\u{7f}]{0,40}",
        // Long values exercise folding.
        "[ a-zA-Z,\"\r\néñ]{60,200}",
        // Something shaped like an injection attempt.
        "[a-z]{1,8}".prop_map(|s| format!("{s}\r\nBcc: {s}@evil.example\r\n")),
        // Something shaped like an RFC 2047 encoded word.
        "[a-z]{0,8}".prop_map(|s| format!("=?utf-8?q?{s}?=")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn csv_values_round_trip_through_headers(name in value(), note in value()) {
        let mut csv = b"email,name,note\n".to_vec();
        csv.extend(csv_row(&["ana@example.org", &name, &note]));
        let recipients = read_recipients(&csv, true).unwrap();
        let row = &recipients.rows[0];
        prop_assert_eq!(&row.fields["note"], &note);

        let template = Template::parse(TEMPLATE, None).unwrap();
        template.check_columns(&recipients.columns).unwrap();
        let ctx = RenderContext { from: None, date: 1_700_000_000, message_id: "<p.1@example.org>".into() };
        let out = template.render(row, &ctx, &|_| unreachable!()).unwrap();
        prop_assert_eq!(&out.recipients, &vec!["ana@example.org".to_owned()]);

        let msg = MessageParser::new().parse(&out.message).unwrap();
        // Registering one header parser replaces all the defaults, so the
        // unstructured X-Note gets a parser of its own.
        let note_parser = MessageParser::new().header_text(HeaderName::Other("X-Note".into()));
        let note_msg = note_parser.parse(&out.message).unwrap();

        let names: Vec<&str> = msg.headers().iter().map(|h| h.name()).collect();
        let want_name = normalise(&name);
        let want_note = normalise(&note);
        let mut expected = vec!["From", "To", "Subject"];
        if !want_note.is_empty() {
            expected.push("X-Note");
        }
        expected.extend(["Date", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"]);
        prop_assert_eq!(names, expected);

        let to = msg.to().unwrap().first().unwrap();
        prop_assert_eq!(to.address(), Some("ana@example.org"));
        let got_name = to.name().map(normalise).unwrap_or_default();
        prop_assert_eq!(got_name, want_name.clone());

        let subject = normalise(msg.subject().unwrap());
        // CR, LF and the trimmed edges of the name are all whitespace, so
        // normalising the raw values gives what the header must say.
        prop_assert_eq!(subject, normalise(&format!("Re: {name} [{note}]")));

        if !want_note.is_empty() {
            let got = note_msg.header("X-Note").and_then(|v| v.as_text()).map(normalise);
            prop_assert_eq!(got, Some(want_note));
        }

        let from = msg.from().unwrap().first().unwrap();
        prop_assert_eq!(from.name(), Some("Sender"));
        prop_assert_eq!(from.address(), Some("sender@example.org"));
    }
}
