//! The UID list: Dovecot's `dovecot-uidlist`, version 3, so a Maildir keeps its UIDs and
//! UIDVALIDITY between Dovecot and buzon. The format: a header `3 V<uidvalidity> N<nextuid>
//! G<guid> ...` (other fields kept as they are), then `<uid> [<fields> ]:<base name>` per message.

use std::collections::BTreeMap;

/// What the list says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UidList {
    pub(crate) uid_validity: u32,
    pub(crate) next_uid: u32,
    /// Header fields we do not interpret (`G<guid>` and others), kept in order.
    pub(crate) other: Vec<String>,
    /// UID to (fields before the `:`, base name).
    pub(crate) entries: BTreeMap<u32, (String, String)>,
}

impl UidList {
    pub(crate) fn new(uid_validity: u32) -> Self {
        UidList {
            uid_validity,
            next_uid: 1,
            other: Vec::new(),
            entries: BTreeMap::new(),
        }
    }

    /// Parses the file; `None` if it is not a version 3 list we can trust.
    pub(crate) fn parse(text: &str) -> Option<UidList> {
        let mut lines = text.lines();
        let header = lines.next()?;
        let mut fields = header.split(' ');
        if fields.next()? != "3" {
            return None;
        }
        let mut list = UidList::default();
        for f in fields {
            if let Some(v) = f.strip_prefix('V') {
                list.uid_validity = v.parse().ok()?;
            } else if let Some(n) = f.strip_prefix('N') {
                list.next_uid = n.parse().ok()?;
            } else if !f.is_empty() {
                list.other.push(f.to_owned());
            }
        }
        if list.uid_validity == 0 {
            return None;
        }
        for line in lines {
            let Some((head, base)) = line.split_once(':') else {
                continue;
            };
            let (uid, rest) = head.split_once(' ').unwrap_or((head, ""));
            let Ok(uid) = uid.trim().parse::<u32>() else {
                continue;
            };
            if uid == 0 || base.is_empty() {
                continue;
            }
            list.entries
                .insert(uid, (rest.trim().to_owned(), base.to_owned()));
        }
        let highest = list.entries.keys().next_back().copied().unwrap_or(0);
        list.next_uid = list.next_uid.max(highest.saturating_add(1)).max(1);
        Some(list)
    }

    pub(crate) fn render(&self) -> String {
        let mut s = format!("3 V{} N{}", self.uid_validity, self.next_uid);
        for f in &self.other {
            s.push(' ');
            s.push_str(f);
        }
        s.push('\n');
        for (uid, (fields, base)) in &self.entries {
            if fields.is_empty() {
                s.push_str(&format!("{uid} :{base}\n"));
            } else {
                s.push_str(&format!("{uid} {fields} :{base}\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_dovecot_v3() {
        let text = "3 V1700000000 N5 G3085f01b7f11094c501100008c4a11c1\n1 :1700000000.M1P1.h,S=10,W=11\n4 W120 :1700000001.M2P1.h\n";
        let l = UidList::parse(text).unwrap();
        assert_eq!((l.uid_validity, l.next_uid), (1_700_000_000, 5));
        assert_eq!(
            l.entries[&4],
            ("W120".to_string(), "1700000001.M2P1.h".to_string())
        );
        assert_eq!(l.render(), text);
        assert!(
            UidList::parse("1 1 2\n").is_none(),
            "version 1 is not ours to rewrite"
        );
        assert!(UidList::parse("3 V0 N1\n").is_none());
    }
}
