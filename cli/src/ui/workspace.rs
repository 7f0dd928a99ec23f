//! The campaign folder of `buzon ui`: what the page edits, kept on disk so a restart (or a crash)
//! finds the campaign where it was.
//!
//! ```text
//! DIR/settings.json              server, message and sending settings (never the password)
//! DIR/recipients.csv             the CSV as uploaded; its name in recipients.name
//! DIR/recipients.csv.journal     the resume journal of `buzon send`, same format
//! DIR/recipients.csv.results.csv every outcome, one line each (kept across runs)
//! DIR/run.state                  how the last run ended: running, paused, stopped, done
//! DIR/attachments/               uploaded files
//! DIR/test/                      test mode's own journal and results, wiped per test run
//! DIR/previous/<time>/           an earlier campaign's files, moved there by a new CSV
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Everything the page sets except the password.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    pub server: ServerSettings,
    pub message: MessageSettings,
    pub sending: SendingSettings,
}

/// Which SMTP server, and how to reach it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsSetting,
    pub user: String,
    /// Do not verify the server's certificate.
    pub insecure: bool,
}

/// `buzon send --tls`, with its default spelt out.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TlsSetting {
    /// STARTTLS when offered; required with a user.
    #[default]
    Auto,
    Starttls,
    Implicit,
    None,
}

/// The message, as the page's fields hold it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MessageSettings {
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub html_enabled: bool,
    /// Uploaded files attached to every message.
    pub attach: Vec<String>,
    /// A column naming, per row, an uploaded file to attach ("" for none).
    pub attach_column: String,
}

/// How fast and how often to try.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SendingSettings {
    pub concurrency: usize,
    /// `""`, `N`, `N/s` or `N/m`.
    pub rate: String,
    pub retries: u32,
    pub test_mode: bool,
    /// Where test messages go.
    pub self_address: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: ServerSettings::default(),
            message: MessageSettings {
                subject: "Hello {{ name }}".into(),
                text: "Dear {{ name }},\n\n\n".into(),
                ..Default::default()
            },
            sending: SendingSettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            host: "127.0.0.1".into(),
            port: 2525,
            tls: TlsSetting::Auto,
            user: String::new(),
            insecure: false,
        }
    }
}

impl Default for SendingSettings {
    fn default() -> Self {
        SendingSettings {
            concurrency: 4,
            rate: String::new(),
            retries: 3,
            test_mode: false,
            self_address: String::new(),
        }
    }
}

impl Settings {
    /// Checks what `buzon send` would refuse as flags; the error is for the page, in plain words.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let s = &self.sending;
        if !(1..=64).contains(&s.concurrency) {
            return Err("connections at once must be between 1 and 64".into());
        }
        if s.retries > 20 {
            return Err("retries must be between 0 and 20".into());
        }
        if !s.rate.trim().is_empty() {
            crate::send::parse_rate(s.rate.trim()).map_err(|e| format!("{e:#}"))?;
        }
        if self.server.host.trim().is_empty() {
            return Err("the server's host name is empty".into());
        }
        if self.server.port == 0 {
            return Err("the server's port must be between 1 and 65535".into());
        }
        if self.message.attach.iter().any(|n| plain_name(n).is_err()) {
            return Err("an attachment name is not a plain file name".into());
        }
        Ok(())
    }

    /// The message as a `buzon send` template: headers, a blank line, the body.
    pub(crate) fn template_text(&self) -> String {
        let m = &self.message;
        let one_line = |s: &str| s.replace(['\r', '\n'], " ");
        let mut t = String::new();
        if !m.from.trim().is_empty() {
            t.push_str(&format!("From: {}\n", one_line(&m.from)));
        }
        t.push_str(&format!("Subject: {}\n", one_line(&m.subject)));
        for name in &m.attach {
            t.push_str(&format!("Attach: {}\n", one_line(name)));
        }
        if !m.attach_column.is_empty() {
            let column = m.attach_column.replace('\\', "\\\\").replace('"', "\\\"");
            t.push_str(&format!(
                "Attach: {{{{ row[\"{}\"] }}}}\n",
                one_line(&column)
            ));
        }
        t.push('\n');
        t.push_str(&m.text.replace("\r\n", "\n"));
        t
    }

    /// The HTML body template, when the message has one.
    pub(crate) fn html_text(&self) -> Option<&str> {
        (self.message.html_enabled && !self.message.html.trim().is_empty())
            .then_some(self.message.html.as_str())
    }
}

