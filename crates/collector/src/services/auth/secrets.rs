//! Passwords, session tokens and CSRF tokens.
//!
//! Passwords are hashed with Argon2id at the `argon2` crate's defaults
//! (19 MiB, 2 passes, 1 lane: OWASP's recommended minimum) into PHC strings,
//! which carry their parameters, so stronger settings later still verify
//! old hashes. Session tokens are 32 random bytes; only their SHA-256 is
//! stored.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Shortest password accepted: long enough that the login rate limit makes
/// guessing hopeless, short enough to type.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer than this is no password (and costs hashing time).
pub const MAX_PASSWORD_BYTES: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("the system has no randomness to offer: {0}")]
    NoRandomness(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Checks a new password against the rules.
pub fn check_password(password: &str) -> Result<(), SecretError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(SecretError::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(SecretError::TooLong);
    }
    Ok(())
}

fn random<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| SecretError::NoRandomness(e.to_string()))?;
    Ok(bytes)
}

/// The PHC string of a new password (checked first).
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    check_password(password)?;
    let salt = SaltString::encode_b64(&random::<16>()?).map_err(|e| SecretError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `password` is the one `phc` was made from. A malformed hash
/// matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the user does not exist, so that an
/// unknown name takes as long to refuse as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::encode_b64(b"ringsource-decoy").expect("a 16-byte salt encodes");
        Argon2::default().hash_password(b"no user has this password", &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

/// A new random token (session or CSRF), URL-safe base64 of 32 bytes.
pub fn new_token() -> Result<String, SecretError> {
    Ok(URL_SAFE_NO_PAD.encode(random::<32>()?))
}

/// What is stored of a session token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without an early exit, so the time taken does not tell how much
/// of a guess was right.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A password for `ringsource user add` when none is given: 16 characters
/// of URL-safe base64 (96 bits).
pub fn generated_password() -> Result<String, SecretError> {
    Ok(URL_SAFE_NO_PAD.encode(random::<12>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert_ne!(phc, hash_password("correct horse battery").unwrap(), "salted");
        assert!(matches!(hash_password("short"), Err(SecretError::TooShort)));
        assert!(!verify_password("anything at all", decoy_hash()));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        assert!(same_secret(b"abc", b"abc") && !same_secret(b"abc", b"abd") && !same_secret(b"abc", b"ab"));
    }
}
