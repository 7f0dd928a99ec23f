//! Password hashes: argon2id with the crate's default cost (RFC 9106's second recommended
//! option scaled down, as OWASP suggests: 19 MiB, 2 passes), one PHC string per account.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Hashes `password` with a fresh random salt; the PHC string goes in the users file.
///
/// ```
/// let hash = accounts::hash_password(b"correct horse");
/// assert!(hash.starts_with("$argon2id$"));
/// assert!(accounts::verify_password(&hash, b"correct horse"));
/// assert!(!accounts::verify_password(&hash, b"wrong"));
/// ```
pub fn hash_password(password: &[u8]) -> String {
    Argon2::default()
        .hash_password(password)
        .expect("argon2 with default parameters and a random salt cannot fail")
        .to_string()
}

/// True if `password` matches the PHC string `hash`. A hash that cannot be read matches
/// nothing.
pub fn verify_password(hash: &str, password: &[u8]) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password, &parsed).is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "a password hash in the users file cannot be read");
            false
        }
    }
}

/// Does the work of a check against an account that does not exist, so that the time a
/// refusal takes does not tell which addresses have accounts. Always false.
pub fn verify_unknown(password: &[u8]) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let hash = DUMMY.get_or_init(|| hash_password(b"no account has this password"));
    let _ = verify_password(hash, password);
    false
}
