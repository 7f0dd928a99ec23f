//! The page's Recipients, Check and Preview: the CSV as a table with each row's problems, a lint
//! of every row against the message before anything is sent, and one row rendered as its
//! recipient will get it. All of it is the same rendering `buzon send` does.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use mail_parser::MimeHeaders;
use mailmerge::{MergeError, ReadOptions, Recipients, RenderContext, Row, Template};
use serde_json::{Value, json};

use super::workspace::{Settings, plain_name};
use crate::send::engine::Loader;

/// A message larger than this is flagged when the server's own SIZE is not known: the common
/// limit of hosted mail (10 MB at many providers; more at some).
pub(crate) const DEFAULT_SIZE_LIMIT: u64 = 10 * 1024 * 1024;

/// At most this many rows are listed in the page's table (rows with problems always are).
const LISTED_ROWS: usize = 1000;

/// Reads an uploaded CSV as `buzon send` does (delimiter, encoding and columns detected).
pub(crate) fn read_csv(bytes: &[u8]) -> Result<Recipients, String> {
    mailmerge::read_recipients(bytes, &ReadOptions::default()).map_err(|e| e.to_string())
}

/// One line of the table: a usable row, or one the CSV reader skipped.
pub(crate) struct Entry<'a> {
    /// 1-based, as the user counts rows.
    pub n: usize,
    pub line: u64,
    pub email: String,
    pub name: Option<String>,
    pub fields: BTreeMap<String, String>,
    pub problems: Vec<String>,
    /// The row to render; `None` for a skipped one.
    pub row: Option<&'a Row>,
}

/// Every row in file order, with the problems found without the message: unusable rows and
/// repeated addresses (sent once: the later rows are skipped).
pub(crate) fn entries(r: &Recipients) -> Vec<Entry<'_>> {
    let mut all: Vec<Entry> = Vec::with_capacity(r.rows.len() + r.skipped.len());
    for row in &r.rows {
        all.push(Entry {
            n: 0,
            line: row.line,
            email: row.email.clone(),
            name: row.name.clone(),
            fields: row.fields.clone(),
            problems: Vec::new(),
            row: Some(row),
        });
    }
    for bad in &r.skipped {
        let fields = r
            .columns
            .iter()
            .zip(&bad.fields)
            .filter(|(c, _)| !c.is_empty())
            .map(|(c, v)| (c.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>();
        let email = r
            .email_column
            .as_ref()
            .and_then(|c| fields.get(c).cloned())
            .or_else(|| bad.fields.first().cloned())
            .unwrap_or_default();
        all.push(Entry {
            n: 0,
            line: bad.line,
            email,
            name: None,
            fields,
            problems: vec![bad.reason.clone()],
            row: None,
        });
    }
    // Stable: the addresses of one headerless line keep their order.
    all.sort_by_key(|e| e.line);
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    for (i, e) in all.iter_mut().enumerate() {
        e.n = i + 1;
        if e.row.is_none() {
            continue;
        }
        match first_seen.get(&e.email.to_lowercase()) {
            Some(&first) => e.problems.push(duplicate_problem(first)),
            None => {
                first_seen.insert(e.email.to_lowercase(), e.n);
            }
        }
    }
    all
}

fn duplicate_problem(first: usize) -> String {
    format!("the same address as row {first}: it is sent once, so this row is skipped")
}

/// Whether an entry's problem is the duplicate one (those rows are skipped when sending).
pub(crate) fn duplicate_of(e: &Entry) -> Option<String> {
    e.problems
        .iter()
        .find(|p| p.starts_with("the same address as row"))
        .cloned()
}

/// The `recipients` object of the page's state.
pub(crate) fn recipients_json(
    file: &str,
    r: &Recipients,
    extra: &BTreeMap<usize, Vec<String>>,
) -> Value {
    let all = entries(r);
    let rows: Vec<Value> = all
        .iter()
        .filter(|e| e.n <= LISTED_ROWS || !e.problems.is_empty() || extra.contains_key(&e.n))
        .map(|e| {
            let mut problems = e.problems.clone();
            if let Some(more) = extra.get(&e.n) {
                problems.extend(more.iter().cloned());
            }
            json!({
                "n": e.n, "line": e.line, "email": e.email, "name": e.name,
                "fields": e.fields, "problems": problems,
            })
        })
        .collect();
    let delimiter = match r.delimiter {
        b'\t' => "tab".to_owned(),
        d => char::from(d).to_string(),
    };
    json!({
        "file": file,
        "columns": r.columns,
        "email_column": r.email_column,
        "name_column": r.name_column.clone().or_else(|| (!r.name_parts.is_empty()).then(|| r.name_parts.join(" + "))),
        "encoding": r.encoding,
        "delimiter": delimiter,
        "total": all.len(),
        "rows": rows,
        "warnings": r.warnings,
    })
}

/// The message of the page as a template, checked against the CSV's columns; the error is a
/// sentence for the page.
pub(crate) fn template(settings: &Settings, r: Option<&Recipients>) -> Result<Template, String> {
    if settings.message.from.trim().is_empty() {
        return Err(in_page_words(&MergeError::NoFrom));
    }
    let t =
        Template::parse(&settings.template_text(), settings.html_text()).map_err(|e| match e {
            MergeError::TemplateSyntax { reason, .. } => format!("the message's fields: {reason}"),
            e => in_page_words(&e),
        })?;
    if let Some(r) = r {
        t.check_columns(&r.columns).map_err(|e| in_page_words(&e))?;
    }
    Ok(t)
}

/// A merge error as the page says it: the page has fields, not template lines.
fn in_page_words(e: &MergeError) -> String {
    match e {
        MergeError::NoFrom => {
            "the From field is empty: give your address, e.g. Ana <ana@example.com>".into()
        }
        MergeError::MissingColumn { name, available } => format!(
            "{{{{ {name} }}}} is not a column of the CSV, so no row has a value for it; the columns are {}",
            available.join(", ")
        ),
        e => e.to_string(),
    }
}

/// Reads attachments from the uploaded files only; names come from the page and CSV cells.
pub(crate) fn attachment_loader(dir: PathBuf) -> Loader {
    Box::new(move |name: &str| {
        let missing = || {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no uploaded attachment has this name: upload it in Message, or fix the name",
            )
        };
        let name = plain_name(name.trim()).map_err(|_| missing())?;
        std::fs::read(dir.join(name)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                missing()
            } else {
                e
            }
        })
    })
}

