//! Message templates: header lines, a blank line, a body, all minijinja.
//!
//! The header section is split into fields *before* anything is rendered,
//! and every field value is rendered on its own with CR and LF turned into
//! spaces afterwards. So a CSV value can change what a header says, but
//! never which headers exist (RFC 5322 section 2.2: a field ends at CRLF).

use crate::MergeError;
use crate::address::{DATA_END, DATA_START, one_line, parse_address_list, without_markers};
use crate::columns::variable_name;
use crate::message::{Attachment, Draft, build};
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, Output, State, UndefinedBehavior, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io;

/// minijinja name of the plain-text body template.
const TEXT_BODY: &str = "body";
/// minijinja name of the HTML body template; the only one auto-escaped.
const HTML_BODY: &str = "html body";
/// Start of the minijinja names of header templates.
const HEADER: &str = "header ";
/// Start of the minijinja names of address header templates, whose values
/// are marked as data (see [`DATA_START`]).
const ADDRESS_HEADER: &str = "address header ";

/// Variables every row defines, whatever its columns: the checked address,
/// the name, and `row`, every column by its exact header.
const ALWAYS_DEFINED: [&str; 3] = ["email", "name", "row"];

/// Headers the merge writes itself; a template that sets them would produce
/// duplicates or a body that does not match its `Content-Type`.
fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(lower.as_str(), "date" | "message-id" | "mime-version")
        || lower.starts_with("content-")
}

/// What a template header is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    From,
    To,
    Cc,
    Bcc,
    ReplyTo,
    Sender,
    Subject,
    /// `Attach:` pseudo-header: a file to attach, never written out.
    Attach,
    Other,
}

impl Kind {
    fn of(name: &str) -> Kind {
        match name.to_ascii_lowercase().as_str() {
            "from" => Kind::From,
            "to" => Kind::To,
            "cc" => Kind::Cc,
            "bcc" => Kind::Bcc,
            "reply-to" => Kind::ReplyTo,
            "sender" => Kind::Sender,
            "subject" => Kind::Subject,
            "attach" => Kind::Attach,
            _ => Kind::Other,
        }
    }

    /// RFC 5322 section 3.6 allows each of these at most once.
    fn is_single(self) -> bool {
        !matches!(self, Kind::Attach | Kind::Other)
    }

    /// Whether the value is an address list, where substituted values are
    /// data rather than syntax.
    fn holds_addresses(self) -> bool {
        matches!(
            self,
            Kind::From | Kind::To | Kind::Cc | Kind::Bcc | Kind::ReplyTo | Kind::Sender
        )
    }
}

#[derive(Debug, Clone)]
struct HeaderTemplate {
    /// The name as written in the template.
    name: String,
    kind: Kind,
    /// The minijinja template name of the value.
    key: String,
}

