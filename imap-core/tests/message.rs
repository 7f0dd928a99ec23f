//! The `message` module (ENVELOPE, BODYSTRUCTURE, sections, SEARCH matching) on real message
//! shapes, asserted exactly where RFC 3501 fixes the answer, and checked against imap-codec as
//! an independent implementation of the grammar: every rendering, put in a FETCH response,
//! must decode completely.

use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::body::{BodyStructure, SpecificFields};
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data, Response};
use imap_core::message::{
    Section, SectionData, SectionPart, body_structure, envelope, header_end, header_matches,
    section, sent_date, text_matches,
};
use proptest::prelude::*;

/// multipart/mixed: a multipart/alternative (text, quoted-printable HTML) and a PDF attachment.
const MIXED: &[u8] = b"From: \"Doe, Jane\" <jane@example.org>\r\n\
To: team: a@example.com, Bob <b@example.com>;, c@example.net (Carol)\r\n\
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
<p>hello w=C3=B6rld</p>\r\n\
--inner--\r\n\
\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--outer--\r\n\
epilogue\r\n";

/// A forwarded message: a note and the original as message/rfc822.
const FORWARD: &[u8] = b"From: fwd@example.com\r\n\
To: you@example.net\r\n\
Subject: Fwd: plans\r\n\
Content-Type: multipart/mixed; boundary=b1\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
See below.\r\n\
--b1\r\n\
Content-Type: message/rfc822\r\n\
Content-Description: original\r\n\
\r\n\
From: orig@example.org\r\n\
Subject: plans\r\n\
Content-Type: multipart/alternative; boundary=b2\r\n\
\r\n\
--b2\r\n\
Content-Type: text/plain\r\n\
\r\n\
Meet at noon.\r\n\
--b2\r\n\
Content-Type: text/html\r\n\
\r\n\
<b>noon</b>\r\n\
--b2--\r\n\
\r\n\
--b1--\r\n";

