//! Which column holds what: the address and name columns that address-book
//! and spreadsheet exports use, and the variable names templates get.
//!
//! Header names are compared by their *key*: lower case, letters and digits
//! only, so `E-mail Address`, `e_mail address` and `EMAILADDRESS` are one
//! name. The lists below are the headers of real exports:
//!
//! | export | address | name |
//! |---|---|---|
//! | Outlook | `E-mail Address` | `First Name`, `Middle Name`, `Last Name` |
//! | Google Contacts | `E-mail 1 - Value` | `Name`, or `First Name` ... `Last Name` |
//! | Thunderbird | `Primary Email` | `Display Name`, `First Name`, `Last Name` |
//! | Apple Contacts (via exporters) | `Email`, `E-mail Address` | `First name`, `Last name` |

/// Keys of address columns, best first. `address` comes last: a file with
/// both an `email` and an `address` column most likely means a postal
/// address by the latter.
const EMAIL_KEYS: &[&str] = &[
    "email",
    "emailaddress",
    "primaryemail",
    "email1value",
    "email1",
    "emailaddress1",
    "mail",
    "mailaddress",
    "emailadresse",
    "adresseemail",
    "correo",
    "correoelectrónico",
    "correoelectronico",
    "courriel",
    "address",
];

/// Keys of columns holding the whole name, best first.
const NAME_KEYS: &[&str] = &["name", "displayname", "fullname", "contactname", "nombre"];
const FIRST_KEYS: &[&str] = &["firstname", "givenname", "first"];
const MIDDLE_KEYS: &[&str] = &["middlename", "additionalname", "middle"];
const LAST_KEYS: &[&str] = &["lastname", "familyname", "surname", "last"];

/// A header's key: lower case, letters and digits only.
///
/// ```text
/// "E-mail 1 - Value" -> "email1value"
/// ```
fn key(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Where the address and the name of a row come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Roles {
    pub(crate) email: usize,
    /// A column holding the whole name.
    pub(crate) name: Option<usize>,
    /// First, middle and last name columns, joined when `name` is absent or
    /// empty in a row.
    pub(crate) name_parts: Vec<usize>,
}

/// Finds the column a user named on the command line: by its exact header
/// (ignoring case and surrounding spaces), else by key.
pub(crate) fn named(headers: &[String], wanted: &str) -> Option<usize> {
    let wanted = wanted.trim();
    headers
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case(wanted))
        .or_else(|| {
            let k = key(wanted);
            headers.iter().position(|h| !k.is_empty() && key(h) == k)
        })
}

/// Finds the address column among `headers`, by the export names above,
/// else the first column whose name speaks of e-mail but not of its type,
/// label or display name (`Work Email`, `E-mail 2 Address`).
pub(crate) fn email_column(headers: &[String]) -> Option<usize> {
    let keys: Vec<String> = headers.iter().map(|h| key(h)).collect();
    first_of(&keys, EMAIL_KEYS).or_else(|| {
        keys.iter().position(|k| {
            k.contains("mail")
                && !["type", "label", "display", "name"]
                    .iter()
                    .any(|w| k.contains(w))
        })
    })
}

/// Finds the name columns among `headers`, leaving out `email`.
pub(crate) fn name_columns(headers: &[String], email: usize) -> (Option<usize>, Vec<usize>) {
    let keys: Vec<String> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| if i == email { String::new() } else { key(h) })
        .collect();
    let parts = [FIRST_KEYS, MIDDLE_KEYS, LAST_KEYS]
        .iter()
        .filter_map(|list| first_of(&keys, list))
        .collect();
    (first_of(&keys, NAME_KEYS), parts)
}

fn first_of(keys: &[String], wanted: &[&str]) -> Option<usize> {
    wanted.iter().find_map(|w| keys.iter().position(|k| k == w))
}

/// The variable name a template can use for a column whose header is not
/// one already: lower case, each run of other characters as `_`, with a `_`
/// in front of a leading digit.
///
/// ```
/// use mailmerge::variable_name;
/// assert_eq!(variable_name("E-mail Address"), "e_mail_address");
/// assert_eq!(variable_name("First Name"), "first_name");
/// assert_eq!(variable_name("Código Postal"), "código_postal");
/// assert_eq!(variable_name("2nd line"), "_2nd_line");
/// ```
pub fn variable_name(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    let mut gap = false;
    for c in header.trim().chars() {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.extend(c.to_lowercase());
        } else {
            gap = true;
        }
    }
    if out.starts_with(|c: char| c.is_numeric()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(line: &str) -> Vec<String> {
        line.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn export_headers_are_recognised() {
        let outlook = headers(
            "First Name,Middle Name,Last Name,Title,Company,E-mail Address,E-mail Type,E-mail Display Name,E-mail 2 Address",
        );
        assert_eq!(email_column(&outlook), Some(5));
        assert_eq!(name_columns(&outlook, 5), (None, vec![0, 1, 2]));

        let google =
            headers("Name,Given Name,Additional Name,Family Name,E-mail 1 - Type,E-mail 1 - Value");
        assert_eq!(email_column(&google), Some(5));
        assert_eq!(name_columns(&google, 5), (Some(0), vec![1, 2, 3]));

        let thunderbird =
            headers("First Name,Last Name,Display Name,Nickname,Primary Email,Secondary Email");
        assert_eq!(email_column(&thunderbird), Some(4));
        assert_eq!(name_columns(&thunderbird, 4), (Some(2), vec![0, 1]));

        assert_eq!(email_column(&headers("Nombre,Correo electrónico")), Some(1));
        assert_eq!(email_column(&headers("id,Work Email,Email Type")), Some(1));
        assert_eq!(email_column(&headers("address,E-Mail")), Some(1));
        assert_eq!(email_column(&headers("ADDRESS")), Some(0));
        assert_eq!(email_column(&headers("E-mail Display Name,phone")), None);
        assert_eq!(email_column(&headers("id,phone")), None);
    }

    #[test]
    fn a_named_column_matches_by_header_or_key() {
        let h = headers("Id, E-mail Address ,Naam");
        assert_eq!(named(&h, "e-mail address"), Some(1));
        assert_eq!(named(&h, "EmailAddress"), Some(1));
        assert_eq!(named(&h, "Naam"), Some(2));
        assert_eq!(named(&h, "mail"), None);
    }

    #[test]
    fn variable_names() {
        assert_eq!(variable_name("E-mail Address"), "e_mail_address");
        assert_eq!(variable_name(" First Name "), "first_name");
        assert_eq!(variable_name("E-mail 1 - Value"), "e_mail_1_value");
        assert_eq!(variable_name("Código Postal"), "código_postal");
        assert_eq!(variable_name("2nd line"), "_2nd_line");
        assert_eq!(variable_name("--"), "");
    }
}