/// A parsed message template.
///
/// The text is a message: header lines (`Name: value`, folded continuation
/// lines allowed), a blank line, then the body. `{{ email }}`, `{{ name }}`
/// and every CSV column work in header values and in the body. Besides the
/// usual headers, `Attach: file` (repeatable) names an attachment to load.
///
/// Header values are data: every run of whitespace or control characters
/// in a rendered value is one space, so no value can start a header. In
/// address headers (`From`, `To`, `Cc`, `Bcc`, `Reply-To`, `Sender`) a
/// value before `<...>` is display-name text however many commas, colons or
/// quotes it holds, a value inside `<...>` is part of the address, and a
/// value standing alone is exactly one mailbox; `{{ value | raw }}` is
/// parsed as written instead, for a column that holds a list of addresses.
///
/// Besides `email` and `name`, every column is a variable by its header
/// where that is a plain name, by a normalised name (`E-mail Address` is
/// `e_mail_address`) and through `row["E-mail Address"]`.
///
/// Undefined variables are errors, not empty strings, and
/// [`check_columns`](Self::check_columns) finds them before anything is sent.
/// `name` is always defined: it is empty when the row has none. Block tags
/// on lines of their own leave no empty lines (`trim_blocks`,
/// `lstrip_blocks`), and the body's final newline is kept.
///
/// ```
/// use mailmerge::{read_recipients, ReadOptions, RenderContext, Template};
///
/// let template = Template::parse(
///     "From: Shop <shop@example.com>\nSubject: Hola {{ name }}\n\nYour plan: {{ plan }}\n",
///     None,
/// )?;
/// let recipients = read_recipients(b"email,name,plan\nana@example.org,Ana,gold\n", &ReadOptions::default())?;
/// template.check_columns(&recipients.columns)?;
///
/// let ctx = RenderContext {
///     from: None,
///     date: 1_700_000_000,
///     message_id: "<1.merge@example.com>".into(),
/// };
/// let no_files = |name: &str| -> std::io::Result<Vec<u8>> {
///     Err(std::io::Error::new(std::io::ErrorKind::NotFound, name.to_owned()))
/// };
/// let out = template.render(&recipients.rows[0], &ctx, &no_files)?;
/// assert_eq!(out.from, "shop@example.com");
/// assert_eq!(out.recipients, ["ana@example.org"]);
/// let text = String::from_utf8(out.message).unwrap();
/// assert!(text.contains("Subject: Hola Ana\r\n"));
/// assert!(text.contains("Your plan: gold\r\n"));
/// # Ok::<(), mailmerge::MergeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Template {
    env: Environment<'static>,
    headers: Vec<HeaderTemplate>,
    has_html: bool,
    variables: BTreeSet<String>,
}

/// What [`Template::render`] needs besides the row: everything that would
/// otherwise come from a clock, a random source or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    /// Sender (`"Name <a@b>"` or `"a@b"`). When set it replaces the
    /// template's `From`; when the template has none it is required.
    pub from: Option<String>,
    /// Unix seconds for the `Date` header.
    pub date: i64,
    /// The `Message-ID`, with or without angle brackets
    /// (`<id@domain>`). The caller makes it unique per message.
    pub message_id: String,
}

/// One rendered message with its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Envelope sender: the `From` address.
    pub from: String,
    /// Envelope recipients: `To`, `Cc` and `Bcc` addresses in that order,
    /// without repeats (compared ignoring ASCII case, first spelling kept).
    pub recipients: Vec<String>,
    /// The `To` header's display names and addresses.
    pub to: Vec<(Option<String>, String)>,
    /// The whole RFC 5322 message, CRLF line endings, without `Bcc`.
    pub message: Vec<u8>,
}

impl Template {
    /// Parses a template, and optionally an HTML alternative body template
    /// (a body only: headers come from `text`).
    ///
    /// Fails on a malformed header section ([`MergeError::TemplateSyntax`]),
    /// a header the merge writes itself ([`MergeError::ReservedHeader`]) or a
    /// minijinja syntax error ([`MergeError::Template`]).
    pub fn parse(text: &str, html: Option<&str>) -> Result<Template, MergeError> {
        let (fields, body) = split_header_section(text)?;

        let mut env = Environment::new();
        // A misspelt variable must fail, not send "Dear ," to everyone.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name == HTML_BODY {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(format_value);
        // Spelt out for templates that build an address list from one value
        // (`Cc: {{ team | raw }}`): the value is then parsed as written.
        env.add_filter("raw", |value: Value| {
            Value::from_safe_string(value.to_string())
        });
        env.set_syntax(
            SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("the default delimiters are a valid syntax"),
        );

        let mut headers = Vec::with_capacity(fields.len());
        let mut seen = BTreeSet::new();
        for (i, (line, name, value)) in fields.into_iter().enumerate() {
            if is_reserved(&name) {
                return Err(MergeError::ReservedHeader { line, name });
            }
            let kind = Kind::of(&name);
            if kind.is_single() && !seen.insert(name.to_ascii_lowercase()) {
                return Err(MergeError::TemplateSyntax {
                    line,
                    reason: format!("{name} may appear only once"),
                });
            }
            let prefix = if kind.holds_addresses() {
                ADDRESS_HEADER
            } else {
                HEADER
            };
            let key = format!("{prefix}{i} {name}");
            // Control characters of the template's own header text become
            // spaces, as values' do; so only the formatter writes markers.
            let value: String = value
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            add(&mut env, &key, value, &format!("header {name}"))?;
            headers.push(HeaderTemplate { name, kind, key });
        }
        add(&mut env, TEXT_BODY, body.to_owned(), TEXT_BODY)?;
        if let Some(html) = html {
            add(&mut env, HTML_BODY, html.to_owned(), HTML_BODY)?;
        }

        let globals: BTreeSet<String> = env.globals().map(|(name, _)| name.to_owned()).collect();
        let mut variables = BTreeSet::new();
        for (_, template) in env.templates() {
            variables.extend(template.undeclared_variables(false));
        }
        variables.retain(|v| !globals.contains(v));

        Ok(Template {
            env,
            headers,
            has_html: html.is_some(),
            variables,
        })
    }

