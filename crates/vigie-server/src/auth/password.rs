//! Password hashing with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes — OWASP's
//! recommendation). Hashing is deliberately slow, so it runs on a blocking thread.
//!
//! Each hash holds its 19 MiB for as long as it works (tens of milliseconds), so hashes take
//! turns: at most [`AT_ONCE`] run at a time, process-wide, and the others wait. Without turns a
//! burst of logins was a burst of memory: 200 requests with wrong Basic credentials at once
//! held 1.4 GiB, none of it needing an account. A turn is held by the hashing thread itself, not
//! by the request, so a client that hangs up does not free a turn while its hash still runs.
//!
//! ```text
//! login::check ─► turn().await (waits while AT_ONCE hashes run) ─► verify(turn, …)
//!                  └─ a blocking thread hashes, then gives the turn back
//! ```

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::{Arc, LazyLock, OnceLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many password hashes may run at once: 2 × 19 MiB at most, and about 40–80 logins a
/// second on two cores, far more than people log in.
pub const AT_ONCE: usize = 2;

/// The turns every hash of this process takes.
static TURNS: LazyLock<Turns> = LazyLock::new(|| Turns::new(AT_ONCE));

/// A number of turns to hash (see the module doc); the process has one set, [`TURNS`].
pub struct Turns(Arc<Semaphore>);

/// The right to run one password hash, given back when the hash is done (when dropped).
pub struct Turn {
    _permit: OwnedSemaphorePermit,
}

impl Turns {
    fn new(at_once: usize) -> Turns {
        Turns(Arc::new(Semaphore::new(at_once)))
    }

    async fn take(&self) -> Turn {
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = self.0.clone().acquire_owned().await;
        Turn {
            _permit: permit.expect("the hashing turns are never closed"),
        }
    }
}

/// Waits for a turn to hash.
pub async fn turn() -> Turn {
    TURNS.take().await
}

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
    let turn = turn().await;
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        hash_blocking(&password)
    })
    .await
    .map_err(HashError::Thread)?
}

/// Checks `password` against `hash`, or against a dummy hash when the user does not exist, so
/// "no such user" and "wrong password" take the same time and cannot be told apart. Takes the
/// caller's [`Turn`], so that the caller can look at the throttle once its turn has come.
pub async fn verify(turn: Turn, password: String, hash: Option<String>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
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
        assert!(!verify(turn().await, "vigie-dummy-password".into(), None).await);
    }

    /// A client that hangs up while its password is being checked does not give the turn back
    /// early: the hash still runs on its thread, and the turn is free only once it is done.
    #[tokio::test]
    async fn a_turn_is_held_until_the_hash_is_done_even_if_the_caller_gives_up() {
        use futures_util::FutureExt;
        let turns = Turns::new(1);
        let hash = hash_blocking("right").unwrap();
        let mut check = Box::pin(verify(turns.take().await, "wrong".into(), Some(hash)));
        assert!(
            (&mut check).now_or_never().is_none(),
            "hashing on its thread"
        );
        drop(check);
        assert_eq!(
            turns.0.available_permits(),
            0,
            "the hash still holds its turn"
        );
        let _next = turns.take().await;
        assert_eq!(turns.0.available_permits(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn many_checks_at_once_each_get_their_answer() {
        let hash = hash_blocking("right").unwrap();
        let checks: Vec<_> = (0..8)
            .map(|i| {
                let hash = hash.clone();
                tokio::spawn(async move {
                    let password = if i % 2 == 0 { "right" } else { "wrong" };
                    verify(turn().await, password.into(), Some(hash)).await == (i % 2 == 0)
                })
            })
            .collect();
        for check in checks {
            assert!(check.await.unwrap());
        }
    }
}