/// A name that stays inside the attachments folder: no separators, not hidden, not empty.
pub(crate) fn plain_name(name: &str) -> Result<&str, String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 255;
    if ok {
        Ok(name)
    } else {
        Err(format!("{name:?} is not a plain file name"))
    }
}

/// How the last run ended, as `run.state` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LastRun {
    /// Nothing recorded: no run yet.
    None,
    /// A run was going when buzon stopped: it did not end by itself.
    Running,
    Paused,
    Stopped,
    Done,
}

/// The campaign folder.
pub(crate) struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    /// Opens (creating) the folder.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Workspace> {
        fs::create_dir_all(dir.join("attachments"))
            .with_context(|| format!("cannot create the campaign folder {}", dir.display()))?;
        Ok(Workspace {
            dir: dir.to_owned(),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The saved settings, or the defaults.
    pub(crate) fn settings(&self) -> anyhow::Result<Settings> {
        let path = self.dir.join("settings.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{}: not settings buzon can read", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub(crate) fn save_settings(&self, settings: &Settings) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(settings)?;
        write_atomically(&self.dir.join("settings.json"), &json)
    }

    pub(crate) fn csv_path(&self) -> PathBuf {
        self.dir.join("recipients.csv")
    }

    /// The CSV's bytes and the name it was uploaded under, if one was.
    pub(crate) fn csv(&self) -> anyhow::Result<Option<(Vec<u8>, String)>> {
        match fs::read(self.csv_path()) {
            Ok(bytes) => {
                let name = fs::read_to_string(self.dir.join("recipients.name"))
                    .unwrap_or_else(|_| "recipients.csv".into());
                Ok(Some((bytes, name.trim().to_owned())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("cannot read the recipients file"),
        }
    }

    /// Stores a new CSV, moving the earlier campaign's files to `previous/`.
    pub(crate) fn replace_csv(&self, bytes: &[u8], name: &str) -> anyhow::Result<()> {
        self.archive()?;
        write_atomically(&self.csv_path(), bytes)?;
        write_atomically(&self.dir.join("recipients.name"), name.as_bytes())
    }

    /// Moves the journal, results and run state of the campaign so far to `previous/<time>/`.
    fn archive(&self) -> anyhow::Result<()> {
        let files = ["recipients.csv", "recipients.name", "run.state"]
            .into_iter()
            .map(|f| self.dir.join(f))
            .chain([self.journal_path(), self.results_path()])
            .filter(|p| p.exists())
            .collect::<Vec<_>>();
        if files.is_empty() {
            return Ok(());
        }
        let t = time::OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}-{:02}{:02}{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        let mut to = self.dir.join("previous").join(&stamp);
        let mut n = 1;
        while to.exists() {
            n += 1;
            to = self.dir.join("previous").join(format!("{stamp}-{n}"));
        }
        fs::create_dir_all(&to).with_context(|| format!("cannot create {}", to.display()))?;
        for f in files {
            let name = f.file_name().expect("a file name");
            fs::rename(&f, to.join(name))
                .with_context(|| format!("cannot move {} to {}", f.display(), to.display()))?;
        }
        Ok(())
    }

    pub(crate) fn journal_path(&self) -> PathBuf {
        crate::send::sibling(&self.csv_path(), "journal")
    }

    pub(crate) fn results_path(&self) -> PathBuf {
        crate::send::sibling(&self.csv_path(), "results.csv")
    }

    /// Test mode's folder, emptied.
    pub(crate) fn fresh_test_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = self.dir.join("test");
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot empty {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }

    pub(crate) fn attachments_dir(&self) -> PathBuf {
        self.dir.join("attachments")
    }

    /// Uploaded files, by name, with their sizes.
    pub(crate) fn attachments(&self) -> Vec<(String, u64)> {
        let mut found: Vec<(String, u64)> = fs::read_dir(self.attachments_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let meta = e.metadata().ok()?;
                (meta.is_file() && plain_name(&name).is_ok()).then_some((name, meta.len()))
            })
            .collect();
        found.sort();
        found
    }

    pub(crate) fn add_attachment(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let name = plain_name(name).map_err(anyhow::Error::msg)?;
        write_atomically(&self.attachments_dir().join(name), bytes)
    }

    pub(crate) fn remove_attachment(&self, name: &str) -> anyhow::Result<()> {
        let name = plain_name(name).map_err(anyhow::Error::msg)?;
        match fs::remove_file(self.attachments_dir().join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {name}"))
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn last_run(&self) -> LastRun {
        match fs::read_to_string(self.dir.join("run.state"))
            .as_deref()
            .map(str::trim)
        {
            Ok("running") => LastRun::Running,
            Ok("paused") => LastRun::Paused,
            Ok("stopped") => LastRun::Stopped,
            Ok("done") => LastRun::Done,
            _ => LastRun::None,
        }
    }

    pub(crate) fn set_last_run(&self, run: LastRun) {
        let word = match run {
            LastRun::None => "",
            LastRun::Running => "running",
            LastRun::Paused => "paused",
            LastRun::Stopped => "stopped",
            LastRun::Done => "done",
        };
        if let Err(e) = write_atomically(&self.dir.join("run.state"), word.as_bytes()) {
            tracing::error!(error = %e, "cannot record the run's state");
        }
    }
}

/// Writes a file whole or not at all (a crash leaves the old one): temp file, fsync, rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp-write");
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_the_fields_with_attachments_as_attach_lines() {
        let mut s = Settings::default();
        s.message.from = "Shop <shop@example.com>".into();
        s.message.subject = "Hi {{ name }}\r\nBcc: x@y".into();
        s.message.text = "Body\r\nline\n".into();
        s.message.attach = vec!["terms.pdf".into()];
        s.message.attach_column = "File \"A\"".into();
        assert_eq!(
            s.template_text(),
            "From: Shop <shop@example.com>\nSubject: Hi {{ name }}  Bcc: x@y\nAttach: terms.pdf\n\
             Attach: {{ row[\"File \\\"A\\\"\"] }}\n\nBody\nline\n"
        );
    }

    #[test]
    fn plain_names_stay_in_the_folder() {
        for bad in ["", ".hidden", "../x", "a/b", "a\\b"] {
            assert!(plain_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(plain_name("terms v2.pdf"), Ok("terms v2.pdf"));
    }

    #[test]
    fn a_new_csv_moves_the_old_campaign_aside() {
        let dir = tempfile::tempdir().unwrap();
        let w = Workspace::open(dir.path()).unwrap();
        w.replace_csv(b"email\na@x.org\n", "one.csv").unwrap();
        fs::write(w.journal_path(), "sent\t0\ta@x.org\n").unwrap();
        w.set_last_run(LastRun::Done);
        w.replace_csv(b"email\nb@x.org\n", "two.csv").unwrap();
        assert_eq!(
            w.csv().unwrap().unwrap(),
            (b"email\nb@x.org\n".to_vec(), "two.csv".into())
        );
        assert!(!w.journal_path().exists());
        assert_eq!(w.last_run(), LastRun::None);
        let previous: Vec<_> = fs::read_dir(dir.path().join("previous")).unwrap().collect();
        assert_eq!(previous.len(), 1);
        let old = previous[0].as_ref().unwrap().path();
        assert_eq!(
            fs::read_to_string(old.join("recipients.csv.journal")).unwrap(),
            "sent\t0\ta@x.org\n"
        );
    }
}
