//! The server's TLS certificate: the operator's PEM files, or one made at the first start.
//!
//! With `--tls-cert`/`--tls-key` those files are used. Without them the first start makes a
//! self-signed certificate for the host name with `rcgen` and keeps it under the storage root
//! (`tls/cert.pem`, and `tls/key.pem` with mode 0600), so TLS works out of the box and a
//! client that pins the certificate sees the same one after a restart. Either way SIGHUP
//! re-reads the files: a renewed certificate is used from the next handshake on.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use conn_driver::ReloadableCert;

/// Where the certificate comes from, and the certificate in use.
pub(crate) struct Certs {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub store: Arc<ReloadableCert>,
}

impl Certs {
    /// The operator's files if given, else the generated pair under `storage/tls/` (made now
    /// if missing).
    pub(crate) fn load(
        given: Option<&(PathBuf, PathBuf)>,
        storage: &Path,
        hostname: &str,
    ) -> anyhow::Result<Certs> {
        let (cert, key) = match given {
            Some((cert, key)) => (cert.clone(), key.clone()),
            None => {
                let dir = storage.join("tls");
                let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
                if !cert.exists() || !key.exists() {
                    // Two servers starting at once on one storage root would otherwise each
                    // write a key and a certificate, and keep one's key with the other's
                    // certificate: the first makes the pair, the second finds it.
                    fs::create_dir_all(&dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    let lock = fs::File::create(dir.join(".lock"))
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    lock.lock().context("cannot lock the certificate folder")?;
                    if !cert.exists() || !key.exists() {
                        generate(&dir, &cert, &key, hostname)?;
                    }
                }
                (cert, key)
            }
        };
        let (cert_pem, key_pem) = read_pair(&cert, &key)?;
        let store = ReloadableCert::from_pem(&cert_pem, &key_pem).with_context(|| {
            format!("TLS certificate {} / key {}", cert.display(), key.display())
        })?;
        Ok(Certs {
            cert,
            key,
            store: Arc::new(store),
        })
    }

    /// Logs which certificate is in use (once the start can no longer fail).
    pub(crate) fn log(&self, self_signed: bool) {
        tracing::info!(
            cert = %self.cert.display(),
            sha256 = %self.fingerprint(),
            self_signed,
            "TLS certificate"
        );
    }

    /// Re-reads the files (SIGHUP); on an error the certificate in use stays.
    pub(crate) fn reload(&self) {
        let loaded = read_pair(&self.cert, &self.key)
            .and_then(|(c, k)| self.store.reload(&c, &k).map_err(anyhow::Error::from));
        match loaded {
            Ok(()) => tracing::info!(sha256 = %self.fingerprint(), "TLS certificate re-read"),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "TLS certificate not re-read; the one in use stays")
            }
        }
    }

    /// The SHA-256 fingerprint of the leaf certificate, as `openssl x509 -fingerprint
    /// -sha256` prints it (`AB:CD:...`).
    pub(crate) fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.store.leaf_der());
        let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        hex.join(":")
    }
}

fn read_pair(cert: &Path, key: &Path) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let c = fs::read(cert)
        .with_context(|| format!("cannot read TLS certificate {}", cert.display()))?;
    let k = fs::read(key).with_context(|| format!("cannot read TLS key {}", key.display()))?;
    Ok((c, k))
}

/// A self-signed certificate for `hostname` (and `localhost`, 127.0.0.1, ::1), written with
/// the key readable by the owner only.
fn generate(dir: &Path, cert: &Path, key: &Path, hostname: &str) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut names = vec![hostname.to_owned(), "localhost".to_owned()];
    names.dedup();
    names.extend(["127.0.0.1".to_owned(), "::1".to_owned()]);
    let made = rcgen::generate_simple_self_signed(names)
        .context("cannot make a self-signed certificate")?;
    let write = |path: &Path, text: &str, mode: u32| -> anyhow::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        Ok(())
    };
    write(key, &made.signing_key.serialize_pem(), 0o600)?;
    write(cert, &made.cert.pem(), 0o644)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}
