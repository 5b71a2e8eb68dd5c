//! Who is asking, and may they: passwords, sessions, API tokens, CSRF and login throttling.
//!
//! A browser proves itself with the `vigie_session` cookie (random, stored as a SHA-256 hash,
//! expiring after `auth.session_lifetime`); a script with `Authorization: Bearer <api token>`.
//! Handlers state what they need by their arguments: [`LoggedIn`] or [`AdminUser`] for pages,
//! [`ApiCaller`] for the JSON API (reads need read access, every other method admin access), so
//! a route cannot forget its check. [`csrf::guard`] checks the token on every state-changing form
//! before any handler runs.

pub mod csrf;
pub mod job_access;
pub mod login;
pub mod password;
mod principal;
pub mod session;

pub use principal::{AdminUser, ApiCaller, Caller, LoggedIn, SentryCaller};
