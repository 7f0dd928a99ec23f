//! Base64 (RFC 4648 section 4), as SASL exchanges (RFC 4422) and MIME encoded words (RFC
//! 2047) carry it.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 (RFC 4648 section 4) with padding, as SASL challenges are sent.
///
/// ```
/// assert_eq!(line_protocol::base64::encode(b"Username:"), "VXNlcm5hbWU6");
/// assert_eq!(line_protocol::base64::encode(b""), "");
/// ```
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes base64 (RFC 4648 section 4); `None` for anything else. Padding may be left out, as
/// some clients do; characters outside the alphabet, padding in the middle and leftover bits
/// that are not zero are refused.
///
/// ```
/// use line_protocol::base64::decode;
/// assert_eq!(decode(b"AGFsaWNlAHNlY3JldA=="), Some(b"\0alice\0secret".to_vec()));
/// assert_eq!(decode(b"AGFsaWNlAHNlY3JldA"), Some(b"\0alice\0secret".to_vec()));
/// assert_eq!(decode(b"not base64!"), None);
/// ```
pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let body = match text {
        [rest @ .., b'=', b'='] => rest,
        [rest @ .., b'='] => rest,
        _ => text,
    };
    if body.len() % 4 == 1 || (body.len() != text.len() && !text.len().is_multiple_of(4)) {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = ALPHABET.iter().position(|&a| a == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        let octets = chunk.len() * 6 / 8;
        let bytes = n.to_be_bytes();
        // Bits below the last whole octet must be zero (RFC 4648 section 3.5).
        if (n & (0xff_ffff >> (octets * 8))) != 0 {
            return None;
        }
        out.extend_from_slice(&bytes[1..=octets]);
    }
    Some(out)
}