    /// Every variable the template (headers, body, HTML body) reads from the
    /// row.
    ///
    /// ```
    /// let t = mailmerge::Template::parse("Subject: {{ a }}\n\n{{ b }}{% for x in c %}{{ x }}{% endfor %}", Some("{{ d }}"))?;
    /// assert_eq!(t.variables().into_iter().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    /// # Ok::<(), mailmerge::MergeError>(())
    /// ```
    pub fn variables(&self) -> BTreeSet<String> {
        self.variables.clone()
    }

    /// Checks, before anything is sent, that every variable the template uses
    /// is a column of the recipients file (or `email`/`name`, which every row
    /// defines).
    ///
    /// ```
    /// use mailmerge::{MergeError, Template};
    /// let t = Template::parse("Subject: {{ plan }}\n\nHi {{ name }}\n", None)?;
    /// assert!(t.check_columns(&["email".into(), "plan".into()]).is_ok());
    /// let err = t.check_columns(&["email".into()]).unwrap_err();
    /// assert!(matches!(err, MergeError::MissingColumn { ref name, .. } if name == "plan"));
    /// # Ok::<(), MergeError>(())
    /// ```
    pub fn check_columns(&self, columns: &[String]) -> Result<(), MergeError> {
        let known = |v: &str| {
            ALWAYS_DEFINED.contains(&v) || columns.iter().any(|c| c == v || variable_name(c) == v)
        };
        match self.variables.iter().find(|v| !known(v)) {
            None => Ok(()),
            Some(name) => Err(MergeError::MissingColumn {
                name: name.clone(),
                available: columns.to_vec(),
            }),
        }
    }