fn s(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn get(m: &[u8], path: &[u32], part: SectionPart) -> Vec<u8> {
    section(
        m,
        &Section {
            path: path.to_vec(),
            part,
        },
    )
    .bytes(m)
    .to_vec()
}

fn fields(names: &[&str], not: bool) -> SectionPart {
    SectionPart::HeaderFields {
        names: names.iter().map(|n| n.to_string()).collect(),
        not,
    }
}

/// Decodes `* 1 FETCH (...)` with imap-codec and returns its items, failing the test unless
/// the whole response is consumed.
fn oracle(m: &[u8]) -> Result<(), String> {
    let env = envelope(m);
    let ext = body_structure(m, true);
    let plain = body_structure(m, false);
    let mut response = b"* 1 FETCH (ENVELOPE ".to_vec();
    response.extend_from_slice(&env);
    response.extend_from_slice(b" BODYSTRUCTURE ");
    response.extend_from_slice(&ext);
    response.extend_from_slice(b" BODY ");
    response.extend_from_slice(&plain);
    response.extend_from_slice(b")\r\n");
    let (rest, decoded) = ResponseCodec::default()
        .decode(&response)
        .map_err(|e| format!("{e:?} decoding {:?}", s(&response)))?;
    if !rest.is_empty() {
        return Err(format!("left {:?} of {:?}", s(rest), s(&response)));
    }
    let Response::Data(Data::Fetch { items, .. }) = decoded else {
        return Err(format!("not a FETCH: {decoded:?}"));
    };
    let items = items.as_ref();
    if items.len() != 3 {
        return Err(format!("{} items", items.len()));
    }
    // Cross-check: every leaf's size and line count agree with the bytes BODY[section] gives.
    for item in items {
        if let MessageDataItem::BodyStructure(b) | MessageDataItem::Body(b) = item {
            check_sizes(m, b, &[])?;
        }
    }
    Ok(())
}

/// Walks a decoded body structure, comparing each part's size with `section(path)`.
fn check_sizes(m: &[u8], b: &BodyStructure<'_>, path: &[u32]) -> Result<(), String> {
    match b {
        BodyStructure::Multi { bodies, .. } => {
            for (i, child) in bodies.as_ref().iter().enumerate() {
                let mut p = path.to_vec();
                p.push(i as u32 + 1);
                check_sizes(m, child, &p)?;
            }
            Ok(())
        }
        BodyStructure::Single { body, .. } => {
            let here = if path.is_empty() {
                vec![1]
            } else {
                path.to_vec()
            };
            let data = get(m, &here, SectionPart::Full);
            if body.basic.size as usize != data.len() {
                return Err(format!(
                    "size {} != {} at {here:?}",
                    body.basic.size,
                    data.len()
                ));
            }
            let lines = |d: &[u8]| {
                d.iter().filter(|&&c| c == b'\n').count()
                    + usize::from(d.last().is_some_and(|&c| c != b'\n'))
            };
            match &body.specific {
                SpecificFields::Text {
                    number_of_lines, ..
                } if *number_of_lines as usize != lines(&data) => {
                    Err(format!("lines {number_of_lines} at {here:?}"))
                }
                SpecificFields::Message {
                    body_structure,
                    number_of_lines,
                    ..
                } => {
                    if *number_of_lines as usize != lines(&data) {
                        return Err(format!("message lines {number_of_lines} at {here:?}"));
                    }
                    // The encapsulated message's parts continue the numbering.
                    match body_structure.as_ref() {
                        BodyStructure::Multi { .. } => check_sizes(m, body_structure, &here),
                        single => {
                            let mut p = here.clone();
                            p.push(1);
                            check_sizes(m, single, &p)
                        }
                    }
                }
                _ => Ok(()),
            }
        }
    }
}

const MIXED_ENVELOPE: &str = concat!(
    r#"("Tue, 1 Dec 2026 10:00:00 +0100" "=?utf-8?q?Gr=C3=BC=C3=9Fe?=" "#,
    r#"(("Doe, Jane" NIL "jane" "example.org")) (("Doe, Jane" NIL "jane" "example.org")) "#,
    r#"(("Doe, Jane" NIL "jane" "example.org")) "#,
    r#"((NIL NIL "team" NIL)(NIL NIL "a" "example.com")("Bob" NIL "b" "example.com")(NIL NIL NIL NIL)"#,
    r#"("Carol" NIL "c" "example.net")) NIL NIL NIL "<1@example.org>")"#,
);

#[test]
fn mixed_envelope_keeps_encoded_words_and_groups() {
    // Sender and Reply-To are absent, so they repeat From (RFC 3501 section 7.4.2).
    assert_eq!(s(&envelope(MIXED)), MIXED_ENVELOPE);
    // The header alone gives the same envelope (FETCH may read only the header).
    assert_eq!(envelope(&MIXED[..header_end(MIXED)]), envelope(MIXED));
}

#[test]
fn mixed_body_structure() {
    assert_eq!(
        s(&body_structure(MIXED, true)),
        r#"((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 12 2 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 23 1 NIL NIL NIL NIL) "alternative" ("boundary" "inner") NIL NIL NIL)("application" "pdf" ("name" "report.pdf") NIL NIL "base64" 12 NIL ("attachment" ("filename" "report.pdf")) NIL NIL) "mixed" ("boundary" "outer") NIL NIL NIL)"#
    );
    assert_eq!(
        s(&body_structure(MIXED, false)),
        r#"((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 12 2)("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 23 1) "alternative")("application" "pdf" ("name" "report.pdf") NIL NIL "base64" 12) "mixed")"#
    );
}

#[test]
fn forwarded_message_body_structure() {
    assert_eq!(
        s(&body_structure(FORWARD, false)),
        r#"(("text" "plain" NIL NIL NIL "7bit" 10 1)("message" "rfc822" NIL NIL "original" "7bit" 195 (NIL "plans" ((NIL NIL "orig" "example.org")) ((NIL NIL "orig" "example.org")) ((NIL NIL "orig" "example.org")) NIL NIL NIL NIL NIL) (("text" "plain" NIL NIL NIL "7bit" 13 1)("text" "html" NIL NIL NIL "7bit" 11 1) "alternative") 13) "mixed")"#
    );
    assert_eq!(
        s(&body_structure(FORWARD, true)),
        r#"(("text" "plain" NIL NIL NIL "7bit" 10 1 NIL NIL NIL NIL)("message" "rfc822" NIL NIL "original" "7bit" 195 (NIL "plans" ((NIL NIL "orig" "example.org")) ((NIL NIL "orig" "example.org")) ((NIL NIL "orig" "example.org")) NIL NIL NIL NIL NIL) (("text" "plain" NIL NIL NIL "7bit" 13 1 NIL NIL NIL NIL)("text" "html" NIL NIL NIL "7bit" 11 1 NIL NIL NIL NIL) "alternative" ("boundary" "b2") NIL NIL NIL) 13 NIL NIL NIL NIL) "mixed" ("boundary" "b1") NIL NIL NIL)"#
    );
}

#[test]
fn mixed_sections() {
    let m = MIXED;
    assert_eq!(get(m, &[], SectionPart::Full), m);
    assert_eq!(get(m, &[], SectionPart::Header), &m[..header_end(m)]);
    assert!(get(m, &[], SectionPart::Text).starts_with(b"preamble\r\n--outer\r\n"));
    let one = get(m, &[1], SectionPart::Full);
    assert!(
        one.starts_with(b"--inner\r\nContent-Type: text/plain"),
        "{}",
        s(&one)
    );
    assert!(one.ends_with(b"--inner--\r\n"), "{}", s(&one));
    assert_eq!(
        get(m, &[1], SectionPart::Mime),
        b"Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
    );
    assert_eq!(get(m, &[1, 1], SectionPart::Full), b"hello\r\nworld");
    assert_eq!(
        get(m, &[1, 2], SectionPart::Full),
        b"<p>hello w=C3=B6rld</p>"
    );
    assert_eq!(
        get(m, &[1, 2], SectionPart::Mime),
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    );
    assert_eq!(get(m, &[2], SectionPart::Full), b"JVBERi0xLjQK");
    // Nonexistent parts, and HEADER/TEXT on parts that are not message/rfc822, are empty.
    for path in [&[3][..], &[0], &[1, 3], &[1, 1, 1], &[2, 1]] {
        assert_eq!(get(m, path, SectionPart::Full), b"", "{path:?}");
    }
    assert_eq!(get(m, &[1], SectionPart::Header), b"");
    assert_eq!(get(m, &[1, 2], SectionPart::Text), b"");
    assert_eq!(get(m, &[2], fields(&["Content-Type"], false)), b"");
}

#[test]
fn header_fields_and_not() {
    assert_eq!(
        s(&get(MIXED, &[], fields(&["From", "SUBJECT"], false))),
        "From: \"Doe, Jane\" <jane@example.org>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"
    );
    let not = get(
        MIXED,
        &[],
        fields(&["from", "subject", "to", "date", "content-type"], true),
    );
    assert_eq!(
        s(&not),
        "Message-ID: <1@example.org>\r\nMIME-Version: 1.0\r\n\r\n"
    );
    // Built data, not a range.
    let spec = Section {
        path: vec![],
        part: fields(&["From"], false),
    };
    assert!(matches!(section(MIXED, &spec), SectionData::Bytes(_)));
}

#[test]
fn forwarded_message_sections() {
    let m = FORWARD;
    let inner_header = "From: orig@example.org\r\nSubject: plans\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n";
    assert_eq!(s(&get(m, &[2], SectionPart::Header)), inner_header);
    assert_eq!(get(m, &[2], SectionPart::Full).len(), 195);
    assert!(get(m, &[2], SectionPart::Full).starts_with(inner_header.as_bytes()));
    assert!(get(m, &[2], SectionPart::Text).starts_with(b"--b2\r\n"));
    assert_eq!(
        get(m, &[2], SectionPart::Mime),
        b"Content-Type: message/rfc822\r\nContent-Description: original\r\n\r\n"
    );
    assert_eq!(
        get(m, &[2], fields(&["subject"], false)),
        b"Subject: plans\r\n\r\n"
    );
    assert_eq!(get(m, &[2, 1], SectionPart::Full), b"Meet at noon.");
    assert_eq!(get(m, &[2, 2], SectionPart::Full), b"<b>noon</b>");
    assert_eq!(
        get(m, &[2, 2], SectionPart::Mime),
        b"Content-Type: text/html\r\n\r\n"
    );
    assert_eq!(get(m, &[2, 3], SectionPart::Full), b"");
    assert_eq!(get(m, &[1], SectionPart::Full), b"See below.");
}

#[test]
fn message_rfc822_with_single_part_inner_message() {
    let m = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n\
              Subject: inner\r\n\r\nline one\r\nline two\r\n--x--\r\n";
    assert_eq!(get(m, &[1, 1], SectionPart::Full), b"line one\r\nline two");
    assert_eq!(get(m, &[1], SectionPart::Text), b"line one\r\nline two");
    assert_eq!(
        get(m, &[1, 1], SectionPart::Mime),
        b"Subject: inner\r\n\r\n"
    );
    assert_eq!(get(m, &[1, 2], SectionPart::Full), b"");
    oracle(m).unwrap();
}

#[test]
fn bare_lf_message() {
    let lf: Vec<u8> = MIXED.iter().copied().filter(|&b| b != b'\r').collect();
    assert_eq!(
        s(&body_structure(&lf, false)),
        r#"((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 11 2)("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 23 1) "alternative")("application" "pdf" ("name" "report.pdf") NIL NIL "base64" 12) "mixed")"#
    );
    assert_eq!(s(&envelope(&lf)), MIXED_ENVELOPE);
    assert_eq!(get(&lf, &[1, 1], SectionPart::Full), b"hello\nworld");
    assert_eq!(
        get(&lf, &[], fields(&["message-id"], false)),
        b"Message-ID: <1@example.org>\n\r\n"
    );
    assert!(text_matches(&lf, "HELLO WÖRLD", true));
    oracle(&lf).unwrap();
}

#[test]
fn eight_bit_subject_is_a_literal_that_decodes() {
    let m = "Subject: Grüße aus Köln\r\nFrom: Jörg <jörg@bücher.example>\r\n\r\nx".as_bytes();
    let env = envelope(m);
    let subject = "Grüße aus Köln";
    let expected = format!("(NIL {{{}}}\r\n{subject} ", subject.len());
    assert!(env.starts_with(expected.as_bytes()), "{}", s(&env));
    let response = [&b"* 1 FETCH (ENVELOPE "[..], &env, b")\r\n"].concat();
    let (rest, decoded) = ResponseCodec::default().decode(&response).expect("decodes");
    assert!(rest.is_empty());
    let Response::Data(Data::Fetch { items, .. }) = decoded else {
        panic!("{decoded:?}")
    };
    let MessageDataItem::Envelope(e) = &items.as_ref()[0] else {
        panic!()
    };
    assert_eq!(
        e.subject.0.as_ref().map(|v| v.as_ref().to_vec()),
        Some(subject.as_bytes().to_vec())
    );
    let from = &e.from[0];
    assert_eq!(
        from.name.0.as_ref().map(|v| v.as_ref().to_vec()),
        Some("Jörg".as_bytes().to_vec())
    );
    assert_eq!(
        from.host.0.as_ref().map(|v| v.as_ref().to_vec()),
        Some("bücher.example".as_bytes().to_vec())
    );
}

#[test]
fn missing_content_type_and_missing_boundary() {
    let plain = b"Subject: x\r\n\r\nhi\r\n";
    assert_eq!(
        s(&body_structure(plain, false)),
        r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1)"#
    );
    let broken = b"Content-Type: multipart/mixed\r\n\r\n--a\r\n\r\nx\r\n--a--\r\n";
    assert_eq!(
        s(&body_structure(broken, true)),
        r#"("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 17 4 NIL NIL NIL NIL)"#
    );
    assert_eq!(get(broken, &[1], SectionPart::Full), &broken[33..]);
    oracle(plain).unwrap();
    oracle(broken).unwrap();
}

