//! Temporary: stands in for the message module's API until it lands.
#![allow(dead_code, missing_docs, unreachable_pub, clippy::all)]
pub struct Section {
    pub path: Vec<u32>,
    pub part: SectionPart,
}
pub enum SectionPart {
    Full,
    Header,
    HeaderFields { names: Vec<String>, not: bool },
    Text,
    Mime,
}
pub enum SectionData {
    Range(std::ops::Range<usize>),
    Bytes(Vec<u8>),
}
pub fn envelope(_m: &[u8]) -> Vec<u8> {
    b"NIL".to_vec()
}
pub fn body_structure(_m: &[u8], _e: bool) -> Vec<u8> {
    b"NIL".to_vec()
}
pub fn section(_m: &[u8], _s: &Section) -> SectionData {
    SectionData::Bytes(Vec::new())
}
pub fn header_end(m: &[u8]) -> usize {
    m.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(m.len(), |p| p + 4)
}
pub fn header_matches(_m: &[u8], _f: &str, _n: &str) -> bool {
    false
}
pub fn text_matches(_m: &[u8], _n: &str, _b: bool) -> bool {
    false
}
pub fn sent_date(_m: &[u8]) -> Option<(i32, u32, u32)> {
    None
}
