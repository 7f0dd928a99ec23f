//! Properties of the NNTP grammar: no input makes it panic, ranges print as they parse, and
//! wildmat matching agrees with a plain recursive reference.

use nntp_core::syntax::{Command, Range, Wildmat};
use proptest::prelude::*;

/// The obvious exponential matcher, as a reference for the linear one.
fn reference(p: &[char], n: &[char]) -> bool {
    match (p.first(), n.first()) {
        (None, None) => true,
        (Some('*'), _) => reference(&p[1..], n) || (!n.is_empty() && reference(p, &n[1..])),
        (Some('?'), Some(_)) => reference(&p[1..], &n[1..]),
        (Some(a), Some(b)) if a == b => reference(&p[1..], &n[1..]),
        _ => false,
    }
}

proptest! {
    #[test]
    fn any_line_parses_or_is_refused_without_panicking(line in "\\PC{0,80}") {
        let _ = Command::parse(&line);
    }

    #[test]
    fn command_like_lines_parse_or_are_refused(
        verb in prop::sample::select(vec!["GROUP", "LISTGROUP", "ARTICLE", "OVER", "XOVER", "HDR",
            "XPAT", "NEWGROUPS", "NEWNEWS", "LIST", "AUTHINFO", "MODE", "STAT"]),
        args in prop::collection::vec("[a-z0-9.<>@*!,:-]{0,12}", 0..5),
    ) {
        let line = format!("{verb} {}", args.join(" "));
        let _ = Command::parse(&line);
    }

    #[test]
    fn ranges_print_as_they_parse(first in 0u64..1_000_000, len in proptest::option::of(0u64..1000)) {
        let r = Range { first, last: len.map(|l| first + l) };
        prop_assert_eq!(Range::parse(&r.to_string()), Some(r));
    }

    #[test]
    fn wildmat_agrees_with_the_reference(p in "[ab*?]{1,8}", n in "[ab]{0,10}") {
        let w = Wildmat::parse(&p).unwrap();
        let pc: Vec<char> = p.chars().collect();
        let nc: Vec<char> = n.chars().collect();
        prop_assert_eq!(w.matches(&n), reference(&pc, &nc));
    }
}

proptest! {
    #[test]
    fn notice_groups_are_valid_names_and_one_per_address(
        a in ("[a-zA-Z0-9.-]{1,12}", "\\PC{0,12}"),
        b in ("[a-zA-Z0-9.-]{1,12}", "\\PC{0,12}"),
    ) {
        let (ga, gb) = (nntp_core::notice_group(&a.0, &a.1), nntp_core::notice_group(&b.0, &b.1));
        // RFC 5536 3.1.4: dot-separated non-empty components of a-z, 0-9, +, -, _.
        for g in [&ga, &gb] {
            prop_assert!(g.split('.').all(|c| !c.is_empty()
                && c.bytes().all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"+-_".contains(&x))), "{}", g);
        }
        let same = a.0.eq_ignore_ascii_case(&b.0) && a.1 == b.1;
        prop_assert_eq!(ga == gb, same);
    }
}

proptest! {
    #[test]
    fn overview_lines_have_eight_fields_and_fit_nntplib(
        fields in prop::collection::vec("\\PC{0,40}", 5),
        reps in prop::collection::vec(0usize..120, 5),
        bytes in any::<u64>(),
        lines in any::<u64>(),
        number in any::<u64>(),
    ) {
        let f = |i: usize| fields[i].repeat(reps[i]);
        let o = nntp_core::Overview {
            subject: f(0), from: f(1), date: f(2), message_id: f(3), references: f(4), bytes, lines,
        };
        let line = o.line(number);
        prop_assert!(line.len() <= nntp_core::MAX_OVERVIEW_LINE);
        prop_assert!(!line.contains(['\r', '\n']));
        let parts: Vec<&str> = line.split('\t').collect();
        prop_assert_eq!(parts.len(), 8);
        let (n, b, l) = (number.to_string(), bytes.to_string(), lines.to_string());
        prop_assert_eq!(parts[0], n.as_str());
        prop_assert_eq!(parts[6], b.as_str());
        prop_assert_eq!(parts[7], l.as_str());
    }
}
