//! Password hashing with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes — OWASP's
//! recommendation). Hashing is deliberately slow, so it runs on a blocking thread.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::OnceLock;

/// Hashing a password failed (it does not, short of a bug or a thread that died).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Argon2(argon2::password_hash::Error),
    #[error("the password hashing thread failed")]
    Thread(#[source] tokio::task::JoinError),
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for `password`.
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(HashError::Argon2)
}

pub fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

pub async fn hash(password: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(HashError::Thread)?
}

/// Checks `password` against `hash`, or against a dummy hash when the user does not exist, so
/// "no such user" and "wrong password" take the same time and cannot be told apart.
pub async fn verify(password: String, hash: Option<String>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| {
            DUMMY
                .get_or_init(|| hash_blocking("vigie-dummy-password").unwrap_or_default())
                .clone()
        });
        verify_blocking(&password, &hash) && known
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verifiable() {
        let a = hash_blocking("correct horse").unwrap();
        let b = hash_blocking("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(verify_blocking("correct horse", &a));
        assert!(!verify_blocking("wrong horse", &a));
        assert!(!verify_blocking("x", "not a hash"));
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        assert!(!verify("vigie-dummy-password".into(), None).await);
    }
}