/// What the lint found.
pub(crate) struct Check {
    pub template_error: Option<String>,
    /// `(n, line, email, problem)`.
    pub problems: Vec<(usize, u64, String, String)>,
    pub rows_ok: usize,
    pub size_limit: u64,
}

impl Check {
    pub(crate) fn to_json(&self) -> Value {
        let problems: Vec<Value> = self
            .problems
            .iter()
            .map(|(n, line, email, problem)| {
                json!({"n": n, "line": line, "email": email, "problem": problem})
            })
            .collect();
        json!({
            "ok": self.template_error.is_none() && self.problems.is_empty(),
            "template_error": self.template_error,
            "problems": problems,
            "rows_ok": self.rows_ok,
            "size_limit": self.size_limit,
        })
    }
}

/// Lints every row: what the CSV reader found, then each row rendered against the message.
pub(crate) fn check(
    settings: &Settings,
    r: &Recipients,
    attachments: &Path,
    size_limit: u64,
) -> Check {
    let all = entries(r);
    let template = match template(settings, Some(r)) {
        Ok(t) => t,
        Err(e) => {
            return Check {
                template_error: Some(e),
                problems: Vec::new(),
                rows_ok: 0,
                size_limit,
            };
        }
    };
    let source = format!(
        "{}\n{}",
        settings.template_text(),
        settings.html_text().unwrap_or_default()
    );
    let sizes: HashMap<String, u64> = std::fs::read_dir(attachments)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.metadata().ok()?.len())))
        .collect();
    let mut problems = Vec::new();
    let mut rows_ok = 0;
    for e in &all {
        let mut found = e.problems.clone();
        if let Some(row) = e.row {
            found.extend(empty_fields(&template, &source, row));
            if let Err(p) = render_size(&template, row, &sizes, size_limit) {
                found.push(p);
            }
        }
        if found.is_empty() {
            rows_ok += 1;
        }
        for p in found {
            problems.push((e.n, e.line, e.email.clone(), p));
        }
    }
    Check {
        template_error: None,
        problems,
        rows_ok,
        size_limit,
    }
}

