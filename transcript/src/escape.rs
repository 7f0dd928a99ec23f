//! The byte escapes of transcript lines.

/// Turns the escapes `\r \n \t \\ \xHH` into bytes; other backslashes stay literal.
///
/// ```
/// assert_eq!(transcript::unescape(r"a\r\n\x00\q"), b"a\r\n\0\\q");
/// ```
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let decoded = match b[i + 1] {
                b'r' => Some((b'\r', 2)),
                b'n' => Some((b'\n', 2)),
                b't' => Some((b'\t', 2)),
                b'\\' => Some((b'\\', 2)),
                b'x' => s
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .map(|v| (v, 4)),
                _ => None,
            };
            if let Some((byte, len)) = decoded {
                out.push(byte);
                i += len;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Writes bytes so that [`unescape`] gives them back: printable ASCII and UTF-8 as is, a
/// backslash doubled, everything else as an escape.
///
/// ```
/// use transcript::{escape, unescape};
/// let bytes = b"caf\xc3\xa9 \\ \r\n\x7f";
/// assert_eq!(escape(bytes), r"café \\ \r\n\x7f");
/// assert_eq!(unescape(&escape(bytes)), bytes);
/// ```
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' => out.push_str(r"\r"),
                '\n' => out.push_str(r"\n"),
                '\t' => out.push_str(r"\t"),
                '\\' => out.push_str(r"\\"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        push_hex(&mut out, b);
                    }
                }
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            push_hex(&mut out, b);
        }
    }
    out
}

fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str(r"\x");
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 0xf)] as char);
}
