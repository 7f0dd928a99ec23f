//! End-to-end: CSV and template in, messages out, parsed back with
//! mail-parser the way a receiving client would.

use mail_parser::{HeaderName, Message, MessageParser, MimeHeaders};
use mailmerge::{MergeError, ReadOptions, RenderContext, Rendered, Row, Template, read_recipients};

fn strict() -> ReadOptions {
    ReadOptions {
        strict: true,
        ..ReadOptions::default()
    }
}
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;

fn ctx() -> RenderContext {
    RenderContext {
        from: None,
        date: 1_700_000_000, // 2023-11-14 22:13:20 UTC
        message_id: "<0.1700000000@merge.example.com>".into(),
    }
}

fn no_files(name: &str) -> io::Result<Vec<u8>> {
    panic!("unexpected attachment load: {name}")
}

fn rows(csv: &str) -> Vec<Row> {
    read_recipients(csv.as_bytes(), &strict()).unwrap().rows
}

fn render(template: &str, csv: &str) -> Rendered {
    let t = Template::parse(template, None).unwrap();
    t.render(&rows(csv)[0], &ctx(), &no_files).unwrap()
}

fn parse(out: &Rendered) -> Message<'_> {
    MessageParser::new()
        .parse(&out.message)
        .expect("message parses")
}

fn header_names(msg: &Message<'_>) -> Vec<String> {
    msg.headers().iter().map(|h| h.name().to_owned()).collect()
}