/// The fields the message uses that are empty in this row, unless the message gives them a
/// fallback (`{{ x or "friend" }}`, `{% if x %}`, `| default`).
fn empty_fields(template: &Template, source: &str, row: &Row) -> Vec<String> {
    let compact: String = source.split_whitespace().collect::<Vec<_>>().join(" ");
    let has_fallback = |v: &str| {
        [
            format!("{v} or "),
            format!("{v} | default("),
            format!("{v}|default("),
            format!("if {v} "),
            format!("if not {v} "),
        ]
        .iter()
        .any(|p| compact.contains(p.as_str()))
    };
    let mut out = Vec::new();
    for v in template.variables() {
        let value = match v.as_str() {
            "row" | "email" => continue,
            "name" => row.name.clone().unwrap_or_default(),
            _ => row
                .fields
                .iter()
                .find(|(c, _)| **c == v || mailmerge::variable_name(c) == v)
                .map(|(_, value)| value.clone())
                .unwrap_or_default(),
        };
        if value.trim().is_empty() && !has_fallback(&v) {
            out.push(format!(
                "{{{{ {v} }}}} is empty in this row: fill it in the CSV, or write {{{{ {v} or \"...\" }}}} in the message for a fallback"
            ));
        }
    }
    out
}

/// Renders a row with the attachments' sizes only (so a lint of many rows reads no file), and
/// checks the estimated size; the error is the row's problem.
fn render_size(
    template: &Template,
    row: &Row,
    sizes: &HashMap<String, u64>,
    limit: u64,
) -> Result<(), String> {
    let attached = RefCell::new(0u64);
    let load = |name: &str| -> std::io::Result<Vec<u8>> {
        let size = plain_name(name.trim()).ok().and_then(|n| sizes.get(n));
        match size {
            Some(size) => {
                *attached.borrow_mut() += size;
                Ok(Vec::new())
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no uploaded attachment has this name: upload it in Message, or fix the name",
            )),
        }
    };
    let ctx = RenderContext {
        from: None,
        date: 0,
        message_id: "<lint@buzon.invalid>".into(),
    };
    let rendered = template
        .render(row, &ctx, &load)
        .map_err(|e| in_page_words(&e))?;
    // Base64 is 4 bytes per 3, in lines of 76 plus CRLF.
    let attached = *attached.borrow();
    let size = rendered.message.len() as u64 + attached.div_ceil(3) * 4 * 78 / 76;
    if size > limit {
        return Err(format!(
            "the message is about {:.1} MB, more than the {:.1} MB the server takes: attach less, or link to the file instead",
            size as f64 / 1e6,
            limit as f64 / 1e6
        ));
    }
    Ok(())
}

