//! ENVELOPE, BODYSTRUCTURE and sections of real message shapes, asserted exactly where the RFC
//! fixes the answer, and checked against an independent implementation of the grammar:
//! every rendering, put in a FETCH response, must decode with `imap-codec`.

use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder;
use imap_core::message::{Section, SectionData, SectionPart, body_structure, envelope, section};
use proptest::prelude::*;

const MIXED: &[u8] = b"From: \"Doe, Jane\" <jane@example.org>\r\n\
To: team: a@example.com, b@example.com;, c@example.net\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
Date: Tue, 1 Dec 2026 10:00:00 +0100\r\n\
Message-ID: <1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
hello\r\n\
world\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
<p>hello</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"a.pdf\"\r\n\
Content-Disposition: attachment; filename=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0=\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: bob@example.com\r\n\
Subject: forwarded\r\n\
\r\n\
inner body\r\n\
--outer--\r\n";

fn decodes(item: &str, value: &[u8]) {
    let mut line = format!("* 1 FETCH ({item} ").into_bytes();
    line.extend_from_slice(value);
    line.extend_from_slice(b")\r\n");
    match ResponseCodec::default().decode(&line) {
        Ok((rest, _)) => assert!(
            rest.is_empty(),
            "left over: {:?}",
            String::from_utf8_lossy(rest)
        ),
        Err(e) => panic!(
            "imap-codec refused {}: {e:?}",
            String::from_utf8_lossy(&line)
        ),
    }
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

#[test]
fn envelope_of_a_multipart_message() {
    let e = text(envelope(MIXED));
    assert_eq!(
        e,
        "(\"Tue, 1 Dec 2026 10:00:00 +0100\" \"=?utf-8?q?Gr=C3=BC=C3=9Fe?=\" \
         ((\"Doe, Jane\" NIL \"jane\" \"example.org\")) ((\"Doe, Jane\" NIL \"jane\" \"example.org\")) \
         ((\"Doe, Jane\" NIL \"jane\" \"example.org\")) \
         ((NIL NIL \"team\" NIL)(NIL NIL \"a\" \"example.com\")(NIL NIL \"b\" \"example.com\")(NIL NIL NIL NIL)(NIL NIL \"c\" \"example.net\")) \
         NIL NIL NIL \"<1@example.org>\")"
    );
    decodes("ENVELOPE", e.as_bytes());
}

#[test]
fn bodystructure_of_a_multipart_message() {
    let b = text(body_structure(MIXED, true));
    assert_eq!(
        b,
        "(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 2 NIL NIL NIL NIL)\
(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 12 1 NIL NIL NIL NIL) \
\"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)\
(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 8 NIL (\"attachment\" (\"filename\" \"a.pdf\")) NIL NIL)\
(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 55 \
(NIL \"forwarded\" ((NIL NIL \"bob\" \"example.com\")) ((NIL NIL \"bob\" \"example.com\")) ((NIL NIL \"bob\" \"example.com\")) NIL NIL NIL NIL NIL) \
(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL) \
\"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)"
    );
    decodes("BODYSTRUCTURE", b.as_bytes());
    decodes("BODY", &body_structure(MIXED, false));
}

fn sec(path: &[u32], part: SectionPart) -> Vec<u8> {
    match section(
        MIXED,
        &Section {
            path: path.to_vec(),
            part,
        },
    ) {
        SectionData::Range(r) => MIXED[r].to_vec(),
        SectionData::Bytes(b) => b,
    }
}

#[test]
fn sections_address_parts_and_encapsulated_messages() {
    assert_eq!(sec(&[1, 1], SectionPart::Full), b"hello\r\nworld");
    assert_eq!(sec(&[1, 2], SectionPart::Full), b"<p>hello</p>");
    assert_eq!(
        sec(&[1, 2], SectionPart::Mime),
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(sec(&[2], SectionPart::Full), b"JVBERi0=");
    assert_eq!(
        sec(&[3], SectionPart::Header),
        b"From: bob@example.com\r\nSubject: forwarded\r\n\r\n"
    );
    assert_eq!(sec(&[3], SectionPart::Text), b"inner body");
    assert_eq!(sec(&[3, 1], SectionPart::Full), b"inner body");
    assert_eq!(
        sec(&[], SectionPart::HeaderFields { names: vec!["subject".into(), "TO".into()], not: false }),
        b"To: team: a@example.com, b@example.com;, c@example.net\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"
    );
    let not = sec(
        &[],
        SectionPart::HeaderFields {
            names: vec![
                "Content-Type".into(),
                "MIME-Version".into(),
                "Date".into(),
                "Message-ID".into(),
            ],
            not: true,
        },
    );
    assert!(
        not.starts_with(b"From: ") && not.ends_with(b"9Fe?=\r\n\r\n"),
        "{}",
        String::from_utf8_lossy(&not)
    );
    assert_eq!(sec(&[9], SectionPart::Full), b"");
    assert_eq!(
        sec(&[2, 1], SectionPart::Full),
        b"",
        "a leaf part has no part 1"
    );
}

#[test]
fn odd_messages_still_render() {
    let cases: &[&[u8]] = &[
        b"Subject: no content type\r\n\r\nbody",
        b"Subject: bare LF\nContent-Type: text/plain\n\nline one\nline two\n",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary at all\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nnever closed",
        "Subject: Grüße, 8-bit\r\nFrom: Jörg <j@x>\r\n\r\nbody".as_bytes(),
        b"",
        b"no header at all",
        b"From: undisclosed-recipients:;\r\nTo: <@route:a@b>\r\n\r\n",
        // A stray `)` once made an address tokenizer loop forever.
        b"To: Bob <b@exrol)\r\nCc: a) b)) (c\r\n\r\n",
        b"Subject: nul \0 inside\r\nContent-Type: \0multipart/mixed\r\n\r\nx",
    ];
    for m in cases {
        decodes("ENVELOPE", &envelope(m));
        decodes("BODYSTRUCTURE", &body_structure(m, true));
        decodes("BODY", &body_structure(m, false));
    }
    assert_eq!(
        text(body_structure(
            b"Content-Type: multipart/mixed\r\n\r\nno boundary at all\r\n",
            false
        )),
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 20 1)"
    );
    // 8-bit header text goes out as a literal, never as a quoted string.
    let e = envelope("Subject: Grüße\r\n\r\n".as_bytes());
    assert!(
        e.starts_with(b"(NIL {7}\r\nGr\xc3\xbc\xc3\x9fe NIL"),
        "{}",
        String::from_utf8_lossy(&e)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_messages_never_panic_and_always_parse(
        cuts in proptest::collection::vec((0usize..MIXED.len(), any::<u8>()), 0..12),
        truncate in 0usize..=MIXED.len(),
    ) {
        let mut m = MIXED.to_vec();
        for (at, b) in cuts {
            if at < m.len() {
                m[at] = b;
            }
        }
        m.truncate(truncate);
        decodes("ENVELOPE", &envelope(&m));
        decodes("BODYSTRUCTURE", &body_structure(&m, true));
        for path in [vec![], vec![1], vec![1, 2], vec![3, 1]] {
            for part in [SectionPart::Full, SectionPart::Header, SectionPart::Text, SectionPart::Mime] {
                if let SectionData::Range(r) = section(&m, &Section { path: path.clone(), part }) {
                    prop_assert!(r.start <= r.end && r.end <= m.len());
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(m in proptest::collection::vec(any::<u8>(), 0..400)) {
        decodes("ENVELOPE", &envelope(&m));
        decodes("BODYSTRUCTURE", &body_structure(&m, true));
    }
}