fn addrs(list: Option<&mail_parser::Address<'_>>) -> Vec<(Option<String>, String)> {
    list.map(|l| {
        l.iter()
            .map(|a| {
                (
                    a.name().map(str::to_owned),
                    a.address().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

fn pair(name: &str, addr: &str) -> (Option<String>, String) {
    (Some(name.to_owned()), addr.to_owned())
}

/// Every line ends in CRLF: no bare CR or LF anywhere in the message.
fn assert_crlf_only(bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            assert_eq!(bytes.get(i.wrapping_sub(1)), Some(&b'\r'), "bare LF at {i}");
        }
        if b == b'\r' {
            assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
    }
}

const BASIC: &str = "From: Shop <shop@example.com>\nSubject: Your {{ plan }} plan\n\nHello {{ name }},\nyour plan is {{ plan }}.\n";

#[test]
fn basic_message_has_headers_body_and_envelope() {
    let out = render(BASIC, "email,name,plan\nana@example.org,Ana Silva,gold\n");
    assert_eq!(out.from, "shop@example.com");
    assert_eq!(out.recipients, ["ana@example.org"]);
    assert_eq!(out.to, [pair("Ana Silva", "ana@example.org")]);
    assert_crlf_only(&out.message);

    let msg = parse(&out);
    assert_eq!(addrs(msg.from()), [pair("Shop", "shop@example.com")]);
    assert_eq!(addrs(msg.to()), [pair("Ana Silva", "ana@example.org")]);
    assert_eq!(msg.subject(), Some("Your gold plan"));
    assert_eq!(msg.message_id(), Some("0.1700000000@merge.example.com"));
    assert_eq!(msg.date().unwrap().to_timestamp(), 1_700_000_000);
    assert_eq!(msg.header_raw("MIME-Version").map(str::trim), Some("1.0"));
    assert_eq!(
        msg.body_text(0).unwrap(),
        "Hello Ana Silva,\r\nyour plan is gold.\r\n"
    );
    assert_eq!(
        header_names(&msg),
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding"
        ]
    );
}

#[test]
fn rendering_is_deterministic() {
    let t = Template::parse(BASIC, Some("<p>{{ name }}</p>")).unwrap();
    let row = &rows("email,name,plan\nana@example.org,Ana,gold\n")[0];
    let a = t.render(row, &ctx(), &no_files).unwrap();
    let b = t.render(row, &ctx(), &no_files).unwrap();
    assert_eq!(a, b);
}

#[test]
fn non_ascii_subject_name_and_body_round_trip() {
    let out = render(
        "From: Tienda Ñandú <tienda@example.com>\nSubject: ¡Hola {{ name }}! Ваш заказ 日本語 🙂\n\nQuerida {{ name }}: ¿qué tal?\n",
        "email,name\nzoe@example.org,Zoë Ærøskøbing\n",
    );
    assert_crlf_only(&out.message);
    // Headers are 7-bit on the wire: RFC 2047 encoded words.
    let head_end = out
        .message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap();
    assert!(out.message[..head_end].is_ascii(), "headers not ASCII");

    let msg = parse(&out);
    assert_eq!(
        msg.subject(),
        Some("¡Hola Zoë Ærøskøbing! Ваш заказ 日本語 🙂")
    );
    assert_eq!(addrs(msg.to()), [pair("Zoë Ærøskøbing", "zoe@example.org")]);
    assert_eq!(
        addrs(msg.from()),
        [pair("Tienda Ñandú", "tienda@example.com")]
    );
    assert_eq!(
        msg.body_text(0).unwrap(),
        "Querida Zoë Ærøskøbing: ¿qué tal?\r\n"
    );
}

#[test]
fn crlf_in_a_csv_value_cannot_add_a_header_or_recipient() {
    // The CSV cell is a quoted field holding CR LF and a Bcc line.
    let csv = "email,name\neve@example.org,\"Eve\r\nBcc: x@evil\"\n";
    let row = &rows(csv)[0];
    assert_eq!(row.name.as_deref(), Some("Eve\r\nBcc: x@evil"));

    let t = Template::parse(
        "From: a@example.com\nSubject: Hi {{ name }}\nX-Note: {{ name }}\n\nBody {{ name }}\n",
        None,
    )
    .unwrap();
    let out = t.render(row, &ctx(), &no_files).unwrap();
    assert_eq!(out.recipients, ["eve@example.org"]);
    let text = String::from_utf8_lossy(&out.message);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(!head.to_ascii_lowercase().contains("\nbcc:"), "{head}");
    // In the body the line break is just text, and stays.
    assert!(body.contains("Body Eve\r\nBcc: x@evil"), "{body}");

    let msg = parse(&out);
    assert!(msg.bcc().is_none());
    assert!(
        !header_names(&msg)
            .iter()
            .any(|h| h.eq_ignore_ascii_case("bcc"))
    );
    assert_eq!(msg.subject(), Some("Hi Eve Bcc: x@evil"));
    assert_eq!(
        msg.header_raw("X-Note").map(str::trim),
        Some("Eve Bcc: x@evil")
    );
    assert_eq!(
        addrs(msg.to()),
        [pair("Eve Bcc: x@evil", "eve@example.org")]
    );
}

#[test]
fn crlf_in_a_value_used_inside_an_address_header_stays_in_that_header() {
    let csv = "email,name,boss\neve@example.org,Eve,\"b@example.org\r\nBcc: x@evil.example\"\n";
    let t = Template::parse("From: a@example.com\nCc: {{ boss }}\n\nx\n", None).unwrap();
    // The value becomes one Cc line, `b@example.org  Bcc: x@evil.example`,
    // which is not a valid address list: an error, not a hidden recipient.
    let err = t.render(&rows(csv)[0], &ctx(), &no_files).unwrap_err();
    assert!(
        matches!(err, MergeError::BadAddress { ref header, .. } if header == "Cc"),
        "{err}"
    );
}

#[test]
fn cc_and_bcc_add_envelope_recipients_and_bcc_is_not_written() {
    let t = Template::parse(
        "From: a@example.com\nTo: {{ name }} <{{ email }}>, \"Desk, Help\" <help@example.com>\nCc: {{ manager }}\nBcc: audit@example.com, {{ email }}, HELP@example.com\n\nx\n",
        None,
    )
    .unwrap();
    let out = t
        .render(
            &rows("email,name,manager\nana@example.org,Ana,Boss <boss@example.org>\n")[0],
            &ctx(),
            &no_files,
        )
        .unwrap();
    assert_eq!(
        out.recipients,
        [
            "ana@example.org",
            "help@example.com",
            "boss@example.org",
            "audit@example.com"
        ]
    );
    assert_eq!(
        out.to,
        [
            pair("Ana", "ana@example.org"),
            pair("Desk, Help", "help@example.com")
        ]
    );
    let text = String::from_utf8_lossy(&out.message);
    assert!(!text.contains("audit@example.com"), "{text}");
    let msg = parse(&out);
    assert!(msg.bcc().is_none());
    assert_eq!(addrs(msg.cc()), [pair("Boss", "boss@example.org")]);
    assert_eq!(addrs(msg.to()), out.to);
}

#[test]
fn empty_optional_headers_are_left_out() {
    let t = Template::parse(
        "From: a@example.com\nCc: {{ manager }}\nX-Plan: {{ plan }}\nSubject: s\n\nx\n",
        None,
    )
    .unwrap();
    let out = t
        .render(
            &rows("email,manager,plan\nana@example.org,,\n")[0],
            &ctx(),
            &no_files,
        )
        .unwrap();
    let msg = parse(&out);
    let names = header_names(&msg);
    assert!(
        !names.iter().any(|n| n == "Cc" || n == "X-Plan"),
        "{names:?}"
    );
    assert_eq!(out.recipients, ["ana@example.org"]);
}

#[test]
fn an_empty_to_is_an_error() {
    let t = Template::parse("From: a@example.com\nTo: {{ other }}\n\nx\n", None).unwrap();
    let err = t
        .render(
            &rows("email,other\nana@example.org,\n")[0],
            &ctx(),
            &no_files,
        )
        .unwrap_err();
    assert!(
        matches!(err, MergeError::BadAddress { ref header, .. } if header == "To"),
        "{err}"
    );
}

#[test]
fn from_comes_from_the_context_or_the_template_or_is_an_error() {
    let row = &rows("email\nana@example.org\n")[0];
    let with = Template::parse("From: T <t@example.com>\n\nx\n", None).unwrap();
    let without = Template::parse("Subject: s\n\nx\n", None).unwrap();
    let given = RenderContext {
        from: Some("Given Name <given@example.com>".into()),
        ..ctx()
    };

    let out = with.render(row, &given, &no_files).unwrap();
    assert_eq!(out.from, "given@example.com");
    assert_eq!(
        addrs(parse(&out).from()),
        [pair("Given Name", "given@example.com")]
    );

    let out = without.render(row, &given, &no_files).unwrap();
    assert_eq!(out.from, "given@example.com");

    let bare = RenderContext {
        from: Some("bare@example.com".into()),
        ..ctx()
    };
    let out = without.render(row, &bare, &no_files).unwrap();
    assert_eq!(
        addrs(parse(&out).from()),
        [(None, "bare@example.com".to_owned())]
    );

    let out = with.render(row, &ctx(), &no_files).unwrap();
    assert_eq!(out.from, "t@example.com");

    let err = without.render(row, &ctx(), &no_files).unwrap_err();
    assert!(matches!(err, MergeError::NoFrom), "{err}");

    let two = Template::parse("From: a@example.com, b@example.com\n\nx\n", None).unwrap();
    let err = two.render(row, &ctx(), &no_files).unwrap_err();
    assert!(
        matches!(err, MergeError::BadAddress { ref header, .. } if header == "From"),
        "{err}"
    );
}

#[test]
fn missing_column_is_found_before_rendering() {
    let recipients = read_recipients(b"email,name\nana@example.org,Ana\n", &strict()).unwrap();
    let t = Template::parse(
        "From: a@example.com\nSubject: {{ plan }}\nAttach: {{ invoice }}\n\nHi {{ name }}\n",
        None,
    )
    .unwrap();
    let err = t.check_columns(&recipients.columns).unwrap_err();
    match err {
        MergeError::MissingColumn { name, available } => {
            assert_eq!(name, "invoice");
            assert_eq!(available, ["email", "name"]);
        }
        other => panic!("{other}"),
    }
    // Had the caller skipped the check, rendering would still refuse to guess.
    let err = t
        .render(&recipients.rows[0], &ctx(), &no_files)
        .unwrap_err();
    assert!(matches!(err, MergeError::Template { .. }), "{err}");
}

#[test]
fn headerless_recipients_get_a_nameless_to() {
    let recipients = read_recipients(b"a@x.org,b@y.org\n", &strict()).unwrap();
    let t = Template::parse(
        "From: s@example.com\nSubject: Hi{% if name %} {{ name }}{% endif %}\n\nHello {{ email }}\n",
        None,
    )
    .unwrap();
    t.check_columns(&recipients.columns).unwrap();
    let out = t.render(&recipients.rows[1], &ctx(), &no_files).unwrap();
    assert_eq!(out.to, [(None, "b@y.org".to_owned())]);
    let msg = parse(&out);
    assert_eq!(addrs(msg.to()), [(None, "b@y.org".to_owned())]);
    assert_eq!(msg.subject(), Some("Hi"));
    assert_eq!(msg.body_text(0).unwrap(), "Hello b@y.org\r\n");
}

#[test]
fn folded_template_headers_and_pass_through_headers() {
    let out = render(
        "From: a@example.com\nSubject: A long subject\n  for {{ name }}\nReply-To: Ayuda Ñ <help@example.com>\nX-Campaign: otoño {{ plan }}\nKeywords: a\n\nx\n",
        "email,name,plan\nana@example.org,Ana,gold\n",
    );
    let msg = parse(&out);
    assert_eq!(msg.subject(), Some("A long subject for Ana"));
    assert_eq!(addrs(msg.reply_to()), [pair("Ayuda Ñ", "help@example.com")]);
    let decoding = MessageParser::new().header_text(HeaderName::Other("X-Campaign".into()));
    let msg2 = decoding.parse(&out.message).unwrap();
    let campaign = msg2.header("X-Campaign").and_then(|v| v.as_text());
    assert_eq!(campaign, Some("otoño gold"));
    assert!(header_names(&msg).contains(&"Keywords".to_owned()));
}

#[test]
fn attachments_come_through_the_loader() {
    let calls = RefCell::new(Vec::new());
    let files = BTreeMap::from([
        ("invoices/gold.pdf", b"%PDF-1.4 \x00\xFF binary".to_vec()),
        ("notes.txt", b"plain notes\n".to_vec()),
    ]);
    let load = |name: &str| {
        calls.borrow_mut().push(name.to_owned());
        files
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    };
    let t = Template::parse(
        "From: a@example.com\nAttach: invoices/{{ plan }}.pdf\nAttach: notes.txt\nSubject: s\n\nSee attached.\n",
        None,
    )
    .unwrap();
    let out = t
        .render(
            &rows("email,plan\nana@example.org,gold\n")[0],
            &ctx(),
            &load,
        )
        .unwrap();
    assert_eq!(*calls.borrow(), ["invoices/gold.pdf", "notes.txt"]);
    assert_crlf_only(&out.message);

    let msg = parse(&out);
    assert!(
        !header_names(&msg)
            .iter()
            .any(|n| n.eq_ignore_ascii_case("attach"))
    );
    assert_eq!(msg.body_text(0).unwrap(), "See attached.\r\n");
    let atts: Vec<_> = msg.attachments().collect();
    assert_eq!(atts.len(), 2);
    assert_eq!(atts[0].attachment_name(), Some("gold.pdf"));
    let ct = atts[0].content_type().unwrap();
    assert_eq!((ct.ctype(), ct.subtype()), ("application", Some("pdf")));
    assert_eq!(atts[0].contents(), files["invoices/gold.pdf"].as_slice());
    assert_eq!(atts[1].attachment_name(), Some("notes.txt"));
    assert_eq!(atts[1].content_type().unwrap().subtype(), Some("plain"));
    assert_eq!(atts[1].contents(), b"plain notes\n");
    let top = msg.content_type().unwrap();
    assert_eq!((top.ctype(), top.subtype()), ("multipart", Some("mixed")));
}

#[test]
fn a_failed_load_names_the_file() {
    let t = Template::parse("From: a@example.com\nAttach: {{ plan }}.zip\n\nx\n", None).unwrap();
    let load =
        |_: &str| -> io::Result<Vec<u8>> { Err(io::Error::new(io::ErrorKind::NotFound, "gone")) };
    let err = t
        .render(
            &rows("email,plan\nana@example.org,gold\n")[0],
            &ctx(),
            &load,
        )
        .unwrap_err();
    assert!(
        matches!(err, MergeError::Attachment { ref name, .. } if name == "gold.zip"),
        "{err}"
    );
    assert!(err.to_string().contains("gold.zip"));
}

#[test]
fn html_alternative_is_escaped_and_paired_with_text() {
    let t = Template::parse(
        "From: a@example.com\nSubject: s\n\nHi {{ name }}\n",
        Some("<p>Hi <b>{{ name }}</b></p>\n"),
    )
    .unwrap();
    let out = t
        .render(
            &rows("email,name\nana@example.org,Ana <3 & co\n")[0],
            &ctx(),
            &no_files,
        )
        .unwrap();
    let msg = parse(&out);
    let top = msg.content_type().unwrap();
    assert_eq!(
        (top.ctype(), top.subtype()),
        ("multipart", Some("alternative"))
    );
    assert_eq!(msg.body_text(0).unwrap(), "Hi Ana <3 & co\r\n");
    assert_eq!(
        msg.body_html(0).unwrap(),
        "<p>Hi <b>Ana &lt;3 &amp; co</b></p>\r\n"
    );
    assert_eq!(msg.attachment_count(), 0);
}

#[test]
fn html_with_attachments_nests_alternative_in_mixed() {
    let t = Template::parse(
        "From: a@example.com\nAttach: a.png\n\ntext\n",
        Some("<i>html</i>"),
    )
    .unwrap();
    let load = |_: &str| Ok(vec![0x89, b'P', b'N', b'G']);
    let out = t
        .render(&rows("email\nana@example.org\n")[0], &ctx(), &load)
        .unwrap();
    let msg = parse(&out);
    assert_eq!(msg.content_type().unwrap().subtype(), Some("mixed"));
    assert_eq!(msg.body_text(0).unwrap(), "text\r\n");
    assert_eq!(msg.body_html(0).unwrap(), "<i>html</i>");
    let att = msg.attachments().next().unwrap();
    assert_eq!(att.content_type().unwrap().subtype(), Some("png"));
    assert_eq!(att.contents(), [0x89, b'P', b'N', b'G']);
}

#[test]
fn a_body_line_that_mimics_a_boundary_does_not_split_the_message() {
    // Render once to learn the boundaries, then put them in the body.
    let plain = Template::parse("From: a@example.com\n\nx\n", Some("y")).unwrap();
    let row = &rows("email\nana@example.org\n")[0];
    let first = String::from_utf8(plain.render(row, &ctx(), &no_files).unwrap().message).unwrap();
    let boundary = first
        .split("boundary=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let body = format!("before\n--{boundary}\nmiddle\n--{boundary}--\nafter\n");
    let t = Template::parse(&format!("From: a@example.com\n\n{body}"), Some("y")).unwrap();
    let out = t.render(row, &ctx(), &no_files).unwrap();
    let msg = parse(&out);
    assert_eq!(msg.body_text(0).unwrap(), body.replace('\n', "\r\n"));
    assert_eq!(msg.body_html(0).unwrap(), "y");
}

#[test]
fn bad_message_id_from_the_caller_is_refused() {
    let t = Template::parse("From: a@example.com\n\nx\n", None).unwrap();
    let bad = RenderContext {
        message_id: "<a b@c>".into(),
        ..ctx()
    };
    let err = t
        .render(&rows("email\nana@example.org\n")[0], &bad, &no_files)
        .unwrap_err();
    assert!(matches!(err, MergeError::BadMessageId { .. }), "{err}");
}

/// A value in a display-name position is text: every special survives, and
/// the address after it is the only recipient.
#[test]
fn names_with_specials_are_data_in_address_headers() {
    let t = Template::parse(
        "From: {{ name }} <shop@example.com>\nTo: {{ name }} <{{ email }}>\nCc: \"{{ name }}\" <cc@example.com>\nReply-To: {{ name }} <{{ user }}@example.com>\n\nx\n",
        None,
    )
    .unwrap();
    for name in [
        "Smith, John",
        "Ada, Countess",
        "Re: Bob",
        "Dept: Sales;",
        "Ada (the first)",
        "Zoë \"Zed\" O'Brien",
        "back\\slash \"q\"",
        "x@evil.example",
        "<x@evil.example>",
        "a@b.c, d@e.f",
        "=?utf-8?q?x?=",
        "李小龍",
    ] {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["email", "name", "user"]).unwrap();
        w.write_record(["ana@example.org", name, "reply"]).unwrap();
        let csv = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let out = t.render(&rows(&csv)[0], &ctx(), &no_files).unwrap();
        assert_eq!(
            out.recipients,
            ["ana@example.org", "cc@example.com"],
            "{name}"
        );
        assert_eq!(out.to, [pair(name, "ana@example.org")], "{name}");
        let msg = parse(&out);
        assert_eq!(
            addrs(msg.from()),
            [pair(name, "shop@example.com")],
            "{name}"
        );
        assert_eq!(addrs(msg.to()), [pair(name, "ana@example.org")], "{name}");
        assert_eq!(addrs(msg.cc()), [pair(name, "cc@example.com")], "{name}");
        assert_eq!(
            addrs(msg.reply_to()),
            [pair(name, "reply@example.com")],
            "{name}"
        );
    }
}

#[test]
fn a_value_standing_alone_is_exactly_one_mailbox() {
    let t = Template::parse("From: a@example.com\nCc: {{ boss }}\n\nx\n", None).unwrap();
    let render_boss = |boss: &str| {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["email", "boss"]).unwrap();
        w.write_record(["ana@example.org", boss]).unwrap();
        let csv = String::from_utf8(w.into_inner().unwrap()).unwrap();
        t.render(&rows(&csv)[0], &ctx(), &no_files)
    };
    let out = render_boss("Smith, John <boss@example.org>").unwrap();
    assert_eq!(out.recipients, ["ana@example.org", "boss@example.org"]);
    assert_eq!(
        addrs(parse(&out).cc()),
        [pair("Smith, John", "boss@example.org")]
    );
    let out = render_boss("\"Q \\\"B\\\"\" <boss@example.org>").unwrap();
    assert_eq!(
        addrs(parse(&out).cc()),
        [pair("Q \"B\"", "boss@example.org")]
    );

    for (bad, says) in [
        ("a@example.org, b@example.org", "| raw"),
        ("a@example.org; b@example.org", "| raw"),
        ("Team: a@example.org;", "| raw"),
        (
            "bob at example",
            "is not an email address: address contains a space",
        ),
        ("bob.example", "is not an email address: no @ in address"),
        ("Bob <bob at example>", "not an email address"),
    ] {
        let err = render_boss(bad).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, MergeError::BadAddress { ref header, .. } if header == "Cc"),
            "{bad}: {text}"
        );
        assert!(text.contains(says), "{bad}: {text}");
    }
}

#[test]
fn the_raw_filter_lets_a_value_be_a_list() {
    let t = Template::parse("From: a@example.com\nCc: {{ team | raw }}\n\nx\n", None).unwrap();
    let out = t
        .render(
            &rows("email,team\nana@example.org,\"Bo <bo@x.org>, \"\"Smith, J\"\" <j@y.org>\"\n")[0],
            &ctx(),
            &no_files,
        )
        .unwrap();
    assert_eq!(out.recipients, ["ana@example.org", "bo@x.org", "j@y.org"]);
    assert_eq!(
        addrs(parse(&out).cc()),
        [pair("Bo", "bo@x.org"), pair("Smith, J", "j@y.org")]
    );
    // Even raw, a line break cannot start a header: it is a space, and the
    // list is checked.
    let err = t
        .render(
            &rows("email,team\nana@example.org,\"bo@x.org\r\nBcc: evil@y.org\"\n")[0],
            &ctx(),
            &no_files,
        )
        .unwrap_err();
    assert!(matches!(err, MergeError::BadAddress { .. }), "{err}");
}

#[test]
fn addresses_can_be_built_from_values() {
    let out = render(
        "From: a@example.com\nTo: {{ first }}.{{ last }}@{{ domain }}\n\nx\n",
        "email,first,last,domain\nx@example.org,ada,lovelace,example.net\n",
    );
    assert_eq!(out.recipients, ["ada.lovelace@example.net"]);
    // A value cannot carry an @ or a space into the local part.
    let t = Template::parse(
        "From: a@example.com\nTo: {{ first }}@example.net\n\nx\n",
        None,
    )
    .unwrap();
    for first in ["a@b", "a b", "a>"] {
        let csv = format!("email,first\nx@example.org,{first}\n");
        assert!(
            t.render(&rows(&csv)[0], &ctx(), &no_files).is_err(),
            "{first}"
        );
    }
}

/// Encoded words end at spaces of the text, so no reader sees a word cut in
/// two (RFC 2047 section 5 forbids cutting a character; readers that keep
/// the space between encoded words would show a cut word with a space).
#[test]
fn encoded_words_are_split_between_words() {
    let name =
        "Ünïcödé Ñame with a very long display name Ñúñez Gómez Álvarez Pérez Fernández Sánchez";
    let out = render(
        "From: a@example.com\nTo: {{ name }} <{{ email }}>\nSubject: Hola {{ name }}\n\nx\n",
        &format!("email,name\nana@example.org,{name}\n"),
    );
    let text = String::from_utf8(out.message.clone()).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap();
    let words: Vec<&str> = head
        .split([' ', '\r', '\n'])
        .filter(|w| w.starts_with("=?"))
        .collect();
    assert!(words.len() >= 3, "{head}");
    for line in head.split("\r\n") {
        assert!(line.len() <= 78, "{line:?}");
    }
    for word in &words {
        assert!(word.len() <= 75, "{word}");
    }
    let msg = parse(&out);
    assert_eq!(msg.subject(), Some(format!("Hola {name}").as_str()));
    assert_eq!(addrs(msg.to()), [pair(name, "ana@example.org")]);
}