    /// Renders the message for one row.
    ///
    /// `load` reads the file an `Attach:` header names (as rendered); it is
    /// the only way this crate touches files. Names come from the template
    /// and so may come from CSV cells: the loader decides which paths it
    /// allows. Only the last path component is shown to recipients.
    ///
    /// Address headers (`From`, `To`, `Cc`, `Bcc`, `Reply-To`, `Sender`)
    /// are parsed after rendering by a strict RFC 5322 address-list parser;
    /// anything ambiguous is a [`MergeError::BadAddress`] rather than a
    /// guess. Without a `To` header, `To` is the row's name and address.
    /// Headers that render empty are left out, except `To`, which is then
    /// an error.
    ///
    /// ```
    /// use mailmerge::{read_recipients, ReadOptions, RenderContext, Template};
    ///
    /// let t = Template::parse("From: shop@example.com\nTo: {{ name }} <{{ email }}>\n\nHi\n", None)?;
    /// let csv = "email,name\nj@example.org,\"Smith, John\"\n";
    /// let row = &read_recipients(csv.as_bytes(), &ReadOptions::default())?.rows[0];
    /// let ctx = RenderContext { from: None, date: 0, message_id: "<1@example.com>".into() };
    /// let out = t.render(row, &ctx, &|_| unreachable!())?;
    /// // One recipient, whose name keeps its comma.
    /// assert_eq!(out.recipients, ["j@example.org"]);
    /// let text = String::from_utf8(out.message).unwrap();
    /// assert!(text.contains("To: \"Smith, John\" <j@example.org>\r\n"));
    /// # Ok::<(), mailmerge::MergeError>(())
    /// ```
    pub fn render(
        &self,
        row: &crate::Row,
        ctx: &RenderContext,
        load: &dyn Fn(&str) -> io::Result<Vec<u8>>,
    ) -> Result<Rendered, MergeError> {
        let vars = row_context(row);

        let mut from = None;
        let mut to = None;
        let mut cc = Vec::new();
        let mut bcc = Vec::new();
        let mut reply_to = Vec::new();
        let mut sender = None;
        let mut subject = None;
        let mut attach = Vec::new();
        let mut others = Vec::new();

        for header in &self.headers {
            let value = one_line(&self.render_part(&header.key, &header.name, &vars)?);
            let addresses = |value: &str| parse_address_list(&header.name, value);
            // An empty optional header (a blank CSV cell in `Cc: {{ cc }}`)
            // is left out rather than written empty.
            if without_markers(&value).trim().is_empty() && header.kind != Kind::To {
                continue;
            }
            match header.kind {
                Kind::From => from = Some(value),
                Kind::To => to = Some(addresses(&value)?),
                Kind::Cc => cc = addresses(&value)?,
                Kind::Bcc => bcc = addresses(&value)?,
                Kind::ReplyTo => reply_to = addresses(&value)?,
                Kind::Sender => sender = Some(single("Sender", &value)?),
                Kind::Subject => subject = Some(value),
                Kind::Attach => attach.push(value),
                Kind::Other => others.push((header.name.clone(), value)),
            }
        }

        let from = match ctx.from.as_deref().map(one_line).filter(|f| !f.is_empty()) {
            Some(given) => single("From", &given)?,
            None => single("From", &from.ok_or(MergeError::NoFrom)?)?,
        };
        let to = to.unwrap_or_else(|| {
            let name = row.name.as_deref().map(one_line).filter(|n| !n.is_empty());
            vec![(name, row.email.clone())]
        });

        let mut recipients: Vec<String> = Vec::new();
        for (_, addr) in to.iter().chain(&cc).chain(&bcc) {
            if !recipients.iter().any(|r| r.eq_ignore_ascii_case(addr)) {
                recipients.push(addr.clone());
            }
        }
        if recipients.is_empty() {
            return Err(MergeError::NoRecipients);
        }

        let text = self.render_part(TEXT_BODY, TEXT_BODY, &vars)?;
        let html = if self.has_html {
            Some(self.render_part(HTML_BODY, HTML_BODY, &vars)?)
        } else {
            None
        };
        let attachments = attach
            .into_iter()
            .map(|name| match load(&name) {
                Ok(data) => Ok(Attachment::new(&name, data)),
                Err(source) => Err(MergeError::Attachment { name, source }),
            })
            .collect::<Result<Vec<_>, _>>()?;

        let message = build(Draft {
            from: from.clone(),
            sender,
            reply_to,
            to: to.clone(),
            cc,
            subject,
            others,
            date: ctx.date,
            message_id: message_id(&ctx.message_id)?,
            text,
            html,
            attachments,
        });
        Ok(Rendered {
            from: from.1,
            recipients,
            to,
            message,
        })
    }

    fn render_part(&self, key: &str, part: &str, vars: &Value) -> Result<String, MergeError> {
        let template = self
            .env
            .get_template(key)
            .expect("every part was added to the environment in parse");
        template.render(vars).map_err(|e| MergeError::Template {
            part: part.to_owned(),
            message: e.to_string(),
        })
    }
}