#[test]
fn search_matching() {
    assert!(
        header_matches(MIXED, "subject", "GRÜSSE") || header_matches(MIXED, "subject", "grüße")
    );
    assert!(header_matches(MIXED, "From", "doe, jane"));
    assert!(header_matches(MIXED, "to", ""));
    assert!(!header_matches(MIXED, "cc", ""));
    assert!(
        text_matches(MIXED, "WÖRLD", true),
        "quoted-printable HTML is decoded"
    );
    assert!(!text_matches(MIXED, "doe, jane", true));
    assert!(text_matches(MIXED, "doe, jane", false));
    assert!(
        text_matches(FORWARD, "orig@example.org", true),
        "an encapsulated header is body"
    );
    assert!(text_matches(FORWARD, "meet at NOON", true));
    assert!(!text_matches(FORWARD, "nowhere", false));
    assert_eq!(sent_date(MIXED), Some((2026, 12, 1)));
    assert_eq!(sent_date(FORWARD), None);
}

#[test]
fn oracle_accepts_every_fixture() {
    let long = "Subject: long \u{1F600}\r\n".repeat(3);
    let fixtures: [&[u8]; 12] = [
        MIXED,
        FORWARD,
        b"",
        b"\r\n",
        b"no header at all",
        b"To: undisclosed-recipients:;\r\nCc: a, b@c, <@r:x@y>, \"q\\\"uote\" <q@x>\r\n\r\n",
        b"Subject: \"quotes\" and \\backslashes\\\r\nDate:\r\n\r\n",
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\n1\r\n--d\r\n\r\nSubject: two\r\n\r\n2\r\n--d--\r\n",
        b"Content-Type: text/plain; name*0=\"a\"; name*1=\"b\"; title*=utf-8''%E2%82%AC\r\nContent-Language: en, de\r\n\r\nx",
        b"Content-Type: message/rfc822\r\n\r\nSubject: top-level encapsulation\r\n\r\nbody",
        b"Subject: nul\0byte\r\nFrom: a\0b@c\r\n\r\n",
        long.as_bytes(),
    ];
    for m in fixtures {
        if let Err(e) = oracle(m) {
            panic!("{e}\nfor {:?}", s(m));
        }
    }
}

