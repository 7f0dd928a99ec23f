//! Turning a CSV file's bytes into text, and finding its delimiter.
//!
//! Spreadsheets save CSV in whatever their locale likes: Excel on Windows
//! writes Windows-1252 unless told otherwise, its "Unicode text" is UTF-16
//! with a byte-order mark and tabs, and in locales where the comma is the
//! decimal separator (Spanish, French, German...) it separates fields with
//! `;`. All of it is read here, so the rest of the crate sees UTF-8 text.

use crate::MergeError;
use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// A file's text and how it was read.
#[derive(Debug)]
pub(crate) struct Text {
    pub(crate) text: String,
    /// The encoding's name, as the WHATWG Encoding Standard spells it
    /// (`UTF-8`, `UTF-16LE`, `windows-1252`).
    pub(crate) encoding: &'static str,
    /// Something the user should know about the reading.
    pub(crate) warning: Option<String>,
}

/// Decodes `bytes`: with the encoding named by `label` when given (any
/// WHATWG label: `latin1`, `cp1252`, `utf-16le`...), else by its byte-order
/// mark, else as UTF-8 if it is valid UTF-8, else as Windows-1252.
pub(crate) fn decode(bytes: &[u8], label: Option<&str>) -> Result<Text, MergeError> {
    if let Some(label) = label {
        let encoding = Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
            MergeError::UnknownEncoding {
                label: label.to_owned(),
            }
        })?;
        // A BOM for the chosen encoding is not text; decode_with_bom_removal
        // takes off only that one.
        let (text, had_errors) = encoding.decode_with_bom_removal(bytes);
        let warning = had_errors.then(|| {
            format!(
                "some bytes are not valid {}; they were replaced with \u{FFFD}",
                encoding.name()
            )
        });
        return Ok(Text {
            text: text.into_owned(),
            encoding: encoding.name(),
            warning,
        });
    }
    if let Some((encoding, bom)) = Encoding::for_bom(bytes).or_else(|| utf16_without_bom(bytes)) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
        let warning = had_errors.then(|| {
            format!(
                "the file starts like {} but is not valid {}; bad bytes were replaced with \u{FFFD}",
                encoding.name(),
                encoding.name()
            )
        });
        return Ok(Text {
            text: text.into_owned(),
            encoding: encoding.name(),
            warning,
        });
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Text {
            text: text.to_owned(),
            encoding: UTF_8.name(),
            warning: None,
        });
    }
    // Windows-1252 gives every byte a character, so this cannot fail; it is
    // what Excel on Windows writes for "CSV (Comma delimited)".
    let (text, _, _) = WINDOWS_1252.decode(bytes);
    Ok(Text {
        text: text.into_owned(),
        encoding: WINDOWS_1252.name(),
        warning: Some(
            "the file is not valid UTF-8, so it was read as Windows-1252 (what Excel on Windows \
             saves); if names look wrong, name the encoding with --encoding"
                .to_owned(),
        ),
    })
}

/// UTF-16 saved without a byte-order mark still shows itself: ASCII text
/// has a zero in every other byte.
fn utf16_without_bom(bytes: &[u8]) -> Option<(&'static Encoding, usize)> {
    match bytes {
        [a, 0, b, 0, ..] if *a != 0 && *b != 0 => Some((UTF_16LE, 0)),
        [0, a, 0, b, ..] if *a != 0 && *b != 0 => Some((UTF_16BE, 0)),
        _ => None,
    }
}

/// Excel's `sep=;` first line names the delimiter; it is not a record.
/// Returns the delimiter and the text after that line.
pub(crate) fn sep_line(text: &str) -> Option<(u8, &str)> {
    let first = text.lines().next()?;
    let rest = &text[first.len()..];
    let rest = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))
        .or_else(|| rest.strip_prefix('\r'))
        .unwrap_or(rest);
    match first.strip_prefix("sep=")?.as_bytes() {
        [d] if d.is_ascii() => Some((*d, rest)),
        _ => None,
    }
}

/// The delimiters recognised, in order of preference when counts tie.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Finds the delimiter from the header line: the candidate that occurs most
/// often outside quotes; `,` when none does.
pub(crate) fn detect_delimiter(text: &str) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for b in text.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = DELIMITERS.iter().position(|&d| d == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let mut best = 0;
    for i in 1..DELIMITERS.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    DELIMITERS[best]
}

/// How a delimiter is shown to a user.
pub(crate) fn describe_delimiter(d: u8) -> String {
    match d {
        b'\t' => "tab".to_owned(),
        d => format!("'{}'", char::from(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_and_without_bom() {
        let t = decode(b"\xEF\xBB\xBFemail\n", None).unwrap();
        assert_eq!(
            (t.text.as_str(), t.encoding, t.warning),
            ("email\n", "UTF-8", None)
        );
        let t = decode("josé\n".as_bytes(), None).unwrap();
        assert_eq!((t.text.as_str(), t.encoding), ("josé\n", "UTF-8"));
    }

    #[test]
    fn utf16_with_bom_and_without() {
        let mut le = vec![0xFF, 0xFE];
        le.extend("é,x\n".encode_utf16().flat_map(u16::to_le_bytes));
        let t = decode(&le, None).unwrap();
        assert_eq!((t.text.as_str(), t.encoding), ("é,x\n", "UTF-16LE"));
        let mut be = vec![0xFE, 0xFF];
        be.extend("é,x\n".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&be, None).unwrap().text, "é,x\n");
        let bare: Vec<u8> = "email\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(decode(&bare, None).unwrap().text, "email\n");
    }

    #[test]
    fn invalid_utf8_is_read_as_windows_1252_with_a_warning() {
        let t = decode(b"Jos\xe9 \x80\n", None).unwrap();
        assert_eq!(t.text, "José €\n");
        assert_eq!(t.encoding, "windows-1252");
        assert!(t.warning.unwrap().contains("--encoding"));
    }

    #[test]
    fn a_named_encoding_wins() {
        let t = decode(b"Jos\xe9\n", Some("latin1")).unwrap();
        assert_eq!(t.text, "José\n");
        // Valid UTF-8 read as what the user says it is.
        let t = decode("é".as_bytes(), Some("cp1252")).unwrap();
        assert_eq!(t.text, "Ã©");
        assert!(matches!(
            decode(b"x", Some("klingon")),
            Err(MergeError::UnknownEncoding { .. })
        ));
    }

    #[test]
    fn delimiters_are_found_in_the_header_line() {
        assert_eq!(detect_delimiter("email,name\na;b;c;d\n"), b',');
        assert_eq!(detect_delimiter("email;name;\"a,b,c\"\n"), b';');
        assert_eq!(detect_delimiter("email\tname\n"), b'\t');
        assert_eq!(detect_delimiter("email|name\n"), b'|');
        assert_eq!(detect_delimiter("email\n"), b',');
        assert_eq!(detect_delimiter("\"a;b\",c\n"), b',');
    }

    #[test]
    fn excel_sep_line() {
        assert_eq!(
            sep_line("sep=;\r\nemail;name\n"),
            Some((b';', "email;name\n"))
        );
        assert_eq!(sep_line("sep=\t\nx"), Some((b'\t', "x")));
        assert_eq!(sep_line("email\n"), None);
    }
}