/// How `{{ value }}` is written: in header templates as one line (see
/// [`one_line`]), marked as data in address headers unless it went through
/// `raw`; in bodies as minijinja would (HTML-escaped in the HTML body).
fn format_value(
    out: &mut Output,
    state: &mut State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let name = state.name();
    if !name.starts_with(HEADER) && !name.starts_with(ADDRESS_HEADER) {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = if value.is_none() || value.is_undefined() {
        String::new()
    } else {
        one_line(&without_markers(&value.to_string()))
    };
    let result = if name.starts_with(ADDRESS_HEADER) && !value.is_safe() {
        write!(out, "{DATA_START}{text}{DATA_END}")
    } else {
        out.write_str(&text)
    };
    result.map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
}

fn add(
    env: &mut Environment<'static>,
    key: &str,
    source: String,
    part: &str,
) -> Result<(), MergeError> {
    env.add_template_owned(key.to_owned(), source)
        .map_err(|e| MergeError::Template {
            part: part.to_owned(),
            message: e.to_string(),
        })
}

/// The variables one row offers a template: `row`, a map of every column by
/// its header; each column by its variable name (`E-mail Address` as
/// `e_mail_address`) and by its header where that is a name already; then
/// `email` and `name`, which win over columns spelt the same, as they are
/// the checked and trimmed values.
fn row_context(row: &crate::Row) -> Value {
    let mut vars: BTreeMap<String, Value> = BTreeMap::new();
    vars.insert("row".to_owned(), Value::from(row.fields.clone()));
    for (header, value) in &row.fields {
        let name = variable_name(header);
        if !name.is_empty() {
            vars.insert(name, Value::from(value.clone()));
        }
    }
    for (header, value) in &row.fields {
        vars.insert(header.clone(), Value::from(value.clone()));
    }
    vars.insert("email".to_owned(), Value::from(row.email.clone()));
    vars.insert(
        "name".to_owned(),
        Value::from(row.name.clone().unwrap_or_default()),
    );
    Value::from(vars)
}

/// Parses a header that must name exactly one mailbox (`From`, `Sender`).
fn single(header: &str, value: &str) -> Result<(Option<String>, String), MergeError> {
    let mut list = parse_address_list(header, value)?;
    if list.len() != 1 {
        return Err(MergeError::BadAddress {
            header: header.to_owned(),
            value: value.to_owned(),
            reason: "must name exactly one mailbox".to_owned(),
        });
    }
    Ok(list.remove(0))
}

/// Checks the caller's Message-ID and strips its angle brackets, which the
/// builder adds back (RFC 5322 section 3.6.4: `"<" id-left "@" id-right ">"`).
fn message_id(value: &str) -> Result<String, MergeError> {
    let bad = |reason: &str| MergeError::BadMessageId {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = value.trim();
    let id = trimmed
        .strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .unwrap_or(trimmed);
    if id
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return Err(bad("contains a space, control character or angle bracket"));
    }
    match id.split_once('@') {
        Some((left, right)) if !left.is_empty() && !right.is_empty() => Ok(id.to_owned()),
        _ => Err(bad("expected id-left@id-right")),
    }
}

/// One template header: its line, name and (unfolded) value.
type Field = (usize, String, String);

/// Splits a template into header fields and the body source.
///
/// Continuation lines (starting with a space or tab) are unfolded per
/// RFC 5322 section 2.2.3: the line break goes, the whitespace stays. The
/// first empty (or whitespace-only) line ends the headers; a template with
/// no such line is all headers and an empty body.
fn split_header_section(text: &str) -> Result<(Vec<Field>, &str), MergeError> {
    let mut fields: Vec<Field> = Vec::new();
    let mut offset = 0;
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        offset += raw.len();
        let line = raw.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Ok((fields, &text[offset..]));
        }
        if line.starts_with([' ', '\t']) {
            match fields.last_mut() {
                Some((_, _, value)) => value.push_str(line),
                None => {
                    return Err(MergeError::TemplateSyntax {
                        line: line_no,
                        reason: "continuation line before any header".to_owned(),
                    });
                }
            }
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .filter(|(name, _)| is_field_name(name))
            .ok_or_else(|| MergeError::TemplateSyntax {
                line: line_no,
                reason: format!(
                    "expected a header line (Name: value) or a blank line before the body, found {line:?}"
                ),
            })?;
        fields.push((line_no, name.to_owned(), value.trim_start().to_owned()));
    }
    Ok((fields, ""))
}