/// Splices that make mutations hit the parsers' interesting paths.
fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n\r\n".to_vec()),
        Just(b"--outer".to_vec()),
        Just(b"--outer--".to_vec()),
        Just(b"--inner\r\n".to_vec()),
        Just(b"--b2--".to_vec()),
        Just(b"Content-Type: message/rfc822\r\n".to_vec()),
        Just(b"Content-Type: multipart/mixed; boundary=b1\r\n".to_vec()),
        Just(b"Content-Type: text/plain; charset=\"".to_vec()),
        Just(b"Content-Transfer-Encoding: base64\r\n".to_vec()),
        Just(b"Content-Disposition: inline; filename=\r\n".to_vec()),
        Just(b"From: a:b;c<d@e>,\"f\r\n".to_vec()),
        Just(b" \t".to_vec()),
        Just(b":".to_vec()),
        Just(b";".to_vec()),
        Just(b"<".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"(".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"=?utf-8?q?=C3".to_vec()),
        Just(vec![0]),
        Just(vec![0xff, 0xfe]),
        Just("ü".as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 1..16),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), token()).prop_map(|(at, t)| Mutation::Insert(at, t)),
        2 => (any::<usize>(), 1usize..40).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(base: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut m = base.to_vec();
    for op in mutations {
        let len = m.len();
        match op {
            Mutation::Insert(at, t) => {
                let at = at % (len + 1);
                m.splice(at..at, t.iter().copied());
            }
            Mutation::Delete(at, n) if len > 0 => {
                let at = at % len;
                m.drain(at..(at + n).min(len));
            }
            Mutation::Truncate(at) => m.truncate(at % (len + 1)),
            Mutation::Delete(..) => {}
        }
    }
    m
}

