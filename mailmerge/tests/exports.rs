//! CSV files shaped like real exports (Outlook, Google Contacts, Thunderbird,
//! Excel in its three CSV flavours) are read with no options: the right
//! addresses, the right names, every row.

use mailmerge::{ReadOptions, Recipients, RenderContext, Template, read_recipients};

fn read(name: &str) -> Recipients {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap();
    let r = read_recipients(&bytes, &ReadOptions::default()).unwrap();
    assert!(r.skipped.is_empty(), "{name}: {:?}", r.skipped);
    r
}

fn people(r: &Recipients) -> Vec<(&str, Option<&str>)> {
    r.rows
        .iter()
        .map(|row| (row.email.as_str(), row.name.as_deref()))
        .collect()
}

#[test]
fn outlook_export_in_windows_1252() {
    let r = read("outlook.csv");
    assert_eq!(r.encoding, "windows-1252");
    assert_eq!(
        r.warnings.len(),
        1,
        "the guess is announced: {:?}",
        r.warnings
    );
    assert_eq!(r.email_column.as_deref(), Some("E-mail Address"));
    assert_eq!(r.name_column, None);
    assert_eq!(r.name_parts, ["First Name", "Middle Name", "Last Name"]);
    assert_eq!(
        people(&r),
        [
            ("john.smith@example.com", Some("John Smith")),
            ("zoe@example.com", Some("Zoë O'Brien")),
            ("ada@example.com", Some("Ada King Lovelace")),
        ]
    );
    // Columns keep their values, quoted newlines included.
    assert_eq!(r.rows[2].fields["Notes"], "Countess,\r\nmathematician");
    assert_eq!(r.rows[1].line, 3);
    assert_eq!(r.rows[2].line, 4);
}

#[test]
fn google_contacts_export() {
    let r = read("google.csv");
    assert_eq!((r.encoding, r.delimiter), ("UTF-8", b','));
    assert_eq!(r.email_column.as_deref(), Some("E-mail 1 - Value"));
    assert_eq!(
        people(&r),
        [
            ("bruce@example.com", Some("李 小龍")),
            ("zoe@example.com", Some("Zoë O'Brien")),
            ("mj@example.com", Some("María José Ñúñez de la Peña")),
        ]
    );
    assert_eq!(r.rows[1].fields["E-mail 2 - Value"], "zoe.work@example.com");
}

#[test]
fn thunderbird_export_with_its_trailing_comma() {
    let r = read("thunderbird.csv");
    assert_eq!(r.email_column.as_deref(), Some("Primary Email"));
    assert_eq!(r.name_column.as_deref(), Some("Display Name"));
    assert_eq!(
        people(&r),
        [
            ("john.smith@example.com", Some("Smith, John")),
            ("ada@example.com", Some("Ada (the first)")),
            // No display name: first and last name.
            ("grace@example.com", Some("Grace Hopper")),
        ]
    );
    // The unnamed last column is not a variable.
    assert!(!r.rows[0].fields.contains_key(""));
}

#[test]
fn excel_spanish_locale_semicolons_in_windows_1252() {
    let r = read("excel-es-1252.csv");
    assert_eq!((r.encoding, r.delimiter), ("windows-1252", b';'));
    assert_eq!(r.name_column.as_deref(), Some("nombre"));
    assert_eq!(
        people(&r),
        [
            ("jose@example.com", Some("José Ñúñez")),
            ("zoe@example.com", Some("Zoë \"Zed\" O'Brien")),
            ("smith@example.com", Some("Smith, John")),
        ]
    );
    assert_eq!(r.rows[2].fields["ciudad"], "Málaga; centro");
}

#[test]
fn excel_unicode_text_is_utf16_with_tabs() {
    let r = read("excel-unicode.txt");
    assert_eq!((r.encoding, r.delimiter), ("UTF-16LE", b'\t'));
    assert!(r.warnings.is_empty());
    assert_eq!(
        people(&r),
        [
            ("bruce@example.com", Some("李小龍")),
            ("zoe@example.com", Some("Zoë \"Zed\" O'Brien")),
        ]
    );
    assert_eq!(r.rows[1].fields["Note"], "tab\tinside");
}

#[test]
fn excel_utf8_with_bom() {
    let r = read("excel-utf8-bom.csv");
    assert_eq!(r.encoding, "UTF-8");
    assert_eq!(r.columns, ["E-mail", "Name"]);
    assert_eq!(
        people(&r),
        [
            ("bruce@example.com", Some("李小龍")),
            ("smith@example.com", Some("Smith, John")),
            ("ada@example.com", Some("Ada (the first)")),
        ]
    );
}

/// The plain template line works for every export, and export headers
/// are usable as variables by their normalised names and through `row`.
#[test]
fn export_columns_are_template_variables() {
    let r = read("outlook.csv");
    let template = Template::parse(
        "From: Shop <shop@example.com>\nTo: {{ name }} <{{ email }}>\nSubject: {{ first_name }}, {{ row[\"Categories\"] }}\n\n{{ e_mail_display_name }}\n",
        None,
    )
    .unwrap();
    template.check_columns(&r.columns).unwrap();
    let ctx = RenderContext {
        from: None,
        date: 1_700_000_000,
        message_id: "<x.1@example.com>".into(),
    };
    let out = template
        .render(&r.rows[0], &ctx, &|_| unreachable!())
        .unwrap();
    let text = String::from_utf8(out.message).unwrap();
    assert!(
        text.contains("To: John Smith <john.smith@example.com>\r\n"),
        "{text}"
    );
    assert!(text.contains("Subject: John, Customers\r\n"), "{text}");
    assert!(
        text.contains("John Smith (john.smith@example.com)\r\n"),
        "{text}"
    );

    let bad = Template::parse("Subject: {{ e_mail_adress }}\n\nx\n", None).unwrap();
    let err = bad.check_columns(&r.columns).unwrap_err().to_string();
    assert!(
        err.contains("e_mail_address"),
        "the message shows the form: {err}"
    );
}