/// RFC 5322 section 3.6.8: printable ASCII except the colon.
fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_section_unfolds_and_finds_the_body() {
        let (fields, body) =
            split_header_section("Subject: a\r\n  b\r\nX-Tag:\tc\r\n\r\nbody\n\nmore\n").unwrap();
        assert_eq!(
            fields,
            vec![
                (1, "Subject".to_owned(), "a  b".to_owned()),
                (3, "X-Tag".to_owned(), "c".to_owned()),
            ]
        );
        assert_eq!(body, "body\n\nmore\n");
    }

    #[test]
    fn header_section_may_be_empty_or_the_whole_text() {
        assert_eq!(
            split_header_section("\nonly body").unwrap(),
            (vec![], "only body")
        );
        let (fields, body) = split_header_section("Subject: x").unwrap();
        assert_eq!(fields.len(), 1);
        assert_eq!(body, "");
    }

    #[test]
    fn header_section_errors_name_the_line() {
        let err = split_header_section("Subject: x\nHello {{ name }}\n\nbody").unwrap_err();
        assert!(
            matches!(err, MergeError::TemplateSyntax { line: 2, .. }),
            "{err}"
        );
        let err = split_header_section(" folded first\n\n").unwrap_err();
        assert!(
            matches!(err, MergeError::TemplateSyntax { line: 1, .. }),
            "{err}"
        );
        let err = split_header_section("Bad Name: x\n\n").unwrap_err();
        assert!(
            matches!(err, MergeError::TemplateSyntax { line: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn reserved_and_repeated_headers_are_refused() {
        let err = Template::parse("Subject: a\nContent-Type: text/html\n\n", None).unwrap_err();
        assert!(
            matches!(err, MergeError::ReservedHeader { line: 2, ref name } if name == "Content-Type")
        );
        let err = Template::parse("Message-ID: <x@y>\n\n", None).unwrap_err();
        assert!(matches!(err, MergeError::ReservedHeader { line: 1, .. }));
        let err = Template::parse("To: a@b.c\nto: d@e.f\n\n", None).unwrap_err();
        assert!(
            matches!(err, MergeError::TemplateSyntax { line: 2, .. }),
            "{err}"
        );
        // Attach and unknown headers may repeat.
        Template::parse("Attach: a\nAttach: b\nX-A: 1\nX-A: 2\n\n", None).unwrap();
    }

    #[test]
    fn minijinja_syntax_errors_name_the_part() {
        let err = Template::parse("Subject: {{ name\n\nbody", None).unwrap_err();
        assert!(
            matches!(err, MergeError::Template { ref part, .. } if part == "header Subject"),
            "{err}"
        );
        let err = Template::parse("Subject: x\n\n{% if %}", None).unwrap_err();
        assert!(
            matches!(err, MergeError::Template { ref part, .. } if part == "body"),
            "{err}"
        );
        let err = Template::parse("Subject: x\n\nok", Some("{{ }}")).unwrap_err();
        assert!(
            matches!(err, MergeError::Template { ref part, .. } if part == "html body"),
            "{err}"
        );
    }

    #[test]
    fn variables_leave_out_locals_and_globals() {
        let t = Template::parse(
            "Subject: {{ topic | upper }}\n\n{% set x = 1 %}{% for i in range(3) %}{{ i }}{{ x }}{{ loop.index }}{% endfor %}{{ name }}",
            None,
        )
        .unwrap();
        assert_eq!(
            t.variables(),
            BTreeSet::from(["name".to_owned(), "topic".to_owned()])
        );
    }

    #[test]
    fn message_id_forms() {
        assert_eq!(message_id("<a.b@c>").unwrap(), "a.b@c");
        assert_eq!(message_id("a.b@c").unwrap(), "a.b@c");
        for bad in [
            "",
            "<>",
            "<no-at>",
            "<a b@c>",
            "<a@>",
            "<@c>",
            "<a@c>\r\nBcc: x",
        ] {
            assert!(message_id(bad).is_err(), "{bad:?}");
        }
    }
}