fn section_strategy() -> impl Strategy<Value = Section> {
    let part = prop_oneof![
        Just(SectionPart::Full),
        Just(SectionPart::Header),
        Just(SectionPart::Text),
        Just(SectionPart::Mime),
        (
            proptest::collection::vec("[A-Za-z-]{1,12}", 0..3),
            any::<bool>()
        )
            .prop_map(|(names, not)| SectionPart::HeaderFields { names, not }),
    ];
    (proptest::collection::vec(0u32..4, 0..4), part).prop_map(|(path, part)| Section { path, part })
}

/// Everything the module offers, on `m`: no panic, and the renderings decode.
fn exercise(m: &[u8], spec: &Section) -> Result<(), TestCaseError> {
    oracle(m).map_err(TestCaseError::fail)?;
    let he = header_end(m);
    prop_assert!(he <= m.len());
    if let SectionData::Range(r) = section(m, spec) {
        prop_assert!(r.start <= r.end && r.end <= m.len(), "{r:?} of {}", m.len());
    }
    let _ = header_matches(m, "subject", "ü");
    let _ = header_matches(m, "from", "");
    let _ = text_matches(m, "hello", true);
    let _ = text_matches(m, "Ö", false);
    if let Some((_, month, day)) = sent_date(m) {
        prop_assert!((1..=12).contains(&month) && (1..=31).contains(&day));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_and_always_decode(
        m in proptest::collection::vec(any::<u8>(), 0..600),
        spec in section_strategy(),
    ) {
        exercise(&m, &spec)?;
    }

    #[test]
    fn mutated_messages_never_panic_and_always_decode(
        base in prop_oneof![Just(MIXED), Just(FORWARD)],
        // Few enough that inserted message/rfc822 headers cannot nest parts past the eight
        // levels imap-codec's decoder allows (a limit of the oracle, not of the grammar).
        mutations in proptest::collection::vec(mutation(), 1..4),
        spec in section_strategy(),
    ) {
        let m = mutate(base, &mutations);
        exercise(&m, &spec)?;
    }
}