/// Row `n` rendered as its recipient will see it (the `preview` answer), or why it cannot be.
pub(crate) fn preview(
    settings: &Settings,
    r: &Recipients,
    n: usize,
    load: &Loader,
    id_domain: &str,
) -> Result<Value, String> {
    let all = entries(r);
    let e = all
        .iter()
        .find(|e| e.n == n)
        .ok_or_else(|| format!("there is no row {n}: the CSV has {} rows", all.len()))?;
    let Some(row) = e.row else {
        return Err(format!("row {n} cannot be sent: {}", e.problems.join("; ")));
    };
    let template = template(settings, Some(r))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let ctx = RenderContext {
        from: None,
        date: now,
        message_id: format!("<preview.{n}.{now}@{id_domain}>"),
    };
    let rendered = template
        .render(row, &ctx, &**load)
        .map_err(|e| in_page_words(&e))?;
    let parsed = mail_parser::MessageParser::default()
        .parse(&rendered.message)
        .ok_or("the rendered message does not parse")?;
    let addresses = |a: Option<&mail_parser::Address>| -> String {
        a.map(|a| {
            a.iter()
                .map(|m| match (m.name(), m.address()) {
                    (Some(name), Some(addr)) => format!("{name} <{addr}>"),
                    (None, Some(addr)) => addr.to_owned(),
                    (Some(name), None) => name.to_owned(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    let attachments: Vec<Value> = parsed
        .attachments()
        .map(|a| {
            let kind = a
                .content_type()
                .map(|c| match c.subtype() {
                    Some(sub) => format!("{}/{sub}", c.ctype()),
                    None => c.ctype().to_owned(),
                })
                .unwrap_or_default();
            json!({"name": a.attachment_name().unwrap_or(""), "type": kind, "size": a.contents().len()})
        })
        .collect();
    let date = parsed
        .header_raw("Date")
        .map(|d| d.trim().to_owned())
        .unwrap_or_default();
    Ok(json!({
        "n": n,
        "line": e.line,
        "envelope": {"from": rendered.from, "to": rendered.recipients},
        "headers": {
            "from": addresses(parsed.from()),
            "to": addresses(parsed.to()),
            "cc": addresses(parsed.cc()),
            "subject": parsed.subject().unwrap_or(""),
            "date": date,
        },
        "text": parsed.body_text(0).map(|t| t.into_owned()),
        "html": if settings.html_text().is_some() { parsed.body_html(0).map(|t| t.into_owned()) } else { None },
        "attachments": attachments,
        "size": rendered.message.len(),
        "raw": String::from_utf8_lossy(&rendered.message),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(subject: &str, text: &str) -> Settings {
        let mut s = Settings::default();
        s.message.from = "Shop <shop@example.com>".into();
        s.message.subject = subject.into();
        s.message.text = text.into();
        s
    }

    #[test]
    fn rows_are_listed_in_file_order_with_their_problems() {
        let r =
            read_csv(b"email,name\na@x.org,A\nnot an address,B\nA@X.org,C\nc@x.org,\n").unwrap();
        let all = entries(&r);
        let got: Vec<_> = all
            .iter()
            .map(|e| (e.n, e.line, e.email.as_str(), e.problems.len()))
            .collect();
        assert_eq!(
            got,
            [
                (1, 2, "a@x.org", 0),
                (2, 3, "not an address", 1),
                (3, 4, "A@X.org", 1),
                (4, 5, "c@x.org", 0)
            ]
        );
        assert_eq!(all[2].problems, [duplicate_problem(1)]);
        assert!(
            all[1].problems[0].contains("is not an email address"),
            "{:?}",
            all[1].problems
        );
    }

    #[test]
    fn the_check_names_each_rows_problem() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.bin"), vec![0u8; 3000]).unwrap();
        let r = read_csv(b"email,name,plan,file\na@x.org,Ana,gold,big.bin\nb@x.org,,,missing.pdf\nc@x.org,Cy,,\n").unwrap();
        let mut s = settings("Hi {{ name }}", "Plan: {{ plan or \"basic\" }}\n");
        s.message.attach_column = "file".into();
        let c = check(&s, &r, dir.path(), 3500);
        assert_eq!(c.template_error, None);
        let got: Vec<_> = c
            .problems
            .iter()
            .map(|(n, _, _, p)| (*n, p.as_str()))
            .collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].0, 1);
        assert!(
            got[0].1.starts_with("the message is about 0.0 MB"),
            "{got:?}"
        );
        assert_eq!(
            got[1],
            (
                2,
                "{{ name }} is empty in this row: fill it in the CSV, or write {{ name or \"...\" }} in the message for a fallback"
            )
        );
        assert_eq!(got[2].0, 2);
        assert!(
            got[2]
                .1
                .contains("\"missing.pdf\": no uploaded attachment has this name"),
            "{got:?}"
        );
        // Row 3's empty file column attaches nothing, and its empty plan has a fallback.
        assert_eq!(c.rows_ok, 1);
    }

    #[test]
    fn an_unknown_field_is_the_messages_problem_not_each_rows() {
        let r = read_csv(b"email,name\na@x.org,Ana\n").unwrap();
        let c = check(
            &settings("Hi {{ nmae }}", "x\n"),
            &r,
            Path::new("/nonexistent"),
            1 << 20,
        );
        assert_eq!(
            c.template_error.as_deref(),
            Some(
                "{{ nmae }} is not a column of the CSV, so no row has a value for it; the columns are email, name"
            )
        );
        let mut s = settings("Hi", "x\n");
        s.message.from.clear();
        let c = check(&s, &r, Path::new("/nonexistent"), 1 << 20);
        assert!(c.problems.is_empty());
        assert!(
            c.template_error
                .unwrap()
                .starts_with("the From field is empty")
        );
    }

    #[test]
    fn a_fallback_fills_an_empty_field() {
        let r = read_csv(b"email,plan\na@x.org,\n").unwrap();
        let load: Loader = Box::new(|_| unreachable!());
        let p = preview(
            &settings("{{ plan or \"basic\" }}", "Plan: {{ plan or \"basic\" }}\n"),
            &r,
            1,
            &load,
            "x.example",
        )
        .unwrap();
        assert_eq!(p["headers"]["subject"], "basic");
        assert_eq!(p["text"], "Plan: basic\r\n");
        assert_eq!(p["headers"]["to"], "a@x.org");
        assert_eq!(p["envelope"]["to"], json!(["a@x.org"]));
    }
}
